/* Sluice core — the parsed configuration file (CONFIG.md).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

G_BEGIN_DECLS

#define SLUICE_CONFIG_ERROR (sluice_config_error_quark ())
SLUICE_INTERNAL GQuark sluice_config_error_quark (void);
typedef enum {
  SLUICE_CONFIG_ERROR_PARSE,          /* key-file syntax */
  SLUICE_CONFIG_ERROR_UNKNOWN_SECTION,
  SLUICE_CONFIG_ERROR_UNKNOWN_KEY,
  SLUICE_CONFIG_ERROR_BAD_VALUE,
  SLUICE_CONFIG_ERROR_MISSING,        /* a required key or section is absent */
} SluiceConfigError;

typedef struct {
  char *name;                  /* NAME of [auth.NAME] */
  char *plugin;
} SluiceConfigAuth;

typedef struct {
  char *name;                  /* NAME of [transport.NAME] */
  char *plugin;
  char **listen;
  char **tls_listen;
  char *tls_cert;
  char *tls_key;
  char *tls_ca;
  gint64 max_connections;
} SluiceConfigTransport;

typedef struct {
  char *name;                  /* NAME of [stream.NAME] */
  gint64 partitions;
  gint64 retention_time_ms;    /* 0: none */
  guint64 retention_size;      /* 0: none */
  SluiceDurability durability;
  gint64 interval_ms;
  guint64 max_message;
} SluiceConfigStream;

struct _SluiceConfig {
  char *path;
  GKeyFile *keyfile;

  /* [hub] */
  char *hostname;
  char *data_dir;
  char *tls_cert;
  char *tls_key;
  char **plugin_path;
  gint64 workers;              /* 0: number of cores */
  char *log_level;             /* error | warning | info | debug */

  /* [storage] */
  char *storage_plugin;

  /* [auth] */
  char **auth_chain;
  gboolean allow_anonymous;

  GPtrArray *auths;            /* SluiceConfigAuth*, file order */
  GPtrArray *transports;       /* SluiceConfigTransport*, file order */
  GPtrArray *streams;          /* SluiceConfigStream*, file order */
};

/* Parse the file and the core's own sections ([hub], [storage] plugin key,
 * [auth], [auth.*] plugin key, [transport.*] core keys, [stream.*]).
 * Plugin keys are checked later by sluice_config_parse_section() once the
 * plugins are loaded. Every error reads `FILE: [section] key: what (value 'x')`. */
SLUICE_INTERNAL SluiceConfig *sluice_config_load (const char *path, GError **error);
/* Same, from text (tests). `path` is used in messages only. */
SLUICE_INTERNAL SluiceConfig *sluice_config_load_from_data (const char *path, const char *data,
                                                           GError **error);
/* Every section must be a core section or start with one of `owned_prefixes`
 * (NULL-terminated; the loaded plugins' owned_sections). */
SLUICE_INTERNAL gboolean sluice_config_check_sections (SluiceConfig *config,
                                                       const char *const *owned_prefixes,
                                                       GError **error);
/* The `[transport.X]` keys the core parses (plugin, listen, ...). */
SLUICE_INTERNAL const char *const *sluice_config_transport_core_keys (void);
SLUICE_INTERNAL void sluice_config_free (SluiceConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceConfig, sluice_config_free)

/* Shared by options.c and config.c (not exported). */
/* Set `FILE: [section] key: what (value 'x')`; section, key and value may be
 * NULL and are then left out. Values of credential keys are hidden. */
G_GNUC_INTERNAL void sluice_config_set_error (GError **error, gint code, const char *path,
                                              const char *section, const char *key,
                                              const char *value, const char *format, ...)
  G_GNUC_PRINTF (7, 8);
/* sluice_config_parse_section(), optionally accepting keys nobody declared
 * (the core's pass over sections whose other keys belong to a plugin). */
G_GNUC_INTERNAL gboolean sluice_config_parse_section_full (SluiceConfig *config,
                                                           const char *section,
                                                           const SluiceOption *table,
                                                           const char *const *extra_keys,
                                                           gboolean allow_unknown,
                                                           gpointer options, GError **error);
/* Bytes of the field an option of `type` fills; 0 for an unknown type. */
G_GNUC_INTERNAL gsize sluice_option_type_size (SluiceOptionType type);
/* The unit parser behind sluice_parse_size() / sluice_parse_duration_ms()
 * (durations in ms, at most G_MAXINT64); `what` gets the bare reason. */
G_GNUC_INTERNAL gboolean sluice_parse_units (const char *text, gboolean is_size, guint64 *out,
                                             char **what);
/* `1MiB`, `7d`: the shortest exact spelling, for messages. (transfer full) */
G_GNUC_INTERNAL char *sluice_format_size (guint64 bytes);
G_GNUC_INTERNAL char *sluice_format_duration (gint64 ms);
/* WIRE.md's stream name rule; `why` says what is wrong. */
SLUICE_INTERNAL gboolean sluice_config_stream_name_check (const char *name, const char **why);

G_END_DECLS
