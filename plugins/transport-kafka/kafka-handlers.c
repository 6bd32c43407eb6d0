/* transport-kafka — the handlers of the data path: ApiVersions, Metadata,
 * Produce (record batches appended as they arrive), Fetch (stored batches
 * passed through, long polls woken by appends) and ListOffsets; and the
 * table of what this transport answers.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"

#include <string.h>

gint16
kafka_error_from_sluice (const GError *error)
{
  if (error == NULL)
    return KAFKA_ERR_NONE;
  if (error->domain != SLUICE_ERROR)
    return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
  switch (error->code)
    {
    case SLUICE_ERROR_INVALID: return KAFKA_ERR_CORRUPT_MESSAGE;
    case SLUICE_ERROR_CORRUPT: return KAFKA_ERR_CORRUPT_MESSAGE;
    case SLUICE_ERROR_NOT_FOUND: return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    case SLUICE_ERROR_EXISTS: return KAFKA_ERR_TOPIC_ALREADY_EXISTS;
    case SLUICE_ERROR_UNAUTHENTICATED:
    case SLUICE_ERROR_FORBIDDEN: return KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
    case SLUICE_ERROR_TOO_LARGE: return KAFKA_ERR_MESSAGE_TOO_LARGE;
    /* Retriable for clients: they back off and retry. */
    case SLUICE_ERROR_THROTTLED: return KAFKA_ERR_REQUEST_TIMED_OUT;
    case SLUICE_ERROR_STORAGE: return KAFKA_ERR_KAFKA_STORAGE_ERROR;
    case SLUICE_ERROR_OFFSET_OUT_OF_RANGE: return KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    case SLUICE_ERROR_SHUTTING_DOWN: return KAFKA_ERR_LEADER_NOT_AVAILABLE;
    case SLUICE_ERROR_UNSUPPORTED: return KAFKA_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    default: return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    }
}

static KafkaResponse *
response_for (const KafkaRequest *request)
{
  return kafka_response_new (request->header.api_key, request->header.api_version,
                             request->header.correlation_id);
}

static void
answer (KafkaPending *pending, KafkaRequest *request, KafkaResponse *response)
{
  kafka_request_free (request);
  kafka_pending_complete (pending, response);
}

/* --- ApiVersions --- */

static void
handle_api_versions (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaResponse *response = response_for (request);
  guint n_table, n = 0;
  const KafkaApiInfo *table = kafka_api_table (&n_table);
  KafkaApiVersionRange *apis = kafka_response_new0 (response, KafkaApiVersionRange, n_table);

  /* Exactly what is served: the handlers' ranges, not the codec's. */
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
  response->api_versions.apis = apis;
  response->api_versions.n_apis = n;
  answer (pending, request, response);
}

/* --- Metadata --- */

static gboolean
may_describe (KafkaConn *conn, const char *stream)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  SluicePrincipal *p = kafka_conn_get_principal (conn);

  return sluice_host_authorize (t->host, p, SLUICE_ACTION_SEND, stream, NULL)
         || sluice_host_authorize (t->host, p, SLUICE_ACTION_LISTEN, stream, NULL)
         || sluice_host_authorize (t->host, p, SLUICE_ACTION_MANAGE, stream, NULL);
}

static void
auto_create_done (const GError *error, gpointer user_data)
{
  g_autofree char *stream = user_data;

  if (error != NULL && !g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS))
    g_message ("auto-creating topic '%s': %s", stream, error->message);
}

static void
fill_metadata_topic (KafkaConn *conn, KafkaResponse *response, KafkaMetadataTopic *topic,
                     const char *name, gboolean allow_create)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  gint32 node = (gint32) t->options->node_id;
  SluiceStreamInfo info;
  g_autoptr (GError) error = NULL;
  gint32 *replicas;

  topic->name = kafka_response_strdup (response, name);
  if (!sluice_stream_name_is_valid (name))
    {
      topic->error_code = KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
      return;
    }
  if (!sluice_host_stream_info (t->host, name, &info, &error))
    {
      if (allow_create && t->options->auto_create_topics
          && g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND))
        {
          SluiceStreamInfo create = { 0 };

          /* Kafka answers a topic it is creating as not yet led; the client
           * asks again. */
          create.partitions = (gint32) t->options->default_partitions;
          sluice_host_stream_create (t->host, kafka_conn_get_principal (conn), name, &create,
                                     auto_create_done, g_strdup (name));
          topic->error_code = KAFKA_ERR_LEADER_NOT_AVAILABLE;
          return;
        }
      topic->error_code = kafka_error_from_sluice (error);
      return;
    }
  if (!may_describe (conn, name))
    {
      topic->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
      return;
    }
  topic->n_partitions = (guint) MAX (info.partitions, 0);
  topic->partitions = kafka_response_new0 (response, KafkaMetadataPartition, topic->n_partitions);
  replicas = kafka_response_new0 (response, gint32, 1);
  replicas[0] = node;
  for (guint i = 0; i < topic->n_partitions; i++)
    {
      KafkaMetadataPartition *p = &topic->partitions[i];

      p->partition = (gint32) i;
      p->leader_id = node;
      p->leader_epoch = 0;
      p->n_replicas = 1;
      p->replicas = replicas;
    }
  topic->topic_authorized_operations = G_MININT32;
}

static void
handle_metadata (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaMetadataRequest *req = &request->metadata;
  KafkaResponse *response = response_for (request);
  KafkaMetadataResponse *m = &response->metadata;
  const char *host;
  gint32 port;

  kafka_conn_get_broker (conn, &host, &port);
  m->n_brokers = 1;
  m->brokers = kafka_response_new0 (response, KafkaMetadataBroker, 1);
  m->brokers[0].node_id = (gint32) t->options->node_id;
  m->brokers[0].host = kafka_response_strdup (response, host);
  m->brokers[0].port = port;
  m->cluster_id = t->cluster_id;
  m->controller_id = (gint32) t->options->node_id;
  m->cluster_authorized_operations = G_MININT32;

  if (req->all_topics)
    {
      g_auto (GStrv) streams = sluice_host_list_streams (t->host);
      guint n = streams != NULL ? g_strv_length (streams) : 0;

      m->topics = kafka_response_new0 (response, KafkaMetadataTopic, n);
      for (guint i = 0; i < n; i++)
        {
          /* A full listing names only what the client may use. */
          if (!may_describe (conn, streams[i]))
            continue;
          fill_metadata_topic (conn, response, &m->topics[m->n_topics++], streams[i], FALSE);
        }
    }
  else
    {
      m->n_topics = req->n_topics;
      m->topics = kafka_response_new0 (response, KafkaMetadataTopic, req->n_topics);
      for (guint i = 0; i < req->n_topics; i++)
        fill_metadata_topic (conn, response, &m->topics[i], req->topics[i],
                             req->allow_auto_topic_creation);
    }
  answer (pending, request, response);
}

/* --- Produce --- */

typedef struct {
  KafkaConn *conn;               /* a ref */
  KafkaPending *pending;
  gboolean acks0;                /* no answer at all */
  KafkaRequest *request;
  KafkaResponse *response;
  guint outstanding;
  gboolean failed;               /* for acks=0: close the connection */
  char *first_error;
} ProduceOp;

typedef struct {
  ProduceOp *op;
  KafkaProducePartitionResponse *slot;
  const char *stream;
  gboolean first;                /* the partition's first batch: its offset is answered */
  KafkaProducerBatch batch;      /* idempotence fields (producer id -1: none) */
  gint32 partition;
  GBytes *bytes;                 /* until handed to the host */
} ProduceAppend;

static void
produce_finish (ProduceOp *op)
{
  if (!op->acks0)
    kafka_pending_complete (op->pending, g_steal_pointer (&op->response));
  else
    {
      kafka_pending_complete (op->pending, NULL);
      if (op->failed)
        {
          /* acks=0 has no answer: closing is how the client learns of it. */
          g_autofree char *why = g_strdup_printf ("a Produce with acks=0 failed: %s",
                                                  op->first_error);
          kafka_conn_fail (op->conn, why);
        }
    }
  kafka_response_free (op->response);
  kafka_request_free (op->request);
  kafka_conn_unref (op->conn);
  g_free (op->first_error);
  g_free (op);
}

static void
produce_done (const SluiceAppendResult *result, const GError *error, gpointer user_data)
{
  ProduceAppend *pa = user_data;
  ProduceOp *op = pa->op;

  kafka_producers_batch_done (kafka_conn_get_transport (op->conn), pa->stream,
                              pa->slot->partition, &pa->batch, error == NULL ? result : NULL);
  if (error != NULL)
    {
      if (pa->slot->error_code == KAFKA_ERR_NONE)
        pa->slot->error_code = kafka_error_from_sluice (error);
      op->failed = TRUE;
      if (op->first_error == NULL)
        op->first_error = g_strdup (error->message);
      sluice_debug (kafka_conn_get_transport (op->conn)->instance_name,
                    "connection %" G_GUINT64_FORMAT ": append to '%s' partition %d: %s",
                    kafka_conn_get_id (op->conn), pa->stream, pa->slot->partition,
                    error->message);
    }
  else if (pa->first)
    {
      KafkaTransport *t = kafka_conn_get_transport (op->conn);
      gint64 first = -1, next;

      pa->slot->base_offset = result->base_offset;
      pa->slot->log_append_time_ms = result->append_time;
      if (sluice_host_stream_bounds (t->host, pa->stream, result->partition, &first, &next,
                                     NULL))
        pa->slot->log_start_offset = first;
    }
  g_free (pa);
  if (--op->outstanding == 0)
    produce_finish (op);
}

/* Cut a partition's record set into its v2 batches (views). FALSE when the
 * framing is broken: the whole set is refused, nothing appended. */
static gboolean
split_batches (const guint8 *data, gsize len, GArray *out)
{
  gsize pos = 0;

  if (data == NULL || len == 0)
    return FALSE;
  while (pos < len)
    {
      guint32 batch_len;
      gsize whole;

      if (len - pos < SLUICE_BATCH_HEADER_SIZE)
        return FALSE;
      memcpy (&batch_len, data + pos + SLUICE_BATCH_OFF_LENGTH, 4);
      batch_len = GUINT32_FROM_BE (batch_len);
      whole = (gsize) batch_len + 12;
      if (whole < SLUICE_BATCH_HEADER_SIZE || whole > len - pos
          || data[pos + SLUICE_BATCH_OFF_MAGIC] != 2)
        return FALSE;
      g_array_append_val (out, pos);
      g_array_append_val (out, whole);
      pos += whole;
    }
  return TRUE;
}

static void produce_run (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);

/* A Produce that came before the idempotent producer state was rebuilt
 * (the listeners open before the transport's start): it runs on its worker
 * once the state is there. Answering it with an error instead would make
 * an idempotent producer's pipelined batches fail out of sequence. A
 * connection's later Produce requests wait behind its deferred ones, so that
 * a batch sent after a retry is never appended before it. */
typedef struct {
  GMainContext *context;
  KafkaConn *conn;               /* a ref, taken and dropped on its worker */
  KafkaPending *pending;
  KafkaRequest *request;
} DeferredProduce;

static gboolean
deferred_produce_run (gpointer data)
{
  DeferredProduce *d = data;

  kafka_conn_deferred_add (d->conn, -1);
  produce_run (d->conn, d->pending, d->request);
  kafka_conn_unref (d->conn);
  g_main_context_unref (d->context);
  g_free (d);
  return G_SOURCE_REMOVE;
}

/* Queued behind what its context already has to do; at the priority of
 * I/O, so that a busy connection cannot starve it. */
static void
deferred_schedule (DeferredProduce *d)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, deferred_produce_run, d, NULL);
  g_source_attach (source, d->context);
  g_source_unref (source);
}

void
kafka_produce_run_deferred (KafkaTransport *t)
{
  g_autoptr (GPtrArray) deferred = NULL;

  /* Scheduled under the lock: a connection's next request, deferred behind
   * these once the state is ready (produce_defer), is scheduled after them. */
  g_mutex_lock (&t->deferred_lock);
  g_atomic_int_set (&t->producers_ready, 1);
  deferred = g_steal_pointer (&t->deferred);
  for (guint i = 0; deferred != NULL && i < deferred->len; i++)
    deferred_schedule (deferred->pdata[i]);
  g_mutex_unlock (&t->deferred_lock);
}

static gboolean
produce_defer (KafkaTransport *t, KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  DeferredProduce *d;
  GMainContext *context = kafka_conn_get_context (conn);

  if (context == NULL
      || (g_atomic_int_get (&t->producers_ready) && kafka_conn_deferred (conn) == 0))
    return FALSE;
  d = g_new0 (DeferredProduce, 1);
  d->context = g_main_context_ref (context);
  d->conn = kafka_conn_ref (conn);
  d->pending = pending;
  d->request = request;
  kafka_conn_deferred_add (conn, 1);
  g_mutex_lock (&t->deferred_lock);
  if (!g_atomic_int_get (&t->producers_ready))
    {
      if (t->deferred == NULL)
        t->deferred = g_ptr_array_new ();
      g_ptr_array_add (t->deferred, d);
    }
  else
    deferred_schedule (d);     /* ready, but earlier ones of this connection wait */
  g_mutex_unlock (&t->deferred_lock);
  return TRUE;
}

static void
handle_produce (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  if (!produce_defer (kafka_conn_get_transport (conn), conn, pending, request))
    produce_run (conn, pending, request);
}

static void
produce_run (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaProduceRequest *req = &request->produce;
  ProduceOp *op;
  KafkaProduceResponse *m;
  gint16 refuse = KAFKA_ERR_NONE;
  guint flags = 0;
  g_autoptr (GPtrArray) appends = NULL;

  op = g_new0 (ProduceOp, 1);

  op->conn = kafka_conn_ref (conn);
  op->request = request;
  op->response = response_for (request);
  op->outstanding = 1; /* held while appends are issued */
  appends = g_ptr_array_new ();
  m = &op->response->produce;

  if (req->acks != 0 && req->acks != 1 && req->acks != -1)
    refuse = KAFKA_ERR_INVALID_REQUIRED_ACKS;
  else if (req->transactional_id != NULL)
    refuse = KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  /* acks=1: the leader wrote it; acks=-1: the stream's durability policy
   * is met (DESIGN.md). */
  if (req->acks == 1)
    flags |= SLUICE_APPEND_ACK_WRITTEN;

  m->n_topics = req->n_topics;
  m->topics = kafka_response_new0 (op->response, KafkaProduceTopicResponse, req->n_topics);
  for (guint i = 0; i < req->n_topics; i++)
    {
      const KafkaProduceTopic *topic = &req->topics[i];
      KafkaProduceTopicResponse *tr = &m->topics[i];

      tr->name = topic->name;
      tr->n_partitions = topic->n_partitions;
      tr->partitions = kafka_response_new0 (op->response, KafkaProducePartitionResponse,
                                            topic->n_partitions);
      for (guint j = 0; j < topic->n_partitions; j++)
        {
          const KafkaProducePartition *part = &topic->partitions[j];
          KafkaProducePartitionResponse *slot = &tr->partitions[j];
          g_autoptr (GArray) cuts = g_array_new (FALSE, FALSE, sizeof (gsize));

          slot->partition = part->partition;
          slot->base_offset = -1;
          slot->log_append_time_ms = -1;
          slot->log_start_offset = -1;
          if (refuse != KAFKA_ERR_NONE)
            {
              slot->error_code = refuse;
              continue;
            }
          if (part->partition < 0)
            {
              slot->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
              continue;
            }
          if (!split_batches (part->records, part->records_len, cuts))
            {
              slot->error_code = KAFKA_ERR_CORRUPT_MESSAGE;
              op->failed = TRUE;
              if (op->first_error == NULL)
                op->first_error = g_strdup ("a record set that is not v2 record batches");
              continue;
            }
          for (guint k = 0; k < cuts->len; k += 2)
            {
              ProduceAppend *pa = g_new0 (ProduceAppend, 1);
              gsize off = g_array_index (cuts, gsize, k);
              gsize blen = g_array_index (cuts, gsize, k + 1);
              gint64 dup_offset = -1, dup_time = -1;
              gint16 seq_error = KAFKA_ERR_NONE;

              pa->op = op;
              pa->slot = slot;
              pa->stream = topic->name;
              pa->first = k == 0;
              switch (kafka_producers_check_batch (t, topic->name, part->partition,
                                                   part->records + off, blen, &pa->batch,
                                                   &dup_offset, &dup_time, &seq_error))
                {
                case KAFKA_SEQ_OUT_DUPLICATE:
                  /* A retry of a batch already stored: its original offset,
                   * not a second copy. */
                  if (pa->first)
                    {
                      slot->base_offset = dup_offset;
                      slot->log_append_time_ms = dup_time;
                    }
                  g_free (pa);
                  continue;
                case KAFKA_SEQ_OUT_REJECT:
                  if (slot->error_code == KAFKA_ERR_NONE)
                    slot->error_code = seq_error;
                  g_free (pa);
                  continue;
                case KAFKA_SEQ_OUT_APPEND:
                default:
                  break;
                }
              op->outstanding++;
              sluice_counter_add (t->records_in, 1);
              pa->partition = part->partition;
              pa->bytes = kafka_request_slice (request, part->records + off, blen);
              g_ptr_array_add (appends, pa);
            }
        }
    }
  /* One run for the writer: every batch of the request in one group, one
   * completion, one answer. */
  for (guint i = 0; i < appends->len; i++)
    {
      ProduceAppend *pa = appends->pdata[i];

      sluice_host_append (t->host, kafka_conn_get_principal (conn), pa->stream, pa->partition,
                          NULL, 0, g_steal_pointer (&pa->bytes),
                          flags | SLUICE_APPEND_IN_PLACE
                            | (i + 1 < appends->len ? SLUICE_APPEND_MORE : 0),
                          produce_done, pa);
    }
  /* acks=0 is never answered, but its place in the queue is kept until the
   * appends are done: that bounds what a client that never waits can have
   * in flight. */
  op->pending = pending;
  op->acks0 = req->acks == 0;
  if (--op->outstanding == 0)
    produce_finish (op);
}

static const struct {
  gint16 api_key;
  gint16 min_version;
  gint16 max_version;
  KafkaHandlerFunc func;
} kafka_handlers[] = {
  { KAFKA_API_PRODUCE, 3, 7, handle_produce },
  { KAFKA_API_FETCH, 4, 11, kafka_handle_fetch },
  { KAFKA_API_LIST_OFFSETS, 1, 5, kafka_handle_list_offsets },
  { KAFKA_API_METADATA, 0, 8, handle_metadata },
  { KAFKA_API_OFFSET_COMMIT, 2, 7, kafka_handle_offset_commit },
  { KAFKA_API_OFFSET_FETCH, 1, 5, kafka_handle_offset_fetch },
  { KAFKA_API_FIND_COORDINATOR, 0, 2, kafka_handle_find_coordinator },
  { KAFKA_API_JOIN_GROUP, 0, 5, kafka_handle_join_group },
  { KAFKA_API_HEARTBEAT, 0, 3, kafka_handle_heartbeat },
  { KAFKA_API_LEAVE_GROUP, 0, 3, kafka_handle_leave_group },
  { KAFKA_API_SYNC_GROUP, 0, 3, kafka_handle_sync_group },
  { KAFKA_API_INIT_PRODUCER_ID, 0, 4, kafka_handle_init_producer_id },
  { KAFKA_API_CREATE_TOPICS, 0, 4, kafka_handle_create_topics },
  { KAFKA_API_DELETE_TOPICS, 0, 3, kafka_handle_delete_topics },
  { KAFKA_API_DESCRIBE_CONFIGS, 0, 2, kafka_handle_describe_configs },
  { KAFKA_API_SASL_AUTHENTICATE, 0, 1, kafka_handle_sasl_authenticate },
  { KAFKA_API_SASL_HANDSHAKE, 0, 1, kafka_handle_sasl_handshake },
  { KAFKA_API_API_VERSIONS, 0, 3, handle_api_versions },
};

KafkaHandlerFunc
kafka_handler_lookup (gint16 api_key, gint16 *min_version, gint16 *max_version)
{
  for (guint i = 0; i < G_N_ELEMENTS (kafka_handlers); i++)
    if (kafka_handlers[i].api_key == api_key)
      {
        *min_version = kafka_handlers[i].min_version;
        *max_version = kafka_handlers[i].max_version;
        return kafka_handlers[i].func;
      }
  return NULL;
}
