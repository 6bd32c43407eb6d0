/* transport-kafka — idempotent producers: InitProducerId, the sequence
 * check of each Produce batch (kafka-producers.c), and the state kept in
 * the transport's KV namespace so that it survives a restart:
 *   producers/id-ceiling  every id below it may have been handed out
 *                         (committed before the InitProducerId that took a
 *                         new block is answered);
 *   producers/snapshot    the sequence windows, written every few seconds
 *                         while they change and at stop.
 * At start the snapshot is restored and each partition it knows is read on
 * from where the snapshot ends, so appends made after it are seen too.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"
#include "kafka-producers.h"

#include <string.h>

#define CEILING_KEY "producers/id-ceiling"
#define SNAPSHOT_KEY "producers/snapshot"
#define SNAPSHOT_INTERVAL_MS 2000
/* Records read back per partition the snapshot does not know. */
#define TAIL_SCAN_RECORDS 10000

/* The InitProducerId being answered on this thread, for the reserve
 * callback (which runs inside kafka_producers_init_id). */
static _Thread_local gint64 reserved_ceiling = -1;

static void
producers_reserve (gint64 ceiling, gpointer user_data)
{
  reserved_ceiling = ceiling;
}

/* --- snapshots --- */

static void
snapshot_stored (const GError *error, gpointer user_data)
{
  gboolean *done = user_data;

  if (error != NULL)
    g_warning ("storing the idempotent producer state: %s", error->message);
  if (done != NULL)
    *done = TRUE;
}

static void
snapshot_write (KafkaTransport *t, gboolean *done)
{
  g_autoptr (GBytes) snapshot = kafka_producers_snapshot (t->producers);
  SluiceKvOp op = { SLUICE_KV_PUT, SNAPSHOT_KEY, snapshot };

  sluice_host_kv_commit (t->host, t->instance_name, &op, 1, snapshot_stored, done);
}

static gboolean
snapshot_tick (gpointer data)
{
  KafkaTransport *t = data;
  gint changes = g_atomic_int_get (&t->producer_changes);

  if (changes != t->producer_changes_saved)
    {
      t->producer_changes_saved = changes;
      snapshot_write (t, NULL);
    }
  return G_SOURCE_CONTINUE;
}

/* --- rebuild from the log tail (start) --- */

typedef struct {
  KafkaTransport *transport;
  char *stream;
  gint32 partition;
  gint64 from;
  gboolean done;
} TailScan;

static void tail_read (TailScan *scan);

static void
tail_done (SluiceReadResult *result, const GError *error, gpointer user_data)
{
  TailScan *scan = user_data;

  if (error != NULL || result->batches->len == 0)
    {
      scan->done = TRUE;
      g_clear_pointer (&result, sluice_read_result_free);
      return;
    }
  for (guint i = 0; i < result->batches->len; i++)
    {
      SluiceBatch *batch = result->batches->pdata[i];
      gsize len;
      const guint8 *data = g_bytes_get_data (batch->data, &len);

      if (batch->base_offset + batch->record_count <= scan->from)
        continue;
      kafka_producers_observe (scan->transport->producers, scan->stream, scan->partition, data,
                               len);
      scan->from = batch->base_offset + batch->record_count;
    }
  if (scan->from >= result->next)
    scan->done = TRUE;
  sluice_read_result_free (result);
  if (!scan->done)
    tail_read (scan);
}

static void
tail_read (TailScan *scan)
{
  /* Internal bookkeeping, not a client's read: no principal is needed for
   * the state, but the host checks one; the scan runs as the transport's
   * anonymous identity when there is one, else it is skipped. */
  sluice_host_read (scan->transport->host, scan->transport->internal_principal, scan->stream,
                    scan->partition, scan->from, 4 << 20, 0, NULL, tail_done, scan);
}

static void
rebuild_from_logs (KafkaTransport *t)
{
  g_auto (GStrv) streams = sluice_host_list_streams (t->host);
  g_autoptr (GPtrArray) scans = g_ptr_array_new_with_free_func (g_free);
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  gboolean busy = TRUE;

  if (t->internal_principal == NULL)
    return;
  for (guint i = 0; streams != NULL && streams[i] != NULL; i++)
    {
      SluiceStreamInfo info;

      if (!sluice_host_stream_info (t->host, streams[i], &info, NULL))
        continue;
      for (gint32 p = 0; p < info.partitions; p++)
        {
          gint64 from = kafka_producers_resume_offset (t->producers, streams[i], p);
          gint64 first, next;
          TailScan *scan;

          /* A partition the snapshot does not know: its recent tail. */
          if (from < 0)
            {
              if (!sluice_host_stream_bounds (t->host, streams[i], p, &first, &next, NULL)
                  || first >= next)
                continue;
              from = MAX (first, next - TAIL_SCAN_RECORDS);
            }
          scan = g_new0 (TailScan, 1);
          scan->transport = t;
          scan->stream = streams[i];
          scan->partition = p;
          scan->from = from;
          g_ptr_array_add (scans, scan);
          tail_read (scan);
        }
    }
  /* start() runs on the main thread before its loop: the reads answer on
   * this context, so iterate it until they are done. */
  while (busy && g_get_monotonic_time () < deadline)
    {
      busy = FALSE;
      for (guint i = 0; i < scans->len; i++)
        busy |= !((TailScan *) scans->pdata[i])->done;
      if (busy)
        g_main_context_iteration (NULL, TRUE);
    }
}

void
kafka_producers_setup (KafkaTransport *t)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) pairs = sluice_host_kv_scan_sync (t->host, t->instance_name,
                                                          "producers/", &error);
  gint64 ceiling = 0;
  GBytes *snapshot = NULL;

  if (pairs == NULL)
    sluice_warning (t->instance_name, "reading the idempotent producer state: %s",
                    error->message);
  for (guint i = 0; pairs != NULL && i < pairs->len; i++)
    {
      SluiceKvPair *pair = pairs->pdata[i];

      if (g_strcmp0 (pair->key, CEILING_KEY) == 0)
        {
          g_autofree char *text = g_strndup (g_bytes_get_data (pair->value, NULL),
                                             g_bytes_get_size (pair->value));
          ceiling = g_ascii_strtoll (text, NULL, 10);
        }
      else if (g_strcmp0 (pair->key, SNAPSHOT_KEY) == 0)
        snapshot = pair->value;
    }
  t->producers = kafka_producers_new (ceiling, producers_reserve, t);
  g_clear_error (&error);
  if (snapshot != NULL && !kafka_producers_restore (t->producers, snapshot, &error))
    sluice_warning (t->instance_name, "idempotent producer snapshot ignored: %s",
                    error->message);
  rebuild_from_logs (t);
  kafka_produce_run_deferred (t);
  t->snapshot_timer = g_timeout_source_new (SNAPSHOT_INTERVAL_MS);
  g_source_set_callback (t->snapshot_timer, snapshot_tick, t, NULL);
  g_source_set_static_name (t->snapshot_timer, "kafka-producers-snapshot");
  g_source_attach (t->snapshot_timer, g_main_context_default ());
}

void
kafka_producers_stop (KafkaTransport *t)
{
  if (t->snapshot_timer != NULL)
    {
      g_source_destroy (t->snapshot_timer);
      g_clear_pointer (&t->snapshot_timer, g_source_unref);
    }
  if (t->producers != NULL)
    {
      gboolean done = FALSE;
      gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

      /* stop() runs on the main thread and may iterate its context: wait
       * for the last snapshot to be durable. */
      snapshot_write (t, &done);
      while (!done && g_get_monotonic_time () < deadline)
        g_main_context_iteration (NULL, TRUE);
    }
}

/* --- InitProducerId --- */

typedef struct {
  KafkaConn *conn;
  KafkaPending *pending;
  KafkaResponse *response;
} InitOp;

static void
ceiling_stored (const GError *error, gpointer user_data)
{
  InitOp *op = user_data;

  if (error != NULL)
    {
      /* Without the ceiling on disk the id could be handed out again
       * after a restart: refuse it (retriable for the client). */
      op->response->init_producer_id.error_code = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
      op->response->init_producer_id.producer_id = -1;
      op->response->init_producer_id.producer_epoch = -1;
    }
  kafka_pending_complete (op->pending, op->response);
  kafka_conn_unref (op->conn);
  g_free (op);
}

void
kafka_handle_init_producer_id (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  KafkaResponse *response = kafka_response_new (KAFKA_API_INIT_PRODUCER_ID,
                                                request->header.api_version,
                                                request->header.correlation_id);
  KafkaInitProducerIdResponse *m = &response->init_producer_id;
  gint64 ceiling;

  m->producer_id = -1;
  m->producer_epoch = -1;
  if (request->init_producer_id.transactional_id != NULL)
    m->error_code = KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  else if (kafka_conn_get_principal (conn) == NULL)
    m->error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
  kafka_request_free (request);
  if (m->error_code != KAFKA_ERR_NONE)
    {
      kafka_pending_complete (pending, response);
      return;
    }

  if (!g_atomic_int_get (&t->producers_ready))
    {
      /* Still loading the producer state: the client retries. */
      m->error_code = KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS;
      kafka_pending_complete (pending, response);
      return;
    }
  reserved_ceiling = -1;
  m->error_code = kafka_producers_init_id (t->producers, &m->producer_id, &m->producer_epoch);
  ceiling = reserved_ceiling;
  reserved_ceiling = -1;
  g_atomic_int_inc (&t->producer_changes);
  if (ceiling >= 0)
    {
      InitOp *op = g_new0 (InitOp, 1);
      g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, ceiling);
      g_autoptr (GBytes) value = g_bytes_new (text, strlen (text));
      SluiceKvOp kv = { SLUICE_KV_PUT, CEILING_KEY, value };

      op->conn = kafka_conn_ref (conn);
      op->pending = pending;
      op->response = response;
      sluice_host_kv_commit (t->host, t->instance_name, &kv, 1, ceiling_stored, op);
      return;
    }
  kafka_pending_complete (pending, response);
}

/* --- Produce --- */

KafkaSeqVerdictOut
kafka_producers_check_batch (KafkaTransport *t, const char *stream, gint32 partition,
                             const guint8 *data, gsize len, KafkaProducerBatch *batch,
                             gint64 *base_offset, gint64 *append_time, gint16 *error)
{
  if (!kafka_producer_batch_from_header (data, len, batch) || batch->producer_id < 0)
    {
      batch->producer_id = -1;
      return KAFKA_SEQ_OUT_APPEND;
    }
  switch (kafka_producers_check (t->producers, stream, partition, batch, base_offset,
                                 append_time, error))
    {
    case KAFKA_SEQ_APPEND:
      return KAFKA_SEQ_OUT_APPEND;
    case KAFKA_SEQ_DUPLICATE:
      return KAFKA_SEQ_OUT_DUPLICATE;
    case KAFKA_SEQ_IN_FLIGHT:
      *error = KAFKA_ERR_DUPLICATE_SEQUENCE_NUMBER;
      return KAFKA_SEQ_OUT_REJECT;
    case KAFKA_SEQ_REJECT:
    default:
      return KAFKA_SEQ_OUT_REJECT;
    }
}

void
kafka_producers_batch_done (KafkaTransport *t, const char *stream, gint32 partition,
                            const KafkaProducerBatch *batch, const SluiceAppendResult *result)
{
  if (batch->producer_id < 0)
    return;
  if (result != NULL)
    kafka_producers_complete (t->producers, stream, partition, batch, result->base_offset,
                              result->append_time);
  else
    kafka_producers_abort (t->producers, stream, partition, batch);
  g_atomic_int_inc (&t->producer_changes);
}
