/* transport-mqtt: topic names, topic filters, `$share` parsing and matching,
 * against the rules and examples of MQTT 3.1.1 §4.7 and 5.0 §4.7, §4.8.2.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-topic.h"

#include <string.h>

#define S(text) (text), (sizeof (text) - 1)

static gboolean
name_ok (const char *name)
{
  return mqtt_topic_name_validate (name, strlen (name), NULL, NULL);
}

static gboolean
filter_ok (const char *filter)
{
  return mqtt_topic_filter_parse (filter, strlen (filter), NULL, NULL, NULL);
}

static gboolean
matches (const char *filter, const char *topic)
{
  g_assert_true (filter_ok (filter));
  g_assert_true (name_ok (topic));
  return mqtt_topic_matches (filter, strlen (filter), topic, strlen (topic));
}

static void
assert_name_error (const char *name, gsize len, const MqttTopicLimits *limits,
                   MqttTopicError code)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (mqtt_topic_name_validate (name, len, limits, &error));
  g_assert_error (error, MQTT_TOPIC_ERROR, (gint) code);
}

static void
assert_filter_error (const char *filter, gsize len,
                     const MqttTopicLimits *limits, MqttTopicError code)
{
  g_autoptr(GError) error = NULL;
  MqttTopicFilter parsed = { .levels = 12345 };

  g_assert_false (mqtt_topic_filter_parse (filter, len, limits, &parsed,
                                           &error));
  g_assert_error (error, MQTT_TOPIC_ERROR, (gint) code);
  /* Left untouched on failure. */
  g_assert_cmpuint (parsed.levels, ==, 12345);
}

static void
test_name_valid (void)
{
  static const char *const valid[] = {
    "sport/tennis/player1", "/", "/finance", "finance/", "//", "a",
    "ACCOUNTS", "Accounts payable", "$SYS/monitor/Clients",
    "$iothub/twin/GET/?$rid=1", "devices/d1/messages/events/a=b&c=d",
    "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80",
  };
  char *big;

  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      g_test_message ("%s", valid[i]);
      g_assert_true (name_ok (valid[i]));
    }

  /* The protocol's own maximum, 65535 bytes, is fine. */
  big = g_malloc (MQTT_TOPIC_MAX_LENGTH + 1);
  memset (big, 'a', MQTT_TOPIC_MAX_LENGTH + 1);
  g_assert_true (mqtt_topic_name_validate (big, MQTT_TOPIC_MAX_LENGTH, NULL,
                                           NULL));
  assert_name_error (big, MQTT_TOPIC_MAX_LENGTH + 1, NULL,
                     MQTT_TOPIC_ERROR_TOO_LONG);
  g_free (big);
}

static void
test_name_invalid (void)
{
  const MqttTopicLimits limits = { .max_length = 10, .max_levels = 3 };
  g_autoptr(GError) error = NULL;

  assert_name_error ("", 0, NULL, MQTT_TOPIC_ERROR_EMPTY);
  assert_name_error (S ("sport/+"), NULL, MQTT_TOPIC_ERROR_WILDCARD);
  assert_name_error (S ("sport/#"), NULL, MQTT_TOPIC_ERROR_WILDCARD);
  assert_name_error (S ("#"), NULL, MQTT_TOPIC_ERROR_WILDCARD);
  assert_name_error (S ("a+b"), NULL, MQTT_TOPIC_ERROR_WILDCARD);
  assert_name_error (S ("a#"), NULL, MQTT_TOPIC_ERROR_WILDCARD);
  /* U+0000 is never allowed (MQTT-4.7.3-2), wherever it is. */
  assert_name_error (S ("sport\0tennis"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  assert_name_error (S ("\0"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  assert_name_error (S ("a/\0"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  /* Ill-formed UTF-8: a lone continuation byte, a truncated sequence, an
   * overlong `/`, a UTF-16 surrogate, a code point above U+10FFFF. */
  assert_name_error (S ("a\x80"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  assert_name_error (S ("a\xc3"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  assert_name_error (S ("a\xc0\xaf" "b"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  assert_name_error (S ("\xed\xa0\x80"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  assert_name_error (S ("\xf4\x90\x80\x80"), NULL,
                     MQTT_TOPIC_ERROR_INVALID_UTF8);

  /* Configured limits: bytes and levels. */
  g_assert_true (mqtt_topic_name_validate (S ("a/b/c"), &limits, NULL));
  g_assert_true (mqtt_topic_name_validate (S ("0123456789"), &limits, NULL));
  assert_name_error (S ("0123456789a"), &limits, MQTT_TOPIC_ERROR_TOO_LONG);
  assert_name_error (S ("a/b/c/d"), &limits, MQTT_TOPIC_ERROR_TOO_MANY_LEVELS);
  assert_name_error (S ("///"), &limits, MQTT_TOPIC_ERROR_TOO_MANY_LEVELS);

  /* The message says what is wrong. */
  g_assert_false (mqtt_topic_name_validate (S ("a/+"), NULL, &error));
  g_assert_nonnull (strstr (error->message, "wildcard"));
}

static void
test_filter_valid (void)
{
  static const struct {
    const char *filter;
    guint levels;
    gboolean wildcards;
  } cases[] = {
    { "#", 1, TRUE },
    { "+", 1, TRUE },
    { "sport/#", 2, TRUE },
    { "sport/tennis/#", 3, TRUE },
    { "sport/tennis/player1/#", 4, TRUE },
    { "sport/tennis/+", 3, TRUE },
    { "+/tennis/#", 3, TRUE },
    { "sport/+/player1", 3, TRUE },
    { "+/+", 2, TRUE },
    { "/+", 2, TRUE },
    { "+/", 2, TRUE },
    { "//#", 3, TRUE },
    { "$SYS/#", 2, TRUE },
    { "$SYS/monitor/+", 3, TRUE },
    { "sport/tennis", 2, FALSE },
    { "/", 2, FALSE },
    { "$sharex/g/a", 3, FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      MqttTopicFilter parsed;
      g_autoptr(GError) error = NULL;
      gsize len = strlen (cases[i].filter);

      g_test_message ("%s", cases[i].filter);
      g_assert_true (mqtt_topic_filter_parse (cases[i].filter, len, NULL,
                                              &parsed, &error));
      g_assert_no_error (error);
      g_assert_null (parsed.share_name);
      g_assert_true (parsed.filter == cases[i].filter);
      g_assert_cmpuint (parsed.filter_len, ==, len);
      g_assert_cmpuint (parsed.levels, ==, cases[i].levels);
      g_assert_cmpint (parsed.has_wildcards, ==, cases[i].wildcards);
    }
}

static void
test_filter_invalid (void)
{
  const MqttTopicLimits limits = { .max_length = 12, .max_levels = 3 };
  static const char *const bad_wildcards[] = {
    "sport/tennis#", "sport/#/ranking", "sport+", "#/", "#/a", "a/#/",
    "a/#b", "a/b#", "+a", "a+", "a/+b/c", "++", "##", "+#", "#+",
    "a/++/b",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad_wildcards); i++)
    {
      g_test_message ("%s", bad_wildcards[i]);
      assert_filter_error (bad_wildcards[i], strlen (bad_wildcards[i]), NULL,
                           MQTT_TOPIC_ERROR_BAD_WILDCARD);
    }
  assert_filter_error ("", 0, NULL, MQTT_TOPIC_ERROR_EMPTY);
  assert_filter_error (S ("a/\0/b"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);
  assert_filter_error (S ("a/\xff"), NULL, MQTT_TOPIC_ERROR_INVALID_UTF8);

  g_assert_true (mqtt_topic_filter_parse (S ("a/+/#"), &limits, NULL, NULL));
  assert_filter_error (S ("a/+/b/#"), &limits,
                       MQTT_TOPIC_ERROR_TOO_MANY_LEVELS);
  assert_filter_error (S ("aaaaaaaaaaaa/#"), &limits,
                       MQTT_TOPIC_ERROR_TOO_LONG);
}

static void
test_share (void)
{
  const MqttTopicLimits limits = { .max_levels = 2 };
  MqttTopicFilter parsed;
  static const char *const bad_shares[] = {
    "$share", "$share/", "$share/g", "$share//x", "$share//", "$share/g/",
    "$share/g+/x", "$share/+/x", "$share/g#/x", "$share/#/x", "$share/#",
    "$share/+",
  };

  g_assert_true (mqtt_topic_filter_parse (S ("$share/g/a/b"), NULL, &parsed,
                                          NULL));
  g_assert_cmpmem (parsed.share_name, parsed.share_name_len, "g", 1);
  g_assert_cmpmem (parsed.filter, parsed.filter_len, "a/b", 3);
  g_assert_cmpuint (parsed.levels, ==, 2);
  g_assert_false (parsed.has_wildcards);

  /* The share name ends at the first `/`, so it never holds one. */
  g_assert_true (mqtt_topic_filter_parse (S ("$share/consumers/sport/#"), NULL,
                                          &parsed, NULL));
  g_assert_cmpmem (parsed.share_name, parsed.share_name_len, "consumers", 9);
  g_assert_cmpmem (parsed.filter, parsed.filter_len, "sport/#", 7);
  g_assert_true (parsed.has_wildcards);

  g_assert_true (mqtt_topic_filter_parse (S ("$share/g/#"), NULL, &parsed,
                                          NULL));
  g_assert_cmpmem (parsed.filter, parsed.filter_len, "#", 1);
  g_assert_true (mqtt_topic_filter_parse (S ("$share/g//"), NULL, &parsed,
                                          NULL));
  g_assert_cmpmem (parsed.filter, parsed.filter_len, "/", 1);
  g_assert_true (mqtt_topic_filter_parse (S ("$share/$g/$SYS/x"), NULL,
                                          &parsed, NULL));
  g_assert_cmpmem (parsed.share_name, parsed.share_name_len, "$g", 2);

  for (gsize i = 0; i < G_N_ELEMENTS (bad_shares); i++)
    {
      g_test_message ("%s", bad_shares[i]);
      assert_filter_error (bad_shares[i], strlen (bad_shares[i]), NULL,
                           MQTT_TOPIC_ERROR_BAD_SHARE);
    }
  /* The filter after the share name follows the ordinary rules. */
  assert_filter_error (S ("$share/g/sport/#/x"), NULL,
                       MQTT_TOPIC_ERROR_BAD_WILDCARD);
  assert_filter_error (S ("$share/g/sport+"), NULL,
                       MQTT_TOPIC_ERROR_BAD_WILDCARD);
  /* Level limits count the filter proper, not the prefix. */
  g_assert_true (mqtt_topic_filter_parse (S ("$share/g/a/b"), &limits, NULL,
                                          NULL));
  assert_filter_error (S ("$share/g/a/b/c"), &limits,
                       MQTT_TOPIC_ERROR_TOO_MANY_LEVELS);
  /* Not the first level: an ordinary filter. */
  g_assert_true (mqtt_topic_filter_parse (S ("a/$share/g"), NULL, &parsed,
                                          NULL));
  g_assert_null (parsed.share_name);
}

/* MQTT 3.1.1 and 5.0 §4.7.1.2, §4.7.1.3 and §4.7.3. */
static void
test_match_spec (void)
{
  g_assert_true (matches ("sport/tennis/player1/#", "sport/tennis/player1"));
  g_assert_true (matches ("sport/tennis/player1/#",
                          "sport/tennis/player1/ranking"));
  g_assert_true (matches ("sport/tennis/player1/#",
                          "sport/tennis/player1/score/wimbledon"));
  g_assert_false (matches ("sport/tennis/player1/#", "sport/tennis/player2"));
  g_assert_true (matches ("sport/#", "sport"));
  g_assert_true (matches ("sport/#", "sport/"));
  g_assert_false (matches ("sport/#", "sports"));
  g_assert_true (matches ("#", "sport"));
  g_assert_true (matches ("#", "/"));

  g_assert_true (matches ("sport/tennis/+", "sport/tennis/player1"));
  g_assert_true (matches ("sport/tennis/+", "sport/tennis/player2"));
  g_assert_false (matches ("sport/tennis/+", "sport/tennis/player1/ranking"));
  g_assert_false (matches ("sport/+", "sport"));
  g_assert_true (matches ("sport/+", "sport/"));
  g_assert_true (matches ("+/+", "/finance"));
  g_assert_true (matches ("/+", "/finance"));
  g_assert_false (matches ("+", "/finance"));
  g_assert_true (matches ("+/tennis/#", "sport/tennis"));
  g_assert_true (matches ("+/tennis/#", "sport/tennis/player1/ranking"));
  g_assert_true (matches ("sport/+/player1", "sport/tennis/player1"));
  g_assert_false (matches ("sport/+/player1", "sport/tennis/player2"));

  /* Case-sensitive, spaces are ordinary characters, empty levels count. */
  g_assert_false (matches ("ACCOUNTS", "Accounts"));
  g_assert_true (matches ("Accounts payable", "Accounts payable"));
  g_assert_false (matches ("a/b", "a//b"));
  g_assert_true (matches ("a/+/b", "a//b"));
  g_assert_true (matches ("/", "/"));
  g_assert_false (matches ("/", "//"));
  g_assert_false (matches ("sport/tennis", "sport/tennis/"));
  g_assert_false (matches ("sport/tennis/", "sport/tennis"));
}

/* MQTT-4.7.2-1 and the §4.7.2 examples. */
static void
test_match_dollar (void)
{
  g_assert_false (matches ("#", "$SYS/monitor/Clients"));
  g_assert_false (matches ("#", "$SYS"));
  g_assert_false (matches ("+", "$SYS"));
  g_assert_false (matches ("+/monitor/Clients", "$SYS/monitor/Clients"));
  g_assert_false (matches ("+/#", "$SYS/monitor"));
  g_assert_true (matches ("$SYS/#", "$SYS/monitor/Clients"));
  g_assert_true (matches ("$SYS/#", "$SYS"));
  g_assert_true (matches ("$SYS/monitor/+", "$SYS/monitor/Clients"));
  g_assert_true (matches ("$iothub/twin/res/#",
                          "$iothub/twin/res/200/?$rid=1"));
  /* Only the first character of the topic is special. */
  g_assert_true (matches ("#", "a/$SYS"));
  g_assert_true (matches ("a/+", "a/$x"));
  g_assert_true (matches ("+", "x$"));
}

static void
test_covers (void)
{
  static const struct {
    const char *allowed;
    const char *requested;
    gboolean covers;
  } cases[] = {
    { "devices/d1/#", "devices/d1/#", TRUE },
    { "devices/d1/#", "devices/d1", TRUE },
    { "devices/d1/#", "devices/d1/messages/events/+", TRUE },
    { "devices/d1/#", "devices/+/#", FALSE },
    { "devices/d1/#", "devices/d2/x", FALSE },
    { "devices/+/x", "devices/d1/x", TRUE },
    { "devices/+/x", "devices/+/x", TRUE },
    { "devices/+/x", "devices/#", FALSE },
    { "a/+", "a/#", FALSE },
    { "a/+/#", "a/#", FALSE },
    { "a/#", "a/+/#", TRUE },
    { "#", "$SYS/#", FALSE },
    { "#", "+/#", TRUE },
    { "+/#", "#", TRUE },
    { "#", "#", TRUE },
    { "+", "#", FALSE },
    { "$SYS/#", "$SYS/x", TRUE },
    { "$SYS/#", "+/x", FALSE },
    { "a/b", "a/b", TRUE },
    { "a/b", "a/b/c", FALSE },
    { "a/b/c", "a/b", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("%s covers %s", cases[i].allowed, cases[i].requested);
      g_assert_cmpint (mqtt_topic_filter_covers (cases[i].allowed,
                                                 strlen (cases[i].allowed),
                                                 cases[i].requested,
                                                 strlen (cases[i].requested)),
                       ==, cases[i].covers);
    }
}

/* Every filter of up to 3 levels over {a, $s, "", +, #}: `covers` agrees
 * with "every topic the requested one matches, the allowed one matches" over
 * every topic of up to 4 levels over {a, $s, "", z} (z stands for any level
 * no filter names; one level more than the filters reach stands for any
 * depth). */
static void
enumerate (const char *const *alphabet, gsize n, guint max_levels,
           gboolean filters, GPtrArray *out)
{
  g_autoptr(GPtrArray) frontier = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (frontier, g_strdup (""));
  for (guint depth = 1; depth <= max_levels; depth++)
    {
      g_autoptr(GPtrArray) next = g_ptr_array_new_with_free_func (g_free);

      for (guint i = 0; i < frontier->len; i++)
        for (gsize j = 0; j < n; j++)
          {
            const char *prefix = frontier->pdata[i];
            char *item = depth == 1 ? g_strdup (alphabet[j])
              : g_strconcat (prefix, "/", alphabet[j], NULL);

            /* `$` only at the start of a level 1. */
            if (depth > 1 && alphabet[j][0] == '$')
              {
                g_free (item);
                continue;
              }
            if (!filters
                || mqtt_topic_filter_parse (item, strlen (item), NULL, NULL,
                                            NULL))
              g_ptr_array_add (out, g_strdup (item));
            /* Nothing follows `#`. */
            if (strcmp (alphabet[j], "#") == 0)
              g_free (item);
            else
              g_ptr_array_add (next, item);
          }
      g_ptr_array_set_size (frontier, 0);
      g_ptr_array_extend_and_steal (frontier, g_steal_pointer (&next));
    }
}

static void
test_covers_exhaustive (void)
{
  static const char *const filter_levels[] = { "a", "$s", "", "+", "#" };
  static const char *const topic_levels[] = { "a", "$s", "", "z" };
  g_autoptr(GPtrArray) filters = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) topics = g_ptr_array_new_with_free_func (g_free);
  g_autofree guint8 *table = NULL;
  guint n_covering = 0;

  enumerate (filter_levels, G_N_ELEMENTS (filter_levels), 4, TRUE, filters);
  enumerate (topic_levels, G_N_ELEMENTS (topic_levels), 5, FALSE, topics);
  g_assert_cmpuint (filters->len, >, 50);

  /* "" is not a topic name: drop it (it has one empty level). */
  for (guint i = 0; i < topics->len; i++)
    if (((char *) topics->pdata[i])[0] == '\0')
      g_ptr_array_remove_index (topics, i--);
  for (guint i = 0; i < filters->len; i++)
    if (((char *) filters->pdata[i])[0] == '\0')
      g_ptr_array_remove_index (filters, i--);

  table = g_malloc ((gsize) filters->len * topics->len);
  for (guint f = 0; f < filters->len; f++)
    for (guint t = 0; t < topics->len; t++)
      {
        const char *filter = filters->pdata[f];
        const char *topic = topics->pdata[t];

        table[(gsize) f * topics->len + t] =
          mqtt_topic_matches (filter, strlen (filter), topic, strlen (topic));
      }

  for (guint a = 0; a < filters->len; a++)
    for (guint r = 0; r < filters->len; r++)
      {
        const char *allowed = filters->pdata[a];
        const char *requested = filters->pdata[r];
        gboolean expected = TRUE;
        gboolean got = mqtt_topic_filter_covers (allowed, strlen (allowed),
                                                 requested, strlen (requested));

        for (guint t = 0; t < topics->len && expected; t++)
          if (table[(gsize) r * topics->len + t]
              && !table[(gsize) a * topics->len + t])
            expected = FALSE;
        if (got != expected)
          g_error ("covers (\"%s\", \"%s\") = %d, expected %d", allowed,
                   requested, got, expected);
        n_covering += got;
      }
  g_test_message ("%u filters, %u topics, %u covering pairs", filters->len,
                  topics->len, n_covering);
  g_assert_cmpuint (n_covering, >, filters->len);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/transport/mqtt/topic/name/valid", test_name_valid);
  g_test_add_func ("/transport/mqtt/topic/name/invalid", test_name_invalid);
  g_test_add_func ("/transport/mqtt/topic/filter/valid", test_filter_valid);
  g_test_add_func ("/transport/mqtt/topic/filter/invalid",
                   test_filter_invalid);
  g_test_add_func ("/transport/mqtt/topic/filter/share", test_share);
  g_test_add_func ("/transport/mqtt/topic/match/spec", test_match_spec);
  g_test_add_func ("/transport/mqtt/topic/match/dollar", test_match_dollar);
  g_test_add_func ("/transport/mqtt/topic/covers/examples", test_covers);
  g_test_add_func ("/transport/mqtt/topic/covers/exhaustive",
                   test_covers_exhaustive);
  return g_test_run ();
}
