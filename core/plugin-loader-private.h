/* Sluice core — the plugin loader (libltdl).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

G_BEGIN_DECLS

typedef struct {
  char *module;                          /* "transport-lines" */
  char *file;                            /* the file that was opened */
  const SluicePluginDescriptor *desc;
  gpointer handle;                       /* lt_dlhandle */
} SluicePlugin;

typedef struct _SluicePluginLoader SluicePluginLoader;

/* lt_dlinit (once, main thread). The search path is, in order:
 * $SLUICE_PLUGIN_PATH (`:`-separated), `extra_path` ([hub] plugin-path), the
 * install's plugin dir. */
SLUICE_INTERNAL SluicePluginLoader *sluice_plugin_loader_new (const char *const *extra_path);
SLUICE_INTERNAL void sluice_plugin_loader_free (SluicePluginLoader *loader);
/* The effective search path. (transfer none) */
SLUICE_INTERNAL const char *const *sluice_plugin_loader_get_path (SluicePluginLoader *loader);
/* Load module `<kind>-<name>` and run every check of STYLE.md in order; each
 * refusal is a SLUICE_PLUGIN_ERROR naming the file and the fix. Loading the
 * same module twice returns the same plugin. (transfer none) */
SLUICE_INTERNAL const SluicePlugin *sluice_plugin_loader_load (SluicePluginLoader *loader,
                                                               SluicePluginKind kind,
                                                               const char *name,
                                                               GError **error);
/* Load one module file (`dir/<kind>-<name>.la` or `.so`), kind and name taken
 * from the file name, with the same checks; a second file giving an already
 * loaded `<kind>-<name>` is SLUICE_PLUGIN_ERROR_DUPLICATE. The same file twice
 * returns the same plugin. (transfer none) */
SLUICE_INTERNAL const SluicePlugin *sluice_plugin_loader_load_file (SluicePluginLoader *loader,
                                                                    const char *file,
                                                                    GError **error);
/* The checks alone, on a descriptor (unit tests drive them directly). */
SLUICE_INTERNAL gboolean sluice_plugin_check_descriptor (const SluicePluginDescriptor *desc,
                                                         SluicePluginKind expected_kind,
                                                         const char *expected_name,
                                                         const char *file,
                                                         GError **error);
/* Every loaded plugin, in load order. (transfer none: SluicePlugin*) */
SLUICE_INTERNAL GPtrArray *sluice_plugin_loader_loaded (SluicePluginLoader *loader);
/* For --list-plugins: every loadable module on the search path, as lines
 * `<kind>-<name> <version> <description>`, sorted. Modules that fail the
 * checks are reported on stderr, not listed. (transfer full) */
SLUICE_INTERNAL char **sluice_plugin_loader_list_all (SluicePluginLoader *loader);
SLUICE_INTERNAL const char *sluice_plugin_kind_to_string (SluicePluginKind kind);

G_END_DECLS
