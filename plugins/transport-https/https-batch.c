/* transport-https — device telemetry of one worker, appended together.
 *
 * Each telemetry request would otherwise be one append: a hand-off to the
 * partition writer and a completion back, two thread wake-ups per request,
 * which cost more than the request itself. Requests that arrive in the same
 * turn of the worker's loop are gathered per partition into one record
 * batch (each record keeps its own key and headers) and appended once, just
 * before the loop polls again; the one completion answers them all. Each
 * request was authorized on its own first (DeviceConnect for its device,
 * Send on the stream), so the batch may be appended as the first one's
 * principal. A batch is as durable as its records were one by one, and the
 * records of a partition keep their arrival order.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <string.h>

#define BATCH_MAX_RECORDS 1024
/* Room the record encoding takes besides key, value and headers. */
#define RECORD_OVERHEAD 32

struct _HttpsBatch {
  HttpsServer *server;         /* a ref */
  char *stream;
  gint32 partition;
  guint64 max_bytes;           /* the stream's max-message */
  SluiceBatchBuilder *builder;
  guint64 bytes;
  GPtrArray *requests;         /* HttpsRequest*, answered together */
  SluicePrincipal *principal;  /* the first request's */
};

static void
batch_free (HttpsBatch *b)
{
  if (b->builder)
    sluice_batch_builder_free (b->builder);
  g_ptr_array_unref (b->requests);
  g_clear_pointer (&b->principal, sluice_principal_unref);
  g_free (b->stream);
  https_server_unref (b->server);
  g_free (b);
}

static void
batch_done (const SluiceAppendResult *result, const GError *error, gpointer data)
{
  HttpsBatch *b = data;

  for (guint i = 0; i < b->requests->len; i++)
    {
      HttpsRequest *request = b->requests->pdata[i];

      if (error)
        https_reply_gerror (request->msg, request->route.iothub, error);
      else
        https_reply_empty (request->msg, SOUP_STATUS_NO_CONTENT);
      https_request_finish (request);
    }
  batch_free (b);
}

static void
batch_append (HttpsBatch *b)
{
  GBytes *bytes = sluice_batch_builder_finish (g_steal_pointer (&b->builder));

  sluice_host_append (b->server->transport->host, b->principal, b->stream, b->partition, NULL,
                      0, bytes, 0, batch_done, b);
}

static gboolean
flush_pending (gpointer data)
{
  HttpsServer *server = data;
  GHashTableIter it;
  gpointer value;

  g_clear_pointer (&server->flush_source, g_source_unref);
  g_hash_table_iter_init (&it, server->batches);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      g_hash_table_iter_steal (&it);
      batch_append (value);
    }
  return G_SOURCE_REMOVE;
}

void
https_batches_flush (HttpsServer *server)
{
  if (server->flush_source)
    {
      g_source_destroy (server->flush_source);
      flush_pending (server);
    }
}

static guint64
record_size (const char *key, const char *const *headers, gsize body_len)
{
  guint64 n = RECORD_OVERHEAD + body_len + (key ? strlen (key) : 0);

  for (guint i = 0; headers && headers[i]; i++)
    n += strlen (headers[i]) + 2;
  return n;
}

gboolean
https_batch_add (HttpsServer *server, HttpsRequest *request, const char *stream,
                 const char *key, const char *const *headers, GBytes *body, GError **error)
{
  SluiceHost *host = server->transport->host;
  SluiceStreamInfo info;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (body, &len);
  guint64 size = record_size (key, headers, len);
  gint32 partition;
  HttpsBatch *b;
  gint64 now;

  if (!sluice_host_authorize (host, request->principal, SLUICE_ACTION_SEND, stream, error)
      || !sluice_host_stream_info (host, stream, &info, error))
    return FALSE;
  if (size > info.max_message)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE,
                   "a message of %" G_GSIZE_FORMAT " bytes is over stream '%s' max-message "
                   "(%" G_GUINT64_FORMAT " bytes)", len, stream, info.max_message);
      return FALSE;
    }
  /* The partition a keyed message goes to, as sluice_host_append picks it. */
  partition = key ? sluice_partition_for_key (key, strlen (key), info.partitions)
                  : g_random_int_range (0, info.partitions);

  b = g_hash_table_lookup (server->batches, GINT_TO_POINTER (partition + 1));
  if (b && (b->bytes + size > b->max_bytes || b->requests->len >= BATCH_MAX_RECORDS
            || g_strcmp0 (b->stream, stream) != 0))
    {
      g_hash_table_steal (server->batches, GINT_TO_POINTER (partition + 1));
      batch_append (b);
      b = NULL;
    }
  now = g_get_real_time () / 1000;
  if (!b)
    {
      b = g_new0 (HttpsBatch, 1);
      b->server = https_server_ref (server);
      b->stream = g_strdup (stream);
      b->partition = partition;
      b->max_bytes = info.max_message;
      b->builder = sluice_batch_builder_new (now);
      b->requests = g_ptr_array_new ();
      b->principal = sluice_principal_ref (request->principal);
      g_hash_table_insert (server->batches, GINT_TO_POINTER (partition + 1), b);
    }
  sluice_batch_builder_add (b->builder, (const guint8 *) key, key ? (gssize) strlen (key) : 0,
                            data ? data : (const guint8 *) "", (gssize) len, headers, now);
  b->bytes += size;
  g_ptr_array_add (b->requests, request);

  /* Appended once this turn of the loop has handled what was ready. */
  if (!server->flush_source)
    {
      server->flush_source = g_idle_source_new ();
      g_source_set_priority (server->flush_source, G_PRIORITY_DEFAULT);
      g_source_set_callback (server->flush_source, flush_pending, server, NULL);
      g_source_attach (server->flush_source, server->context);
    }
  return TRUE;
}
