/* transport-kafka — request decoding, one function per API key, each
 * following the version history of the protocol guide's request schema.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-protocol.h"

#include <string.h>

#define NEW(r, type, n) ((type *) kafka_reader_alloc ((r), (n), sizeof (type)))

/* Array count that must not be null (classic arrays may say -1; we treat
 * that as empty, as the Java broker does for non-nullable fields). */
static guint
read_count (KafkaReader *r)
{
  gint32 n = kafka_read_array_len (r);
  return n < 0 ? 0 : (guint) n;
}

static const char **
read_string_array (KafkaReader *r, guint *n)
{
  const char **out;

  *n = read_count (r);
  out = NEW (r, const char *, *n);
  for (guint i = 0; i < *n && !kafka_reader_failed (r); i++)
    out[i] = kafka_read_string_nn (r);
  return out;
}

static void
decode_api_versions (KafkaReader *r, gint16 v, KafkaApiVersionsRequest *m)
{
  if (v >= 3)
    {
      m->client_software_name = kafka_read_string_nn (r);
      m->client_software_version = kafka_read_string_nn (r);
    }
  kafka_read_tags (r);
}

static void
decode_metadata (KafkaReader *r, gint16 v, KafkaMetadataRequest *m)
{
  gint32 n = kafka_read_array_len (r);

  /* v0: an empty list means every topic; v1+: a null list does. */
  m->all_topics = v == 0 ? n <= 0 : n < 0;
  m->n_topics = n < 0 ? 0 : (guint) n;
  m->topics = NEW (r, const char *, m->n_topics);
  for (guint i = 0; i < m->n_topics && !kafka_reader_failed (r); i++)
    {
      m->topics[i] = kafka_read_string_nn (r);
      kafka_read_tags (r);
    }
  m->allow_auto_topic_creation = v >= 4 ? kafka_read_bool (r) : TRUE;
  if (v >= 8)
    {
      m->include_cluster_authorized_operations = kafka_read_bool (r);
      m->include_topic_authorized_operations = kafka_read_bool (r);
    }
  kafka_read_tags (r);
}

static void
decode_produce (KafkaReader *r, gint16 v, KafkaProduceRequest *m)
{
  m->transactional_id = kafka_read_string (r);
  m->acks = kafka_read_i16 (r);
  m->timeout_ms = kafka_read_i32 (r);
  m->n_topics = read_count (r);
  m->topics = NEW (r, KafkaProduceTopic, m->n_topics);
  for (guint i = 0; i < m->n_topics && !kafka_reader_failed (r); i++)
    {
      KafkaProduceTopic *t = &m->topics[i];

      t->name = kafka_read_string_nn (r);
      t->n_partitions = read_count (r);
      t->partitions = NEW (r, KafkaProducePartition, t->n_partitions);
      for (guint j = 0; j < t->n_partitions && !kafka_reader_failed (r); j++)
        {
          KafkaProducePartition *p = &t->partitions[j];

          p->partition = kafka_read_i32 (r);
          kafka_read_bytes (r, &p->records, &p->records_len);
          kafka_read_tags (r);
        }
      kafka_read_tags (r);
    }
  kafka_read_tags (r);
}

static void
decode_fetch (KafkaReader *r, gint16 v, KafkaFetchRequest *m)
{
  m->replica_id = kafka_read_i32 (r);
  m->max_wait_ms = kafka_read_i32 (r);
  m->min_bytes = kafka_read_i32 (r);
  m->max_bytes = v >= 3 ? kafka_read_i32 (r) : G_MAXINT32;
  m->isolation_level = v >= 4 ? kafka_read_i8 (r) : 0;
  m->session_epoch = -1;
  if (v >= 7)
    {
      m->session_id = kafka_read_i32 (r);
      m->session_epoch = kafka_read_i32 (r);
    }
  m->n_topics = read_count (r);
  m->topics = NEW (r, KafkaFetchTopic, m->n_topics);
  for (guint i = 0; i < m->n_topics && !kafka_reader_failed (r); i++)
    {
      KafkaFetchTopic *t = &m->topics[i];

      t->name = kafka_read_string_nn (r);
      t->n_partitions = read_count (r);
      t->partitions = NEW (r, KafkaFetchPartition, t->n_partitions);
      for (guint j = 0; j < t->n_partitions && !kafka_reader_failed (r); j++)
        {
          KafkaFetchPartition *p = &t->partitions[j];

          p->partition = kafka_read_i32 (r);
          p->current_leader_epoch = v >= 9 ? kafka_read_i32 (r) : -1;
          p->fetch_offset = kafka_read_i64 (r);
          p->log_start_offset = v >= 5 ? kafka_read_i64 (r) : -1;
          p->partition_max_bytes = kafka_read_i32 (r);
          kafka_read_tags (r);
        }
      kafka_read_tags (r);
    }
  if (v >= 7)
    {
      m->n_forgotten = read_count (r);
      for (guint i = 0; i < m->n_forgotten && !kafka_reader_failed (r); i++)
        {
          guint n;

          (void) kafka_read_string_nn (r);
          n = read_count (r);
          for (guint j = 0; j < n && !kafka_reader_failed (r); j++)
            (void) kafka_read_i32 (r);
          kafka_read_tags (r);
        }
    }
  if (v >= 11)
    m->rack_id = kafka_read_string (r);
  kafka_read_tags (r);
}

static void
decode_list_offsets (KafkaReader *r, gint16 v, KafkaListOffsetsRequest *m)
{
  m->replica_id = kafka_read_i32 (r);
  m->isolation_level = v >= 2 ? kafka_read_i8 (r) : 0;
  m->n_topics = read_count (r);
  m->topics = NEW (r, KafkaListOffsetsTopic, m->n_topics);
  for (guint i = 0; i < m->n_topics && !kafka_reader_failed (r); i++)
    {
      KafkaListOffsetsTopic *t = &m->topics[i];

      t->name = kafka_read_string_nn (r);
      t->n_partitions = read_count (r);
      t->partitions = NEW (r, KafkaListOffsetsPartition, t->n_partitions);
      for (guint j = 0; j < t->n_partitions && !kafka_reader_failed (r); j++)
        {
          KafkaListOffsetsPartition *p = &t->partitions[j];

          p->partition = kafka_read_i32 (r);
          p->current_leader_epoch = v >= 4 ? kafka_read_i32 (r) : -1;
          p->timestamp = kafka_read_i64 (r);
          kafka_read_tags (r);
        }
      kafka_read_tags (r);
    }
  kafka_read_tags (r);
}

static void
decode_find_coordinator (KafkaReader *r, gint16 v, KafkaFindCoordinatorRequest *m)
{
  m->key = kafka_read_string_nn (r);
  m->key_type = v >= 1 ? kafka_read_i8 (r) : 0;
  kafka_read_tags (r);
}

static void
decode_join_group (KafkaReader *r, gint16 v, KafkaJoinGroupRequest *m)
{
  m->group_id = kafka_read_string_nn (r);
  m->session_timeout_ms = kafka_read_i32 (r);
  m->rebalance_timeout_ms = v >= 1 ? kafka_read_i32 (r) : m->session_timeout_ms;
  m->member_id = kafka_read_string_nn (r);
  if (v >= 5)
    m->group_instance_id = kafka_read_string (r);
  m->protocol_type = kafka_read_string_nn (r);
  m->n_protocols = read_count (r);
  m->protocols = NEW (r, KafkaJoinGroupProtocol, m->n_protocols);
  for (guint i = 0; i < m->n_protocols && !kafka_reader_failed (r); i++)
    {
      KafkaJoinGroupProtocol *p = &m->protocols[i];

      p->name = kafka_read_string_nn (r);
      kafka_read_bytes (r, &p->metadata, &p->metadata_len);
      kafka_read_tags (r);
    }
  kafka_read_tags (r);
}

static void
decode_sync_group (KafkaReader *r, gint16 v, KafkaSyncGroupRequest *m)
{
  m->group_id = kafka_read_string_nn (r);
  m->generation_id = kafka_read_i32 (r);
  m->member_id = kafka_read_string_nn (r);
  if (v >= 3)
    m->group_instance_id = kafka_read_string (r);
  m->n_assignments = read_count (r);
  m->assignments = NEW (r, KafkaSyncGroupAssignment, m->n_assignments);
  for (guint i = 0; i < m->n_assignments && !kafka_reader_failed (r); i++)
    {
      KafkaSyncGroupAssignment *a = &m->assignments[i];

      a->member_id = kafka_read_string_nn (r);
      kafka_read_bytes (r, &a->assignment, &a->assignment_len);
      kafka_read_tags (r);
    }
  kafka_read_tags (r);
}

static void
decode_heartbeat (KafkaReader *r, gint16 v, KafkaHeartbeatRequest *m)
{
  m->group_id = kafka_read_string_nn (r);
  m->generation_id = kafka_read_i32 (r);
  m->member_id = kafka_read_string_nn (r);
  if (v >= 3)
    m->group_instance_id = kafka_read_string (r);
  kafka_read_tags (r);
}

static void
decode_leave_group (KafkaReader *r, gint16 v, KafkaLeaveGroupRequest *m)
{
  m->group_id = kafka_read_string_nn (r);
  if (v <= 2)
    {
      m->n_members = 1;
      m->members = NEW (r, KafkaLeaveGroupMember, 1);
      if (m->members != NULL)
        m->members[0].member_id = kafka_read_string_nn (r);
    }
  else
    {
      m->n_members = read_count (r);
      m->members = NEW (r, KafkaLeaveGroupMember, m->n_members);
      for (guint i = 0; i < m->n_members && !kafka_reader_failed (r); i++)
        {
          m->members[i].member_id = kafka_read_string_nn (r);
          m->members[i].group_instance_id = kafka_read_string (r);
          kafka_read_tags (r);
        }
    }
  kafka_read_tags (r);
}

static void
decode_offset_commit (KafkaReader *r, gint16 v, KafkaOffsetCommitRequest *m)
{
  m->group_id = kafka_read_string_nn (r);
  m->generation_id = kafka_read_i32 (r);
  m->member_id = kafka_read_string_nn (r);
  if (v >= 7)
    m->group_instance_id = kafka_read_string (r);
  m->retention_time_ms = v <= 4 ? kafka_read_i64 (r) : -1;
  m->n_topics = read_count (r);
  m->topics = NEW (r, KafkaOffsetCommitTopic, m->n_topics);
  for (guint i = 0; i < m->n_topics && !kafka_reader_failed (r); i++)
    {
      KafkaOffsetCommitTopic *t = &m->topics[i];

      t->name = kafka_read_string_nn (r);
      t->n_partitions = read_count (r);
      t->partitions = NEW (r, KafkaOffsetCommitPartition, t->n_partitions);
      for (guint j = 0; j < t->n_partitions && !kafka_reader_failed (r); j++)
        {
          KafkaOffsetCommitPartition *p = &t->partitions[j];

          p->partition = kafka_read_i32 (r);
          p->committed_offset = kafka_read_i64 (r);
          p->committed_leader_epoch = v >= 6 ? kafka_read_i32 (r) : -1;
          p->committed_metadata = kafka_read_string (r);
          kafka_read_tags (r);
        }
      kafka_read_tags (r);
    }
  kafka_read_tags (r);
}

static void
decode_offset_fetch (KafkaReader *r, gint16 v, KafkaOffsetFetchRequest *m)
{
  gint32 n;

  m->group_id = kafka_read_string_nn (r);
  n = kafka_read_array_len (r);
  m->all_topics = n < 0;
  if (n < 0 && v < 2)
    kafka_reader_fail (r, "null topic list before OffsetFetch v2");
  m->n_topics = n < 0 ? 0 : (guint) n;
  m->topics = NEW (r, KafkaOffsetFetchTopic, m->n_topics);
  for (guint i = 0; i < m->n_topics && !kafka_reader_failed (r); i++)
    {
      KafkaOffsetFetchTopic *t = &m->topics[i];

      t->name = kafka_read_string_nn (r);
      t->n_partitions = read_count (r);
      t->partitions = NEW (r, gint32, t->n_partitions);
      for (guint j = 0; j < t->n_partitions && !kafka_reader_failed (r); j++)
        t->partitions[j] = kafka_read_i32 (r);
      kafka_read_tags (r);
    }
  kafka_read_tags (r);
}

static void
decode_create_topics (KafkaReader *r, gint16 v, KafkaCreateTopicsRequest *m)
{
  m->n_topics = read_count (r);
  m->topics = NEW (r, KafkaCreatableTopic, m->n_topics);
  for (guint i = 0; i < m->n_topics && !kafka_reader_failed (r); i++)
    {
      KafkaCreatableTopic *t = &m->topics[i];

      t->name = kafka_read_string_nn (r);
      t->num_partitions = kafka_read_i32 (r);
      t->replication_factor = kafka_read_i16 (r);
      t->n_assignments = read_count (r);
      for (guint j = 0; j < t->n_assignments && !kafka_reader_failed (r); j++)
        {
          guint n;

          (void) kafka_read_i32 (r);
          n = read_count (r);
          for (guint k = 0; k < n && !kafka_reader_failed (r); k++)
            (void) kafka_read_i32 (r);
          kafka_read_tags (r);
        }
      t->n_configs = read_count (r);
      t->configs = NEW (r, KafkaConfigEntry, t->n_configs);
      for (guint j = 0; j < t->n_configs && !kafka_reader_failed (r); j++)
        {
          t->configs[j].name = kafka_read_string_nn (r);
          t->configs[j].value = kafka_read_string (r);
          kafka_read_tags (r);
        }
      kafka_read_tags (r);
    }
  m->timeout_ms = kafka_read_i32 (r);
  m->validate_only = v >= 1 ? kafka_read_bool (r) : FALSE;
  kafka_read_tags (r);
}

static void
decode_delete_topics (KafkaReader *r, gint16 v, KafkaDeleteTopicsRequest *m)
{
  m->topics = read_string_array (r, &m->n_topics);
  m->timeout_ms = kafka_read_i32 (r);
  kafka_read_tags (r);
}

static void
decode_describe_configs (KafkaReader *r, gint16 v, KafkaDescribeConfigsRequest *m)
{
  m->n_resources = read_count (r);
  m->resources = NEW (r, KafkaDescribeConfigsResource, m->n_resources);
  for (guint i = 0; i < m->n_resources && !kafka_reader_failed (r); i++)
    {
      KafkaDescribeConfigsResource *res = &m->resources[i];
      gint32 n;

      res->resource_type = kafka_read_i8 (r);
      res->resource_name = kafka_read_string_nn (r);
      n = kafka_read_array_len (r);
      res->all_keys = n < 0;
      res->n_keys = n < 0 ? 0 : (guint) n;
      res->keys = NEW (r, const char *, res->n_keys);
      for (guint j = 0; j < res->n_keys && !kafka_reader_failed (r); j++)
        res->keys[j] = kafka_read_string_nn (r);
      kafka_read_tags (r);
    }
  m->include_synonyms = v >= 1 ? kafka_read_bool (r) : FALSE;
  kafka_read_tags (r);
}

static void
decode_sasl_handshake (KafkaReader *r, gint16 v, KafkaSaslHandshakeRequest *m)
{
  m->mechanism = kafka_read_string_nn (r);
}

static void
decode_sasl_authenticate (KafkaReader *r, gint16 v, KafkaSaslAuthenticateRequest *m)
{
  if (!kafka_read_bytes (r, &m->auth_bytes, &m->auth_bytes_len))
    kafka_reader_fail (r, "null SASL bytes");
  kafka_read_tags (r);
}

static void
decode_init_producer_id (KafkaReader *r, gint16 v, KafkaInitProducerIdRequest *m)
{
  m->transactional_id = kafka_read_string (r);
  m->transaction_timeout_ms = kafka_read_i32 (r);
  m->producer_id = v >= 3 ? kafka_read_i64 (r) : -1;
  m->producer_epoch = v >= 3 ? kafka_read_i16 (r) : -1;
  kafka_read_tags (r);
}

/* --- the request --- */

KafkaRequest *
kafka_request_new (GBytes *frame)
{
  KafkaRequest *request = g_new0 (KafkaRequest, 1);

  request->frame = g_bytes_ref (frame);
  request->arena = g_ptr_array_new_with_free_func (g_free);
  return request;
}

void
kafka_request_free (KafkaRequest *request)
{
  if (request == NULL)
    return;
  g_bytes_unref (request->frame);
  g_ptr_array_unref (request->arena);
  g_free (request);
}

gboolean
kafka_request_header_peek (const guint8 *frame, gsize len, KafkaRequestHeader *header)
{
  KafkaReader r;

  kafka_reader_init (&r, frame, len, NULL);
  header->api_key = kafka_read_i16 (&r);
  header->api_version = kafka_read_i16 (&r);
  header->correlation_id = kafka_read_i32 (&r);
  header->client_id = NULL;
  header->header_version = kafka_api_is_flexible (header->api_key, header->api_version) ? 2 : 1;
  return !kafka_reader_failed (&r);
}

GBytes *
kafka_request_slice (const KafkaRequest *request, const guint8 *data, gsize len)
{
  gsize frame_len;
  const guint8 *base = g_bytes_get_data (request->frame, &frame_len);

  g_return_val_if_fail (data >= base && data + len <= base + frame_len, NULL);
  return g_bytes_new_from_bytes (request->frame, (gsize) (data - base), len);
}

gboolean
kafka_request_decode (KafkaRequest *request, GError **error)
{
  KafkaReader r;
  gsize len;
  const guint8 *data = g_bytes_get_data (request->frame, &len);
  KafkaRequestHeader *h = &request->header;
  const KafkaApiInfo *info;
  gint16 v;

  kafka_reader_init (&r, data, len, request->arena);
  h->api_key = kafka_read_i16 (&r);
  h->api_version = kafka_read_i16 (&r);
  h->correlation_id = kafka_read_i32 (&r);
  if (kafka_reader_failed (&r))
    {
      g_set_error (error, KAFKA_CODEC_ERROR, KAFKA_CODEC_ERROR_MALFORMED,
                   "request header: %s", r.failed);
      return FALSE;
    }
  info = kafka_api_lookup (h->api_key);
  v = h->api_version;
  /* Whether the header has tagged fields depends on the version; for one
   * we do not support, only the correlation id matters (to answer). */
  h->header_version = info != NULL && v >= info->first_flexible && v <= info->max_version
                      ? 2 : 1;
  h->client_id = kafka_read_classic_string (&r);
  if (h->header_version >= 2)
    {
      r.flexible = TRUE;
      kafka_read_tags (&r);
    }
  if (kafka_reader_failed (&r))
    {
      g_set_error (error, KAFKA_CODEC_ERROR, KAFKA_CODEC_ERROR_MALFORMED,
                   "request header: %s", r.failed);
      return FALSE;
    }
  request->header_ok = TRUE;
  if (info == NULL)
    {
      g_set_error (error, KAFKA_CODEC_ERROR, KAFKA_CODEC_ERROR_UNKNOWN_API,
                   "API key %d is not implemented", h->api_key);
      return FALSE;
    }
  if (v < info->min_version || v > info->max_version)
    {
      g_set_error (error, KAFKA_CODEC_ERROR, KAFKA_CODEC_ERROR_UNSUPPORTED_VERSION,
                   "%s v%d is not supported (v%d..v%d)", info->name, v,
                   info->min_version, info->max_version);
      return FALSE;
    }
  r.flexible = v >= info->first_flexible;

  switch (h->api_key)
    {
    case KAFKA_API_PRODUCE: decode_produce (&r, v, &request->produce); break;
    case KAFKA_API_FETCH: decode_fetch (&r, v, &request->fetch); break;
    case KAFKA_API_LIST_OFFSETS: decode_list_offsets (&r, v, &request->list_offsets); break;
    case KAFKA_API_METADATA: decode_metadata (&r, v, &request->metadata); break;
    case KAFKA_API_OFFSET_COMMIT: decode_offset_commit (&r, v, &request->offset_commit); break;
    case KAFKA_API_OFFSET_FETCH: decode_offset_fetch (&r, v, &request->offset_fetch); break;
    case KAFKA_API_FIND_COORDINATOR:
      decode_find_coordinator (&r, v, &request->find_coordinator);
      break;
    case KAFKA_API_JOIN_GROUP: decode_join_group (&r, v, &request->join_group); break;
    case KAFKA_API_HEARTBEAT: decode_heartbeat (&r, v, &request->heartbeat); break;
    case KAFKA_API_LEAVE_GROUP: decode_leave_group (&r, v, &request->leave_group); break;
    case KAFKA_API_SYNC_GROUP: decode_sync_group (&r, v, &request->sync_group); break;
    case KAFKA_API_SASL_HANDSHAKE: decode_sasl_handshake (&r, v, &request->sasl_handshake); break;
    case KAFKA_API_API_VERSIONS: decode_api_versions (&r, v, &request->api_versions); break;
    case KAFKA_API_CREATE_TOPICS: decode_create_topics (&r, v, &request->create_topics); break;
    case KAFKA_API_DELETE_TOPICS: decode_delete_topics (&r, v, &request->delete_topics); break;
    case KAFKA_API_INIT_PRODUCER_ID:
      decode_init_producer_id (&r, v, &request->init_producer_id);
      break;
    case KAFKA_API_DESCRIBE_CONFIGS:
      decode_describe_configs (&r, v, &request->describe_configs);
      break;
    case KAFKA_API_SASL_AUTHENTICATE:
      decode_sasl_authenticate (&r, v, &request->sasl_authenticate);
      break;
    default:
      g_assert_not_reached ();
    }
  if (!kafka_reader_failed (&r) && kafka_reader_remaining (&r) > 0)
    kafka_reader_fail (&r, "bytes after the request body");
  if (kafka_reader_failed (&r))
    {
      g_set_error (error, KAFKA_CODEC_ERROR, KAFKA_CODEC_ERROR_MALFORMED,
                   "%s v%d request (correlation id %d): %s at byte %" G_GSIZE_FORMAT,
                   info->name, v, h->correlation_id, r.failed, r.pos);
      return FALSE;
    }
  return TRUE;
}
