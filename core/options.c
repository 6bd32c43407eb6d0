/* Sluice core — typed option tables (sluice-options.h): sizes, durations and
 * the generic section parser shared by the core and every plugin.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"

#include <string.h>

/* Values longer than this are cut in messages, so one bad line cannot flood
 * the log. */
#define VALUE_SHOWN_MAX 120

static const struct {
  const char *unit;
  guint64 factor;
} size_units[] = {
  { "B", 1 },
  { "KiB", G_GUINT64_CONSTANT (1) << 10 },
  { "MiB", G_GUINT64_CONSTANT (1) << 20 },
  { "GiB", G_GUINT64_CONSTANT (1) << 30 },
  { "TiB", G_GUINT64_CONSTANT (1) << 40 },
};

static const struct {
  const char *unit;
  guint64 factor;
} duration_units[] = {
  { "ms", 1 },
  { "s", 1000 },
  { "m", 60 * 1000 },
  { "h", 60 * 60 * 1000 },
  { "d", 24 * 60 * 60 * 1000 },
};

static gboolean parse_with_units (const char *text, gboolean is_size, guint64 limit,
                                  guint64 *out, char **what);

/* Keys whose values are credentials: their values never appear in a message
 * (errors end up in logs). */
static gboolean
key_is_secret (const char *key)
{
  static const char *const secret_words[] = {
    "password", "secret", "token", "primary-key", "secondary-key", "passphrase",
  };

  if (key == NULL)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (secret_words); i++)
    if (strstr (key, secret_words[i]) != NULL)
      return TRUE;
  return FALSE;
}

static char *
value_for_message (const char *key, const char *value)
{
  if (key_is_secret (key))
    return g_strdup ("(hidden)");
  if (g_utf8_strlen (value, -1) > VALUE_SHOWN_MAX)
    {
      g_autofree char *head = g_utf8_substring (value, 0, VALUE_SHOWN_MAX);
      return g_strconcat (head, "...", NULL);
    }
  return g_strdup (value);
}

void
sluice_config_set_error (GError **error, gint code, const char *path,
                         const char *section, const char *key, const char *value,
                         const char *format, ...)
{
  g_autofree char *what = NULL;
  g_autoptr (GString) msg = g_string_new (path != NULL ? path : "(config)");
  va_list ap;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);

  if (section != NULL)
    g_string_append_printf (msg, ": [%s]", section);
  if (key != NULL)
    g_string_append_printf (msg, " %s", key);
  g_string_append_printf (msg, ": %s", what);
  if (value != NULL)
    {
      g_autofree char *shown = value_for_message (key, value);
      g_string_append_printf (msg, " (value '%s')", shown);
    }
  g_set_error_literal (error, SLUICE_CONFIG_ERROR, code, msg->str);
}

/* Leading decimal digits of `p` into `out`; FALSE on overflow. `*end` is the
 * first character after the digits. */
static gboolean
parse_digits (const char *p, guint64 *out, const char **end, gboolean *overflow)
{
  guint64 n = 0;
  const char *start = p;

  *overflow = FALSE;
  while (g_ascii_isdigit (*p))
    {
      guint digit = (guint) (*p - '0');
      if (n > (G_MAXUINT64 - digit) / 10)
        *overflow = TRUE;
      else
        n = n * 10 + digit;
      p++;
    }
  *out = n;
  *end = p;
  return p != start;
}

/* The shared core of both unit parsers: `what` (the reason, for messages)
 * is set on failure. */
gboolean
sluice_parse_units (const char *text, gboolean is_size, guint64 *out, char **what)
{
  return parse_with_units (text, is_size, is_size ? G_MAXUINT64 : G_MAXINT64, out, what);
}

static gboolean
parse_with_units (const char *text, gboolean is_size, guint64 limit, guint64 *out,
                  char **what)
{
  g_autofree char *copy = g_strstrip (g_strdup (text != NULL ? text : ""));
  const char *p = copy;
  const char *unit;
  guint64 n, factor = 0;
  gboolean overflow;
  const char *units_help = is_size ? "B, KiB, MiB, GiB or TiB" : "ms, s, m, h or d";
  const char *example = is_size ? "256KiB" : "30s";

  if (*p == '\0')
    {
      *what = g_strdup_printf ("empty %s; expected a number with a unit such as %s",
                               is_size ? "size" : "duration", example);
      return FALSE;
    }
  if (*p == '-')
    {
      *what = g_strdup_printf ("a %s cannot be negative", is_size ? "size" : "duration");
      return FALSE;
    }
  if (!parse_digits (p, &n, &p, &overflow))
    {
      *what = g_strdup_printf ("not a %s; expected a whole number with a unit "
                               "(%s), e.g. %s",
                               is_size ? "size" : "duration", units_help, example);
      return FALSE;
    }
  if (*p == '.' || *p == ',')
    {
      *what = g_strdup_printf ("fractions are not accepted; use a smaller unit (%s)",
                               units_help);
      return FALSE;
    }
  while (*p == ' ' || *p == '\t')
    p++;
  unit = p;

  if (*unit == '\0')
    {
      /* A bare number is bytes for sizes; a duration needs its unit (is `30`
       * seconds or milliseconds?), except 0 which means the same in all. */
      if (is_size || n == 0)
        factor = 1;
      else
        {
          *what = g_strdup_printf ("a duration needs a unit (%s), e.g. %s", units_help,
                                   example);
          return FALSE;
        }
    }
  else if (is_size)
    {
      for (gsize i = 0; i < G_N_ELEMENTS (size_units); i++)
        if (g_ascii_strcasecmp (unit, size_units[i].unit) == 0)
          factor = size_units[i].factor;
    }
  else
    {
      /* Case matters: `m` is minutes, and `M` would read as months. */
      for (gsize i = 0; i < G_N_ELEMENTS (duration_units); i++)
        if (strcmp (unit, duration_units[i].unit) == 0)
          factor = duration_units[i].factor;
    }

  if (factor == 0)
    {
      *what = g_strdup_printf ("unknown unit '%s' (use %s%s)", unit, units_help,
                               is_size ? "; sizes are binary, 1KiB = 1024 bytes" : "");
      return FALSE;
    }
  if (overflow || n > limit / factor)
    {
      *what = g_strdup_printf ("%s is too large", is_size ? "size" : "duration");
      return FALSE;
    }
  *out = n * factor;
  return TRUE;
}

gboolean
sluice_parse_size (const char *text, guint64 *out, GError **error)
{
  g_autofree char *what = NULL;
  guint64 v;

  if (!parse_with_units (text, TRUE, G_MAXUINT64, &v, &what))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "bad size '%s': %s",
                   text != NULL ? text : "", what);
      return FALSE;
    }
  if (out != NULL)
    *out = v;
  return TRUE;
}

gboolean
sluice_parse_duration_ms (const char *text, gint64 *out, GError **error)
{
  g_autofree char *what = NULL;
  guint64 v;

  if (!parse_with_units (text, FALSE, G_MAXINT64, &v, &what))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "bad duration '%s': %s",
                   text != NULL ? text : "", what);
      return FALSE;
    }
  if (out != NULL)
    *out = (gint64) v;
  return TRUE;
}

/* Bounds in messages read as the user would write them. */
char *
sluice_format_size (guint64 bytes)
{
  for (gsize i = G_N_ELEMENTS (size_units); i > 1; i--)
    if (bytes != 0 && bytes % size_units[i - 1].factor == 0)
      return g_strdup_printf ("%" G_GUINT64_FORMAT "%s", bytes / size_units[i - 1].factor,
                              size_units[i - 1].unit);
  return g_strdup_printf ("%" G_GUINT64_FORMAT, bytes);
}

char *
sluice_format_duration (gint64 ms)
{
  for (gsize i = G_N_ELEMENTS (duration_units); i > 1; i--)
    if (ms > 0 && (guint64) ms % duration_units[i - 1].factor == 0)
      return g_strdup_printf ("%" G_GINT64_FORMAT "%s",
                              ms / (gint64) duration_units[i - 1].factor,
                              duration_units[i - 1].unit);
  return g_strdup_printf ("%" G_GINT64_FORMAT "ms", ms);
}

static char *
choices_to_string (const char *const *choices)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (gsize i = 0; choices != NULL && choices[i] != NULL; i++)
    {
      if (i > 0)
        g_string_append (s, choices[i + 1] != NULL ? ", " : " or ");
      g_string_append (s, choices[i]);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* Split a `;` list the GKeyFile way (escapes such as `\;` honoured), then drop
 * the blanks around items so `key; x509` means what it says. */
static char **
parse_list (GKeyFile *kf, const char *section, const char *key, const char *raw)
{
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) parts = NULL;

  if (kf != NULL)
    parts = g_key_file_get_string_list (kf, section, key, NULL, NULL);
  else
    parts = g_strsplit (raw, ";", -1);
  for (gsize i = 0; parts != NULL && parts[i] != NULL; i++)
    {
      char *item = g_strstrip (g_strdup (parts[i]));
      if (*item == '\0')
        g_free (item);
      else
        g_ptr_array_add (items, item);
    }
  g_ptr_array_add (items, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&items), FALSE);
}

/* Parse one value (`raw`, from the file or the table's default) into the
 * field. `kf` is NULL for defaults. */
static gboolean
parse_one (SluiceConfig *config, const char *section, const SluiceOption *opt,
           GKeyFile *kf, const char *raw, gpointer options, GError **error)
{
  const char *path = config != NULL ? config->path : NULL;
  gpointer field = G_STRUCT_MEMBER_P (options, opt->offset);
  gboolean bounded = opt->max > opt->min;
  g_autofree char *what = NULL;

  switch (opt->type)
    {
    case SLUICE_OPTION_STRING:
      {
        char *v = NULL;
        if (kf != NULL)
          {
            g_autoptr (GError) local = NULL;
            v = g_key_file_get_string (kf, section, opt->key, &local);
            /* GKeyFile may return the text and still report a bad escape. */
            if (local != NULL)
              {
                g_free (v);
                sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                         opt->key, raw, "%s", local->message);
                return FALSE;
              }
          }
        else
          v = g_strdup (raw);
        g_free (*(char **) field);
        *(char **) field = v;
        return TRUE;
      }

    case SLUICE_OPTION_STRV:
      g_strfreev (*(char ***) field);
      *(char ***) field = parse_list (kf, section, opt->key, raw);
      return TRUE;

    case SLUICE_OPTION_INT:
      {
        gint64 v;
        g_autoptr (GError) local = NULL;
        g_autofree char *copy = g_strstrip (g_strdup (raw));

        if (!g_ascii_string_to_signed (copy, 10, G_MININT64, G_MAXINT64, &v, &local))
          {
            sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                     opt->key, raw, "not a whole number");
            return FALSE;
          }
        if (bounded && (v < opt->min || v > opt->max))
          {
            sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                     opt->key, raw,
                                     "out of range (%" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ")",
                                     opt->min, opt->max);
            return FALSE;
          }
        *(gint64 *) field = v;
        return TRUE;
      }

    case SLUICE_OPTION_BOOL:
      {
        g_autofree char *copy = g_strstrip (g_strdup (raw));
        if (strcmp (copy, "true") == 0)
          *(gboolean *) field = TRUE;
        else if (strcmp (copy, "false") == 0)
          *(gboolean *) field = FALSE;
        else
          {
            sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                     opt->key, raw, "expected true or false");
            return FALSE;
          }
        return TRUE;
      }

    case SLUICE_OPTION_SIZE:
      {
        guint64 v;
        if (!parse_with_units (raw, TRUE, G_MAXUINT64, &v, &what))
          {
            sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                     opt->key, raw, "%s", what);
            return FALSE;
          }
        /* Negative bounds make no sense for sizes; treat them as 0. */
        if (bounded && (v < (guint64) MAX (opt->min, 0) || v > (guint64) MAX (opt->max, 0)))
          {
            g_autofree char *lo = sluice_format_size ((guint64) MAX (opt->min, 0));
            g_autofree char *hi = sluice_format_size ((guint64) MAX (opt->max, 0));
            sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                     opt->key, raw, "out of range (%s..%s)", lo, hi);
            return FALSE;
          }
        *(guint64 *) field = v;
        return TRUE;
      }

    case SLUICE_OPTION_DURATION:
      {
        guint64 v;
        if (!parse_with_units (raw, FALSE, G_MAXINT64, &v, &what))
          {
            sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                     opt->key, raw, "%s", what);
            return FALSE;
          }
        if (bounded && ((gint64) v < opt->min || (gint64) v > opt->max))
          {
            g_autofree char *lo = sluice_format_duration (opt->min);
            g_autofree char *hi = sluice_format_duration (opt->max);
            sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                     opt->key, raw, "out of range (%s..%s)", lo, hi);
            return FALSE;
          }
        *(gint64 *) field = (gint64) v;
        return TRUE;
      }

    case SLUICE_OPTION_ENUM:
      {
        g_autofree char *copy = g_strstrip (g_strdup (raw));
        for (int i = 0; opt->choices != NULL && opt->choices[i] != NULL; i++)
          if (strcmp (copy, opt->choices[i]) == 0)
            {
              *(int *) field = i;
              return TRUE;
            }
        {
          g_autofree char *list = choices_to_string (opt->choices);
          sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section,
                                   opt->key, raw, "expected %s", list);
        }
        return FALSE;
      }

    default:
      sluice_config_set_error (error, SLUICE_CONFIG_ERROR_BAD_VALUE, path, section, opt->key,
                               NULL, "option table declares an unknown type %d",
                               (int) opt->type);
      return FALSE;
    }
}

static gboolean
key_in_table (const SluiceOption *table, const char *key)
{
  for (const SluiceOption *o = table; o != NULL && o->key != NULL; o++)
    if (strcmp (o->key, key) == 0)
      return TRUE;
  return FALSE;
}

static char *
known_keys (const SluiceOption *table, const char *const *extra_keys)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (const char *const *k = extra_keys; k != NULL && *k != NULL; k++)
    g_string_append_printf (s, "%s%s", s->len > 0 ? ", " : "", *k);
  for (const SluiceOption *o = table; o != NULL && o->key != NULL; o++)
    if (extra_keys == NULL || !g_strv_contains (extra_keys, o->key))
      g_string_append_printf (s, "%s%s", s->len > 0 ? ", " : "", o->key);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

gboolean
sluice_config_parse_section_full (SluiceConfig *config, const char *section,
                                  const SluiceOption *table, const char *const *extra_keys,
                                  gboolean allow_unknown, gpointer options, GError **error)
{
  GKeyFile *kf = config->keyfile;
  gboolean present = g_key_file_has_group (kf, section);

  if (present && !allow_unknown)
    {
      g_auto (GStrv) keys = g_key_file_get_keys (kf, section, NULL, NULL);
      for (gsize i = 0; keys != NULL && keys[i] != NULL; i++)
        {
          g_autofree char *raw = NULL;
          g_autofree char *known = NULL;

          if (key_in_table (table, keys[i])
              || (extra_keys != NULL && g_strv_contains (extra_keys, keys[i])))
            continue;
          raw = g_key_file_get_value (kf, section, keys[i], NULL);
          known = known_keys (table, extra_keys);
          sluice_config_set_error (error, SLUICE_CONFIG_ERROR_UNKNOWN_KEY, config->path,
                                   section, keys[i], raw != NULL ? raw : "",
                                   "unknown key; this section takes %s",
                                   *known != '\0' ? known : "no keys");
          return FALSE;
        }
    }

  for (const SluiceOption *o = table; o != NULL && o->key != NULL; o++)
    {
      g_autofree char *raw = NULL;

      if (present)
        raw = g_key_file_get_value (kf, section, o->key, NULL);
      if (raw != NULL)
        {
          if (!parse_one (config, section, o, kf, raw, options, error))
            goto fail;
        }
      else if (o->default_value != NULL)
        {
          if (!parse_one (config, section, o, NULL, o->default_value, options, error))
            {
              /* A bad default is the table's bug, not the user's: say so. */
              g_prefix_error (error, "bad default in the option table: ");
              goto fail;
            }
        }
    }
  return TRUE;

fail:
  sluice_options_clear (table, options);
  return FALSE;
}

/* Absent keys get the table's default; on error everything this call
 * allocated is freed and the fields are reset. `options` must start zeroed. */
gboolean
sluice_config_parse_section (SluiceConfig *config, const char *section,
                             const SluiceOption *table, const char *const *extra_keys,
                             gpointer options, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (section != NULL, FALSE);
  g_return_val_if_fail (table == NULL || options != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return sluice_config_parse_section_full (config, section, table, extra_keys, FALSE, options,
                                           error);
}

void
sluice_options_clear (const SluiceOption *table, gpointer options)
{
  if (options == NULL)
    return;
  for (const SluiceOption *o = table; o != NULL && o->key != NULL; o++)
    {
      gpointer field = G_STRUCT_MEMBER_P (options, o->offset);
      switch (o->type)
        {
        case SLUICE_OPTION_STRING:
          g_clear_pointer ((char **) field, g_free);
          break;
        case SLUICE_OPTION_STRV:
          g_clear_pointer ((char ***) field, g_strfreev);
          break;
        case SLUICE_OPTION_INT:
        case SLUICE_OPTION_DURATION:
          *(gint64 *) field = 0;
          break;
        case SLUICE_OPTION_SIZE:
          *(guint64 *) field = 0;
          break;
        case SLUICE_OPTION_BOOL:
          *(gboolean *) field = FALSE;
          break;
        case SLUICE_OPTION_ENUM:
          *(int *) field = 0;
          break;
        default:
          break;
        }
    }
}

char **
sluice_config_list_sections (SluiceConfig *config, const char *prefix)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) groups = NULL;

  g_return_val_if_fail (config != NULL, NULL);

  groups = g_key_file_get_groups (config->keyfile, NULL);
  for (gsize i = 0; groups[i] != NULL; i++)
    if (prefix == NULL || g_str_has_prefix (groups[i], prefix))
      g_ptr_array_add (out, g_strdup (groups[i]));
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&out), FALSE);
}

const char *
sluice_config_get_path (SluiceConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);
  return config->path;
}

gsize
sluice_option_type_size (SluiceOptionType type)
{
  switch (type)
    {
    case SLUICE_OPTION_STRING:
      return sizeof (char *);
    case SLUICE_OPTION_STRV:
      return sizeof (char **);
    case SLUICE_OPTION_INT:
    case SLUICE_OPTION_DURATION:
      return sizeof (gint64);
    case SLUICE_OPTION_SIZE:
      return sizeof (guint64);
    case SLUICE_OPTION_BOOL:
      return sizeof (gboolean);
    case SLUICE_OPTION_ENUM:
      return sizeof (int);
    default:
      return 0;
    }
}
