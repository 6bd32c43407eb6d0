/* transport-mqtt — `[mqtt-acl.NAME]`: parsing and the publish / subscribe
 * decisions. See mqtt-acl.h for the rules.
 *
 * The entries are a plain list walked on every check: an operator writes a
 * handful of them, and the principal test (an enum compare, then a short
 * glob) rejects most entries before any topic is looked at.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-acl.h"

#include "mqtt-topic.h"

#include <stdarg.h>
#include <string.h>

#define ACL_PREFIX "mqtt-acl."
#define DEVICE_PREFIX "device:"
#define POLICY_PREFIX "policy:"

/* Expanded filters up to this size are built on the stack, so a check on
 * the publish path does not allocate. */
#define EXPAND_STACK_SIZE 512

typedef struct {
  char *text;
  gsize len;
  guint n_subst;                    /* occurrences of `%d` */
} AclFilter;

typedef struct {
  char *section;
  MqttAclWhoKind kind;
  char *pattern;                    /* device glob or policy name; NULL for
                                     * anonymous */
  GPtrArray *publish;               /* AclFilter* */
  GPtrArray *subscribe;             /* AclFilter* */
} AclEntry;

struct _MqttAcl {
  GPtrArray *entries;               /* AclEntry*, file order */
};

typedef struct {
  char *principal;
  char **publish;
  char **subscribe;
} AclOptions;

static const SluiceOption acl_options[] = {
  { "principal", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (AclOptions, principal), NULL,
    "device:{pattern} (`*` is any run of characters), policy:{name} or anonymous",
    0, 0, NULL, { NULL } },
  { "publish", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (AclOptions, publish), NULL,
    "topic filters the principal may publish to; %d is the device id", 0, 0, NULL,
    { NULL } },
  { "subscribe", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (AclOptions, subscribe), NULL,
    "topic filters the principal may subscribe within; %d is the device id", 0, 0,
    NULL, { NULL } },
  SLUICE_OPTION_END
};

static void
acl_filter_free (gpointer data)
{
  AclFilter *f = data;

  g_free (f->text);
  g_free (f);
}

static void
acl_entry_free (gpointer data)
{
  AclEntry *e = data;

  if (e == NULL)
    return;
  g_free (e->section);
  g_free (e->pattern);
  g_clear_pointer (&e->publish, g_ptr_array_unref);
  g_clear_pointer (&e->subscribe, g_ptr_array_unref);
  g_free (e);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclEntry, acl_entry_free)

void
mqtt_acl_free (MqttAcl *acl)
{
  if (acl == NULL)
    return;
  g_clear_pointer (&acl->entries, g_ptr_array_unref);
  g_free (acl);
}

guint
mqtt_acl_count (const MqttAcl *acl)
{
  g_return_val_if_fail (acl != NULL, 0);
  return acl->entries->len;
}

gboolean
mqtt_acl_glob_match (const char *pattern, const char *text)
{
  const char *p = pattern, *t = text;
  const char *star = NULL, *resume = NULL;

  g_return_val_if_fail (pattern != NULL && text != NULL, FALSE);

  /* Greedy with one backtrack point: on a mismatch the last `*` swallows
   * one more character. Linear in practice, never recursive. */
  while (*t != '\0')
    {
      if (*p == '*')
        {
          star = p++;
          resume = t;
        }
      else if (*p == *t)
        {
          p++;
          t++;
        }
      else if (star != NULL)
        {
          p = star + 1;
          t = ++resume;
        }
      else
        return FALSE;
    }
  while (*p == '*')
    p++;
  return *p == '\0';
}

static void
set_acl_error (GError **error, SluiceConfig *config, const char *section,
               const char *key, const char *value, const char *format, ...)
  G_GNUC_PRINTF (6, 7);

static void
set_acl_error (GError **error, SluiceConfig *config, const char *section,
               const char *key, const char *value, const char *format, ...)
{
  g_autofree char *what = NULL;
  va_list ap;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (value != NULL)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s: [%s] %s: %s (value '%s')",
                 sluice_config_get_path (config), section, key, what, value);
  else
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s: [%s] %s: %s",
                 sluice_config_get_path (config), section, key, what);
}

static guint
count_subst (const char *text)
{
  guint n = 0;

  for (const char *p = strstr (text, "%d"); p != NULL; p = strstr (p + 2, "%d"))
    n++;
  return n;
}

/* Write `f` with each `%d` replaced by `id` into `out` (`need` bytes). */
static void
expand_into (const AclFilter *f, const char *id, gsize id_len, char *out)
{
  const char *r = f->text;
  const char *end = f->text + f->len;
  char *w = out;

  for (const char *p = strstr (r, "%d"); p != NULL; p = strstr (r, "%d"))
    {
      memcpy (w, r, p - r);
      w += p - r;
      memcpy (w, id, id_len);
      w += id_len;
      r = p + 2;
    }
  memcpy (w, r, end - r);
}

static gsize
expanded_len (const AclFilter *f, gsize id_len)
{
  return f->len - 2 * (gsize) f->n_subst + id_len * f->n_subst;
}

static AclFilter *
filter_load (SluiceConfig *config, const char *section, const char *key,
             MqttAclWhoKind kind, char *text, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *probe = NULL;
  MqttTopicFilter parsed;
  AclFilter *f;

  g_strstrip (text);
  f = g_new0 (AclFilter, 1);
  f->text = g_strdup (text);
  f->len = strlen (text);
  f->n_subst = count_subst (text);

  if (f->n_subst > 0 && kind != MQTT_ACL_WHO_DEVICE)
    {
      set_acl_error (error, config, section, key, text,
                     "%%d is the device id, and only a device principal has one");
      acl_filter_free (f);
      return NULL;
    }
  /* Validate with a stand-in id of the same length as `%d`, so the byte
   * offsets in the topic module's messages point at the text as written. */
  probe = g_malloc (expanded_len (f, 2) + 1);
  expand_into (f, "dd", 2, probe);
  probe[expanded_len (f, 2)] = '\0';
  if (!mqtt_topic_filter_parse (probe, strlen (probe), NULL, &parsed, &local_error))
    {
      set_acl_error (error, config, section, key, text, "%s", local_error->message);
      acl_filter_free (f);
      return NULL;
    }
  if (parsed.share_name != NULL)
    {
      set_acl_error (error, config, section, key, text,
                     "grant the filter itself: a subscription to $share/{group}/{filter} "
                     "is judged by {filter}");
      acl_filter_free (f);
      return NULL;
    }
  return f;
}

static gboolean
filters_load (SluiceConfig *config, const char *section, const char *key,
              MqttAclWhoKind kind, char **texts, GPtrArray **out, GError **error)
{
  g_autoptr (GPtrArray) filters = g_ptr_array_new_with_free_func (acl_filter_free);

  for (gsize i = 0; texts != NULL && texts[i] != NULL; i++)
    {
      AclFilter *f = filter_load (config, section, key, kind, texts[i], error);

      if (f == NULL)
        return FALSE;
      g_ptr_array_add (filters, f);
    }
  *out = g_steal_pointer (&filters);
  return TRUE;
}

static gboolean
policy_exists (SluiceConfig *config, const char *name)
{
  g_autofree char *section = g_strconcat ("policy.", name, NULL);
  g_auto (GStrv) sections = sluice_config_list_sections (config, section);

  return g_strv_contains ((const char *const *) sections, section);
}

static gboolean
principal_load (SluiceConfig *config, const char *section, const char *text,
                AclEntry *e, GError **error)
{
  if (text == NULL)
    {
      set_acl_error (error, config, section, "principal", NULL,
                     "missing: say whom the entry grants (device:{pattern}, "
                     "policy:{name} or anonymous)");
      return FALSE;
    }
  if (g_str_has_prefix (text, DEVICE_PREFIX))
    {
      const char *pattern = text + strlen (DEVICE_PREFIX);

      /* `*` is itself a device id character, so a pattern is a device id. */
      if (!sluice_device_id_is_valid (pattern))
        {
          set_acl_error (error, config, section, "principal", text,
                         "not a device id pattern (1-128 characters of "
                         "A-Z a-z 0-9 - . %% _ * ? ! ( ) , : = @ $ ')");
          return FALSE;
        }
      e->kind = MQTT_ACL_WHO_DEVICE;
      e->pattern = g_strdup (pattern);
      return TRUE;
    }
  if (g_str_has_prefix (text, POLICY_PREFIX))
    {
      const char *name = text + strlen (POLICY_PREFIX);

      if (name[0] == '\0')
        {
          set_acl_error (error, config, section, "principal", text,
                         "policy:{name} needs the name of a [policy.NAME]");
          return FALSE;
        }
      /* A misspelt policy would silently grant nothing. */
      if (!policy_exists (config, name))
        {
          set_acl_error (error, config, section, "principal", text,
                         "no [policy.%s] in the file", name);
          return FALSE;
        }
      e->kind = MQTT_ACL_WHO_POLICY;
      e->pattern = g_strdup (name);
      return TRUE;
    }
  if (strcmp (text, "anonymous") == 0)
    {
      e->kind = MQTT_ACL_WHO_ANONYMOUS;
      return TRUE;
    }
  set_acl_error (error, config, section, "principal", text,
                 "expected device:{pattern}, policy:{name} or anonymous");
  return FALSE;
}

static AclEntry *
entry_load (SluiceConfig *config, const char *section, GError **error)
{
  AclOptions opts = { NULL };
  g_autoptr (AclEntry) e = NULL;
  const char *name = section + strlen (ACL_PREFIX);
  gboolean ok;

  if (name[0] == '\0')
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "%s: [%s]: an ACL entry needs a name ([mqtt-acl.NAME])",
                   sluice_config_get_path (config), section);
      return NULL;
    }
  if (!sluice_config_parse_section (config, section, acl_options, NULL, &opts, error))
    return NULL;

  e = g_new0 (AclEntry, 1);
  e->section = g_strdup (section);
  ok = principal_load (config, section, opts.principal, e, error)
    && filters_load (config, section, "publish", e->kind, opts.publish, &e->publish, error)
    && filters_load (config, section, "subscribe", e->kind, opts.subscribe, &e->subscribe,
                     error);
  if (ok && e->publish->len == 0 && e->subscribe->len == 0)
    {
      /* An entry that grants nothing is a mistake, not a deny rule: there
       * are none (everything not granted is refused). */
      set_acl_error (error, config, section, "publish", NULL,
                     "missing: the entry grants nothing; give publish or subscribe "
                     "filters, or both");
      ok = FALSE;
    }
  sluice_options_clear (acl_options, &opts);
  return ok ? g_steal_pointer (&e) : NULL;
}

MqttAcl *
mqtt_acl_load (SluiceConfig *config, GError **error)
{
  g_auto (GStrv) sections = NULL;
  MqttAcl *acl;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sections = sluice_config_list_sections (config, ACL_PREFIX);
  acl = g_new0 (MqttAcl, 1);
  acl->entries = g_ptr_array_new_with_free_func (acl_entry_free);
  for (gsize i = 0; sections != NULL && sections[i] != NULL; i++)
    {
      AclEntry *e = entry_load (config, sections[i], error);

      if (e == NULL)
        {
          mqtt_acl_free (acl);
          return NULL;
        }
      g_ptr_array_add (acl->entries, e);
    }
  return acl;
}

static gboolean
entry_applies (const AclEntry *e, const MqttAclWho *who)
{
  if (e->kind != who->kind)
    return FALSE;
  switch (e->kind)
    {
    case MQTT_ACL_WHO_DEVICE:
      return who->name != NULL && mqtt_acl_glob_match (e->pattern, who->name);
    case MQTT_ACL_WHO_POLICY:
      return who->name != NULL && strcmp (e->pattern, who->name) == 0;
    case MQTT_ACL_WHO_ANONYMOUS:
      return TRUE;
    default:
      return FALSE;
    }
}

/* The device id `%d` stands for, or NULL when `who` has none that may be
 * put into a filter: an empty id or one with `+`, `#` or `/` would change
 * the filter's levels and wildcards. */
static const char *
subst_id (const MqttAclWho *who, gsize *len)
{
  const char *id = who->kind == MQTT_ACL_WHO_DEVICE ? who->name : NULL;

  if (id == NULL || id[0] == '\0' || strpbrk (id, "+#/") != NULL)
    return NULL;
  *len = strlen (id);
  return id;
}

/* `f` with `%d` replaced, in `buf` (EXPAND_STACK_SIZE bytes) or in `*heap`
 * when longer; NULL when `f` needs an id `who` cannot give. */
static const char *
acl_filter_expand (const AclFilter *f, const char *id, gsize id_len,
                   char *buf, char **heap, gsize *out_len)
{
  gsize need;
  char *out;

  if (f->n_subst == 0)
    {
      *out_len = f->len;
      return f->text;
    }
  if (id == NULL)
    return NULL;
  /* `%d/#` for the device `$SYS` would grant `$SYS/#`: a `$` topic is
   * reached only by a filter that names it as written. */
  if (id[0] == '$' && f->text[0] == '%' && f->text[1] == 'd')
    return NULL;
  need = expanded_len (f, id_len);
  out = need <= EXPAND_STACK_SIZE ? buf : (*heap = g_malloc (need));
  expand_into (f, id, id_len, out);
  *out_len = need;
  return out;
}

gboolean
mqtt_acl_allows_publish (const MqttAcl *acl, const MqttAclWho *who, const char *topic)
{
  char buf[EXPAND_STACK_SIZE];
  gsize topic_len, id_len = 0;
  const char *id;

  g_return_val_if_fail (acl != NULL && who != NULL && topic != NULL, FALSE);

  topic_len = strlen (topic);
  id = subst_id (who, &id_len);
  for (guint i = 0; i < acl->entries->len; i++)
    {
      const AclEntry *e = acl->entries->pdata[i];

      if (!entry_applies (e, who))
        continue;
      for (guint j = 0; j < e->publish->len; j++)
        {
          g_autofree char *heap = NULL;
          gsize len;
          const char *f = acl_filter_expand (e->publish->pdata[j], id, id_len, buf, &heap,
                                             &len);

          if (f != NULL && mqtt_topic_matches (f, len, topic, topic_len))
            return TRUE;
        }
    }
  return FALSE;
}

gboolean
mqtt_acl_allows_subscribe (const MqttAcl *acl, const MqttAclWho *who, const char *filter)
{
  char buf[EXPAND_STACK_SIZE];
  MqttTopicFilter requested;
  gsize id_len = 0;
  const char *id;

  g_return_val_if_fail (acl != NULL && who != NULL && filter != NULL, FALSE);

  if (!mqtt_topic_filter_parse (filter, strlen (filter), NULL, &requested, NULL))
    return FALSE;
  id = subst_id (who, &id_len);
  for (guint i = 0; i < acl->entries->len; i++)
    {
      const AclEntry *e = acl->entries->pdata[i];

      if (!entry_applies (e, who))
        continue;
      for (guint j = 0; j < e->subscribe->len; j++)
        {
          g_autofree char *heap = NULL;
          gsize len;
          const char *f = acl_filter_expand (e->subscribe->pdata[j], id, id_len, buf, &heap,
                                             &len);

          if (f != NULL
              && mqtt_topic_filter_covers (f, len, requested.filter, requested.filter_len))
            return TRUE;
        }
    }
  return FALSE;
}
