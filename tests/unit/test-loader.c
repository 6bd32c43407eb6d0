/* Unit tests: the plugin loader, against the fixture modules built in
 * tests/unit/plugins/ (one per refusal, plus good ones).
 * SPDX-License-Identifier: Apache-2.0 */
#include "plugin-loader-private.h"

#include <glib/gstdio.h>
#include <gmodule.h>
#include <string.h>

static char *fixture_dir;
static char *dup_dir;

static char *
fixture_file (const char *module)
{
  g_autofree char *base = g_strconcat (module, ".la", NULL);
  return g_build_filename (fixture_dir, base, NULL);
}

/* A loader that sees `path` (`:`-separated) and the install dir only. */
static SluicePluginLoader *
loader_for (const char *path, const char *const *extra)
{
  g_setenv ("SLUICE_PLUGIN_PATH", path, TRUE);
  return sluice_plugin_loader_new (extra);
}

static void
test_path (void)
{
  const char *const extra[] = { "/extra/one", "", NULL };
  SluicePluginLoader *loader = loader_for ("/env/a::/env/b", extra);
  const char *const *path = sluice_plugin_loader_get_path (loader);

  g_assert_cmpuint (g_strv_length ((char **) path), ==, 4);
  g_assert_cmpstr (path[0], ==, "/env/a");
  g_assert_cmpstr (path[1], ==, "/env/b");
  g_assert_cmpstr (path[2], ==, "/extra/one");
  g_assert_nonnull (strstr (path[3], "sluice"));
  sluice_plugin_loader_free (loader);

  g_unsetenv ("SLUICE_PLUGIN_PATH");
  loader = sluice_plugin_loader_new (NULL);
  g_assert_cmpuint (g_strv_length ((char **) sluice_plugin_loader_get_path (loader)), ==, 1);
  sluice_plugin_loader_free (loader);
}

static void
test_kind_to_string (void)
{
  g_assert_cmpstr (sluice_plugin_kind_to_string (SLUICE_PLUGIN_KIND_STORAGE), ==, "storage");
  g_assert_cmpstr (sluice_plugin_kind_to_string (SLUICE_PLUGIN_KIND_AUTH), ==, "auth");
  g_assert_cmpstr (sluice_plugin_kind_to_string (SLUICE_PLUGIN_KIND_TRANSPORT), ==, "transport");
  g_assert_null (sluice_plugin_kind_to_string ((SluicePluginKind) 42));
}

static void
test_load_good (void)
{
  SluicePluginLoader *loader = loader_for (fixture_dir, NULL);
  g_autoptr (GError) error = NULL;
  static const struct {
    SluicePluginKind kind;
    const char *name;
  } good[] = {
    { SLUICE_PLUGIN_KIND_STORAGE, "good" },
    { SLUICE_PLUGIN_KIND_AUTH, "good" },
    { SLUICE_PLUGIN_KIND_TRANSPORT, "good" },
    { SLUICE_PLUGIN_KIND_TRANSPORT, "owns" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      const SluicePlugin *plugin = sluice_plugin_loader_load (loader, good[i].kind,
                                                              good[i].name, &error);
      g_autofree char *module = g_strdup_printf (
        "%s-%s", sluice_plugin_kind_to_string (good[i].kind), good[i].name);
      g_autofree char *file = fixture_file (module);

      g_assert_no_error (error);
      g_assert_nonnull (plugin);
      g_assert_cmpstr (plugin->module, ==, module);
      g_assert_cmpstr (plugin->file, ==, file);
      g_assert_nonnull (plugin->handle);
      g_assert_cmpuint (plugin->desc->magic, ==, SLUICE_PLUGIN_MAGIC);
      g_assert_cmpint (plugin->desc->kind, ==, good[i].kind);
      g_assert_cmpstr (plugin->desc->name, ==, good[i].name);
      g_assert_cmpstr (plugin->desc->version, ==, "1.0");
      g_assert_cmpstr (plugin->desc->license, ==, "Apache-2.0");
      g_assert_cmpstr (plugin->desc->owned_sections[0], ==, "fixture.");
      g_assert_cmpstr (plugin->desc->options[0].key, ==, "greeting");
      /* Loading again gives the same plugin. */
      g_assert_true (sluice_plugin_loader_load (loader, good[i].kind, good[i].name, &error)
                     == plugin);
      g_assert_no_error (error);
    }
  g_assert_cmpuint (sluice_plugin_loader_loaded (loader)->len, ==, G_N_ELEMENTS (good));
  sluice_plugin_loader_free (loader);
}

typedef struct {
  const char *path;          /* test path */
  SluicePluginKind kind;
  const char *name;
  gint code;
  const char *fix;           /* part of the message that says what to do */
} Refusal;

static const Refusal refusals[] = {
  { "/loader/refuse/no-symbol", SLUICE_PLUGIN_KIND_TRANSPORT, "nosymbol",
    SLUICE_PLUGIN_ERROR_NO_SYMBOL, "no symbol transport_nosymbol_LTX_sluice_plugin_query" },
  { "/loader/refuse/bad-magic", SLUICE_PLUGIN_KIND_TRANSPORT, "badmagic",
    SLUICE_PLUGIN_ERROR_BAD_MAGIC, "define the plugin with SLUICE_PLUGIN_DEFINE" },
  { "/loader/refuse/other-major", SLUICE_PLUGIN_KIND_TRANSPORT, "othermajor",
    SLUICE_PLUGIN_ERROR_ABI, "rebuild the plugin against Sluice SDK 1.x" },
  { "/loader/refuse/newer-minor", SLUICE_PLUGIN_KIND_TRANSPORT, "newminor",
    SLUICE_PLUGIN_ERROR_ABI, "upgrade sluiced" },
  { "/loader/refuse/small-descriptor", SLUICE_PLUGIN_KIND_TRANSPORT, "smalldesc",
    SLUICE_PLUGIN_ERROR_SIZE, "descriptor of 24 bytes" },
  { "/loader/refuse/small-vtable", SLUICE_PLUGIN_KIND_TRANSPORT, "smallvtable",
    SLUICE_PLUGIN_ERROR_SIZE, "transport vtable of" },
  { "/loader/refuse/bad-options", SLUICE_PLUGIN_KIND_TRANSPORT, "badoptions",
    SLUICE_PLUGIN_ERROR_SIZE, "option 'count'" },
  { "/loader/refuse/unknown-kind", SLUICE_PLUGIN_KIND_TRANSPORT, "wrongkind",
    SLUICE_PLUGIN_ERROR_KIND, "unknown plugin kind 42" },
  { "/loader/refuse/name-mismatch", SLUICE_PLUGIN_KIND_TRANSPORT, "mismatch",
    SLUICE_PLUGIN_ERROR_MISMATCH, "says transport-other but the file is transport-mismatch" },
  { "/loader/refuse/kind-mismatch", SLUICE_PLUGIN_KIND_TRANSPORT, "kindmismatch",
    SLUICE_PLUGIN_ERROR_MISMATCH, "says auth-kindmismatch but the file is transport-kindmismatch" },
  { "/loader/refuse/null-slot/transport", SLUICE_PLUGIN_KIND_TRANSPORT, "nullslot",
    SLUICE_PLUGIN_ERROR_MISSING_SLOT, "'connection_input' NULL (required unless" },
  { "/loader/refuse/null-slot/storage", SLUICE_PLUGIN_KIND_STORAGE, "nullslot",
    SLUICE_PLUGIN_ERROR_MISSING_SLOT, "'blob_delete' NULL" },
  { "/loader/refuse/null-slot/auth", SLUICE_PLUGIN_KIND_AUTH, "nullslot",
    SLUICE_PLUGIN_ERROR_MISSING_SLOT, "'authenticate' NULL" },
  { "/loader/refuse/no-license", SLUICE_PLUGIN_KIND_TRANSPORT, "nolicense",
    SLUICE_PLUGIN_ERROR_METADATA, "no license" },
  { "/loader/refuse/no-description", SLUICE_PLUGIN_KIND_TRANSPORT, "nodescription",
    SLUICE_PLUGIN_ERROR_METADATA, "no description" },
};

static void
test_refusal (gconstpointer data)
{
  const Refusal *r = data;
  SluicePluginLoader *loader = loader_for (fixture_dir, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *module = g_strdup_printf ("%s-%s", sluice_plugin_kind_to_string (r->kind),
                                             r->name);
  g_autofree char *file = fixture_file (module);
  g_autofree char *prefix = g_strconcat (file, ": ", NULL);
  const SluicePlugin *plugin = sluice_plugin_loader_load (loader, r->kind, r->name, &error);

  g_assert_null (plugin);
  g_assert_error (error, SLUICE_PLUGIN_ERROR, r->code);
  g_test_message ("%s", error->message);
  /* The message names the file first, then says how to fix it. */
  g_assert_true (g_str_has_prefix (error->message, prefix));
  g_assert_nonnull (strstr (error->message, r->fix));
  g_assert_cmpuint (sluice_plugin_loader_loaded (loader)->len, ==, 0);
  sluice_plugin_loader_free (loader);
}

static void
test_not_found (void)
{
  SluicePluginLoader *loader = loader_for (fixture_dir, NULL);
  g_autoptr (GError) error = NULL;

  g_assert_null (sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "nothere",
                                            &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "transport-nothere"));
  g_assert_nonnull (strstr (error->message, fixture_dir));
  g_assert_nonnull (strstr (error->message, "plugin-path"));
  g_clear_error (&error);

  /* A name is never a path. */
  g_assert_null (sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "../good",
                                            &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (sluice_plugin_loader_load (loader, (SluicePluginKind) 9, "good", &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_KIND);
  sluice_plugin_loader_free (loader);
}

static void
test_open_error (void)
{
  g_autofree char *dir = g_build_filename (g_get_user_data_dir (), "garbage", NULL);
  g_autofree char *file = g_build_filename (dir, "transport-garbage." G_MODULE_SUFFIX, NULL);
  g_autofree char *la = g_build_filename (dir, "transport-gone.la", NULL);
  g_autofree char *good_la = fixture_file ("transport-good");
  g_autofree char *la_text = NULL;
  const char *const extra[] = { dir, NULL };
  SluicePluginLoader *loader;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (file, "this is not an ELF object, but it is long enough "
                                      "to have a header that the dynamic linker reads\n",
                                      -1, NULL));
  loader = loader_for ("", extra);
  g_assert_null (sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "garbage",
                                            &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_OPEN);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, file));
  g_assert_nonnull (strstr (error->message, "cannot load"));
  /* The dynamic linker's reason, not libltdl's generic one. */
  g_assert_null (strstr (error->message, "file not found"));
  g_clear_error (&error);

  /* A libtool .la whose shared object is gone. */
  g_assert_true (g_file_get_contents (good_la, &la_text, NULL, NULL));
  g_assert_true (g_file_set_contents (la, la_text, -1, NULL));
  g_assert_null (sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "gone",
                                            &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_OPEN);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, la));
  g_assert_nonnull (strstr (error->message, "is missing"));
  sluice_plugin_loader_free (loader);
}

static void
test_duplicate (void)
{
  g_autofree char *path = g_strconcat (fixture_dir, ":", dup_dir, NULL);
  g_autofree char *first = fixture_file ("transport-dup");
  g_autofree char *second = g_build_filename (dup_dir, "transport-dup.la", NULL);
  SluicePluginLoader *loader = loader_for (path, NULL);
  g_autoptr (GError) error = NULL;
  const SluicePlugin *plugin;

  plugin = sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "dup", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (plugin->file, ==, first);
  g_assert_cmpstr (plugin->desc->version, ==, "1.0");
  /* The same file again is the same plugin... */
  g_assert_true (sluice_plugin_loader_load_file (loader, first, &error) == plugin);
  g_assert_no_error (error);
  /* ...another file with the same kind-name is refused. */
  g_assert_null (sluice_plugin_loader_load_file (loader, second, &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_DUPLICATE);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, second));
  g_assert_nonnull (strstr (error->message, first));
  g_assert_cmpuint (sluice_plugin_loader_loaded (loader)->len, ==, 1);
  g_clear_error (&error);

  g_assert_null (sluice_plugin_loader_load_file (loader, "/nowhere/libfoo.la", &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_MISMATCH);
  sluice_plugin_loader_free (loader);
}

static void
test_path_order (void)
{
  g_autofree char *path = g_strconcat (dup_dir, ":", fixture_dir, NULL);
  SluicePluginLoader *loader = loader_for (path, NULL);
  g_autoptr (GError) error = NULL;
  const SluicePlugin *plugin;

  /* The first folder on the path wins. */
  plugin = sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "dup", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (plugin->desc->version, ==, "2.0");
  g_assert_true (g_str_has_prefix (plugin->file, dup_dir));
  sluice_plugin_loader_free (loader);

  /* extra_path comes after $SLUICE_PLUGIN_PATH. */
  {
    const char *const extra[] = { dup_dir, NULL };
    loader = loader_for (fixture_dir, extra);
    plugin = sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "dup", &error);
    g_assert_no_error (error);
    g_assert_cmpstr (plugin->desc->version, ==, "1.0");
    sluice_plugin_loader_free (loader);
  }
}

static const char *const listed[] = {
  "auth-good 1.0 fixture auth-good",
  "storage-good 1.0 fixture storage-good",
  "transport-dup 1.0 fixture transport-dup",
  "transport-good 1.0 fixture transport-good",
  "transport-owns 1.0 fixture transport-owns",
};

static const char *const refused[] = {
  "transport-badmagic", "transport-newminor", "transport-othermajor", "transport-smalldesc",
  "transport-smallvtable", "transport-badoptions", "transport-wrongkind", "transport-mismatch",
  "transport-kindmismatch", "transport-nullslot", "storage-nullslot", "auth-nullslot",
  "transport-nolicense", "transport-nodescription", "transport-nosymbol",
};

static void
test_list_all (void)
{
  if (g_test_subprocess ())
    {
      SluicePluginLoader *loader = loader_for (fixture_dir, NULL);
      g_auto (GStrv) lines = sluice_plugin_loader_list_all (loader);
      guint found = 0;

      for (gsize i = 0; lines[i] != NULL; i++)
        {
          g_print ("%s\n", lines[i]);
          if (i > 0)
            g_assert_cmpstr (lines[i - 1], <, lines[i]);
          if (g_strv_contains (listed, lines[i]))
            found++;
          for (gsize j = 0; j < G_N_ELEMENTS (refused); j++)
            g_assert_false (g_str_has_prefix (lines[i], refused[j]));
        }
      g_assert_cmpuint (found, ==, G_N_ELEMENTS (listed));
      sluice_plugin_loader_free (loader);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*auth-good 1.0 fixture auth-good\n"
                             "storage-good 1.0 fixture storage-good\n"
                             "transport-dup 1.0 fixture transport-dup\n"
                             "transport-good 1.0 fixture transport-good\n"
                             "transport-owns 1.0 fixture transport-owns\n*");
  /* Every refused module is reported on stderr, by file. */
  for (gsize j = 0; j < G_N_ELEMENTS (refused); j++)
    {
      g_autofree char *file = fixture_file (refused[j]);
      g_autofree char *pattern = g_strdup_printf ("*%s: *", file);
      g_test_trap_assert_stderr (pattern);
    }
}

/* A bare `.so` (no `.la`) is a module too, as installed by some packagers. */
static void
test_list_all_so_only (void)
{
  g_autofree char *dir = g_build_filename (g_get_user_data_dir (), "so-only", NULL);
  g_autofree char *src = g_build_filename (fixture_dir, ".libs",
                                           "transport-good." G_MODULE_SUFFIX, NULL);
  g_autofree char *dst = g_build_filename (dir, "transport-good." G_MODULE_SUFFIX, NULL);
  g_autofree char *noise = g_build_filename (dir, "README", NULL);
  g_autofree gchar *contents = NULL;
  gsize len = 0;
  const char *const extra[] = { dir, NULL };
  SluicePluginLoader *loader;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GError) error = NULL;
  const SluicePlugin *plugin;

  g_assert_true (g_file_get_contents (src, &contents, &len, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (dst, contents, (gssize) len, &error));
  g_assert_true (g_file_set_contents (noise, "not a plugin", -1, &error));

  loader = loader_for ("", extra);
  lines = sluice_plugin_loader_list_all (loader);
  g_assert_true (g_strv_contains ((const char *const *) lines,
                                  "transport-good 1.0 fixture transport-good"));
  plugin = sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_TRANSPORT, "good", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (plugin->file, ==, dst);
  sluice_plugin_loader_free (loader);
}

/* ---- the checks on in-memory descriptors ---- */

static gpointer
tr_create (SluiceHost *h, const SluiceTransportConfig *c, const void *o, GError **e)
{
  return NULL;
}
static gboolean tr_start (gpointer s, GError **e) { return TRUE; }
static void tr_stop (gpointer s) {}
static void tr_destroy (gpointer s) {}

static const SluiceTransportVTable owns_vtable = {
  .flags = SLUICE_TRANSPORT_OWNS_LISTENERS,
  .create = tr_create, .start = tr_start, .stop = tr_stop, .destroy = tr_destroy,
};
static const SluiceTransportVTable plain_vtable = {
  .create = tr_create, .start = tr_start, .stop = tr_stop, .destroy = tr_destroy,
};

static SluicePluginDescriptor
descriptor (const SluiceTransportVTable *vt)
{
  SluicePluginDescriptor d = {
    .magic = SLUICE_PLUGIN_MAGIC,
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .struct_size = sizeof (SluicePluginDescriptor),
    .kind = SLUICE_PLUGIN_KIND_TRANSPORT,
    .name = "mem",
    .version = "0.1",
    .description = "in memory",
    .license = "MIT",
    .vtable = vt,
    .vtable_size = sizeof (*vt),
  };
  return d;
}

static void
test_check_descriptor (void)
{
  g_autoptr (GError) error = NULL;
  SluicePluginDescriptor d = descriptor (&owns_vtable);

  g_assert_true (sluice_plugin_check_descriptor (&d, SLUICE_PLUGIN_KIND_TRANSPORT, "mem", "f",
                                                 &error));
  g_assert_no_error (error);

  d = descriptor (&plain_vtable);
  g_assert_false (sluice_plugin_check_descriptor (&d, SLUICE_PLUGIN_KIND_TRANSPORT, "mem", "f",
                                                  &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_MISSING_SLOT);
  g_assert_nonnull (strstr (error->message, "connection_open"));
  g_clear_error (&error);

  d = descriptor (NULL);
  d.vtable_size = sizeof (SluiceTransportVTable);
  g_assert_false (sluice_plugin_check_descriptor (&d, SLUICE_PLUGIN_KIND_TRANSPORT, "mem", "f",
                                                  &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_MISSING_SLOT);
  g_clear_error (&error);

  g_assert_false (sluice_plugin_check_descriptor (NULL, SLUICE_PLUGIN_KIND_TRANSPORT, "mem", "f",
                                                  &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_BAD_MAGIC);
  g_clear_error (&error);

  d = descriptor (&owns_vtable);
  d.version = NULL;
  g_assert_false (sluice_plugin_check_descriptor (&d, SLUICE_PLUGIN_KIND_TRANSPORT, "mem", "f",
                                                  &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_METADATA);
  g_clear_error (&error);

  /* Order: a bad magic wins over everything after it. */
  d = descriptor (&plain_vtable);
  d.magic = 1;
  d.abi_major = 7;
  d.license = NULL;
  g_assert_false (sluice_plugin_check_descriptor (&d, SLUICE_PLUGIN_KIND_AUTH, "x", "f",
                                                  &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_BAD_MAGIC);
  g_clear_error (&error);
  /* ...and the ABI over the kind-name mismatch. */
  d.magic = SLUICE_PLUGIN_MAGIC;
  g_assert_false (sluice_plugin_check_descriptor (&d, SLUICE_PLUGIN_KIND_AUTH, "x", "f",
                                                  &error));
  g_assert_error (error, SLUICE_PLUGIN_ERROR, SLUICE_PLUGIN_ERROR_ABI);
  g_clear_error (&error);
  /* An older minor is fine. A larger descriptor (same minor) is too. */
  d = descriptor (&owns_vtable);
  d.struct_size += 64;
  g_assert_true (sluice_plugin_check_descriptor (&d, SLUICE_PLUGIN_KIND_TRANSPORT, "mem", "f",
                                                 &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  const char *builddir;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  builddir = g_getenv ("SLUICE_BUILDDIR");
  if (builddir != NULL)
    fixture_dir = g_build_filename (builddir, "tests", "unit", "plugins", NULL);
  else
    fixture_dir = g_strdup (FIXTURE_BUILDDIR);
  dup_dir = g_build_filename (fixture_dir, "dup", NULL);

  g_test_add_func ("/loader/path", test_path);
  g_test_add_func ("/loader/kind-to-string", test_kind_to_string);
  g_test_add_func ("/loader/load/good", test_load_good);
  for (gsize i = 0; i < G_N_ELEMENTS (refusals); i++)
    g_test_add_data_func (refusals[i].path, &refusals[i], test_refusal);
  g_test_add_func ("/loader/refuse/not-found", test_not_found);
  g_test_add_func ("/loader/refuse/open", test_open_error);
  g_test_add_func ("/loader/refuse/duplicate", test_duplicate);
  g_test_add_func ("/loader/path-order", test_path_order);
  g_test_add_func ("/loader/list-all", test_list_all);
  g_test_add_func ("/loader/list-all/so-only", test_list_all_so_only);
  g_test_add_func ("/loader/check-descriptor", test_check_descriptor);

  return g_test_run ();
}
