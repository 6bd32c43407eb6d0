/* transport-mqtt: the retained-message index — set, replace and delete,
 * matching a subscription's filter (spec rules, `$` topics), expiry from the
 * callback, cost independent of the retained messages elsewhere, and a
 * randomized cross-check against mqtt_topic_matches.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-retained.h"
#include "mqtt-random-topics.h"

#include <string.h>

static guint n_freed;

static void
value_free (gpointer value)
{
  n_freed++;
  g_free (value);
}

static void
set (MqttRetained *retained, const char *topic)
{
  mqtt_retained_set (retained, topic, strlen (topic), g_strdup (topic));
}

static void
del (MqttRetained *retained, const char *topic)
{
  mqtt_retained_set (retained, topic, strlen (topic), NULL);
}

/* Adds "topic" to the GPtrArray, and checks the value is the one stored. */
static gboolean
collect (const char *topic, gsize len, gpointer value, gpointer data)
{
  g_assert_cmpuint (strlen (topic), ==, len);
  g_assert_cmpstr (topic, ==, value);
  g_ptr_array_add (data, g_strdup (topic));
  return TRUE;
}

static int
cmp_strv (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The matched topics, sorted and joined with " ". */
static char *
match (MqttRetained *retained, const char *filter, guint *visited)
{
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  guint n;

  n = mqtt_retained_match (retained, filter, strlen (filter), collect, found,
                           visited);
  g_assert_cmpuint (n, ==, found->len);
  g_ptr_array_sort (found, cmp_strv);
  g_ptr_array_add (found, NULL);
  return g_strjoinv (" ", (char **) found->pdata);
}

static void
assert_match (MqttRetained *retained, const char *filter, const char *expected)
{
  g_autofree char *got = match (retained, filter, NULL);

  g_test_message ("%s -> %s", filter, got);
  g_assert_cmpstr (got, ==, expected);
}

static void
test_set (void)
{
  g_autoptr(MqttRetained) retained = mqtt_retained_new (value_free);

  n_freed = 0;
  set (retained, "a/b/c");
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 1);
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 3);
  g_assert_cmpstr (mqtt_retained_lookup (retained, "a/b/c", 5), ==, "a/b/c");
  g_assert_null (mqtt_retained_lookup (retained, "a/b", 3));
  g_assert_null (mqtt_retained_lookup (retained, "a/b/c/d", 7));
  g_assert_null (mqtt_retained_lookup (retained, "", 0));

  /* Replacing frees the old value. */
  mqtt_retained_set (retained, "a/b/c", 5, g_strdup ("a/b/c"));
  g_assert_cmpuint (n_freed, ==, 1);
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 1);

  set (retained, "a/b");
  set (retained, "a/x");
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 4);
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 3);

  /* An empty retained message deletes: nodes that hold nothing go. */
  del (retained, "a/b/c");
  g_assert_cmpuint (n_freed, ==, 2);
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 3);
  del (retained, "a/b/c");                 /* nothing there: no-op */
  del (retained, "q/r/s");
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 3);
  del (retained, "a");                     /* an inner node without value */
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 3);
  del (retained, "a/b");
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 2);
  del (retained, "a/x");
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 0);
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 0);
  g_assert_cmpuint (n_freed, ==, 4);

  set (retained, "x");
  set (retained, "y/z");
  g_clear_pointer (&retained, mqtt_retained_free);
  g_assert_cmpuint (n_freed, ==, 6);
}

static void
test_match_spec (void)
{
  g_autoptr(MqttRetained) retained = mqtt_retained_new (value_free);
  static const char *const topics[] = {
    "sport", "sport/", "sport/tennis/player1", "sport/tennis/player1/ranking",
    "sport/tennis/player1/score/wimbledon", "sport/tennis/player2",
    "/finance", "/", "$SYS", "$SYS/monitor/Clients", "a/$SYS", "Accounts",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (topics); i++)
    set (retained, topics[i]);

  assert_match (retained, "sport/tennis/player1/#",
                "sport/tennis/player1 sport/tennis/player1/ranking "
                "sport/tennis/player1/score/wimbledon");
  assert_match (retained, "sport/#",
                "sport sport/ sport/tennis/player1 "
                "sport/tennis/player1/ranking "
                "sport/tennis/player1/score/wimbledon sport/tennis/player2");
  assert_match (retained, "sport/tennis/+",
                "sport/tennis/player1 sport/tennis/player2");
  assert_match (retained, "sport/+", "sport/");
  assert_match (retained, "+/+", "/ /finance a/$SYS sport/");
  assert_match (retained, "/+", "/ /finance");
  assert_match (retained, "+", "Accounts sport");
  assert_match (retained, "ACCOUNTS", "");
  assert_match (retained, "#",
                "/ /finance Accounts a/$SYS sport sport/ sport/tennis/player1 "
                "sport/tennis/player1/ranking "
                "sport/tennis/player1/score/wimbledon sport/tennis/player2");
  assert_match (retained, "+/monitor/Clients", "");
  assert_match (retained, "$SYS/#", "$SYS $SYS/monitor/Clients");
  assert_match (retained, "$SYS/monitor/+", "$SYS/monitor/Clients");
  assert_match (retained, "$SYS", "$SYS");
  assert_match (retained, "+/$SYS", "a/$SYS");
  assert_match (retained, "nothing/#", "");
}

static gboolean
expire_odd (const char *topic, gsize len, gpointer value, gpointer data)
{
  guint *n = data;

  return (*n)++ % 2 == 0;
}

static gboolean
keep_all (const char *topic, gsize len, gpointer value, gpointer data)
{
  g_ptr_array_add (data, g_strdup (topic));
  return TRUE;
}

static gboolean
keep_count (const char *topic, gsize len, gpointer value, gpointer data)
{
  return TRUE;
}

static void
test_expire (void)
{
  g_autoptr(MqttRetained) retained = mqtt_retained_new (value_free);
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  guint n = 0;

  n_freed = 0;
  for (guint i = 0; i < 10; i++)
    {
      g_autofree char *topic = g_strdup_printf ("e/%u/x", i);

      set (retained, topic);
    }
  set (retained, "e");
  set (retained, "$SYS/x");
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 23);

  /* The callback says half of them expired: they go after the walk. */
  g_assert_cmpuint (mqtt_retained_match (retained, "e/#", 3, expire_odd, &n,
                                         NULL), ==, 11);
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 7);
  g_assert_cmpuint (n_freed, ==, 5);

  /* foreach reaches `$` topics too. */
  g_assert_cmpuint (mqtt_retained_foreach (retained, keep_all, all), ==, 7);
  g_ptr_array_sort (all, cmp_strv);
  g_assert_cmpstr (all->pdata[0], ==, "$SYS/x");
  n = 1;
  g_assert_cmpuint (mqtt_retained_foreach (retained, expire_odd, &n), ==, 7);
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 3);
  n = 1;
  mqtt_retained_foreach (retained, expire_odd, &n);
  n = 1;
  mqtt_retained_foreach (retained, expire_odd, &n);
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 0);
  g_assert_cmpuint (mqtt_retained_node_count (retained), ==, 0);
  g_assert_cmpuint (n_freed, ==, 12);
}

/* Retained messages a filter cannot reach cost its match nothing: adding
 * 100,000 of them below nodes that already exist changes no visit count,
 * except for the filters that match the ones under `sport/tennis/player1/`
 * and pay for those alone. */
static char *
elsewhere (guint i)
{
  switch (i % 4)
    {
    case 0: return g_strdup_printf ("other/%u/x", i);
    case 1: return g_strdup_printf ("news/%u", i);
    case 2: return g_strdup_printf ("$SYS/%u", i);
    default: return g_strdup_printf ("sport/tennis/player1/%u/x", i);
    }
}

static void
test_cost (void)
{
  g_autoptr(MqttRetained) retained = mqtt_retained_new (value_free);
  static const char *const filters[] = {
    "sport/tennis/+", "sport/+/player1", "news", "+",
    "sport/tennis/player2/#", "$SYS/x", "+/tennis/#", "sport/#",
  };
  /* The last two reach the new `sport/tennis/player1/{n}/x`. */
  const gsize grows = G_N_ELEMENTS (filters) - 2;
  guint visited[G_N_ELEMENTS (filters)];
  guint reported[G_N_ELEMENTS (filters)];

  set (retained, "sport");
  set (retained, "sport/tennis/player1");
  set (retained, "sport/tennis/player2");
  set (retained, "news");
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *topic = elsewhere (i);

      set (retained, topic);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (filters); i++)
    {
      reported[i] = mqtt_retained_match (retained, filters[i],
                                         strlen (filters[i]), keep_count, NULL,
                                         &visited[i]);
      g_test_message ("%s: %u found, %u nodes visited", filters[i],
                      reported[i], visited[i]);
    }

  for (guint i = 4; i < 100004; i++)
    {
      g_autofree char *topic = elsewhere (i);

      set (retained, topic);
    }
  g_assert_cmpuint (mqtt_retained_count (retained), ==, 100008);

  for (gsize i = 0; i < G_N_ELEMENTS (filters); i++)
    {
      guint v = 0;
      guint n = mqtt_retained_match (retained, filters[i], strlen (filters[i]),
                                     keep_count, NULL, &v);

      if (i >= grows)
        {
          /* 25,000 more messages, each two nodes deep. */
          g_assert_cmpuint (n, ==, reported[i] + 25000);
          g_assert_cmpuint (v, ==, visited[i] + 2 * 25000);
          continue;
        }
      g_assert_cmpuint (n, ==, reported[i]);
      g_assert_cmpuint (v, ==, visited[i]);
    }
}

/* ---- randomized cross-check ---- */


static void
test_random (void)
{
  g_autoptr(MqttRetained) retained = mqtt_retained_new (value_free);
  g_autoptr(GHashTable) model = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                       g_free, NULL);
  guint checks = 0, found = 0;

  for (guint op = 0; op < 4000; op++)
    {
      g_autofree char *topic = random_path (FALSE);

      if (g_test_rand_int_range (0, 100) < 30)
        {
          del (retained, topic);
          g_hash_table_remove (model, topic);
        }
      else
        {
          set (retained, topic);
          g_hash_table_add (model, g_strdup (topic));
        }

      if (op % 100 == 99)
        {
          g_assert_cmpuint (mqtt_retained_count (retained), ==,
                            g_hash_table_size (model));
          for (guint f = 0; f < 30; f++)
            {
              g_autofree char *filter = random_path (TRUE);
              g_autofree char *got = match (retained, filter, NULL);
              g_autoptr(GPtrArray) expected =
                g_ptr_array_new_with_free_func (g_free);
              g_autofree char *want = NULL;
              GHashTableIter iter;
              gpointer key;

              g_hash_table_iter_init (&iter, model);
              while (g_hash_table_iter_next (&iter, &key, NULL))
                if (mqtt_topic_matches (filter, strlen (filter), key,
                                        strlen (key)))
                  g_ptr_array_add (expected, g_strdup (key));
              found += expected->len;
              g_ptr_array_sort (expected, cmp_strv);
              g_ptr_array_add (expected, NULL);
              want = g_strjoinv (" ", (char **) expected->pdata);
              if (g_strcmp0 (got, want) != 0)
                g_error ("filter %s: got \"%s\", expected \"%s\"", filter, got,
                         want);
              checks++;
            }
        }
    }
  g_test_message ("%u retained, %u filters checked, %u found",
                  g_hash_table_size (model), checks, found);
  g_assert_cmpuint (found, >, checks);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/transport/mqtt/retained/set", test_set);
  g_test_add_func ("/transport/mqtt/retained/match-spec", test_match_spec);
  g_test_add_func ("/transport/mqtt/retained/expire", test_expire);
  g_test_add_func ("/transport/mqtt/retained/cost", test_cost);
  g_test_add_func ("/transport/mqtt/retained/random", test_random);
  return g_test_run ();
}
