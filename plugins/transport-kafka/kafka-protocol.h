/* transport-kafka — request and response structures per API key, request
 * decoding (kafka-protocol.c) and response encoding
 * (kafka-protocol-responses.c).
 *
 * A decoded request lives in one KafkaRequest: strings are NUL-terminated
 * copies in its arena, bytes (record sets, group metadata) are views into
 * its frame, which it keeps. Responses are filled by the handlers with
 * memory from the response's arena (kafka_response_alloc) and encoded in
 * the request's version. Field names follow the protocol guide's schemas;
 * a field that a version lacks is ignored when encoding that version.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "kafka-codec.h"

G_BEGIN_DECLS

/* --- requests --- */

typedef struct {
  const char *client_software_name;     /* v3+ */
  const char *client_software_version;  /* v3+ */
} KafkaApiVersionsRequest;

typedef struct {
  gboolean all_topics;                  /* v0: empty list; v1+: null list */
  guint n_topics;
  const char **topics;
  gboolean allow_auto_topic_creation;   /* v4+ (TRUE before v4) */
  gboolean include_cluster_authorized_operations;  /* v8+ */
  gboolean include_topic_authorized_operations;    /* v8+ */
} KafkaMetadataRequest;

typedef struct {
  gint32 partition;
  const guint8 *records;                /* view into the frame; NULL: null */
  gsize records_len;
} KafkaProducePartition;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaProducePartition *partitions;
} KafkaProduceTopic;

typedef struct {
  const char *transactional_id;
  gint16 acks;
  gint32 timeout_ms;
  guint n_topics;
  KafkaProduceTopic *topics;
} KafkaProduceRequest;

typedef struct {
  gint32 partition;
  gint32 current_leader_epoch;          /* v9+ */
  gint64 fetch_offset;
  gint64 log_start_offset;              /* v5+ */
  gint32 partition_max_bytes;
} KafkaFetchPartition;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaFetchPartition *partitions;
} KafkaFetchTopic;

typedef struct {
  gint32 replica_id;
  gint32 max_wait_ms;
  gint32 min_bytes;
  gint32 max_bytes;
  gint8 isolation_level;
  gint32 session_id;                    /* v7+ */
  gint32 session_epoch;                 /* v7+ */
  guint n_topics;
  KafkaFetchTopic *topics;
  guint n_forgotten;                    /* v7+: topics, partitions ignored */
  const char *rack_id;                  /* v11+ */
} KafkaFetchRequest;

typedef struct {
  gint32 partition;
  gint32 current_leader_epoch;          /* v4+ */
  gint64 timestamp;                     /* -1 latest, -2 earliest, else ms */
} KafkaListOffsetsPartition;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaListOffsetsPartition *partitions;
} KafkaListOffsetsTopic;

typedef struct {
  gint32 replica_id;
  gint8 isolation_level;                /* v2+ */
  guint n_topics;
  KafkaListOffsetsTopic *topics;
} KafkaListOffsetsRequest;

typedef struct {
  const char *key;
  gint8 key_type;                       /* v1+: 0 group, 1 transaction */
} KafkaFindCoordinatorRequest;

typedef struct {
  const char *name;
  const guint8 *metadata;
  gsize metadata_len;
} KafkaJoinGroupProtocol;

typedef struct {
  const char *group_id;
  gint32 session_timeout_ms;
  gint32 rebalance_timeout_ms;          /* v1+ (= session timeout before) */
  const char *member_id;
  const char *group_instance_id;        /* v5+ */
  const char *protocol_type;
  guint n_protocols;
  KafkaJoinGroupProtocol *protocols;
} KafkaJoinGroupRequest;

typedef struct {
  const char *member_id;
  const guint8 *assignment;
  gsize assignment_len;
} KafkaSyncGroupAssignment;

typedef struct {
  const char *group_id;
  gint32 generation_id;
  const char *member_id;
  const char *group_instance_id;        /* v3+ */
  guint n_assignments;
  KafkaSyncGroupAssignment *assignments;
} KafkaSyncGroupRequest;

typedef struct {
  const char *group_id;
  gint32 generation_id;
  const char *member_id;
  const char *group_instance_id;        /* v3+ */
} KafkaHeartbeatRequest;

typedef struct {
  const char *member_id;
  const char *group_instance_id;
} KafkaLeaveGroupMember;

typedef struct {
  const char *group_id;
  /* v0..2 carry one member; it is members[0] here too. */
  guint n_members;
  KafkaLeaveGroupMember *members;
} KafkaLeaveGroupRequest;

typedef struct {
  gint32 partition;
  gint64 committed_offset;
  gint32 committed_leader_epoch;        /* v6+ */
  const char *committed_metadata;
} KafkaOffsetCommitPartition;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaOffsetCommitPartition *partitions;
} KafkaOffsetCommitTopic;

typedef struct {
  const char *group_id;
  gint32 generation_id;
  const char *member_id;
  const char *group_instance_id;        /* v7+ */
  gint64 retention_time_ms;             /* v2..4 */
  guint n_topics;
  KafkaOffsetCommitTopic *topics;
} KafkaOffsetCommitRequest;

typedef struct {
  const char *name;
  guint n_partitions;
  gint32 *partitions;
} KafkaOffsetFetchTopic;

typedef struct {
  const char *group_id;
  gboolean all_topics;                  /* v2+: null topic list */
  guint n_topics;
  KafkaOffsetFetchTopic *topics;
} KafkaOffsetFetchRequest;

typedef struct {
  const char *name;
  const char *value;
} KafkaConfigEntry;

typedef struct {
  const char *name;
  gint32 num_partitions;
  gint16 replication_factor;
  guint n_assignments;                  /* explicit replica assignments */
  guint n_configs;
  KafkaConfigEntry *configs;
} KafkaCreatableTopic;

typedef struct {
  guint n_topics;
  KafkaCreatableTopic *topics;
  gint32 timeout_ms;
  gboolean validate_only;               /* v1+ */
} KafkaCreateTopicsRequest;

typedef struct {
  guint n_topics;
  const char **topics;
  gint32 timeout_ms;
} KafkaDeleteTopicsRequest;

typedef struct {
  gint8 resource_type;                  /* 2 topic, 4 broker */
  const char *resource_name;
  gboolean all_keys;                    /* null key list */
  guint n_keys;
  const char **keys;
} KafkaDescribeConfigsResource;

typedef struct {
  guint n_resources;
  KafkaDescribeConfigsResource *resources;
  gboolean include_synonyms;            /* v1+ */
} KafkaDescribeConfigsRequest;

typedef struct {
  const char *mechanism;
} KafkaSaslHandshakeRequest;

typedef struct {
  const guint8 *auth_bytes;
  gsize auth_bytes_len;
} KafkaSaslAuthenticateRequest;

typedef struct {
  const char *transactional_id;
  gint32 transaction_timeout_ms;
  gint64 producer_id;                   /* v3+, else -1 */
  gint16 producer_epoch;                /* v3+, else -1 */
} KafkaInitProducerIdRequest;

typedef struct {
  KafkaRequestHeader header;
  gboolean header_ok;                   /* header decoded (even if the body failed) */
  GBytes *frame;                        /* without the size prefix */
  GPtrArray *arena;
  union {
    KafkaApiVersionsRequest api_versions;
    KafkaMetadataRequest metadata;
    KafkaProduceRequest produce;
    KafkaFetchRequest fetch;
    KafkaListOffsetsRequest list_offsets;
    KafkaFindCoordinatorRequest find_coordinator;
    KafkaJoinGroupRequest join_group;
    KafkaSyncGroupRequest sync_group;
    KafkaHeartbeatRequest heartbeat;
    KafkaLeaveGroupRequest leave_group;
    KafkaOffsetCommitRequest offset_commit;
    KafkaOffsetFetchRequest offset_fetch;
    KafkaCreateTopicsRequest create_topics;
    KafkaDeleteTopicsRequest delete_topics;
    KafkaDescribeConfigsRequest describe_configs;
    KafkaSaslHandshakeRequest sasl_handshake;
    KafkaSaslAuthenticateRequest sasl_authenticate;
    KafkaInitProducerIdRequest init_producer_id;
  };
} KafkaRequest;

/* (transfer full) `frame`: one request without its 4-byte size (a ref is
 * taken). */
KafkaRequest *kafka_request_new (GBytes *frame);
void kafka_request_free (KafkaRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KafkaRequest, kafka_request_free)
/* Decode header and body. KAFKA_CODEC_ERROR_UNKNOWN_API /
 * _UNSUPPORTED_VERSION leave `header_ok` TRUE (the caller can answer);
 * MALFORMED may too, when only the body was bad. Trailing bytes after the
 * body are malformed. */
gboolean kafka_request_decode (KafkaRequest *request, GError **error);
/* Only the header: api key, version, correlation id. */
gboolean kafka_request_header_peek (const guint8 *frame, gsize len, KafkaRequestHeader *header);
/* A GBytes for a view into the frame (no copy). (transfer full) */
GBytes *kafka_request_slice (const KafkaRequest *request, const guint8 *data, gsize len);

/* --- responses --- */

typedef struct {
  gint16 api_key;
  gint16 min_version;
  gint16 max_version;
} KafkaApiVersionRange;

typedef struct {
  gint16 error_code;
  guint n_apis;
  const KafkaApiVersionRange *apis;
  gint32 throttle_time_ms;
} KafkaApiVersionsResponse;

typedef struct {
  gint32 node_id;
  const char *host;
  gint32 port;
  const char *rack;
} KafkaMetadataBroker;

typedef struct {
  gint16 error_code;
  gint32 partition;
  gint32 leader_id;
  gint32 leader_epoch;
  guint n_replicas;
  const gint32 *replicas;               /* also the ISR; no offline replicas */
} KafkaMetadataPartition;

typedef struct {
  gint16 error_code;
  const char *name;
  gboolean is_internal;
  guint n_partitions;
  KafkaMetadataPartition *partitions;
  gint32 topic_authorized_operations;
} KafkaMetadataTopic;

typedef struct {
  gint32 throttle_time_ms;
  guint n_brokers;
  KafkaMetadataBroker *brokers;
  const char *cluster_id;
  gint32 controller_id;
  guint n_topics;
  KafkaMetadataTopic *topics;
  gint32 cluster_authorized_operations;
} KafkaMetadataResponse;

typedef struct {
  gint32 partition;
  gint16 error_code;
  gint64 base_offset;
  gint64 log_append_time_ms;
  gint64 log_start_offset;
} KafkaProducePartitionResponse;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaProducePartitionResponse *partitions;
} KafkaProduceTopicResponse;

typedef struct {
  guint n_topics;
  KafkaProduceTopicResponse *topics;
  gint32 throttle_time_ms;
} KafkaProduceResponse;

typedef struct {
  gint32 partition;
  gint16 error_code;
  gint64 high_watermark;
  gint64 last_stable_offset;
  gint64 log_start_offset;
  gint32 preferred_read_replica;
  gboolean records_null;
  guint n_records;                      /* stored batches, passed through */
  GBytes **records;                     /* refs owned by the response */
} KafkaFetchPartitionResponse;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaFetchPartitionResponse *partitions;
} KafkaFetchTopicResponse;

typedef struct {
  gint32 throttle_time_ms;
  gint16 error_code;
  gint32 session_id;
  guint n_topics;
  KafkaFetchTopicResponse *topics;
} KafkaFetchResponse;

typedef struct {
  gint32 partition;
  gint16 error_code;
  gint64 timestamp;
  gint64 offset;
  gint32 leader_epoch;
} KafkaListOffsetsPartitionResponse;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaListOffsetsPartitionResponse *partitions;
} KafkaListOffsetsTopicResponse;

typedef struct {
  gint32 throttle_time_ms;
  guint n_topics;
  KafkaListOffsetsTopicResponse *topics;
} KafkaListOffsetsResponse;

typedef struct {
  gint32 throttle_time_ms;
  gint16 error_code;
  const char *error_message;
  gint32 node_id;
  const char *host;
  gint32 port;
} KafkaFindCoordinatorResponse;

typedef struct {
  const char *member_id;
  const char *group_instance_id;
  const guint8 *metadata;
  gsize metadata_len;
} KafkaJoinGroupMember;

typedef struct {
  gint32 throttle_time_ms;
  gint16 error_code;
  gint32 generation_id;
  const char *protocol_name;
  const char *leader;
  const char *member_id;
  guint n_members;
  KafkaJoinGroupMember *members;
} KafkaJoinGroupResponse;

typedef struct {
  gint32 throttle_time_ms;
  gint16 error_code;
  const guint8 *assignment;
  gsize assignment_len;
} KafkaSyncGroupResponse;

typedef struct {
  gint32 throttle_time_ms;
  gint16 error_code;
} KafkaHeartbeatResponse;

typedef struct {
  const char *member_id;
  const char *group_instance_id;
  gint16 error_code;
} KafkaLeaveGroupMemberResponse;

typedef struct {
  gint32 throttle_time_ms;
  gint16 error_code;
  guint n_members;                      /* v3+ */
  KafkaLeaveGroupMemberResponse *members;
} KafkaLeaveGroupResponse;

typedef struct {
  gint32 partition;
  gint16 error_code;
} KafkaPartitionError;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaPartitionError *partitions;
} KafkaOffsetCommitTopicResponse;

typedef struct {
  gint32 throttle_time_ms;
  guint n_topics;
  KafkaOffsetCommitTopicResponse *topics;
} KafkaOffsetCommitResponse;

typedef struct {
  gint32 partition;
  gint64 committed_offset;
  gint32 committed_leader_epoch;
  const char *metadata;
  gint16 error_code;
} KafkaOffsetFetchPartitionResponse;

typedef struct {
  const char *name;
  guint n_partitions;
  KafkaOffsetFetchPartitionResponse *partitions;
} KafkaOffsetFetchTopicResponse;

typedef struct {
  gint32 throttle_time_ms;
  guint n_topics;
  KafkaOffsetFetchTopicResponse *topics;
  gint16 error_code;
} KafkaOffsetFetchResponse;

typedef struct {
  const char *name;
  gint16 error_code;
  const char *error_message;
} KafkaTopicResult;

typedef struct {
  gint32 throttle_time_ms;
  guint n_topics;
  KafkaTopicResult *topics;
} KafkaTopicsResponse;                  /* CreateTopics, DeleteTopics */

typedef struct {
  const char *name;
  const char *value;
  gboolean read_only;
  gboolean is_default;
  gint8 config_source;                  /* 5 default, 1 dynamic topic */
  gboolean is_sensitive;
} KafkaConfigResult;

typedef struct {
  gint16 error_code;
  const char *error_message;
  gint8 resource_type;
  const char *resource_name;
  guint n_configs;
  KafkaConfigResult *configs;
} KafkaDescribeConfigsResult;

typedef struct {
  gint32 throttle_time_ms;
  guint n_results;
  KafkaDescribeConfigsResult *results;
} KafkaDescribeConfigsResponse;

typedef struct {
  gint16 error_code;
  guint n_mechanisms;
  const char *const *mechanisms;
} KafkaSaslHandshakeResponse;

typedef struct {
  gint16 error_code;
  const char *error_message;
  const guint8 *auth_bytes;
  gsize auth_bytes_len;
  gint64 session_lifetime_ms;
} KafkaSaslAuthenticateResponse;

typedef struct {
  gint32 throttle_time_ms;
  gint16 error_code;
  gint64 producer_id;
  gint16 producer_epoch;
} KafkaInitProducerIdResponse;

typedef struct {
  gint16 api_key;
  gint16 api_version;
  gint32 correlation_id;
  GPtrArray *arena;                     /* g_free'd */
  GPtrArray *refs;                      /* GBytes* the response points into */
  union {
    KafkaApiVersionsResponse api_versions;
    KafkaMetadataResponse metadata;
    KafkaProduceResponse produce;
    KafkaFetchResponse fetch;
    KafkaListOffsetsResponse list_offsets;
    KafkaFindCoordinatorResponse find_coordinator;
    KafkaJoinGroupResponse join_group;
    KafkaSyncGroupResponse sync_group;
    KafkaHeartbeatResponse heartbeat;
    KafkaLeaveGroupResponse leave_group;
    KafkaOffsetCommitResponse offset_commit;
    KafkaOffsetFetchResponse offset_fetch;
    KafkaTopicsResponse create_topics;
    KafkaTopicsResponse delete_topics;
    KafkaDescribeConfigsResponse describe_configs;
    KafkaSaslHandshakeResponse sasl_handshake;
    KafkaSaslAuthenticateResponse sasl_authenticate;
    KafkaInitProducerIdResponse init_producer_id;
  };
} KafkaResponse;

/* A zeroed response for `header`'s API, version and correlation id. */
KafkaResponse *kafka_response_new (gint16 api_key, gint16 api_version, gint32 correlation_id);
void kafka_response_free (KafkaResponse *response);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KafkaResponse, kafka_response_free)
/* `n` zeroed elements of `size` owned by the response. */
gpointer kafka_response_alloc (KafkaResponse *response, gsize n, gsize size);
#define kafka_response_new0(resp, type, n) \
  ((type *) kafka_response_alloc ((resp), (n), sizeof (type)))
char *kafka_response_strdup (KafkaResponse *response, const char *s);
/* Keep `bytes` alive as long as the response (a ref is taken); returns it. */
GBytes *kafka_response_keep (KafkaResponse *response, GBytes *bytes);
/* The whole frame (size, header, body), as segments (transfer full,
 * GBytes*). */
GPtrArray *kafka_response_encode (const KafkaResponse *response);

G_END_DECLS
