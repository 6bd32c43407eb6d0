/* Sluice core — the configuration file (CONFIG.md): reading it and parsing
 * the core's own sections with typed option tables.
 *
 * Plugin keys are not checked here: the host checks them with
 * sluice_config_parse_section() once it has loaded the plugins, and
 * sluice_config_check_sections() reports sections nobody owns.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"

#include <string.h>

G_DEFINE_QUARK (sluice-config-error-quark, sluice_config_error)

/* ---- option tables of the core's sections ---- */

static const char *const log_levels[] = { "error", "warning", "info", "debug", NULL };
static const char *const durabilities[] = { "none", "interval", "batch", NULL };

typedef struct {
  char *hostname;
  char *data_dir;
  char *tls_cert;
  char *tls_key;
  char **plugin_path;
  gint64 workers;
  int log_level;
} HubOptions;

static const SluiceOption hub_table[] = {
  { "hostname", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (HubOptions, hostname), "localhost",
    "host name clients use (SAS resource URIs)", 0, 0, NULL, { NULL } },
  /* Relative to the current directory of sluiced, as a shell user expects;
   * it is not made relative to the config file. */
  { "data-dir", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (HubOptions, data_dir), "./data",
    "where storage keeps its data", 0, 0, NULL, { NULL } },
  { "tls-cert", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (HubOptions, tls_cert), NULL,
    "PEM certificate shared by TLS listeners", 0, 0, NULL, { NULL } },
  { "tls-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (HubOptions, tls_key), NULL,
    "PEM private key shared by TLS listeners", 0, 0, NULL, { NULL } },
  { "plugin-path", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (HubOptions, plugin_path), NULL,
    "folders searched for plugins after $SLUICE_PLUGIN_PATH", 0, 0, NULL, { NULL } },
  { "workers", SLUICE_OPTION_INT, G_STRUCT_OFFSET (HubOptions, workers), "0",
    "I/O worker threads (0: one per core)", 0, 4096, NULL, { NULL } },
  { "log-level", SLUICE_OPTION_ENUM, G_STRUCT_OFFSET (HubOptions, log_level), "info",
    "error, warning, info or debug", 0, 0, log_levels, { NULL } },
  SLUICE_OPTION_END
};

typedef struct {
  char **chain;
  gboolean allow_anonymous;
} AuthOptions;

static const SluiceOption auth_table[] = {
  { "chain", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (AuthOptions, chain), NULL,
    "auth instances asked in order", 0, 0, NULL, { NULL } },
  { "allow-anonymous", SLUICE_OPTION_BOOL, G_STRUCT_OFFSET (AuthOptions, allow_anonymous),
    "false", "let clients without credentials in as anonymous", 0, 0, NULL, { NULL } },
  SLUICE_OPTION_END
};

typedef struct {
  char *plugin;
} PluginOptions;

static const SluiceOption plugin_table[] = {
  { "plugin", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PluginOptions, plugin), NULL,
    "the plugin that serves this section", 0, 0, NULL, { NULL } },
  SLUICE_OPTION_END
};

static const SluiceOption transport_table[] = {
  { "plugin", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (SluiceConfigTransport, plugin), NULL,
    "the transport plugin", 0, 0, NULL, { NULL } },
  { "listen", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (SluiceConfigTransport, listen), NULL,
    "plain listeners, host:port", 0, 0, NULL, { NULL } },
  { "tls-listen", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (SluiceConfigTransport, tls_listen),
    NULL, "TLS listeners, host:port", 0, 0, NULL, { NULL } },
  { "tls-cert", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (SluiceConfigTransport, tls_cert), NULL,
    "PEM certificate (default: [hub] tls-cert)", 0, 0, NULL, { NULL } },
  { "tls-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (SluiceConfigTransport, tls_key), NULL,
    "PEM private key (default: [hub] tls-key)", 0, 0, NULL, { NULL } },
  { "tls-ca", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (SluiceConfigTransport, tls_ca), NULL,
    "CA bundle for client certificates", 0, 0, NULL, { NULL } },
  { "max-connections", SLUICE_OPTION_INT,
    G_STRUCT_OFFSET (SluiceConfigTransport, max_connections), "10000",
    "open connections at most", 1, 10000000, NULL, { NULL } },
  SLUICE_OPTION_END
};

static const char *const transport_core_keys[] = {
  "plugin", "listen", "tls-listen", "tls-cert", "tls-key", "tls-ca", "max-connections", NULL,
};

typedef struct {
  gint64 partitions;
  char *retention_time;
  char *retention_size;
  int durability;
  gint64 interval_ms;
  guint64 max_message;
} StreamOptions;

/* Retention takes `none` besides a value, so it is read as text and checked
 * below. */
static const SluiceOption stream_table[] = {
  { "partitions", SLUICE_OPTION_INT, G_STRUCT_OFFSET (StreamOptions, partitions), "4",
    "number of partitions (can grow, never shrink)", 1, 100000, NULL, { NULL } },
  { "retention-time", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (StreamOptions, retention_time),
    "7d", "drop data older than this (none: keep)", 0, 0, NULL, { NULL } },
  { "retention-size", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (StreamOptions, retention_size),
    "none", "drop the oldest data past this size per partition (none: keep)", 0, 0, NULL,
    { NULL } },
  { "durability", SLUICE_OPTION_ENUM, G_STRUCT_OFFSET (StreamOptions, durability), "batch",
    "none, interval or batch", 0, 0, durabilities, { NULL } },
  { "interval", SLUICE_OPTION_DURATION, G_STRUCT_OFFSET (StreamOptions, interval_ms), "200ms",
    "sync period for durability = interval", 1, 24 * 60 * 60 * 1000, NULL, { NULL } },
  { "max-message", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (StreamOptions, max_message), "1MiB",
    "largest record batch accepted", 1, G_GINT64_CONSTANT (1) << 30, NULL, { NULL } },
  SLUICE_OPTION_END
};

/* ---- names ---- */

static const char *const reserved_stream_names[] = {
  "devices", "twins", "messages", "files", "healthz", "metrics", "jobs", NULL,
};

static gboolean
name_chars_ok (const char *name)
{
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

gboolean
sluice_config_stream_name_check (const char *name, const char **why)
{
  const char *dummy;
  gsize len = name != NULL ? strlen (name) : 0;

  if (why == NULL)
    why = &dummy;
  if (len == 0)
    *why = "a stream name cannot be empty";
  else if (len > 255)
    *why = "a stream name has at most 255 characters";
  else if (name[0] == '$' || name[0] == '_')
    *why = "a stream name cannot start with '$' or '_'";
  else if (!name_chars_ok (name))
    *why = "a stream name has only the characters A-Z a-z 0-9 . _ -";
  /* Stream names become path segments (URLs, storage folders). */
  else if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    *why = "'.' and '..' are not stream names";
  else if (g_strv_contains (reserved_stream_names, name))
    *why = "reserved (devices, twins, messages, files, healthz, metrics and jobs are "
           "API paths); choose another name";
  else
    return TRUE;
  return FALSE;
}

/* Plugin names become file names (`transport-NAME.la`) and symbol names. */
static gboolean
plugin_name_ok (const char *name)
{
  if (name == NULL || *name == '\0' || strlen (name) > 64)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

/* NAME of `[family.NAME]`: it appears in logs and principal ids. */
static gboolean
instance_name_ok (const char *section, const char *name, const char *path, GError **error)
{
  if (*name == '\0' || strlen (name) > 255 || !name_chars_ok (name))
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section, NULL, NULL,
                               "bad instance name '%s' (use 1-255 of A-Z a-z 0-9 . _ -)",
                               name);
      return FALSE;
    }
  return TRUE;
}

/* `host:port`, `[v6]:port`, `:port` (all addresses). */
static gboolean
listen_address_ok (const char *addr)
{
  const char *colon = strrchr (addr, ':');
  guint64 port;

  if (colon == NULL)
    return FALSE;
  if (addr[0] == '[')
    {
      const char *close = strchr (addr, ']');
      if (close == NULL || close + 1 != colon || close == addr + 1)
        return FALSE;
    }
  else if (memchr (addr, ':', (gsize) (colon - addr)) != NULL)
    return FALSE; /* a bare IPv6 address needs brackets */
  return g_ascii_string_to_unsigned (colon + 1, 10, 0, 65535, &port, NULL);
}

/* ---- the sections ---- */

static gboolean
parse_hub (SluiceConfig *config, GError **error)
{
  HubOptions o = { 0 };

  if (!sluice_config_parse_section (config, "hub", hub_table, NULL, &o, error))
    return FALSE;
  config->hostname = g_steal_pointer (&o.hostname);
  config->data_dir = g_steal_pointer (&o.data_dir);
  config->tls_cert = g_steal_pointer (&o.tls_cert);
  config->tls_key = g_steal_pointer (&o.tls_key);
  config->plugin_path = g_steal_pointer (&o.plugin_path);
  config->workers = o.workers;
  config->log_level = g_strdup (log_levels[o.log_level]);

  if (*config->hostname == '\0')
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, "hub",
                               "hostname", "", "cannot be empty");
      return FALSE;
    }
  if (*config->data_dir == '\0')
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, "hub",
                               "data-dir", "", "cannot be empty");
      return FALSE;
    }
  return TRUE;
}

/* The `plugin` key of a section whose other keys belong to that plugin. */
static gboolean
parse_plugin_key (SluiceConfig *config, const char *section, const char *example,
                  char **out, GError **error)
{
  PluginOptions o = { 0 };

  if (!sluice_config_parse_section_full (config, section, plugin_table, NULL, TRUE, &o, error))
    return FALSE;
  if (o.plugin == NULL)
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_MISSING, config->path, section,
                               "plugin", NULL, "required key is missing (e.g. plugin = %s)",
                               example);
      return FALSE;
    }
  if (!plugin_name_ok (o.plugin))
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, section,
                               "plugin", o.plugin,
                               "not a plugin name (1-64 of A-Z a-z 0-9 _ -)");
      g_free (o.plugin);
      return FALSE;
    }
  *out = o.plugin;
  return TRUE;
}

static gboolean
parse_storage (SluiceConfig *config, GError **error)
{
  /* No [storage] at all: the file plugin, as in the quickstart. */
  if (!g_key_file_has_group (config->keyfile, "storage"))
    {
      config->storage_plugin = g_strdup ("file");
      return TRUE;
    }
  return parse_plugin_key (config, "storage", "file", &config->storage_plugin, error);
}

static gboolean
parse_auth (SluiceConfig *config, GError **error)
{
  AuthOptions o = { 0 };
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *raw = g_key_file_get_value (config->keyfile, "auth", "chain", NULL);

  if (!sluice_config_parse_section (config, "auth", auth_table, NULL, &o, error))
    return FALSE;
  config->auth_chain = g_steal_pointer (&o.chain);
  config->allow_anonymous = o.allow_anonymous;

  for (gsize i = 0; config->auth_chain != NULL && config->auth_chain[i] != NULL; i++)
    {
      const char *entry = config->auth_chain[i];
      g_autofree char *section = g_strconcat ("auth.", entry, NULL);

      if (!g_hash_table_add (seen, (gpointer) entry))
        {
          sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, "auth",
                                   "chain", raw, "'%s' is listed twice", entry);
          return FALSE;
        }
      if (!g_key_file_has_group (config->keyfile, section))
        {
          sluice_config_set_error (error, SLUICE_CONFIG_ERROR_MISSING, config->path, "auth",
                                   "chain", raw,
                                   "chain entry '%s' has no [%s] section; add one with "
                                   "plugin = ...", entry, section);
          return FALSE;
        }
    }
  return TRUE;
}

static void
config_auth_free (SluiceConfigAuth *a)
{
  g_free (a->name);
  g_free (a->plugin);
  g_free (a);
}

static void
config_transport_free (SluiceConfigTransport *t)
{
  sluice_options_clear (transport_table, t);
  g_free (t->name);
  g_free (t);
}

static void
config_stream_free (SluiceConfigStream *s)
{
  g_free (s->name);
  g_free (s);
}

static gboolean
parse_auth_instance (SluiceConfig *config, const char *section, GError **error)
{
  const char *name = section + strlen ("auth.");
  g_autofree char *plugin = NULL;
  SluiceConfigAuth *a;

  if (!instance_name_ok (section, name, config->path, error)
      || !parse_plugin_key (config, section, "key", &plugin, error))
    return FALSE;
  a = g_new0 (SluiceConfigAuth, 1);
  a->name = g_strdup (name);
  a->plugin = g_steal_pointer (&plugin);
  g_ptr_array_add (config->auths, a);
  return TRUE;
}

static gboolean
check_listen_list (SluiceConfig *config, const char *section, const char *key,
                   char **list, GError **error)
{
  for (gsize i = 0; list != NULL && list[i] != NULL; i++)
    if (!listen_address_ok (list[i]))
      {
        sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, section,
                                 key, list[i],
                                 "not host:port (e.g. 127.0.0.1:1883, [::1]:1883, :1883)");
        return FALSE;
      }
  return TRUE;
}

static gboolean
parse_transport (SluiceConfig *config, const char *section, GError **error)
{
  const char *name = section + strlen ("transport.");
  g_autoptr (GError) local = NULL;
  SluiceConfigTransport *t;

  if (!instance_name_ok (section, name, config->path, error))
    return FALSE;
  t = g_new0 (SluiceConfigTransport, 1);
  /* Other keys are the plugin's; the host checks them once it is loaded. */
  if (!sluice_config_parse_section_full (config, section, transport_table, NULL, TRUE, t,
                                         &local))
    goto fail;
  t->name = g_strdup (name);
  if (t->plugin == NULL)
    {
      sluice_config_set_error (&local, SLUICE_CONFIG_ERROR_MISSING, config->path, section,
                               "plugin", NULL, "required key is missing (e.g. plugin = mqtt)");
      goto fail;
    }
  if (!plugin_name_ok (t->plugin))
    {
      sluice_config_set_error (&local, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, section,
                               "plugin", t->plugin,
                               "not a plugin name (1-64 of A-Z a-z 0-9 _ -)");
      goto fail;
    }
  if (!check_listen_list (config, section, "listen", t->listen, &local)
      || !check_listen_list (config, section, "tls-listen", t->tls_listen, &local))
    goto fail;
  g_ptr_array_add (config->transports, t);
  return TRUE;

fail:
  config_transport_free (t);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* `none` or `0` is no limit. */
static gboolean
parse_retention (SluiceConfig *config, const char *section, const char *key,
                 const char *text, gboolean is_size, guint64 *out, GError **error)
{
  g_autofree char *copy = g_strstrip (g_strdup (text));
  g_autofree char *what = NULL;

  if (strcmp (copy, "none") == 0)
    {
      *out = 0;
      return TRUE;
    }
  if (!sluice_parse_units (copy, is_size, out, &what))
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, section, key,
                               text, "%s (or none)", what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_stream (SluiceConfig *config, const char *section, GError **error)
{
  const char *name = section + strlen ("stream.");
  const char *why = NULL;
  StreamOptions o = { 0 };
  SluiceConfigStream *s;
  guint64 time_ms = 0, size = 0;

  if (!sluice_config_stream_name_check (name, &why))
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, config->path, section,
                               NULL, NULL, "bad stream name '%s': %s", name, why);
      return FALSE;
    }
  if (!sluice_config_parse_section (config, section, stream_table, NULL, &o, error))
    return FALSE;
  if (!parse_retention (config, section, "retention-time", o.retention_time, FALSE, &time_ms,
                        error)
      || !parse_retention (config, section, "retention-size", o.retention_size, TRUE, &size,
                           error))
    {
      sluice_options_clear (stream_table, &o);
      return FALSE;
    }

  s = g_new0 (SluiceConfigStream, 1);
  s->name = g_strdup (name);
  s->partitions = o.partitions;
  s->retention_time_ms = (gint64) time_ms;
  s->retention_size = size;
  s->durability = (SluiceDurability) o.durability;
  s->interval_ms = o.interval_ms;
  s->max_message = o.max_message;
  g_ptr_array_add (config->streams, s);
  sluice_options_clear (stream_table, &o);
  return TRUE;
}

/* Families whose sections are `[family.NAME]`. */
static const char *const core_families[] = { "auth.", "transport.", "stream.", "route.", NULL };
static const char *const core_singles[] = { "hub", "storage", "auth", NULL };

static gboolean
is_core_section (const char *section)
{
  if (g_strv_contains (core_singles, section))
    return TRUE;
  for (const char *const *f = core_families; *f != NULL; f++)
    if (g_str_has_prefix (section, *f))
      return TRUE;
  return FALSE;
}

static gboolean
parse_families (SluiceConfig *config, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (config->keyfile, NULL);

  for (gsize i = 0; groups[i] != NULL; i++)
    {
      const char *g = groups[i];
      gboolean ok = TRUE;

      /* `[transport]` is a likely slip for `[transport.NAME]`; say so rather
       * than "unknown section". */
      for (const char *const *f = core_families; *f != NULL; f++)
        {
          gsize flen = strlen (*f) - 1;
          if (strncmp (g, *f, flen) == 0 && g[flen] == '\0'
              && strcmp (*f, "auth.") != 0)
            {
              sluice_config_set_error (error, SLUICE_CONFIG_ERROR_UNKNOWN_SECTION, config->path,
                                       g, NULL, NULL, "needs a name, as in [%sNAME]", *f);
              return FALSE;
            }
        }

      if (g_str_has_prefix (g, "auth."))
        ok = parse_auth_instance (config, g, error);
      else if (g_str_has_prefix (g, "transport."))
        ok = parse_transport (config, g, error);
      else if (g_str_has_prefix (g, "stream."))
        ok = parse_stream (config, g, error);
      else if (g_str_has_prefix (g, "route."))
        /* Kept raw in the key file until routing lands. */
        ok = instance_name_ok (g, g + strlen ("route."), config->path, error);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static SluiceConfig *
config_new (const char *path)
{
  SluiceConfig *config = g_new0 (SluiceConfig, 1);

  config->path = g_strdup (path != NULL ? path : "(config)");
  config->keyfile = g_key_file_new ();
  g_key_file_set_list_separator (config->keyfile, ';');
  config->auths = g_ptr_array_new_with_free_func ((GDestroyNotify) config_auth_free);
  config->transports = g_ptr_array_new_with_free_func ((GDestroyNotify) config_transport_free);
  config->streams = g_ptr_array_new_with_free_func ((GDestroyNotify) config_stream_free);
  return config;
}

SluiceConfig *
sluice_config_load_from_data (const char *path, const char *data, GError **error)
{
  g_autoptr (SluiceConfig) config = config_new (path);
  g_autoptr (GError) local = NULL;

  g_return_val_if_fail (data != NULL, NULL);

  if (!g_key_file_load_from_data (config->keyfile, data, (gsize) -1, G_KEY_FILE_NONE, &local))
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_PARSE, config->path, NULL, NULL, NULL,
                               "syntax error: %s", local->message);
      return NULL;
    }

  if (!parse_hub (config, error)
      || !parse_storage (config, error)
      || !parse_auth (config, error)
      || !parse_families (config, error))
    return NULL;
  return g_steal_pointer (&config);
}

SluiceConfig *
sluice_config_load (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  g_autoptr (GError) local = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &data, NULL, &local))
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_MISSING, path, NULL, NULL, NULL,
                               "cannot read the configuration file: %s", local->message);
      return NULL;
    }
  if (!g_utf8_validate (data, -1, NULL))
    {
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_PARSE, path, NULL, NULL, NULL,
                               "syntax error: the file is not valid UTF-8");
      return NULL;
    }
  return sluice_config_load_from_data (path, data, error);
}

gboolean
sluice_config_check_sections (SluiceConfig *config, const char *const *owned_prefixes,
                              GError **error)
{
  g_auto (GStrv) groups = NULL;

  g_return_val_if_fail (config != NULL, FALSE);

  groups = g_key_file_get_groups (config->keyfile, NULL);
  for (gsize i = 0; groups[i] != NULL; i++)
    {
      gboolean owned = is_core_section (groups[i]);

      for (const char *const *p = owned_prefixes; !owned && p != NULL && *p != NULL; p++)
        owned = g_str_has_prefix (groups[i], *p);
      if (!owned)
        {
          sluice_config_set_error (error, SLUICE_CONFIG_ERROR_UNKNOWN_SECTION, config->path,
                                   groups[i], NULL, NULL,
                                   "unknown section (no plugin owns it)");
          return FALSE;
        }
    }
  return TRUE;
}

const char *const *
sluice_config_transport_core_keys (void)
{
  return transport_core_keys;
}

void
sluice_config_free (SluiceConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->path);
  g_clear_pointer (&config->keyfile, g_key_file_unref);
  g_free (config->hostname);
  g_free (config->data_dir);
  g_free (config->tls_cert);
  g_free (config->tls_key);
  g_strfreev (config->plugin_path);
  g_free (config->log_level);
  g_free (config->storage_plugin);
  g_strfreev (config->auth_chain);
  g_clear_pointer (&config->auths, g_ptr_array_unref);
  g_clear_pointer (&config->transports, g_ptr_array_unref);
  g_clear_pointer (&config->streams, g_ptr_array_unref);
  g_free (config);
}
