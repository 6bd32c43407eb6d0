/* The storage contract suite — loading the backend, the fixture and the
 * batch helpers every case shares.
 * SPDX-License-Identifier: Apache-2.0 */
#include "storage-contract.h"

#include <glib/gstdio.h>
#include <string.h>

#ifndef STORAGE_PLUGIN_DEFAULT
#define STORAGE_PLUGIN_DEFAULT "file"
#endif
#ifndef STORAGE_OPTIONS_DEFAULT
#define STORAGE_OPTIONS_DEFAULT ""
#endif

static SluicePluginLoader *loader;
static const SluicePlugin *plugin;
static SluiceConfig *config;
static gpointer options;         /* valid for every open: the vtable says so */

const SluiceStorageVTable *
contract_vtable (void)
{
  return plugin->desc->vtable;
}

static void
load_backend (void)
{
  const char *name = g_getenv ("SLUICE_STORAGE_PLUGIN");
  const char *opts = g_getenv ("SLUICE_STORAGE_OPTIONS");
  static const char *const extra[] = { "plugin", NULL };
  static const SluiceOption empty[] = { SLUICE_OPTION_END };
  g_autoptr (GString) text = g_string_new ("[storage]\n");
  g_auto (GStrv) pairs = NULL;
  g_autoptr (GError) error = NULL;
  const SluicePluginDescriptor *d;

  if (name == NULL || *name == '\0')
    name = STORAGE_PLUGIN_DEFAULT;
  if (opts == NULL)
    opts = STORAGE_OPTIONS_DEFAULT;

  loader = sluice_plugin_loader_new (NULL);
  plugin = sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_STORAGE, name, &error);
  if (plugin == NULL)
    g_error ("cannot load storage plugin '%s' (SLUICE_PLUGIN_PATH=%s): %s", name,
             g_getenv ("SLUICE_PLUGIN_PATH"), error->message);
  d = plugin->desc;

  g_string_append_printf (text, "plugin = %s\n", name);
  pairs = g_strsplit (opts, ";", -1);
  for (guint i = 0; pairs[i] != NULL; i++)
    if (*g_strstrip (pairs[i]) != '\0')
      g_string_append_printf (text, "%s\n", pairs[i]);
  config = sluice_config_load_from_data ("contract.conf", text->str, &error);
  if (config == NULL)
    g_error ("bad SLUICE_STORAGE_OPTIONS '%s': %s", opts, error->message);
  options = g_malloc0 (MAX (d->options_size, 1));
  if (!sluice_config_parse_section (config, "storage", d->options ? d->options : empty, extra,
                                    options, &error))
    g_error ("bad SLUICE_STORAGE_OPTIONS '%s': %s", opts, error->message);
  g_test_message ("storage plugin %s %s (%s), options '%s'", d->name, d->version,
                  plugin->file, opts);
}

static void
unload_backend (void)
{
  if (plugin->desc->options != NULL)
    sluice_options_clear (plugin->desc->options, options);
  g_free (options);
  sluice_config_free (config);
  sluice_plugin_loader_free (loader);
}

/* ---------------------------------------------------------------------- */
/* fixture */

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
    }
  g_remove (path);
}

void
store_open (Store *s)
{
  g_autoptr (GError) error = NULL;

  /* A NULL host: backends must not need one for storage alone. */
  s->self = s->vt->open (NULL, options, s->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (s->self);
}

void
store_close (Store *s)
{
  s->vt->close (s->self);
  s->self = NULL;
}

void
store_reopen (Store *s)
{
  store_close (s);
  store_open (s);
}

void
store_setup (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  s->vt = contract_vtable ();
  s->dir = g_dir_make_tmp ("storage-contract-XXXXXX", &error);
  g_assert_no_error (error);
  store_open (s);
}

void
store_teardown (Store *s, gconstpointer data)
{
  if (s->self != NULL)
    store_close (s);
  remove_tree (s->dir);
  g_assert_false (g_file_test (s->dir, G_FILE_TEST_EXISTS));
  g_free (s->dir);
}

/* ---------------------------------------------------------------------- */
/* batches */

static gsize
pattern_len (gint64 offset)
{
  return 8 + (gsize) ((offset * 37) % 180);
}

static void
pattern_fill (guint8 *buf, gint64 offset, gsize len)
{
  for (gsize k = 0; k < len; k++)
    buf[k] = (guint8) (offset * 131 + (gint64) k);
}

SluiceBatch *
contract_batch (gint64 base, guint n, gint64 append_time)
{
  g_autoptr (SluiceBatchBuilder) b = sluice_batch_builder_new (append_time - 5);
  g_autoptr (GBytes) bytes = NULL;
  guint8 value[256];
  guint8 *data;
  gsize len;

  for (guint i = 0; i < n; i++)
    {
      gint64 o = base + i;
      g_autofree char *key = g_strdup_printf ("key-%" G_GINT64_FORMAT, o);
      static const char *const headers[] = { "content-type", "application/octet-stream",
                                             NULL };

      pattern_fill (value, o, pattern_len (o));
      sluice_batch_builder_add (b, (const guint8 *) key, -1, value, (gssize) pattern_len (o),
                                headers, append_time - 5 + i);
    }
  bytes = sluice_batch_builder_finish (g_steal_pointer (&b));
  data = g_bytes_unref_to_data (g_steal_pointer (&bytes), &len);
  sluice_batch_stamp (data, len, base, append_time);
  bytes = g_bytes_new_take (data, len);
  return sluice_batch_new (base, (gint32) n, append_time, bytes);
}

void
contract_check_batch (const SluiceBatch *b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceBatchReader) reader = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (b->data, &len);
  gint32 count = -1;
  gint64 max_ts = 0;
  SluiceRecordView rec;
  gint64 expected = b->base_offset;
  guint8 value[256];

  g_assert_true (sluice_batch_validate (data, len, &count, &max_ts, &error));
  g_assert_no_error (error);
  g_assert_cmpint (count, ==, b->record_count);
  g_assert_cmpint (max_ts, ==, b->max_timestamp);

  reader = sluice_batch_reader_new (b->data, &error);
  g_assert_no_error (error);
  while (sluice_batch_reader_next (reader, &rec, &error))
    {
      g_assert_cmpint (rec.offset, ==, expected);
      g_assert_cmpuint (rec.value_len, ==, pattern_len (expected));
      pattern_fill (value, expected, rec.value_len);
      g_assert_true (memcmp (rec.value, value, rec.value_len) == 0);
      expected++;
    }
  g_assert_no_error (error);
  g_assert_cmpint (expected, ==, b->base_offset + b->record_count);
}

gboolean
contract_same_bytes (const SluiceBatch *a, const SluiceBatch *b)
{
  return a->base_offset == b->base_offset && a->record_count == b->record_count
         && a->max_timestamp == b->max_timestamp && g_bytes_equal (a->data, b->data);
}

void
contract_bounds (Store *s, const SluiceLogId *log, gint64 *first, gint64 *next)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (s->vt->log_bounds (s->self, log, first, next, &error));
  g_assert_no_error (error);
}

GPtrArray *
contract_append (Store *s, const SluiceLogId *log, guint count, guint per)
{
  GPtrArray *appended = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
  g_autoptr (GError) error = NULL;
  gint64 next;

  g_assert_true (s->vt->log_create (s->self, log, &error));
  g_assert_no_error (error);
  contract_bounds (s, log, NULL, &next);
  for (guint i = 0; i < count; i++)
    {
      SluiceBatch *b = contract_batch (next, per, CONTRACT_T0 + 1000 * next);
      gint64 assigned = -1;

      g_assert_true (s->vt->log_append (s->self, log, &b, 1, &assigned, &error));
      g_assert_no_error (error);
      g_assert_cmpint (assigned, ==, next);
      g_ptr_array_add (appended, b);
      next += per;
    }
  g_assert_true (s->vt->sync (s->self, log, 1, &error));
  g_assert_no_error (error);
  return appended;
}

GPtrArray *
contract_read (Store *s, const SluiceLogId *log, gint64 from, gsize max_bytes, GError **error)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);

  if (!s->vt->log_read (s->self, log, from, max_bytes, out, error))
    {
      g_assert (error == NULL || *error != NULL);
      g_ptr_array_set_size (out, 0);
    }
  return out;
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  load_backend ();
  contract_add_log_tests ();
  contract_add_trim_tests ();
  contract_add_kv_tests ();
  contract_add_blob_tests ();
  contract_add_concurrency_tests ();
  ret = g_test_run ();
  unload_backend ();
  return ret;
}
