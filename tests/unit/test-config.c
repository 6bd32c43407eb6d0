/* Unit tests: size / duration units, typed option tables and the
 * configuration file (CONFIG.md).
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"

#include <glib/gstdio.h>
#include <string.h>

#define FILE_NAME "test.conf"

/* Every config error reads `FILE: [section] key: what (value 'x')`. */
static void
assert_error (const GError *error, GQuark domain, gint code, const char *prefix,
              const char *contains, const char *suffix)
{
  g_assert_nonnull (error);
  if (!g_error_matches (error, domain, code))
    g_error ("expected %s/%d, got %s/%d: %s", g_quark_to_string (domain), code,
             g_quark_to_string (error->domain), error->code, error->message);
  if (prefix != NULL && !g_str_has_prefix (error->message, prefix))
    g_error ("message '%s' does not start with '%s'", error->message, prefix);
  if (contains != NULL && strstr (error->message, contains) == NULL)
    g_error ("message '%s' does not contain '%s'", error->message, contains);
  if (suffix != NULL && !g_str_has_suffix (error->message, suffix))
    g_error ("message '%s' does not end with '%s'", error->message, suffix);
}

static void
assert_load_fails (const char *data, gint code, const char *prefix, const char *contains,
                   const char *suffix)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceConfig) config = sluice_config_load_from_data (FILE_NAME, data, &error);

  g_assert_null (config);
  assert_error (error, SLUICE_CONFIG_ERROR, code, prefix, contains, suffix);
}

static SluiceConfig *
load_ok (const char *data)
{
  g_autoptr (GError) error = NULL;
  SluiceConfig *config = sluice_config_load_from_data (FILE_NAME, data, &error);

  g_assert_no_error (error);
  g_assert_nonnull (config);
  return config;
}

/* ---- units ---- */

static void
test_size_known (void)
{
  static const struct {
    const char *text;
    guint64 value;
  } cases[] = {
    { "0", 0 },
    { "512", 512 },
    { "512B", 512 },
    { "4KiB", 4096 },
    { "256KiB", 262144 },
    { "1MiB", 1048576 },
    { "128MiB", G_GUINT64_CONSTANT (134217728) },
    { "1GiB", G_GUINT64_CONSTANT (1073741824) },
    { "1TiB", G_GUINT64_CONSTANT (1099511627776) },
    { "4kib", 4096 },
    { "1 MiB", 1048576 },
    { " 2KiB ", 2048 },
    { "16777215TiB", G_GUINT64_CONSTANT (16777215) << 40 },
    { "18446744073709551615", G_MAXUINT64 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      guint64 v = 1;
      g_assert_true (sluice_parse_size (cases[i].text, &v, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (v, ==, cases[i].value);
    }
}

static void
test_size_bad (void)
{
  static const struct {
    const char *text;
    const char *reason;
  } cases[] = {
    { "", "empty size" },
    { "-1", "cannot be negative" },
    { "-1KiB", "cannot be negative" },
    { "abc", "not a size" },
    { "MiB", "not a size" },
    { "1.5GiB", "fractions" },
    { "10KB", "unknown unit 'KB'" },
    { "10k", "unknown unit 'k'" },
    { "1MiB2", "unknown unit 'MiB2'" },
    { "16777216TiB", "too large" },
    { "18446744073709551616", "too large" },
    { "99999999999999999999999", "too large" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *head = g_strdup_printf ("bad size '%s': ", cases[i].text);
      guint64 v = 77;
      g_assert_false (sluice_parse_size (cases[i].text, &v, &error));
      assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, head, cases[i].reason, NULL);
      g_assert_cmpuint (v, ==, 77);
    }
}

static void
test_duration_known (void)
{
  static const struct {
    const char *text;
    gint64 ms;
  } cases[] = {
    { "0", 0 },
    { "0s", 0 },
    { "250ms", 250 },
    { "30s", 30000 },
    { "5m", 300000 },
    { "2h", 7200000 },
    { "7d", 604800000 },
    { "200 ms", 200 },
    { "9223372036854775807ms", G_MAXINT64 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      gint64 v = -1;
      g_assert_true (sluice_parse_duration_ms (cases[i].text, &v, &error));
      g_assert_no_error (error);
      g_assert_cmpint (v, ==, cases[i].ms);
    }
}

static void
test_duration_bad (void)
{
  static const struct {
    const char *text;
    const char *reason;
  } cases[] = {
    { "", "empty duration" },
    { "30", "needs a unit" },
    { "-5s", "cannot be negative" },
    { "1.5s", "fractions" },
    { "5M", "unknown unit 'M'" },
    { "5S", "unknown unit 'S'" },
    { "2weeks", "unknown unit 'weeks'" },
    { "s", "not a duration" },
    { "9223372036854775808ms", "too large" },
    { "106751991167301d", "too large" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *head = g_strdup_printf ("bad duration '%s': ", cases[i].text);
      gint64 v = 77;
      g_assert_false (sluice_parse_duration_ms (cases[i].text, &v, &error));
      assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, head, cases[i].reason, NULL);
      g_assert_cmpint (v, ==, 77);
    }
}

/* ---- typed option tables ---- */

typedef struct {
  char *name;
  char **tags;
  gint64 count;
  gboolean enabled;
  guint64 size;
  gint64 timeout;
  int mode;
  char *unset;
} PlugOptions;

static const char *const modes[] = { "fast", "safe", "off", NULL };

static const SluiceOption plug_table[] = {
  { "name", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PlugOptions, name), "anon", "", 0, 0, NULL,
    { NULL } },
  { "tags", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (PlugOptions, tags), "a;b", "", 0, 0, NULL,
    { NULL } },
  { "count", SLUICE_OPTION_INT, G_STRUCT_OFFSET (PlugOptions, count), "3", "", 1, 10, NULL,
    { NULL } },
  { "enabled", SLUICE_OPTION_BOOL, G_STRUCT_OFFSET (PlugOptions, enabled), "true", "", 0, 0,
    NULL, { NULL } },
  { "size", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (PlugOptions, size), "4KiB", "", 1024,
    G_GINT64_CONSTANT (1) << 20, NULL, { NULL } },
  { "timeout", SLUICE_OPTION_DURATION, G_STRUCT_OFFSET (PlugOptions, timeout), "30s", "", 1,
    60 * 60 * 1000, NULL, { NULL } },
  { "mode", SLUICE_OPTION_ENUM, G_STRUCT_OFFSET (PlugOptions, mode), "safe", "", 0, 0, modes,
    { NULL } },
  { "unset", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PlugOptions, unset), NULL, "", 0, 0, NULL,
    { NULL } },
  SLUICE_OPTION_END
};

static void
test_section_defaults (void)
{
  g_autoptr (SluiceConfig) config = load_ok ("[hub]\n");
  g_autoptr (GError) error = NULL;
  PlugOptions o = { 0 };

  /* An absent section is all defaults. */
  g_assert_true (sluice_config_parse_section (config, "plug", plug_table, NULL, &o, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (o.name, ==, "anon");
  g_assert_cmpuint (g_strv_length (o.tags), ==, 2);
  g_assert_cmpstr (o.tags[0], ==, "a");
  g_assert_cmpstr (o.tags[1], ==, "b");
  g_assert_cmpint (o.count, ==, 3);
  g_assert_true (o.enabled);
  g_assert_cmpuint (o.size, ==, 4096);
  g_assert_cmpint (o.timeout, ==, 30000);
  g_assert_cmpint (o.mode, ==, 1);
  g_assert_null (o.unset);
  sluice_options_clear (plug_table, &o);
  g_assert_null (o.name);
  g_assert_null (o.tags);
  g_assert_cmpint (o.count, ==, 0);
}

static void
test_section_values (void)
{
  g_autoptr (SluiceConfig) config = load_ok ("[plug]\n"
                                             "name = a\\tb\n"
                                             "tags = key ; x509;; other\n"
                                             "count = 10\n"
                                             "enabled = false\n"
                                             "size = 1MiB\n"
                                             "timeout = 250ms\n"
                                             "mode = off\n"
                                             "plugin = whatever\n");
  g_autoptr (GError) error = NULL;
  const char *const extra[] = { "plugin", NULL };
  PlugOptions o = { 0 };

  g_assert_true (sluice_config_parse_section (config, "plug", plug_table, extra, &o, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (o.name, ==, "a\tb");
  g_assert_cmpuint (g_strv_length (o.tags), ==, 3);
  g_assert_cmpstr (o.tags[0], ==, "key");
  g_assert_cmpstr (o.tags[1], ==, "x509");
  g_assert_cmpstr (o.tags[2], ==, "other");
  g_assert_cmpint (o.count, ==, 10);
  g_assert_false (o.enabled);
  g_assert_cmpuint (o.size, ==, 1048576);
  g_assert_cmpint (o.timeout, ==, 250);
  g_assert_cmpint (o.mode, ==, 2);
  sluice_options_clear (plug_table, &o);
}

static void
assert_section_fails (const char *data, gint code, const char *prefix, const char *contains,
                      const char *suffix)
{
  g_autoptr (SluiceConfig) config = load_ok (data);
  g_autoptr (GError) error = NULL;
  PlugOptions o = { 0 };

  g_assert_false (sluice_config_parse_section (config, "plug", plug_table, NULL, &o, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, code, prefix, contains, suffix);
  /* Nothing stays allocated after an error. */
  g_assert_null (o.name);
  g_assert_null (o.tags);
}

static void
test_section_errors (void)
{
  assert_section_fails ("[plug]\ncolour = red\n", SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                        FILE_NAME ": [plug] colour: unknown key", "name, tags, count",
                        " (value 'red')");
  /* `plugin` is accepted only when the caller says another party reads it. */
  assert_section_fails ("[plug]\nplugin = x\n", SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                        FILE_NAME ": [plug] plugin: unknown key", NULL, " (value 'x')");
  assert_section_fails ("[plug]\ncount = many\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] count: not a whole number", NULL, " (value 'many')");
  assert_section_fails ("[plug]\ncount = 11\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] count: out of range (1..10)", NULL, " (value '11')");
  assert_section_fails ("[plug]\ncount = 0\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] count: out of range", NULL, " (value '0')");
  assert_section_fails ("[plug]\nenabled = yes\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] enabled: expected true or false", NULL,
                        " (value 'yes')");
  assert_section_fails ("[plug]\nsize = 12KB\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] size: unknown unit 'KB'", NULL, " (value '12KB')");
  assert_section_fails ("[plug]\nsize = 2MiB\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] size: out of range (1KiB..1MiB)", NULL,
                        " (value '2MiB')");
  assert_section_fails ("[plug]\nsize = -4KiB\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] size: a size cannot be negative", NULL,
                        " (value '-4KiB')");
  assert_section_fails ("[plug]\ntimeout = 30\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] timeout: a duration needs a unit", NULL,
                        " (value '30')");
  assert_section_fails ("[plug]\ntimeout = 2h\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] timeout: out of range (1ms..1h)", NULL,
                        " (value '2h')");
  assert_section_fails ("[plug]\nmode = slow\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] mode: expected fast, safe or off", NULL,
                        " (value 'slow')");
  /* A later key failing frees what earlier keys allocated. */
  assert_section_fails ("[plug]\nname = n\ntags = a;b\nmode = slow\n",
                        SLUICE_CONFIG_ERROR_BAD_VALUE, FILE_NAME ": [plug] mode:", NULL, NULL);
  assert_section_fails ("[plug]\nname = bad\\qescape\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                        FILE_NAME ": [plug] name:", NULL, " (value 'bad\\qescape')");
}

static void
test_section_secret_hidden (void)
{
  g_autoptr (SluiceConfig) config = load_ok ("[plug]\nprimary-kee = c2VjcmV0\n"
                                             "[plug2]\nprimary-key = c2VjcmV0\n");
  g_autoptr (GError) error = NULL;
  PlugOptions o = { 0 };

  /* A misspelt key name still shows its value (it is not a known secret)... */
  g_assert_false (sluice_config_parse_section (config, "plug", plug_table, NULL, &o, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                FILE_NAME ": [plug] primary-kee: unknown key", NULL, "(value 'c2VjcmV0')");
  g_clear_error (&error);
  /* ...but a credential's value never reaches a message. */
  g_assert_false (sluice_config_parse_section (config, "plug2", plug_table, NULL, &o, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                FILE_NAME ": [plug2] primary-key: unknown key", NULL, "(value '(hidden)')");
  g_assert_null (strstr (error->message, "c2VjcmV0"));
}

static void
test_section_long_value_cut (void)
{
  g_autofree char *big = g_strnfill (5000, 'x');
  g_autofree char *data = g_strdup_printf ("[plug]\ncount = %s\n", big);
  g_autoptr (SluiceConfig) config = load_ok (data);
  g_autoptr (GError) error = NULL;
  PlugOptions o = { 0 };

  g_assert_false (sluice_config_parse_section (config, "plug", plug_table, NULL, &o, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_BAD_VALUE,
                FILE_NAME ": [plug] count:", NULL, "...')");
  g_assert_cmpuint (strlen (error->message), <, 300);
}

static void
test_list_sections (void)
{
  g_autoptr (SluiceConfig) config = load_ok ("[policy.b]\n[hub]\n[policy.a]\n[policyx]\n");
  g_auto (GStrv) policies = sluice_config_list_sections (config, "policy.");
  g_auto (GStrv) none = sluice_config_list_sections (config, "mqtt-map.");

  g_assert_cmpuint (g_strv_length (policies), ==, 2);
  /* File order, not sorted. */
  g_assert_cmpstr (policies[0], ==, "policy.b");
  g_assert_cmpstr (policies[1], ==, "policy.a");
  g_assert_nonnull (none);
  g_assert_cmpuint (g_strv_length (none), ==, 0);
  g_assert_cmpstr (sluice_config_get_path (config), ==, FILE_NAME);
}

/* ---- the configuration file ---- */

static void
test_config_defaults (void)
{
  g_autoptr (SluiceConfig) config = load_ok ("# nothing\n");

  g_assert_cmpstr (config->path, ==, FILE_NAME);
  g_assert_cmpstr (config->hostname, ==, "localhost");
  g_assert_cmpstr (config->data_dir, ==, "./data");
  g_assert_null (config->tls_cert);
  g_assert_null (config->tls_key);
  g_assert_null (config->plugin_path);
  g_assert_cmpint (config->workers, ==, 0);
  g_assert_cmpstr (config->log_level, ==, "info");
  g_assert_cmpstr (config->storage_plugin, ==, "file");
  g_assert_null (config->auth_chain);
  g_assert_false (config->allow_anonymous);
  g_assert_cmpuint (config->auths->len, ==, 0);
  g_assert_cmpuint (config->transports->len, ==, 0);
  g_assert_cmpuint (config->streams->len, ==, 0);
}

static const char quickstart[] =
  "# Development only\n"
  "[hub]\n"
  "hostname = hub.example\n"
  "data-dir = var/data\n"
  "plugin-path = /opt/a;/opt/b\n"
  "workers = 4\n"
  "log-level = debug\n"
  "\n"
  "[storage]\n"
  "plugin = lmdb\n"
  "map-size = 1GiB\n"
  "\n"
  "[auth]\n"
  "chain = key; x509\n"
  "allow-anonymous = true\n"
  "\n"
  "[auth.key]\n"
  "plugin = key\n"
  "[auth.x509]\n"
  "plugin = x509\n"
  "ca = /etc/ca.pem\n"
  "\n"
  "[policy.iothubowner]\n"
  "primary-key = c2VjcmV0\n"
  "\n"
  "[transport.https]\n"
  "plugin = https\n"
  "listen = 127.0.0.1:8080\n"
  "tls-listen = 127.0.0.1:8443;[::1]:8443\n"
  "max-body = 256KiB\n"
  "\n"
  "[transport.mqtt]\n"
  "plugin = mqtt\n"
  "listen = :1883\n"
  "tls-cert = /etc/cert.pem\n"
  "tls-key = /etc/key.pem\n"
  "tls-ca = /etc/ca.pem\n"
  "max-connections = 50\n"
  "\n"
  "[stream.events]\n"
  "partitions = 4\n"
  "durability = batch\n"
  "\n"
  "[stream.audit.log-2]\n"
  "partitions = 1\n"
  "retention-time = none\n"
  "retention-size = 10GiB\n"
  "durability = interval\n"
  "interval = 1s\n"
  "max-message = 256KiB\n"
  "\n"
  "[route.telemetry]\n"
  "source = telemetry\n";

static void
test_config_full (void)
{
  g_autoptr (SluiceConfig) config = load_ok (quickstart);
  SluiceConfigAuth *a;
  SluiceConfigTransport *t;
  SluiceConfigStream *s;

  g_assert_cmpstr (config->hostname, ==, "hub.example");
  /* Relative data-dir is kept as written: relative to sluiced's cwd. */
  g_assert_cmpstr (config->data_dir, ==, "var/data");
  g_assert_cmpuint (g_strv_length (config->plugin_path), ==, 2);
  g_assert_cmpstr (config->plugin_path[1], ==, "/opt/b");
  g_assert_cmpint (config->workers, ==, 4);
  g_assert_cmpstr (config->log_level, ==, "debug");
  g_assert_cmpstr (config->storage_plugin, ==, "lmdb");
  g_assert_cmpuint (g_strv_length (config->auth_chain), ==, 2);
  g_assert_cmpstr (config->auth_chain[0], ==, "key");
  g_assert_cmpstr (config->auth_chain[1], ==, "x509");
  g_assert_true (config->allow_anonymous);

  g_assert_cmpuint (config->auths->len, ==, 2);
  a = config->auths->pdata[1];
  g_assert_cmpstr (a->name, ==, "x509");
  g_assert_cmpstr (a->plugin, ==, "x509");

  g_assert_cmpuint (config->transports->len, ==, 2);
  t = config->transports->pdata[0];
  g_assert_cmpstr (t->name, ==, "https");
  g_assert_cmpstr (t->plugin, ==, "https");
  g_assert_cmpuint (g_strv_length (t->listen), ==, 1);
  g_assert_cmpstr (t->listen[0], ==, "127.0.0.1:8080");
  g_assert_cmpuint (g_strv_length (t->tls_listen), ==, 2);
  g_assert_cmpstr (t->tls_listen[1], ==, "[::1]:8443");
  g_assert_null (t->tls_cert);
  g_assert_cmpint (t->max_connections, ==, 10000);
  t = config->transports->pdata[1];
  g_assert_cmpstr (t->name, ==, "mqtt");
  g_assert_null (t->tls_listen);
  g_assert_cmpstr (t->tls_cert, ==, "/etc/cert.pem");
  g_assert_cmpstr (t->tls_key, ==, "/etc/key.pem");
  g_assert_cmpstr (t->tls_ca, ==, "/etc/ca.pem");
  g_assert_cmpint (t->max_connections, ==, 50);

  g_assert_cmpuint (config->streams->len, ==, 2);
  s = config->streams->pdata[0];
  g_assert_cmpstr (s->name, ==, "events");
  g_assert_cmpint (s->partitions, ==, 4);
  g_assert_cmpint (s->retention_time_ms, ==, G_GINT64_CONSTANT (7) * 24 * 3600 * 1000);
  g_assert_cmpuint (s->retention_size, ==, 0);
  g_assert_cmpint (s->durability, ==, SLUICE_DURABILITY_BATCH);
  g_assert_cmpint (s->interval_ms, ==, 200);
  g_assert_cmpuint (s->max_message, ==, 1048576);
  s = config->streams->pdata[1];
  g_assert_cmpstr (s->name, ==, "audit.log-2");
  g_assert_cmpint (s->partitions, ==, 1);
  g_assert_cmpint (s->retention_time_ms, ==, 0);
  g_assert_cmpuint (s->retention_size, ==, G_GUINT64_CONSTANT (10) << 30);
  g_assert_cmpint (s->durability, ==, SLUICE_DURABILITY_INTERVAL);
  g_assert_cmpint (s->interval_ms, ==, 1000);
  g_assert_cmpuint (s->max_message, ==, 262144);
}

static void
test_config_file (void)
{
  /* The isolated per-test data dir: nothing shared with other runs. */
  const char *dir = g_get_user_data_dir ();
  g_autofree char *path = g_build_filename (dir, "sluice.conf", NULL);
  g_autofree char *missing = g_build_filename (dir, "nope.conf", NULL);
  g_autofree char *bad = g_build_filename (dir, "latin1.conf", NULL);
  g_autofree char *prefix = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceConfig) config = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (path, "[hub]\nhostname = fromfile\n", -1, &error));
  config = sluice_config_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->hostname, ==, "fromfile");
  g_assert_cmpstr (sluice_config_get_path (config), ==, path);
  g_clear_pointer (&config, sluice_config_free);

  config = sluice_config_load (missing, &error);
  g_assert_null (config);
  prefix = g_strdup_printf ("%s: cannot read the configuration file", missing);
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_MISSING, prefix, NULL, NULL);
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (bad, "[hub]\nhostname = caf\xe9\n", -1, NULL));
  config = sluice_config_load (bad, &error);
  g_assert_null (config);
  g_free (prefix);
  prefix = g_strdup_printf ("%s: syntax error", bad);
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_PARSE, prefix, "UTF-8", NULL);
}

static void
test_config_syntax (void)
{
  assert_load_fails ("[hub\nhostname = x\n", SLUICE_CONFIG_ERROR_PARSE,
                     FILE_NAME ": syntax error:", NULL, NULL);
  assert_load_fails ("hostname = x\n", SLUICE_CONFIG_ERROR_PARSE, FILE_NAME ": syntax error:",
                     NULL, NULL);
  assert_load_fails ("[hub]\njust some words\n", SLUICE_CONFIG_ERROR_PARSE,
                     FILE_NAME ": syntax error:", "just some words", NULL);
}

static void
test_config_bad_values (void)
{
  assert_load_fails ("[hub]\ncolour = red\n", SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                     FILE_NAME ": [hub] colour: unknown key", "hostname", " (value 'red')");
  assert_load_fails ("[hub]\nlog-level = loud\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [hub] log-level: expected error, warning, info or debug", NULL,
                     " (value 'loud')");
  assert_load_fails ("[hub]\nworkers = -1\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [hub] workers: out of range", NULL, " (value '-1')");
  assert_load_fails ("[hub]\nhostname =\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [hub] hostname: cannot be empty", NULL, " (value '')");
  assert_load_fails ("[auth]\nallow-anonymous = 1\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [auth] allow-anonymous: expected true or false", NULL,
                     " (value '1')");
  assert_load_fails ("[auth]\nchains = key\n", SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                     FILE_NAME ": [auth] chains: unknown key", NULL, " (value 'key')");
  assert_load_fails ("[stream.a]\nmax-message = 12KB\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] max-message: unknown unit 'KB'", NULL,
                     " (value '12KB')");
  assert_load_fails ("[stream.a]\nmax-message = 2GiB\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] max-message: out of range (1..1GiB)", NULL,
                     " (value '2GiB')");
  assert_load_fails ("[stream.a]\ninterval = 200\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] interval: a duration needs a unit", NULL,
                     " (value '200')");
  assert_load_fails ("[stream.a]\nretention-time = forever\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] retention-time: not a duration", "(or none)",
                     " (value 'forever')");
  assert_load_fails ("[stream.a]\nretention-size = 5GB\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] retention-size: unknown unit 'GB'", NULL,
                     " (value '5GB')");
  assert_load_fails ("[stream.a]\ndurability = always\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] durability: expected none, interval or batch", NULL,
                     " (value 'always')");
  assert_load_fails ("[stream.a]\npartitions = 0\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] partitions: out of range (1..100000)", NULL,
                     " (value '0')");
  assert_load_fails ("[stream.a]\npartitions = four\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [stream.a] partitions: not a whole number", NULL,
                     " (value 'four')");
  assert_load_fails ("[stream.a]\nreplicas = 3\n", SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                     FILE_NAME ": [stream.a] replicas: unknown key", "partitions",
                     " (value '3')");
}

static void
test_config_auth (void)
{
  assert_load_fails ("[auth]\nchain = key;x509\n[auth.key]\nplugin = key\n",
                     SLUICE_CONFIG_ERROR_MISSING,
                     FILE_NAME ": [auth] chain: chain entry 'x509' has no [auth.x509] section",
                     NULL, " (value 'key;x509')");
  assert_load_fails ("[auth]\nchain = key;key\n[auth.key]\nplugin = key\n",
                     SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [auth] chain: 'key' is listed twice", NULL,
                     " (value 'key;key')");
  assert_load_fails ("[auth]\nchain = key\n[auth.key]\nsecret = 1\n",
                     SLUICE_CONFIG_ERROR_MISSING,
                     FILE_NAME ": [auth.key] plugin: required key is missing", NULL, NULL);
  assert_load_fails ("[auth.]\nplugin = key\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [auth.]: bad instance name", NULL, NULL);
  assert_load_fails ("[auth.key]\nplugin = ../../tmp/evil\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [auth.key] plugin: not a plugin name", NULL,
                     " (value '../../tmp/evil')");
}

static void
test_config_storage (void)
{
  g_autoptr (SluiceConfig) config = NULL;

  assert_load_fails ("[storage]\nsegment-size = 64MiB\n", SLUICE_CONFIG_ERROR_MISSING,
                     FILE_NAME ": [storage] plugin: required key is missing", "plugin = file",
                     NULL);
  assert_load_fails ("[storage]\nplugin = a/b\n", SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [storage] plugin: not a plugin name", NULL,
                     " (value 'a/b')");
  /* The plugin's own keys are left for the plugin's table. */
  config = load_ok ("[storage]\nplugin = file\nsegment-size = 64MiB\nwhatever = 1\n");
  g_assert_cmpstr (config->storage_plugin, ==, "file");
}

static void
test_config_transport (void)
{
  g_autoptr (SluiceConfig) config = NULL;
  g_autoptr (GError) error = NULL;
  const char *const *core_keys = sluice_config_transport_core_keys ();
  PlugOptions o = { 0 };

  g_assert_true (g_strv_contains (core_keys, "plugin"));
  g_assert_true (g_strv_contains (core_keys, "listen"));
  g_assert_true (g_strv_contains (core_keys, "tls-listen"));
  g_assert_true (g_strv_contains (core_keys, "max-connections"));
  g_assert_false (g_strv_contains (core_keys, "max-body"));

  assert_load_fails ("[transport.m]\nlisten = :1883\n", SLUICE_CONFIG_ERROR_MISSING,
                     FILE_NAME ": [transport.m] plugin: required key is missing", NULL, NULL);
  assert_load_fails ("[transport.m]\nplugin = mqtt\nlisten = :1883;localhost\n",
                     SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [transport.m] listen: not host:port", NULL,
                     " (value 'localhost')");
  assert_load_fails ("[transport.m]\nplugin = mqtt\ntls-listen = ::1:8883\n",
                     SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [transport.m] tls-listen: not host:port", NULL,
                     " (value '::1:8883')");
  assert_load_fails ("[transport.m]\nplugin = mqtt\nlisten = h:70000\n",
                     SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [transport.m] listen: not host:port", NULL,
                     " (value 'h:70000')");
  assert_load_fails ("[transport.m]\nplugin = mqtt\nmax-connections = 0\n",
                     SLUICE_CONFIG_ERROR_BAD_VALUE,
                     FILE_NAME ": [transport.m] max-connections: out of range", NULL,
                     " (value '0')");
  assert_load_fails ("[transport]\nplugin = mqtt\n", SLUICE_CONFIG_ERROR_UNKNOWN_SECTION,
                     FILE_NAME ": [transport]: needs a name, as in [transport.NAME]", NULL,
                     NULL);

  /* What the host does once the plugin is loaded: the plugin's table plus the
   * core's keys; anything else is refused. */
  config = load_ok ("[transport.m]\nplugin = mqtt\nlisten = :0\ncount = 5\n");
  g_assert_true (sluice_config_parse_section (config, "transport.m", plug_table, core_keys, &o,
                                              &error));
  g_assert_no_error (error);
  g_assert_cmpint (o.count, ==, 5);
  sluice_options_clear (plug_table, &o);
  g_clear_pointer (&config, sluice_config_free);

  config = load_ok ("[transport.m]\nplugin = mqtt\nlisten = :0\nmax-packt = 5\n");
  g_assert_false (sluice_config_parse_section (config, "transport.m", plug_table, core_keys,
                                               &o, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
                FILE_NAME ": [transport.m] max-packt: unknown key", "plugin, listen",
                " (value '5')");
}

static void
test_config_stream_names (void)
{
  static const char *const reserved[] = {
    "devices", "twins", "messages", "files", "healthz", "metrics", "jobs",
  };
  static const struct {
    const char *name;
    const char *reason;
  } bad[] = {
    { "", "cannot be empty" },
    { "$events", "cannot start with '$' or '_'" },
    { "_internal", "cannot start with '$' or '_'" },
    { "has space", "only the characters" },
    { "a/b", "only the characters" },
    { "caf\xc3\xa9", "only the characters" },
    { ".", "are not stream names" },
    { "..", "are not stream names" },
  };
  g_autofree char *longest = g_strnfill (255, 'a');
  g_autofree char *too_long = g_strnfill (256, 'a');

  for (gsize i = 0; i < G_N_ELEMENTS (reserved); i++)
    {
      g_autofree char *data = g_strdup_printf ("[stream.%s]\n", reserved[i]);
      g_autofree char *prefix = g_strdup_printf (FILE_NAME ": [stream.%s]: bad stream name '%s': "
                                                 "reserved", reserved[i], reserved[i]);
      assert_load_fails (data, SLUICE_CONFIG_ERROR_BAD_VALUE, prefix, NULL, NULL);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *data = g_strdup_printf ("[stream.%s]\n", bad[i].name);
      g_autofree char *prefix = g_strdup_printf (FILE_NAME ": [stream.%s]: bad stream name",
                                                 bad[i].name);
      assert_load_fails (data, SLUICE_CONFIG_ERROR_BAD_VALUE, prefix, bad[i].reason, NULL);
    }
  {
    g_autofree char *data = g_strdup_printf ("[stream.%s]\n", too_long);
    assert_load_fails (data, SLUICE_CONFIG_ERROR_BAD_VALUE, NULL, "at most 255 characters",
                       NULL);
  }
  {
    g_autofree char *data = g_strdup_printf ("[stream.%s]\n[stream.Dev-1.x_y]\n"
                                             "[stream.devices-2]\n", longest);
    g_autoptr (SluiceConfig) config = load_ok (data);
    g_assert_cmpuint (config->streams->len, ==, 3);
    g_assert_cmpstr (((SluiceConfigStream *) config->streams->pdata[0])->name, ==, longest);
  }
  /* The same rule, as the core's other callers use it. */
  g_assert_true (sluice_config_stream_name_check ("events", NULL));
  g_assert_false (sluice_config_stream_name_check ("jobs", NULL));
  g_assert_false (sluice_config_stream_name_check (NULL, NULL));
  assert_load_fails ("[stream]\npartitions = 1\n", SLUICE_CONFIG_ERROR_UNKNOWN_SECTION,
                     FILE_NAME ": [stream]: needs a name", NULL, NULL);
}

static void
test_config_sections (void)
{
  g_autoptr (SluiceConfig) config = load_ok ("[hub]\n[policy.owner]\nprimary-key = x\n"
                                             "[mqtt-map.sensors]\nfilter = s/#\n"
                                             "[route.r]\nsource = telemetry\n"
                                             "[transport.t]\nplugin = lines\n");
  g_autoptr (SluiceConfig) typo = load_ok ("[hubb]\nhostname = x\n");
  g_autoptr (GError) error = NULL;
  const char *const policy_only[] = { "policy.", NULL };
  const char *const both[] = { "policy.", "mqtt-map.", NULL };

  g_assert_false (sluice_config_check_sections (config, policy_only, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_UNKNOWN_SECTION,
                FILE_NAME ": [mqtt-map.sensors]: unknown section (no plugin owns it)", NULL,
                NULL);
  g_clear_error (&error);
  g_assert_false (sluice_config_check_sections (config, NULL, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_UNKNOWN_SECTION,
                FILE_NAME ": [policy.owner]: unknown section (no plugin owns it)", NULL, NULL);
  g_clear_error (&error);
  g_assert_true (sluice_config_check_sections (config, both, &error));
  g_assert_no_error (error);

  g_assert_false (sluice_config_check_sections (typo, both, &error));
  assert_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_UNKNOWN_SECTION,
                FILE_NAME ": [hubb]: unknown section (no plugin owns it)", NULL, NULL);

  assert_load_fails ("[route]\nsource = telemetry\n", SLUICE_CONFIG_ERROR_UNKNOWN_SECTION,
                     FILE_NAME ": [route]: needs a name", NULL, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/options/size/known", test_size_known);
  g_test_add_func ("/options/size/bad", test_size_bad);
  g_test_add_func ("/options/duration/known", test_duration_known);
  g_test_add_func ("/options/duration/bad", test_duration_bad);
  g_test_add_func ("/options/section/defaults", test_section_defaults);
  g_test_add_func ("/options/section/values", test_section_values);
  g_test_add_func ("/options/section/errors", test_section_errors);
  g_test_add_func ("/options/section/secret-hidden", test_section_secret_hidden);
  g_test_add_func ("/options/section/long-value-cut", test_section_long_value_cut);
  g_test_add_func ("/options/list-sections", test_list_sections);
  g_test_add_func ("/config/defaults", test_config_defaults);
  g_test_add_func ("/config/full", test_config_full);
  g_test_add_func ("/config/file", test_config_file);
  g_test_add_func ("/config/error/syntax", test_config_syntax);
  g_test_add_func ("/config/error/bad-values", test_config_bad_values);
  g_test_add_func ("/config/auth", test_config_auth);
  g_test_add_func ("/config/storage", test_config_storage);
  g_test_add_func ("/config/transport", test_config_transport);
  g_test_add_func ("/config/stream-names", test_config_stream_names);
  g_test_add_func ("/config/sections", test_config_sections);

  return g_test_run ();
}
