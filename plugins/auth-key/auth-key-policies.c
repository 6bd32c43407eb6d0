/* auth-key — shared access policies (`[policy.NAME]`, CONFIG.md).
 *
 * Policies live in the config file so that an operator rotates a key by
 * editing it and sending SIGHUP; the diff below tells the core whose live
 * sessions to close.
 * SPDX-License-Identifier: Apache-2.0 */
#include "auth-key-policies.h"

#include <string.h>

#define POLICY_PREFIX "policy."

typedef struct
{
  char *primary_key;
  char *secondary_key;
  char **rights;
  char **streams;
} PolicyOptions;

static const SluiceOption policy_options[] = {
  { "primary-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PolicyOptions, primary_key), NULL,
    "base64 of 32 bytes; signs SAS tokens and is the Kafka / AMQP password", 0, 0, NULL,
    { NULL } },
  { "secondary-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PolicyOptions, secondary_key),
    NULL, "base64 of 32 bytes; accepted like the primary key (for rotation)", 0, 0, NULL,
    { NULL } },
  { "rights", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (PolicyOptions, rights), NULL,
    "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect, Send, Listen, Manage",
    0, 0, NULL, { NULL } },
  { "streams", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (PolicyOptions, streams), NULL,
    "streams the policy may use; empty: every stream", 0, 0, NULL, { NULL } },
  SLUICE_OPTION_END
};

static void
policy_free (gpointer data)
{
  AuthKeyPolicy *p = data;

  if (p == NULL)
    return;
  g_free (p->name);
  /* Keys are credentials: do not leave them in freed memory. */
  if (p->primary_key != NULL)
    memset (p->primary_key, 0, strlen (p->primary_key));
  if (p->secondary_key != NULL)
    memset (p->secondary_key, 0, strlen (p->secondary_key));
  g_free (p->primary_key);
  g_free (p->secondary_key);
  g_strfreev (p->streams);
  g_free (p);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AuthKeyPolicy, policy_free)

gboolean
auth_key_is_key_text (const char *text)
{
  gsize len = text != NULL ? strlen (text) : 0;
  gsize pad = 0;

  /* 32 bytes are 44 base64 characters ending in exactly one '='. */
  if (len != 44)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (c == '=')
        pad++;
      else if (pad > 0 || !(g_ascii_isalnum (c) || c == '+' || c == '/'))
        return FALSE;
    }
  return pad == 1;
}

gboolean
auth_key_secret_equal (const char *a, const char *b)
{
  gsize len_a, len_b;
  guint8 diff = 0;

  if (a == NULL || b == NULL)
    return FALSE;
  len_a = strlen (a);
  len_b = strlen (b);
  /* Lengths of keys are public (always 44); only the content is secret. */
  if (len_a != len_b)
    return FALSE;
  for (gsize i = 0; i < len_a; i++)
    diff |= (guint8) a[i] ^ (guint8) b[i];
  return diff == 0;
}

static void
set_policy_error (GError **error, SluiceConfig *config, const char *section,
                  const char *key, const char *what)
{
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s: [%s] %s: %s",
               sluice_config_get_path (config), section, key, what);
}

static AuthKeyPolicy *
policy_load (SluiceConfig *config, const char *section, GError **error)
{
  PolicyOptions opts = { NULL };
  g_autoptr (AuthKeyPolicy) p = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *name = section + strlen (POLICY_PREFIX);

  if (name[0] == '\0')
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "%s: [%s]: a policy needs a name ([policy.NAME])",
                   sluice_config_get_path (config), section);
      return NULL;
    }

  if (!sluice_config_parse_section (config, section, policy_options, NULL, &opts, error))
    return NULL;

  p = g_new0 (AuthKeyPolicy, 1);
  p->name = g_strdup (name);

  if (opts.primary_key == NULL)
    {
      set_policy_error (error, config, section, "primary-key",
                        "missing: every policy needs a key");
      goto fail;
    }
  /* The value is not echoed: it is (almost) a key. */
  if (!auth_key_is_key_text (opts.primary_key))
    {
      set_policy_error (error, config, section, "primary-key",
                        "not a key: expected base64 of 32 bytes (44 characters)");
      goto fail;
    }
  if (opts.secondary_key != NULL && !auth_key_is_key_text (opts.secondary_key))
    {
      set_policy_error (error, config, section, "secondary-key",
                        "not a key: expected base64 of 32 bytes (44 characters)");
      goto fail;
    }
  if (!sluice_rights_parse ((const char *const *) opts.rights, &p->rights, &local_error))
    {
      g_autofree char *value = opts.rights != NULL ? g_strjoinv (";", opts.rights) : NULL;

      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s: [%s] rights: %s (value '%s')",
                   sluice_config_get_path (config), section, local_error->message,
                   value != NULL ? value : "");
      goto fail;
    }
  for (gsize i = 0; opts.streams != NULL && opts.streams[i] != NULL; i++)
    {
      if (!sluice_stream_name_is_valid (g_strstrip (opts.streams[i])))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "%s: [%s] streams: not a valid stream name (value '%s')",
                       sluice_config_get_path (config), section, opts.streams[i]);
          goto fail;
        }
    }

  p->primary_key = g_steal_pointer (&opts.primary_key);
  p->secondary_key = g_steal_pointer (&opts.secondary_key);
  if (opts.streams != NULL && opts.streams[0] != NULL)
    p->streams = g_steal_pointer (&opts.streams);
  sluice_options_clear (policy_options, &opts);
  return g_steal_pointer (&p);

fail:
  if (opts.primary_key != NULL)
    memset (opts.primary_key, 0, strlen (opts.primary_key));
  if (opts.secondary_key != NULL)
    memset (opts.secondary_key, 0, strlen (opts.secondary_key));
  sluice_options_clear (policy_options, &opts);
  return NULL;
}

GHashTable *
auth_key_policies_load (SluiceConfig *config, GError **error)
{
  g_autoptr (GHashTable) table =
    g_hash_table_new_full (g_str_hash, g_str_equal, NULL, policy_free);
  g_auto (GStrv) sections = sluice_config_list_sections (config, POLICY_PREFIX);

  for (gsize i = 0; sections != NULL && sections[i] != NULL; i++)
    {
      AuthKeyPolicy *p = policy_load (config, sections[i], error);

      if (p == NULL)
        return NULL;
      /* GKeyFile merges repeated groups, so names are unique here; the key
       * of the table is the policy's own name string. */
      g_hash_table_replace (table, p->name, p);
    }

  return g_steal_pointer (&table);
}

static gboolean
policy_same (const AuthKeyPolicy *a, const AuthKeyPolicy *b)
{
  if (!auth_key_secret_equal (a->primary_key, b->primary_key))
    return FALSE;
  if ((a->secondary_key == NULL) != (b->secondary_key == NULL))
    return FALSE;
  if (a->secondary_key != NULL && !auth_key_secret_equal (a->secondary_key, b->secondary_key))
    return FALSE;
  /* Principals carry a copy of the rights and streams, so a change there
   * also needs the sessions to reconnect and pick up the new ones. */
  if (a->rights != b->rights)
    return FALSE;
  if ((a->streams == NULL) != (b->streams == NULL))
    return FALSE;
  if (a->streams != NULL
      && !g_strv_equal ((const char *const *) a->streams, (const char *const *) b->streams))
    return FALSE;
  return TRUE;
}

static gint
compare_ids (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char **
auth_key_policies_diff (GHashTable *old, GHashTable *new_table)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, old);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const AuthKeyPolicy *before = value;
      const AuthKeyPolicy *after = g_hash_table_lookup (new_table, before->name);

      if (after == NULL || !policy_same (before, after))
        g_ptr_array_add (ids, g_strconcat ("policy/", before->name, NULL));
    }

  g_ptr_array_sort (ids, compare_ids);
  g_ptr_array_add (ids, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&ids), FALSE);
}
