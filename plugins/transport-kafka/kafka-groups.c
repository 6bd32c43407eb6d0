/* transport-kafka — the consumer-group coordinator (Kafka's classic group
 * protocol) as a state machine: see kafka-groups.h for the contract.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-groups.h"

#include <string.h>

typedef struct {
  char *name;
  GBytes *metadata;
} Protocol;

typedef struct {
  char *id;
  char *group_instance_id;
  char *client_id;
  char *client_host;
  gint32 session_timeout_ms;
  gint32 rebalance_timeout_ms;
  GPtrArray *protocols;          /* Protocol*, preference order */
  gint64 last_heartbeat;
  KafkaJoinFunc join_cb;         /* set while its JoinGroup waits */
  gpointer join_ud;
  KafkaSyncFunc sync_cb;         /* set while its SyncGroup waits */
  gpointer sync_ud;
  GBytes *assignment;
  guint64 seq;                   /* join order: the first becomes leader */
} Member;

typedef struct {
  char *id;
  KafkaGroupState state;
  gint32 generation;
  char *protocol_type;
  char *protocol_name;
  char *leader;
  GHashTable *members;           /* id -> Member* (owned) */
  GHashTable *pending;           /* ids handed out with MEMBER_ID_REQUIRED -> gint64* expiry */
  gint64 rebalance_deadline;     /* PREPARING: complete then at the latest */
  gint64 initial_delay_until;    /* PREPARING of an empty group: not before */
} Group;

struct _KafkaGroups {
  KafkaGroupsConfig config;
  GHashTable *groups;            /* id -> Group* (owned) */
  guint64 next_seq;
};

static void
protocol_free (Protocol *p)
{
  g_free (p->name);
  g_clear_pointer (&p->metadata, g_bytes_unref);
  g_free (p);
}

static void
member_free (Member *m)
{
  g_free (m->id);
  g_free (m->group_instance_id);
  g_free (m->client_id);
  g_free (m->client_host);
  g_clear_pointer (&m->protocols, g_ptr_array_unref);
  g_clear_pointer (&m->assignment, g_bytes_unref);
  g_free (m);
}

static void
group_free (Group *g)
{
  g_free (g->id);
  g_free (g->protocol_type);
  g_free (g->protocol_name);
  g_free (g->leader);
  g_hash_table_unref (g->members);
  g_hash_table_unref (g->pending);
  g_free (g);
}

KafkaGroups *
kafka_groups_new (const KafkaGroupsConfig *config)
{
  KafkaGroups *groups = g_new0 (KafkaGroups, 1);

  if (config != NULL)
    groups->config = *config;
  else
    {
      groups->config.min_session_timeout_ms = 6000;
      groups->config.max_session_timeout_ms = 1800000;
    }
  groups->groups = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) group_free);
  return groups;
}

void
kafka_groups_free (KafkaGroups *groups)
{
  if (groups == NULL)
    return;
  g_hash_table_unref (groups->groups);
  g_free (groups);
}

static Group *
group_get (KafkaGroups *groups, const char *id, gboolean create)
{
  Group *g = g_hash_table_lookup (groups->groups, id);

  if (g != NULL || !create)
    return g;
  g = g_new0 (Group, 1);
  g->id = g_strdup (id);
  g->state = KAFKA_GROUP_EMPTY;
  g->members = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                      (GDestroyNotify) member_free);
  g->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_insert (groups->groups, g->id, g);
  return g;
}

/* An empty group with nothing pending is dropped: its offsets live in the
 * host, not here. */
static void
group_maybe_drop (KafkaGroups *groups, Group *g)
{
  if (g->state == KAFKA_GROUP_EMPTY && g_hash_table_size (g->members) == 0
      && g_hash_table_size (g->pending) == 0)
    g_hash_table_remove (groups->groups, g->id);
}

/* --- answers --- */

static void
answer_join_error (KafkaJoinFunc cb, gpointer ud, gint16 error, const char *member_id)
{
  KafkaJoinResult r = { 0 };

  r.error = error;
  r.generation = -1;
  r.leader = "";
  r.member_id = member_id ? member_id : "";
  cb (&r, ud);
}

static void
answer_sync_error (KafkaSyncFunc cb, gpointer ud, gint16 error)
{
  cb (error, NULL, NULL, NULL, 0, ud);
}

/* Answer (and clear) a member's waiting join / sync with `error`. */
static void
member_fail_waiting (Member *m, gint16 error)
{
  if (m->join_cb != NULL)
    {
      KafkaJoinFunc cb = m->join_cb;
      m->join_cb = NULL;
      answer_join_error (cb, m->join_ud, error, m->id);
    }
  if (m->sync_cb != NULL)
    {
      KafkaSyncFunc cb = m->sync_cb;
      m->sync_cb = NULL;
      answer_sync_error (cb, m->sync_ud, error);
    }
}

static const Protocol *
member_protocol (const Member *m, const char *name)
{
  for (guint i = 0; i < m->protocols->len; i++)
    {
      const Protocol *p = m->protocols->pdata[i];
      if (g_strcmp0 (p->name, name) == 0)
        return p;
    }
  return NULL;
}

static gint
member_seq_cmp (gconstpointer a, gconstpointer b)
{
  const Member *x = *(Member *const *) a, *y = *(Member *const *) b;

  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Members in join order. (container only) */
static GPtrArray *
group_members_sorted (Group *g)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init (&it, g->members);
  while (g_hash_table_iter_next (&it, NULL, &v))
    g_ptr_array_add (list, v);
  g_ptr_array_sort (list, member_seq_cmp);
  return list;
}

/* Kafka's choice: among the protocols every member supports, each member
 * votes for the first it prefers; most votes win, ties go to the earlier
 * member's preference. NULL when no protocol is common. */
static const char *
select_protocol (GPtrArray *members)
{
  const Member *first;
  const char *best = NULL;
  guint best_votes = 0;

  if (members->len == 0)
    return NULL;
  first = members->pdata[0];
  for (guint c = 0; c < first->protocols->len; c++)
    {
      const char *name = ((Protocol *) first->protocols->pdata[c])->name;
      gboolean common = TRUE;
      guint votes = 0;

      for (guint i = 0; i < members->len && common; i++)
        common = member_protocol (members->pdata[i], name) != NULL;
      if (!common)
        continue;
      for (guint i = 0; i < members->len; i++)
        {
          const Member *m = members->pdata[i];

          /* The member's first protocol that every member supports. */
          for (guint k = 0; k < m->protocols->len; k++)
            {
              const char *pref = ((Protocol *) m->protocols->pdata[k])->name;
              gboolean all = TRUE;

              for (guint j = 0; j < members->len && all; j++)
                all = member_protocol (members->pdata[j], pref) != NULL;
              if (all)
                {
                  if (g_strcmp0 (pref, name) == 0)
                    votes++;
                  break;
                }
            }
        }
      if (best == NULL || votes > best_votes)
        {
          best = name;
          best_votes = votes;
        }
    }
  return best;
}

/* Would the group still have a common protocol with this member? */
static gboolean
protocols_compatible (Group *g, const KafkaJoinRequest *req, const char *skip_member)
{
  GHashTableIter it;
  gpointer v;

  if (g_hash_table_size (g->members) == 0)
    return TRUE;
  if (g->protocol_type != NULL && g_strcmp0 (g->protocol_type, req->protocol_type) != 0)
    return FALSE;
  for (guint c = 0; c < req->n_protocols; c++)
    {
      gboolean all = TRUE;

      g_hash_table_iter_init (&it, g->members);
      while (all && g_hash_table_iter_next (&it, NULL, &v))
        {
          const Member *m = v;
          if (g_strcmp0 (m->id, skip_member) != 0)
            all = member_protocol (m, req->protocols[c].name) != NULL;
        }
      if (all)
        return TRUE;
    }
  return FALSE;
}

static void
member_set_protocols (Member *m, const KafkaJoinRequest *req)
{
  g_clear_pointer (&m->protocols, g_ptr_array_unref);
  m->protocols = g_ptr_array_new_with_free_func ((GDestroyNotify) protocol_free);
  for (guint i = 0; i < req->n_protocols; i++)
    {
      Protocol *p = g_new0 (Protocol, 1);

      p->name = g_strdup (req->protocols[i].name);
      p->metadata = g_bytes_new (req->protocols[i].metadata, req->protocols[i].metadata_len);
      g_ptr_array_add (m->protocols, p);
    }
}

static gboolean
member_protocols_equal (const Member *m, const KafkaJoinRequest *req)
{
  if (m->protocols->len != req->n_protocols)
    return FALSE;
  for (guint i = 0; i < req->n_protocols; i++)
    {
      const Protocol *p = m->protocols->pdata[i];
      gsize len;
      const guint8 *data = g_bytes_get_data (p->metadata, &len);

      if (g_strcmp0 (p->name, req->protocols[i].name) != 0
          || len != req->protocols[i].metadata_len
          || (len > 0 && memcmp (data, req->protocols[i].metadata, len) != 0))
        return FALSE;
    }
  return TRUE;
}

static void
member_update (Member *m, const KafkaJoinRequest *req, gint64 now)
{
  g_free (m->client_id);
  m->client_id = g_strdup (req->client_id);
  g_free (m->client_host);
  m->client_host = g_strdup (req->client_host);
  g_free (m->group_instance_id);
  m->group_instance_id = g_strdup (req->group_instance_id);
  m->session_timeout_ms = req->session_timeout_ms;
  m->rebalance_timeout_ms = req->rebalance_timeout_ms > 0 ? req->rebalance_timeout_ms
                                                          : req->session_timeout_ms;
  member_set_protocols (m, req);
  m->last_heartbeat = now;
}

/* Answer a join with the group's current generation. */
static void
answer_join (Group *g, Member *m, KafkaJoinFunc cb, gpointer ud)
{
  KafkaJoinResult r = { 0 };
  g_autoptr (GArray) views = g_array_new (FALSE, TRUE, sizeof (KafkaGroupMemberView));

  r.error = KAFKA_GROUP_ERROR_NONE;
  r.generation = g->generation;
  r.protocol_type = g->protocol_type;
  r.protocol_name = g->protocol_name;
  r.leader = g->leader ? g->leader : "";
  r.member_id = m->id;
  if (g_strcmp0 (g->leader, m->id) == 0)
    {
      g_autoptr (GPtrArray) list = group_members_sorted (g);

      for (guint i = 0; i < list->len; i++)
        {
          const Member *x = list->pdata[i];
          const Protocol *p = member_protocol (x, g->protocol_name);
          KafkaGroupMemberView v = { 0 };

          v.member_id = x->id;
          v.group_instance_id = x->group_instance_id;
          if (p != NULL)
            v.metadata = g_bytes_get_data (p->metadata, &v.metadata_len);
          g_array_append_val (views, v);
        }
      r.members = (const KafkaGroupMemberView *) views->data;
      r.n_members = views->len;
    }
  cb (&r, ud);
}

static gint64
group_rebalance_timeout (Group *g)
{
  GHashTableIter it;
  gpointer v;
  gint64 max = 0;

  g_hash_table_iter_init (&it, g->members);
  while (g_hash_table_iter_next (&it, NULL, &v))
    max = MAX (max, (gint64) ((Member *) v)->rebalance_timeout_ms);
  return max;
}

static void
prepare_rebalance (KafkaGroups *groups, Group *g, gint64 now)
{
  GHashTableIter it;
  gpointer v;

  if (g->state == KAFKA_GROUP_PREPARING_REBALANCE)
    return;
  /* Syncs waiting for the leader belong to a generation that will not
   * complete: their members rejoin. */
  g_hash_table_iter_init (&it, g->members);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      Member *m = v;
      if (m->sync_cb != NULL)
        {
          KafkaSyncFunc cb = m->sync_cb;
          m->sync_cb = NULL;
          answer_sync_error (cb, m->sync_ud, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
        }
    }
  /* 0: no delay to wait for (so it never shows as a past deadline). */
  if (g->state == KAFKA_GROUP_EMPTY && groups->config.initial_rebalance_delay_ms > 0)
    g->initial_delay_until = now + groups->config.initial_rebalance_delay_ms;
  else
    g->initial_delay_until = 0;
  g->state = KAFKA_GROUP_PREPARING_REBALANCE;
  g->rebalance_deadline = now + MAX (group_rebalance_timeout (g),
                                     (gint64) groups->config.initial_rebalance_delay_ms);
}

/* Finish the join phase: members that did not rejoin are removed, the
 * generation advances, the waiting joins are answered. */
static void
complete_join (KafkaGroups *groups, Group *g, gint64 now)
{
  g_autoptr (GPtrArray) list = NULL;
  g_autoptr (GPtrArray) gone = g_ptr_array_new ();
  GHashTableIter it;
  gpointer v;
  const char *protocol;

  g_hash_table_iter_init (&it, g->members);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (((Member *) v)->join_cb == NULL)
      g_ptr_array_add (gone, v);
  for (guint i = 0; i < gone->len; i++)
    {
      Member *m = gone->pdata[i];
      member_fail_waiting (m, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
      g_hash_table_remove (g->members, m->id);
    }

  g->generation++;
  list = group_members_sorted (g);
  if (list->len == 0)
    {
      g->state = KAFKA_GROUP_EMPTY;
      g_clear_pointer (&g->protocol_name, g_free);
      g_clear_pointer (&g->protocol_type, g_free);
      g_clear_pointer (&g->leader, g_free);
      group_maybe_drop (groups, g);
      return;
    }

  protocol = select_protocol (list);
  if (protocol == NULL)
    {
      /* Joins are refused when incompatible, so this only happens when a
       * member changed its protocols; nobody can be served. */
      for (guint i = 0; i < list->len; i++)
        member_fail_waiting (list->pdata[i], KAFKA_GROUP_ERROR_INCONSISTENT_GROUP_PROTOCOL);
      g_hash_table_remove_all (g->members);
      g->state = KAFKA_GROUP_EMPTY;
      g_clear_pointer (&g->leader, g_free);
      group_maybe_drop (groups, g);
      return;
    }
  {
    char *name = g_strdup (protocol);
    g_free (g->protocol_name);
    g->protocol_name = name;
  }
  if (g->leader == NULL || !g_hash_table_contains (g->members, g->leader))
    {
      g_free (g->leader);
      g->leader = g_strdup (((Member *) list->pdata[0])->id);
    }
  g->state = KAFKA_GROUP_COMPLETING_REBALANCE;
  for (guint i = 0; i < list->len; i++)
    {
      Member *m = list->pdata[i];
      KafkaJoinFunc cb = m->join_cb;
      gpointer ud = m->join_ud;

      m->join_cb = NULL;
      m->last_heartbeat = now;
      g_clear_pointer (&m->assignment, g_bytes_unref);
      answer_join (g, m, cb, ud);
    }
}

static void
maybe_complete_join (KafkaGroups *groups, Group *g, gint64 now)
{
  GHashTableIter it;
  gpointer v;

  if (g->state != KAFKA_GROUP_PREPARING_REBALANCE || now < g->initial_delay_until)
    return;
  g_hash_table_iter_init (&it, g->members);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (((Member *) v)->join_cb == NULL)
      return;
  complete_join (groups, g, now);
}

static void
member_wait_join (Member *m, KafkaJoinFunc done, gpointer user_data)
{
  if (m->join_cb != NULL)
    {
      KafkaJoinFunc cb = m->join_cb;
      m->join_cb = NULL;
      answer_join_error (cb, m->join_ud, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS, m->id);
    }
  m->join_cb = done;
  m->join_ud = user_data;
}

static Member *
member_add (KafkaGroups *groups, Group *g, const char *id, const KafkaJoinRequest *req,
            gint64 now)
{
  Member *m = g_new0 (Member, 1);

  m->id = g_strdup (id);
  m->seq = groups->next_seq++;
  member_update (m, req, now);
  g_hash_table_insert (g->members, m->id, m);
  if (g->protocol_type == NULL)
    g->protocol_type = g_strdup (req->protocol_type);
  return m;
}

void
kafka_groups_join (KafkaGroups *groups, const KafkaJoinRequest *req, gint64 now,
                   KafkaJoinFunc done, gpointer user_data)
{
  Group *g;
  Member *m;
  const char *member_id = req->member_id ? req->member_id : "";

  g_return_if_fail (done != NULL);

  if (req->group_id == NULL || *req->group_id == '\0')
    {
      answer_join_error (done, user_data, KAFKA_GROUP_ERROR_INVALID_GROUP_ID, member_id);
      return;
    }
  if (req->session_timeout_ms < groups->config.min_session_timeout_ms
      || req->session_timeout_ms > groups->config.max_session_timeout_ms)
    {
      answer_join_error (done, user_data, KAFKA_GROUP_ERROR_INVALID_SESSION_TIMEOUT, member_id);
      return;
    }
  if (req->n_protocols == 0 || req->protocol_type == NULL || *req->protocol_type == '\0')
    {
      answer_join_error (done, user_data, KAFKA_GROUP_ERROR_INCONSISTENT_GROUP_PROTOCOL,
                         member_id);
      return;
    }

  g = group_get (groups, req->group_id, TRUE);
  if (!protocols_compatible (g, req, member_id))
    {
      answer_join_error (done, user_data, KAFKA_GROUP_ERROR_INCONSISTENT_GROUP_PROTOCOL,
                         member_id);
      group_maybe_drop (groups, g);
      return;
    }

  if (*member_id == '\0')
    {
      g_autofree char *uuid = g_uuid_string_random ();
      g_autofree char *id = g_strdup_printf ("%s-%s", req->client_id ? req->client_id : "",
                                             uuid);

      if (groups->config.max_members > 0
          && g_hash_table_size (g->members) + g_hash_table_size (g->pending)
               >= groups->config.max_members)
        {
          answer_join_error (done, user_data, KAFKA_GROUP_ERROR_GROUP_MAX_SIZE_REACHED, "");
          group_maybe_drop (groups, g);
          return;
        }
      if (req->require_known_member_id)
        {
          gint64 *expiry = g_new (gint64, 1);

          *expiry = now + req->session_timeout_ms;
          g_hash_table_insert (g->pending, g_strdup (id), expiry);
          answer_join_error (done, user_data, KAFKA_GROUP_ERROR_MEMBER_ID_REQUIRED, id);
          return;
        }
      m = member_add (groups, g, id, req, now);
      prepare_rebalance (groups, g, now);
      member_wait_join (m, done, user_data);
      maybe_complete_join (groups, g, now);
      return;
    }

  if (g_hash_table_remove (g->pending, member_id))
    {
      m = member_add (groups, g, member_id, req, now);
      prepare_rebalance (groups, g, now);
      member_wait_join (m, done, user_data);
      maybe_complete_join (groups, g, now);
      return;
    }

  m = g_hash_table_lookup (g->members, member_id);
  if (m == NULL)
    {
      answer_join_error (done, user_data, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID, member_id);
      group_maybe_drop (groups, g);
      return;
    }

  switch (g->state)
    {
    case KAFKA_GROUP_PREPARING_REBALANCE:
      member_update (m, req, now);
      member_wait_join (m, done, user_data);
      maybe_complete_join (groups, g, now);
      return;

    case KAFKA_GROUP_COMPLETING_REBALANCE:
    case KAFKA_GROUP_STABLE:
      /* A follower with unchanged metadata gets the current generation
       * back (its join response was probably lost); the leader or a
       * member with new metadata starts a rebalance. */
      if (member_protocols_equal (m, req)
          && (g->state == KAFKA_GROUP_COMPLETING_REBALANCE
              || g_strcmp0 (g->leader, m->id) != 0))
        {
          m->last_heartbeat = now;
          answer_join (g, m, done, user_data);
          return;
        }
      member_update (m, req, now);
      prepare_rebalance (groups, g, now);
      member_wait_join (m, done, user_data);
      maybe_complete_join (groups, g, now);
      return;

    case KAFKA_GROUP_EMPTY:
    default:
      answer_join_error (done, user_data, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID, member_id);
      return;
    }
}

static void
answer_sync (Group *g, Member *m, KafkaSyncFunc cb, gpointer ud)
{
  gsize len = 0;
  const guint8 *data = m->assignment ? g_bytes_get_data (m->assignment, &len) : NULL;

  cb (KAFKA_GROUP_ERROR_NONE, g->protocol_type, g->protocol_name, data ? data : (const guint8 *) "",
      len, ud);
}

void
kafka_groups_sync (KafkaGroups *groups, const char *group_id, gint32 generation,
                   const char *member_id, const KafkaGroupAssignment *assignments,
                   guint n_assignments, gint64 now, KafkaSyncFunc done, gpointer user_data)
{
  Group *g = group_id ? group_get (groups, group_id, FALSE) : NULL;
  Member *m = g && member_id ? g_hash_table_lookup (g->members, member_id) : NULL;

  g_return_if_fail (done != NULL);

  if (m == NULL)
    {
      answer_sync_error (done, user_data, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
      return;
    }
  if (generation != g->generation)
    {
      answer_sync_error (done, user_data, KAFKA_GROUP_ERROR_ILLEGAL_GENERATION);
      return;
    }
  m->last_heartbeat = now;
  switch (g->state)
    {
    case KAFKA_GROUP_PREPARING_REBALANCE:
      answer_sync_error (done, user_data, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
      return;

    case KAFKA_GROUP_STABLE:
      answer_sync (g, m, done, user_data);
      return;

    case KAFKA_GROUP_COMPLETING_REBALANCE:
      if (m->sync_cb != NULL)
        {
          KafkaSyncFunc cb = m->sync_cb;
          m->sync_cb = NULL;
          answer_sync_error (cb, m->sync_ud, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
        }
      m->sync_cb = done;
      m->sync_ud = user_data;
      if (g_strcmp0 (g->leader, m->id) == 0)
        {
          g_autoptr (GPtrArray) list = NULL;

          for (guint i = 0; i < n_assignments; i++)
            {
              Member *x = assignments[i].member_id
                            ? g_hash_table_lookup (g->members, assignments[i].member_id)
                            : NULL;

              /* Assignments for members that left meanwhile are dropped. */
              if (x == NULL)
                continue;
              g_clear_pointer (&x->assignment, g_bytes_unref);
              x->assignment = g_bytes_new (assignments[i].assignment,
                                           assignments[i].assignment_len);
            }
          g->state = KAFKA_GROUP_STABLE;
          list = group_members_sorted (g);
          for (guint i = 0; i < list->len; i++)
            {
              Member *x = list->pdata[i];
              if (x->sync_cb != NULL)
                {
                  KafkaSyncFunc cb = x->sync_cb;
                  x->sync_cb = NULL;
                  answer_sync (g, x, cb, x->sync_ud);
                }
            }
        }
      return;

    case KAFKA_GROUP_EMPTY:
    default:
      answer_sync_error (done, user_data, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
      return;
    }
}

gint16
kafka_groups_heartbeat (KafkaGroups *groups, const char *group_id, gint32 generation,
                        const char *member_id, gint64 now)
{
  Group *g = group_id ? group_get (groups, group_id, FALSE) : NULL;
  Member *m = g && member_id ? g_hash_table_lookup (g->members, member_id) : NULL;

  if (m == NULL)
    return KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID;
  if (generation != g->generation)
    return KAFKA_GROUP_ERROR_ILLEGAL_GENERATION;
  m->last_heartbeat = now;
  if (g->state == KAFKA_GROUP_PREPARING_REBALANCE)
    return KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS;
  return KAFKA_GROUP_ERROR_NONE;
}

/* A member is gone (left or expired): answer what it waits for, then the
 * rest of the group rebalances. */
static void
member_remove (KafkaGroups *groups, Group *g, Member *m, gint64 now)
{
  member_fail_waiting (m, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  g_hash_table_remove (g->members, m->id);
  switch (g->state)
    {
    case KAFKA_GROUP_STABLE:
    case KAFKA_GROUP_COMPLETING_REBALANCE:
      prepare_rebalance (groups, g, now);
      maybe_complete_join (groups, g, now);
      break;
    case KAFKA_GROUP_PREPARING_REBALANCE:
      maybe_complete_join (groups, g, now);
      break;
    case KAFKA_GROUP_EMPTY:
    default:
      break;
    }
}

gint16
kafka_groups_leave (KafkaGroups *groups, const char *group_id, const char *member_id,
                    gint64 now)
{
  Group *g = group_id ? group_get (groups, group_id, FALSE) : NULL;
  Member *m;

  if (g == NULL || member_id == NULL)
    return KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID;
  if (g_hash_table_remove (g->pending, member_id))
    {
      group_maybe_drop (groups, g);
      return KAFKA_GROUP_ERROR_NONE;
    }
  m = g_hash_table_lookup (g->members, member_id);
  if (m == NULL)
    return KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID;
  member_remove (groups, g, m, now);
  /* The removal may already have dropped the group. */
  g = group_get (groups, group_id, FALSE);
  if (g != NULL)
    group_maybe_drop (groups, g);
  return KAFKA_GROUP_ERROR_NONE;
}

gint16
kafka_groups_check_commit (KafkaGroups *groups, const char *group_id, gint32 generation,
                           const char *member_id, gint64 now)
{
  Group *g = group_id ? group_get (groups, group_id, FALSE) : NULL;
  Member *m;

  if (generation < 0 && (member_id == NULL || *member_id == '\0'))
    {
      /* A consumer that assigns itself partitions and only stores offsets
       * may do so while no group runs under the name. */
      if (g == NULL || g_hash_table_size (g->members) == 0)
        return KAFKA_GROUP_ERROR_NONE;
      return KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID;
    }
  m = g && member_id ? g_hash_table_lookup (g->members, member_id) : NULL;
  if (m == NULL)
    return KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID;
  if (generation != g->generation)
    return KAFKA_GROUP_ERROR_ILLEGAL_GENERATION;
  /* As Kafka's coordinator does: a member of the current generation may
   * still commit while a rebalance is being prepared (that is when a
   * consumer commits what it processed before giving partitions up); only
   * while the new assignment is handed out is it refused. */
  if (g->state == KAFKA_GROUP_COMPLETING_REBALANCE)
    return KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS;
  m->last_heartbeat = now;
  return KAFKA_GROUP_ERROR_NONE;
}

/* A member waiting in JoinGroup is alive; otherwise its session runs from
 * the last heartbeat (or join, sync, commit). */
static gint64
member_expiry (const Member *m)
{
  if (m->join_cb != NULL)
    return G_MAXINT64;
  return m->last_heartbeat + m->session_timeout_ms;
}

void
kafka_groups_tick (KafkaGroups *groups, gint64 now)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer k;

  /* Answers may drop groups: walk a copy of the names. */
  g_hash_table_iter_init (&it, groups->groups);
  while (g_hash_table_iter_next (&it, &k, NULL))
    g_ptr_array_add (ids, g_strdup (k));

  for (guint i = 0; i < ids->len; i++)
    {
      Group *g = group_get (groups, ids->pdata[i], FALSE);
      g_autoptr (GPtrArray) expired = NULL;
      GHashTableIter mi;
      gpointer mk, mv;

      if (g == NULL)
        continue;
      g_hash_table_iter_init (&mi, g->pending);
      while (g_hash_table_iter_next (&mi, &mk, &mv))
        if (*(gint64 *) mv <= now)
          g_hash_table_iter_remove (&mi);

      expired = g_ptr_array_new ();
      g_hash_table_iter_init (&mi, g->members);
      while (g_hash_table_iter_next (&mi, NULL, &mv))
        if (member_expiry (mv) <= now)
          g_ptr_array_add (expired, mv);
      for (guint e = 0; e < expired->len; e++)
        {
          Member *m = expired->pdata[e];

          g_message ("group '%s': member '%s' session expired (%d ms without a heartbeat)",
                     g->id, m->id, m->session_timeout_ms);
          member_remove (groups, g, m, now);
          /* The removal may have completed a rebalance and dropped the
           * group (then every member in `expired` is gone with it). */
          if (group_get (groups, ids->pdata[i], FALSE) == NULL)
            break;
        }
      g = group_get (groups, ids->pdata[i], FALSE);
      if (g == NULL)
        continue;
      if (g->initial_delay_until != 0 && now >= g->initial_delay_until)
        g->initial_delay_until = 0;
      if (g->state == KAFKA_GROUP_PREPARING_REBALANCE && now >= g->rebalance_deadline)
        complete_join (groups, g, now);
      else
        maybe_complete_join (groups, g, now);
      g = group_get (groups, ids->pdata[i], FALSE);
      if (g != NULL)
        group_maybe_drop (groups, g);
    }
}

gint64
kafka_groups_next_deadline (KafkaGroups *groups)
{
  gint64 next = G_MAXINT64;
  GHashTableIter it, mi;
  gpointer v, mv;

  g_hash_table_iter_init (&it, groups->groups);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      Group *g = v;

      g_hash_table_iter_init (&mi, g->pending);
      while (g_hash_table_iter_next (&mi, NULL, &mv))
        next = MIN (next, *(gint64 *) mv);
      g_hash_table_iter_init (&mi, g->members);
      while (g_hash_table_iter_next (&mi, NULL, &mv))
        next = MIN (next, member_expiry (mv));
      if (g->state == KAFKA_GROUP_PREPARING_REBALANCE)
        {
          next = MIN (next, g->rebalance_deadline);
          if (g->initial_delay_until != 0)
            next = MIN (next, g->initial_delay_until);
        }
    }
  return next;
}

void
kafka_groups_forget (KafkaGroups *groups, gpointer user_data)
{
  GHashTableIter it, mi;
  gpointer v, mv;

  g_hash_table_iter_init (&it, groups->groups);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      g_hash_table_iter_init (&mi, ((Group *) v)->members);
      while (g_hash_table_iter_next (&mi, NULL, &mv))
        {
          Member *m = mv;

          /* Without a waiting join its session expiry applies again,
           * from its last heartbeat. */
          if (m->join_cb != NULL && m->join_ud == user_data)
            m->join_cb = NULL;
          if (m->sync_cb != NULL && m->sync_ud == user_data)
            m->sync_cb = NULL;
        }
    }
}

KafkaGroupState
kafka_groups_get_state (KafkaGroups *groups, const char *group_id)
{
  Group *g = group_get (groups, group_id, FALSE);

  return g ? g->state : KAFKA_GROUP_EMPTY;
}

gint32
kafka_groups_get_generation (KafkaGroups *groups, const char *group_id)
{
  Group *g = group_get (groups, group_id, FALSE);

  return g ? g->generation : 0;
}

guint
kafka_groups_get_member_count (KafkaGroups *groups, const char *group_id)
{
  Group *g = group_get (groups, group_id, FALSE);

  return g ? g_hash_table_size (g->members) : 0;
}

const char *
kafka_groups_get_leader (KafkaGroups *groups, const char *group_id)
{
  Group *g = group_get (groups, group_id, FALSE);

  return g ? g->leader : NULL;
}
