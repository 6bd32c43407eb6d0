/* Sluice core — SluiceConnection: one accepted socket on one I/O worker.
 *
 * An adopted connection (connection-carrier.c) has no socket: a carrier
 * moves its bytes, and it goes OPEN → FLUSHING → DONE.
 *
 * Life of a connection:
 *   HANDSHAKE (TLS only) → OPEN → FLUSHING (close requested, output left)
 *   → LINGER (our FIN sent, reading until the peer's) → DONE (fd closed)
 * It stops being counted once connection_closed has run and nothing is left
 * to send (LINGER or DONE), and is "gone" (off the worker's list, the
 * worker's ref dropped) once DONE too. Everything that would call back into the
 * transport from inside a sluice_connection_* call (closed, drained, input
 * after resume) is deferred to the worker's post-dispatch step.
 * SPDX-License-Identifier: Apache-2.0 */
#include "connection-internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define DEFAULT_MAX_INPUT (1024 * 1024 + 64 * 1024)
/* A graceful close gives the peer this long to read what is queued ... */
#define FLUSH_TIMEOUT_MS 30000
/* ... and then this long to answer our FIN with its own, so that our
 * close() does not turn unread input into a RST that destroys the tail of
 * our output in the peer's kernel. */
#define LINGER_TIMEOUT_MS 2000
/* Input buffers that grew past this are freed when emptied. */
#define INPUT_KEEP (64 * 1024)

static guint64 next_connection_id = 1;

const char *
sluice_conn_transport_name (SluiceConnection *conn)
{
  return conn->listener->transport_name;
}

void
sluice_conn_mark_dirty (SluiceConnection *conn)
{
  if (conn->dirty || conn->gone)
    return;
  conn->dirty = TRUE;
  g_queue_push_tail (&conn->worker->dirty, sluice_connection_ref (conn));
  sluice_epoll_source_request_post_dispatch (conn->worker->epoll);
}

static void
conn_clear_timer (SluiceConnection *conn)
{
  if (conn->timer != NULL)
    {
      g_source_destroy (conn->timer);
      g_clear_pointer (&conn->timer, g_source_unref);
    }
}

static void
conn_set_timer (SluiceConnection *conn, guint ms, GSourceFunc func)
{
  conn_clear_timer (conn);
  conn->timer = g_timeout_source_new (ms);
  g_source_set_callback (conn->timer, func, sluice_connection_ref (conn),
                         (GDestroyNotify) sluice_connection_unref);
  g_source_attach (conn->timer, conn->worker->context);
}

/* Close the socket; the connection is DONE (but not gone before its
 * connection_closed has run). */
void
sluice_conn_finish (SluiceConnection *conn)
{
  if (conn->state == CONN_DONE)
    return;
  conn->state = CONN_DONE;
  conn->close_requested = TRUE;
  conn_clear_timer (conn);
  if (conn->carrier_ops != NULL)
    {
      if (!conn->carrier_done)
        {
          conn->carrier_done = TRUE;
          conn->carrier_ops->close (conn->carrier, TRUE);
        }
    }
  else
    sluice_epoll_source_remove (conn->worker->epoll, &conn->watch);
  if (conn->tls != NULL)
    {
      gnutls_deinit (conn->tls);
      conn->tls = NULL;
    }
  if (conn->fd >= 0)
    {
      close (conn->fd);
      conn->fd = -1;
    }
  sluice_conn_drop_output (conn);
  /* An abort from inside connection_input must not free the bytes the
   * transport is still looking at; sluice_conn_deliver frees them after. */
  if (!conn->in_input)
    g_clear_pointer (&conn->input, g_byte_array_unref);
  sluice_conn_mark_dirty (conn);
}

/* No longer counted (max-connections, sluice_io_count_connections, the wait
 * of sluice_io_close_connections): connection_closed has run and nothing is
 * left to send. A lingering socket only waits for the peer's FIN. */
static void
conn_release (SluiceConnection *conn)
{
  SluiceIo *io = conn->worker->io;

  conn->released = TRUE;
  g_debug ("connection %" G_GUINT64_FORMAT " from %s on %s [transport.%s] closed", conn->id,
           conn->peer, conn->local, sluice_conn_transport_name (conn));
  g_atomic_int_add (&conn->listener->n_connections, -1);
  g_atomic_int_add (&io->n_connections, -1);
  sluice_io_notify_gone (io);
}

static void
conn_gone (SluiceConnection *conn)
{
  if (!conn->released)
    conn_release (conn);
  conn->gone = TRUE;
  g_queue_unlink (&conn->worker->connections, &conn->link);
  sluice_connection_unref (conn);   /* the worker's */
}

static gboolean
linger_timeout (gpointer data)
{
  SluiceConnection *conn = data;

  g_clear_pointer (&conn->timer, g_source_unref);
  sluice_conn_finish (conn);
  return G_SOURCE_REMOVE;
}

static gboolean
flush_timeout (gpointer data)
{
  SluiceConnection *conn = data;

  g_clear_pointer (&conn->timer, g_source_unref);
  g_message ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: %" G_GSIZE_FORMAT
             " bytes still unsent %u s after close; dropping them",
             conn->id, conn->peer, sluice_conn_transport_name (conn), conn->pending,
             FLUSH_TIMEOUT_MS / 1000);
  sluice_conn_finish (conn);
  return G_SOURCE_REMOVE;
}

static gboolean
handshake_timeout (gpointer data)
{
  SluiceConnection *conn = data;

  g_clear_pointer (&conn->timer, g_source_unref);
  g_message ("TLS handshake with %s on %s [transport.%s] timed out", conn->peer, conn->local,
             sluice_conn_transport_name (conn));
  sluice_conn_close_internal (conn, TRUE);
  return G_SOURCE_REMOVE;
}

/* All output is written: send our FIN and wait for the peer's. */
void
sluice_conn_shutdown (SluiceConnection *conn)
{
  if (conn->carrier_ops != NULL)
    {
      /* The carrier sends its close (a WebSocket close frame) after what it
       * still holds; the core is done with it. */
      conn->carrier_done = TRUE;
      conn->carrier_ops->close (conn->carrier, FALSE);
      sluice_conn_finish (conn);
      return;
    }
  if (conn->tls != NULL)
    /* close_notify; the socket just drained, so it fits. */
    (void) gnutls_bye (conn->tls, GNUTLS_SHUT_WR);
  if (conn->peer_eof || shutdown (conn->fd, SHUT_WR) < 0)
    {
      sluice_conn_finish (conn);
      return;
    }
  conn->state = CONN_LINGER;
  conn->want_write = FALSE;
  conn_set_timer (conn, LINGER_TIMEOUT_MS, linger_timeout);
  sluice_conn_update_interest (conn);
  sluice_conn_mark_dirty (conn);   /* release it from the loop */
}

void
sluice_conn_close_internal (SluiceConnection *conn, gboolean abort)
{
  if (conn->state == CONN_DONE)
    return;
  if (!conn->close_requested)
    {
      conn->close_requested = TRUE;
      sluice_conn_mark_dirty (conn);    /* connection_closed, from the loop */
    }
  if (abort || conn->state == CONN_HANDSHAKE || (conn->fd < 0 && conn->carrier_ops == NULL))
    {
      sluice_conn_finish (conn);
      return;
    }
  if (conn->state == CONN_OPEN)
    {
      conn->state = CONN_FLUSHING;
      conn_set_timer (conn, FLUSH_TIMEOUT_MS, flush_timeout);
      /* The flush (and the shutdown once empty) runs from the loop. */
      sluice_conn_mark_dirty (conn);
    }
  sluice_conn_update_interest (conn);
}

void
sluice_conn_update_interest (SluiceConnection *conn)
{
  g_autoptr(GError) error = NULL;
  guint32 events = 0;

  if (conn->carrier_ops != NULL)
    return;   /* not in epoll; pause and resume tell the carrier */
  switch (conn->state)
    {
    case CONN_HANDSHAKE:
      events = conn->handshake_writes ? EPOLLOUT : EPOLLIN;
      break;
    case CONN_OPEN:
      if (!conn->paused)
        events |= EPOLLIN;
      if (conn->want_write)
        events |= EPOLLOUT;
      break;
    case CONN_FLUSHING:
      if (conn->want_write)
        events |= EPOLLOUT;
      break;
    case CONN_LINGER:
      events = EPOLLIN;
      break;
    case CONN_DONE:
      return;
    }
  if (!sluice_epoll_source_modify (conn->worker->epoll, &conn->watch, events, &error))
    {
      g_message ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: %s", conn->id,
                 conn->peer, sluice_conn_transport_name (conn), error->message);
      sluice_conn_close_internal (conn, TRUE);
    }
}

void
sluice_conn_log_io_error (SluiceConnection *conn, const char *what, int err, const char *message)
{
  /* A peer resetting the connection is routine; anything else is worth a
   * line at the default level. */
  if (err == ECONNRESET || err == EPIPE)
    g_debug ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: %s: %s", conn->id,
             conn->peer, sluice_conn_transport_name (conn), what, message);
  else
    g_message ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: %s: %s", conn->id,
               conn->peer, sluice_conn_transport_name (conn), what, message);
}

/* --- input --- */

/* Moves up to `n` bytes into the read_into() buffer; how many it took. */
static gsize
conn_sink_take (SluiceConnection *conn, const guint8 *data, gsize n)
{
  gsize take = MIN (n, conn->sink_len - conn->sink_have);

  memcpy (conn->sink + conn->sink_have, data, take);
  conn->sink_have += take;
  return take;
}

/* The read_into() buffer is full: back to the transport. */
static void
conn_sink_fire (SluiceConnection *conn)
{
  SluiceInputFilled filled = conn->sink_filled;
  gpointer data = conn->sink_data;

  conn->sink = NULL;
  conn->sink_len = conn->sink_have = 0;
  conn->sink_filled = NULL;
  conn->sink_data = NULL;
  conn->in_input = TRUE;
  filled (conn, data);
  conn->in_input = FALSE;
}

/* Keeps bytes not yet presented (paused, or after a read_into buffer). */
static void
conn_hold_input (SluiceConnection *conn, const guint8 *data, gsize n)
{
  if (n == 0)
    return;
  if (conn->input == NULL)
    conn->input = g_byte_array_new ();
  g_byte_array_append (conn->input, data, n);
}

void
sluice_conn_deliver (SluiceConnection *conn, const guint8 *fresh, gsize n)
{
  const guint8 *data;
  gsize len, consumed, rest;
  gboolean from_fresh;

  conn->want_read = FALSE;
  if (conn->close_requested || !conn->opened)
    return;
  if (conn->paused)
    {
      /* Only TLS can have read while paused (records GnuTLS had buffered). */
      conn_hold_input (conn, fresh, n);
      return;
    }

  for (;;)
    {
      /* A read_into() buffer takes the bytes held back first, then the
       * fresh ones. */
      if (conn->sink != NULL)
        {
          if (conn->input != NULL && conn->input->len > 0)
            g_byte_array_remove_range (conn->input, 0,
                                       conn_sink_take (conn, conn->input->data,
                                                       conn->input->len));
          if (n > 0)
            {
              gsize took = conn_sink_take (conn, fresh, n);

              fresh += took;
              n -= took;
            }
          if (conn->sink_have < conn->sink_len)
            return;
          conn_sink_fire (conn);
          if (conn->state == CONN_DONE)
            {
              g_clear_pointer (&conn->input, g_byte_array_unref);
              return;
            }
          if (conn->close_requested)
            return;
          if (conn->paused)
            {
              conn_hold_input (conn, fresh, n);
              return;
            }
          continue;
        }

      from_fresh = conn->input == NULL || conn->input->len == 0;
      if (from_fresh)
        {
          data = fresh;
          len = n;
        }
      else
        {
          if (n > 0)
            g_byte_array_append (conn->input, fresh, n);
          data = conn->input->data;
          len = conn->input->len;
        }
      if (len == 0)
        return;

      conn->in_input = TRUE;
      consumed = conn->listener->vtable->connection_input (conn->conn_state, conn, data, len);
      conn->in_input = FALSE;
      if (consumed > len)
        {
          g_warning ("connection %" G_GUINT64_FORMAT " [transport.%s]: connection_input consumed %"
                     G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", conn->id,
                     sluice_conn_transport_name (conn), consumed, len);
          consumed = len;
        }
      rest = len - consumed;
      if (conn->state == CONN_DONE)
        {
          /* Aborted from inside the callback. */
          g_clear_pointer (&conn->input, g_byte_array_unref);
          return;
        }

      if (from_fresh)
        conn_hold_input (conn, data + consumed, rest);
      else if (consumed == len)
        g_byte_array_set_size (conn->input, 0);
      else if (consumed > 0)
        g_byte_array_remove_range (conn->input, 0, consumed);
      fresh = NULL;
      n = 0;

      /* What the transport left goes into the buffer it just gave. */
      if (conn->sink != NULL && rest > 0 && !conn->close_requested && !conn->paused)
        continue;

      conn->input_peak = MAX (conn->input_peak, rest);
      if (rest == 0 && conn->input != NULL && conn->input_peak > INPUT_KEEP)
        {
          g_clear_pointer (&conn->input, g_byte_array_unref);
          conn->input_peak = 0;
        }

      if (rest > conn->max_input && !conn->close_requested)
        {
          g_message ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: %" G_GSIZE_FORMAT
                     " bytes of unconsumed input exceed the limit of %" G_GSIZE_FORMAT
                     "; closing", conn->id, conn->peer, sluice_conn_transport_name (conn), rest,
                     conn->max_input);
          sluice_conn_close_internal (conn, FALSE);
        }
      return;
    }
}

/* Plain sockets with a read_into() buffer: straight from the socket into it,
 * as much as the socket holds. TRUE when the socket may hold more. */
static gboolean
conn_read_sink (SluiceConnection *conn, gboolean *eof, gboolean *failed)
{
  int calls = 0;

  while (conn->sink_have < conn->sink_len && calls++ < 64)
    {
      gsize want = conn->sink_len - conn->sink_have;
      ssize_t rc = recv (conn->fd, conn->sink + conn->sink_have, want, 0);

      if (rc > 0)
        {
          conn->sink_have += rc;
          if ((gsize) rc < want)
            return FALSE;
          continue;
        }
      if (rc == 0)
        *eof = TRUE;
      else if (errno == EINTR)
        continue;
      else if (errno != EAGAIN && errno != EWOULDBLOCK)
        {
          int saved = errno;
          sluice_conn_log_io_error (conn, "read failed", saved, g_strerror (saved));
          *failed = TRUE;
        }
      return FALSE;
    }
  return conn->sink_have == conn->sink_len;
}

static void
conn_read (SluiceConnection *conn)
{
  guint8 *buf = conn->worker->scratch;
  gsize got = 0;
  gboolean eof = FALSE, failed = FALSE;
  /* Bounds the loop also for a peer sending nothing but TLS warning alerts. */
  int calls = 0;
  /* Never read past what the input limit leaves room for: a transport that
   * paused with input left over (back-pressure) resumes on that leftover,
   * and fresh bytes on top of it must not push it over the limit. One byte
   * past the limit may be read: a transport that takes nothing of that is
   * over it and the connection is closed as before. */
  gsize held = conn->input != NULL ? conn->input->len : 0;
  gsize budget = held > conn->max_input ? 0
                 : MIN ((gsize) SLUICE_IO_READ_BUDGET, conn->max_input - held + 1);

  if (conn->sink != NULL && conn->tls == NULL && held == 0)
    {
      gboolean more = conn_read_sink (conn, &eof, &failed);

      if (conn->sink_have == conn->sink_len)
        {
          conn_sink_fire (conn);
          if (conn->state == CONN_DONE)
            return;
        }
      /* Read on only for the bytes after a filled buffer. */
      if (!more || conn->state != CONN_OPEN || conn->paused || conn->close_requested)
        budget = 0;
    }

  while (got < budget && calls++ < 64)
    {
      gsize want = budget - got;

      if (conn->tls != NULL)
        {
          ssize_t rc = gnutls_record_recv (conn->tls, buf + got, want);

          if (rc > 0)
            {
              got += rc;
              continue;
            }
          if (rc == 0 || rc == GNUTLS_E_PREMATURE_TERMINATION)
            eof = TRUE;
          else if (rc == GNUTLS_E_AGAIN)
            ;
          else if (rc == GNUTLS_E_INTERRUPTED)
            continue;
          else if (!gnutls_error_is_fatal (rc))
            {
              /* A warning alert or a renegotiation request: we do not
               * renegotiate, the session stays usable. */
              g_debug ("connection %" G_GUINT64_FORMAT " from %s: TLS: %s", conn->id,
                       conn->peer, gnutls_strerror (rc));
              continue;
            }
          else
            {
              sluice_conn_log_io_error (conn, "TLS read failed",
                                 rc == GNUTLS_E_PULL_ERROR ? ECONNRESET : 0,
                                 gnutls_strerror (rc));
              failed = TRUE;
            }
          break;
        }
      else
        {
          ssize_t rc = recv (conn->fd, buf + got, want, 0);

          if (rc > 0)
            {
              got += rc;
              /* A short read means the socket is empty for now. */
              if ((gsize) rc < want)
                break;
              continue;
            }
          if (rc == 0)
            eof = TRUE;
          else if (errno == EINTR)
            continue;
          else if (errno != EAGAIN && errno != EWOULDBLOCK)
            {
              int saved = errno;
              sluice_conn_log_io_error (conn, "read failed", saved, g_strerror (saved));
              failed = TRUE;
            }
          break;
        }
    }

  if (got > 0 || conn->want_read)
    sluice_conn_deliver (conn, buf, got);
  if (conn->state == CONN_DONE)
    return;

  /* GnuTLS may hold decrypted records the socket no longer signals. */
  if (conn->tls != NULL && !eof && !failed && !conn->paused && !conn->close_requested
      && gnutls_record_check_pending (conn->tls) > 0)
    {
      conn->want_read = TRUE;
      sluice_conn_mark_dirty (conn);
    }
  if (failed)
    sluice_conn_close_internal (conn, TRUE);
  else if (eof)
    {
      g_debug ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: peer closed",
               conn->id, conn->peer, sluice_conn_transport_name (conn));
      conn->peer_eof = TRUE;
      /* What is queued still goes out: the peer may only have half-closed. */
      sluice_conn_close_internal (conn, FALSE);
    }
}

/* Discard what arrives after our FIN until the peer's. */
static void
conn_linger_read (SluiceConnection *conn)
{
  guint8 *buf = conn->worker->scratch;

  for (int i = 0; i < 4; i++)
    {
      ssize_t rc = recv (conn->fd, buf, SLUICE_IO_READ_BUDGET, 0);

      if (rc > 0)
        continue;
      if (rc < 0 && errno == EINTR)
        continue;
      if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      sluice_conn_finish (conn);
      return;
    }
}

/* --- opening --- */

void
sluice_conn_open_transport (SluiceConnection *conn)
{
  gpointer state = conn->listener->vtable->connection_open (conn->listener->transport, conn);

  if (state == NULL)
    {
      g_debug ("connection %" G_GUINT64_FORMAT " from %s refused by [transport.%s]", conn->id,
               conn->peer, sluice_conn_transport_name (conn));
      sluice_conn_close_internal (conn, FALSE);
      return;
    }
  conn->opened = TRUE;
  conn->conn_state = state;
  if (conn->pending > 0)
    sluice_conn_flush (conn);
  sluice_conn_update_interest (conn);
}

static void
conn_handshake (SluiceConnection *conn)
{
  g_autofree char *reason = NULL;
  int rc, tries = 0;

  do
    rc = gnutls_handshake (conn->tls);
  while (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal (rc) && ++tries < 8);

  if (rc == GNUTLS_E_AGAIN || (rc < 0 && !gnutls_error_is_fatal (rc)))
    {
      conn->handshake_writes = gnutls_record_get_direction (conn->tls) == 1;
      sluice_conn_update_interest (conn);
      return;
    }
  if (rc < 0)
    {
      g_message ("TLS handshake with %s on %s [transport.%s] failed: %s", conn->peer,
                 conn->local, sluice_conn_transport_name (conn), gnutls_strerror (rc));
      sluice_conn_close_internal (conn, TRUE);
      return;
    }

  conn_clear_timer (conn);
  if (!sluice_tls_server_verify_peer (conn->listener->tls, conn->tls, &reason))
    {
      g_message ("TLS client certificate of %s on %s [transport.%s] rejected: %s", conn->peer,
                 conn->local, sluice_conn_transport_name (conn), reason);
      sluice_conn_close_internal (conn, TRUE);
      return;
    }
  conn->peer_certs = sluice_tls_session_get_peer_certs (conn->tls);
  conn->state = CONN_OPEN;
  conn->handshake_writes = FALSE;
  if (g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN) == FALSE)
    {
      char *desc = gnutls_session_get_desc (conn->tls);

      g_debug ("connection %" G_GUINT64_FORMAT " from %s: TLS %s, %u client certificates",
               conn->id, conn->peer, desc, conn->peer_certs != NULL ? conn->peer_certs->len : 0);
      gnutls_free (desc);
    }
  sluice_conn_open_transport (conn);
  if (conn->state == CONN_OPEN && gnutls_record_check_pending (conn->tls) > 0)
    {
      conn->want_read = TRUE;
      sluice_conn_mark_dirty (conn);
    }
}

static void
conn_ready (gpointer user_data, guint32 events)
{
  SluiceConnection *conn = sluice_connection_ref (user_data);

  switch (conn->state)
    {
    case CONN_HANDSHAKE:
      conn_handshake (conn);
      break;
    case CONN_OPEN:
    case CONN_FLUSHING:
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && conn->pending > 0)
        sluice_conn_flush (conn);
      if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn->state == CONN_OPEN
          && !conn->paused)
        conn_read (conn);
      else if ((events & (EPOLLERR | EPOLLHUP)) && conn->pending == 0
               && conn->state != CONN_DONE)
        /* Nothing to read or write would notice the error. */
        sluice_conn_close_internal (conn, TRUE);
      /* Writes made by the input callback go out now, in one writev. */
      if (conn->pending > 0 && !conn->want_write)
        sluice_conn_flush (conn);
      break;
    case CONN_LINGER:
      conn_linger_read (conn);
      break;
    case CONN_DONE:
      break;
    }
  if (conn->state != CONN_DONE)
    sluice_conn_update_interest (conn);
  sluice_connection_unref (conn);
}

SluiceConnection *
sluice_conn_new (SluiceIoWorker *worker, SluiceListener *listener, int fd)
{
  SluiceConnection *conn = g_new0 (SluiceConnection, 1);

  conn->ref_count = 1;   /* the worker's, dropped when gone */
  conn->id = __atomic_fetch_add (&next_connection_id, 1, __ATOMIC_RELAXED);
  conn->worker = worker;
  conn->listener = sluice_listener_ref (listener);
  conn->fd = fd;
  conn->max_input = DEFAULT_MAX_INPUT;
  g_queue_init (&conn->output);
  conn->link.data = conn;
  g_queue_push_tail_link (&worker->connections, &conn->link);
  g_atomic_int_inc (&worker->io->n_connections);
  return conn;
}

void
sluice_connection_accept (SluiceIoWorker *worker, SluiceListener *listener, int fd,
                          const struct sockaddr *peer, socklen_t peer_len)
{
  SluiceConnection *conn = sluice_conn_new (worker, listener, fd);
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  int one = 1;

  conn->peer = sluice_io_format_address (peer, peer_len);
  if (getsockname (fd, (struct sockaddr *) &ss, &sslen) == 0)
    conn->local = sluice_io_format_address ((struct sockaddr *) &ss, sslen);
  else
    conn->local = g_strdup (listener->address);
  /* Protocols here answer small requests; Nagle would delay every answer. */
  (void) setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sluice_epoll_watch_init (&conn->watch, fd, conn_ready, conn);
  sluice_epoll_source_add (worker->epoll, &conn->watch, 0, 0, NULL);

  g_debug ("connection %" G_GUINT64_FORMAT " from %s accepted on %s [transport.%s]", conn->id,
           conn->peer, conn->local, listener->transport_name);

  if (listener->tls != NULL)
    {
      g_autoptr(GError) error = NULL;

      conn->state = CONN_HANDSHAKE;
      conn->tls = sluice_tls_server_session_new (listener->tls, fd, &error);
      if (conn->tls == NULL)
        {
          g_warning ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: %s", conn->id,
                     conn->peer, listener->transport_name, error->message);
          sluice_conn_close_internal (conn, TRUE);
          return;
        }
      conn_set_timer (conn, worker->io->handshake_timeout_ms, handshake_timeout);
      conn_handshake (conn);
    }
  else
    {
      conn->state = CONN_OPEN;
      sluice_conn_open_transport (conn);
    }
}

/* Deferred work of one connection, outside every transport callback. */
static void
conn_process (SluiceConnection *conn)
{
  if (conn->want_read && conn->state == CONN_OPEN && !conn->paused && !conn->close_requested)
    {
      if (conn->carrier_ops != NULL)
        sluice_conn_deliver (conn, NULL, 0);
      else
        conn_read (conn);
    }
  if (conn->state == CONN_OPEN || conn->state == CONN_FLUSHING)
    {
      if (conn->pending > 0 && !conn->want_write)
        sluice_conn_flush (conn);
      else if (conn->state == CONN_FLUSHING && conn->pending == 0)
        sluice_conn_shutdown (conn);
      else if (conn->congested && conn->carrier_ops != NULL)
        sluice_conn_flush (conn);   /* the carrier progressed: drained? */
    }
  if (conn->close_requested && !conn->closed_notified)
    {
      conn->closed_notified = TRUE;
      if (conn->opened)
        {
          gpointer state = g_steal_pointer (&conn->conn_state);

          /* The transport frees a read_into() buffer with its state. */
          conn->sink = NULL;
          conn->sink_filled = NULL;
          conn->sink_data = NULL;
          conn->listener->vtable->connection_closed (state, conn);
        }
    }
  if (conn->closed_notified && conn->state == CONN_LINGER && !conn->released)
    conn_release (conn);
  if (conn->state == CONN_DONE && conn->closed_notified && !conn->gone)
    conn_gone (conn);
}

void
sluice_io_worker_post_dispatch (gpointer data)
{
  SluiceIoWorker *worker = data;
  GQueue batch = worker->dirty;
  SluiceConnection *conn;

  /* Work added while this batch runs (a drained callback writing again)
   * goes to the fresh queue and runs on the next iteration. */
  g_queue_init (&worker->dirty);
  while ((conn = g_queue_pop_head (&batch)) != NULL)
    {
      conn->dirty = FALSE;
      conn_process (conn);
      sluice_connection_unref (conn);
    }
}

void
sluice_io_worker_close_connections (SluiceIoWorker *worker, gpointer transport, gboolean abort)
{
  GList *copy = NULL;

  for (GList *l = worker->connections.head; l != NULL; l = l->next)
    {
      SluiceConnection *conn = l->data;

      if (transport == NULL || conn->listener->transport == transport)
        copy = g_list_prepend (copy, sluice_connection_ref (conn));
    }
  for (GList *l = copy; l != NULL; l = l->next)
    {
      SluiceConnection *conn = l->data;

      sluice_conn_close_internal (conn, abort);
      if (abort)
        conn_process (conn);
    }
  g_list_free_full (copy, (GDestroyNotify) sluice_connection_unref);
}

/* --- the SDK's SluiceConnection calls --- */

SluiceConnection *
sluice_connection_ref (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  g_atomic_int_inc (&connection->ref_count);
  return connection;
}

void
sluice_connection_unref (SluiceConnection *connection)
{
  if (connection == NULL || !g_atomic_int_dec_and_test (&connection->ref_count))
    return;
  /* Only reached once gone (the worker's ref is the last of the loop's), so
   * nothing of the worker is touched here and any thread may free it. */
  sluice_conn_drop_output (connection);
  g_clear_pointer (&connection->input, g_byte_array_unref);
  g_clear_pointer (&connection->peer_certs, g_ptr_array_unref);
  if (connection->tls != NULL)
    gnutls_deinit (connection->tls);
  g_free (connection->peer);
  g_free (connection->local);
  sluice_listener_unref (connection->listener);
  g_free (connection);
}

void
sluice_connection_close (SluiceConnection *connection, gboolean abort)
{
  g_return_if_fail (connection != NULL);
  if (connection->state == CONN_DONE || (connection->close_requested && !abort))
    return;
  sluice_conn_close_internal (connection, abort);
}

gboolean
sluice_connection_is_closed (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, TRUE);
  return connection->close_requested;
}

void
sluice_connection_pause (SluiceConnection *connection)
{
  g_return_if_fail (connection != NULL);
  if (connection->close_requested || connection->paused)
    return;
  connection->paused = TRUE;
  if (connection->carrier_ops != NULL)
    {
      if (connection->carrier_ops->pause != NULL)
        connection->carrier_ops->pause (connection->carrier);
    }
  else
    sluice_conn_update_interest (connection);
}

void
sluice_connection_resume (SluiceConnection *connection)
{
  g_return_if_fail (connection != NULL);
  if (connection->close_requested || !connection->paused)
    return;
  connection->paused = FALSE;
  /* Leftover input (or records GnuTLS buffered) is presented again even if
   * no new byte arrives. */
  if ((connection->input != NULL && connection->input->len > 0) || connection->tls != NULL)
    {
      connection->want_read = TRUE;
      sluice_conn_mark_dirty (connection);
    }
  if (connection->carrier_ops != NULL)
    {
      if (connection->carrier_ops->resume != NULL)
        connection->carrier_ops->resume (connection->carrier);
    }
  else
    sluice_conn_update_interest (connection);
}

void
sluice_connection_read_into (SluiceConnection *connection, guint8 *buf, gsize len,
                             SluiceInputFilled filled, gpointer user_data)
{
  g_return_if_fail (connection != NULL);
  g_return_if_fail (buf != NULL && len > 0);
  g_return_if_fail (filled != NULL);
  g_return_if_fail (connection->sink == NULL);
  connection->sink = buf;
  connection->sink_len = len;
  connection->sink_have = 0;
  connection->sink_filled = filled;
  connection->sink_data = user_data;
}

void
sluice_connection_set_max_input (SluiceConnection *connection, gsize max)
{
  g_return_if_fail (connection != NULL);
  connection->max_input = max;
}

const char *
sluice_connection_get_peer (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  return connection->peer;
}

const char *
sluice_connection_get_local (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  return connection->local;
}

gboolean
sluice_connection_is_tls (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, FALSE);
  if (connection->carrier_ops != NULL)
    return connection->carrier_tls;
  return connection->listener->tls != NULL;
}

GPtrArray *
sluice_connection_get_peer_certs (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  return connection->peer_certs;
}

GMainContext *
sluice_connection_get_context (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  return connection->worker->context;
}

guint64
sluice_connection_get_id (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, 0);
  return connection->id;
}

gpointer
sluice_connection_get_transport (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  return connection->listener->transport;
}

guint
sluice_connection_get_worker_index (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, 0);
  return connection->worker->index;
}
