/* transport-mqtt: the subscription index — spec matching through the trie,
 * merged overlapping subscriptions, no-local, shared groups, node lifetime,
 * the per-publish cost, and a randomized cross-check against the plain
 * matcher of mqtt-topic.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-subs.h"
#include "mqtt-random-topics.h"

#include <string.h>

/* Subscribers are opaque handles; small integers will do. */
#define WHO(n) GUINT_TO_POINTER (n)

typedef struct
{
  MqttSubs *subs;
  MqttSubsMatch match;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->subs = mqtt_subs_new (NULL);
  mqtt_subs_match_init (&f->match);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  mqtt_subs_match_clear (&f->match);
  mqtt_subs_free (f->subs);
}

static gboolean
sub_full (MqttSubs *subs, guint who, const char *filter, guint8 qos,
          guint32 id, gboolean no_local, gboolean rap)
{
  MqttSubOptions options = { qos, no_local, rap, 0, id };
  g_autoptr(GError) error = NULL;
  gboolean existed = TRUE;

  g_assert_true (mqtt_subs_subscribe (subs, WHO (who), filter, strlen (filter),
                                      &options, &existed, &error));
  g_assert_no_error (error);
  return existed;
}

static void
sub (MqttSubs *subs, guint who, const char *filter, guint8 qos, guint32 id)
{
  g_assert_false (sub_full (subs, who, filter, qos, id, FALSE, FALSE));
}

static gboolean
unsub (MqttSubs *subs, guint who, const char *filter)
{
  return mqtt_subs_unsubscribe (subs, WHO (who), filter, strlen (filter));
}

static void
match (Fixture *f, const char *topic, gpointer publisher)
{
  mqtt_subs_match (f->subs, topic, strlen (topic), publisher, NULL, NULL,
                   &f->match);
}

/* The plain delivery for `who`, or NULL. */
static const MqttSubsDelivery *
plain_for (const MqttSubsMatch *m, guint who)
{
  const MqttSubsDelivery *found = NULL;

  for (guint i = 0; i < m->deliveries->len; i++)
    {
      const MqttSubsDelivery *d = &g_array_index (m->deliveries,
                                                  MqttSubsDelivery, i);

      if (d->share_name == NULL && d->subscriber == WHO (who))
        {
          /* One per subscriber, never two. */
          g_assert_null (found);
          found = d;
        }
    }
  return found;
}

static guint
n_shared (const MqttSubsMatch *m)
{
  guint n = 0;

  for (guint i = 0; i < m->deliveries->len; i++)
    n += g_array_index (m->deliveries, MqttSubsDelivery, i).share_name != NULL;
  return n;
}

static int
cmp_u32 (gconstpointer a, gconstpointer b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;

  return x < y ? -1 : x > y;
}

/* "5,7": the delivery's subscription identifiers, sorted. */
static char *
ids_of (const MqttSubsMatch *m, const MqttSubsDelivery *d)
{
  g_autofree guint32 *ids = g_memdup2 (mqtt_subs_delivery_ids (m, d),
                                       d->n_ids * sizeof (guint32));
  GString *out = g_string_new (NULL);

  g_assert_cmpuint (d->first_id + d->n_ids, <=, m->ids->len);
  if (d->n_ids > 1)
    qsort (ids, d->n_ids, sizeof (guint32), cmp_u32);
  for (guint i = 0; i < d->n_ids; i++)
    g_string_append_printf (out, "%s%u", i > 0 ? "," : "", ids[i]);
  return g_string_free (out, FALSE);
}

static void
assert_plain (const MqttSubsMatch *m, guint who, guint8 qos, const char *ids)
{
  const MqttSubsDelivery *d = plain_for (m, who);
  g_autofree char *got = NULL;

  g_assert_nonnull (d);
  g_assert_cmpuint (d->qos, ==, qos);
  got = ids_of (m, d);
  g_assert_cmpstr (got, ==, ids);
}

/* Does a single subscription of `filter` see `topic` through the index? */
static gboolean
index_matches (Fixture *f, const char *filter, const char *topic)
{
  gboolean hit;

  sub (f->subs, 1, filter, 0, 0);
  match (f, topic, NULL);
  hit = plain_for (&f->match, 1) != NULL;
  g_assert_cmpuint (f->match.deliveries->len, ==, hit ? 1 : 0);
  g_assert_true (unsub (f->subs, 1, filter));
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 0);
  /* The reference matcher agrees. */
  g_assert_cmpint (hit, ==, mqtt_topic_matches (filter, strlen (filter), topic,
                                                strlen (topic)));
  return hit;
}

static void
test_spec (Fixture *f, gconstpointer data)
{
  g_assert_true (index_matches (f, "sport/tennis/player1/#", "sport/tennis/player1"));
  g_assert_true (index_matches (f, "sport/tennis/player1/#",
                                "sport/tennis/player1/ranking"));
  g_assert_true (index_matches (f, "sport/tennis/player1/#",
                                "sport/tennis/player1/score/wimbledon"));
  g_assert_true (index_matches (f, "sport/#", "sport"));
  g_assert_true (index_matches (f, "#", "sport"));
  g_assert_true (index_matches (f, "sport/tennis/+", "sport/tennis/player1"));
  g_assert_false (index_matches (f, "sport/tennis/+",
                                 "sport/tennis/player1/ranking"));
  g_assert_false (index_matches (f, "sport/+", "sport"));
  g_assert_true (index_matches (f, "sport/+", "sport/"));
  g_assert_true (index_matches (f, "+/+", "/finance"));
  g_assert_true (index_matches (f, "/+", "/finance"));
  g_assert_false (index_matches (f, "+", "/finance"));
  g_assert_false (index_matches (f, "ACCOUNTS", "Accounts"));
  g_assert_true (index_matches (f, "+/tennis/#", "sport/tennis"));
  g_assert_false (index_matches (f, "sport/tennis", "sport/tennis/"));

  /* MQTT-4.7.2-1. */
  g_assert_false (index_matches (f, "#", "$SYS/monitor/Clients"));
  g_assert_false (index_matches (f, "+/monitor/Clients", "$SYS/monitor/Clients"));
  g_assert_false (index_matches (f, "+", "$SYS"));
  g_assert_true (index_matches (f, "$SYS/#", "$SYS/monitor/Clients"));
  g_assert_true (index_matches (f, "$SYS/#", "$SYS"));
  g_assert_true (index_matches (f, "$SYS/monitor/+", "$SYS/monitor/Clients"));
  g_assert_true (index_matches (f, "#", "a/$SYS"));
}

static void
test_dollar_shared (Fixture *f, gconstpointer data)
{
  sub (f->subs, 1, "$share/g/#", 1, 0);
  sub (f->subs, 2, "$share/g/+/monitor/Clients", 1, 0);
  sub (f->subs, 3, "$share/g/$SYS/#", 1, 0);
  match (f, "$SYS/monitor/Clients", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  g_assert_true (g_array_index (f->match.deliveries, MqttSubsDelivery,
                                0).subscriber == WHO (3));
  match (f, "x/monitor/Clients", NULL);
  g_assert_cmpuint (n_shared (&f->match), ==, 2);
}

/* MQTT 5 §3.3.4: one copy per client, the maximum QoS, every identifier. */
static void
test_overlap (Fixture *f, gconstpointer data)
{
  const MqttSubsDelivery *d;

  sub (f->subs, 1, "a/+", 1, 5);
  sub (f->subs, 1, "a/#", 2, 7);
  sub (f->subs, 1, "a/b", 0, 0);
  sub (f->subs, 1, "+/b", 0, 5);
  sub (f->subs, 2, "a/b", 1, 9);

  match (f, "a/b", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 2);
  assert_plain (&f->match, 1, 2, "5,5,7");
  assert_plain (&f->match, 2, 1, "9");
  d = plain_for (&f->match, 2);
  g_assert_false (d->no_local);
  g_assert_false (d->retain_as_published);

  match (f, "a/c", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  assert_plain (&f->match, 1, 2, "5,7");

  match (f, "a", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  assert_plain (&f->match, 1, 2, "7");

  match (f, "b/b", NULL);
  assert_plain (&f->match, 1, 0, "5");

  /* Retain-as-published: kept when any matching subscription asks. */
  g_assert_true (sub_full (f->subs, 1, "a/b", 0, 0, FALSE, TRUE));
  match (f, "a/b", NULL);
  g_assert_true (plain_for (&f->match, 1)->retain_as_published);
  match (f, "a/c", NULL);
  g_assert_false (plain_for (&f->match, 1)->retain_as_published);
}

/* Many subscribers with overlapping filters: past the linear merge. */
static void
test_overlap_many (Fixture *f, gconstpointer data)
{
  for (guint who = 1; who <= 50; who++)
    {
      sub (f->subs, who, "x/+", who % 3, who);
      sub (f->subs, who, "x/#", 0, 1000 + who);
      sub (f->subs, who, "#", 1, 0);
    }
  match (f, "x/y", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 50);
  for (guint who = 1; who <= 50; who++)
    {
      g_autofree char *ids = g_strdup_printf ("%u,%u", who, 1000 + who);

      assert_plain (&f->match, who, MAX (who % 3, 1), ids);
    }
  match (f, "y", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 50);
  g_assert_cmpuint (f->match.ids->len, ==, 0);
}

static void
test_replace (Fixture *f, gconstpointer data)
{
  const MqttSubOptions *options;

  sub (f->subs, 1, "a/b", 0, 0);
  g_assert_true (sub_full (f->subs, 1, "a/b", 2, 4, FALSE, FALSE));
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 1);
  options = mqtt_subs_lookup (f->subs, WHO (1), "a/b", 3);
  g_assert_nonnull (options);
  g_assert_cmpuint (options->qos, ==, 2);
  g_assert_cmpuint (options->subscription_id, ==, 4);
  g_assert_null (mqtt_subs_lookup (f->subs, WHO (2), "a/b", 3));
  g_assert_null (mqtt_subs_lookup (f->subs, WHO (1), "a/+", 3));
  match (f, "a/b", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  assert_plain (&f->match, 1, 2, "4");

  /* A shared subscription is replaced in place too: still one member. */
  sub (f->subs, 1, "$share/g/a/b", 0, 0);
  g_assert_true (sub_full (f->subs, 1, "$share/g/a/b", 1, 3, FALSE, FALSE));
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 2);
  match (f, "a/b", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 2);
  g_assert_cmpuint (n_shared (&f->match), ==, 1);

  /* The same filter for another subscriber is its own subscription. */
  g_assert_false (sub_full (f->subs, 2, "a/b", 0, 0, FALSE, FALSE));
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 3);
}

static void
test_no_local (Fixture *f, gconstpointer data)
{
  const MqttSubsDelivery *d;

  sub_full (f->subs, 1, "a/b", 1, 1, TRUE, FALSE);
  sub_full (f->subs, 1, "a/+", 0, 2, FALSE, FALSE);
  sub_full (f->subs, 2, "a/b", 2, 3, TRUE, FALSE);
  sub_full (f->subs, 3, "a/#", 2, 0, TRUE, FALSE);

  /* Publisher 1: its no-local subscription is left out, its other one
   * still delivers, at that one's QoS and with that one's identifier. */
  match (f, "a/b", WHO (1));
  g_assert_cmpuint (f->match.deliveries->len, ==, 3);
  assert_plain (&f->match, 1, 0, "2");
  assert_plain (&f->match, 2, 2, "3");
  g_assert_false (plain_for (&f->match, 1)->no_local);
  g_assert_false (plain_for (&f->match, 2)->no_local);

  /* Publisher 2: every subscription of 2 is no-local: no copy. */
  match (f, "a/b", WHO (2));
  g_assert_cmpuint (f->match.deliveries->len, ==, 2);
  g_assert_null (plain_for (&f->match, 2));

  /* No publisher given: reported for the caller to apply. */
  match (f, "a/b", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 3);
  assert_plain (&f->match, 1, 1, "1,2");
  g_assert_false (plain_for (&f->match, 1)->no_local);
  d = plain_for (&f->match, 2);
  g_assert_true (d->no_local);
  d = plain_for (&f->match, 3);
  g_assert_true (d->no_local);
  /* A publisher that subscribes to nothing changes nothing. */
  match (f, "a/b", WHO (99));
  g_assert_cmpuint (f->match.deliveries->len, ==, 3);
  g_assert_false (plain_for (&f->match, 3)->no_local);
}

static guint
shared_pick (Fixture *f, const char *topic, MqttSubsCanTakeFunc can_take,
             gpointer data, gboolean *all_busy)
{
  const MqttSubsDelivery *d;

  mqtt_subs_match (f->subs, topic, strlen (topic), NULL, can_take, data,
                   &f->match);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  d = &g_array_index (f->match.deliveries, MqttSubsDelivery, 0);
  g_assert_cmpstr (d->share_name, ==, "g");
  if (all_busy != NULL)
    *all_busy = d->all_busy;
  else
    g_assert_false (d->all_busy);
  return GPOINTER_TO_UINT (d->subscriber);
}

static gboolean
refuse_listed (gpointer subscriber, guint8 qos, gpointer data)
{
  const guint *refused = data;

  for (; *refused != 0; refused++)
    if (GPOINTER_TO_UINT (subscriber) == *refused)
      return FALSE;
  return TRUE;
}

static void
test_shared_round_robin (Fixture *f, gconstpointer data)
{
  const MqttSubsDelivery *d;

  sub (f->subs, 1, "$share/g/a/b", 1, 11);
  sub (f->subs, 2, "$share/g/a/b", 2, 0);
  sub (f->subs, 3, "$share/g/a/b", 0, 33);

  for (guint round = 0; round < 3; round++)
    {
      g_assert_cmpuint (shared_pick (f, "a/b", NULL, NULL, NULL), ==, 1);
      d = &g_array_index (f->match.deliveries, MqttSubsDelivery, 0);
      g_assert_cmpuint (d->qos, ==, 1);
      g_assert_cmpuint (d->n_ids, ==, 1);
      g_assert_cmpuint (mqtt_subs_delivery_ids (&f->match, d)[0], ==, 11);
      g_assert_cmpuint (shared_pick (f, "a/b", NULL, NULL, NULL), ==, 2);
      d = &g_array_index (f->match.deliveries, MqttSubsDelivery, 0);
      g_assert_cmpuint (d->qos, ==, 2);
      g_assert_cmpuint (d->n_ids, ==, 0);
      g_assert_cmpuint (shared_pick (f, "a/b", NULL, NULL, NULL), ==, 3);
    }

  /* A member leaves mid-turn: the others go on in order. */
  g_assert_cmpuint (shared_pick (f, "a/b", NULL, NULL, NULL), ==, 1);
  g_assert_true (unsub (f->subs, 2, "$share/g/a/b"));
  g_assert_cmpuint (shared_pick (f, "a/b", NULL, NULL, NULL), ==, 3);
  g_assert_cmpuint (shared_pick (f, "a/b", NULL, NULL, NULL), ==, 1);
  g_assert_cmpuint (shared_pick (f, "a/b", NULL, NULL, NULL), ==, 3);
}

static void
test_shared_groups (Fixture *f, gconstpointer data)
{
  guint counts[4] = { 0 };

  /* A plain subscription of a member gets its own copy besides the group's
   * (5.0 §4.8.2); other group names and other filters are other groups. */
  sub (f->subs, 1, "$share/g/a/b", 1, 0);
  sub (f->subs, 2, "$share/g/a/b", 1, 0);
  sub (f->subs, 1, "a/b", 0, 0);
  sub (f->subs, 3, "$share/h/a/b", 1, 0);
  sub (f->subs, 3, "$share/g/a/+", 1, 0);

  for (guint i = 0; i < 4; i++)
    {
      match (f, "a/b", NULL);
      g_assert_cmpuint (f->match.deliveries->len, ==, 4);
      g_assert_cmpuint (n_shared (&f->match), ==, 3);
      g_assert_nonnull (plain_for (&f->match, 1));
      for (guint j = 0; j < f->match.deliveries->len; j++)
        {
          const MqttSubsDelivery *d = &g_array_index (f->match.deliveries,
                                                      MqttSubsDelivery, j);

          if (d->share_name != NULL)
            counts[GPOINTER_TO_UINT (d->subscriber)]++;
        }
    }
  /* 1 and 2 shared group g on a/b; 3 alone in h and in g on a/+. */
  g_assert_cmpuint (counts[1], ==, 2);
  g_assert_cmpuint (counts[2], ==, 2);
  g_assert_cmpuint (counts[3], ==, 8);

  match (f, "a/c", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  g_assert_true (g_array_index (f->match.deliveries, MqttSubsDelivery,
                                0).subscriber == WHO (3));
}

static void
test_shared_skip (Fixture *f, gconstpointer data)
{
  const guint refuse_2[] = { 2, 0 };
  const guint refuse_1_2[] = { 1, 2, 0 };
  const guint refuse_all[] = { 1, 2, 3, 0 };
  gboolean busy = FALSE;

  sub (f->subs, 1, "$share/g/t", 1, 0);
  sub (f->subs, 2, "$share/g/t", 1, 0);
  sub (f->subs, 3, "$share/g/t", 1, 0);

  /* 2 cannot take more: 1 and 3 take turns. */
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_2, NULL), ==, 1);
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_2, NULL), ==, 3);
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_2, NULL), ==, 1);
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_2, NULL), ==, 3);
  /* 2 kept its turn: it is first once it can take again. */
  g_assert_cmpuint (shared_pick (f, "t", NULL, NULL, NULL), ==, 2);
  g_assert_cmpuint (shared_pick (f, "t", NULL, NULL, NULL), ==, 1);
  g_assert_cmpuint (shared_pick (f, "t", NULL, NULL, NULL), ==, 3);

  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_1_2, NULL), ==, 3);
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_1_2, NULL), ==, 3);

  /* Nobody can: the one whose turn it is, flagged, and the turn moves on. */
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_all, &busy), ==, 2);
  g_assert_true (busy);
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_all, &busy), ==, 1);
  g_assert_true (busy);
  g_assert_cmpuint (shared_pick (f, "t", refuse_listed, (gpointer) refuse_2, &busy), ==, 3);
  g_assert_false (busy);
}

static void
test_errors (Fixture *f, gconstpointer data)
{
  const MqttTopicLimits limits = { .max_length = 16, .max_levels = 3 };
  g_autoptr(MqttSubs) limited = mqtt_subs_new (&limits);
  MqttSubOptions options = { 0 };
  GError *error = NULL;

  options.qos = 3;
  g_assert_false (mqtt_subs_subscribe (f->subs, WHO (1), "a", 1, &options,
                                       NULL, &error));
  g_assert_error (error, MQTT_SUBS_ERROR, MQTT_SUBS_ERROR_BAD_OPTIONS);
  g_clear_error (&error);
  options.qos = 0;
  options.retain_handling = 3;
  g_assert_false (mqtt_subs_subscribe (f->subs, WHO (1), "a", 1, &options,
                                       NULL, &error));
  g_assert_error (error, MQTT_SUBS_ERROR, MQTT_SUBS_ERROR_BAD_OPTIONS);
  g_clear_error (&error);
  options.retain_handling = 2;
  options.subscription_id = MQTT_SUBSCRIPTION_ID_MAX + 1;
  g_assert_false (mqtt_subs_subscribe (f->subs, WHO (1), "a", 1, &options,
                                       NULL, &error));
  g_assert_error (error, MQTT_SUBS_ERROR, MQTT_SUBS_ERROR_BAD_OPTIONS);
  g_clear_error (&error);
  options.subscription_id = MQTT_SUBSCRIPTION_ID_MAX;
  options.no_local = TRUE;
  g_assert_false (mqtt_subs_subscribe (f->subs, WHO (1), "$share/g/a", 10,
                                       &options, NULL, &error));
  g_assert_error (error, MQTT_SUBS_ERROR, MQTT_SUBS_ERROR_SHARED_NO_LOCAL);
  g_clear_error (&error);
  g_assert_false (mqtt_subs_subscribe (f->subs, WHO (1), "sport/tennis#", 13,
                                       &options, NULL, &error));
  g_assert_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_BAD_WILDCARD);
  g_clear_error (&error);
  g_assert_false (mqtt_subs_subscribe (f->subs, WHO (1), "$share//a", 9,
                                       &options, NULL, &error));
  g_assert_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_BAD_SHARE);
  g_clear_error (&error);
  g_assert_false (mqtt_subs_subscribe (limited, WHO (1), "a/b/c/d", 7,
                                       &options, NULL, &error));
  g_assert_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_TOO_MANY_LEVELS);
  g_clear_error (&error);
  g_assert_false (mqtt_subs_subscribe (limited, WHO (1), "aaaaaaaa/bbbbbbbb", 17,
                                       &options, NULL, &error));
  g_assert_error (error, MQTT_TOPIC_ERROR, MQTT_TOPIC_ERROR_TOO_LONG);
  g_clear_error (&error);
  g_assert_true (mqtt_subs_subscribe (limited, WHO (1), "a/b/c", 5, &options,
                                      NULL, &error));
  g_assert_no_error (error);

  /* Nothing of the failed calls stayed behind. */
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 0);
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 0);
  match (f, "a", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 0);
}

static void
collect_filter (const char *filter, const MqttSubOptions *options,
                gpointer data)
{
  g_ptr_array_add (data, g_strdup_printf ("%s=%u", filter, options->qos));
}

static int
cmp_strv (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
test_unsubscribe_frees (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) filters = g_ptr_array_new_with_free_func (g_free);

  sub (f->subs, 1, "a/b/c", 0, 0);       /* a, b, c */
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 3);
  sub (f->subs, 1, "a/b/d", 1, 0);       /* d */
  sub (f->subs, 2, "a/+/#", 2, 0);       /* +, # */
  sub (f->subs, 2, "$share/g/a/b/c", 0, 0);
  sub (f->subs, 3, "$share/g/a/b/c", 0, 0);
  sub (f->subs, 3, "$share/h/a/b/e", 0, 0);  /* e */
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 7);
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 6);

  mqtt_subs_foreach_of (f->subs, WHO (1), collect_filter, filters);
  g_ptr_array_sort (filters, cmp_strv);
  g_assert_cmpuint (filters->len, ==, 2);
  g_assert_cmpstr (filters->pdata[0], ==, "a/b/c=0");
  g_assert_cmpstr (filters->pdata[1], ==, "a/b/d=1");

  /* Not subscribed: nothing happens. */
  g_assert_false (unsub (f->subs, 1, "a/+/#"));
  g_assert_false (unsub (f->subs, 4, "a/b/c"));
  g_assert_false (unsub (f->subs, 1, "a/b"));
  g_assert_false (unsub (f->subs, 1, "$share/g/a/b/c"));
  g_assert_false (mqtt_subs_unsubscribe (f->subs, WHO (1), "a/b/c\0", 6));
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 6);

  g_assert_true (unsub (f->subs, 1, "a/b/d"));
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 6);
  g_assert_true (unsub (f->subs, 3, "$share/h/a/b/e"));
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 5);
  /* c still holds 1's plain and 2's shared subscriptions. */
  g_assert_true (unsub (f->subs, 1, "a/b/c"));
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 5);
  g_assert_true (unsub (f->subs, 2, "$share/g/a/b/c"));
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 5);
  g_assert_false (unsub (f->subs, 2, "$share/g/a/b/c"));
  /* 3 leaves entirely: its last member of g on c goes, so does c, b. */
  g_assert_cmpuint (mqtt_subs_remove_subscriber (f->subs, WHO (3)), ==, 1);
  g_assert_cmpuint (mqtt_subs_remove_subscriber (f->subs, WHO (3)), ==, 0);
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 3);
  match (f, "a/b/c", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  assert_plain (&f->match, 2, 2, "");
  g_assert_cmpuint (mqtt_subs_remove_subscriber (f->subs, WHO (2)), ==, 1);
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 0);
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 0);
  match (f, "a/b/c", NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 0);
  g_assert_cmpuint (f->match.visited, ==, 1);   /* the root */
}

/* The per-publish cost counted in trie nodes visited: 100,000 (and then
 * 200,000) subscriptions that do not match add no visit at all. */
static void
test_cost (Fixture *f, gconstpointer data)
{
  static const char *const topics[] = {
    "sport/tennis/player1", "sport/tennis/player1/ranking", "news/x",
    "$SYS/load",
  };
  guint visited[G_N_ELEMENTS (topics)];
  guint delivered[G_N_ELEMENTS (topics)];
  guint nodes;

  sub (f->subs, 1, "sport/tennis/player1/#", 1, 0);
  sub (f->subs, 2, "sport/+/player1", 1, 0);
  sub (f->subs, 3, "+/tennis/#", 1, 0);
  sub (f->subs, 4, "#", 0, 0);
  sub (f->subs, 5, "$share/g/sport/tennis/+", 1, 0);
  sub (f->subs, 6, "sport/tennis/player1", 2, 0);
  sub (f->subs, 7, "$SYS/#", 2, 0);
  for (gsize i = 0; i < G_N_ELEMENTS (topics); i++)
    {
      match (f, topics[i], NULL);
      visited[i] = f->match.visited;
      delivered[i] = f->match.deliveries->len;
      g_test_message ("%s: %u nodes visited, %u deliveries", topics[i],
                      visited[i], delivered[i]);
      g_assert_cmpuint (delivered[i], >, 0);
    }
  nodes = mqtt_subs_node_count (f->subs);

  for (guint round = 0; round < 2; round++)
    {
      for (guint i = 0; i < 100000; i++)
        {
          guint n = round * 100000 + i;
          g_autofree char *filter = NULL;

          /* Siblings of the matching paths at every level, under the same
           * wildcard nodes, deeper than the topics, and shared groups. */
          switch (n % 7)
            {
            case 0: filter = g_strdup_printf ("other/%u/x", n); break;
            case 1: filter = g_strdup_printf ("sport/tennis/p%u", n); break;
            case 2: filter = g_strdup_printf ("sport/x%u/player1", n); break;
            case 3: filter = g_strdup_printf ("+/x%u/#", n); break;
            case 4: filter = g_strdup_printf ("sport/+/x%u", n); break;
            case 5: filter = g_strdup_printf ("sport/tennis/player1/d/%u", n); break;
            default: filter = g_strdup_printf ("$share/s%u/x%u/#", n, n % 100); break;
            }
          sub (f->subs, 1000 + n % 5000, filter, n % 3, n % 2 ? n : 0);
        }
      g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 7 + (round + 1) * 100000);
      g_assert_cmpuint (mqtt_subs_node_count (f->subs), >, nodes + 90000);

      for (gsize i = 0; i < G_N_ELEMENTS (topics); i++)
        {
          match (f, topics[i], NULL);
          g_assert_cmpuint (f->match.visited, ==, visited[i]);
          g_assert_cmpuint (f->match.deliveries->len, ==, delivered[i]);
        }
    }

  /* And they all go again, with their nodes. */
  for (guint who = 1000; who < 6000; who++)
    g_assert_cmpuint (mqtt_subs_remove_subscriber (f->subs, WHO (who)), ==, 40);
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, nodes);
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 7);
}

/* Tens of thousands of levels: no recursion to overflow the stack. */
static void
test_deep (Fixture *f, gconstpointer data)
{
  GString *filter = g_string_new ("+");
  g_autofree char *topic = NULL;

  for (guint i = 1; i < 30000; i++)
    g_string_append (filter, i % 2 ? "/a" : "/+");
  topic = g_strdup (filter->str);
  g_strdelimit (topic, "+", 'a');
  g_string_append (filter, "/#");
  sub (f->subs, 1, filter->str, 1, 0);
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 30001);
  match (f, topic, NULL);
  g_assert_cmpuint (f->match.deliveries->len, ==, 1);
  g_assert_cmpuint (f->match.visited, ==, 30002);
  g_string_free (filter, TRUE);
  /* Teardown frees the deep trie. */
}

/* ---- randomized cross-check against mqtt_topic_matches ---- */

typedef struct
{
  guint who;
  char *text;                   /* as subscribed */
  MqttTopicFilter parsed;       /* points into text */
  MqttSubOptions options;
} ModelSub;

static void
model_sub_free (gpointer data)
{
  ModelSub *s = data;

  g_free (s->text);
  g_free (s);
}

static guint
model_find (GPtrArray *model, guint who, const char *text)
{
  for (guint i = 0; i < model->len; i++)
    {
      ModelSub *s = model->pdata[i];

      if (s->who == who && strcmp (s->text, text) == 0)
        return i + 1;
    }
  return 0;
}

/* Trie nodes the model implies: every distinct level prefix of every
 * subscribed filter proper. */
static guint
model_nodes (GPtrArray *model)
{
  g_autoptr(GHashTable) prefixes = g_hash_table_new_full (g_str_hash,
                                                          g_str_equal,
                                                          g_free, NULL);

  for (guint i = 0; i < model->len; i++)
    {
      ModelSub *s = model->pdata[i];

      for (gsize j = 0; j <= s->parsed.filter_len; j++)
        if (j == s->parsed.filter_len || s->parsed.filter[j] == '/')
          g_hash_table_add (prefixes, g_strndup (s->parsed.filter, j));
    }
  return g_hash_table_size (prefixes);
}

static void
check_topic (Fixture *f, GPtrArray *model, const char *topic, guint publisher)
{
  g_autoptr(GHashTable) groups = g_hash_table_new_full (g_str_hash,
                                                        g_str_equal, g_free,
                                                        NULL);
  guint n_plain = 0;

  match (f, topic, publisher ? WHO (publisher) : NULL);

  for (guint who = 1; who <= 40; who++)
    {
      const MqttSubsDelivery *d = plain_for (&f->match, who);
      g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (guint32));
      gboolean any = FALSE, rap = FALSE, all_no_local = TRUE;
      guint8 qos = 0;

      for (guint i = 0; i < model->len; i++)
        {
          ModelSub *s = model->pdata[i];

          if (s->who != who || s->parsed.share_name != NULL
              || !mqtt_topic_matches (s->parsed.filter, s->parsed.filter_len,
                                      topic, strlen (topic)))
            continue;
          if (publisher == who && s->options.no_local)
            continue;
          any = TRUE;
          qos = MAX (qos, s->options.qos);
          rap |= s->options.retain_as_published;
          all_no_local &= s->options.no_local;
          if (s->options.subscription_id != 0)
            g_array_append_val (ids, s->options.subscription_id);
        }
      if (!any)
        {
          g_assert_null (d);
          continue;
        }
      n_plain++;
      g_assert_nonnull (d);
      g_assert_cmpuint (d->qos, ==, qos);
      g_assert_cmpint (d->retain_as_published, ==, rap);
      g_assert_cmpint (d->no_local, ==, publisher == 0 && all_no_local);
      g_assert_cmpuint (d->n_ids, ==, ids->len);
      g_array_sort (ids, cmp_u32);
      {
        g_autofree guint32 *got = g_memdup2 (mqtt_subs_delivery_ids (&f->match, d),
                                             d->n_ids * sizeof (guint32));

        if (d->n_ids > 1)
          qsort (got, d->n_ids, sizeof (guint32), cmp_u32);
        g_assert_cmpmem (got, d->n_ids * sizeof (guint32), ids->data,
                         ids->len * sizeof (guint32));
      }
    }

  /* Shared: one copy per matching (share name, filter) group, to a member
   * of such a group. */
  for (guint i = 0; i < model->len; i++)
    {
      ModelSub *s = model->pdata[i];

      if (s->parsed.share_name != NULL
          && mqtt_topic_matches (s->parsed.filter, s->parsed.filter_len,
                                 topic, strlen (topic)))
        g_hash_table_add (groups, g_strdup (s->text + strlen ("$share/")));
    }
  g_assert_cmpuint (f->match.deliveries->len, ==,
                    n_plain + g_hash_table_size (groups));
  for (guint j = 0; j < f->match.deliveries->len; j++)
    {
      const MqttSubsDelivery *d = &g_array_index (f->match.deliveries,
                                                  MqttSubsDelivery, j);
      gboolean member = FALSE;

      if (d->share_name == NULL)
        continue;
      for (guint i = 0; i < model->len && !member; i++)
        {
          ModelSub *s = model->pdata[i];

          member = s->parsed.share_name != NULL
            && WHO (s->who) == d->subscriber
            && strlen (d->share_name) == s->parsed.share_name_len
            && memcmp (d->share_name, s->parsed.share_name,
                       s->parsed.share_name_len) == 0
            && mqtt_topic_matches (s->parsed.filter, s->parsed.filter_len,
                                   topic, strlen (topic));
        }
      g_assert_true (member);
    }
}

static void
test_random (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) model = g_ptr_array_new_with_free_func (model_sub_free);
  guint checks = 0, deliveries = 0;

  for (guint op = 0; op < 6000; op++)
    {
      guint who = g_test_rand_int_range (1, 41);

      if (model->len > 0 && g_test_rand_int_range (0, 100) < 25)
        {
          /* Unsubscribe something that exists, or (sometimes) not. */
          guint at = g_test_rand_int_range (0, model->len);
          ModelSub *s = model->pdata[at];
          gboolean exists = g_test_rand_int_range (0, 4) > 0;

          if (exists)
            {
              g_assert_true (unsub (f->subs, s->who, s->text));
              g_ptr_array_remove_index_fast (model, at);
            }
          else
            {
              /* Another subscriber's filter: subscribed by this one too? */
              guint other = s->who % 40 + 1;
              guint found = model_find (model, other, s->text);

              g_assert_cmpint (unsub (f->subs, other, s->text), ==, found > 0);
              if (found > 0)
                g_ptr_array_remove_index_fast (model, found - 1);
            }
        }
      else
        {
          g_autofree char *path = random_path (TRUE);
          ModelSub *s = g_new0 (ModelSub, 1);
          gboolean shared = g_test_rand_int_range (0, 100) < 20;
          guint existing;
          gboolean existed = FALSE;

          s->who = who;
          s->text = shared ? g_strdup_printf ("$share/g%d/%s",
                                              g_test_rand_int_range (0, 2),
                                              path)
            : g_strdup (path);
          g_assert_true (mqtt_topic_filter_parse (s->text, strlen (s->text),
                                                  NULL, &s->parsed, NULL));
          s->options.qos = g_test_rand_int_range (0, 3);
          s->options.no_local = !shared && g_test_rand_int_range (0, 4) == 0;
          s->options.retain_as_published = g_test_rand_int_range (0, 2);
          s->options.subscription_id = g_test_rand_int_range (0, 6);
          g_assert_true (mqtt_subs_subscribe (f->subs, WHO (who), s->text,
                                              strlen (s->text), &s->options,
                                              &existed, NULL));
          existing = model_find (model, who, s->text);
          g_assert_cmpint (existed, ==, existing > 0);
          if (existing > 0)
            g_ptr_array_remove_index_fast (model, existing - 1);
          g_ptr_array_add (model, s);
        }

      if (op % 200 == 199)
        {
          g_assert_cmpuint (mqtt_subs_count (f->subs), ==, model->len);
          g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==,
                            model_nodes (model));
          for (guint t = 0; t < 40; t++)
            {
              g_autofree char *topic = random_path (FALSE);
              guint publisher = g_test_rand_int_range (0, 41);

              check_topic (f, model, topic, publisher);
              deliveries += f->match.deliveries->len;
              checks++;
            }
        }
    }
  g_test_message ("%u subscriptions, %u topics checked, %u deliveries",
                  model->len, checks, deliveries);
  g_assert_cmpuint (deliveries, >, checks);

  /* Empty it half by unsubscribing, half by removing subscribers. */
  while (model->len > 0)
    {
      ModelSub *s = model->pdata[model->len - 1];

      if (s->who % 2)
        {
          g_assert_true (unsub (f->subs, s->who, s->text));
          g_ptr_array_remove_index (model, model->len - 1);
        }
      else
        {
          guint who = s->who;
          guint expected = 0;

          for (guint i = model->len; i-- > 0;)
            if (((ModelSub *) model->pdata[i])->who == who)
              {
                g_ptr_array_remove_index (model, i);
                expected++;
              }
          g_assert_cmpuint (mqtt_subs_remove_subscriber (f->subs, WHO (who)),
                            ==, expected);
        }
      g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==,
                        model_nodes (model));
    }
  g_assert_cmpuint (mqtt_subs_count (f->subs), ==, 0);
  g_assert_cmpuint (mqtt_subs_node_count (f->subs), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/transport/mqtt/subs/" path, Fixture, NULL, fixture_setup, \
              func, fixture_teardown)
  ADD ("spec", test_spec);
  ADD ("dollar-shared", test_dollar_shared);
  ADD ("overlap", test_overlap);
  ADD ("overlap-many", test_overlap_many);
  ADD ("replace", test_replace);
  ADD ("no-local", test_no_local);
  ADD ("shared/round-robin", test_shared_round_robin);
  ADD ("shared/groups", test_shared_groups);
  ADD ("shared/skip", test_shared_skip);
  ADD ("errors", test_errors);
  ADD ("unsubscribe-frees", test_unsubscribe_frees);
  ADD ("cost", test_cost);
  ADD ("deep", test_deep);
  ADD ("random", test_random);
#undef ADD
  return g_test_run ();
}
