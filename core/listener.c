/* Sluice core — listening sockets.
 *
 * One listening socket per address, registered in every worker's epoll with
 * EPOLLEXCLUSIVE; whichever worker accepts a connection keeps it for life.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024
/* Accepts per listener per dispatch: the rest wait for the next iteration
 * (level-triggered) so established connections are served meanwhile. */
#define ACCEPT_BUDGET 64
/* After EMFILE the pending connection stays in the backlog and would wake
 * us at once again; back off instead of spinning. */
#define ACCEPT_RETRY_MS 100

char *
sluice_io_format_address (const struct sockaddr *sa, socklen_t len)
{
  char host[INET6_ADDRSTRLEN];

  if (sa->sa_family == AF_INET && len >= sizeof (struct sockaddr_in))
    {
      const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;

      inet_ntop (AF_INET, &sin->sin_addr, host, sizeof host);
      return g_strdup_printf ("%s:%u", host, ntohs (sin->sin_port));
    }
  if (sa->sa_family == AF_INET6 && len >= sizeof (struct sockaddr_in6))
    {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

      inet_ntop (AF_INET6, &sin6->sin6_addr, host, sizeof host);
      return g_strdup_printf ("[%s]:%u", host, ntohs (sin6->sin6_port));
    }
  return g_strdup ("unknown");
}

SluiceListener *
sluice_listener_ref (SluiceListener *listener)
{
  g_atomic_int_inc (&listener->ref_count);
  return listener;
}

void
sluice_listener_unref (SluiceListener *listener)
{
  if (!g_atomic_int_dec_and_test (&listener->ref_count))
    return;
  if (listener->fd >= 0)
    close (listener->fd);
  g_clear_pointer (&listener->tls, sluice_tls_server_free);
  g_mutex_clear (&listener->log_lock);
  g_free (listener->watches);
  g_free (listener->address);
  g_free (listener->transport_name);
  g_free (listener);
}

void
sluice_listener_log_reject (SluiceListener *listener, const char *why)
{
  gint64 now = g_get_monotonic_time ();
  guint unlogged;

  g_mutex_lock (&listener->log_lock);
  if (listener->last_reject_log_us != 0 && now - listener->last_reject_log_us < G_USEC_PER_SEC)
    {
      listener->rejects_unlogged++;
      g_mutex_unlock (&listener->log_lock);
      return;
    }
  unlogged = listener->rejects_unlogged;
  listener->rejects_unlogged = 0;
  listener->last_reject_log_us = now;
  g_mutex_unlock (&listener->log_lock);

  if (unlogged > 0)
    g_message ("[transport.%s] refused a connection on %s: %s (and %u more since the last report)",
               listener->transport_name, listener->address, why, unlogged);
  else
    g_message ("[transport.%s] refused a connection on %s: %s", listener->transport_name,
               listener->address, why);
}

/* "host:port", "[v6]:port", ":port" or "*:port" (every IPv4 address). */
static gboolean
split_address (const char *address, char **host, char **port, GError **error)
{
  const char *colon;
  guint64 number;

  if (address[0] == '[')
    {
      const char *end = strchr (address, ']');

      if (end == NULL || end[1] != ':')
        goto bad;
      *host = g_strndup (address + 1, end - address - 1);
      colon = end + 1;
    }
  else
    {
      colon = strrchr (address, ':');
      if (colon == NULL || memchr (address, ':', colon - address) != NULL)
        goto bad;
      *host = g_strndup (address, colon - address);
    }
  if (!g_ascii_string_to_unsigned (colon + 1, 10, 0, 65535, &number, NULL))
    {
      g_clear_pointer (host, g_free);
      goto bad;
    }
  *port = g_strdup (colon + 1);
  if (**host == '\0' || g_str_equal (*host, "*"))
    {
      g_free (*host);
      *host = g_strdup ("0.0.0.0");
    }
  else if (g_ascii_strcasecmp (*host, "localhost") == 0)
    {
      g_free (*host);
      *host = g_strdup ("127.0.0.1");
    }
  return TRUE;

bad:
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
               "bad listen address \"%s\": expected host:port, [ipv6]:port or localhost:port "
               "with a port from 0 to 65535", address);
  return FALSE;
}

static int
open_socket (const char *address, char **bound, GError **error)
{
  g_autofree char *host = NULL;
  g_autofree char *port = NULL;
  struct addrinfo hints = { 0 }, *res = NULL;
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  int fd, rc, one = 1, saved;

  if (!split_address (address, &host, &port, error))
    return -1;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  /* Runs on the main thread at start-up, where resolving a name is fine. */
  rc = getaddrinfo (host, port, &hints, &res);
  if (rc != 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "cannot listen on %s: %s",
                   address, gai_strerror (rc));
      return -1;
    }

  fd = socket (res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               res->ai_protocol);
  if (fd < 0)
    goto fail;
  if (setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    goto fail;
  /* An IPv6 address means only IPv6, so "0.0.0.0:p" and "[::]:p" can both
   * be listed whatever the system's bindv6only default. */
  if (res->ai_family == AF_INET6
      && setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
    goto fail;
  if (bind (fd, res->ai_addr, res->ai_addrlen) < 0)
    goto fail;
  if (listen (fd, LISTEN_BACKLOG) < 0)
    goto fail;
  if (getsockname (fd, (struct sockaddr *) &ss, &sslen) < 0)
    goto fail;
  freeaddrinfo (res);
  *bound = sluice_io_format_address ((struct sockaddr *) &ss, sslen);
  return fd;

fail:
  saved = errno;
  if (fd >= 0)
    close (fd);
  freeaddrinfo (res);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot listen on %s: %s",
               address, g_strerror (saved));
  return -1;
}

static gboolean
accept_retry (gpointer data)
{
  SluiceListenerWatch *lw = data;
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&lw->retry, g_source_unref);
  if (!sluice_epoll_source_modify (lw->worker->epoll, &lw->watch, EPOLLIN, &error))
    g_warning ("[transport.%s] cannot resume accepting on %s: %s",
               lw->listener->transport_name, lw->listener->address, error->message);
  return G_SOURCE_REMOVE;
}

static void
accept_ready (gpointer user_data, guint32 events)
{
  SluiceListenerWatch *lw = user_data;
  SluiceListener *listener = lw->listener;

  for (int i = 0; i < ACCEPT_BUDGET; i++)
    {
      struct sockaddr_storage ss;
      socklen_t sslen = sizeof ss;
      int fd = accept4 (listener->fd, (struct sockaddr *) &ss, &sslen,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);

      if (fd < 0)
        {
          int saved = errno;

          switch (saved)
            {
            case EAGAIN:
              return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case EPERM:
              continue;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
              sluice_listener_log_reject (listener, g_strerror (saved));
              (void) sluice_epoll_source_modify (lw->worker->epoll, &lw->watch, 0, NULL);
              if (lw->retry == NULL)
                {
                  lw->retry = g_timeout_source_new (ACCEPT_RETRY_MS);
                  g_source_set_callback (lw->retry, accept_retry, lw, NULL);
                  g_source_attach (lw->retry, lw->worker->context);
                }
              return;
            default:
              g_warning ("[transport.%s] accept on %s failed: %s", listener->transport_name,
                         listener->address, g_strerror (saved));
              return;
            }
        }

      if (listener->max_connections > 0)
        {
          gint before = g_atomic_int_add (&listener->n_connections, 1);

          if (before >= listener->max_connections)
            {
              g_autofree char *peer = sluice_io_format_address ((struct sockaddr *) &ss, sslen);
              g_autofree char *why = g_strdup_printf ("max-connections (%" G_GINT64_FORMAT
                                                      ") reached, closed %s",
                                                      listener->max_connections, peer);

              g_atomic_int_add (&listener->n_connections, -1);
              close (fd);
              sluice_listener_log_reject (listener, why);
              continue;
            }
        }
      else
        g_atomic_int_inc (&listener->n_connections);

      sluice_connection_accept (lw->worker, listener, fd, (struct sockaddr *) &ss, sslen);
    }
}

static void
unwatch_listeners (SluiceIoWorker *worker, gpointer user_data)
{
  GPtrArray *listeners = user_data;

  for (guint i = 0; i < listeners->len; i++)
    {
      SluiceListener *listener = g_ptr_array_index (listeners, i);
      SluiceListenerWatch *lw;

      if (listener->watches == NULL)
        continue;   /* a protocol's: nothing in epoll */
      lw = &listener->watches[worker->index];

      sluice_epoll_source_remove (worker->epoll, &lw->watch);
      if (lw->retry != NULL)
        {
          g_source_destroy (lw->retry);
          g_clear_pointer (&lw->retry, g_source_unref);
        }
    }
}

gboolean
sluice_io_listen (SluiceIo *io, const char *address, const SluiceListenSpec *spec,
                  char **bound, GError **error)
{
  g_autofree char *bound_address = NULL;
  SluiceListener *listener;
  SluiceTlsServer *tls = NULL;
  int fd;

  g_return_val_if_fail (spec != NULL && spec->vtable != NULL, FALSE);

  if (spec->tls)
    {
      if (spec->tls_cert == NULL || spec->tls_key == NULL)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "cannot listen on %s with TLS: tls-cert and tls-key are required",
                       address);
          return FALSE;
        }
      tls = sluice_tls_server_new (spec->tls_cert, spec->tls_key, spec->tls_ca, error);
      if (tls == NULL)
        {
          g_prefix_error (error, "cannot listen on %s: ", address);
          return FALSE;
        }
    }

  fd = open_socket (address, &bound_address, error);
  if (fd < 0)
    {
      g_clear_pointer (&tls, sluice_tls_server_free);
      return FALSE;
    }

  listener = g_new0 (SluiceListener, 1);
  listener->ref_count = 1;
  listener->io = io;
  listener->fd = fd;
  listener->address = g_strdup (bound_address);
  listener->transport_name = g_strdup (spec->transport_name != NULL ? spec->transport_name : "?");
  listener->vtable = spec->vtable;
  listener->transport = spec->transport;
  listener->tls = tls;
  listener->max_connections = spec->max_connections;
  g_mutex_init (&listener->log_lock);
  listener->watches = g_new0 (SluiceListenerWatch, io->n_workers);

  g_mutex_lock (&io->lock);
  g_ptr_array_add (io->listeners, listener);
  g_mutex_unlock (&io->lock);

  for (guint i = 0; i < io->n_workers; i++)
    {
      SluiceListenerWatch *lw = &listener->watches[i];

      lw->listener = listener;
      lw->worker = io->workers[i];
      sluice_epoll_watch_init (&lw->watch, fd, accept_ready, lw);
      /* epoll_ctl is thread safe, and the watch is complete before it is
       * registered, so adding from this thread is fine. */
      if (!sluice_epoll_source_add (lw->worker->epoll, &lw->watch, EPOLLIN, EPOLLEXCLUSIVE,
                                    error))
        {
          g_autoptr(GPtrArray) one = g_ptr_array_new ();

          g_prefix_error (error, "cannot listen on %s: ", address);
          g_ptr_array_add (one, listener);
          g_mutex_lock (&io->lock);
          listener->closed = TRUE;
          g_mutex_unlock (&io->lock);
          sluice_io_run_on_workers (io, unwatch_listeners, one);
          close (listener->fd);
          listener->fd = -1;
          return FALSE;
        }
    }

  g_info ("[transport.%s] listening on %s%s", listener->transport_name, bound_address,
          tls != NULL ? " (TLS)" : "");
  if (bound != NULL)
    *bound = g_steal_pointer (&bound_address);
  return TRUE;
}

void
sluice_io_close_listeners (SluiceIo *io)
{
  g_autoptr(GPtrArray) closing = g_ptr_array_new ();

  g_mutex_lock (&io->lock);
  for (guint i = 0; i < io->listeners->len; i++)
    {
      SluiceListener *listener = g_ptr_array_index (io->listeners, i);

      if (!listener->closed)
        {
          listener->closed = TRUE;
          g_ptr_array_add (closing, listener);
        }
    }
  g_mutex_unlock (&io->lock);
  if (closing->len == 0)
    return;

  /* Each worker forgets the socket on its own thread, so no accept callback
   * can still be running when the fd is closed. */
  sluice_io_run_on_workers (io, unwatch_listeners, closing);
  for (guint i = 0; i < closing->len; i++)
    {
      SluiceListener *listener = g_ptr_array_index (closing, i);

      if (listener->fd < 0)
        continue;
      close (listener->fd);
      listener->fd = -1;
      g_info ("[transport.%s] stopped listening on %s", listener->transport_name,
              listener->address);
    }
}

/* --- protocols: connections adopted from another transport --- */

gboolean
sluice_io_register_protocol (SluiceIo *io, const char *protocol, const SluiceListenSpec *spec,
                             GError **error)
{
  SluiceListener *listener, *existing;

  g_return_val_if_fail (protocol != NULL && spec != NULL && spec->vtable != NULL, FALSE);
  if (spec->vtable->connection_open == NULL || spec->vtable->connection_input == NULL
      || spec->vtable->connection_closed == NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "[transport.%s] cannot serve protocol '%s': it has no connection slots",
                   spec->transport_name, protocol);
      return FALSE;
    }

  g_mutex_lock (&io->lock);
  existing = g_hash_table_lookup (io->protocols, protocol);
  if (existing != NULL)
    {
      gboolean same = existing->transport == spec->transport;

      if (!same)
        g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                     "protocol '%s' is already served by [transport.%s]", protocol,
                     existing->transport_name);
      g_mutex_unlock (&io->lock);
      return same;
    }
  listener = g_new0 (SluiceListener, 1);
  listener->ref_count = 1;
  listener->io = io;
  listener->fd = -1;
  listener->address = g_strdup_printf ("protocol %s", protocol);
  listener->transport_name = g_strdup (spec->transport_name != NULL ? spec->transport_name : "?");
  listener->vtable = spec->vtable;
  listener->transport = spec->transport;
  listener->max_connections = spec->max_connections;
  g_mutex_init (&listener->log_lock);
  g_ptr_array_add (io->listeners, listener);
  g_hash_table_insert (io->protocols, g_strdup (protocol), listener);
  g_mutex_unlock (&io->lock);
  g_info ("[transport.%s] serves protocol %s for other transports", listener->transport_name,
          protocol);
  return TRUE;
}

gboolean
sluice_io_has_protocol (SluiceIo *io, const char *protocol)
{
  SluiceListener *listener;
  gboolean ok;

  g_mutex_lock (&io->lock);
  listener = g_hash_table_lookup (io->protocols, protocol);
  ok = listener != NULL && !listener->closed;
  g_mutex_unlock (&io->lock);
  return ok;
}

SluiceConnection *
sluice_io_adopt (SluiceIo *io, const char *protocol, const SluiceCarrierOps *ops,
                 gpointer carrier, const SluiceCarrierInfo *info, GError **error)
{
  GMainContext *context = g_main_context_get_thread_default ();
  SluiceIoWorker *worker = NULL;
  SluiceListener *listener;
  SluiceConnection *conn;

  g_return_val_if_fail (protocol != NULL && ops != NULL && ops->send != NULL
                        && ops->close != NULL, NULL);
  for (guint i = 0; i < io->n_workers && context != NULL; i++)
    if (io->workers[i]->context == context)
      worker = io->workers[i];
  if (worker == NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                   "a %s connection can only be adopted on an I/O worker", protocol);
      return NULL;
    }

  g_mutex_lock (&io->lock);
  listener = g_hash_table_lookup (io->protocols, protocol);
  if (listener == NULL || listener->closed)
    {
      if (listener == NULL)
        g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                     "no transport serves protocol '%s'", protocol);
      else
        g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN,
                     "[transport.%s] no longer accepts connections", listener->transport_name);
      g_mutex_unlock (&io->lock);
      return NULL;
    }
  sluice_listener_ref (listener);
  g_mutex_unlock (&io->lock);

  if (listener->max_connections > 0)
    {
      gint before = g_atomic_int_add (&listener->n_connections, 1);

      if (before >= listener->max_connections)
        {
          g_autofree char *why = g_strdup_printf ("max-connections (%" G_GINT64_FORMAT
                                                  ") reached, closed %s",
                                                  listener->max_connections,
                                                  info != NULL && info->peer != NULL
                                                    ? info->peer : "a peer");

          g_atomic_int_add (&listener->n_connections, -1);
          sluice_listener_log_reject (listener, why);
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_THROTTLED,
                       "[transport.%s] has reached max-connections (%" G_GINT64_FORMAT ")",
                       listener->transport_name, listener->max_connections);
          sluice_listener_unref (listener);
          return NULL;
        }
    }
  else
    g_atomic_int_inc (&listener->n_connections);

  conn = sluice_connection_adopt (worker, listener, ops, carrier, info);
  sluice_listener_unref (listener);
  return conn;
}
