/* Sluice core — the plugin loader (libltdl), STYLE.md "Plugin ABI".
 *
 * libltdl keeps global state and is not thread-safe: the loader is used on
 * the main thread only, and every plugin is loaded before any worker starts.
 * Accepted modules are made resident and never unloaded, so that nothing a
 * plugin registered (types, atexit handlers, TLS destructors) can outlive
 * its code; refused modules are closed at once.
 * SPDX-License-Identifier: Apache-2.0 */
#include "plugin-loader-private.h"
#include "config-private.h"

#include <dlfcn.h>
#include <gmodule.h>
#include <ltdl.h>
#include <string.h>

#ifndef SLUICE_PLUGINDIR
#define SLUICE_PLUGINDIR "/usr/local/lib/sluice/plugins"
#endif

/* The end of the last slot of each ABI-1.0 vtable. A plugin built against
 * 1.0 has exactly this much; later minors append slots the host must not
 * read from older plugins. */
#define STORAGE_VTABLE_SIZE_1_0 \
  (G_STRUCT_OFFSET (SluiceStorageVTable, blob_delete) + sizeof (gpointer))
#define AUTH_VTABLE_SIZE_1_0 (G_STRUCT_OFFSET (SluiceAuthVTable, reload) + sizeof (gpointer))
#define TRANSPORT_VTABLE_SIZE_1_0 \
  (G_STRUCT_OFFSET (SluiceTransportVTable, connection_closed) + sizeof (gpointer))

struct _SluicePluginLoader {
  GPtrArray *path;        /* char*, NULL-terminated */
  GPtrArray *loaded;      /* SluicePlugin*, load order */
  GHashTable *by_module;  /* "kind-name" -> SluicePlugin* (transfer none) */
};

static int ltdl_status = -1;

static void
plugin_free (SluicePlugin *plugin)
{
  g_free (plugin->module);
  g_free (plugin->file);
  g_free (plugin);
}

const char *
sluice_plugin_kind_to_string (SluicePluginKind kind)
{
  switch (kind)
    {
    case SLUICE_PLUGIN_KIND_STORAGE:
      return "storage";
    case SLUICE_PLUGIN_KIND_AUTH:
      return "auth";
    case SLUICE_PLUGIN_KIND_TRANSPORT:
      return "transport";
    default:
      return NULL;
    }
}

static gboolean
kind_from_string (const char *s, gsize len, SluicePluginKind *kind)
{
  for (SluicePluginKind k = SLUICE_PLUGIN_KIND_STORAGE; k <= SLUICE_PLUGIN_KIND_TRANSPORT; k++)
    {
      const char *name = sluice_plugin_kind_to_string (k);
      if (strlen (name) == len && strncmp (s, name, len) == 0)
        {
          *kind = k;
          return TRUE;
        }
    }
  return FALSE;
}

static void
add_path_list (GPtrArray *path, const char *const *dirs)
{
  for (gsize i = 0; dirs != NULL && dirs[i] != NULL; i++)
    if (*dirs[i] != '\0')
      g_ptr_array_add (path, g_strdup (dirs[i]));
}

SluicePluginLoader *
sluice_plugin_loader_new (const char *const *extra_path)
{
  static gsize init_once = 0;
  SluicePluginLoader *loader;
  const char *env = g_getenv ("SLUICE_PLUGIN_PATH");

  if (g_once_init_enter (&init_once))
    {
      ltdl_status = lt_dlinit ();
      g_once_init_leave (&init_once, 1);
    }

  loader = g_new0 (SluicePluginLoader, 1);
  loader->path = g_ptr_array_new_with_free_func (g_free);
  if (env != NULL)
    {
      g_auto (GStrv) dirs = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      add_path_list (loader->path, (const char *const *) dirs);
    }
  add_path_list (loader->path, extra_path);
  g_ptr_array_add (loader->path, g_strdup (SLUICE_PLUGINDIR));
  g_ptr_array_add (loader->path, NULL);
  loader->loaded = g_ptr_array_new_with_free_func ((GDestroyNotify) plugin_free);
  loader->by_module = g_hash_table_new (g_str_hash, g_str_equal);
  return loader;
}

/* Plugins stay mapped (resident); only the records go. */
void
sluice_plugin_loader_free (SluicePluginLoader *loader)
{
  if (loader == NULL)
    return;
  g_hash_table_unref (loader->by_module);
  g_ptr_array_unref (loader->loaded);
  g_ptr_array_unref (loader->path);
  g_free (loader);
}

const char *const *
sluice_plugin_loader_get_path (SluicePluginLoader *loader)
{
  return (const char *const *) loader->path->pdata;
}

GPtrArray *
sluice_plugin_loader_loaded (SluicePluginLoader *loader)
{
  return loader->loaded;
}

/* ---- the checks (STYLE.md order) ---- */

static gsize
vtable_min_size (SluicePluginKind kind)
{
  switch (kind)
    {
    case SLUICE_PLUGIN_KIND_STORAGE:
      return STORAGE_VTABLE_SIZE_1_0;
    case SLUICE_PLUGIN_KIND_AUTH:
      return AUTH_VTABLE_SIZE_1_0;
    case SLUICE_PLUGIN_KIND_TRANSPORT:
      return TRANSPORT_VTABLE_SIZE_1_0;
    default:
      return 0;
    }
}

/* Magic, ABI, sizes, kind, kind and name against the file. */
static gboolean
check_identity (const SluicePluginDescriptor *desc, SluicePluginKind expected_kind,
                const char *expected_name, const char *file, GError **error)
{
  const char *kind_name;

  if (desc == NULL)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_BAD_MAGIC,
                   "%s: the query function returned no descriptor; define the plugin with "
                   "SLUICE_PLUGIN_DEFINE from the Sluice SDK", file);
      return FALSE;
    }
  if (desc->magic != SLUICE_PLUGIN_MAGIC)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_BAD_MAGIC,
                   "%s: not a Sluice plugin descriptor (magic 0x%08x, expected 0x%08x); "
                   "define the plugin with SLUICE_PLUGIN_DEFINE from the Sluice SDK",
                   file, desc->magic, SLUICE_PLUGIN_MAGIC);
      return FALSE;
    }
  if (desc->abi_major != SLUICE_ABI_MAJOR)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_ABI,
                   "%s: built for plugin ABI %u.%u, but this sluiced speaks ABI %u.%u; "
                   "rebuild the plugin against Sluice SDK %u.x",
                   file, desc->abi_major, desc->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR,
                   SLUICE_ABI_MAJOR);
      return FALSE;
    }
  if (desc->abi_minor > SLUICE_ABI_MINOR)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_ABI,
                   "%s: built for plugin ABI %u.%u, newer than this sluiced's ABI %u.%u; "
                   "upgrade sluiced or rebuild the plugin against Sluice SDK %u.%u",
                   file, desc->abi_major, desc->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR,
                   SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
      return FALSE;
    }
  if (desc->struct_size < SLUICE_PLUGIN_DESCRIPTOR_MIN_SIZE)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_SIZE,
                   "%s: descriptor of %u bytes, smaller than the %u of ABI %u.0; "
                   "rebuild the plugin against Sluice SDK %u.x",
                   file, desc->struct_size, (guint) SLUICE_PLUGIN_DESCRIPTOR_MIN_SIZE,
                   SLUICE_ABI_MAJOR, SLUICE_ABI_MAJOR);
      return FALSE;
    }
  /* The vtable minimum depends on the kind; an unknown kind is refused next. */
  if (vtable_min_size (desc->kind) > 0 && desc->vtable_size < vtable_min_size (desc->kind))
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_SIZE,
                   "%s: %s vtable of %u bytes, smaller than the %u of ABI %u.0; "
                   "rebuild the plugin against Sluice SDK %u.x",
                   file, sluice_plugin_kind_to_string (desc->kind), desc->vtable_size,
                   (guint) vtable_min_size (desc->kind), SLUICE_ABI_MAJOR, SLUICE_ABI_MAJOR);
      return FALSE;
    }
  /* The host writes the options struct through the table: every field must
   * lie inside options_size. */
  for (const SluiceOption *o = desc->options; o != NULL && o->key != NULL; o++)
    {
      gsize width = sluice_option_type_size (o->type);
      if (width == 0 || o->offset + width > desc->options_size)
        {
          g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_SIZE,
                       "%s: option '%s' (type %d at offset %" G_GSIZE_FORMAT ") does not fit "
                       "its options struct of %u bytes; fix the plugin's option table",
                       file, o->key, (int) o->type, o->offset, desc->options_size);
          return FALSE;
        }
    }
  kind_name = sluice_plugin_kind_to_string (desc->kind);
  if (kind_name == NULL)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_KIND,
                   "%s: unknown plugin kind %d (this sluiced knows storage, auth and "
                   "transport); the plugin needs a newer sluiced", file, (int) desc->kind);
      return FALSE;
    }
  if (desc->kind != expected_kind || desc->name == NULL
      || g_strcmp0 (desc->name, expected_name) != 0)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_MISMATCH,
                   "%s: the descriptor says %s-%s but the file is %s-%s; name the file "
                   "after SLUICE_PLUGIN_DEFINE (kind, name, ...) or fix the definition",
                   file, kind_name, desc->name != NULL ? desc->name : "(null)",
                   sluice_plugin_kind_to_string (expected_kind), expected_name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
missing_slot (const char *file, const char *module, const char *slot, const char *extra,
              GError **error)
{
  g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_MISSING_SLOT,
               "%s: %s leaves the required slot '%s' NULL%s; implement it", file, module, slot,
               extra);
  return FALSE;
}

#define REQUIRE(vt, slot, extra) \
  if ((vt)->slot == NULL) \
    return missing_slot (file, module, #slot, extra, error)

/* Required slots, then license and description. */
static gboolean
check_contents (const SluicePluginDescriptor *desc, const char *file, GError **error)
{
  g_autofree char *module = g_strdup_printf ("%s-%s", sluice_plugin_kind_to_string (desc->kind),
                                             desc->name);

  if (desc->vtable == NULL)
    return missing_slot (file, module, "vtable", " (the descriptor has no vtable)", error);

  switch (desc->kind)
    {
    case SLUICE_PLUGIN_KIND_STORAGE:
      {
        const SluiceStorageVTable *vt = desc->vtable;
        REQUIRE (vt, open, "");
        REQUIRE (vt, close, "");
        REQUIRE (vt, log_create, "");
        REQUIRE (vt, log_delete, "");
        REQUIRE (vt, log_list, "");
        REQUIRE (vt, log_append, "");
        REQUIRE (vt, sync, "");
        REQUIRE (vt, log_read, "");
        REQUIRE (vt, log_bounds, "");
        REQUIRE (vt, log_trim, "");
        REQUIRE (vt, kv_get, "");
        REQUIRE (vt, kv_scan, "");
        REQUIRE (vt, kv_commit, "");
        REQUIRE (vt, blob_open_write, "");
        REQUIRE (vt, blob_write, "");
        REQUIRE (vt, blob_commit, "");
        REQUIRE (vt, blob_abort, "");
        REQUIRE (vt, blob_read, "");
        REQUIRE (vt, blob_delete, "");
        break;
      }
    case SLUICE_PLUGIN_KIND_AUTH:
      {
        const SluiceAuthVTable *vt = desc->vtable;
        REQUIRE (vt, create, "");
        REQUIRE (vt, destroy, "");
        REQUIRE (vt, authenticate, "");
        break;
      }
    case SLUICE_PLUGIN_KIND_TRANSPORT:
      {
        const SluiceTransportVTable *vt = desc->vtable;
        const char *unless = " (required unless flags has SLUICE_TRANSPORT_OWNS_LISTENERS)";
        REQUIRE (vt, create, "");
        REQUIRE (vt, start, "");
        REQUIRE (vt, stop, "");
        REQUIRE (vt, destroy, "");
        if (!(vt->flags & SLUICE_TRANSPORT_OWNS_LISTENERS))
          {
            REQUIRE (vt, connection_open, unless);
            REQUIRE (vt, connection_input, unless);
            REQUIRE (vt, connection_closed, unless);
          }
        break;
      }
    default:
      g_assert_not_reached ();
    }

  if (desc->license == NULL || *desc->license == '\0')
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_METADATA,
                   "%s: no license; give SLUICE_PLUGIN_DEFINE an SPDX identifier such as "
                   "\"Apache-2.0\"", file);
      return FALSE;
    }
  if (desc->description == NULL || *desc->description == '\0')
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_METADATA,
                   "%s: no description; give SLUICE_PLUGIN_DEFINE a one-line description",
                   file);
      return FALSE;
    }
  /* --list-plugins prints it. */
  if (desc->version == NULL || *desc->version == '\0')
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_METADATA,
                   "%s: no version; give SLUICE_PLUGIN_DEFINE a version such as \"1.0\"",
                   file);
      return FALSE;
    }
  return TRUE;
}

#undef REQUIRE

gboolean
sluice_plugin_check_descriptor (const SluicePluginDescriptor *desc,
                                SluicePluginKind expected_kind, const char *expected_name,
                                const char *file, GError **error)
{
  g_return_val_if_fail (expected_name != NULL, FALSE);
  g_return_val_if_fail (file != NULL, FALSE);

  return check_identity (desc, expected_kind, expected_name, file, error)
         && check_contents (desc, file, error);
}

/* ---- opening modules ---- */

/* `<kind>-<name>` with `-` → `_`, as SLUICE_PLUGIN_DEFINE spells it. */
static char *
query_symbol (const char *module)
{
  g_autofree char *prefix = g_strdup (module);
  g_strdelimit (prefix, "-", '_');
  return g_strconcat (prefix, "_LTX_" SLUICE_PLUGIN_QUERY_SYMBOL, NULL);
}

/* Split `transport-lines` (a module name, no extension) into kind and name. */
static gboolean
split_module (const char *module, SluicePluginKind *kind, const char **name)
{
  const char *dash = strchr (module, '-');

  if (dash == NULL || dash[1] == '\0' || !kind_from_string (module, (gsize) (dash - module), kind))
    return FALSE;
  for (const char *p = dash + 1; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      return FALSE;
  *name = dash + 1;
  return TRUE;
}

static char *
dir_candidate (const char *dir, const char *module)
{
  g_autofree char *base = g_build_filename (dir, module, NULL);
  g_autofree char *la = g_strconcat (base, ".la", NULL);
  g_autofree char *so = g_strconcat (base, "." G_MODULE_SUFFIX, NULL);

  if (g_file_test (la, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&la);
  if (g_file_test (so, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&so);
  return NULL;
}

/* libltdl reports every failed open as "file not found"; the dynamic linker
 * knows the real reason (bad ELF header, a missing library, an undefined
 * symbol). Ask it directly, on the shared object the `.la` names. */
static char *
diagnose_open (const char *file)
{
  g_autofree char *so = NULL;
  void *h;

  if (g_str_has_suffix (file, ".la"))
    {
      g_autofree char *text = NULL;
      g_autofree char *dlname = NULL;
      g_autofree char *dir = g_path_get_dirname (file);
      gboolean installed = TRUE;
      g_auto (GStrv) lines = NULL;

      if (!g_file_get_contents (file, &text, NULL, NULL))
        return NULL;
      lines = g_strsplit (text, "\n", -1);
      for (gsize i = 0; lines[i] != NULL; i++)
        {
          if (g_str_has_prefix (lines[i], "dlname='"))
            dlname = g_strndup (lines[i] + 8, strcspn (lines[i] + 8, "'"));
          else if (g_str_has_prefix (lines[i], "installed=no"))
            installed = FALSE;
        }
      if (dlname == NULL || *dlname == '\0')
        return g_strdup ("the .la file names no shared object (dlname)");
      so = installed ? g_build_filename (dir, dlname, NULL)
                     : g_build_filename (dir, ".libs", dlname, NULL);
      if (!g_file_test (so, G_FILE_TEST_EXISTS))
        return g_strdup_printf ("%s is missing (rebuild or reinstall the plugin)", so);
    }
  else
    so = g_strdup (file);

  h = dlopen (so, RTLD_LAZY | RTLD_LOCAL);
  if (h != NULL)
    {
      dlclose (h);
      return NULL;
    }
  return g_strdup (dlerror ());
}

/* Open `file` (a `.la` or `.so` of module `<kind>-<name>`) and run every check. */
static const SluicePlugin *
load_file (SluicePluginLoader *loader, const char *file, SluicePluginKind kind,
           const char *name, GError **error)
{
  g_autofree char *module = g_strdup_printf ("%s-%s", sluice_plugin_kind_to_string (kind), name);
  g_autofree char *symbol = query_symbol (module);
  SluicePlugin *existing = g_hash_table_lookup (loader->by_module, module);
  SluicePluginQueryFunc query;
  const SluicePluginDescriptor *desc;
  lt_dladvise advise = NULL;
  lt_dlhandle handle;
  SluicePlugin *plugin;

  if (existing != NULL && strcmp (existing->file, file) == 0)
    return existing;

  if (ltdl_status != 0)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_OPEN,
                   "%s: cannot load plugins: libltdl failed to initialise", file);
      return NULL;
    }

  /* The exact file: libltdl reads a `.la` (which in a build tree points
   * into .libs/) or opens the shared object itself. Trying extensions would
   * turn "bad ELF header" into "file not found". */
  if (lt_dladvise_init (&advise) != 0 || lt_dladvise_local (&advise) != 0)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_OPEN,
                   "%s: cannot load: %s", file, lt_dlerror ());
      lt_dladvise_destroy (&advise);
      return NULL;
    }
  handle = lt_dlopenadvise (file, advise);
  lt_dladvise_destroy (&advise);
  if (handle == NULL)
    {
      const char *lt_why = lt_dlerror ();
      g_autofree char *why = diagnose_open (file);
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_OPEN,
                   "%s: cannot load: %s; check that the file is a plugin built for this "
                   "system and that the libraries it needs are installed (ldd)", file,
                   why != NULL ? why : lt_why != NULL ? lt_why : "unknown error");
      return NULL;
    }

  query = (SluicePluginQueryFunc) lt_dlsym (handle, symbol);
  if (query == NULL)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_NO_SYMBOL,
                   "%s: no symbol %s; define the plugin with SLUICE_PLUGIN_DEFINE (%s, %s, ...) "
                   "and export it (-export-symbols-regex 'sluice_plugin_query$')",
                   file, symbol, sluice_plugin_kind_to_string (kind), name);
      lt_dlclose (handle);
      return NULL;
    }
  desc = query ();

  if (!check_identity (desc, kind, name, file, error))
    {
      lt_dlclose (handle);
      return NULL;
    }
  if (existing != NULL)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_DUPLICATE,
                   "%s: plugin %s is already loaded from %s; remove one of the two files "
                   "or take one folder off the plugin path",
                   file, module, existing->file);
      lt_dlclose (handle);
      return NULL;
    }
  if (!check_contents (desc, file, error))
    {
      lt_dlclose (handle);
      return NULL;
    }

  lt_dlmakeresident (handle);
  plugin = g_new0 (SluicePlugin, 1);
  plugin->module = g_steal_pointer (&module);
  plugin->file = g_strdup (file);
  plugin->desc = desc;
  plugin->handle = handle;
  g_ptr_array_add (loader->loaded, plugin);
  g_hash_table_insert (loader->by_module, plugin->module, plugin);
  g_info ("loaded plugin %s %s from %s", plugin->module, desc->version, file);
  return plugin;
}

const SluicePlugin *
sluice_plugin_loader_load (SluicePluginLoader *loader, SluicePluginKind kind,
                           const char *name, GError **error)
{
  g_autofree char *module = NULL;
  g_autofree char *path_text = NULL;
  SluicePlugin *existing;
  const char *kind_name = sluice_plugin_kind_to_string (kind);
  SluicePluginKind parsed_kind;
  const char *parsed_name;

  g_return_val_if_fail (loader != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  if (kind_name == NULL)
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_KIND,
                   "unknown plugin kind %d", (int) kind);
      return NULL;
    }
  module = g_strdup_printf ("%s-%s", kind_name, name);
  /* The name becomes a file name: no `/`, no `..`. */
  if (!split_module (module, &parsed_kind, &parsed_name))
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_NOT_FOUND,
                   "'%s' is not a plugin name (use A-Z a-z 0-9 _ -)", name);
      return NULL;
    }

  existing = g_hash_table_lookup (loader->by_module, module);
  if (existing != NULL)
    return existing;

  for (guint i = 0; i + 1 < loader->path->len; i++)
    {
      g_autofree char *file = dir_candidate (loader->path->pdata[i], module);
      if (file != NULL)
        return load_file (loader, file, kind, name, error);
    }

  path_text = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, (char **) loader->path->pdata);
  g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_NOT_FOUND,
               "no plugin module %s (%s.la or %s." G_MODULE_SUFFIX ") in the plugin path %s; "
               "install the plugin or add its folder to [hub] plugin-path or "
               "$SLUICE_PLUGIN_PATH", module, module, module, path_text);
  return NULL;
}

const SluicePlugin *
sluice_plugin_loader_load_file (SluicePluginLoader *loader, const char *file, GError **error)
{
  g_autofree char *base = NULL;
  SluicePluginKind kind;
  const char *name;

  g_return_val_if_fail (loader != NULL, NULL);
  g_return_val_if_fail (file != NULL, NULL);

  base = g_path_get_basename (file);
  if (g_str_has_suffix (base, ".la"))
    base[strlen (base) - 3] = '\0';
  else if (g_str_has_suffix (base, "." G_MODULE_SUFFIX))
    base[strlen (base) - strlen ("." G_MODULE_SUFFIX)] = '\0';
  if (!split_module (base, &kind, &name))
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_MISMATCH,
                   "%s: not named like a plugin module (<kind>-<name>.la with kind storage, "
                   "auth or transport); rename it", file);
      return NULL;
    }
  if (!g_file_test (file, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_NOT_FOUND,
                   "%s: no such file", file);
      return NULL;
    }
  return load_file (loader, file, kind, name, error);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* The module files of one folder: `x.la`, and `x.so` only where no `x.la`
 * stands beside it (libtool's own copy lives in .libs/, not here). Sorted, so
 * the output does not depend on the file system's order. */
static GPtrArray *
list_dir_modules (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  GPtrArray *files = g_ptr_array_new_with_free_func (g_free);
  const char *entry;

  if (d == NULL)
    return files;
  while ((entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *stem = NULL;
      SluicePluginKind kind;
      const char *name;

      if (g_str_has_suffix (entry, ".la"))
        stem = g_strndup (entry, strlen (entry) - 3);
      else if (g_str_has_suffix (entry, "." G_MODULE_SUFFIX))
        {
          g_autofree char *la = NULL;
          stem = g_strndup (entry, strlen (entry) - strlen ("." G_MODULE_SUFFIX));
          la = g_strconcat (dir, G_DIR_SEPARATOR_S, stem, ".la", NULL);
          if (g_file_test (la, G_FILE_TEST_EXISTS))
            continue;
        }
      else
        continue;
      if (!split_module (stem, &kind, &name))
        continue;
      g_ptr_array_add (files, g_build_filename (dir, entry, NULL));
    }
  g_ptr_array_sort (files, compare_strings);
  return files;
}

char **
sluice_plugin_loader_list_all (SluicePluginLoader *loader)
{
  g_autoptr (GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) listed = g_hash_table_new (g_direct_hash, g_direct_equal);

  g_return_val_if_fail (loader != NULL, NULL);

  for (guint i = 0; i + 1 < loader->path->len; i++)
    {
      g_autoptr (GPtrArray) files = list_dir_modules (loader->path->pdata[i]);

      for (guint j = 0; j < files->len; j++)
        {
          g_autoptr (GError) error = NULL;
          const SluicePlugin *plugin = sluice_plugin_loader_load_file (loader, files->pdata[j],
                                                                       &error);
          if (plugin == NULL)
            {
              g_printerr ("%s\n", error->message);
              continue;
            }
          /* The same folder twice on the path gives the same plugin. */
          if (!g_hash_table_add (listed, (gpointer) plugin))
            continue;
          g_ptr_array_add (lines, g_strdup_printf ("%s %s %s", plugin->module,
                                                   plugin->desc->version,
                                                   plugin->desc->description));
        }
    }
  g_ptr_array_sort (lines, compare_strings);
  g_ptr_array_add (lines, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&lines), FALSE);
}
