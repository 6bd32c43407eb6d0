/* auth-x509 — `[auth.NAME] policy-map` (see auth-x509-map.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "auth-x509-map.h"

#include <string.h>

#define SEPARATOR "=>"

typedef struct
{
  char *primary_key;
  char *secondary_key;
  char **rights;
  char **streams;
} PolicySection;

/* The keys of `[policy.*]` (CONFIG.md); the keys are auth-key's business,
 * they are declared only so that their presence is not an error. */
static const SluiceOption policy_section_options[] = {
  { "primary-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PolicySection, primary_key), NULL,
    "read by auth-key", 0, 0, NULL, { NULL } },
  { "secondary-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PolicySection, secondary_key),
    NULL, "read by auth-key", 0, 0, NULL, { NULL } },
  { "rights", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (PolicySection, rights), NULL,
    "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect, Send, Listen, Manage",
    0, 0, NULL, { NULL } },
  { "streams", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (PolicySection, streams), NULL,
    "streams the policy may use; empty: every stream", 0, 0, NULL, { NULL } },
  SLUICE_OPTION_END
};

struct _X509PolicyMap
{
  gatomicrefcount ref;
  GHashTable *by_cn;          /* CN -> X509Policy* (borrowed from by_name) */
  GHashTable *by_name;        /* policy name -> X509Policy* (owned) */
};

static void
policy_free (gpointer data)
{
  X509Policy *p = data;

  g_free (p->name);
  g_strfreev (p->streams);
  g_free (p);
}

static X509Policy *
policy_read (SluiceConfig *config, const char *name, GError **error)
{
  g_autofree char *section = g_strconcat ("policy.", name, NULL);
  g_auto (GStrv) sections = sluice_config_list_sections (config, "policy.");
  PolicySection opts = { NULL, NULL, NULL, NULL };
  X509Policy *p;
  guint rights = 0;

  if (sections == NULL || !g_strv_contains ((const char *const *) sections, section))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "policy-map: no section [%s] (value '%s')", section, name);
      return NULL;
    }
  if (!sluice_config_parse_section (config, section, policy_section_options, NULL, &opts,
                                    error))
    return NULL;
  if (opts.rights != NULL
      && !sluice_rights_parse ((const char *const *) opts.rights, &rights, error))
    {
      g_prefix_error (error, "policy-map: [%s] rights: ", section);
      sluice_options_clear (policy_section_options, &opts);
      return NULL;
    }
  p = g_new0 (X509Policy, 1);
  p->name = g_strdup (name);
  p->rights = rights;
  if (opts.streams != NULL && opts.streams[0] != NULL)
    p->streams = g_strdupv (opts.streams);
  sluice_options_clear (policy_section_options, &opts);
  return p;
}

X509PolicyMap *
x509_policy_map_load (const char *const *pairs, SluiceConfig *config, GError **error)
{
  g_autoptr (X509PolicyMap) map = g_new0 (X509PolicyMap, 1);

  g_atomic_ref_count_init (&map->ref);
  map->by_cn = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  map->by_name = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, policy_free);

  for (gsize i = 0; pairs != NULL && pairs[i] != NULL; i++)
    {
      const char *sep = strstr (pairs[i], SEPARATOR);
      g_autofree char *cn = NULL;
      g_autofree char *name = NULL;
      X509Policy *policy;

      if (sep == NULL)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "policy-map: expected CN=>policy (value '%s')", pairs[i]);
          return NULL;
        }
      cn = g_strstrip (g_strndup (pairs[i], sep - pairs[i]));
      name = g_strstrip (g_strdup (sep + strlen (SEPARATOR)));
      if (*cn == '\0' || *name == '\0')
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "policy-map: empty CN or policy (value '%s')", pairs[i]);
          return NULL;
        }
      if (g_hash_table_contains (map->by_cn, cn))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "policy-map: CN '%s' is mapped twice (value '%s')", cn, pairs[i]);
          return NULL;
        }
      policy = g_hash_table_lookup (map->by_name, name);
      if (policy == NULL)
        {
          policy = policy_read (config, name, error);
          if (policy == NULL)
            return NULL;
          g_hash_table_insert (map->by_name, policy->name, policy);
        }
      g_hash_table_insert (map->by_cn, g_steal_pointer (&cn), policy);
    }
  return g_steal_pointer (&map);
}

X509PolicyMap *
x509_policy_map_ref (X509PolicyMap *map)
{
  g_atomic_ref_count_inc (&map->ref);
  return map;
}

void
x509_policy_map_unref (X509PolicyMap *map)
{
  if (map == NULL || !g_atomic_ref_count_dec (&map->ref))
    return;
  g_hash_table_unref (map->by_cn);
  g_hash_table_unref (map->by_name);
  g_free (map);
}

guint
x509_policy_map_size (X509PolicyMap *map)
{
  return g_hash_table_size (map->by_cn);
}

const X509Policy *
x509_policy_map_lookup (X509PolicyMap *map, const char *cn)
{
  return g_hash_table_lookup (map->by_cn, cn);
}

static gboolean
strv_equal0 (char **a, char **b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_strv_equal ((const char *const *) a, (const char *const *) b);
}

gboolean
x509_policy_map_same (X509PolicyMap *old, X509PolicyMap *fresh, const char *policy)
{
  const X509Policy *a = g_hash_table_lookup (old->by_name, policy);
  const X509Policy *b = g_hash_table_lookup (fresh->by_name, policy);
  GHashTableIter it;
  gpointer cn, value;

  if (a == NULL || b == NULL || a->rights != b->rights || !strv_equal0 (a->streams, b->streams))
    return FALSE;
  g_hash_table_iter_init (&it, old->by_cn);
  while (g_hash_table_iter_next (&it, &cn, &value))
    {
      const X509Policy *now = g_hash_table_lookup (fresh->by_cn, cn);

      if (value == a && (now == NULL || g_strcmp0 (now->name, policy) != 0))
        return FALSE;
    }
  return TRUE;
}
