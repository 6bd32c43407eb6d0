/* transport-https — stream paths: Event Hubs REST send
 * (`POST /{stream}/messages`, single or batch; `.../partitions/{p}/messages`),
 * Sluice's read API (`GET /{stream}`, `GET /{stream}/partitions/{p}/messages`)
 * and consumer-group offsets (`GET|POST /{stream}/consumergroups/{g}/offsets`).
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <string.h>

#define BATCH_CONTENT_TYPE "application/vnd.microsoft.servicebus.json"

/* Authenticate for `{hostname}/{stream}`; on failure the answer is set. */
static SluicePrincipal *
stream_principal (HttpsServer *server, SoupServerMessage *msg, const char *stream)
{
  g_autofree char *resource = g_strdup_printf ("%s/%s", server->transport->hostname, stream);
  g_autoptr (GError) error = NULL;
  SluicePrincipal *principal = https_authenticate (server, msg, resource, &error);

  if (!principal)
    https_reply_gerror (msg, FALSE, error);
  return principal;
}

/* --- GET /{stream} --- */

void
https_handle_stream_info (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route)
{
  SluiceHost *host = server->transport->host;
  g_autoptr (SluicePrincipal) principal = stream_principal (server, msg, route->stream);
  g_autoptr (GError) error = NULL;
  SluiceStreamInfo info;
  GString *out;

  if (!principal)
    return;
  /* Rights first, so that a stranger cannot probe which streams exist. */
  if (!sluice_host_authorize (host, principal, SLUICE_ACTION_LISTEN, route->stream, &error)
      || !sluice_host_stream_info (host, route->stream, &info, &error))
    {
      https_reply_gerror (msg, FALSE, error);
      return;
    }
  out = g_string_new ("{\"name\":");
  https_json_append_string (out, route->stream, -1);
  g_string_append (out, ",\"partitions\":[");
  for (gint32 p = 0; p < info.partitions; p++)
    {
      gint64 first = 0, next = 0;

      if (!sluice_host_stream_bounds (host, route->stream, p, &first, &next, &error))
        {
          g_string_free (out, TRUE);
          https_reply_gerror (msg, FALSE, error);
          return;
        }
      g_string_append_printf (out, "%s{\"id\":%d,\"first\":%" G_GINT64_FORMAT ",\"next\":%"
                              G_GINT64_FORMAT "}", p ? "," : "", p, first, next);
    }
  g_string_append (out, "]}");
  https_reply_json (msg, SOUP_STATUS_OK, g_string_free (out, FALSE));
}

/* --- POST /{stream}/messages --- */

static void
send_done (const SluiceAppendResult *result, const GError *error, gpointer data)
{
  HttpsRequest *request = data;

  if (error && !request->error)
    request->error = g_error_copy (error);
  if (--request->pending > 0)
    return;
  if (request->error)
    https_reply_gerror (request->msg, FALSE, request->error);
  else
    https_reply_empty (request->msg, SOUP_STATUS_CREATED);
  https_request_finish (request);
}

/* The messages of one send, from a batch body or a single one. */
static GPtrArray *
send_messages (SoupServerMessage *msg, GError **error)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *content_type = soup_message_headers_get_content_type (headers, NULL);
  g_autoptr (GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr (GPtrArray) messages = NULL;
  HttpsSendMessage *m;
  SoupMessageHeadersIter it;
  const char *broker, *name, *value;
  gsize len = 0;
  const char *data = g_bytes_get_data (body, &len);

  if (content_type && g_ascii_strcasecmp (content_type, BATCH_CONTENT_TYPE) == 0)
    return https_parse_send_batch (data ? data : "", len, error);

  messages = g_ptr_array_new_with_free_func ((GDestroyNotify) https_send_message_free);
  m = https_send_message_new ();
  m->body = g_bytes_ref (body);
  g_ptr_array_add (messages, m);
  /* Application properties as on the device path (`iothub-app-X: v`): the
   * other headers of a request are HTTP's, not the message's. */
  soup_message_headers_iter_init (&it, headers);
  while (soup_message_headers_iter_next (&it, &name, &value))
    {
      gboolean app;
      const char *property = https_device_header_name (name, &app);

      if (property && app)
        https_send_message_set_header (m, property, value);
    }
  broker = soup_message_headers_get_one (headers, "BrokerProperties");
  if (broker && !https_apply_broker_properties (m, broker, error))
    return NULL;
  return g_steal_pointer (&messages);
}

typedef struct {
  char *key;                   /* NULL: no partition key */
  SluiceBatchBuilder *builder;
} SendGroup;

static void
send_group_free (SendGroup *g)
{
  g_free (g->key);
  if (g->builder)
    sluice_batch_builder_free (g->builder);
  g_free (g);
}

void
https_handle_stream_send (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route)
{
  SluiceHost *host = server->transport->host;
  g_autoptr (SluicePrincipal) principal = stream_principal (server, msg, route->stream);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) messages = NULL;
  g_autoptr (GPtrArray) groups = NULL;
  gint64 now = g_get_real_time () / 1000;
  HttpsRequest *request;

  if (!principal)
    return;
  messages = send_messages (msg, &error);
  if (!messages)
    {
      https_reply_gerror (msg, FALSE, error);
      return;
    }

  /* One batch per partition key, in first-seen order: each lands in one
   * partition in send order, as Event Hubs keeps a keyed batch together. */
  groups = g_ptr_array_new_with_free_func ((GDestroyNotify) send_group_free);
  for (guint i = 0; i < messages->len; i++)
    {
      HttpsSendMessage *m = messages->pdata[i];
      SendGroup *group = NULL;
      gsize len = 0;
      const guint8 *data = g_bytes_get_data (m->body, &len);

      for (guint j = 0; j < groups->len && !group; j++)
        if (g_strcmp0 (((SendGroup *) groups->pdata[j])->key, m->partition_key) == 0)
          group = groups->pdata[j];
      if (!group)
        {
          group = g_new0 (SendGroup, 1);
          group->key = g_strdup (m->partition_key);
          group->builder = sluice_batch_builder_new (now);
          g_ptr_array_add (groups, group);
        }
      g_ptr_array_add (m->headers, NULL);
      sluice_batch_builder_add (group->builder, (const guint8 *) m->partition_key,
                                m->partition_key ? (gssize) strlen (m->partition_key) : 0,
                                data ? data : (const guint8 *) "", (gssize) len,
                                (const char *const *) m->headers->pdata, now);
    }

  request = https_request_new (server, msg, route, principal);
  request->pending = groups->len;
  for (guint j = 0; j < groups->len; j++)
    {
      SendGroup *group = groups->pdata[j];
      GBytes *batch = sluice_batch_builder_finish (g_steal_pointer (&group->builder));

      sluice_host_append (host, principal, request->route.stream, request->route.partition,
                          (const guint8 *) group->key, group->key ? strlen (group->key) : 0,
                          batch, 0, send_done, request);
    }
}

/* --- GET /{stream}/partitions/{p}/messages --- */

typedef struct {
  HttpsRequest *request;
  SluiceReadResult *result;
  GError *error;
} ReadHop;

static void read_done (SluiceReadResult *result, const GError *error, gpointer data);

static gboolean
read_done_on_worker (gpointer data)
{
  ReadHop *hop = data;

  read_done (hop->result, hop->error, hop->request);
  g_clear_error (&hop->error);
  g_free (hop);
  return G_SOURCE_REMOVE;
}

static void
read_done (SluiceReadResult *result, const GError *error, gpointer data)
{
  HttpsRequest *request = data;
  g_autoptr (SluiceReadResult) owned = NULL;

  /* Everything of a request lives on its worker. A completion that arrives
   * on another thread (the core delivers a long poll woken by an append on
   * the appending thread's context) is carried over first. */
  if (!g_main_context_is_owner (request->server->context))
    {
      ReadHop *hop = g_new0 (ReadHop, 1);
      GSource *source = g_idle_source_new ();

      hop->request = request;
      hop->result = result;
      hop->error = error ? g_error_copy (error) : NULL;
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, read_done_on_worker, hop, NULL);
      g_source_attach (source, request->server->context);
      g_source_unref (source);
      return;
    }
  owned = result;
  g_autoptr (GError) local = NULL;
  gint64 next = request->from;
  gint64 count = 0;
  char next_text[24];
  GString *out;

  if (error)
    {
      https_reply_gerror (request->msg, FALSE, error);
      https_request_finish (request);
      return;
    }
  out = g_string_new ("[");
  for (guint i = 0; i < result->batches->len && count < request->limit && !local; i++)
    {
      SluiceBatch *batch = result->batches->pdata[i];
      g_autoptr (SluiceBatchReader) reader = sluice_batch_reader_new (batch->data, &local);
      SluiceRecordView record;

      while (reader && count < request->limit && sluice_batch_reader_next (reader, &record, &local))
        {
          /* A batch may begin before the offset asked for. */
          if (record.offset < request->from)
            continue;
          if (count++ > 0)
            g_string_append_c (out, ',');
          https_json_append_record (out, &record);
          next = record.offset + 1;
        }
    }
  if (local)
    {
      g_string_free (out, TRUE);
      https_reply_gerror (request->msg, FALSE, local);
      https_request_finish (request);
      return;
    }
  g_string_append_c (out, ']');
  /* Where the next read continues (also for an empty answer). */
  g_snprintf (next_text, sizeof next_text, "%" G_GINT64_FORMAT, next);
  soup_message_headers_replace (soup_server_message_get_response_headers (request->msg),
                                "x-sluice-next-offset", next_text);
  https_reply_json (request->msg, SOUP_STATUS_OK, g_string_free (out, FALSE));
  https_request_finish (request);
}

static void
start_read (HttpsRequest *request)
{
  HttpsServer *server = request->server;
  /* Enough bytes for `limit` small records; storage returns at least one
   * batch however large. */
  gsize max_bytes = (gsize) CLAMP (request->limit * 4096, 64 * 1024, 4 * 1024 * 1024);

  sluice_host_read (server->transport->host, request->principal, request->route.stream,
                    request->route.partition, request->from, max_bytes, request->wait_ms,
                    server->cancellable, read_done, request);
}

/* No `from`: start at the partition's first offset. */
static gboolean
read_from_first (HttpsRequest *request)
{
  g_autoptr (GError) error = NULL;
  gint64 first = 0, next = 0;

  if (!sluice_host_stream_bounds (request->server->transport->host, request->route.stream,
                                  request->route.partition, &first, &next, &error))
    {
      https_reply_gerror (request->msg, FALSE, error);
      https_request_finish (request);
      return FALSE;
    }
  request->from = first;
  start_read (request);
  return TRUE;
}

static void
group_offsets_for_read (GArray *offsets, const GError *error, gpointer data)
{
  HttpsRequest *request = data;
  gint64 committed = -1;

  if (error)
    {
      https_reply_gerror (request->msg, FALSE, error);
      https_request_finish (request);
      return;
    }
  for (guint i = 0; i < offsets->len; i++)
    {
      SluiceGroupOffset *o = &g_array_index (offsets, SluiceGroupOffset, i);
      if (o->partition == request->route.partition)
        committed = o->offset;
    }
  g_array_unref (offsets);
  if (committed < 0)
    {
      read_from_first (request);
      return;
    }
  request->from = committed;
  start_read (request);
}

static gboolean
query_int (SoupServerMessage *msg, GHashTable *query, const char *name, gint64 min, gint64 max,
           gint64 *out)
{
  const char *text = query ? g_hash_table_lookup (query, name) : NULL;

  if (!text)
    return TRUE;
  if (https_parse_int (text, min, max, out))
    return TRUE;
  https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, FALSE, "BadRequest",
                     "%s must be an integer from %" G_GINT64_FORMAT " (got '%s')", name, min,
                     text);
  return FALSE;
}

void
https_handle_stream_read (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route,
                          GHashTable *query)
{
  HttpsTransport *t = server->transport;
  g_autoptr (SluicePrincipal) principal = NULL;
  const char *group = query ? g_hash_table_lookup (query, "group") : NULL;
  gboolean has_from = query && g_hash_table_contains (query, "from");
  gint64 from = 0, limit = t->options.read_limit, wait = 0;
  HttpsRequest *request;

  if (!query_int (msg, query, "from", 0, G_MAXINT64, &from)
      || !query_int (msg, query, "limit", 1, G_MAXINT32, &limit)
      || !query_int (msg, query, "wait", 0, G_MAXINT64, &wait))
    return;
  if (group && !https_group_name_is_valid (group))
    {
      https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, FALSE, "BadRequest",
                         "group must be 1-255 printable characters without '/' (got '%s')",
                         group);
      return;
    }
  principal = stream_principal (server, msg, route->stream);
  if (!principal)
    return;

  request = https_request_new (server, msg, route, principal);
  request->from = from;
  request->limit = MIN (limit, t->options.read_limit);
  request->wait_ms = (guint) MIN (wait, MIN (t->options.max_wait, (gint64) G_MAXUINT));
  if (has_from)
    start_read (request);
  else if (group)
    sluice_host_fetch_offsets (t->host, principal, request->route.stream, group,
                               group_offsets_for_read, request);
  else
    read_from_first (request);
}

/* --- GET|POST /{stream}/consumergroups/{g}/offsets --- */

static void
offsets_fetched (GArray *offsets, const GError *error, gpointer data)
{
  HttpsRequest *request = data;

  if (error)
    https_reply_gerror (request->msg, FALSE, error);
  else
    {
      https_reply_json (request->msg, SOUP_STATUS_OK, https_offsets_to_json (offsets));
      g_array_unref (offsets);   /* its clear function frees the metadata */
    }
  https_request_finish (request);
}

static void
offsets_committed (const GError *error, gpointer data)
{
  HttpsRequest *request = data;

  if (error)
    https_reply_gerror (request->msg, FALSE, error);
  else
    https_reply_empty (request->msg, SOUP_STATUS_NO_CONTENT);
  https_request_finish (request);
}

void
https_handle_group_offsets (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route)
{
  SluiceHost *host = server->transport->host;
  g_autoptr (SluicePrincipal) principal = NULL;
  HttpsRequest *request;

  if (!https_group_name_is_valid (route->group))
    {
      https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, FALSE, "BadRequest",
                         "a consumer group is 1-255 printable characters (got '%s')",
                         route->group);
      return;
    }
  principal = stream_principal (server, msg, route->stream);
  if (!principal)
    return;

  if (g_str_equal (soup_server_message_get_method (msg), "POST"))
    {
      g_autoptr (GBytes) body = soup_message_body_flatten (
        soup_server_message_get_request_body (msg));
      g_autoptr (GError) error = NULL;
      g_autoptr (GArray) offsets = NULL;
      gsize len = 0;
      const char *data = g_bytes_get_data (body, &len);

      offsets = https_parse_offsets (data ? data : "", len, &error);
      if (!offsets)
        {
          https_reply_gerror (msg, FALSE, error);
          return;
        }
      request = https_request_new (server, msg, route, principal);
      sluice_host_commit_offsets (host, principal, request->route.stream, request->route.group,
                                  (const SluiceGroupOffset *) offsets->data, offsets->len,
                                  offsets_committed, request);
      return;
    }
  request = https_request_new (server, msg, route, principal);
  sluice_host_fetch_offsets (host, principal, request->route.stream, request->route.group,
                             offsets_fetched, request);
}
