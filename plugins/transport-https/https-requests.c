/* transport-https — every request's way through a worker's SoupServer:
 * body limits before the body is read, routing, requests paused while the
 * core works for them, and the counters of /metrics.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <string.h>

/* A connection whose request was refused for its size: the answer is
 * written, then whatever the client still sends is read and dropped (up to a
 * budget and a deadline) before closing, so that closing with unread input
 * does not reset the connection before the client reads the answer. */
typedef struct {
  HttpsServer *server;         /* a ref */
  GList link;                  /* in server->drains */
  GIOStream *stream;
  char *response;
  gsize response_len;
  guint64 budget;
  GCancellable *cancellable;
  GSource *timer;
  guint8 buf[16384];
} HttpsDrain;

#define DRAIN_TIMEOUT_S 5

static void
drain_free (HttpsDrain *d)
{
  g_queue_unlink (&d->server->drains, &d->link);
  if (d->timer)
    {
      g_source_destroy (d->timer);
      g_source_unref (d->timer);
    }
  g_object_unref (d->cancellable);
  g_object_unref (d->stream);
  g_free (d->response);
  https_server_unref (d->server);
  g_free (d);
}

static void
drain_closed (GObject *source, GAsyncResult *res, gpointer data)
{
  g_io_stream_close_finish (G_IO_STREAM (source), res, NULL);
  drain_free (data);
}

static void
drain_close (HttpsDrain *d)
{
  if (g_cancellable_is_cancelled (d->cancellable))
    {
      /* Teardown or deadline: no more waiting on this client. */
      g_io_stream_close (d->stream, NULL, NULL);
      drain_free (d);
      return;
    }
  g_io_stream_close_async (d->stream, G_PRIORITY_DEFAULT, NULL, drain_closed, d);
}

static void
drain_read (GObject *source, GAsyncResult *res, gpointer data)
{
  HttpsDrain *d = data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, NULL);

  if (n <= 0 || (guint64) n >= d->budget)
    {
      drain_close (d);
      return;
    }
  d->budget -= (guint64) n;
  g_input_stream_read_async (G_INPUT_STREAM (source), d->buf, sizeof d->buf,
                             G_PRIORITY_DEFAULT, d->cancellable, drain_read, d);
}

static void
drain_wrote (GObject *source, GAsyncResult *res, gpointer data)
{
  HttpsDrain *d = data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, NULL, NULL))
    {
      drain_close (d);
      return;
    }
  g_input_stream_read_async (g_io_stream_get_input_stream (d->stream), d->buf, sizeof d->buf,
                             G_PRIORITY_DEFAULT, d->cancellable, drain_read, d);
}

static gboolean
drain_deadline (gpointer data)
{
  HttpsDrain *d = data;

  g_clear_pointer (&d->timer, g_source_unref);
  g_cancellable_cancel (d->cancellable);
  return G_SOURCE_REMOVE;
}

/* Answer 413 at once, without reading the body: take the connection from
 * libsoup (which would otherwise read the whole body first) and write the
 * answer on it ourselves. */
static void
reject_too_large (HttpsServer *server, SoupServerMessage *msg, const char *why)
{
  HttpsTransport *t = server->transport;
  g_autofree char *body = NULL;
  HttpsRoute route;
  GIOStream *stream;
  HttpsDrain *d;

  https_route_parse (g_uri_get_path (soup_server_message_get_uri (msg)), &route);
  body = https_error_body (route.iothub, "MessageTooLarge", why);
  stream = soup_server_message_steal_connection (msg);
  if (!stream)
    {
      https_reply_json (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, g_steal_pointer (&body));
      https_route_clear (&route);
      return;
    }
  https_count_status (t, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
  sluice_counter_add (t->rejected_too_large, 1);

  d = g_new0 (HttpsDrain, 1);
  d->server = https_server_ref (server);
  d->link.data = d;
  g_queue_push_tail_link (&server->drains, &d->link);
  d->stream = stream;
  d->cancellable = g_cancellable_new ();
  d->budget = 2 * t->options.max_body + (1 << 20);
  d->response = g_strdup_printf ("HTTP/1.1 413 Payload Too Large\r\n"
                                 "Content-Type: application/json; charset=utf-8\r\n"
                                 "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                                 "%s%s%s"
                                 "Connection: close\r\n\r\n%s",
                                 strlen (body), route.iothub ? "iothub-errorcode: " : "",
                                 route.iothub ? "MessageTooLarge" : "",
                                 route.iothub ? "\r\n" : "", body);
  d->response_len = strlen (d->response);
  d->timer = g_timeout_source_new_seconds (DRAIN_TIMEOUT_S);
  g_source_set_callback (d->timer, drain_deadline, d, NULL);
  g_source_attach (d->timer, server->context);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (stream), d->response,
                                   d->response_len, G_PRIORITY_DEFAULT, d->cancellable,
                                   drain_wrote, d);
  https_route_clear (&route);
}

static void
on_got_chunk (SoupServerMessage *msg, GBytes *chunk, gpointer data)
{
  HttpsServer *server = data;
  guint64 max = server->transport->options.max_body;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  /* A chunked body is refused as soon as it passes the limit: at most
   * max-body and one chunk is ever held. */
  if ((guint64) body->length > max)
    {
      g_autofree char *why = g_strdup_printf ("the request body is over max-body (%"
                                              G_GUINT64_FORMAT " bytes)", max);
      g_signal_handlers_disconnect_by_func (msg, on_got_chunk, data);
      reject_too_large (server, msg, why);
    }
}

static void
early_request (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
               gpointer data)
{
  HttpsServer *server = data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  guint64 max = server->transport->options.max_body;
  goffset length;

  switch (soup_message_headers_get_encoding (headers))
    {
    case SOUP_ENCODING_CONTENT_LENGTH:
      length = soup_message_headers_get_content_length (headers);
      if (length > 0 && (guint64) length > max)
        {
          g_autofree char *why = g_strdup_printf ("the request body (%" G_GINT64_FORMAT
                                                  " bytes) is over max-body (%"
                                                  G_GUINT64_FORMAT " bytes)",
                                                  (gint64) length, max);
          reject_too_large (server, msg, why);
        }
      break;
    case SOUP_ENCODING_CHUNKED:
    case SOUP_ENCODING_EOF:
      g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), server);
      break;
    default:
      break;
    }
}

/* --- requests waiting for the core --- */

static void
on_request_disconnected (SoupServerMessage *msg, gpointer data)
{
  HttpsRequest *request = data;

  request->gone = TRUE;
}

HttpsRequest *
https_request_new (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route,
                   SluicePrincipal *principal)
{
  HttpsTransport *t = server->transport;
  HttpsRequest *r = g_new0 (HttpsRequest, 1);

  r->server = https_server_ref (server);
  r->msg = g_object_ref (msg);
  r->route = *route;
  memset (route, 0, sizeof *route);
  route->partition = -1;
  r->principal = principal ? sluice_principal_ref (principal) : NULL;
  r->link.data = r;
  g_queue_push_tail_link (&server->requests, &r->link);
  r->disconnected_id = g_signal_connect (msg, "disconnected",
                                         G_CALLBACK (on_request_disconnected), r);
  soup_server_message_pause (msg);
  g_mutex_lock (&t->lock);
  t->inflight++;
  g_mutex_unlock (&t->lock);
  return r;
}

void
https_request_finish (HttpsRequest *r)
{
  HttpsServer *server = r->server;
  HttpsTransport *t = server->transport;

  g_queue_unlink (&server->requests, &r->link);
  g_clear_signal_handler (&r->disconnected_id, r->msg);
  /* A client that went away has no connection left to answer on. */
  if (!r->gone)
    soup_server_message_unpause (r->msg);
  g_object_unref (r->msg);
  g_clear_pointer (&r->principal, sluice_principal_unref);
  g_clear_error (&r->error);
  https_route_clear (&r->route);
  g_free (r);

  g_mutex_lock (&t->lock);
  if (--t->inflight == 0)
    g_cond_broadcast (&t->idle_cond);
  g_mutex_unlock (&t->lock);
  https_server_unref (server);
}

/* --- statuses --- */

static void
on_request_done (SoupServer *soup, SoupServerMessage *msg, gpointer data)
{
  HttpsServer *server = data;
  guint status = soup_server_message_get_status (msg);

  if (status != 0)
    https_count_status (server->transport, status);
  /* libsoup 3.2 takes a 204 (no Content-Length, as RFC 9110 wants) for a
   * response ended by closing, and closes the keep-alive connection after
   * it. Its body was empty by definition: say so before libsoup decides
   * (it does right after this signal). */
  if (status == SOUP_STATUS_NO_CONTENT || status == SOUP_STATUS_NOT_MODIFIED)
    soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                       SOUP_ENCODING_CONTENT_LENGTH);
}

void
https_server_teardown_requests (HttpsServer *server)
{
  for (GList *l = server->drains.head; l; l = l->next)
    g_cancellable_cancel (((HttpsDrain *) l->data)->cancellable);
}

/* --- routing --- */

static void
handle_request (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer data)
{
  HttpsServer *server = data;
  HttpsTransport *t = server->transport;
  const char *method = soup_server_message_get_method (msg);
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  HttpsRoute route;

  if (body->length > 0)
    sluice_counter_add (t->request_bytes, body->length);
  https_route_parse (path, &route);

  if (g_atomic_int_get (&t->stopping))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Connection", "close");
      https_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, route.iothub,
                         "ServiceUnavailable", "the hub is shutting down");
      https_route_clear (&route);
      return;
    }

  switch (route.kind)
    {
    case HTTPS_ROUTE_NONE:
      https_reply_error (msg, SOUP_STATUS_NOT_FOUND, route.iothub, "NotFound",
                         "no such %s: %s %s", route.feature, method, path);
      https_route_clear (&route);
      return;
    case HTTPS_ROUTE_NOT_IMPLEMENTED:
      https_reply_error (msg, SOUP_STATUS_NOT_IMPLEMENTED, route.iothub, "NotImplemented",
                         "%s are not available over HTTPS in this version of Sluice (%s %s)",
                         route.feature, method, path);
      https_route_clear (&route);
      return;
    default:
      break;
    }
  if (!https_route_allows (&route, method))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow",
                                    route.methods);
      https_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, route.iothub, "MethodNotAllowed",
                         "%s is not allowed on %s (allowed: %s)", method, path, route.methods);
      https_route_clear (&route);
      return;
    }

  switch (route.kind)
    {
    case HTTPS_ROUTE_HEALTHZ:
      https_handle_healthz (server, msg, &route);
      break;
    case HTTPS_ROUTE_METRICS:
      https_handle_metrics (server, msg, &route);
      break;
    case HTTPS_ROUTE_DEVICE_EVENTS:
      https_handle_device_events (server, msg, &route);
      break;
    case HTTPS_ROUTE_DEVICE:
      https_handle_registry (server, msg, &route);
      break;
    case HTTPS_ROUTE_DEVICES:
      https_handle_registry_list (server, msg, &route, query);
      break;
    case HTTPS_ROUTE_STREAM:
      https_handle_stream_info (server, msg, &route);
      break;
    case HTTPS_ROUTE_STREAM_SEND:
      https_handle_stream_send (server, msg, &route);
      break;
    case HTTPS_ROUTE_STREAM_PARTITION:
      if (g_str_equal (method, "POST"))
        https_handle_stream_send (server, msg, &route);
      else
        https_handle_stream_read (server, msg, &route, query);
      break;
    case HTTPS_ROUTE_GROUP_OFFSETS:
      https_handle_group_offsets (server, msg, &route);
      break;
    default:
      g_assert_not_reached ();
    }
  https_route_clear (&route);
}

void
https_server_install_handlers (HttpsServer *server)
{
  soup_server_add_early_handler (server->soup, NULL, early_request, server, NULL);
  soup_server_add_handler (server->soup, NULL, handle_request, server, NULL);
  g_signal_connect (server->soup, "request-finished", G_CALLBACK (on_request_done), server);
  g_signal_connect (server->soup, "request-aborted", G_CALLBACK (on_request_done), server);
}
