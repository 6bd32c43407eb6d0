/* Sluice plugin SDK — typed option tables.
 *
 * A plugin declares its keys in a table; the host parses the plugin's config
 * section, validates every value, rejects unknown keys and fills the plugin's
 * options struct before the plugin sees it. Errors read
 * `FILE: [section] key: what is wrong (value 'x')`.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>

G_BEGIN_DECLS

typedef enum {
  SLUICE_OPTION_STRING = 1, /* char *, g_free'd by sluice_options_clear() */
  SLUICE_OPTION_STRV,       /* char ** (`;`-separated list), g_strfreev'd */
  SLUICE_OPTION_INT,        /* gint64, within [min, max] when max > min */
  SLUICE_OPTION_BOOL,       /* gboolean: true / false */
  SLUICE_OPTION_SIZE,       /* guint64 bytes: `512`, `256KiB`, `1MiB`, `1GiB`, `1TiB` */
  SLUICE_OPTION_DURATION,   /* gint64 milliseconds: `250ms`, `30s`, `5m`, `2h`, `7d` */
  SLUICE_OPTION_ENUM,       /* int: index of the value in `choices` */
} SluiceOptionType;

typedef struct {
  const char *key;
  SluiceOptionType type;
  gsize offset;                  /* G_STRUCT_OFFSET (MyOptions, field) */
  const char *default_value;     /* text as in the file; NULL: zero / NULL / unset */
  const char *help;              /* one line, for --help and error messages */
  gint64 min, max;               /* INT / SIZE / DURATION bounds when max > min */
  const char *const *choices;    /* ENUM: NULL-terminated list of accepted values */
  gpointer reserved[2];
} SluiceOption;

#define SLUICE_OPTION_END { NULL, 0, 0, NULL, NULL, 0, 0, NULL, { NULL, NULL } }

/* Parse a size (`4KiB`) or duration (`250ms`) the way the config file does. */
SLUICE_API gboolean sluice_parse_size (const char *text, guint64 *out, GError **error);
SLUICE_API gboolean sluice_parse_duration_ms (const char *text, gint64 *out, GError **error);

/* Parse `section` of `config` into `options` (a struct laid out as `table` says).
 * Keys in `table` and in `extra_keys` (NULL-terminated; keys some other party
 * consumes, such as `plugin`) are accepted; any other key is an error.
 * Defaults are applied for absent keys. */
SLUICE_API gboolean sluice_config_parse_section (SluiceConfig *config,
                                                 const char *section,
                                                 const SluiceOption *table,
                                                 const char *const *extra_keys,
                                                 gpointer options,
                                                 GError **error);
/* Free what sluice_config_parse_section() allocated inside `options`. */
SLUICE_API void sluice_options_clear (const SluiceOption *table, gpointer options);

/* Names of the sections starting with `prefix` (e.g. "policy."), in file order.
 * (transfer full) */
SLUICE_API char **sluice_config_list_sections (SluiceConfig *config, const char *prefix);
/* The config file's path, for error messages. (transfer none) */
SLUICE_API const char *sluice_config_get_path (SluiceConfig *config);

G_END_DECLS
