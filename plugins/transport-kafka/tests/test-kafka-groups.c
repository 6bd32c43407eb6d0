/* Unit tests: the consumer-group coordinator driven with explicit times:
 * joins (member ids, leader, protocol choice), syncs, heartbeats,
 * rebalance and session timeouts, leaves and generation checks.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-groups.h"

#include <string.h>

#define SESSION 10000
#define REBALANCE 30000

typedef struct {
  guint calls;
  gint16 error;
  gint32 generation;
  char *member_id;
  char *leader;
  char *protocol;
  guint n_members;
  char *first_member_metadata;
  GBytes *assignment;
} Answer;

static void
answer_clear (Answer *a)
{
  g_free (a->member_id);
  g_free (a->leader);
  g_free (a->protocol);
  g_free (a->first_member_metadata);
  g_clear_pointer (&a->assignment, g_bytes_unref);
  memset (a, 0, sizeof *a);
}

static void
on_join (const KafkaJoinResult *r, gpointer data)
{
  Answer *a = data;

  g_free (a->member_id);
  g_free (a->leader);
  g_free (a->protocol);
  g_free (a->first_member_metadata);
  a->calls++;
  a->error = r->error;
  a->generation = r->generation;
  a->member_id = g_strdup (r->member_id);
  a->leader = g_strdup (r->leader);
  a->protocol = g_strdup (r->protocol_name);
  a->n_members = r->n_members;
  a->first_member_metadata = r->n_members > 0 ? g_strndup ((const char *) r->members[0].metadata,
                                                          r->members[0].metadata_len)
                                              : NULL;
}

static void
on_sync (gint16 error, const char *protocol_type, const char *protocol_name,
         const guint8 *assignment, gsize len, gpointer data)
{
  Answer *a = data;

  a->calls++;
  a->error = error;
  g_clear_pointer (&a->assignment, g_bytes_unref);
  if (assignment != NULL)
    a->assignment = g_bytes_new (assignment, len);
  if (error == 0)
    {
      g_assert_cmpstr (protocol_type, ==, "consumer");
      g_assert_nonnull (protocol_name);
    }
}

typedef struct {
  const char *names[3];
  const char *metadata;
} Protos;

static void
join (KafkaGroups *g, const char *member_id, const char *client, gint64 now, Answer *a,
      const char *const *protocols, gboolean v4)
{
  static const char *const range[] = { "range", NULL };
  KafkaGroupProtocol p[4];
  KafkaJoinRequest req = { 0 };
  guint n = 0;

  if (protocols == NULL)
    protocols = range;
  for (; protocols[n] && n < 4; n++)
    {
      p[n].name = protocols[n];
      p[n].metadata = (const guint8 *) client;
      p[n].metadata_len = strlen (client);
    }
  req.group_id = "grp";
  req.member_id = member_id;
  req.client_id = client;
  req.client_host = "/127.0.0.1";
  req.session_timeout_ms = SESSION;
  req.rebalance_timeout_ms = REBALANCE;
  req.protocol_type = "consumer";
  req.protocols = p;
  req.n_protocols = n;
  req.require_known_member_id = v4;
  kafka_groups_join (g, &req, now, on_join, a);
}

static void
sync_as (KafkaGroups *g, gint32 gen, const char *member, gint64 now, Answer *a,
         const KafkaGroupAssignment *asg, guint n)
{
  kafka_groups_sync (g, "grp", gen, member, asg, n, now, on_sync, a);
}

/* A single consumer: MEMBER_ID_REQUIRED, join, lead, sync, heartbeat. */
static void
test_single (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  Answer a = { 0 }, s = { 0 };
  g_autofree char *id = NULL;
  KafkaGroupAssignment asg;

  join (g, "", "c1", 0, &a, NULL, TRUE);
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpint (a.error, ==, KAFKA_GROUP_ERROR_MEMBER_ID_REQUIRED);
  g_assert_true (g_str_has_prefix (a.member_id, "c1-"));
  id = g_strdup (a.member_id);
  g_assert_cmpuint (kafka_groups_get_member_count (g, "grp"), ==, 0);

  join (g, id, "c1", 10, &a, NULL, TRUE);
  g_assert_cmpuint (a.calls, ==, 2);
  g_assert_cmpint (a.error, ==, 0);
  g_assert_cmpint (a.generation, ==, 1);
  g_assert_cmpstr (a.leader, ==, id);
  g_assert_cmpstr (a.member_id, ==, id);
  g_assert_cmpstr (a.protocol, ==, "range");
  g_assert_cmpuint (a.n_members, ==, 1);
  g_assert_cmpstr (a.first_member_metadata, ==, "c1");
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_COMPLETING_REBALANCE);

  asg.member_id = id;
  asg.assignment = (const guint8 *) "all-partitions";
  asg.assignment_len = 14;
  sync_as (g, 1, id, 20, &s, &asg, 1);
  g_assert_cmpuint (s.calls, ==, 1);
  g_assert_cmpint (s.error, ==, 0);
  g_assert_cmpmem (g_bytes_get_data (s.assignment, NULL), g_bytes_get_size (s.assignment),
                   "all-partitions", 14);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_STABLE);
  g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 1, id, 3000), ==, 0);
  g_assert_cmpint (kafka_groups_check_commit (g, "grp", 1, id, 3001), ==, 0);
  /* Session: 10 s after the last heartbeat / commit. */
  g_assert_cmpint (kafka_groups_next_deadline (g), ==, 3001 + SESSION);
  answer_clear (&a);
  answer_clear (&s);
}

/* Stable group of two: returns both ids, A the leader. */
static void
two_members (KafkaGroups *g, char **ida, char **idb, gint64 *now)
{
  Answer a = { 0 }, b = { 0 }, sa = { 0 }, sb = { 0 };
  KafkaGroupAssignment asg[2];

  join (g, "", "ca", *now, &a, NULL, FALSE);
  g_assert_cmpint (a.error, ==, 0);
  g_assert_cmpint (a.generation, ==, 1);
  *ida = g_strdup (a.member_id);
  sync_as (g, 1, *ida, *now, &sa, NULL, 0);
  g_assert_cmpint (sa.error, ==, 0);
  g_assert_cmpuint (g_bytes_get_size (sa.assignment), ==, 0);

  *now += 100;
  join (g, "", "cb", *now, &b, NULL, FALSE);
  g_assert_cmpuint (b.calls, ==, 0);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_PREPARING_REBALANCE);
  g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 1, *ida, *now),
                   ==, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
  /* A commit of the current generation is still taken while the
   * rebalance is prepared (Kafka's coordinator does the same). */
  g_assert_cmpint (kafka_groups_check_commit (g, "grp", 1, *ida, *now),
                   ==, KAFKA_GROUP_ERROR_NONE);
  join (g, *ida, "ca", *now, &a, NULL, FALSE);
  g_assert_cmpuint (a.calls, ==, 2);
  g_assert_cmpuint (b.calls, ==, 1);
  g_assert_cmpint (a.generation, ==, 2);
  g_assert_cmpint (b.generation, ==, 2);
  g_assert_cmpstr (a.leader, ==, *ida);
  g_assert_cmpstr (b.leader, ==, *ida);
  g_assert_cmpuint (a.n_members, ==, 2);
  g_assert_cmpuint (b.n_members, ==, 0);
  *idb = g_strdup (b.member_id);

  /* The follower waits for the leader's assignments. */
  sync_as (g, 2, *idb, *now, &sb, NULL, 0);
  g_assert_cmpuint (sb.calls, ==, 0);
  asg[0].member_id = *ida;
  asg[0].assignment = (const guint8 *) "p0";
  asg[0].assignment_len = 2;
  asg[1].member_id = *idb;
  asg[1].assignment = (const guint8 *) "p1";
  asg[1].assignment_len = 2;
  sync_as (g, 2, *ida, *now, &sa, asg, 2);
  g_assert_cmpuint (sa.calls, ==, 2);
  g_assert_cmpuint (sb.calls, ==, 1);
  g_assert_cmpmem (g_bytes_get_data (sa.assignment, NULL), 2, "p0", 2);
  g_assert_cmpmem (g_bytes_get_data (sb.assignment, NULL), 2, "p1", 2);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_STABLE);
  answer_clear (&a);
  answer_clear (&b);
  answer_clear (&sa);
  answer_clear (&sb);
}

static void
test_two_members (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  gint64 now = 1000;
  Answer again = { 0 }, s = { 0 };

  two_members (g, &a, &b, &now);
  g_assert_cmpuint (kafka_groups_get_member_count (g, "grp"), ==, 2);

  /* A follower rejoining with unchanged metadata (a lost answer) gets the
   * current generation back at once, no rebalance. */
  join (g, b, "cb", now, &again, NULL, FALSE);
  g_assert_cmpuint (again.calls, ==, 1);
  g_assert_cmpint (again.error, ==, 0);
  g_assert_cmpint (again.generation, ==, 2);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_STABLE);
  /* And a sync in the stable group answers its assignment at once. */
  sync_as (g, 2, b, now, &s, NULL, 0);
  g_assert_cmpuint (s.calls, ==, 1);
  g_assert_cmpmem (g_bytes_get_data (s.assignment, NULL), 2, "p1", 2);
  answer_clear (&again);
  answer_clear (&s);
}

/* A third member joins; B never rejoins: at the rebalance timeout the
 * generation completes without B, whose heartbeat then learns it is out. */
static void
test_rebalance_timeout (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  gint64 now = 0, start;
  Answer ja = { 0 }, jc = { 0 };

  two_members (g, &a, &b, &now);
  now += 10;
  start = now;
  join (g, "", "cc", now, &jc, NULL, FALSE);
  join (g, a, "ca", now + 5, &ja, NULL, FALSE);
  g_assert_cmpuint (ja.calls, ==, 0);
  /* B keeps heartbeating (its session stays alive) but never rejoins. */
  for (gint64 t = start + 5000; t < start + REBALANCE; t += 5000)
    {
      g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 2, b, t),
                       ==, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
      g_assert_cmpint (kafka_groups_next_deadline (g), ==, MIN (t + SESSION, start + REBALANCE));
      kafka_groups_tick (g, t);
      g_assert_cmpuint (ja.calls, ==, 0);
    }
  g_assert_cmpint (kafka_groups_next_deadline (g), ==, start + REBALANCE);
  kafka_groups_tick (g, start + REBALANCE - 1);
  g_assert_cmpuint (ja.calls, ==, 0);
  kafka_groups_tick (g, start + REBALANCE);
  g_assert_cmpuint (ja.calls, ==, 1);
  g_assert_cmpuint (jc.calls, ==, 1);
  g_assert_cmpint (ja.generation, ==, 3);
  g_assert_cmpuint (ja.n_members, ==, 2);
  g_assert_cmpuint (kafka_groups_get_member_count (g, "grp"), ==, 2);
  g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 3, b, start + REBALANCE),
                   ==, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  answer_clear (&ja);
  answer_clear (&jc);
}

/* B stops heartbeating: its session expires, A is told to rejoin and
 * forms the next generation alone. */
static void
test_session_expiry (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  gint64 now = 0, b_last;
  Answer ja = { 0 };

  two_members (g, &a, &b, &now);
  b_last = now;
  for (gint64 t = now + 3000; t < b_last + SESSION; t += 3000)
    {
      g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 2, a, t), ==, 0);
      kafka_groups_tick (g, t);
    }
  g_assert_cmpint (kafka_groups_next_deadline (g), ==, b_last + SESSION);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_STABLE);
  kafka_groups_tick (g, b_last + SESSION);
  g_assert_cmpuint (kafka_groups_get_member_count (g, "grp"), ==, 1);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_PREPARING_REBALANCE);
  g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 2, a, b_last + SESSION + 1),
                   ==, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
  join (g, a, "ca", b_last + SESSION + 2, &ja, NULL, FALSE);
  g_assert_cmpuint (ja.calls, ==, 1);
  g_assert_cmpint (ja.generation, ==, 3);
  g_assert_cmpuint (ja.n_members, ==, 1);
  g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 2, a, b_last + SESSION + 3),
                   ==, KAFKA_GROUP_ERROR_ILLEGAL_GENERATION);
  answer_clear (&ja);
}

static void
test_leave (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  gint64 now = 0;
  Answer ja = { 0 };

  two_members (g, &a, &b, &now);
  g_assert_cmpint (kafka_groups_leave (g, "grp", "nobody", now), ==,
                   KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  g_assert_cmpint (kafka_groups_leave (g, "other", a, now), ==,
                   KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  /* The leader leaves: B rejoins and becomes the leader. */
  g_assert_cmpint (kafka_groups_leave (g, "grp", a, now), ==, 0);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_PREPARING_REBALANCE);
  join (g, b, "cb", now + 1, &ja, NULL, FALSE);
  g_assert_cmpuint (ja.calls, ==, 1);
  g_assert_cmpint (ja.generation, ==, 3);
  g_assert_cmpstr (ja.leader, ==, b);
  g_assert_cmpstr (kafka_groups_get_leader (g, "grp"), ==, b);
  /* The last one leaves: the group is empty, and a simple (group-less)
   * commit is allowed again. */
  g_assert_cmpint (kafka_groups_check_commit (g, "grp", -1, "", now), ==,
                   KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  g_assert_cmpint (kafka_groups_leave (g, "grp", b, now + 2), ==, 0);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_EMPTY);
  g_assert_cmpuint (kafka_groups_get_member_count (g, "grp"), ==, 0);
  g_assert_cmpint (kafka_groups_check_commit (g, "grp", -1, "", now), ==, 0);
  g_assert_cmpint (kafka_groups_next_deadline (g), ==, G_MAXINT64);
  answer_clear (&ja);
}

/* Leaving while a join and a sync wait answers them. */
static void
test_leave_answers_waiting (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  gint64 now = 0;
  Answer jc = { 0 }, sb = { 0 }, ja = { 0 };

  two_members (g, &a, &b, &now);
  join (g, "", "cc", now, &jc, NULL, FALSE);
  g_assert_cmpuint (jc.calls, ==, 0);
  g_assert_cmpint (kafka_groups_leave (g, "grp", jc.member_id ? jc.member_id : "x", now), ==,
                   KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  /* C's id is unknown to it until answered; A and B rejoin, C gets in. */
  join (g, a, "ca", now, &ja, NULL, FALSE);
  {
    Answer jb = { 0 };

    join (g, b, "cb", now, &jb, NULL, FALSE);
    g_assert_cmpuint (jb.calls, ==, 1);
    g_assert_cmpint (jb.generation, ==, 3);
    /* B syncs and waits for the leader, then leaves. */
    sync_as (g, 3, b, now, &sb, NULL, 0);
    g_assert_cmpuint (sb.calls, ==, 0);
    g_assert_cmpint (kafka_groups_leave (g, "grp", b, now), ==, 0);
    g_assert_cmpuint (sb.calls, ==, 1);
    g_assert_cmpint (sb.error, ==, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
    answer_clear (&jb);
  }
  g_assert_cmpuint (jc.calls, ==, 1);
  g_assert_cmpint (kafka_groups_get_state (g, "grp"), ==, KAFKA_GROUP_PREPARING_REBALANCE);
  answer_clear (&jc);
  answer_clear (&sb);
  answer_clear (&ja);
}

static void
test_generation_checks (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  gint64 now = 0;
  Answer s = { 0 }, j = { 0 };

  two_members (g, &a, &b, &now);
  g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 1, a, now), ==,
                   KAFKA_GROUP_ERROR_ILLEGAL_GENERATION);
  g_assert_cmpint (kafka_groups_heartbeat (g, "grp", 2, "stranger", now), ==,
                   KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  g_assert_cmpint (kafka_groups_heartbeat (g, "nogroup", 2, a, now), ==,
                   KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  sync_as (g, 1, a, now, &s, NULL, 0);
  g_assert_cmpint (s.error, ==, KAFKA_GROUP_ERROR_ILLEGAL_GENERATION);
  g_assert_null (s.assignment);
  sync_as (g, 2, "stranger", now, &s, NULL, 0);
  g_assert_cmpint (s.error, ==, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  g_assert_cmpint (kafka_groups_check_commit (g, "grp", 1, a, now), ==,
                   KAFKA_GROUP_ERROR_ILLEGAL_GENERATION);
  g_assert_cmpint (kafka_groups_check_commit (g, "grp", 2, "stranger", now), ==,
                   KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);
  g_assert_cmpint (kafka_groups_check_commit (g, "grp", 2, b, now), ==, 0);
  join (g, "unknown-member", "cx", now, &j, NULL, FALSE);
  g_assert_cmpint (j.error, ==, KAFKA_GROUP_ERROR_UNKNOWN_MEMBER_ID);

  /* A sync during a rebalance is refused. */
  join (g, "", "cc", now, &j, NULL, FALSE);
  sync_as (g, 2, b, now, &s, NULL, 0);
  g_assert_cmpint (s.error, ==, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
  answer_clear (&s);
  answer_clear (&j);
}

static void
test_refusals (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  static const char *const sticky[] = { "sticky", NULL };
  KafkaGroupProtocol p = { "range", (const guint8 *) "m", 1 };
  KafkaJoinRequest req = { 0 };
  Answer a = { 0 }, x = { 0 };

  req.group_id = "";
  req.member_id = "";
  req.session_timeout_ms = SESSION;
  req.rebalance_timeout_ms = REBALANCE;
  req.protocol_type = "consumer";
  req.protocols = &p;
  req.n_protocols = 1;
  kafka_groups_join (g, &req, 0, on_join, &a);
  g_assert_cmpint (a.error, ==, KAFKA_GROUP_ERROR_INVALID_GROUP_ID);
  req.group_id = "grp";
  req.session_timeout_ms = 100;
  kafka_groups_join (g, &req, 0, on_join, &a);
  g_assert_cmpint (a.error, ==, KAFKA_GROUP_ERROR_INVALID_SESSION_TIMEOUT);
  req.session_timeout_ms = SESSION;
  req.n_protocols = 0;
  kafka_groups_join (g, &req, 0, on_join, &a);
  g_assert_cmpint (a.error, ==, KAFKA_GROUP_ERROR_INCONSISTENT_GROUP_PROTOCOL);
  g_assert_cmpuint (a.calls, ==, 3);
  /* Refused joins leave nothing behind. */
  g_assert_cmpint (kafka_groups_next_deadline (g), ==, G_MAXINT64);

  join (g, "", "c1", 0, &a, NULL, FALSE);
  g_assert_cmpint (a.error, ==, 0);
  join (g, "", "c2", 0, &x, sticky, FALSE);
  g_assert_cmpint (x.error, ==, KAFKA_GROUP_ERROR_INCONSISTENT_GROUP_PROTOCOL);
  req.protocol_type = "connect";
  req.n_protocols = 1;
  kafka_groups_join (g, &req, 0, on_join, &x);
  g_assert_cmpint (x.error, ==, KAFKA_GROUP_ERROR_INCONSISTENT_GROUP_PROTOCOL);
  g_assert_cmpuint (kafka_groups_get_member_count (g, "grp"), ==, 1);
  answer_clear (&a);
  answer_clear (&x);
}

/* Every member supports roundrobin and range; votes pick roundrobin. */
static void
test_protocol_choice (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  static const char *const ab[] = { "range", "roundrobin", NULL };
  static const char *const ba[] = { "roundrobin", "range", "sticky", NULL };
  static const char *const b[] = { "roundrobin", "range", NULL };
  Answer j1 = { 0 }, j2 = { 0 }, j3 = { 0 };
  g_autofree char *id1 = NULL;

  join (g, "", "c1", 0, &j1, ab, FALSE);
  g_assert_cmpstr (j1.protocol, ==, "range");
  id1 = g_strdup (j1.member_id);
  join (g, "", "c2", 1, &j2, ba, FALSE);
  join (g, "", "c3", 1, &j3, b, FALSE);
  join (g, id1, "c1", 2, &j1, ab, FALSE);
  g_assert_cmpuint (j3.calls, ==, 1);
  g_assert_cmpstr (j1.protocol, ==, "roundrobin");
  g_assert_cmpstr (j2.protocol, ==, "roundrobin");
  g_assert_cmpstr (j1.leader, ==, id1);
  g_assert_cmpuint (j1.n_members, ==, 3);
  answer_clear (&j1);
  answer_clear (&j2);
  answer_clear (&j3);
}

/* With an initial delay, members starting together share generation 1. */
static void
test_initial_delay (void)
{
  KafkaGroupsConfig config = { 6000, 1800000, 3000, 0 };
  g_autoptr (KafkaGroups) g = kafka_groups_new (&config);
  Answer j1 = { 0 }, j2 = { 0 };

  join (g, "", "c1", 0, &j1, NULL, FALSE);
  join (g, "", "c2", 100, &j2, NULL, FALSE);
  g_assert_cmpuint (j1.calls + j2.calls, ==, 0);
  g_assert_cmpint (kafka_groups_next_deadline (g), ==, 3000);
  kafka_groups_tick (g, 2999);
  g_assert_cmpuint (j1.calls + j2.calls, ==, 0);
  kafka_groups_tick (g, 3000);
  g_assert_cmpuint (j1.calls, ==, 1);
  g_assert_cmpuint (j2.calls, ==, 1);
  g_assert_cmpint (j1.generation, ==, 1);
  g_assert_cmpint (j2.generation, ==, 1);
  answer_clear (&j1);
  answer_clear (&j2);
}

/* A closed connection's callbacks are dropped, never called; a rejoin
 * while a join waits answers the older one. */
static void
test_forget_and_replace (void)
{
  g_autoptr (KafkaGroups) g = kafka_groups_new (NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  gint64 now = 0;
  Answer jc = { 0 }, ja1 = { 0 }, ja2 = { 0 }, jb = { 0 };

  two_members (g, &a, &b, &now);
  join (g, "", "cc", now, &jc, NULL, FALSE);
  join (g, a, "ca", now, &ja1, NULL, FALSE);
  join (g, a, "ca", now + 1, &ja2, NULL, FALSE);
  g_assert_cmpuint (ja1.calls, ==, 1);
  g_assert_cmpint (ja1.error, ==, KAFKA_GROUP_ERROR_REBALANCE_IN_PROGRESS);
  g_assert_cmpuint (ja2.calls, ==, 0);

  kafka_groups_forget (g, &jc);
  join (g, b, "cb", now + 2, &jb, NULL, FALSE);
  /* C no longer waits, so the rebalance waits for the timeout. */
  g_assert_cmpuint (jb.calls, ==, 0);
  kafka_groups_tick (g, now + REBALANCE + 10);
  g_assert_cmpuint (jc.calls, ==, 0);
  g_assert_cmpuint (ja2.calls, ==, 1);
  g_assert_cmpuint (jb.calls, ==, 1);
  g_assert_cmpuint (ja2.n_members, ==, 2);
  answer_clear (&jc);
  answer_clear (&ja1);
  answer_clear (&ja2);
  answer_clear (&jb);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/transport/kafka/groups/single", test_single);
  g_test_add_func ("/transport/kafka/groups/two-members", test_two_members);
  g_test_add_func ("/transport/kafka/groups/rebalance-timeout", test_rebalance_timeout);
  g_test_add_func ("/transport/kafka/groups/session-expiry", test_session_expiry);
  g_test_add_func ("/transport/kafka/groups/leave", test_leave);
  g_test_add_func ("/transport/kafka/groups/leave-answers-waiting", test_leave_answers_waiting);
  g_test_add_func ("/transport/kafka/groups/generation-checks", test_generation_checks);
  g_test_add_func ("/transport/kafka/groups/refusals", test_refusals);
  g_test_add_func ("/transport/kafka/groups/protocol-choice", test_protocol_choice);
  g_test_add_func ("/transport/kafka/groups/initial-delay", test_initial_delay);
  g_test_add_func ("/transport/kafka/groups/forget-and-replace", test_forget_and_replace);

  return g_test_run ();
}
