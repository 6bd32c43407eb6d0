/* transport-kafka — the read side: Fetch and ListOffsets.
 *
 * Fetch reads every asked partition at once; when that gives fewer than
 * min_bytes and no error, the partitions at their end are read again with a
 * wait of max_wait_ms (sluice_host_read is woken by appends, no polling),
 * and the first one that gets data cancels the others. Stored batches are
 * passed through as they are (GBytes, not copied) within max_bytes and
 * each partition's max_bytes, except that the first batch always goes, so
 * that a batch larger than the limits cannot stall a consumer (KIP-74).
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"

/* --- Fetch --- */

typedef struct _FetchOp FetchOp;

typedef struct {
  FetchOp *op;
  const char *stream;
  const KafkaFetchPartition *req;
  SluiceReadResult *result;      /* NULL until read, or on error */
  GError *error;
  gboolean waiting;
} FetchPart;

struct _FetchOp {
  KafkaConn *conn;
  KafkaPending *pending;
  KafkaRequest *request;
  guint n_parts;
  FetchPart *parts;
  guint outstanding;
  gboolean waited;               /* the second (waiting) round ran */
};

static gsize
part_bytes (const FetchPart *part)
{
  gsize n = 0;

  if (part->result == NULL)
    return 0;
  for (guint i = 0; i < part->result->batches->len; i++)
    n += g_bytes_get_size (((SluiceBatch *) part->result->batches->pdata[i])->data);
  return n;
}

static void
fetch_answer (FetchOp *op)
{
  KafkaTransport *t = kafka_conn_get_transport (op->conn);
  const KafkaFetchRequest *req = &op->request->fetch;
  KafkaResponse *response = kafka_response_new (KAFKA_API_FETCH,
                                                op->request->header.api_version,
                                                op->request->header.correlation_id);
  KafkaFetchResponse *m = &response->fetch;
  gsize total = 0;
  gsize max_bytes = req->max_bytes > 0 ? (gsize) req->max_bytes : G_MAXINT32;
  guint k = 0;

  m->n_topics = req->n_topics;
  m->topics = kafka_response_new0 (response, KafkaFetchTopicResponse, req->n_topics);
  for (guint i = 0; i < req->n_topics; i++)
    {
      const KafkaFetchTopic *topic = &req->topics[i];
      KafkaFetchTopicResponse *tr = &m->topics[i];

      tr->name = kafka_response_strdup (response, topic->name);
      tr->n_partitions = topic->n_partitions;
      tr->partitions = kafka_response_new0 (response, KafkaFetchPartitionResponse,
                                            topic->n_partitions);
      for (guint j = 0; j < topic->n_partitions; j++, k++)
        {
          FetchPart *part = &op->parts[k];
          KafkaFetchPartitionResponse *slot = &tr->partitions[j];
          gsize part_max = part->req->partition_max_bytes > 0
                           ? (gsize) part->req->partition_max_bytes : G_MAXINT32;
          gsize in_part = 0;

          slot->partition = part->req->partition;
          slot->preferred_read_replica = -1;
          slot->high_watermark = -1;
          slot->last_stable_offset = -1;
          slot->log_start_offset = -1;
          if (part->result == NULL)
            {
              gint64 first, next;

              slot->error_code = part->error != NULL ? kafka_error_from_sluice (part->error)
                                                     : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
              if (sluice_host_stream_bounds (t->host, part->stream, part->req->partition,
                                             &first, &next, NULL))
                {
                  slot->high_watermark = slot->last_stable_offset = next;
                  slot->log_start_offset = first;
                }
              continue;
            }
          slot->high_watermark = slot->last_stable_offset = part->result->next;
          slot->log_start_offset = part->result->first;
          slot->records = kafka_response_new0 (response, GBytes *,
                                               part->result->batches->len);
          for (guint b = 0; b < part->result->batches->len; b++)
            {
              SluiceBatch *batch = part->result->batches->pdata[b];
              gsize size = g_bytes_get_size (batch->data);

              if (total > 0 && (total + size > max_bytes || in_part + size > part_max))
                break;
              slot->records[slot->n_records++] = kafka_response_keep (response, batch->data);
              total += size;
              in_part += size;
            }
          sluice_counter_add (t->batches_out, slot->n_records);
        }
    }
  kafka_pending_complete (op->pending, response);
  for (guint i = 0; i < op->n_parts; i++)
    {
      g_clear_pointer (&op->parts[i].result, sluice_read_result_free);
      g_clear_error (&op->parts[i].error);
    }
  kafka_request_free (op->request);
  kafka_conn_unref (op->conn);
  g_free (op->parts);
  g_free (op);
}

static void fetch_round (FetchOp *op, guint wait_ms);

static void
fetch_read_done (SluiceReadResult *result, const GError *error, gpointer user_data)
{
  FetchPart *part = user_data;
  FetchOp *op = part->op;
  gboolean was_waiting = part->waiting;

  part->waiting = FALSE;
  if (error != NULL)
    {
      /* A cancelled wait keeps what the first round found. */
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_clear_pointer (&part->result, sluice_read_result_free);
          g_clear_error (&part->error);
          part->error = g_error_copy (error);
        }
    }
  else
    {
      g_clear_pointer (&part->result, sluice_read_result_free);
      part->result = result;
      /* Data for one waiting partition answers the whole Fetch. */
      if (was_waiting && result->batches->len > 0)
        g_cancellable_cancel (kafka_pending_get_cancellable (op->pending));
    }
  if (--op->outstanding > 0)
    return;

  if (!op->waited && !kafka_pending_is_cancelled (op->pending))
    {
      const KafkaFetchRequest *req = &op->request->fetch;
      gsize total = 0;
      gboolean any_error = FALSE;
      KafkaTransport *t = kafka_conn_get_transport (op->conn);
      gint64 wait = MIN ((gint64) req->max_wait_ms, t->options->max_wait_cap_ms);

      for (guint i = 0; i < op->n_parts; i++)
        {
          total += part_bytes (&op->parts[i]);
          any_error |= op->parts[i].result == NULL;
        }
      if (!any_error && wait > 0 && total < (gsize) MAX (req->min_bytes, 1))
        {
          op->waited = TRUE;
          fetch_round (op, (guint) wait);
          if (op->outstanding > 0)
            return;
        }
    }
  fetch_answer (op);
}

/* Read every partition (wait_ms 0), or, in the waiting round, the ones that
 * are at their end. */
static void
fetch_round (FetchOp *op, guint wait_ms)
{
  KafkaTransport *t = kafka_conn_get_transport (op->conn);
  const KafkaFetchRequest *req = &op->request->fetch;
  gsize max_bytes = req->max_bytes > 0 ? (gsize) req->max_bytes : G_MAXINT32;
  GCancellable *cancellable = wait_ms > 0 ? kafka_pending_get_cancellable (op->pending) : NULL;

  op->outstanding++;
  for (guint i = 0; i < op->n_parts; i++)
    {
      FetchPart *part = &op->parts[i];
      gsize part_max = part->req->partition_max_bytes > 0
                       ? (gsize) part->req->partition_max_bytes : G_MAXINT32;
      gint64 from = part->req->fetch_offset;

      if (wait_ms > 0)
        {
          if (part->result == NULL || part->result->batches->len > 0
              || from != part->result->next)
            continue;
          part->waiting = TRUE;
        }
      op->outstanding++;
      sluice_host_read (t->host, kafka_conn_get_principal (op->conn), part->stream,
                        part->req->partition, from, MIN (part_max, max_bytes), wait_ms,
                        cancellable, fetch_read_done, part);
    }
  op->outstanding--;
}

void
kafka_handle_fetch (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  const KafkaFetchRequest *req = &request->fetch;
  FetchOp *op = g_new0 (FetchOp, 1);
  guint k = 0;

  op->conn = kafka_conn_ref (conn);
  op->pending = pending;
  op->request = request;
  for (guint i = 0; i < req->n_topics; i++)
    op->n_parts += req->topics[i].n_partitions;
  op->parts = g_new0 (FetchPart, MAX (op->n_parts, 1));
  for (guint i = 0; i < req->n_topics; i++)
    for (guint j = 0; j < req->topics[i].n_partitions; j++, k++)
      {
        op->parts[k].op = op;
        op->parts[k].stream = req->topics[i].name;
        op->parts[k].req = &req->topics[i].partitions[j];
      }
  if (op->n_parts == 0)
    {
      fetch_answer (op);
      return;
    }
  /* The answers come back on this worker's context, never from inside the
   * call, so `outstanding` is complete before the first one. */
  fetch_round (op, 0);
}

/* --- ListOffsets --- */

#define LIST_EARLIEST -2
#define LIST_LATEST -1

typedef struct _ListOp ListOp;

typedef struct {
  ListOp *op;
  const char *stream;
  KafkaListOffsetsPartitionResponse *slot;
  gint64 target;                 /* timestamp searched */
  gint64 lo, hi;                 /* the answer's batch starts in [lo, hi] (hi: none) */
} ListSearch;

struct _ListOp {
  KafkaConn *conn;
  KafkaPending *pending;
  KafkaRequest *request;
  KafkaResponse *response;
  guint outstanding;
};

static void
list_op_finish (ListOp *op)
{
  kafka_pending_complete (op->pending, g_steal_pointer (&op->response));
  kafka_request_free (op->request);
  kafka_conn_unref (op->conn);
  g_free (op);
}

static void list_search_read (ListSearch *search);

/* Batches are stamped with their append time (LogAppendTime), so every
 * record of a batch has its max timestamp and the times grow along the
 * partition: a binary search over offsets finds the first batch at or after
 * the target in O(log n) one-batch reads (were the clock ever set back, the
 * answer is one batch of that region, as Kafka's time index gives too). */
static void
list_search_done (SluiceReadResult *result, const GError *error, gpointer user_data)
{
  ListSearch *search = user_data;
  ListOp *op = search->op;
  SluiceBatch *batch = NULL;

  if (error != NULL)
    {
      search->slot->error_code = kafka_error_from_sluice (error);
      search->lo = search->hi;
    }
  else if (result->batches->len == 0)
    search->lo = search->hi;
  else
    {
      batch = result->batches->pdata[0];
      if (batch->max_timestamp >= search->target)
        {
          /* This batch qualifies: the answer is it or one before it. */
          search->hi = MIN (search->hi, batch->base_offset);
          search->slot->offset = MAX (batch->base_offset, search->lo);
          search->slot->timestamp = batch->max_timestamp;
        }
      else
        search->lo = batch->base_offset + batch->record_count;
    }
  if (result != NULL)
    sluice_read_result_free (result);
  if (search->lo < search->hi)
    {
      list_search_read (search);
      return;
    }
  g_free (search);
  if (--op->outstanding == 0)
    list_op_finish (op);
}

static void
list_search_read (ListSearch *search)
{
  KafkaTransport *t = kafka_conn_get_transport (search->op->conn);
  gint64 mid = search->lo + (search->hi - search->lo) / 2;

  /* max_bytes 1: exactly the batch that holds `mid`. */
  sluice_host_read (t->host, kafka_conn_get_principal (search->op->conn), search->stream,
                    search->slot->partition, mid, 1, 0, NULL, list_search_done, search);
}

void
kafka_handle_list_offsets (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaListOffsetsRequest *req = &request->list_offsets;
  ListOp *op = g_new0 (ListOp, 1);
  KafkaListOffsetsResponse *m;

  op->conn = kafka_conn_ref (conn);
  op->pending = pending;
  op->request = request;
  op->response = kafka_response_new (KAFKA_API_LIST_OFFSETS, request->header.api_version,
                                     request->header.correlation_id);
  op->outstanding = 1;
  m = &op->response->list_offsets;
  m->n_topics = req->n_topics;
  m->topics = kafka_response_new0 (op->response, KafkaListOffsetsTopicResponse, req->n_topics);
  for (guint i = 0; i < req->n_topics; i++)
    {
      const KafkaListOffsetsTopic *topic = &req->topics[i];
      KafkaListOffsetsTopicResponse *tr = &m->topics[i];
      gboolean allowed = sluice_host_authorize (t->host, kafka_conn_get_principal (conn),
                                                SLUICE_ACTION_LISTEN, topic->name, NULL);

      tr->name = topic->name;
      tr->n_partitions = topic->n_partitions;
      tr->partitions = kafka_response_new0 (op->response, KafkaListOffsetsPartitionResponse,
                                            topic->n_partitions);
      for (guint j = 0; j < topic->n_partitions; j++)
        {
          const KafkaListOffsetsPartition *p = &topic->partitions[j];
          KafkaListOffsetsPartitionResponse *slot = &tr->partitions[j];
          g_autoptr (GError) error = NULL;
          gint64 first, next;

          slot->partition = p->partition;
          slot->timestamp = -1;
          slot->offset = -1;
          slot->leader_epoch = 0;
          if (!allowed)
            {
              slot->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
              continue;
            }
          if (!sluice_host_stream_bounds (t->host, topic->name, p->partition, &first, &next,
                                          &error))
            {
              slot->error_code = kafka_error_from_sluice (error);
              continue;
            }
          if (p->timestamp == LIST_LATEST)
            slot->offset = next;
          else if (p->timestamp == LIST_EARLIEST)
            slot->offset = first;
          else if (p->timestamp < 0)
            slot->error_code = KAFKA_ERR_INVALID_REQUEST;
          else if (first < next)
            {
              ListSearch *search = g_new0 (ListSearch, 1);

              search->op = op;
              search->stream = topic->name;
              search->slot = slot;
              search->target = p->timestamp;
              search->lo = first;
              search->hi = next;
              op->outstanding++;
              list_search_read (search);
            }
        }
    }
  if (--op->outstanding == 0)
    list_op_finish (op);
}
