/* transport-https — accepting connections on a worker and handing them to
 * its SoupServer.
 *
 * The transport accepts itself (rather than libsoup's listener) so that
 * every connection goes to libsoup wrapped in an HttpsStream (see
 * https-stream.c), TLS included: the TLS handshake runs here, with a
 * deadline, before libsoup sees the connection.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"
#include "https-stream.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_MS 100
#define HANDSHAKE_TIMEOUT_S 10

struct _HttpsListener {
  HttpsServer *server;         /* owns this listener */
  GSocket *socket;
  gboolean tls;
  GSource *source;             /* readable: connections wait */
  GSource *retry;              /* out of fds: accept again later */
  gboolean closed;
};

typedef struct {
  HttpsServer *server;         /* a ref */
  GList link;                  /* in server->handshakes */
  GIOStream *tls;
  GSocket *socket;
  GCancellable *cancellable;
  GSource *timer;
} HttpsHandshake;

static void listener_watch (HttpsListener *l);

static void
hand_to_soup (HttpsServer *server, GIOStream *base, GSocket *sock)
{
  g_autoptr (GIOStream) stream = NULL;
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (sock, NULL);
  g_autoptr (GSocketAddress) remote = g_socket_get_remote_address (sock, NULL);
  g_autoptr (GError) error = NULL;

  if (!server->soup)
    return;
  stream = https_stream_new (base, server->transport->connections);
  if (!soup_server_accept_iostream (server->soup, stream, local, remote, &error))
    g_debug ("[transport.%s] connection dropped: %s", server->transport->name,
             error->message);
}

static void
handshake_free (HttpsHandshake *h)
{
  g_queue_unlink (&h->server->handshakes, &h->link);
  if (h->timer)
    {
      g_source_destroy (h->timer);
      g_source_unref (h->timer);
    }
  g_object_unref (h->cancellable);
  g_object_unref (h->tls);
  g_object_unref (h->socket);
  https_server_unref (h->server);
  g_free (h);
}

static void
handshake_done (GObject *source, GAsyncResult *res, gpointer data)
{
  HttpsHandshake *h = data;
  g_autoptr (GError) error = NULL;

  if (g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), res, &error))
    hand_to_soup (h->server, h->tls, h->socket);
  else
    {
      g_debug ("[transport.%s] TLS handshake failed: %s", h->server->transport->name,
               error->message);
      g_io_stream_close (h->tls, NULL, NULL);
    }
  handshake_free (h);
}

static gboolean
handshake_deadline (gpointer data)
{
  HttpsHandshake *h = data;

  g_clear_pointer (&h->timer, g_source_unref);
  g_cancellable_cancel (h->cancellable);
  return G_SOURCE_REMOVE;
}

static void
start_tls (HttpsServer *server, GSocketConnection *conn)
{
  g_autoptr (GError) error = NULL;
  GIOStream *tls = g_tls_server_connection_new (G_IO_STREAM (conn),
                                                server->transport->certificate, &error);
  HttpsHandshake *h;

  if (!tls)
    {
      g_warning ("[transport.%s] cannot start TLS: %s", server->transport->name,
                 error->message);
      return;
    }
  /* Clients often just close; that is not an attack on the response. */
  g_tls_connection_set_require_close_notify (G_TLS_CONNECTION (tls), FALSE);
  h = g_new0 (HttpsHandshake, 1);
  h->server = https_server_ref (server);
  h->link.data = h;
  g_queue_push_tail_link (&server->handshakes, &h->link);
  h->tls = tls;
  h->socket = g_object_ref (g_socket_connection_get_socket (conn));
  h->cancellable = g_cancellable_new ();
  /* A client that never finishes its handshake does not keep its socket. */
  h->timer = g_timeout_source_new_seconds (HANDSHAKE_TIMEOUT_S);
  g_source_set_callback (h->timer, handshake_deadline, h, NULL);
  g_source_attach (h->timer, server->context);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT, h->cancellable,
                                    handshake_done, h);
}

static gboolean
accept_retry (gpointer data)
{
  HttpsListener *l = data;

  g_clear_pointer (&l->retry, g_source_unref);
  if (!l->closed)
    listener_watch (l);
  return G_SOURCE_REMOVE;
}

static gboolean
on_acceptable (GSocket *socket, GIOCondition condition, gpointer data)
{
  HttpsListener *l = data;
  HttpsServer *server = l->server;

  for (int i = 0; i < ACCEPT_BATCH; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) sock = g_socket_accept (l->socket, NULL, &error);
      g_autoptr (GSocketConnection) conn = NULL;

      if (!sock)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return G_SOURCE_CONTINUE;
          /* Out of fds (or the like): the queue stays readable, so stop
           * watching for a moment instead of spinning. */
          g_message ("[transport.%s] accept failed: %s; retrying in %d ms",
                     server->transport->name, error->message, ACCEPT_RETRY_MS);
          g_clear_pointer (&l->source, g_source_unref);
          l->retry = g_timeout_source_new (ACCEPT_RETRY_MS);
          g_source_set_callback (l->retry, accept_retry, l, NULL);
          g_source_attach (l->retry, server->context);
          return G_SOURCE_REMOVE;
        }
      g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
      conn = g_socket_connection_factory_create_connection (sock);
      if (l->tls)
        start_tls (server, conn);
      else
        hand_to_soup (server, G_IO_STREAM (conn), sock);
    }
  return G_SOURCE_CONTINUE;
}

static void
listener_watch (HttpsListener *l)
{
  l->source = g_socket_create_source (l->socket, G_IO_IN, NULL);
  g_source_set_callback (l->source, G_SOURCE_FUNC (on_acceptable), l, NULL);
  g_source_attach (l->source, l->server->context);
}

void
https_listener_free (HttpsListener *l)
{
  https_listener_close (l);
  g_object_unref (l->socket);
  g_free (l);
}

void
https_listener_close (HttpsListener *l)
{
  l->closed = TRUE;
  if (l->source)
    {
      g_source_destroy (l->source);
      g_clear_pointer (&l->source, g_source_unref);
    }
  if (l->retry)
    {
      g_source_destroy (l->retry);
      g_clear_pointer (&l->retry, g_source_unref);
    }
  g_socket_close (l->socket, NULL);
}

void
https_server_listen (HttpsServer *server, GSocket *socket, gboolean tls)
{
  HttpsListener *l = g_new0 (HttpsListener, 1);

  l->server = server;
  l->socket = g_object_ref (socket);
  l->tls = tls;
  g_socket_set_blocking (socket, FALSE);
  g_ptr_array_add (server->listeners, l);
  listener_watch (l);
}

void
https_server_cancel_handshakes (HttpsServer *server)
{
  for (GList *l = server->handshakes.head; l; l = l->next)
    g_cancellable_cancel (((HttpsHandshake *) l->data)->cancellable);
}

/* libsoup keeps a connection alive after a response only while its server
 * has a listener of its own (otherwise it thinks it is shutting down). The
 * transport accepts on its own sockets, so each SoupServer gets one that
 * nobody can reach: a Unix socket whose file is removed right after
 * listen(). */
gboolean
https_server_add_keepalive_anchor (HttpsServer *server, GError **error)
{
  g_autofree char *dir = g_dir_make_tmp ("sluice-https-XXXXXX", error);
  g_autofree char *path = NULL;
  g_autoptr (GSocket) sock = NULL;
  g_autoptr (GSocketAddress) addr = NULL;
  gboolean ok;

  if (!dir)
    return FALSE;
  path = g_build_filename (dir, "s", NULL);
  addr = g_unix_socket_address_new (path);
  sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                       error);
  ok = sock && g_socket_bind (sock, addr, FALSE, error) && g_socket_listen (sock, error)
       && soup_server_listen_socket (server->soup, sock, 0, error);
  g_unlink (path);
  g_rmdir (dir);
  return ok;
}
