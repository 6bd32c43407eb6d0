/* transport-kafka — response encoding, one function per API key, each
 * following the version history of the protocol guide's response schema.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-protocol.h"

#include <string.h>

KafkaResponse *
kafka_response_new (gint16 api_key, gint16 api_version, gint32 correlation_id)
{
  KafkaResponse *response = g_new0 (KafkaResponse, 1);

  response->api_key = api_key;
  response->api_version = api_version;
  response->correlation_id = correlation_id;
  response->arena = g_ptr_array_new_with_free_func (g_free);
  response->refs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  return response;
}

void
kafka_response_free (KafkaResponse *response)
{
  if (response == NULL)
    return;
  g_ptr_array_unref (response->arena);
  g_ptr_array_unref (response->refs);
  g_free (response);
}

gpointer
kafka_response_alloc (KafkaResponse *response, gsize n, gsize size)
{
  gpointer p = g_malloc0_n (MAX (n, 1), size);

  g_ptr_array_add (response->arena, p);
  return p;
}

char *
kafka_response_strdup (KafkaResponse *response, const char *s)
{
  char *copy = g_strdup (s);

  if (copy != NULL)
    g_ptr_array_add (response->arena, copy);
  return copy;
}

GBytes *
kafka_response_keep (KafkaResponse *response, GBytes *bytes)
{
  g_ptr_array_add (response->refs, g_bytes_ref (bytes));
  return bytes;
}

static void
encode_api_versions (KafkaWriter *w, gint16 v, const KafkaApiVersionsResponse *m)
{
  kafka_write_i16 (w, m->error_code);
  kafka_write_array_len (w, (gint32) m->n_apis);
  for (guint i = 0; i < m->n_apis; i++)
    {
      kafka_write_i16 (w, m->apis[i].api_key);
      kafka_write_i16 (w, m->apis[i].min_version);
      kafka_write_i16 (w, m->apis[i].max_version);
      kafka_write_tags (w);
    }
  if (v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_tags (w);
}

static void
encode_metadata (KafkaWriter *w, gint16 v, const KafkaMetadataResponse *m)
{
  if (v >= 3)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_array_len (w, (gint32) m->n_brokers);
  for (guint i = 0; i < m->n_brokers; i++)
    {
      const KafkaMetadataBroker *b = &m->brokers[i];

      kafka_write_i32 (w, b->node_id);
      kafka_write_string (w, b->host);
      kafka_write_i32 (w, b->port);
      if (v >= 1)
        kafka_write_string (w, b->rack);
      kafka_write_tags (w);
    }
  if (v >= 2)
    kafka_write_string (w, m->cluster_id);
  if (v >= 1)
    kafka_write_i32 (w, m->controller_id);
  kafka_write_array_len (w, (gint32) m->n_topics);
  for (guint i = 0; i < m->n_topics; i++)
    {
      const KafkaMetadataTopic *t = &m->topics[i];

      kafka_write_i16 (w, t->error_code);
      kafka_write_string (w, t->name);
      if (v >= 1)
        kafka_write_bool (w, t->is_internal);
      kafka_write_array_len (w, (gint32) t->n_partitions);
      for (guint j = 0; j < t->n_partitions; j++)
        {
          const KafkaMetadataPartition *p = &t->partitions[j];

          kafka_write_i16 (w, p->error_code);
          kafka_write_i32 (w, p->partition);
          kafka_write_i32 (w, p->leader_id);
          if (v >= 7)
            kafka_write_i32 (w, p->leader_epoch);
          for (guint k = 0; k < 2; k++)  /* replicas, then the in-sync replicas */
            {
              kafka_write_array_len (w, (gint32) p->n_replicas);
              for (guint r = 0; r < p->n_replicas; r++)
                kafka_write_i32 (w, p->replicas[r]);
            }
          if (v >= 5)
            kafka_write_array_len (w, 0);  /* offline replicas */
          kafka_write_tags (w);
        }
      if (v >= 8)
        kafka_write_i32 (w, t->topic_authorized_operations);
      kafka_write_tags (w);
    }
  if (v >= 8)
    kafka_write_i32 (w, m->cluster_authorized_operations);
  kafka_write_tags (w);
}

static void
encode_produce (KafkaWriter *w, gint16 v, const KafkaProduceResponse *m)
{
  kafka_write_array_len (w, (gint32) m->n_topics);
  for (guint i = 0; i < m->n_topics; i++)
    {
      const KafkaProduceTopicResponse *t = &m->topics[i];

      kafka_write_string (w, t->name);
      kafka_write_array_len (w, (gint32) t->n_partitions);
      for (guint j = 0; j < t->n_partitions; j++)
        {
          const KafkaProducePartitionResponse *p = &t->partitions[j];

          kafka_write_i32 (w, p->partition);
          kafka_write_i16 (w, p->error_code);
          kafka_write_i64 (w, p->base_offset);
          if (v >= 2)
            kafka_write_i64 (w, p->log_append_time_ms);
          if (v >= 5)
            kafka_write_i64 (w, p->log_start_offset);
          kafka_write_tags (w);
        }
      kafka_write_tags (w);
    }
  if (v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_tags (w);
}

static void
encode_fetch (KafkaWriter *w, gint16 v, const KafkaFetchResponse *m)
{
  if (v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  if (v >= 7)
    {
      kafka_write_i16 (w, m->error_code);
      kafka_write_i32 (w, m->session_id);
    }
  kafka_write_array_len (w, (gint32) m->n_topics);
  for (guint i = 0; i < m->n_topics; i++)
    {
      const KafkaFetchTopicResponse *t = &m->topics[i];

      kafka_write_string (w, t->name);
      kafka_write_array_len (w, (gint32) t->n_partitions);
      for (guint j = 0; j < t->n_partitions; j++)
        {
          const KafkaFetchPartitionResponse *p = &t->partitions[j];

          kafka_write_i32 (w, p->partition);
          kafka_write_i16 (w, p->error_code);
          kafka_write_i64 (w, p->high_watermark);
          if (v >= 4)
            kafka_write_i64 (w, p->last_stable_offset);
          if (v >= 5)
            kafka_write_i64 (w, p->log_start_offset);
          if (v >= 4)
            kafka_write_array_len (w, 0);  /* aborted transactions: none */
          if (v >= 11)
            kafka_write_i32 (w, p->preferred_read_replica);
          kafka_write_bytes_parts (w, p->records, p->n_records, p->records_null);
          kafka_write_tags (w);
        }
      kafka_write_tags (w);
    }
  kafka_write_tags (w);
}

static void
encode_list_offsets (KafkaWriter *w, gint16 v, const KafkaListOffsetsResponse *m)
{
  if (v >= 2)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_array_len (w, (gint32) m->n_topics);
  for (guint i = 0; i < m->n_topics; i++)
    {
      const KafkaListOffsetsTopicResponse *t = &m->topics[i];

      kafka_write_string (w, t->name);
      kafka_write_array_len (w, (gint32) t->n_partitions);
      for (guint j = 0; j < t->n_partitions; j++)
        {
          const KafkaListOffsetsPartitionResponse *p = &t->partitions[j];

          kafka_write_i32 (w, p->partition);
          kafka_write_i16 (w, p->error_code);
          kafka_write_i64 (w, p->timestamp);
          kafka_write_i64 (w, p->offset);
          if (v >= 4)
            kafka_write_i32 (w, p->leader_epoch);
          kafka_write_tags (w);
        }
      kafka_write_tags (w);
    }
  kafka_write_tags (w);
}

static void
encode_find_coordinator (KafkaWriter *w, gint16 v, const KafkaFindCoordinatorResponse *m)
{
  if (v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_i16 (w, m->error_code);
  if (v >= 1)
    kafka_write_string (w, m->error_message);
  kafka_write_i32 (w, m->node_id);
  kafka_write_string (w, m->host);
  kafka_write_i32 (w, m->port);
  kafka_write_tags (w);
}

static void
encode_join_group (KafkaWriter *w, gint16 v, const KafkaJoinGroupResponse *m)
{
  if (v >= 2)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_i16 (w, m->error_code);
  kafka_write_i32 (w, m->generation_id);
  kafka_write_string (w, m->protocol_name != NULL ? m->protocol_name : "");
  kafka_write_string (w, m->leader != NULL ? m->leader : "");
  kafka_write_string (w, m->member_id != NULL ? m->member_id : "");
  kafka_write_array_len (w, (gint32) m->n_members);
  for (guint i = 0; i < m->n_members; i++)
    {
      const KafkaJoinGroupMember *mem = &m->members[i];

      kafka_write_string (w, mem->member_id);
      if (v >= 5)
        kafka_write_string (w, mem->group_instance_id);
      kafka_write_bytes (w, mem->metadata, mem->metadata_len, FALSE);
      kafka_write_tags (w);
    }
  kafka_write_tags (w);
}

static void
encode_sync_group (KafkaWriter *w, gint16 v, const KafkaSyncGroupResponse *m)
{
  if (v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_i16 (w, m->error_code);
  kafka_write_bytes (w, m->assignment, m->assignment_len, FALSE);
  kafka_write_tags (w);
}

static void
encode_heartbeat (KafkaWriter *w, gint16 v, const KafkaHeartbeatResponse *m)
{
  if (v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_i16 (w, m->error_code);
  kafka_write_tags (w);
}

static void
encode_leave_group (KafkaWriter *w, gint16 v, const KafkaLeaveGroupResponse *m)
{
  if (v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_i16 (w, m->error_code);
  if (v >= 3)
    {
      kafka_write_array_len (w, (gint32) m->n_members);
      for (guint i = 0; i < m->n_members; i++)
        {
          kafka_write_string (w, m->members[i].member_id);
          kafka_write_string (w, m->members[i].group_instance_id);
          kafka_write_i16 (w, m->members[i].error_code);
          kafka_write_tags (w);
        }
    }
  kafka_write_tags (w);
}

static void
encode_offset_commit (KafkaWriter *w, gint16 v, const KafkaOffsetCommitResponse *m)
{
  if (v >= 3)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_array_len (w, (gint32) m->n_topics);
  for (guint i = 0; i < m->n_topics; i++)
    {
      const KafkaOffsetCommitTopicResponse *t = &m->topics[i];

      kafka_write_string (w, t->name);
      kafka_write_array_len (w, (gint32) t->n_partitions);
      for (guint j = 0; j < t->n_partitions; j++)
        {
          kafka_write_i32 (w, t->partitions[j].partition);
          kafka_write_i16 (w, t->partitions[j].error_code);
          kafka_write_tags (w);
        }
      kafka_write_tags (w);
    }
  kafka_write_tags (w);
}

static void
encode_offset_fetch (KafkaWriter *w, gint16 v, const KafkaOffsetFetchResponse *m)
{
  if (v >= 3)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_array_len (w, (gint32) m->n_topics);
  for (guint i = 0; i < m->n_topics; i++)
    {
      const KafkaOffsetFetchTopicResponse *t = &m->topics[i];

      kafka_write_string (w, t->name);
      kafka_write_array_len (w, (gint32) t->n_partitions);
      for (guint j = 0; j < t->n_partitions; j++)
        {
          const KafkaOffsetFetchPartitionResponse *p = &t->partitions[j];

          kafka_write_i32 (w, p->partition);
          kafka_write_i64 (w, p->committed_offset);
          if (v >= 5)
            kafka_write_i32 (w, p->committed_leader_epoch);
          kafka_write_string (w, p->metadata);
          kafka_write_i16 (w, p->error_code);
          kafka_write_tags (w);
        }
      kafka_write_tags (w);
    }
  if (v >= 2)
    kafka_write_i16 (w, m->error_code);
  kafka_write_tags (w);
}

static void
encode_topics (KafkaWriter *w, gint16 v, gint16 api_key, const KafkaTopicsResponse *m)
{
  gboolean create = api_key == KAFKA_API_CREATE_TOPICS;

  if (create ? v >= 2 : v >= 1)
    kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_array_len (w, (gint32) m->n_topics);
  for (guint i = 0; i < m->n_topics; i++)
    {
      kafka_write_string (w, m->topics[i].name);
      kafka_write_i16 (w, m->topics[i].error_code);
      if (create && v >= 1)
        kafka_write_string (w, m->topics[i].error_message);
      kafka_write_tags (w);
    }
  kafka_write_tags (w);
}

static void
encode_describe_configs (KafkaWriter *w, gint16 v, const KafkaDescribeConfigsResponse *m)
{
  kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_array_len (w, (gint32) m->n_results);
  for (guint i = 0; i < m->n_results; i++)
    {
      const KafkaDescribeConfigsResult *res = &m->results[i];

      kafka_write_i16 (w, res->error_code);
      kafka_write_string (w, res->error_message);
      kafka_write_i8 (w, res->resource_type);
      kafka_write_string (w, res->resource_name);
      kafka_write_array_len (w, (gint32) res->n_configs);
      for (guint j = 0; j < res->n_configs; j++)
        {
          const KafkaConfigResult *c = &res->configs[j];

          kafka_write_string (w, c->name);
          kafka_write_string (w, c->value);
          kafka_write_bool (w, c->read_only);
          if (v == 0)
            kafka_write_bool (w, c->is_default);
          else
            kafka_write_i8 (w, c->config_source);
          kafka_write_bool (w, c->is_sensitive);
          if (v >= 1)
            kafka_write_array_len (w, 0);  /* synonyms */
          kafka_write_tags (w);
        }
      kafka_write_tags (w);
    }
  kafka_write_tags (w);
}

static void
encode_sasl_handshake (KafkaWriter *w, gint16 v, const KafkaSaslHandshakeResponse *m)
{
  kafka_write_i16 (w, m->error_code);
  kafka_write_array_len (w, (gint32) m->n_mechanisms);
  for (guint i = 0; i < m->n_mechanisms; i++)
    kafka_write_string (w, m->mechanisms[i]);
}

static void
encode_sasl_authenticate (KafkaWriter *w, gint16 v, const KafkaSaslAuthenticateResponse *m)
{
  kafka_write_i16 (w, m->error_code);
  kafka_write_string (w, m->error_message);
  kafka_write_bytes (w, m->auth_bytes, m->auth_bytes_len, FALSE);
  if (v >= 1)
    kafka_write_i64 (w, m->session_lifetime_ms);
  kafka_write_tags (w);
}

static void
encode_init_producer_id (KafkaWriter *w, gint16 v, const KafkaInitProducerIdResponse *m)
{
  kafka_write_i32 (w, m->throttle_time_ms);
  kafka_write_i16 (w, m->error_code);
  kafka_write_i64 (w, m->producer_id);
  kafka_write_i16 (w, m->producer_epoch);
  kafka_write_tags (w);
}

GPtrArray *
kafka_response_encode (const KafkaResponse *response)
{
  KafkaWriter w;
  gint16 v = response->api_version;
  gint16 key = response->api_key;
  const KafkaApiInfo *info = kafka_api_lookup (key);

  g_return_val_if_fail (info != NULL, NULL);
  kafka_writer_init (&w, FALSE);
  kafka_write_response_header (&w, response->correlation_id,
                               kafka_response_header_version (key, v));
  w.flexible = v >= info->first_flexible;
  switch (key)
    {
    case KAFKA_API_PRODUCE: encode_produce (&w, v, &response->produce); break;
    case KAFKA_API_FETCH: encode_fetch (&w, v, &response->fetch); break;
    case KAFKA_API_LIST_OFFSETS: encode_list_offsets (&w, v, &response->list_offsets); break;
    case KAFKA_API_METADATA: encode_metadata (&w, v, &response->metadata); break;
    case KAFKA_API_OFFSET_COMMIT: encode_offset_commit (&w, v, &response->offset_commit); break;
    case KAFKA_API_OFFSET_FETCH: encode_offset_fetch (&w, v, &response->offset_fetch); break;
    case KAFKA_API_FIND_COORDINATOR:
      encode_find_coordinator (&w, v, &response->find_coordinator);
      break;
    case KAFKA_API_JOIN_GROUP: encode_join_group (&w, v, &response->join_group); break;
    case KAFKA_API_HEARTBEAT: encode_heartbeat (&w, v, &response->heartbeat); break;
    case KAFKA_API_LEAVE_GROUP: encode_leave_group (&w, v, &response->leave_group); break;
    case KAFKA_API_SYNC_GROUP: encode_sync_group (&w, v, &response->sync_group); break;
    case KAFKA_API_SASL_HANDSHAKE: encode_sasl_handshake (&w, v, &response->sasl_handshake); break;
    case KAFKA_API_API_VERSIONS: encode_api_versions (&w, v, &response->api_versions); break;
    case KAFKA_API_CREATE_TOPICS: encode_topics (&w, v, key, &response->create_topics); break;
    case KAFKA_API_DELETE_TOPICS: encode_topics (&w, v, key, &response->delete_topics); break;
    case KAFKA_API_INIT_PRODUCER_ID:
      encode_init_producer_id (&w, v, &response->init_producer_id);
      break;
    case KAFKA_API_DESCRIBE_CONFIGS:
      encode_describe_configs (&w, v, &response->describe_configs);
      break;
    case KAFKA_API_SASL_AUTHENTICATE:
      encode_sasl_authenticate (&w, v, &response->sasl_authenticate);
      break;
    default:
      g_assert_not_reached ();
    }
  return kafka_writer_finish_frame (&w);
}
