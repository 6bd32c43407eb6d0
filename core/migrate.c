/* Sluice core — `sluiced --migrate FROM-CONFIG TO-CONFIG`: copies a data
 * directory from one storage backend to another (the `[storage]` sections
 * and `[hub] data-dir` of the two files say which), then verifies it.
 *
 * Everything goes through the storage vtables, so any pair of backends
 * works: every partition log batch by batch at its own offsets (a log
 * trimmed by retention starts at the same first offset, through the
 * optional log_create_at slot), every KV pair (registry, twins, offsets,
 * sessions, stream settings) and every blob. The target must be empty;
 * sluiced must not run on either directory (the backends lock them). After
 * the copy every batch, key and blob is read back from both sides and
 * compared byte for byte, and every batch's CRC is checked.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"
#include "config-private.h"
#include "migrate-private.h"
#include "plugin-loader-private.h"

#include <stdio.h>
#include <string.h>

/* Bytes per log_read while copying. */
#define CHUNK_BYTES (4 * 1024 * 1024)
/* KV ops per kv_commit while copying. */
#define KV_OPS 512
/* Bytes per blob_read / blob_write while copying. */
#define BLOB_PIECE (1024 * 1024)

typedef struct {
  const char *role;           /* "from" / "to", for messages */
  SluiceConfig *config;
  SluicePluginLoader *loader;
  const SluicePlugin *plugin;
  const SluiceStorageVTable *vt;
  gpointer options;
  gpointer self;
} Side;

typedef struct {
  guint logs;
  guint64 batches, records, bytes;
  guint keys;
  guint blobs;
  guint64 blob_bytes;
} Counts;

static void
side_close (Side *s)
{
  if (s->self != NULL)
    s->vt->close (s->self);
  if (s->options != NULL)
    {
      if (s->plugin->desc->options != NULL)
        sluice_options_clear (s->plugin->desc->options, s->options);
      g_free (s->options);
    }
  if (s->loader != NULL)
    sluice_plugin_loader_free (s->loader);
  if (s->config != NULL)
    sluice_config_free (s->config);
}

/* Does the backend's vtable reach `slot` (an optional slot appended after
 * ABI 1.0)? */
#define HAS_SLOT(s, slot)                                                          \
  ((s)->plugin->desc->vtable_size >= G_STRUCT_OFFSET (SluiceStorageVTable, slot)   \
                                         + sizeof (gpointer)                       \
   && (s)->vt->slot != NULL)

static gboolean
side_load (Side *s, const char *path, GError **error)
{
  static const char *const extra[] = { "plugin", NULL };
  static const SluiceOption none[] = { SLUICE_OPTION_END };
  const SluicePluginDescriptor *d;

  s->config = sluice_config_load (path, error);
  if (s->config == NULL)
    return FALSE;
  s->loader = sluice_plugin_loader_new ((const char *const *) s->config->plugin_path);
  s->plugin = sluice_plugin_loader_load (s->loader, SLUICE_PLUGIN_KIND_STORAGE,
                                         s->config->storage_plugin, error);
  if (s->plugin == NULL)
    return FALSE;
  d = s->plugin->desc;
  s->vt = d->vtable;
  s->options = g_malloc0 (MAX (d->options_size, 1));
  if (g_key_file_has_group (s->config->keyfile, "storage")
      && !sluice_config_parse_section (s->config, "storage", d->options ? d->options : none,
                                       extra, s->options, error))
    return FALSE;
  if (!g_key_file_has_group (s->config->keyfile, "storage") && d->options != NULL)
    {
      /* Defaults, as if the section were there and empty. */
      g_autoptr (SluiceConfig) empty = sluice_config_load_from_data (path, "[storage]\n", error);
      if (empty == NULL
          || !sluice_config_parse_section (empty, "storage", d->options, extra, s->options,
                                           error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
side_open (Side *s, gboolean create, GError **error)
{
  const char *path = s->config->path;

  if (create && g_mkdir_with_parents (s->config->data_dir, 0750) < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE, "cannot create %s",
                   s->config->data_dir);
      return FALSE;
    }
  if (!create && !g_file_test (s->config->data_dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                   "%s: data directory %s does not exist", path, s->config->data_dir);
      return FALSE;
    }
  s->self = s->vt->open (NULL, s->options, s->config->data_dir, error);
  if (s->self == NULL)
    return FALSE;
  return TRUE;
}

static gboolean
list_logs (Side *s, GPtrArray **streams, GArray **parts, GError **error)
{
  *streams = g_ptr_array_new_with_free_func (g_free);
  *parts = g_array_new (FALSE, FALSE, sizeof (gint32));
  return s->vt->log_list (s->self, *streams, *parts, error);
}

static gboolean
check_empty (Side *to, GError **error)
{
  g_autoptr (GPtrArray) streams = NULL;
  g_autoptr (GArray) parts = NULL;
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func (g_free);

  if (!list_logs (to, &streams, &parts, error)
      || !to->vt->kv_scan (to->self, "", pairs, error)
      || (HAS_SLOT (to, blob_list) && !to->vt->blob_list (to->self, "", blobs, error)))
    return FALSE;
  if (streams->len > 0 || pairs->len > 0 || blobs->len > 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS,
                   "the target data directory %s is not empty (%u logs, %u keys, %u blobs); "
                   "migrate into a new directory", to->config->data_dir, streams->len,
                   pairs->len, blobs->len);
      return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* logs */

static gboolean
copy_log (Side *from, Side *to, const SluiceLogId *id, Counts *c, GError **error)
{
  gint64 first, next, cursor;

  if (!from->vt->log_bounds (from->self, id, &first, &next, error))
    return FALSE;
  if (first == 0)
    {
      if (!to->vt->log_create (to->self, id, error))
        return FALSE;
    }
  else if (!HAS_SLOT (to, log_create_at))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNSUPPORTED,
                   "stream '%s' partition %d starts at offset %" G_GINT64_FORMAT
                   " (retention) and storage %s cannot create a log there", id->stream,
                   id->partition, first, to->plugin->desc->name);
      return FALSE;
    }
  else if (!to->vt->log_create_at (to->self, id, first, error))
    return FALSE;

  for (cursor = first; cursor < next;)
    {
      g_autoptr (GPtrArray) batches = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
      g_autofree gint64 *assigned = NULL;

      if (!from->vt->log_read (from->self, id, cursor, CHUNK_BYTES, batches, error))
        return FALSE;
      if (batches->len == 0)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                       "stream '%s' partition %d: nothing at offset %" G_GINT64_FORMAT
                       " before the end %" G_GINT64_FORMAT, id->stream, id->partition,
                       cursor, next);
          return FALSE;
        }
      assigned = g_new (gint64, batches->len);
      if (!to->vt->log_append (to->self, id, (SluiceBatch *const *) batches->pdata,
                               batches->len, assigned, error))
        return FALSE;
      for (guint i = 0; i < batches->len; i++)
        {
          SluiceBatch *b = batches->pdata[i];
          if (assigned[i] != b->base_offset)
            {
              g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNSUPPORTED,
                           "stream '%s' partition %d: storage %s stored the batch at offset %"
                           G_GINT64_FORMAT " at %" G_GINT64_FORMAT " (offsets must not "
                           "change)", id->stream, id->partition, to->plugin->desc->name,
                           b->base_offset, assigned[i]);
              return FALSE;
            }
          c->batches++;
          c->records += b->record_count;
          c->bytes += g_bytes_get_size (b->data);
          cursor = b->base_offset + b->record_count;
        }
    }
  if (!to->vt->sync (to->self, id, 1, error))
    return FALSE;
  c->logs++;
  return TRUE;
}

static gboolean
verify_log (Side *from, Side *to, const SluiceLogId *id, Counts *c, GError **error)
{
  gint64 f1, n1, f2, n2, cursor;

  if (!from->vt->log_bounds (from->self, id, &f1, &n1, error)
      || !to->vt->log_bounds (to->self, id, &f2, &n2, error))
    return FALSE;
  if (f1 != f2 || n1 != n2)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                   "stream '%s' partition %d: offsets %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT
                   " in the source, %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT " in the copy",
                   id->stream, id->partition, f1, n1, f2, n2);
      return FALSE;
    }
  for (cursor = f1; cursor < n1;)
    {
      g_autoptr (GPtrArray) a = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
      g_autoptr (GPtrArray) b = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);

      if (!from->vt->log_read (from->self, id, cursor, CHUNK_BYTES, a, error)
          || !to->vt->log_read (to->self, id, cursor, CHUNK_BYTES, b, error))
        return FALSE;
      if (a->len == 0 || b->len == 0)
        break;
      for (guint i = 0; i < MIN (a->len, b->len); i++)
        {
          SluiceBatch *x = a->pdata[i], *y = b->pdata[i];
          gsize len;
          const guint8 *data = g_bytes_get_data (y->data, &len);
          gint32 count = -1;

          if (x->base_offset != y->base_offset || x->record_count != y->record_count
              || x->max_timestamp != y->max_timestamp || !g_bytes_equal (x->data, y->data)
              || !sluice_batch_validate (data, len, &count, NULL, NULL)
              || count != y->record_count)
            {
              g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
                           "stream '%s' partition %d: the copy of the batch at offset %"
                           G_GINT64_FORMAT " differs from the source", id->stream,
                           id->partition, x->base_offset);
              return FALSE;
            }
          cursor = x->base_offset + x->record_count;
        }
    }
  if (cursor < n1)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                   "stream '%s' partition %d: verification stopped at offset %" G_GINT64_FORMAT
                   " before the end %" G_GINT64_FORMAT, id->stream, id->partition, cursor, n1);
      return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* KV */

static gboolean
copy_kv (Side *from, Side *to, Counts *c, GError **error)
{
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  g_autofree SluiceKvOp *ops = NULL;

  if (!from->vt->kv_scan (from->self, "", pairs, error))
    return FALSE;
  ops = g_new0 (SluiceKvOp, MIN (pairs->len, KV_OPS) + 1);
  for (guint at = 0; at < pairs->len; at += KV_OPS)
    {
      guint n = MIN (KV_OPS, pairs->len - at);

      for (guint i = 0; i < n; i++)
        {
          SluiceKvPair *p = pairs->pdata[at + i];
          ops[i].type = SLUICE_KV_PUT;
          ops[i].key = p->key;
          ops[i].value = p->value;
        }
      if (!to->vt->kv_commit (to->self, ops, n, error))
        return FALSE;
    }
  c->keys = pairs->len;
  return TRUE;
}

static gboolean
verify_kv (Side *from, Side *to, GError **error)
{
  g_autoptr (GPtrArray) a = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  g_autoptr (GPtrArray) b = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);

  if (!from->vt->kv_scan (from->self, "", a, error) || !to->vt->kv_scan (to->self, "", b, error))
    return FALSE;
  for (guint i = 0; i < MAX (a->len, b->len); i++)
    {
      SluiceKvPair *x = i < a->len ? a->pdata[i] : NULL;
      SluiceKvPair *y = i < b->len ? b->pdata[i] : NULL;

      if (x == NULL || y == NULL || strcmp (x->key, y->key) != 0
          || !g_bytes_equal (x->value, y->value))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                       "key '%s' differs between the source and the copy",
                       x ? x->key : y->key);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* blobs */

static gboolean
copy_blob (Side *from, Side *to, const char *name, Counts *c, GError **error)
{
  SluiceBlobWriter *w = to->vt->blob_open_write (to->self, name, error);
  guint64 offset = 0, total = 0;

  if (w == NULL)
    return FALSE;
  do
    {
      g_autoptr (GBytes) piece = from->vt->blob_read (from->self, name, offset, BLOB_PIECE,
                                                      &total, error);
      gsize len;
      const guint8 *data;

      if (piece == NULL)
        {
          to->vt->blob_abort (to->self, w);
          return FALSE;
        }
      data = g_bytes_get_data (piece, &len);
      if (len == 0)
        break;
      if (!to->vt->blob_write (to->self, w, data, len, error))
        {
          to->vt->blob_abort (to->self, w);
          return FALSE;
        }
      offset += len;
    }
  while (offset < total);
  if (!to->vt->blob_commit (to->self, w, error))
    return FALSE;
  c->blobs++;
  c->blob_bytes += offset;
  return TRUE;
}

static gboolean
verify_blob (Side *from, Side *to, const char *name, GError **error)
{
  guint64 offset = 0, t1 = 0, t2 = 0;

  do
    {
      g_autoptr (GBytes) a = from->vt->blob_read (from->self, name, offset, BLOB_PIECE, &t1,
                                                  error);
      g_autoptr (GBytes) b = a ? to->vt->blob_read (to->self, name, offset, BLOB_PIECE, &t2,
                                                    error)
                               : NULL;
      if (b == NULL)
        return FALSE;
      if (t1 != t2 || !g_bytes_equal (a, b))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                       "blob '%s' differs between the source and the copy", name);
          return FALSE;
        }
      if (g_bytes_get_size (a) == 0)
        break;
      offset += g_bytes_get_size (a);
    }
  while (offset < t1);
  return TRUE;
}

/* ---------------------------------------------------------------------- */

static gboolean
migrate (Side *from, Side *to, GError **error)
{
  g_autoptr (GPtrArray) streams = NULL;
  g_autoptr (GArray) parts = NULL;
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func (g_free);
  Counts c = { 0 };

  if (!check_empty (to, error) || !list_logs (from, &streams, &parts, error))
    return FALSE;
  if (!HAS_SLOT (from, blob_list))
    g_warning ("storage %s cannot list its blobs: blobs are not copied",
               from->plugin->desc->name);
  else if (!from->vt->blob_list (from->self, "", blobs, error))
    return FALSE;

  for (guint i = 0; i < streams->len; i++)
    {
      SluiceLogId id = { streams->pdata[i], g_array_index (parts, gint32, i) };
      if (!copy_log (from, to, &id, &c, error))
        return FALSE;
    }
  /* The KV after the logs: the streams' settings in it then name logs that
   * exist, should the copy be cut short. */
  if (!copy_kv (from, to, &c, error))
    return FALSE;
  for (guint i = 0; i < blobs->len; i++)
    if (!copy_blob (from, to, blobs->pdata[i], &c, error))
      return FALSE;

  for (guint i = 0; i < streams->len; i++)
    {
      SluiceLogId id = { streams->pdata[i], g_array_index (parts, gint32, i) };
      if (!verify_log (from, to, &id, &c, error))
        return FALSE;
    }
  if (!verify_kv (from, to, error))
    return FALSE;
  for (guint i = 0; i < blobs->len; i++)
    if (!verify_blob (from, to, blobs->pdata[i], error))
      return FALSE;

  g_print ("migrated %s (%s) to %s (%s)\n", from->config->data_dir, from->plugin->desc->name,
           to->config->data_dir, to->plugin->desc->name);
  g_print ("logs %u\nbatches %" G_GUINT64_FORMAT "\nrecords %" G_GUINT64_FORMAT
           "\nbytes %" G_GUINT64_FORMAT "\nkeys %u\nblobs %u\nblob-bytes %" G_GUINT64_FORMAT
           "\nverified\n", c.logs, c.batches, c.records, c.bytes, c.keys, c.blobs,
           c.blob_bytes);
  return TRUE;
}

int
sluice_migrate_main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  const char *from_path = NULL, *to_path = NULL;
  Side from = { "from" }, to = { "to" };
  gboolean ok;

  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--migrate") == 0 && i + 2 < argc)
      {
        from_path = argv[i + 1];
        to_path = argv[i + 2];
        if (i + 3 != argc || i != 1)
          from_path = NULL;
      }
  if (from_path == NULL)
    {
      g_printerr ("usage: sluiced --migrate FROM-CONFIG TO-CONFIG\n"
                  "Copies the data directory of FROM-CONFIG ([hub] data-dir, [storage]) into "
                  "the empty one of TO-CONFIG and verifies the copy. sluiced must not be "
                  "running on either.\n");
      return 2;
    }
  sluice_log_setup (g_getenv ("SLUICE_LOG_LEVEL") ? g_getenv ("SLUICE_LOG_LEVEL") : "warning");

  ok = side_load (&from, from_path, &error) && side_load (&to, to_path, &error);
  if (ok)
    {
      g_autofree char *a = g_canonicalize_filename (from.config->data_dir, NULL);
      g_autofree char *b = g_canonicalize_filename (to.config->data_dir, NULL);
      if (strcmp (a, b) == 0)
        {
          g_set_error (&error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "both configurations use the data directory %s", a);
          ok = FALSE;
        }
    }
  ok = ok && side_open (&from, FALSE, &error) && side_open (&to, TRUE, &error);
  ok = ok && migrate (&from, &to, &error);
  side_close (&to);
  side_close (&from);
  if (!ok)
    {
      g_printerr ("sluiced --migrate: %s\n", error->message);
      return 1;
    }
  return 0;
}
