/* transport-mqtt — `[mqtt-acl.*]`: parsing errors with their exact messages,
 * principals, `%d`, publish matches, and the subscribe rule (a requested
 * filter must be covered by a granted one) cross-checked against brute force:
 * A covers B iff every topic B matches, A matches too.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"
#include "mqtt-acl.h"
#include "mqtt-topic.h"

#include <string.h>

/* The policies the tests name exist: a principal naming a missing one is a
 * config error. */
#define HUB "[hub]\nhostname = localhost\n" \
  "[policy.service]\n[policy.svc]\n[policy.ops]\n[policy.d1]\n[policy.service2]\n"

static MqttAcl *
acl_from (const char *sections, GError **error)
{
  g_autofree char *text = g_strconcat (HUB, sections, NULL);
  g_autoptr (SluiceConfig) config = sluice_config_load_from_data ("test.conf", text, error);

  if (config == NULL)
    return NULL;
  return mqtt_acl_load (config, error);
}

static MqttAcl *
acl_ok (const char *sections)
{
  g_autoptr (GError) error = NULL;
  MqttAcl *acl = acl_from (sections, &error);

  g_assert_no_error (error);
  g_assert_nonnull (acl);
  return acl;
}

static const MqttAclWho anonymous = { MQTT_ACL_WHO_ANONYMOUS, NULL };

static MqttAclWho
device (const char *id)
{
  return (MqttAclWho) { MQTT_ACL_WHO_DEVICE, id };
}

static MqttAclWho
policy (const char *name)
{
  return (MqttAclWho) { MQTT_ACL_WHO_POLICY, name };
}

static void
test_parse_errors (void)
{
  static const struct {
    const char *sections;
    const char *message;
  } cases[] = {
    { "[mqtt-acl.a]\npublish = x\n",
      "test.conf: [mqtt-acl.a] principal: missing: say whom the entry grants "
      "(device:{pattern}, policy:{name} or anonymous)" },
    { "[mqtt-acl.a]\nprincipal = user:bob\npublish = x\n",
      "test.conf: [mqtt-acl.a] principal: expected device:{pattern}, policy:{name} or "
      "anonymous (value 'user:bob')" },
    { "[mqtt-acl.a]\nprincipal = Anonymous\npublish = x\n",
      "test.conf: [mqtt-acl.a] principal: expected device:{pattern}, policy:{name} or "
      "anonymous (value 'Anonymous')" },
    { "[mqtt-acl.a]\nprincipal = device:\npublish = x\n",
      "test.conf: [mqtt-acl.a] principal: not a device id pattern (1-128 characters of "
      "A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ ') (value 'device:')" },
    { "[mqtt-acl.a]\nprincipal = device:a/b\npublish = x\n",
      "test.conf: [mqtt-acl.a] principal: not a device id pattern (1-128 characters of "
      "A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ ') (value 'device:a/b')" },
    { "[mqtt-acl.a]\nprincipal = policy:\npublish = x\n",
      "test.conf: [mqtt-acl.a] principal: policy:{name} needs the name of a [policy.NAME] "
      "(value 'policy:')" },
    { "[mqtt-acl.a]\nprincipal = policy:servic\npublish = x\n",
      "test.conf: [mqtt-acl.a] principal: no [policy.servic] in the file "
      "(value 'policy:servic')" },
    { "[mqtt-acl.a]\nprincipal = anonymous\npublish = a/#/b\n",
      "test.conf: [mqtt-acl.a] publish: topic filter: '#' must be the last level "
      "(value 'a/#/b')" },
    { "[mqtt-acl.a]\nprincipal = device:*\npublish = ok/%d\nsubscribe = x/%d+\n",
      "test.conf: [mqtt-acl.a] subscribe: topic filter: '+' at byte 4 must fill its whole "
      "level (value 'x/%d+')" },
    { "[mqtt-acl.a]\nprincipal = anonymous\nsubscribe = a; b/#/c\n",
      "test.conf: [mqtt-acl.a] subscribe: topic filter: '#' must be the last level "
      "(value 'b/#/c')" },
    /* Empty list items are dropped by the option parser: nothing is left. */
    { "[mqtt-acl.a]\nprincipal = anonymous\npublish = ; ;\n",
      "test.conf: [mqtt-acl.a] publish: missing: the entry grants nothing; give publish or "
      "subscribe filters, or both" },
    { "[mqtt-acl.a]\nprincipal = policy:svc\npublish = up/%d\n",
      "test.conf: [mqtt-acl.a] publish: %d is the device id, and only a device principal "
      "has one (value 'up/%d')" },
    { "[mqtt-acl.a]\nprincipal = anonymous\nsubscribe = $share/g/a/#\n",
      "test.conf: [mqtt-acl.a] subscribe: grant the filter itself: a subscription to "
      "$share/{group}/{filter} is judged by {filter} (value '$share/g/a/#')" },
    { "[mqtt-acl.a]\nprincipal = anonymous\n",
      "test.conf: [mqtt-acl.a] publish: missing: the entry grants nothing; give publish or "
      "subscribe filters, or both" },
    { "[mqtt-acl.]\nprincipal = anonymous\npublish = x\n",
      "test.conf: [mqtt-acl.]: an ACL entry needs a name ([mqtt-acl.NAME])" },
    { "[mqtt-acl.a]\nprincipal = anonymous\npublish = x\nread = y\n",
      "test.conf: [mqtt-acl.a] read: unknown key; this section takes principal, publish, "
      "subscribe (value 'y')" },
    /* The first bad section stops the load, later good ones or not. */
    { "[mqtt-acl.ok]\nprincipal = anonymous\npublish = x\n"
      "[mqtt-acl.bad]\nprincipal = device:*\npublish = +x\n"
      "[mqtt-acl.later]\nprincipal = anonymous\npublish = y\n",
      "test.conf: [mqtt-acl.bad] publish: topic filter: '+' at byte 0 must fill its whole "
      "level (value '+x')" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (MqttAcl) acl = acl_from (cases[i].sections, &error);

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, cases[i].sections);
      g_assert_null (acl);
      g_assert_nonnull (error);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

static void
test_parse_ok (void)
{
  g_autoptr (MqttAcl) empty = acl_ok ("");
  g_autoptr (MqttAcl) acl = acl_ok ("[mqtt-acl.sensors]\n"
                                    "principal = device:sensor-*\n"
                                    "publish = sensors/%d/# ; alerts\n"
                                    "subscribe = sensors/+/temp;commands/%d\n"
                                    "[mqtt-acl.svc]\n"
                                    "principal = policy:service\n"
                                    "subscribe = #\n"
                                    "[mqtt-acl.guest]\n"
                                    "principal = anonymous\n"
                                    "publish = public/#\n");
  MqttAclWho s1 = device ("sensor-1");

  g_assert_cmpuint (mqtt_acl_count (empty), ==, 0);
  g_assert_cmpuint (mqtt_acl_count (acl), ==, 3);
  /* List items are trimmed. */
  g_assert_true (mqtt_acl_allows_publish (acl, &s1, "alerts"));
  g_assert_true (mqtt_acl_allows_publish (acl, &s1, "sensors/sensor-1/t"));
}

static void
test_default_deny (void)
{
  g_autoptr (MqttAcl) empty = acl_ok ("");
  g_autoptr (MqttAcl) acl = acl_ok ("[mqtt-acl.a]\nprincipal = device:d1\npublish = x\n");
  MqttAclWho d1 = device ("d1"), d2 = device ("d2");
  MqttAclWho p = policy ("d1");

  g_assert_false (mqtt_acl_allows_publish (empty, &d1, "x"));
  g_assert_false (mqtt_acl_allows_subscribe (empty, &d1, "x"));
  g_assert_false (mqtt_acl_allows_publish (empty, &anonymous, "x"));
  g_assert_true (mqtt_acl_allows_publish (acl, &d1, "x"));
  /* Publish grants are not subscribe grants. */
  g_assert_false (mqtt_acl_allows_subscribe (acl, &d1, "x"));
  g_assert_false (mqtt_acl_allows_publish (acl, &d2, "x"));
  /* A policy with a device's name is not that device. */
  g_assert_false (mqtt_acl_allows_publish (acl, &p, "x"));
  g_assert_false (mqtt_acl_allows_publish (acl, &anonymous, "x"));
}

static void
test_principals (void)
{
  g_autoptr (MqttAcl) acl = acl_ok ("[mqtt-acl.all]\nprincipal = device:*\npublish = all\n"
                                    "[mqtt-acl.s]\nprincipal = device:sensor-*\n"
                                    "publish = sensors\n"
                                    "[mqtt-acl.p]\nprincipal = policy:service\n"
                                    "publish = svc\n"
                                    "[mqtt-acl.anon]\nprincipal = anonymous\n"
                                    "publish = public\n");
  MqttAclWho s1 = device ("sensor-1"), other = device ("pump"), bare = device ("sensor-");
  MqttAclWho svc = policy ("service"), svc2 = policy ("service2");
  MqttAclWho no_name = { MQTT_ACL_WHO_DEVICE, NULL };

  g_assert_true (mqtt_acl_allows_publish (acl, &s1, "all"));
  g_assert_true (mqtt_acl_allows_publish (acl, &s1, "sensors"));
  g_assert_true (mqtt_acl_allows_publish (acl, &other, "all"));
  g_assert_false (mqtt_acl_allows_publish (acl, &other, "sensors"));
  g_assert_true (mqtt_acl_allows_publish (acl, &bare, "sensors"));
  g_assert_false (mqtt_acl_allows_publish (acl, &s1, "svc"));
  g_assert_false (mqtt_acl_allows_publish (acl, &s1, "public"));
  g_assert_true (mqtt_acl_allows_publish (acl, &svc, "svc"));
  g_assert_false (mqtt_acl_allows_publish (acl, &svc2, "svc"));
  g_assert_false (mqtt_acl_allows_publish (acl, &svc, "all"));
  g_assert_true (mqtt_acl_allows_publish (acl, &anonymous, "public"));
  g_assert_false (mqtt_acl_allows_publish (acl, &anonymous, "all"));
  g_assert_false (mqtt_acl_allows_publish (acl, &no_name, "all"));
}

static void
test_glob (void)
{
  static const struct {
    const char *pattern, *text;
    gboolean match;
  } cases[] = {
    { "*", "", TRUE }, { "*", "abc", TRUE }, { "", "", TRUE }, { "", "a", FALSE },
    { "sensor-*", "sensor-1", TRUE }, { "sensor-*", "sensor-", TRUE },
    { "sensor-*", "sensor", FALSE }, { "sensor-*", "xsensor-1", FALSE },
    { "*-x", "a-b-x", TRUE }, { "*-x", "a-x-y", FALSE }, { "a*b*c", "aXbYbc", TRUE },
    { "a*b*c", "abcb", FALSE }, { "a*ab", "aab", TRUE }, { "a*ab", "aaab", TRUE },
    { "a*b", "abb", TRUE }, { "**", "x", TRUE }, { "a?", "ab", FALSE }, { "a?", "a?", TRUE },
    { "exact", "exact", TRUE }, { "exact", "exactly", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("'%s' ~ '%s'", cases[i].pattern, cases[i].text);
      g_assert_cmpint (mqtt_acl_glob_match (cases[i].pattern, cases[i].text), ==,
                       cases[i].match);
    }

  /* Over {a, b, *} GLib's pattern matcher means the same thing. */
  for (guint n = 0; n < 5000; n++)
    {
      char pattern[8], text[8];
      guint plen = g_test_rand_int_range (0, 7), tlen = g_test_rand_int_range (0, 7);

      for (guint i = 0; i < plen; i++)
        pattern[i] = "ab*"[g_test_rand_int_range (0, 3)];
      pattern[plen] = '\0';
      for (guint i = 0; i < tlen; i++)
        text[i] = "ab"[g_test_rand_int_range (0, 2)];
      text[tlen] = '\0';
      if (mqtt_acl_glob_match (pattern, text) != g_pattern_match_simple (pattern, text))
        g_error ("glob '%s' ~ '%s' disagrees with GPatternSpec", pattern, text);
    }
}

static void
test_device_id_substitution (void)
{
  g_autoptr (MqttAcl) acl = acl_ok ("[mqtt-acl.own]\nprincipal = device:*\n"
                                    "publish = up/%d/#;%d;pair/%d-%d\n"
                                    "subscribe = down/%d/+;%d/#\n"
                                    "[mqtt-acl.fixed]\nprincipal = device:*\n"
                                    "publish = shared/#\n");
  MqttAclWho d1 = device ("d1"), dollar = device ("$SYS");
  static const char *const bad_ids[] = { "a+b", "+", "#", "a/b", "/", "", "x#" };

  g_assert_true (mqtt_acl_allows_publish (acl, &d1, "up/d1/t"));
  g_assert_true (mqtt_acl_allows_publish (acl, &d1, "up/d1"));
  g_assert_true (mqtt_acl_allows_publish (acl, &d1, "d1"));
  g_assert_true (mqtt_acl_allows_publish (acl, &d1, "pair/d1-d1"));
  g_assert_false (mqtt_acl_allows_publish (acl, &d1, "pair/d1-d2"));
  g_assert_false (mqtt_acl_allows_publish (acl, &d1, "up/d2/t"));
  g_assert_false (mqtt_acl_allows_publish (acl, &d1, "up/d1x/t"));
  g_assert_false (mqtt_acl_allows_publish (acl, &d1, "%d"));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &d1, "down/d1/x"));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &d1, "down/d1/+"));
  g_assert_false (mqtt_acl_allows_subscribe (acl, &d1, "down/d1/#"));
  g_assert_false (mqtt_acl_allows_subscribe (acl, &d1, "down/+/x"));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &d1, "d1/#"));

  /* An id that would change the filter's levels or wildcards gets nothing
   * through `%d`, but still what names no device. */
  for (gsize i = 0; i < G_N_ELEMENTS (bad_ids); i++)
    {
      MqttAclWho who = device (bad_ids[i]);
      g_autofree char *up = g_strdup_printf ("up/%s/t", bad_ids[i]);
      g_autofree char *down = g_strdup_printf ("down/%s/x", bad_ids[i]);

      g_test_message ("id '%s'", bad_ids[i]);
      g_assert_false (mqtt_acl_allows_publish (acl, &who, up));
      g_assert_false (mqtt_acl_allows_publish (acl, &who, "up/a/t"));
      g_assert_false (mqtt_acl_allows_publish (acl, &who, "up//t"));
      g_assert_false (mqtt_acl_allows_publish (acl, &who, "x"));
      g_assert_false (mqtt_acl_allows_subscribe (acl, &who, down));
      g_assert_false (mqtt_acl_allows_subscribe (acl, &who, "#"));
      g_assert_false (mqtt_acl_allows_subscribe (acl, &who, "down/a/x"));
      g_assert_true (mqtt_acl_allows_publish (acl, &who, "shared/x"));
    }

  /* `$` ids: inside a filter they are just characters; at its start they
   * would reach `$` topics, which only a literal filter may. */
  g_assert_true (mqtt_acl_allows_publish (acl, &dollar, "up/$SYS/x"));
  g_assert_false (mqtt_acl_allows_publish (acl, &dollar, "$SYS"));
  g_assert_false (mqtt_acl_allows_subscribe (acl, &dollar, "$SYS/#"));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &dollar, "down/$SYS/x"));
}

static void
test_dollar_topics (void)
{
  g_autoptr (MqttAcl) acl = acl_ok ("[mqtt-acl.all]\nprincipal = anonymous\n"
                                    "publish = #;+/x\nsubscribe = #\n"
                                    "[mqtt-acl.sys]\nprincipal = policy:ops\n"
                                    "publish = $SYS/#\nsubscribe = $SYS/+/load\n");
  MqttAclWho ops = policy ("ops");

  g_assert_true (mqtt_acl_allows_publish (acl, &anonymous, "a/b"));
  g_assert_false (mqtt_acl_allows_publish (acl, &anonymous, "$SYS/x"));
  g_assert_false (mqtt_acl_allows_publish (acl, &anonymous, "$SYS"));
  g_assert_true (mqtt_acl_allows_publish (acl, &anonymous, "a/$SYS"));
  g_assert_false (mqtt_acl_allows_subscribe (acl, &anonymous, "$SYS/#"));
  g_assert_false (mqtt_acl_allows_subscribe (acl, &anonymous, "$SYS/x"));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &anonymous, "+/#"));
  g_assert_true (mqtt_acl_allows_publish (acl, &ops, "$SYS/broker/load"));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &ops, "$SYS/broker/load"));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &ops, "$SYS/+/load"));
  g_assert_false (mqtt_acl_allows_subscribe (acl, &ops, "$SYS/#"));
}

static void
test_subscribe_examples (void)
{
  static const struct {
    const char *granted, *requested;
    gboolean allowed;
  } cases[] = {
    { "sensors/#", "sensors/+/temp", TRUE },
    { "sensors/+/temp", "sensors/#", FALSE },
    { "sensors/#", "sensors", TRUE },
    { "sensors/#", "sensors/#", TRUE },
    { "sensors/#", "sensorsx/#", FALSE },
    { "sensors/+/temp", "sensors/a/temp", TRUE },
    { "sensors/+/temp", "sensors/+/temp", TRUE },
    { "sensors/+/temp", "sensors/+/+", FALSE },
    { "sensors/+/temp", "sensors/a/temp/x", FALSE },
    { "a/+", "a/#", FALSE },
    { "a/#", "a/+/#", TRUE },
    { "+/#", "#", TRUE },
    { "#", "#", TRUE },
    { "#", "$SYS/#", FALSE },
    { "sensors/#", "$share/g/sensors/+/temp", TRUE },
    { "sensors/#", "$share/g/other", FALSE },
    { "sensors/+/temp", "$share/g/sensors/#", FALSE },
    { "#", "$share/g/#", TRUE },
    /* Refused as filters: judged as nothing. */
    { "#", "a/#/b", FALSE },
    { "#", "a+", FALSE },
    { "#", "", FALSE },
    { "#", "$share/g", FALSE },
    { "#", "$share//a", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *sections = g_strdup_printf ("[mqtt-acl.a]\nprincipal = anonymous\n"
                                                   "subscribe = %s\n", cases[i].granted);
      g_autoptr (MqttAcl) acl = acl_ok (sections);

      g_test_message ("'%s' covers '%s'", cases[i].granted, cases[i].requested);
      g_assert_cmpint (mqtt_acl_allows_subscribe (acl, &anonymous, cases[i].requested), ==,
                       cases[i].allowed);
    }
}

/* All strings of 1..max_levels levels over `alphabet`, a `$` level only
 * first; filters only when valid, nothing after `#`. */
static void
enumerate (const char *const *alphabet, gsize n, guint max_levels, gboolean filters,
           GPtrArray *out)
{
  g_autoptr (GPtrArray) frontier = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (frontier, g_strdup (""));
  for (guint depth = 1; depth <= max_levels; depth++)
    {
      g_autoptr (GPtrArray) next = g_ptr_array_new_with_free_func (g_free);

      for (guint i = 0; i < frontier->len; i++)
        for (gsize j = 0; j < n; j++)
          {
            const char *prefix = frontier->pdata[i];
            g_autofree char *item = NULL;

            if (depth > 1 && alphabet[j][0] == '$')
              continue;
            item = depth == 1 ? g_strdup (alphabet[j])
              : g_strconcat (prefix, "/", alphabet[j], NULL);
            if (item[0] != '\0'
                && (!filters || mqtt_topic_filter_parse (item, strlen (item), NULL, NULL, NULL)))
              g_ptr_array_add (out, g_strdup (item));
            if (strcmp (alphabet[j], "#") != 0)
              g_ptr_array_add (next, g_steal_pointer (&item));
          }
      g_ptr_array_set_size (frontier, 0);
      g_ptr_array_extend_and_steal (frontier, g_steal_pointer (&next));
    }
}

/* Brute force: every topic of `topics` that `requested` matches,
 * `granted` matches too. */
static gboolean
brute_covers (const char *granted, const char *requested, GPtrArray *topics)
{
  for (guint t = 0; t < topics->len; t++)
    {
      const char *topic = topics->pdata[t];
      gsize len = strlen (topic);

      if (mqtt_topic_matches (requested, strlen (requested), topic, len)
          && !mqtt_topic_matches (granted, strlen (granted), topic, len))
        return FALSE;
    }
  return TRUE;
}

/* Every pair of filters of up to 3 levels over {a, b, "", $s, +, #}, as
 * plain and as shared subscriptions, through the ACL. The topics reach one
 * level deeper than any filter and include a level no filter names (z), so
 * they stand for every topic. */
static void
test_subscribe_exhaustive (void)
{
  static const char *const filter_levels[] = { "a", "b", "", "$s", "+", "#" };
  static const char *const topic_levels[] = { "a", "b", "", "$s", "z" };
  g_autoptr (GPtrArray) filters = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) topics = g_ptr_array_new_with_free_func (g_free);
  guint n_allowed = 0, n_pairs = 0;

  enumerate (filter_levels, G_N_ELEMENTS (filter_levels), 3, TRUE, filters);
  enumerate (topic_levels, G_N_ELEMENTS (topic_levels), 4, FALSE, topics);
  g_assert_cmpuint (filters->len, >, 100);

  for (guint a = 0; a < filters->len; a++)
    {
      const char *granted = filters->pdata[a];
      g_autofree char *sections = g_strdup_printf ("[mqtt-acl.a]\nprincipal = anonymous\n"
                                                   "subscribe = %s\n", granted);
      g_autoptr (MqttAcl) acl = acl_ok (sections);

      for (guint r = 0; r < filters->len; r++)
        {
          const char *requested = filters->pdata[r];
          g_autofree char *shared = g_strconcat ("$share/g/", requested, NULL);
          gboolean expected = brute_covers (granted, requested, topics);

          if (mqtt_acl_allows_subscribe (acl, &anonymous, requested) != expected)
            g_error ("granted '%s', requested '%s': expected %d", granted, requested,
                     expected);
          if (mqtt_acl_allows_subscribe (acl, &anonymous, shared) != expected)
            g_error ("granted '%s', requested '%s': expected %d", granted, shared, expected);
          n_allowed += expected;
          n_pairs++;
        }
    }
  g_test_message ("%u filters, %u topics, %u of %u pairs allowed", filters->len,
                  topics->len, n_allowed, n_pairs);
  /* Both answers come up often, not just the diagonal. */
  g_assert_cmpuint (n_allowed, >, 3 * filters->len);
  g_assert_cmpuint (n_allowed, <, n_pairs / 2);
}

/* A random level for a filter (`%d` included when `with_id`). */
static const char *
random_level (gboolean first, gboolean with_id)
{
  static const char *const levels[] = { "a", "b", "", "q", "+", "#", "%d" };
  guint pick = g_test_rand_int_range (0, with_id ? 7 : 6);

  if (first && g_test_rand_int_range (0, 8) == 0)
    return "$s";
  return levels[pick];
}

static char *
random_filter (gboolean with_id)
{
  guint n = g_test_rand_int_range (1, 5);
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    {
      const char *level = random_level (i == 0, with_id);

      if (i > 0)
        g_string_append_c (out, '/');
      g_string_append (out, level);
      if (strcmp (level, "#") == 0)
        break;
    }
  if (strcmp (out->str, "") == 0)
    g_string_assign (out, "a");
  return g_string_free (out, FALSE);
}

static char *
substitute (const char *filter, const char *id)
{
  g_auto (GStrv) parts = g_strsplit (filter, "%d", -1);

  return g_strjoinv (id, parts);
}

/* Random granted filters with `%d` and random device ids (some that must
 * never be substituted): the ACL agrees with brute force over the filter as
 * substituted, and refuses where the id may not stand in. Random requested
 * filters reach 4 levels, the topics 5 (over a level none names, z). */
static void
test_subscribe_random (void)
{
  static const char *const ids[] = { "a", "b", "q", "$s", "", "+", "#", "a/b", "q+" };
  static const char *const topic_levels[] = { "a", "b", "", "q", "$s", "z" };
  g_autoptr (GPtrArray) topics = g_ptr_array_new_with_free_func (g_free);
  guint n_allowed = 0, n_refused_id = 0;
  guint rounds = g_test_thorough () ? 50000 : 5000;

  enumerate (topic_levels, G_N_ELEMENTS (topic_levels), 5, FALSE, topics);
  for (guint n = 0; n < rounds; n++)
    {
      g_autofree char *granted = random_filter (TRUE);
      g_autofree char *requested = random_filter (FALSE);
      const char *id = ids[g_test_rand_int_range (0, G_N_ELEMENTS (ids))];
      g_autofree char *sections = NULL;
      g_autoptr (MqttAcl) acl = NULL;
      g_autoptr (GError) error = NULL;
      MqttAclWho who = device (id);
      gboolean has_id = strstr (granted, "%d") != NULL;
      gboolean expected;
      gboolean got;

      /* `%d` next to nothing but its own level is always valid here. */
      if (!mqtt_topic_filter_parse (requested, strlen (requested), NULL, NULL, NULL))
        continue;
      sections = g_strdup_printf ("[mqtt-acl.a]\nprincipal = device:*\nsubscribe = %s\n",
                                  granted);
      acl = acl_from (sections, &error);
      g_assert_no_error (error);

      if (has_id && (id[0] == '\0' || strpbrk (id, "+#/") != NULL
                     || (id[0] == '$' && g_str_has_prefix (granted, "%d"))))
        {
          expected = FALSE;
          n_refused_id++;
        }
      else
        {
          g_autofree char *concrete = substitute (granted, id);

          expected = brute_covers (concrete, requested, topics);
        }
      got = mqtt_acl_allows_subscribe (acl, &who, requested);
      if (got != expected)
        g_error ("device '%s', granted '%s', requested '%s': got %d", id, granted, requested,
                 got);
      n_allowed += got;
    }
  g_test_message ("%u rounds, %u allowed, %u refused for the id", rounds, n_allowed,
                  n_refused_id);
  g_assert_cmpuint (n_allowed, >, rounds / 50);
  g_assert_cmpuint (n_refused_id, >, 0);
}

/* Publish: the same random grants against every topic. */
static void
test_publish_random (void)
{
  static const char *const ids[] = { "a", "q", "$s", "", "+", "a/b" };
  static const char *const topic_levels[] = { "a", "b", "", "q", "$s", "z" };
  g_autoptr (GPtrArray) topics = g_ptr_array_new_with_free_func (g_free);
  guint n_allowed = 0;

  enumerate (topic_levels, G_N_ELEMENTS (topic_levels), 4, FALSE, topics);
  for (guint n = 0; n < 200; n++)
    {
      g_autofree char *granted = random_filter (TRUE);
      const char *id = ids[g_test_rand_int_range (0, G_N_ELEMENTS (ids))];
      g_autofree char *sections =
        g_strdup_printf ("[mqtt-acl.a]\nprincipal = device:*\npublish = %s\n", granted);
      g_autoptr (MqttAcl) acl = acl_ok (sections);
      g_autofree char *concrete = substitute (granted, id);
      MqttAclWho who = device (id);
      gboolean id_ok = strstr (granted, "%d") == NULL
        || (id[0] != '\0' && strpbrk (id, "+#/") == NULL
            && !(id[0] == '$' && g_str_has_prefix (granted, "%d")));

      for (guint t = 0; t < topics->len; t++)
        {
          const char *topic = topics->pdata[t];
          gboolean expected = id_ok && mqtt_topic_matches (concrete, strlen (concrete), topic,
                                                           strlen (topic));

          if (mqtt_acl_allows_publish (acl, &who, topic) != expected)
            g_error ("device '%s', granted '%s', topic '%s': expected %d", id, granted, topic,
                     expected);
          n_allowed += expected;
        }
    }
  g_assert_cmpuint (n_allowed, >, 0);
}

/* A device id long enough that the substituted filter leaves the stack
 * buffer. */
static void
test_long_id (void)
{
  g_autoptr (MqttAcl) acl = acl_ok ("[mqtt-acl.a]\nprincipal = device:*\n"
                                    "publish = %d/%d/%d/%d/%d/x\nsubscribe = %d/%d/%d/%d/%d/#\n");
  g_autofree char *id = g_strnfill (128, 'i');
  g_autofree char *topic = g_strdup_printf ("%s/%s/%s/%s/%s/x", id, id, id, id, id);
  g_autofree char *filter = g_strdup_printf ("%s/%s/%s/%s/%s/+", id, id, id, id, id);
  MqttAclWho who = device (id);

  g_assert_cmpuint (strlen (topic), >, 512);
  g_assert_true (mqtt_acl_allows_publish (acl, &who, topic));
  g_assert_true (mqtt_acl_allows_subscribe (acl, &who, filter));
  topic[0] = 'j';
  g_assert_false (mqtt_acl_allows_publish (acl, &who, topic));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/transport/mqtt/acl/parse/errors", test_parse_errors);
  g_test_add_func ("/transport/mqtt/acl/parse/ok", test_parse_ok);
  g_test_add_func ("/transport/mqtt/acl/default-deny", test_default_deny);
  g_test_add_func ("/transport/mqtt/acl/principals", test_principals);
  g_test_add_func ("/transport/mqtt/acl/glob", test_glob);
  g_test_add_func ("/transport/mqtt/acl/device-id", test_device_id_substitution);
  g_test_add_func ("/transport/mqtt/acl/dollar-topics", test_dollar_topics);
  g_test_add_func ("/transport/mqtt/acl/long-id", test_long_id);
  g_test_add_func ("/transport/mqtt/acl/subscribe/examples", test_subscribe_examples);
  g_test_add_func ("/transport/mqtt/acl/subscribe/exhaustive", test_subscribe_exhaustive);
  g_test_add_func ("/transport/mqtt/acl/subscribe/random", test_subscribe_random);
  g_test_add_func ("/transport/mqtt/acl/publish/random", test_publish_random);
  return g_test_run ();
}
