/* transport-mqtt — `[mqtt-map.*]`: parsing errors with their exact messages,
 * defaults, the in-direction match (one entry per stream, `$` topics), the
 * out-direction list and topics, and the match cross-checked against the
 * subscription index.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"
#include "mqtt-map.h"
#include "mqtt-subs.h"
#include "mqtt-random-topics.h"

#include <string.h>

#define HUB "[hub]\nhostname = localhost\n"

static MqttMap *
map_from (const char *sections, GError **error)
{
  g_autofree char *text = g_strconcat (HUB, sections, NULL);
  g_autoptr (SluiceConfig) config = sluice_config_load_from_data ("test.conf", text, error);

  if (config == NULL)
    return NULL;
  return mqtt_map_load (config, error);
}

static MqttMap *
map_ok (const char *sections)
{
  g_autoptr (GError) error = NULL;
  MqttMap *map = map_from (sections, &error);

  g_assert_no_error (error);
  g_assert_nonnull (map);
  return map;
}

static void
test_parse_errors (void)
{
  static const struct {
    const char *sections;
    const char *message;
  } cases[] = {
    { "[mqtt-map.s]\nfilter = sensors/#\n",
      "test.conf: [mqtt-map.s] stream: missing: name the stream the topics map to" },
    { "[mqtt-map.s]\nfilter = sensors/#\nstream = _private\n",
      "test.conf: [mqtt-map.s] stream: not a valid stream name (1-255 characters of "
      "A-Z a-z 0-9 . _ -, not starting with '$' or '_', not an API path such as "
      "'devices') (value '_private')" },
    { "[mqtt-map.s]\nfilter = sensors/#\nstream = devices\n",
      "test.conf: [mqtt-map.s] stream: not a valid stream name (1-255 characters of "
      "A-Z a-z 0-9 . _ -, not starting with '$' or '_', not an API path such as "
      "'devices') (value 'devices')" },
    { "[mqtt-map.s]\nstream = sensors\n",
      "test.conf: [mqtt-map.s] filter: missing: direction in or both needs the topic "
      "filter to map" },
    { "[mqtt-map.s]\nstream = sensors\ndirection = both\ntopic-prefix = out\n",
      "test.conf: [mqtt-map.s] filter: missing: direction in or both needs the topic "
      "filter to map" },
    { "[mqtt-map.s]\nfilter = sensors/#/x\nstream = sensors\n",
      "test.conf: [mqtt-map.s] filter: topic filter: '#' must be the last level "
      "(value 'sensors/#/x')" },
    { "[mqtt-map.s]\nfilter = sensors/temp+\nstream = sensors\n",
      "test.conf: [mqtt-map.s] filter: topic filter: '+' at byte 12 must fill its whole "
      "level (value 'sensors/temp+')" },
    { "[mqtt-map.s]\nfilter = $share/g/sensors/#\nstream = sensors\n",
      "test.conf: [mqtt-map.s] filter: a shared subscription is not a topic filter to map; "
      "give the filter itself (value '$share/g/sensors/#')" },
    { "[mqtt-map.s]\nfilter = sensors/#\nstream = sensors\ndirection = out\n"
      "topic-prefix = bridge\n",
      "test.conf: [mqtt-map.s] filter: only for direction in or both (out publishes on "
      "topic-prefix) (value 'sensors/#')" },
    { "[mqtt-map.s]\nstream = sensors\ndirection = out\n",
      "test.conf: [mqtt-map.s] topic-prefix: missing: direction out or both publishes on "
      "{topic-prefix}/{key}" },
    { "[mqtt-map.s]\nfilter = sensors/#\nstream = sensors\ntopic-prefix = bridge\n",
      "test.conf: [mqtt-map.s] topic-prefix: only for direction out or both "
      "(value 'bridge')" },
    { "[mqtt-map.s]\nstream = sensors\ndirection = out\ntopic-prefix = bridge/#\n",
      "test.conf: [mqtt-map.s] topic-prefix: topic name contains the wildcard '#' at "
      "byte 7 (value 'bridge/#')" },
    { "[mqtt-map.s]\nstream = sensors\ndirection = out\ntopic-prefix = a/+/b\n",
      "test.conf: [mqtt-map.s] topic-prefix: topic name contains the wildcard '+' at "
      "byte 2 (value 'a/+/b')" },
    { "[mqtt-map.s]\nstream = sensors\ndirection = out\ntopic-prefix = bridge/\n",
      "test.conf: [mqtt-map.s] topic-prefix: must not end with '/': the key follows after "
      "one (value 'bridge/')" },
    { "[mqtt-map.s]\nstream = sensors\ndirection = out\ntopic-prefix = $share/g\n",
      "test.conf: [mqtt-map.s] topic-prefix: '$share' starts a shared subscription, not a "
      "topic (value '$share/g')" },
    { "[mqtt-map.s]\nfilter = a\nstream = sensors\nkey = device\n",
      "test.conf: [mqtt-map.s] key: expected topic or client-id (value 'device')" },
    { "[mqtt-map.s]\nfilter = a\nstream = sensors\ndirection = inout\n",
      "test.conf: [mqtt-map.s] direction: expected in, out or both (value 'inout')" },
    { "[mqtt-map.s]\nfilter = a\nstream = sensors\nqos = 1\n",
      "test.conf: [mqtt-map.s] qos: unknown key; this section takes filter, stream, key, "
      "direction, topic-prefix (value '1')" },
    { "[mqtt-map.]\nfilter = a\nstream = sensors\n",
      "test.conf: [mqtt-map.]: a map needs a name ([mqtt-map.NAME])" },
    { "[mqtt-map.good]\nfilter = a\nstream = sensors\n"
      "[mqtt-map.bad]\nfilter = b\n",
      "test.conf: [mqtt-map.bad] stream: missing: name the stream the topics map to" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (MqttMap) map = map_from (cases[i].sections, &error);

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, cases[i].sections);
      g_assert_null (map);
      g_assert_nonnull (error);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

static void
test_parse_ok (void)
{
  g_autoptr (MqttMap) empty = map_ok ("");
  g_autoptr (MqttMap) map = map_ok ("[mqtt-map.sensors]\nfilter = sensors/#\n"
                                    "stream = sensors\n"
                                    "[mqtt-map.cmd]\nstream = commands\ndirection = out\n"
                                    "key = client-id\ntopic-prefix = cmd/all\n"
                                    "[mqtt-map.both]\nfilter = $SYS/x/+\nstream = sys.x\n"
                                    "direction = both\ntopic-prefix = $SYS/out\n"
                                    "[mqtt-map.again]\nfilter = other/#\nstream = sensors\n"
                                    "key = client-id\n");
  const MqttMapEntry *const *entries;
  const MqttMapEntry *const *out;
  guint n = 99;

  entries = mqtt_map_get_entries (empty, &n);
  g_assert_cmpuint (n, ==, 0);
  out = mqtt_map_get_out (empty, &n);
  g_assert_cmpuint (n, ==, 0);

  entries = mqtt_map_get_entries (map, &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpstr (entries[0]->name, ==, "sensors");
  g_assert_cmpstr (entries[0]->filter, ==, "sensors/#");
  g_assert_cmpuint (entries[0]->filter_len, ==, 9);
  g_assert_cmpstr (entries[0]->stream, ==, "sensors");
  g_assert_cmpint (entries[0]->key, ==, MQTT_MAP_KEY_TOPIC);
  g_assert_cmpint (entries[0]->direction, ==, MQTT_MAP_DIRECTION_IN);
  g_assert_null (entries[0]->topic_prefix);

  g_assert_cmpstr (entries[1]->name, ==, "cmd");
  g_assert_null (entries[1]->filter);
  g_assert_cmpint (entries[1]->key, ==, MQTT_MAP_KEY_CLIENT_ID);
  g_assert_cmpint (entries[1]->direction, ==, MQTT_MAP_DIRECTION_OUT);
  g_assert_cmpstr (entries[1]->topic_prefix, ==, "cmd/all");

  g_assert_cmpint (entries[2]->direction, ==, MQTT_MAP_DIRECTION_BOTH);
  g_assert_cmpstr (entries[2]->topic_prefix, ==, "$SYS/out");

  /* One string per stream name, for comparing by pointer. */
  g_assert_true (entries[3]->stream == entries[0]->stream);
  g_assert_false (entries[1]->stream == entries[0]->stream);

  out = mqtt_map_get_out (map, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_true (out[0] == entries[1]);
  g_assert_true (out[1] == entries[2]);
}

static void
assert_match (MqttMap *map, const char *topic, const char *const *names)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new ();
  guint n = mqtt_map_match (map, topic, strlen (topic), out);

  g_test_message ("topic '%s'", topic);
  g_assert_cmpuint (n, ==, out->len);
  g_assert_cmpuint (n, ==, g_strv_length ((char **) names));
  for (guint i = 0; i < n; i++)
    g_assert_cmpstr (((const MqttMapEntry *) out->pdata[i])->name, ==, names[i]);
}

static void
test_match (void)
{
  g_autoptr (MqttMap) map = map_ok ("[mqtt-map.all]\nfilter = #\nstream = everything\n"
                                    "[mqtt-map.sensors]\nfilter = sensors/#\n"
                                    "stream = sensors\n"
                                    "[mqtt-map.temp]\nfilter = sensors/+/temp\n"
                                    "stream = temps\nkey = client-id\n"
                                    "[mqtt-map.temp2]\nfilter = +/+/temp\n"
                                    "stream = temps\n"
                                    "[mqtt-map.out]\nstream = sensors-out\n"
                                    "direction = out\ntopic-prefix = sensors/out\n"
                                    "[mqtt-map.sys]\nfilter = $SYS/#\nstream = sys\n"
                                    "direction = both\ntopic-prefix = mirror\n");
  g_autoptr (GPtrArray) reused = g_ptr_array_new ();
  const char *const none[] = { NULL };

  assert_match (map, "other", (const char *const[]) { "all", NULL });
  assert_match (map, "sensors", (const char *const[]) { "all", "sensors", NULL });
  assert_match (map, "sensors/a/temp",
                (const char *const[]) { "all", "sensors", "temp", NULL });
  /* `temp2` maps to the same stream as `temp`: the message goes in once. */
  assert_match (map, "x/a/temp", (const char *const[]) { "all", "temp2", NULL });
  /* Out-only entries are never matched. */
  assert_match (map, "sensors/out/k", (const char *const[]) { "all", "sensors", NULL });
  /* `$` topics: not through a leading wildcard (MQTT-4.7.2-1). */
  assert_match (map, "$SYS/broker", (const char *const[]) { "sys", NULL });
  assert_match (map, "$other/sensors/temp", none);
  assert_match (map, "a/$SYS", (const char *const[]) { "all", NULL });

  /* The array is emptied first. */
  g_ptr_array_add (reused, reused);
  g_assert_cmpuint (mqtt_map_match (map, "other", 5, reused), ==, 1);
  g_assert_cmpuint (mqtt_map_match (map, "$x", 2, reused), ==, 0);
  g_assert_cmpuint (reused->len, ==, 0);
  /* The length counts, not a NUL. */
  g_assert_cmpuint (mqtt_map_match (map, "sensors/a/tempXYZ", 14, reused), ==, 3);
}

static void
test_out_topic (void)
{
  g_autoptr (MqttMap) map = map_ok ("[mqtt-map.o]\nstream = s\ndirection = out\n"
                                    "topic-prefix = bridge/s\n");
  const MqttMapEntry *const *out;
  const MqttMapEntry *e;
  static const char *const refused[] = { "a+b", "#", "a/+", NULL };
  guint n;

  out = mqtt_map_get_out (map, &n);
  g_assert_cmpuint (n, ==, 1);
  e = out[0];

  {
    g_autoptr (GError) error = NULL;
    g_autofree char *t1 = mqtt_map_out_topic (e, "dev1", 4, &error);
    g_autofree char *t2 = mqtt_map_out_topic (e, "sensors/a/temp", 14, &error);
    g_autofree char *t3 = mqtt_map_out_topic (e, NULL, 0, &error);
    g_autofree char *t4 = mqtt_map_out_topic (e, "abcdef", 3, &error);
    g_autofree char *t5 = mqtt_map_out_topic (e, "caf\xc3\xa9", 5, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (t1, ==, "bridge/s/dev1");
    g_assert_cmpstr (t2, ==, "bridge/s/sensors/a/temp");
    g_assert_cmpstr (t3, ==, "bridge/s/");
    g_assert_cmpstr (t4, ==, "bridge/s/abc");
    g_assert_cmpstr (t5, ==, "bridge/s/caf\xc3\xa9");
  }

  for (guint i = 0; refused[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *t = mqtt_map_out_topic (e, refused[i], strlen (refused[i]), &error);

      g_assert_null (t);
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
      g_assert_true (g_str_has_prefix (error->message,
                                       "the record key cannot be part of an MQTT topic on "
                                       "'bridge/s/': topic name contains the wildcard"));
    }

  {
    g_autoptr (GError) nul_error = NULL;
    g_autoptr (GError) utf8_error = NULL;
    g_autoptr (GError) long_error = NULL;
    g_autofree char *huge = g_strnfill (MQTT_TOPIC_MAX_LENGTH, 'k');
    g_autofree char *t1 = mqtt_map_out_topic (e, "a\0b", 3, &nul_error);
    g_autofree char *t2 = mqtt_map_out_topic (e, "\xff", 1, &utf8_error);
    g_autofree char *t3 = mqtt_map_out_topic (e, huge, strlen (huge), &long_error);
    g_autofree char *t4 = mqtt_map_out_topic (e, huge, MQTT_TOPIC_MAX_LENGTH - 8, NULL);
    g_autofree char *t5 = mqtt_map_out_topic (e, huge, MQTT_TOPIC_MAX_LENGTH - 9, NULL);

    g_assert_null (t1);
    g_assert_error (nul_error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    g_assert_null (t2);
    g_assert_error (utf8_error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    g_assert_null (t3);
    g_assert_error (long_error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    /* `bridge/s/` is 9 bytes: a topic name holds 65535. */
    g_assert_null (t4);
    g_assert_nonnull (t5);
    g_assert_cmpuint (strlen (t5), ==, MQTT_TOPIC_MAX_LENGTH);
  }
}

static gint
compare_ptr (gconstpointer a, gconstpointer b)
{
  gconstpointer x = *(gconstpointer const *) a, y = *(gconstpointer const *) b;

  return x < y ? -1 : x > y;
}

/* Random maps (each to its own stream), random topics: the entries the map
 * matches are the subscribers the subscription index picks, each entry
 * subscribed as a subscriber of its own. */
static void
test_match_random (void)
{
  const MqttSubOptions qos0 = { 0 };
  MqttSubsMatch match;
  guint n_matched = 0;

  mqtt_subs_match_init (&match);
  for (guint round = 0; round < 100; round++)
    {
      g_autoptr (GString) text = g_string_new (NULL);
      g_autoptr (MqttMap) map = NULL;
      g_autoptr (MqttSubs) subs = mqtt_subs_new (NULL);
      g_autoptr (GPtrArray) got = g_ptr_array_new ();
      g_autoptr (GPtrArray) want = g_ptr_array_new ();
      const MqttMapEntry *const *entries;
      guint n_maps = g_test_rand_int_range (1, 9);
      guint n;

      for (guint i = 0; i < n_maps; i++)
        {
          g_autofree char *filter = random_path (TRUE);

          g_string_append_printf (text, "[mqtt-map.m%u]\nfilter = %s\nstream = s%u\n", i,
                                  filter, i);
        }
      map = map_ok (text->str);
      entries = mqtt_map_get_entries (map, &n);
      g_assert_cmpuint (n, ==, n_maps);
      for (guint i = 0; i < n; i++)
        g_assert_true (mqtt_subs_subscribe (subs, (gpointer) entries[i], entries[i]->filter,
                                            entries[i]->filter_len, &qos0, NULL, NULL));

      for (guint t = 0; t < 100; t++)
        {
          g_autofree char *topic = random_path (FALSE);

          mqtt_map_match (map, topic, strlen (topic), got);
          mqtt_subs_match (subs, topic, strlen (topic), NULL, NULL, NULL, &match);
          g_ptr_array_set_size (want, 0);
          for (guint d = 0; d < match.deliveries->len; d++)
            g_ptr_array_add (want,
                             g_array_index (match.deliveries, MqttSubsDelivery, d).subscriber);
          g_ptr_array_sort (got, compare_ptr);
          g_ptr_array_sort (want, compare_ptr);
          if (got->len != want->len)
            g_error ("topic '%s' in\n%s: %u maps match, the index says %u", topic, text->str,
                     got->len, want->len);
          for (guint i = 0; i < got->len; i++)
            g_assert_true (got->pdata[i] == want->pdata[i]);
          n_matched += got->len;
        }
    }
  mqtt_subs_match_clear (&match);
  g_test_message ("%u matches", n_matched);
  g_assert_cmpuint (n_matched, >, 100);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/transport/mqtt/map/parse/errors", test_parse_errors);
  g_test_add_func ("/transport/mqtt/map/parse/ok", test_parse_ok);
  g_test_add_func ("/transport/mqtt/map/match", test_match);
  g_test_add_func ("/transport/mqtt/map/match/random", test_match_random);
  g_test_add_func ("/transport/mqtt/map/out-topic", test_out_topic);
  return g_test_run ();
}
