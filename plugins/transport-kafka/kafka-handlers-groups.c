/* transport-kafka — consumer groups: FindCoordinator (this broker),
 * JoinGroup / SyncGroup / Heartbeat / LeaveGroup on the coordinator state
 * machine of kafka-groups.c, and OffsetCommit / OffsetFetch on the host's
 * consumer-group offsets (shared with the other transports' groups of the
 * same name, durable in the storage KV).
 *
 * The coordinator is one per transport instance, used from every worker
 * under one mutex. Its callbacks run inside whichever call completes them,
 * on any worker: they only copy the answer and send it to the waiting
 * connection's worker, which writes it. Timeouts (sessions, rebalances) run
 * from one timer on the main context, armed for the coordinator's next
 * deadline.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"
#include "kafka-groups.h"

#include <string.h>

static gint64
now_ms (void)
{
  return g_get_monotonic_time () / 1000;
}

/* --- the coordinator, its lock and its timer --- */

static gboolean groups_tick (gpointer data);

/* With the lock held. */
static void
groups_rearm (KafkaTransport *t)
{
  gint64 deadline = kafka_groups_next_deadline (t->groups);

  if (t->groups_timer != NULL && t->groups_deadline == deadline)
    return;
  if (t->groups_timer != NULL)
    {
      g_source_destroy (t->groups_timer);
      g_clear_pointer (&t->groups_timer, g_source_unref);
    }
  t->groups_deadline = deadline;
  if (deadline == G_MAXINT64 || t->groups_stopping)
    return;
  t->groups_timer = g_timeout_source_new ((guint) CLAMP (deadline - now_ms (), 0, G_MAXINT32));
  g_source_set_callback (t->groups_timer, groups_tick, t, NULL);
  g_source_set_static_name (t->groups_timer, "kafka-groups-tick");
  g_source_attach (t->groups_timer, g_main_context_default ());
}

static gboolean
groups_tick (gpointer data)
{
  KafkaTransport *t = data;

  g_mutex_lock (&t->groups_lock);
  if (t->groups_timer != NULL)
    {
      /* This source is done; rearm makes a new one. */
      g_source_unref (t->groups_timer);
      t->groups_timer = NULL;
    }
  kafka_groups_tick (t->groups, now_ms ());
  groups_rearm (t);
  g_mutex_unlock (&t->groups_lock);
  return G_SOURCE_REMOVE;
}

void
kafka_groups_setup (KafkaTransport *t)
{
  g_mutex_init (&t->groups_lock);
  t->groups = kafka_groups_new (NULL);
}

void
kafka_groups_teardown (KafkaTransport *t)
{
  g_mutex_lock (&t->groups_lock);
  t->groups_stopping = TRUE;
  if (t->groups_timer != NULL)
    {
      g_source_destroy (t->groups_timer);
      g_clear_pointer (&t->groups_timer, g_source_unref);
    }
  g_mutex_unlock (&t->groups_lock);
  g_clear_pointer (&t->groups, kafka_groups_free);
  g_mutex_clear (&t->groups_lock);
}

/* --- answers that wait for other members --- */

/* One JoinGroup or SyncGroup waiting in the coordinator. Lives until its
 * answer is written (or the connection is gone). */
typedef struct {
  KafkaTransport *transport;
  KafkaConn *conn;               /* a ref; touched only on its worker */
  KafkaPending *pending;
  KafkaRequest *request;
  GMainContext *context;
  KafkaResponse *response;       /* filled by the callback */
  gboolean fired;                /* under the groups lock */
  gboolean forgotten;            /* the connection went away first */
} GroupWait;

static GroupWait *
group_wait_new (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  GroupWait *w = g_new0 (GroupWait, 1);

  w->transport = kafka_conn_get_transport (conn);
  w->conn = kafka_conn_ref (conn);
  w->pending = pending;
  w->request = request;
  w->context = g_main_context_ref_thread_default ();
  w->response = kafka_response_new (request->header.api_key, request->header.api_version,
                                    request->header.correlation_id);
  kafka_conn_track_wait (conn, w);
  return w;
}

static void
group_wait_free (GroupWait *w)
{
  kafka_response_free (w->response);
  kafka_request_free (w->request);
  g_main_context_unref (w->context);
  kafka_conn_unref (w->conn);
  g_free (w);
}

/* On the connection's worker. */
static gboolean
group_wait_deliver (gpointer data)
{
  GroupWait *w = data;

  kafka_conn_untrack_wait (w->conn, w);
  kafka_pending_complete (w->pending, g_steal_pointer (&w->response));
  group_wait_free (w);
  return G_SOURCE_REMOVE;
}

/* From the callback, on any thread, with the groups lock held (possibly
 * inside the very call that registered it): always deferred to an idle on
 * the connection's worker, never run here. */
static void
group_wait_fire (GroupWait *w)
{
  GSource *source = g_idle_source_new ();

  w->fired = TRUE;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, group_wait_deliver, w, NULL);
  g_source_set_static_name (source, "kafka-group-answer");
  g_source_attach (source, w->context);
  g_source_unref (source);
}

void
kafka_groups_forget_wait (KafkaTransport *t, gpointer wait)
{
  GroupWait *w = wait;
  gboolean fired;

  g_mutex_lock (&t->groups_lock);
  fired = w->fired;
  if (!fired)
    kafka_groups_forget (t->groups, w);
  g_mutex_unlock (&t->groups_lock);
  /* A fired one is delivered (and freed) by its idle on this worker. */
  if (!fired)
    {
      kafka_pending_complete (w->pending, NULL);
      group_wait_free (w);
    }
}

static gboolean
check_principal (KafkaConn *conn)
{
  /* No group ACLs: any authenticated client may use a group; offsets are
   * checked per stream by the host. */
  return kafka_conn_get_principal (conn) != NULL;
}

/* --- FindCoordinator --- */

void
kafka_handle_find_coordinator (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  KafkaResponse *response = kafka_response_new (KAFKA_API_FIND_COORDINATOR,
                                                request->header.api_version,
                                                request->header.correlation_id);
  KafkaFindCoordinatorResponse *m = &response->find_coordinator;
  const char *host;
  gint32 port;

  kafka_conn_get_broker (conn, &host, &port);
  if (request->find_coordinator.key_type != 0)
    {
      /* Transactions are not implemented. */
      m->error_code = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
      m->error_message = "transactions are not supported";
      m->node_id = -1;
      m->host = "";
      m->port = -1;
    }
  else
    {
      m->node_id = (gint32) t->options->node_id;
      m->host = kafka_response_strdup (response, host);
      m->port = port;
    }
  kafka_request_free (request);
  kafka_pending_complete (pending, response);
}

/* --- JoinGroup --- */

static void
join_done (const KafkaJoinResult *result, gpointer user_data)
{
  GroupWait *w = user_data;
  KafkaResponse *resp = w->response;
  KafkaJoinGroupResponse *m = &resp->join_group;

  m->error_code = result->error;
  m->generation_id = result->generation;
  m->protocol_name = kafka_response_strdup (resp, result->protocol_name);
  m->leader = kafka_response_strdup (resp, result->leader);
  m->member_id = kafka_response_strdup (resp, result->member_id);
  m->n_members = result->n_members;
  m->members = kafka_response_new0 (resp, KafkaJoinGroupMember, result->n_members);
  for (guint i = 0; i < result->n_members; i++)
    {
      const KafkaGroupMemberView *v = &result->members[i];
      guint8 *copy = kafka_response_alloc (resp, MAX (v->metadata_len, 1), 1);

      if (v->metadata_len > 0)
        memcpy (copy, v->metadata, v->metadata_len);
      m->members[i].member_id = kafka_response_strdup (resp, v->member_id);
      m->members[i].group_instance_id = kafka_response_strdup (resp, v->group_instance_id);
      m->members[i].metadata = copy;
      m->members[i].metadata_len = v->metadata_len;
    }
  group_wait_fire (w);
}

void
kafka_handle_join_group (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaJoinGroupRequest *req = &request->join_group;
  GroupWait *w = group_wait_new (conn, pending, request);
  KafkaJoinRequest join = { 0 };
  g_autofree KafkaGroupProtocol *protocols = g_new0 (KafkaGroupProtocol,
                                                     MAX (req->n_protocols, 1));

  if (!check_principal (conn))
    {
      w->response->join_group.error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
      w->response->join_group.generation_id = -1;
      w->response->join_group.member_id = req->member_id;
      kafka_conn_untrack_wait (conn, w);
      kafka_pending_complete (pending, g_steal_pointer (&w->response));
      group_wait_free (w);
      return;
    }
  for (guint i = 0; i < req->n_protocols; i++)
    {
      protocols[i].name = req->protocols[i].name;
      protocols[i].metadata = req->protocols[i].metadata;
      protocols[i].metadata_len = req->protocols[i].metadata_len;
    }
  join.group_id = req->group_id;
  join.member_id = req->member_id;
  join.group_instance_id = req->group_instance_id;
  join.client_id = request->header.client_id != NULL ? request->header.client_id : "";
  join.client_host = kafka_conn_get_peer (conn);
  join.session_timeout_ms = req->session_timeout_ms;
  join.rebalance_timeout_ms = request->header.api_version >= 1 ? req->rebalance_timeout_ms : -1;
  join.protocol_type = req->protocol_type;
  join.protocols = protocols;
  join.n_protocols = req->n_protocols;
  join.require_known_member_id = request->header.api_version >= 4;

  g_mutex_lock (&t->groups_lock);
  kafka_groups_join (t->groups, &join, now_ms (), join_done, w);
  groups_rearm (t);
  g_mutex_unlock (&t->groups_lock);
}

/* --- SyncGroup --- */

static void
sync_done (gint16 error, const char *protocol_type, const char *protocol_name,
           const guint8 *assignment, gsize assignment_len, gpointer user_data)
{
  GroupWait *w = user_data;
  KafkaSyncGroupResponse *m = &w->response->sync_group;
  guint8 *copy = kafka_response_alloc (w->response, MAX (assignment_len, 1), 1);

  if (assignment != NULL && assignment_len > 0)
    memcpy (copy, assignment, assignment_len);
  m->error_code = error;
  m->assignment = copy;
  m->assignment_len = assignment != NULL ? assignment_len : 0;
  group_wait_fire (w);
}

void
kafka_handle_sync_group (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaSyncGroupRequest *req = &request->sync_group;
  GroupWait *w = group_wait_new (conn, pending, request);
  g_autofree KafkaGroupAssignment *assignments = g_new0 (KafkaGroupAssignment,
                                                         MAX (req->n_assignments, 1));

  if (!check_principal (conn))
    {
      w->response->sync_group.error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
      kafka_conn_untrack_wait (conn, w);
      kafka_pending_complete (pending, g_steal_pointer (&w->response));
      group_wait_free (w);
      return;
    }
  for (guint i = 0; i < req->n_assignments; i++)
    {
      assignments[i].member_id = req->assignments[i].member_id;
      assignments[i].assignment = req->assignments[i].assignment;
      assignments[i].assignment_len = req->assignments[i].assignment_len;
    }
  g_mutex_lock (&t->groups_lock);
  kafka_groups_sync (t->groups, req->group_id, req->generation_id, req->member_id,
                     assignments, req->n_assignments, now_ms (), sync_done, w);
  groups_rearm (t);
  g_mutex_unlock (&t->groups_lock);
}

/* --- Heartbeat, LeaveGroup --- */

void
kafka_handle_heartbeat (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaHeartbeatRequest *req = &request->heartbeat;
  KafkaResponse *response = kafka_response_new (KAFKA_API_HEARTBEAT,
                                                request->header.api_version,
                                                request->header.correlation_id);

  if (!check_principal (conn))
    response->heartbeat.error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
  else
    {
      g_mutex_lock (&t->groups_lock);
      response->heartbeat.error_code = kafka_groups_heartbeat (t->groups, req->group_id,
                                                               req->generation_id,
                                                               req->member_id, now_ms ());
      groups_rearm (t);
      g_mutex_unlock (&t->groups_lock);
    }
  kafka_request_free (request);
  kafka_pending_complete (pending, response);
}

void
kafka_handle_leave_group (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaLeaveGroupRequest *req = &request->leave_group;
  KafkaResponse *response = kafka_response_new (KAFKA_API_LEAVE_GROUP,
                                                request->header.api_version,
                                                request->header.correlation_id);
  KafkaLeaveGroupResponse *m = &response->leave_group;

  m->n_members = req->n_members;
  m->members = kafka_response_new0 (response, KafkaLeaveGroupMemberResponse, req->n_members);
  if (!check_principal (conn))
    m->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
  else
    {
      g_mutex_lock (&t->groups_lock);
      for (guint i = 0; i < req->n_members; i++)
        {
          gint16 error = kafka_groups_leave (t->groups, req->group_id,
                                             req->members[i].member_id, now_ms ());

          m->members[i].member_id = req->members[i].member_id;
          m->members[i].group_instance_id = req->members[i].group_instance_id;
          m->members[i].error_code = error;
          /* v0..2 have one member: its error is the answer's. */
          if (request->header.api_version <= 2)
            m->error_code = error;
        }
      groups_rearm (t);
      g_mutex_unlock (&t->groups_lock);
    }
  /* The response keeps views into the request: free both together. */
  kafka_pending_complete (pending, response);
  kafka_request_free (request);
}

/* --- OffsetCommit --- */

typedef struct {
  KafkaConn *conn;
  KafkaPending *pending;
  KafkaRequest *request;
  KafkaResponse *response;
  guint outstanding;
} OffsetOp;

typedef struct {
  OffsetOp *op;
  KafkaOffsetCommitTopicResponse *topic;
} CommitTopic;

static void
offset_op_finish (OffsetOp *op)
{
  kafka_pending_complete (op->pending, g_steal_pointer (&op->response));
  kafka_request_free (op->request);
  kafka_conn_unref (op->conn);
  g_free (op);
}

static void
commit_done (const GError *error, gpointer user_data)
{
  CommitTopic *ct = user_data;
  OffsetOp *op = ct->op;

  if (error != NULL)
    for (guint i = 0; i < ct->topic->n_partitions; i++)
      ct->topic->partitions[i].error_code = kafka_error_from_sluice (error);
  g_free (ct);
  if (--op->outstanding == 0)
    offset_op_finish (op);
}

void
kafka_handle_offset_commit (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaOffsetCommitRequest *req = &request->offset_commit;
  OffsetOp *op = g_new0 (OffsetOp, 1);
  KafkaOffsetCommitResponse *m;
  gint16 group_error;

  op->conn = kafka_conn_ref (conn);
  op->pending = pending;
  op->request = request;
  op->response = kafka_response_new (KAFKA_API_OFFSET_COMMIT, request->header.api_version,
                                     request->header.correlation_id);
  op->outstanding = 1;
  m = &op->response->offset_commit;

  if (!check_principal (conn))
    group_error = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
  else
    {
      g_mutex_lock (&t->groups_lock);
      group_error = kafka_groups_check_commit (t->groups, req->group_id, req->generation_id,
                                               req->member_id, now_ms ());
      groups_rearm (t);
      g_mutex_unlock (&t->groups_lock);
    }
  m->n_topics = req->n_topics;
  m->topics = kafka_response_new0 (op->response, KafkaOffsetCommitTopicResponse, req->n_topics);
  for (guint i = 0; i < req->n_topics; i++)
    {
      const KafkaOffsetCommitTopic *topic = &req->topics[i];
      KafkaOffsetCommitTopicResponse *tr = &m->topics[i];
      g_autofree SluiceGroupOffset *offsets = g_new0 (SluiceGroupOffset,
                                                      MAX (topic->n_partitions, 1));
      CommitTopic *ct;

      tr->name = topic->name;
      tr->n_partitions = topic->n_partitions;
      tr->partitions = kafka_response_new0 (op->response, KafkaPartitionError,
                                            topic->n_partitions);
      for (guint j = 0; j < topic->n_partitions; j++)
        {
          tr->partitions[j].partition = topic->partitions[j].partition;
          tr->partitions[j].error_code = group_error;
          offsets[j].partition = topic->partitions[j].partition;
          offsets[j].offset = topic->partitions[j].committed_offset;
          offsets[j].metadata = (char *) topic->partitions[j].committed_metadata;
        }
      if (group_error != KAFKA_ERR_NONE || topic->n_partitions == 0)
        continue;
      ct = g_new0 (CommitTopic, 1);
      ct->op = op;
      ct->topic = tr;
      op->outstanding++;
      sluice_host_commit_offsets (t->host, kafka_conn_get_principal (conn), topic->name,
                                  req->group_id, offsets, topic->n_partitions, commit_done, ct);
    }
  if (--op->outstanding == 0)
    offset_op_finish (op);
}

/* --- OffsetFetch --- */

typedef struct {
  OffsetOp *op;
  KafkaOffsetFetchTopicResponse *topic;
  const gint32 *wanted;          /* NULL: every partition with a committed offset */
  guint n_wanted;
} FetchTopic;

static void
offsets_fetched (GArray *offsets, const GError *error, gpointer user_data)
{
  FetchTopic *ft = user_data;
  OffsetOp *op = ft->op;
  KafkaResponse *resp = op->response;
  KafkaOffsetFetchTopicResponse *tr = ft->topic;
  guint n = ft->wanted != NULL ? ft->n_wanted : (offsets != NULL ? offsets->len : 0);

  tr->partitions = kafka_response_new0 (resp, KafkaOffsetFetchPartitionResponse, n);
  tr->n_partitions = 0;
  for (guint i = 0; i < n; i++)
    {
      KafkaOffsetFetchPartitionResponse *p = &tr->partitions[tr->n_partitions];
      const SluiceGroupOffset *found = NULL;
      gint32 partition = ft->wanted != NULL
                         ? ft->wanted[i]
                         : g_array_index (offsets, SluiceGroupOffset, i).partition;

      for (guint k = 0; offsets != NULL && k < offsets->len; k++)
        if (g_array_index (offsets, SluiceGroupOffset, k).partition == partition)
          found = &g_array_index (offsets, SluiceGroupOffset, k);
      /* A listing of everything names only what was committed. */
      if (ft->wanted == NULL && (found == NULL || found->offset < 0))
        continue;
      p->partition = partition;
      p->committed_offset = found != NULL ? found->offset : -1;
      p->committed_leader_epoch = -1;
      p->metadata = kafka_response_strdup (resp, found != NULL && found->metadata != NULL
                                                 ? found->metadata : "");
      if (error != NULL)
        p->error_code = kafka_error_from_sluice (error);
      else if (found == NULL)
        p->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
      tr->n_partitions++;
    }
  if (offsets != NULL)
    g_array_unref (offsets);
  g_free (ft);
  if (--op->outstanding == 0)
    offset_op_finish (op);
}

void
kafka_handle_offset_fetch (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaOffsetFetchRequest *req = &request->offset_fetch;
  OffsetOp *op = g_new0 (OffsetOp, 1);
  KafkaOffsetFetchResponse *m;
  g_auto (GStrv) all = NULL;
  guint n;

  op->conn = kafka_conn_ref (conn);
  op->pending = pending;
  op->request = request;
  op->response = kafka_response_new (KAFKA_API_OFFSET_FETCH, request->header.api_version,
                                     request->header.correlation_id);
  op->outstanding = 1;
  m = &op->response->offset_fetch;

  if (!check_principal (conn))
    {
      m->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
      op->outstanding = 0;
      offset_op_finish (op);
      return;
    }
  if (req->all_topics)
    {
      char **streams = sluice_host_list_streams (t->host);
      GPtrArray *mine = g_ptr_array_new ();

      for (guint i = 0; streams != NULL && streams[i] != NULL; i++)
        if (sluice_host_authorize (t->host, kafka_conn_get_principal (conn),
                                   SLUICE_ACTION_LISTEN, streams[i], NULL))
          g_ptr_array_add (mine, g_strdup (streams[i]));
      g_ptr_array_add (mine, NULL);
      g_strfreev (streams);
      all = (GStrv) g_ptr_array_free (mine, FALSE);
    }
  n = all != NULL ? g_strv_length (all) : req->n_topics;
  m->n_topics = n;
  m->topics = kafka_response_new0 (op->response, KafkaOffsetFetchTopicResponse, n);
  for (guint i = 0; i < n; i++)
    {
      FetchTopic *ft = g_new0 (FetchTopic, 1);

      ft->op = op;
      ft->topic = &m->topics[i];
      if (all != NULL)
        ft->topic->name = kafka_response_strdup (op->response, all[i]);
      else
        {
          ft->topic->name = req->topics[i].name;
          ft->wanted = req->topics[i].partitions;
          ft->n_wanted = req->topics[i].n_partitions;
        }
      op->outstanding++;
      sluice_host_fetch_offsets (t->host, kafka_conn_get_principal (conn), ft->topic->name,
                                 req->group_id, offsets_fetched, ft);
    }
  if (--op->outstanding == 0)
    offset_op_finish (op);
}
