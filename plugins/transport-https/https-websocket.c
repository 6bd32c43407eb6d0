/* transport-https — WebSocket upgrades carrying another transport's protocol
 * (DESIGN.md "WebSockets"): `/mqtt` and `/$iothub/websocket` with
 * subprotocol `mqtt`, `/$servicebus/websocket` with `AMQPWSB10`.
 *
 * libsoup does the handshake; the upgraded SoupWebsocketConnection is then
 * handed to the core as the carrier of an adopted SluiceConnection of the
 * transport that serves the subprotocol (sluice_host_adopt_connection), so
 * that transport sees an ordinary connection: binary messages in are its
 * input, its writes go out as binary messages, pause stops reading the
 * socket, and closing sends a close frame after what is queued.
 *
 * libsoup tells nobody how much of what it was given to send is still
 * queued, so the carrier counts the frame bytes it gave libsoup and the
 * bytes the connection's HttpsStream wrote: the difference is the unsent
 * output the core measures congestion on. (Control frames libsoup answers
 * on its own, pongs and the close, are a few bytes the count does not
 * see; it only ever errs towards less.)
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"
#include "https-stream.h"

#include <string.h>

/* A graceful close waits this long for queued frames before the close frame. */
#define CLOSE_FLUSH_TIMEOUT_S 30

typedef struct {
  const char *path;
  const char *protocol;
  const char *plugin;          /* for the error text */
} WsRoute;

static const WsRoute ws_routes[] = {
  { "/mqtt", "mqtt", "mqtt" },
  { "/$iothub/websocket", "mqtt", "mqtt" },
  { "/$servicebus/websocket", "AMQPWSB10", "amqp" },
};

struct _HttpsWebsocket {
  gint ref_count;              /* worker thread only */
  HttpsServer *server;         /* a ref */
  GList link;                  /* in server->websockets while open */
  SoupWebsocketConnection *ws;
  HttpsStream *stream;         /* a ref; NULL: no pause and no unsent count */
  SluiceConnection *conn;      /* the carrier's ref, until the core is done */
  char *protocol;
  guint64 queued;              /* frame bytes given to libsoup */
  guint64 written_base;        /* the stream's count when the frames began */
  gboolean close_pending;      /* graceful close waits for the queued frames */
  gboolean counted;            /* in the sluice_http_websockets gauge */
  GSource *close_timer;
  gulong message_id, closed_id, error_id;
};

static HttpsWebsocket *
ws_ref (HttpsWebsocket *w)
{
  w->ref_count++;
  return w;
}

static void
ws_unref (HttpsWebsocket *w)
{
  if (--w->ref_count > 0)
    return;
  g_assert (w->conn == NULL);
  g_clear_object (&w->stream);
  g_clear_object (&w->ws);
  g_free (w->protocol);
  https_server_unref (w->server);
  g_free (w);
}

static void
ws_clear_timer (HttpsWebsocket *w)
{
  if (w->close_timer)
    {
      g_source_destroy (w->close_timer);
      g_clear_pointer (&w->close_timer, g_source_unref);
    }
}

static gsize
ws_unsent (HttpsWebsocket *w)
{
  guint64 written;

  if (!w->stream)
    return 0;
  written = https_stream_get_written (w->stream) - w->written_base;
  return written >= w->queued ? 0 : (gsize) (w->queued - written);
}

static void
ws_soup_close (HttpsWebsocket *w, gushort code, const char *reason)
{
  ws_clear_timer (w);
  w->close_pending = FALSE;
  if (soup_websocket_connection_get_state (w->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (w->ws, code, reason);
}

/* The core is told the carrier is gone (unless it closed it itself). */
static void
ws_release_conn (HttpsWebsocket *w)
{
  g_autoptr (SluiceConnection) conn = g_steal_pointer (&w->conn);

  if (conn)
    sluice_connection_carrier_closed (conn);
}

/* The WebSocket is gone (libsoup's "closed", or torn down): let go of the
 * core's connection, of libsoup's signals and of the WebSocket. */
static void
ws_finish (HttpsWebsocket *w)
{
  if (!w->link.data)
    return;
  w->link.data = NULL;
  g_queue_unlink (&w->server->websockets, &w->link);
  ws_clear_timer (w);
  w->close_pending = FALSE;
  if (w->stream)
    {
      https_stream_carry (w->stream, NULL, NULL);
      https_stream_set_paused (w->stream, FALSE);
    }
  g_clear_signal_handler (&w->message_id, w->ws);
  g_clear_signal_handler (&w->closed_id, w->ws);
  g_clear_signal_handler (&w->error_id, w->ws);
  ws_release_conn (w);
  if (w->counted)
    sluice_counter_add (w->server->transport->websockets, -1);
  w->counted = FALSE;
  ws_unref (w);   /* the list's */
}

/* --- SluiceCarrierOps: the core's calls, on this worker --- */

static void
carrier_send (gpointer carrier, GBytes *bytes)
{
  HttpsWebsocket *w = carrier;
  gsize len = g_bytes_get_size (bytes);

  if (soup_websocket_connection_get_state (w->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  /* What libsoup writes for it: a server frame is unmasked. */
  w->queued += len + 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8);
  soup_websocket_connection_send_message (w->ws, SOUP_WEBSOCKET_DATA_BINARY, bytes);
}

static gsize
carrier_get_unsent (gpointer carrier)
{
  return ws_unsent (carrier);
}

static void
carrier_pause (gpointer carrier)
{
  HttpsWebsocket *w = carrier;

  g_debug ("[transport.%s] WebSocket %s: reading paused", w->server->transport->name,
           w->protocol);
  if (w->stream)
    https_stream_set_paused (w->stream, TRUE);
}

static void
carrier_resume (gpointer carrier)
{
  HttpsWebsocket *w = carrier;

  g_debug ("[transport.%s] WebSocket %s: reading resumed", w->server->transport->name,
           w->protocol);
  if (w->stream)
    https_stream_set_paused (w->stream, FALSE);
}

static gboolean
close_due (gpointer data)
{
  HttpsWebsocket *w = data;

  g_clear_pointer (&w->close_timer, g_source_unref);
  if (ws_unsent (w) > 0)
    g_debug ("[transport.%s] WebSocket frames still unsent %d s after close; closing",
             w->server->transport->name, CLOSE_FLUSH_TIMEOUT_S);
  ws_soup_close (w, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  return G_SOURCE_REMOVE;
}

/* Send the close frame from the loop after `seconds` (0: at once). */
static void
ws_schedule_close (HttpsWebsocket *w, guint seconds)
{
  ws_clear_timer (w);
  w->close_timer = seconds ? g_timeout_source_new_seconds (seconds) : g_idle_source_new ();
  g_source_set_callback (w->close_timer, close_due, w, NULL);
  g_source_attach (w->close_timer, w->server->context);
}

static void
carrier_close (gpointer carrier, gboolean abort)
{
  HttpsWebsocket *w = carrier;
  g_autoptr (SluiceConnection) conn = g_steal_pointer (&w->conn);

  /* libsoup sends its close frame ahead of queued frames, so a graceful
   * close waits until they are written (on_progress), or a deadline. */
  if (abort || ws_unsent (w) == 0)
    ws_soup_close (w, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  else if (!w->close_pending)
    {
      w->close_pending = TRUE;
      ws_schedule_close (w, CLOSE_FLUSH_TIMEOUT_S);
    }
}

static const SluiceCarrierOps carrier_ops = {
  .send = carrier_send,
  .get_unsent = carrier_get_unsent,
  .pause = carrier_pause,
  .resume = carrier_resume,
  .close = carrier_close,
};

/* --- libsoup's side --- */

static void
on_progress (gpointer data)
{
  HttpsWebsocket *w = data;

  if (w->conn)
    sluice_connection_carrier_progress (w->conn);
  else if (w->close_pending && ws_unsent (w) == 0)
    /* This runs inside libsoup's write, which must finish before its
     * queue takes the close frame: close from the loop. */
    ws_schedule_close (w, 0);
}

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  HttpsWebsocket *w = data;
  g_autoptr (SluiceConnection) conn = NULL;
  gsize len;
  const guint8 *bytes = g_bytes_get_data (message, &len);

  if (!w->conn)
    return;
  if (type != SOUP_WEBSOCKET_DATA_BINARY)
    {
      /* MQTT over WebSockets is binary frames only; so is AMQP's mapping. */
      g_debug ("[transport.%s] WebSocket %s: a text message; closing",
               w->server->transport->name, w->protocol);
      ws_soup_close (w, SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA,
                     "only binary messages carry this protocol");
      ws_release_conn (w);   /* "closed" follows */
      return;
    }
  /* The transport may close from inside: keep both alive for the call. */
  conn = sluice_connection_ref (w->conn);
  ws_ref (w);
  sluice_connection_carrier_input (conn, bytes, len);
  ws_unref (w);
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  HttpsWebsocket *w = data;

  g_debug ("[transport.%s] WebSocket %s closed (code %u)", w->server->transport->name,
           w->protocol, soup_websocket_connection_get_close_code (ws));
  ws_finish (w);
}

static void
on_error (SoupWebsocketConnection *ws, GError *error, gpointer data)
{
  HttpsWebsocket *w = data;

  g_debug ("[transport.%s] WebSocket %s: %s", w->server->transport->name, w->protocol,
           error->message);
}

static char *
format_address (GSocketAddress *addr)
{
  GInetAddress *ip;
  g_autofree char *text = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (addr))
    return g_strdup ("unknown");
  ip = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (addr));
  text = g_inet_address_to_string (ip);
  if (g_inet_address_get_family (ip) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[%s]:%u", text,
                            g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr)));
  return g_strdup_printf ("%s:%u", text,
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr)));
}

/* The client's chain as DER, leaf first; NULL without one. */
static GPtrArray *
peer_chain (SoupServerMessage *msg)
{
  GTlsCertificate *cert = soup_server_message_get_tls_peer_certificate (msg);
  GPtrArray *chain;

  if (!cert)
    return NULL;
  chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (; cert; cert = g_tls_certificate_get_issuer (cert))
    {
      g_autoptr (GByteArray) der = NULL;

      g_object_get (cert, "certificate", &der, NULL);
      if (der)
        g_ptr_array_add (chain, g_bytes_new (der->data, der->len));
    }
  return chain;
}

static void
on_websocket (SoupServer *soup, SoupServerMessage *msg, const char *path,
              SoupWebsocketConnection *ws, gpointer data)
{
  HttpsServer *server = data;
  HttpsTransport *t = server->transport;
  HttpsStream *stream = https_stream_find (soup_websocket_connection_get_io_stream (ws));
  g_autofree char *peer = format_address (soup_server_message_get_remote_address (msg));
  g_autofree char *local = format_address (soup_server_message_get_local_address (msg));
  g_autoptr (GPtrArray) certs = peer_chain (msg);
  g_autoptr (GError) error = NULL;
  const char *protocol = soup_websocket_connection_get_protocol (ws);
  SluiceCarrierInfo info = { 0 };
  HttpsWebsocket *w;

  if (!protocol)
    {
      /* Refused before the handshake; a client that slips through gets a
       * close frame saying why. */
      soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR,
                                       "no subprotocol");
      return;
    }
  w = g_new0 (HttpsWebsocket, 1);
  w->ref_count = 1;   /* the list's, dropped by ws_finish at "closed" */
  w->server = https_server_ref (server);
  w->ws = g_object_ref (ws);
  w->protocol = g_strdup (protocol);
  w->stream = stream ? g_object_ref (stream) : NULL;
  if (w->stream)
    {
      w->written_base = https_stream_get_written (w->stream);
      https_stream_carry (w->stream, on_progress, w);
    }
  else
    g_message ("[transport.%s] WebSocket %s from %s: its stream is unknown; no back-pressure",
               t->name, protocol, peer);
  w->link.data = w;
  g_queue_push_tail_link (&server->websockets, &w->link);
  soup_websocket_connection_set_max_incoming_payload_size (ws, t->options.ws_max_message);
  /* Idle MQTT clients keep their connection alive with PINGREQ; the
   * WebSocket needs no pings of its own. */
  soup_websocket_connection_set_keepalive_interval (ws, 0);
  w->message_id = g_signal_connect (ws, "message", G_CALLBACK (on_message), w);
  w->closed_id = g_signal_connect (ws, "closed", G_CALLBACK (on_closed), w);
  w->error_id = g_signal_connect (ws, "error", G_CALLBACK (on_error), w);

  info.peer = peer;
  info.local = local;
  info.tls = g_strcmp0 (g_uri_get_scheme (soup_server_message_get_uri (msg)), "https") == 0;
  info.peer_certs = certs;
  w->conn = sluice_host_adopt_connection (t->host, protocol, &carrier_ops, w, &info, &error);
  if (!w->conn)
    {
      g_message ("[transport.%s] WebSocket %s from %s refused: %s", t->name, protocol, peer,
                 error->message);
      sluice_counter_add (t->websockets_refused, 1);
      ws_soup_close (w, g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_THROTTLED)
                          ? 1013 /* try again later */ : SOUP_WEBSOCKET_CLOSE_SERVER_ERROR,
                     error->message);
      return;   /* "closed" follows */
    }
  w->counted = TRUE;
  sluice_counter_add (t->websockets, 1);
  g_debug ("[transport.%s] WebSocket %s from %s on %s", t->name, protocol, peer, path);
}

/* The same paths without a proper upgrade, or for a protocol nobody
 * serves: answered here with a reason, before libsoup's handshake. */
static void
websocket_precheck (SoupServer *soup, SoupServerMessage *msg, const char *path,
                    GHashTable *query, gpointer data)
{
  HttpsServer *server = data;
  HttpsTransport *t = server->transport;
  const WsRoute *route = NULL;
  const char *offered;
  g_auto (GStrv) offers = NULL;
  const char *protocols[2] = { NULL, NULL };
  g_autoptr (GError) error = NULL;
  gboolean found = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (ws_routes); i++)
    if (g_str_equal (path, ws_routes[i].path))
      route = &ws_routes[i];
  if (!route)
    {
      https_reply_error (msg, SOUP_STATUS_NOT_FOUND, FALSE, "NotFound", "no such path: %s %s",
                         soup_server_message_get_method (msg), path);
      return;
    }
  if (g_atomic_int_get (&t->stopping) || sluice_host_is_stopping (t->host))
    {
      https_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, FALSE, "ServiceUnavailable",
                         "the hub is shutting down");
      return;
    }
  if (!sluice_host_has_protocol (t->host, route->protocol))
    {
      sluice_counter_add (t->websockets_refused, 1);
      https_reply_error (msg, SOUP_STATUS_NOT_IMPLEMENTED, FALSE, "NotImplemented",
                         "%s over WebSockets needs a [transport.*] section with plugin = %s "
                         "in this hub's configuration", route->protocol, route->plugin);
      return;
    }
  protocols[0] = route->protocol;
  if (!soup_websocket_server_check_handshake (msg, NULL, (char **) protocols, NULL, &error))
    {
      sluice_counter_add (t->websockets_refused, 1);
      https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, FALSE, "BadRequest",
                         "%s accepts only a WebSocket upgrade with subprotocol %s: %s", path,
                         route->protocol, error->message);
      return;
    }
  /* libsoup accepts a client that names no subprotocol at all. */
  offered = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                          "Sec-WebSocket-Protocol");
  offers = g_strsplit_set (offered ? offered : "", ", ", -1);
  for (guint i = 0; offers[i]; i++)
    found = found || g_str_equal (offers[i], route->protocol);
  if (!found)
    {
      sluice_counter_add (t->websockets_refused, 1);
      https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, FALSE, "BadRequest",
                         "%s needs the WebSocket subprotocol %s (Sec-WebSocket-Protocol)", path,
                         route->protocol);
    }
  /* Status still 0: libsoup answers 101 and calls on_websocket. */
}

void
https_server_install_websockets (HttpsServer *server)
{
  /* Frames are counted by size (see above), so no compression. */
  soup_server_remove_websocket_extension (server->soup, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  for (guint i = 0; i < G_N_ELEMENTS (ws_routes); i++)
    {
      char *protocols[2] = { (char *) ws_routes[i].protocol, NULL };

      soup_server_add_handler (server->soup, ws_routes[i].path, websocket_precheck, server,
                               NULL);
      soup_server_add_websocket_handler (server->soup, ws_routes[i].path, NULL, protocols,
                                         on_websocket, server, NULL);
    }
}

void
https_server_close_websockets (HttpsServer *server)
{
  HttpsWebsocket *w;

  while ((w = g_queue_peek_head (&server->websockets)))
    {
      ws_ref (w);
      ws_soup_close (w, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "the hub is shutting down");
      ws_finish (w);
      ws_unref (w);
    }
}
