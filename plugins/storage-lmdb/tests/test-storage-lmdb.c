/* storage-lmdb's own tests: what the contract suite cannot see from the
 * outside — the map growing under appends, a damaged batch answered as
 * CORRUPT while its neighbours stay readable, damaged LMDB pages reported by
 * the verification pass instead of a crash, and sync running beside appends.
 * The plugin is compiled in, so the tests reach its store and files.
 * SPDX-License-Identifier: Apache-2.0 */
#include "lmdb-store.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

extern const SluicePluginDescriptor *storage_lmdb_LTX_sluice_plugin_query (void);

/* Warnings are captured, not fatal: some cases expect one. */
static GMutex log_lock;
static GString *log_text;

static GLogWriterOutput
capture (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (strcmp (fields[i].key, "MESSAGE") == 0)
      {
        g_mutex_lock (&log_lock);
        g_string_append_printf (log_text, "%s %s\n",
                                (level & G_LOG_LEVEL_WARNING) ? "WARNING" : "OTHER",
                                (const char *) fields[i].value);
        g_mutex_unlock (&log_lock);
      }
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
    return g_log_writer_default (level, fields, n_fields, user_data);
  return G_LOG_WRITER_HANDLED;
}

static gboolean
logged (const char *text)
{
  gboolean found;

  g_mutex_lock (&log_lock);
  found = strstr (log_text->str, text) != NULL;
  if (!found)
    g_test_message ("captured: %s", log_text->str);
  g_mutex_unlock (&log_lock);
  return found;
}

typedef struct {
  char *dir;
  const SluiceStorageVTable *vt;
  LmdbOptions options;
  LmdbStore *store;
} Fixture;

static const SluiceLogId log0 = { "events", 0 };

static void
fixture_open (Fixture *f, GError **error)
{
  f->store = f->vt->open (NULL, &f->options, f->dir, error);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->vt = storage_lmdb_LTX_sluice_plugin_query ()->vtable;
  f->dir = g_dir_make_tmp ("storage-lmdb-XXXXXX", &error);
  g_assert_no_error (error);
  f->options.map_size = 1024 * 1024;
  f->options.max_map_size = G_GUINT64_CONSTANT (1) << 30;
  f->options.verify_at_open = TRUE;
  fixture_open (f, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    while ((name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *child = g_build_filename (path, name, NULL);
        remove_tree (child);
      }
  g_remove (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->store != NULL)
    f->vt->close (f->store);
  remove_tree (f->dir);
  g_free (f->dir);
}

/* A stamped batch of `n` records of `size` bytes at `base`. */
static SluiceBatch *
make_batch (gint64 base, guint n, gsize size)
{
  g_autoptr (SluiceBatchBuilder) b = sluice_batch_builder_new (1700000000000);
  g_autofree guint8 *value = g_malloc (size);
  g_autoptr (GBytes) bytes = NULL;
  guint8 *data;
  gsize len;

  for (guint i = 0; i < n; i++)
    {
      memset (value, (int) ((base + i) & 0xff), size);
      sluice_batch_builder_add (b, NULL, 0, value, (gssize) size, NULL, 1700000000000);
    }
  bytes = sluice_batch_builder_finish (g_steal_pointer (&b));
  data = g_bytes_unref_to_data (g_steal_pointer (&bytes), &len);
  sluice_batch_stamp (data, len, base, 1700000000000 + base);
  bytes = g_bytes_new_take (data, len);
  return sluice_batch_new (base, (gint32) n, 1700000000000 + base, bytes);
}

static void
append_n (Fixture *f, guint count, guint per, gsize size)
{
  g_autoptr (GError) error = NULL;
  gint64 next;

  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  g_assert_true (f->vt->log_bounds (f->store, &log0, NULL, &next, &error));
  for (guint i = 0; i < count; i++)
    {
      g_autoptr (SluiceBatch) b = make_batch (next, per, size);
      g_assert_true (f->vt->log_append (f->store, &log0, &b, 1, NULL, &error));
      g_assert_no_error (error);
      next += per;
    }
  g_assert_true (f->vt->sync (f->store, &log0, 1, &error));
  g_assert_no_error (error);
}

static void
test_map_grows (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  guint64 first_map = f->store->map_size;
  gint64 first, next;

  /* 200 batches of 4 x 25 KB: 20 MB through a 1 MiB map. */
  append_n (f, 200, 4, 25000);
  g_assert_cmpuint (f->store->map_size, >, first_map);
  g_assert_cmpuint (f->store->map_size, >=, 20 * 1000 * 1000);
  g_assert_true (f->vt->log_bounds (f->store, &log0, &first, &next, &error));
  g_assert_cmpint (next, ==, 800);

  /* A map that may not grow far enough: the store says it is full, and
   * stays usable. */
  f->vt->close (f->store);
  f->options.max_map_size = f->options.map_size = 24 * 1024 * 1024;
  fixture_open (f, &error);
  g_assert_no_error (error);
  {
    gboolean full = FALSE;
    for (guint i = 0; i < 4 && !full; i++)
      {
        g_autoptr (SluiceBatch) b = make_batch (800 + i, 1, 3 * 1024 * 1024);
        if (!f->vt->log_append (f->store, &log0, &b, 1, NULL, &error))
          {
            g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE);
            g_assert_nonnull (strstr (error->message, "full"));
            g_clear_error (&error);
            full = TRUE;
          }
      }
    g_assert_true (full);
  }
  {
    g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
    g_assert_true (f->vt->log_read (f->store, &log0, 0, 1, out, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 1);
  }
}

/* Flip one byte inside the stored batch at `base` (through LMDB, as a
 * damaged disk block would look once read). */
static void
flip_stored_byte (Fixture *f, gint64 base, gsize at)
{
  MDB_txn *txn;
  MDB_val key, val;
  guint8 kb[64];
  gsize n = strlen (log0.stream);
  g_autofree guint8 *copy = NULL;

  memcpy (kb, log0.stream, n + 1);
  lmdb_put_be32 (kb + n + 1, (guint32) log0.partition);
  lmdb_put_be64 (kb + n + 5, (guint64) base);
  key.mv_size = n + 13;
  key.mv_data = kb;
  g_assert_cmpint (mdb_txn_begin (f->store->env, NULL, 0, &txn), ==, 0);
  g_assert_cmpint (mdb_get (txn, f->store->logs, &key, &val), ==, 0);
  copy = g_memdup2 (val.mv_data, val.mv_size);
  g_assert_cmpuint (at, <, val.mv_size);
  copy[at] ^= 0x40;
  val.mv_data = copy;
  g_assert_cmpint (mdb_put (txn, f->store->logs, &key, &val, 0), ==, 0);
  g_assert_cmpint (mdb_txn_commit (txn), ==, 0);
}

static void
test_corrupt_batch (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);

  append_n (f, 10, 2, 100);
  flip_stored_byte (f, 8, LMDB_BATCH_HEADER + 100);

  /* At the damaged batch: CORRUPT, naming stream, partition and offset. */
  g_assert_false (f->vt->log_read (f->store, &log0, 9, 4096, out, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "'events'"));
  g_assert_nonnull (strstr (error->message, "partition 0"));
  g_assert_nonnull (strstr (error->message, "offset 8"));
  g_clear_error (&error);

  /* Before it: the read stops short of it. After it: readable. */
  g_assert_true (f->vt->log_read (f->store, &log0, 0, G_MAXSIZE, out, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 4);
  g_ptr_array_set_size (out, 0);
  g_assert_true (f->vt->log_read (f->store, &log0, 10, G_MAXSIZE, out, &error));
  g_assert_cmpuint (out->len, ==, 5);
  g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, 0))->base_offset, ==, 10);
  for (guint i = 0; i < out->len; i++)
    {
      SluiceBatch *b = g_ptr_array_index (out, i);
      gsize len;
      const guint8 *d = g_bytes_get_data (b->data, &len);
      g_assert_true (sluice_batch_validate (d, len, NULL, NULL, &error));
    }

  /* The newest batch damaged too: the verification pass at open tells,
   * and the store still opens (LMDB commits are atomic: this is damage,
   * not a torn write to cut off). */
  flip_stored_byte (f, 18, LMDB_BATCH_HEADER + 100);
  f->vt->close (f->store);
  fixture_open (f, &error);
  g_assert_no_error (error);
  g_assert_true (logged ("WARNING storage lmdb: stream 'events' partition 0: the newest batch "
                         "(offset 18) fails its CRC"));
  g_assert_false (logged ("offset 8)"));
  g_ptr_array_set_size (out, 0);
  g_assert_false (f->vt->log_read (f->store, &log0, 18, 4096, out, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT);
}

static void
test_damaged_pages (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *file = g_build_filename (f->dir, "lmdb", "data.mdb", NULL);
  guint psize = f->store->page_size;
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  g_autofree guint8 *junk = NULL;
  goffset size;
  gsize len;
  int fd;

  append_n (f, 50, 2, 300);
  {
    g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
    SluiceKvOp op = { SLUICE_KV_PUT, "devices/a", g_bytes_new_static ("x", 1) };
    g_assert_true (f->vt->kv_commit (f->store, &op, 1, &error));
    g_bytes_unref (op.value);
  }
  f->vt->close (f->store);
  f->store = NULL;

  /* A healthy store passes the verification. */
  fixture_open (f, &error);
  g_assert_no_error (error);
  f->vt->close (f->store);
  f->store = NULL;

  /* Every page but the two meta pages overwritten with noise: the B-tree
   * pointers lead anywhere. */
  fd = open (file, O_WRONLY);
  g_assert_cmpint (fd, >=, 0);
  size = lseek (fd, 0, SEEK_END);
  g_assert_cmpint (size, >, 2 * psize);
  len = MIN ((gsize) (size - 2 * psize), (gsize) 1 << 30);
  junk = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    junk[i] = (guint8) g_rand_int (rand);
  g_assert_cmpint (pwrite (fd, junk, len, 2 * psize), ==, (gssize) len);
  close (fd);

  fixture_open (f, &error);
  g_assert_null (f->store);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "data.mdb is damaged"));
  g_test_message ("reported: %s", error->message);
}

typedef struct {
  Fixture *f;
  gint stop;
  gint syncs;
} SyncRace;

static gpointer
syncer (gpointer data)
{
  SyncRace *r = data;

  while (!g_atomic_int_get (&r->stop))
    {
      g_autoptr (GError) error = NULL;
      g_assert_true (r->f->vt->sync (r->f->store, &log0, 1, &error));
      g_assert_no_error (error);
      g_atomic_int_inc (&r->syncs);
    }
  return NULL;
}

static void
test_sync_beside_append (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  SyncRace race = { f, 0, 0 };
  GThread *t;
  gint64 next;

  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  t = g_thread_new ("syncer", syncer, &race);
  /* Appends large enough to make the map grow while syncs run. */
  append_n (f, 300, 2, 20000);
  g_atomic_int_set (&race.stop, 1);
  g_thread_join (t);
  g_assert_cmpint (race.syncs, >, 0);
  f->vt->close (f->store);
  fixture_open (f, &error);
  g_assert_no_error (error);
  g_assert_true (f->vt->log_bounds (f->store, &log0, NULL, &next, &error));
  g_assert_cmpint (next, ==, 600);
}

static void
test_create_at_blob_list (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  static const char *const blobs[] = { "b/2", "a/1", "b/1" };
  gint64 first, next;

  /* A log that starts where a copied one did. */
  g_assert_true (f->vt->log_create_at (f->store, &log0, 40, &error));
  g_assert_no_error (error);
  g_assert_true (f->vt->log_bounds (f->store, &log0, &first, &next, &error));
  g_assert_cmpint (first, ==, 40);
  g_assert_cmpint (next, ==, 40);
  append_n (f, 3, 2, 10);
  g_assert_true (f->vt->log_bounds (f->store, &log0, &first, &next, &error));
  g_assert_cmpint (first, ==, 40);
  g_assert_cmpint (next, ==, 46);
  /* Again at its next offset: fine; anywhere else: EXISTS. */
  g_assert_true (f->vt->log_create_at (f->store, &log0, 46, &error));
  g_assert_false (f->vt->log_create_at (f->store, &log0, 0, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS);
  g_clear_error (&error);

  for (guint i = 0; i < G_N_ELEMENTS (blobs); i++)
    {
      SluiceBlobWriter *w = f->vt->blob_open_write (f->store, blobs[i], &error);
      g_assert_true (f->vt->blob_write (f->store, w, (const guint8 *) "x", 1, &error));
      g_assert_true (f->vt->blob_commit (f->store, w, &error));
      g_assert_no_error (error);
    }
  g_assert_true (f->vt->blob_list (f->store, "b/", names, &error));
  g_assert_cmpuint (names->len, ==, 2);
  g_assert_cmpstr (names->pdata[0], ==, "b/1");
  g_assert_cmpstr (names->pdata[1], ==, "b/2");
  g_ptr_array_set_size (names, 0);
  g_assert_true (f->vt->blob_list (f->store, NULL, names, &error));
  g_assert_cmpuint (names->len, ==, 3);
  g_assert_cmpstr (names->pdata[0], ==, "a/1");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  log_text = g_string_new (NULL);
  g_log_set_writer_func (capture, NULL, NULL);
  g_test_add ("/storage/lmdb/map-grows", Fixture, NULL, fixture_setup, test_map_grows,
              fixture_teardown);
  g_test_add ("/storage/lmdb/corrupt-batch", Fixture, NULL, fixture_setup,
              test_corrupt_batch, fixture_teardown);
  g_test_add ("/storage/lmdb/damaged-pages", Fixture, NULL, fixture_setup,
              test_damaged_pages, fixture_teardown);
  g_test_add ("/storage/lmdb/sync-beside-append", Fixture, NULL, fixture_setup,
              test_sync_beside_append, fixture_teardown);
  g_test_add ("/storage/lmdb/create-at-blob-list", Fixture, NULL, fixture_setup,
              test_create_at_blob_list, fixture_teardown);
  return g_test_run ();
}
