/* transport-kafka — one client connection: framing (int32 size, bounded by
 * max-request), decoding, dispatch to the handlers, and answers written in
 * request order (Kafka requires it) whatever order the handlers complete
 * in. Everything here runs on the connection's worker thread.
 *
 * Identity: the principal SASL authenticates (kafka-handlers-sasl.c); a
 * client that does no SASL acts, from loopback only, as the
 * `anonymous-policy` policy, or else as whatever the auth chain gives
 * without credentials ([auth] allow-anonymous), or as nobody (every
 * operation refused by the host's checks). A revoked principal closes the
 * connection.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"

#include <string.h>

/* Requests being answered per connection before reading pauses: bounded
 * memory for a client that pipelines faster than appends complete.
 * librdkafka keeps at most 1000000 in flight but 5 per partition for
 * idempotence; reading resumes below half of it. */
#define KAFKA_MAX_INFLIGHT 512
/* And at most this many request bytes (at least one max-request): 512
 * requests of 100 MiB would be no bound at all. */
#define KAFKA_MAX_INFLIGHT_BYTES (64 << 20)

struct _KafkaConn {
  gint ref_count;
  KafkaTransport *transport;
  SluiceConnection *connection;  /* NULL once closed */
  SluicePrincipal *principal;
  guint watch_id;
  gboolean closing;              /* a fatal answer is queued: ignore input */
  gboolean paused_inflight;
  gboolean paused_output;
  gsize inflight_bytes;          /* frames of requests not yet answered */
  gboolean tried_anonymous;
  GQueue pending;                /* KafkaPending*, request order */
  char *broker_host;
  gint32 broker_port;
  gpointer sasl;                 /* kafka-handlers-sasl.c */
  GList *group_waits;            /* kafka-handlers-groups.c */
  /* A large request still arriving is gathered here, in the buffer that
   * becomes its frame, rather than in the connection's input buffer: its
   * bytes are copied once on their way to storage, not three times. */
  guint8 *partial;               /* a large request's frame, being read into */
  gsize partial_len;
  guint deferred;                /* Produce requests waiting (kafka-handlers.c) */
};

/* Requests at least this large are gathered in their own buffer. */
#define KAFKA_GATHER_MIN (64 * 1024)

struct _KafkaPending {
  KafkaConn *conn;               /* a ref */
  gint16 api_key;
  gint32 correlation_id;
  gboolean done;
  gsize bytes;                   /* the request's frame */
  GPtrArray *segments;           /* the encoded answer; NULL: none */
  GCancellable *cancellable;
};

KafkaConn *
kafka_conn_ref (KafkaConn *conn)
{
  conn->ref_count++;
  return conn;
}

void
kafka_conn_unref (KafkaConn *conn)
{
  /* Only touched on the connection's worker: no atomics. */
  if (--conn->ref_count > 0)
    return;
  g_clear_pointer (&conn->principal, sluice_principal_unref);
  g_clear_pointer (&conn->sasl, kafka_sasl_session_free);
  g_free (conn->broker_host);
  g_free (conn->partial);
  g_free (conn);
}

guint
kafka_conn_deferred (KafkaConn *conn)
{
  return conn->deferred;
}

void
kafka_conn_deferred_add (KafkaConn *conn, gint delta)
{
  conn->deferred += delta;
}

void
kafka_conn_track_wait (KafkaConn *conn, gpointer wait)
{
  conn->group_waits = g_list_prepend (conn->group_waits, wait);
}

void
kafka_conn_untrack_wait (KafkaConn *conn, gpointer wait)
{
  conn->group_waits = g_list_remove (conn->group_waits, wait);
}

gpointer *
kafka_conn_sasl_slot (KafkaConn *conn)
{
  return &conn->sasl;
}

KafkaTransport *
kafka_conn_get_transport (KafkaConn *conn)
{
  return conn->transport;
}

static void conn_authenticate_anonymous (KafkaConn *conn);

SluicePrincipal *
kafka_conn_get_principal (KafkaConn *conn)
{
  /* Asked only when a request needs an identity: a client that does SASL
   * first never makes the auth chain log an anonymous refusal. */
  if (conn->principal == NULL && !conn->tried_anonymous && conn->connection != NULL)
    conn_authenticate_anonymous (conn);
  return conn->principal;
}

guint64
kafka_conn_get_id (KafkaConn *conn)
{
  return conn->connection != NULL ? sluice_connection_get_id (conn->connection) : 0;
}

GMainContext *
kafka_conn_get_context (KafkaConn *conn)
{
  return conn->connection != NULL ? sluice_connection_get_context (conn->connection) : NULL;
}

const char *
kafka_conn_get_peer (KafkaConn *conn)
{
  return conn->connection != NULL ? sluice_connection_get_peer (conn->connection) : "-";
}

void
kafka_conn_get_broker (KafkaConn *conn, const char **host, gint32 *port)
{
  *host = conn->broker_host;
  *port = conn->broker_port;
}

static void
conn_revoked (const char *reason, gpointer user_data)
{
  KafkaConn *conn = user_data;
  g_autofree char *why = g_strdup_printf ("credentials revoked: %s",
                                          reason != NULL ? reason : "");

  conn->watch_id = 0;
  kafka_conn_fail (conn, why);
}

void
kafka_conn_set_principal (KafkaConn *conn, SluicePrincipal *principal)
{
  KafkaTransport *transport = conn->transport;

  if (conn->watch_id != 0)
    sluice_host_unwatch_principal (transport->host, conn->watch_id);
  conn->watch_id = 0;
  g_clear_pointer (&conn->principal, sluice_principal_unref);
  conn->principal = principal;
  if (principal != NULL)
    conn->watch_id = sluice_host_watch_principal (transport->host, principal, conn_revoked,
                                                  conn);
}

static void
conn_close (KafkaConn *conn)
{
  conn->closing = TRUE;
  if (conn->connection != NULL)
    sluice_connection_close (conn->connection, FALSE);
}

void
kafka_conn_fail (KafkaConn *conn, const char *why)
{
  if (conn->closing || conn->connection == NULL)
    return;
  sluice_info (conn->transport->instance_name, "closing connection %" G_GUINT64_FORMAT
               " (%s): %s", kafka_conn_get_id (conn), kafka_conn_get_peer (conn), why);
  conn_close (conn);
}

/* "host:port" or "[v6]:port" into host and port. */
static gboolean
split_host_port (const char *text, char **host, gint32 *port)
{
  const char *colon = strrchr (text, ':');
  guint64 p;

  if (colon == NULL || !g_ascii_string_to_unsigned (colon + 1, 10, 0, 65535, &p, NULL))
    return FALSE;
  if (text[0] == '[' && colon > text + 1 && colon[-1] == ']')
    *host = g_strndup (text + 1, colon - text - 2);
  else
    *host = g_strndup (text, colon - text);
  *port = (gint32) p;
  return TRUE;
}

static gboolean
is_loopback (const char *peer)
{
  return g_str_has_prefix (peer, "127.") || g_str_has_prefix (peer, "[::1]")
         || g_str_has_prefix (peer, "::1");
}

/* The identity a connection has before (or without) SASL. */
static void
conn_authenticate_default (KafkaConn *conn)
{
  KafkaTransport *transport = conn->transport;
  const char *peer = sluice_connection_get_peer (conn->connection);
  g_autoptr (GError) error = NULL;
  SluicePrincipal *principal = NULL;
  g_autofree char *anonymous_key = kafka_transport_anonymous_key (transport);

  if (anonymous_key != NULL && is_loopback (peer))
    {
      SluiceCredentials credentials = { 0 };

      credentials.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
      credentials.protocol = "kafka";
      credentials.peer = peer;
      credentials.username = transport->options->anonymous_policy;
      credentials.password = anonymous_key;
      principal = sluice_host_authenticate (transport->host, &credentials, &error);
      if (principal == NULL)
        sluice_warning (transport->instance_name, "anonymous-policy '%s' does not "
                        "authenticate: %s", transport->options->anonymous_policy,
                        error->message);
    }
  if (principal != NULL)
    kafka_conn_set_principal (conn, principal);
}

static void
conn_authenticate_anonymous (KafkaConn *conn)
{
  KafkaTransport *transport = conn->transport;
  SluicePrincipal *principal;

  /* Anonymous when [auth] allow-anonymous says so; otherwise requests are
   * refused per operation until SASL is done. */
  conn->tried_anonymous = TRUE;
  principal = sluice_host_authenticate (transport->host, NULL, NULL);
  if (principal != NULL)
    kafka_conn_set_principal (conn, principal);
}

/* --- answers in order --- */

static gsize
inflight_limit (KafkaConn *conn)
{
  return MAX (KAFKA_MAX_INFLIGHT_BYTES, conn->transport->options->max_request);
}

static void
conn_update_reading (KafkaConn *conn)
{
  gboolean want_pause;

  if (conn->connection == NULL || conn->closing)
    return;
  if (conn->paused_inflight && conn->pending.length < KAFKA_MAX_INFLIGHT / 2
      && conn->inflight_bytes < inflight_limit (conn) / 2)
    conn->paused_inflight = FALSE;
  want_pause = conn->paused_inflight || conn->paused_output;
  if (want_pause)
    sluice_connection_pause (conn->connection);
  else
    sluice_connection_resume (conn->connection);
}

static void
pending_free (KafkaPending *pending)
{
  pending->conn->inflight_bytes -= pending->bytes;
  g_clear_pointer (&pending->segments, g_ptr_array_unref);
  g_clear_object (&pending->cancellable);
  kafka_conn_unref (pending->conn);
  g_free (pending);
}

static void
conn_flush (KafkaConn *conn)
{
  KafkaPending *pending;

  while ((pending = g_queue_peek_head (&conn->pending)) != NULL && pending->done)
    {
      g_queue_pop_head (&conn->pending);
      if (conn->connection != NULL && pending->segments != NULL)
        for (guint i = 0; i < pending->segments->len; i++)
          sluice_connection_write_bytes (conn->connection, pending->segments->pdata[i]);
      pending_free (pending);
    }
  if (conn->connection != NULL && !conn->paused_output
      && sluice_connection_is_congested (conn->connection))
    conn->paused_output = TRUE;
  conn_update_reading (conn);
}

KafkaConn *
kafka_pending_get_conn (KafkaPending *pending)
{
  return pending->conn;
}

GCancellable *
kafka_pending_get_cancellable (KafkaPending *pending)
{
  if (pending->cancellable == NULL)
    pending->cancellable = g_cancellable_new ();
  return pending->cancellable;
}

gboolean
kafka_pending_is_cancelled (KafkaPending *pending)
{
  return pending->conn->connection == NULL;
}

void
kafka_pending_complete (KafkaPending *pending, KafkaResponse *response)
{
  KafkaConn *conn = pending->conn;

  g_return_if_fail (!pending->done);
  pending->done = TRUE;
  if (response != NULL)
    {
      if (conn->connection != NULL)
        pending->segments = kafka_response_encode (response);
      kafka_response_free (response);
    }
  sluice_counter_add (conn->transport->requests, 1);
  /* Freeing the last answer may drop the last ref of a closed connection. */
  kafka_conn_ref (conn);
  conn_flush (conn);
  kafka_conn_unref (conn);
}

/* --- requests --- */

static void
conn_answer_api_versions_error (KafkaConn *conn, KafkaPending *pending,
                                const KafkaRequestHeader *header)
{
  /* A version we do not know: the protocol guide's answer is v0 with
   * UNSUPPORTED_VERSION and our ranges, so the client retries with one. */
  KafkaResponse *response = kafka_response_new (KAFKA_API_API_VERSIONS, 0,
                                                header->correlation_id);
  KafkaApiVersionRange *apis;
  guint n = 0, n_table;
  const KafkaApiInfo *table = kafka_api_table (&n_table);

  apis = kafka_response_new0 (response, KafkaApiVersionRange, n_table);
  for (guint i = 0; i < n_table; i++)
    {
      gint16 min, max;

      if (kafka_handler_lookup (table[i].api_key, &min, &max) == NULL)
        continue;
      apis[n].api_key = table[i].api_key;
      apis[n].min_version = min;
      apis[n].max_version = max;
      n++;
    }
  response->api_versions.error_code = KAFKA_ERR_UNSUPPORTED_VERSION;
  response->api_versions.apis = apis;
  response->api_versions.n_apis = n;
  kafka_pending_complete (pending, response);
}

static KafkaPending *
conn_queue (KafkaConn *conn, const KafkaRequestHeader *header)
{
  KafkaPending *pending = g_new0 (KafkaPending, 1);

  pending->conn = kafka_conn_ref (conn);
  pending->api_key = header != NULL ? header->api_key : -1;
  pending->correlation_id = header != NULL ? header->correlation_id : -1;
  g_queue_push_tail (&conn->pending, pending);
  return pending;
}

KafkaPending *
kafka_conn_queue_raw (KafkaConn *conn)
{
  return conn_queue (conn, NULL);
}

void
kafka_pending_complete_bytes (KafkaPending *pending, GBytes *frame)
{
  KafkaConn *conn = pending->conn;

  g_return_if_fail (!pending->done);
  pending->done = TRUE;
  pending->segments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_ptr_array_add (pending->segments, g_bytes_ref (frame));
  kafka_conn_ref (conn);
  conn_flush (conn);
  kafka_conn_unref (conn);
}

/* One whole frame (without its size field). FALSE: the connection is being
 * closed. */
static gboolean
conn_handle_frame (KafkaConn *conn, GBytes *frame_in)
{
  KafkaTransport *transport = conn->transport;
  g_autoptr (GBytes) frame = frame_in;
  gsize len;
  const guint8 *data = g_bytes_get_data (frame, &len);
  KafkaRequest *request;
  g_autoptr (GError) error = NULL;
  KafkaHandlerFunc handler = NULL;
  gint16 min = 0, max = -1;

  if (conn->sasl != NULL && kafka_sasl_take_raw_frame (conn, data, len))
    return !conn->closing;
  request = kafka_request_new (frame);

  if (kafka_request_decode (request, &error))
    {
      handler = kafka_handler_lookup (request->header.api_key, &min, &max);
      if (handler == NULL || request->header.api_version < min
          || request->header.api_version > max)
        {
          g_clear_error (&error);
          g_set_error (&error, KAFKA_CODEC_ERROR, handler == NULL
                       ? KAFKA_CODEC_ERROR_UNKNOWN_API : KAFKA_CODEC_ERROR_UNSUPPORTED_VERSION,
                       "%s v%d is not served here", kafka_api_name (request->header.api_key),
                       request->header.api_version);
          handler = NULL;
        }
    }
  if (handler != NULL)
    {
      KafkaPending *pending = conn_queue (conn, &request->header);

      pending->bytes = len;
      conn->inflight_bytes += len;

      handler (conn, pending, request);
      return !conn->closing;
    }

  if (request->header_ok && request->header.api_key == KAFKA_API_API_VERSIONS
      && g_error_matches (error, KAFKA_CODEC_ERROR, KAFKA_CODEC_ERROR_UNSUPPORTED_VERSION))
    {
      KafkaPending *pending = conn_queue (conn, &request->header);

      sluice_debug (transport->instance_name, "connection %" G_GUINT64_FORMAT ": %s",
                    kafka_conn_get_id (conn), error->message);
      conn_answer_api_versions_error (conn, pending, &request->header);
      kafka_request_free (request);
      return TRUE;
    }
  /* Anything else the protocol answers by closing: the client cannot tell
   * where an answer to a request it framed wrongly would begin. */
  if (g_error_matches (error, KAFKA_CODEC_ERROR, KAFKA_CODEC_ERROR_MALFORMED))
    sluice_counter_add (transport->malformed, 1);
  sluice_info (transport->instance_name, "closing connection %" G_GUINT64_FORMAT
               " (%s, client '%s'): %s", kafka_conn_get_id (conn), kafka_conn_get_peer (conn),
               request->header.client_id != NULL ? request->header.client_id : "",
               error->message);
  kafka_request_free (request);
  conn_close (conn);
  return FALSE;
}

/* --- the vtable's connection slots --- */

gpointer
kafka_conn_open (KafkaTransport *transport, SluiceConnection *connection)
{
  KafkaConn *conn = g_new0 (KafkaConn, 1);
  const char *broker = transport->options->advertised;

  conn->ref_count = 1;
  conn->transport = transport;
  conn->connection = connection;
  g_queue_init (&conn->pending);
  if (broker == NULL)
    broker = sluice_connection_get_local (connection);
  if (broker == NULL || !split_host_port (broker, &conn->broker_host, &conn->broker_port))
    {
      g_free (conn->broker_host);
      conn->broker_host = g_strdup (sluice_host_get_hostname (transport->host));
      conn->broker_port = 9092;
    }
  /* One whole request plus one read: a larger size field is refused as soon
   * as it arrives. */
  sluice_connection_set_max_input (connection, transport->options->max_request + 65536);
  sluice_counter_add (transport->connections, 1);
  conn_authenticate_default (conn);
  return conn;
}

/* The rest of a large request arrived in its frame buffer. */
static void
conn_partial_filled (SluiceConnection *connection, gpointer user_data)
{
  KafkaConn *conn = user_data;

  kafka_conn_ref (conn);
  if (!conn->closing && conn->connection != NULL)
    conn_handle_frame (conn, g_bytes_new_take (g_steal_pointer (&conn->partial),
                                               conn->partial_len));
  kafka_conn_unref (conn);
}

gsize
kafka_conn_input (KafkaConn *conn, const guint8 *data, gsize len)
{
  KafkaTransport *transport = conn->transport;
  gsize pos = 0;
  gsize result;

  kafka_conn_ref (conn);
  while (!conn->closing && conn->connection != NULL && pos < len)
    {
      gsize size;
      KafkaFrameStatus status;

      if (conn->pending.length >= KAFKA_MAX_INFLIGHT
          || conn->inflight_bytes >= inflight_limit (conn))
        {
          conn->paused_inflight = TRUE;
          conn_update_reading (conn);
          break;
        }
      status = kafka_frame_check (data + pos, len - pos, transport->options->max_request,
                                  &size);
      if (status == KAFKA_FRAME_NEED_MORE)
        {
          /* A large request: the core reads the rest straight into its own
           * frame buffer, which goes on to storage as it is. */
          if (size >= KAFKA_GATHER_MIN)
            {
              gsize have = len - pos - 4;

              conn->partial = g_malloc (size);
              conn->partial_len = size;
              memcpy (conn->partial, data + pos + 4, have);
              pos = len;
              sluice_connection_read_into (conn->connection, conn->partial + have, size - have,
                                           conn_partial_filled, conn);
            }
          break;
        }
      if (status != KAFKA_FRAME_COMPLETE)
        {
          sluice_counter_add (transport->malformed, 1);
          sluice_info (transport->instance_name, "closing connection %" G_GUINT64_FORMAT
                       " (%s): %s", kafka_conn_get_id (conn), kafka_conn_get_peer (conn),
                       status == KAFKA_FRAME_TOO_LARGE
                         ? "request larger than max-request" : "request shorter than a header");
          conn_close (conn);
          break;
        }
      if (!conn_handle_frame (conn, g_bytes_new (data + pos + 4, size)))
        break;
      pos += 4 + size;
    }
  /* After a fatal answer the rest is not looked at. */
  result = conn->closing ? len : pos;
  kafka_conn_unref (conn);
  return result;
}

void
kafka_conn_drained (KafkaConn *conn)
{
  conn->paused_output = FALSE;
  conn_update_reading (conn);
}

void
kafka_conn_closed (KafkaConn *conn)
{
  KafkaTransport *transport = conn->transport;

  sluice_counter_add (transport->connections, -1);
  conn->connection = NULL;
  conn->closing = TRUE;
  if (conn->watch_id != 0)
    sluice_host_unwatch_principal (transport->host, conn->watch_id);
  conn->watch_id = 0;
  /* Joins and syncs waiting for other members are dropped. */
  {
    GList *waits = g_steal_pointer (&conn->group_waits);

    for (GList *l = waits; l != NULL; l = l->next)
      kafka_groups_forget_wait (transport, l->data);
    g_list_free (waits);
  }
  /* Long polls end now; their handlers complete the pending answers, which
   * hold their own refs and are dropped unwritten. */
  for (GList *l = conn->pending.head; l != NULL; l = l->next)
    {
      KafkaPending *pending = l->data;
      if (pending->cancellable != NULL)
        g_cancellable_cancel (pending->cancellable);
    }
  kafka_conn_unref (conn);
}
