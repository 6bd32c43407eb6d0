/* transport-kafka — the consumer-group coordinator as a state machine.
 *
 * Kafka's classic group protocol (JoinGroup / SyncGroup / Heartbeat /
 * LeaveGroup) without sockets or clocks: every call takes the current time
 * in ms, answers that must wait (a JoinGroup until the rebalance completes, a
 * SyncGroup until the leader's assignments arrive) go out through the
 * callback given with the request, and kafka_groups_tick() advances timeouts
 * (session expiry, rebalance timeout). kafka_groups_next_deadline() says when
 * the next tick is due, so the transport arms one timer, never polls.
 *
 * Group states (as Kafka's GroupCoordinator): EMPTY -> PREPARING_REBALANCE
 * (joins wait) -> COMPLETING_REBALANCE (joins answered, waiting for the
 * leader's SyncGroup) -> STABLE. A join or leave or an expired session of a
 * member sends the group back to PREPARING_REBALANCE; a rebalance completes
 * when every known member has rejoined or the rebalance timeout (the largest
 * of the members') has passed, and members that did not rejoin are removed.
 *
 * Threads: not thread-safe. The transport serialises all calls (one lock or
 * one context). Callbacks run inside the kafka_groups_* call that completes
 * them (possibly the one that registered them), on the caller's thread; they
 * must not call back into the coordinator. Every registered callback runs
 * exactly once, unless kafka_groups_forget() drops it first.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Kafka error codes the coordinator answers with. */
typedef enum {
  KAFKA_GROUP_ERROR_NONE = 0,
  KAFKA_GROUP_ERROR_UNKNOWN_SERVER_ERROR = -1,
  KAFKA_GROUP_ERROR_ILLEGAL_GENERATION = 22,
  KAFKA_GROUP_ERROR_INCONSISTENT_GROUP_PROTOCOL = 23,
  KAFKA_GROUP_ERROR_INVALID_GROUP_ID = 24,
  KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID = 25,
  KAFKA_GROUP_ERROR_INVALID_SESSION_TIMEOUT = 26,
  KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS = 27,
  KAFKA_GROUP_ERROR_GROUP_MAX_SIZE_REACHED = 81,
  KAFKA_GROUP_ERROR_MEMBER_ID_REQUIRED = 79,
} KafkaGroupError;

typedef enum {
  KAFKA_GROUP_EMPTY,
  KAFKA_GROUP_PREPARING_REBALANCE,
  KAFKA_GROUP_COMPLETING_REBALANCE,
  KAFKA_GROUP_STABLE,
} KafkaGroupState;

typedef struct {
  gint32 min_session_timeout_ms;      /* Kafka: 6000 */
  gint32 max_session_timeout_ms;      /* Kafka: 1800000 */
  /* Delay before the first rebalance of an empty group completes, so that
   * members starting together land in one generation (Kafka: 3000). */
  gint32 initial_rebalance_delay_ms;
  guint max_members;                  /* 0: no limit */
} KafkaGroupsConfig;

typedef struct _KafkaGroups KafkaGroups;

/* `config` NULL: Kafka's defaults, except initial_rebalance_delay_ms 0. */
KafkaGroups *kafka_groups_new (const KafkaGroupsConfig *config);
/* Answers nothing that is pending (call kafka_groups_forget() first if
 * callbacks must not dangle). */
void kafka_groups_free (KafkaGroups *groups);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KafkaGroups, kafka_groups_free)

/* One protocol a member supports, in its order of preference. */
typedef struct {
  const char *name;               /* "range", "roundrobin", "cooperative-sticky" */
  const guint8 *metadata;
  gsize metadata_len;
} KafkaGroupProtocol;

typedef struct {
  const char *group_id;
  const char *member_id;          /* "" for a new member */
  const char *group_instance_id;  /* NULL: dynamic member (static membership is
                                   * accepted but treated as dynamic) */
  const char *client_id;
  const char *client_host;
  gint32 session_timeout_ms;
  gint32 rebalance_timeout_ms;    /* -1 (JoinGroup v0): the session timeout */
  const char *protocol_type;      /* "consumer" */
  const KafkaGroupProtocol *protocols;
  guint n_protocols;
  /* JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id
   * and joins again with it. */
  gboolean require_known_member_id;
} KafkaJoinRequest;

typedef struct {
  const char *member_id;
  const char *group_instance_id;  /* may be NULL */
  const guint8 *metadata;         /* the member's metadata for the chosen protocol */
  gsize metadata_len;
} KafkaGroupMemberView;

/* Views are valid during the callback only. */
typedef struct {
  gint16 error;                   /* KafkaGroupError */
  gint32 generation;              /* -1 on error */
  const char *protocol_type;      /* may be NULL on error */
  const char *protocol_name;      /* may be NULL on error */
  const char *leader;             /* "" on error */
  const char *member_id;          /* the member's id (also with MEMBER_ID_REQUIRED) */
  const KafkaGroupMemberView *members;   /* only the leader gets the members */
  guint n_members;
} KafkaJoinResult;

typedef void (*KafkaJoinFunc) (const KafkaJoinResult *result, gpointer user_data);

/* JoinGroup. Answers at once (errors, MEMBER_ID_REQUIRED, a known member
 * rejoining a stable group with unchanged metadata) or when the rebalance
 * completes. When a member joins again while its previous join still waits,
 * the previous callback is answered REBALANCE_IN_PROGRESS and the new one
 * waits instead. */
void kafka_groups_join (KafkaGroups *groups, const KafkaJoinRequest *request, gint64 now_ms,
                        KafkaJoinFunc done, gpointer user_data);

typedef struct {
  const char *member_id;
  const guint8 *assignment;
  gsize assignment_len;
} KafkaGroupAssignment;

/* `assignment` (valid during the call) is NULL on error; an empty assignment
 * has length 0. */
typedef void (*KafkaSyncFunc) (gint16 error, const char *protocol_type,
                               const char *protocol_name, const guint8 *assignment,
                               gsize assignment_len, gpointer user_data);

/* SyncGroup. The leader's call carries every member's assignment (copied);
 * members' calls wait until it arrives. */
void kafka_groups_sync (KafkaGroups *groups, const char *group_id, gint32 generation,
                        const char *member_id, const KafkaGroupAssignment *assignments,
                        guint n_assignments, gint64 now_ms, KafkaSyncFunc done,
                        gpointer user_data);

/* Heartbeat: NONE, REBALANCE_IN_PROGRESS (rejoin), ILLEGAL_GENERATION,
 * UNKNOWN_MEMBER_ID. Keeps the member's session alive. */
gint16 kafka_groups_heartbeat (KafkaGroups *groups, const char *group_id, gint32 generation,
                               const char *member_id, gint64 now_ms);

/* LeaveGroup of one member: NONE or UNKNOWN_MEMBER_ID. Its pending join /
 * sync callbacks are answered UNKNOWN_MEMBER_ID; the others rebalance. */
gint16 kafka_groups_leave (KafkaGroups *groups, const char *group_id, const char *member_id,
                           gint64 now_ms);

/* OffsetCommit's check: generation -1 with member "" is a simple (group-less)
 * commit, allowed while the group has no members; otherwise the member and
 * generation must be current (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), and
 * not in the middle of a rebalance (REBALANCE_IN_PROGRESS). A valid commit
 * also counts as a heartbeat. */
gint16 kafka_groups_check_commit (KafkaGroups *groups, const char *group_id,
                                  gint32 generation, const char *member_id, gint64 now_ms);

/* Advance time: expire sessions, complete rebalances whose timeout passed. */
void kafka_groups_tick (KafkaGroups *groups, gint64 now_ms);
/* The earliest time at which tick has something to do; G_MAXINT64: nothing. */
gint64 kafka_groups_next_deadline (KafkaGroups *groups);

/* A connection went away: drop (never call) the callbacks registered with
 * `user_data`. The members stay until their sessions expire, as in Kafka. */
void kafka_groups_forget (KafkaGroups *groups, gpointer user_data);

/* Introspection for DescribeGroups, metrics and tests. */
KafkaGroupState kafka_groups_get_state (KafkaGroups *groups, const char *group_id);
gint32 kafka_groups_get_generation (KafkaGroups *groups, const char *group_id);
guint kafka_groups_get_member_count (KafkaGroups *groups, const char *group_id);
/* (transfer none) NULL when none. */
const char *kafka_groups_get_leader (KafkaGroups *groups, const char *group_id);

G_END_DECLS
