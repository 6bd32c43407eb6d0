/* storage-file — the plugin's own tests: recovery of torn tails, index
 * rebuild, segment rolls, corruption found on read, the KV commit log, and
 * the options table. The plugin is compiled in and driven through its
 * vtable; the tests then damage its files the way crashes and disks do.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"
#include "file-store.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

SLUICE_API const SluicePluginDescriptor *storage_file_LTX_sluice_plugin_query (void);

/* ---------------------------------------------------------------------- */
/* captured log lines */

static GMutex log_lock;
static GPtrArray *log_lines;  /* "LEVEL message" */

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                gpointer user_data)
{
  const char *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (strcmp (fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  g_mutex_lock (&log_lock);
  g_ptr_array_add (log_lines, g_strdup_printf ("%s %s",
                                               (level & G_LOG_LEVEL_WARNING) ? "WARNING"
                                               : (level & G_LOG_LEVEL_MESSAGE) ? "MESSAGE"
                                               : "OTHER", message ? message : ""));
  g_mutex_unlock (&log_lock);
  /* Criticals (failed preconditions) still abort the test. */
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
    return g_log_writer_default (level, fields, n_fields, user_data);
  return G_LOG_WRITER_HANDLED;
}

static void
logs_clear (void)
{
  g_mutex_lock (&log_lock);
  g_ptr_array_set_size (log_lines, 0);
  g_mutex_unlock (&log_lock);
}

/* TRUE when a captured line contains every one of the NULL-terminated words. */
static gboolean
logs_have (const char *first, ...)
{
  gboolean found = FALSE;

  g_mutex_lock (&log_lock);
  for (guint i = 0; i < log_lines->len && !found; i++)
    {
      const char *line = g_ptr_array_index (log_lines, i);
      const char *word;
      va_list ap;

      found = TRUE;
      va_start (ap, first);
      for (word = first; word != NULL; word = va_arg (ap, const char *))
        if (strstr (line, word) == NULL)
          found = FALSE;
      va_end (ap);
    }
  if (!found)
    for (guint i = 0; i < log_lines->len; i++)
      g_test_message ("captured: %s", (char *) g_ptr_array_index (log_lines, i));
  g_mutex_unlock (&log_lock);
  return found;
}

/* ---------------------------------------------------------------------- */
/* fixture */

typedef struct {
  char *dir;
  FileOptions options;
  const SluiceStorageVTable *vt;
  gpointer store;
} Fixture;

static const SluiceLogId log0 = { "events", 0 };

static void
fixture_open (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  f->store = f->vt->open (NULL, &f->options, f->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
}

static void
fixture_close (Fixture *f)
{
  f->vt->close (f->store);
  f->store = NULL;
}

static void
fixture_reopen (Fixture *f)
{
  fixture_close (f);
  fixture_open (f);
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const SluicePluginDescriptor *desc = storage_file_LTX_sluice_plugin_query ();

  f->vt = desc->vtable;
  f->dir = g_dir_make_tmp ("storage-file-XXXXXX", &error);
  g_assert_no_error (error);
  f->options.segment_size = 0;
  f->options.index_interval = 0;
  logs_clear ();
}

static void
teardown (Fixture *f, gconstpointer data)
{
  if (f->store != NULL)
    fixture_close (f);
  g_assert_true (file_remove_tree (f->dir, NULL));
  g_free (f->dir);
}

/* A stamped batch of `n` records at `base`, each value `value_size` bytes
 * of a pattern derived from its offset. */
static SluiceBatch *
make_batch (gint64 base, guint n, gsize value_size, gint64 ts)
{
  g_autoptr (SluiceBatchBuilder) b = sluice_batch_builder_new (ts);
  g_autofree guint8 *value = g_malloc (value_size + 1);
  g_autoptr (GBytes) bytes = NULL;
  guint8 *data;
  gsize len;

  for (guint i = 0; i < n; i++)
    {
      memset (value, 'a' + (int) ((base + i) % 26), value_size);
      sluice_batch_builder_add (b, (const guint8 *) "k", 1, value, (gssize) value_size, NULL,
                                ts);
    }
  bytes = sluice_batch_builder_finish (g_steal_pointer (&b));
  data = g_bytes_unref_to_data (g_steal_pointer (&bytes), &len);
  sluice_batch_stamp (data, len, base, ts);
  bytes = g_bytes_new_take (data, len);
  return sluice_batch_new (base, (gint32) n, ts, bytes);
}

/* Append `count` batches of `per` records; returns each batch's size. */
static GArray *
append_many (Fixture *f, const SluiceLogId *log, guint count, guint per, gsize value_size)
{
  GArray *sizes = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_autoptr (GError) error = NULL;
  gint64 first, next;

  g_assert_true (f->vt->log_bounds (f->store, log, &first, &next, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < count; i++)
    {
      g_autoptr (SluiceBatch) b = make_batch (next, per, value_size, 1700000000000 + next);
      gsize len = g_bytes_get_size (b->data);

      g_assert_true (f->vt->log_append (f->store, log, &b, 1, NULL, &error));
      g_assert_no_error (error);
      g_array_append_val (sizes, len);
      next += per;
    }
  g_assert_true (f->vt->sync (f->store, log, 1, &error));
  g_assert_no_error (error);
  return sizes;
}

static GPtrArray *
read_all (Fixture *f, const SluiceLogId *log, gint64 from, gsize max_bytes, GError **error)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);

  if (!f->vt->log_read (f->store, log, from, max_bytes, out, error))
    g_ptr_array_set_size (out, 0);
  return out;
}

static char *
segment_path (Fixture *f, const SluiceLogId *log, gint64 base, const char *suffix)
{
  g_autofree char *part = g_strdup_printf ("%d", log->partition);
  g_autofree char *name = g_strdup_printf ("%020" G_GINT64_FORMAT "%s", base, suffix);
  return g_build_filename (f->dir, "logs", log->stream, part, name, NULL);
}

static guint
count_segments (Fixture *f, const SluiceLogId *log)
{
  g_autofree char *part = g_strdup_printf ("%d", log->partition);
  g_autofree char *dir = g_build_filename (f->dir, "logs", log->stream, part, NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    n += g_str_has_suffix (name, ".log");
  return n;
}

static void
assert_batches_from (Fixture *f, const SluiceLogId *log, gint64 first, gint64 next,
                     guint per)
{
  /* Every offset reads back the batch that holds it, whole. */
  for (gint64 o = first; o < next; o++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) out = read_all (f, log, o, 1, &error);
      SluiceBatch *b;

      g_assert_no_error (error);
      g_assert_cmpuint (out->len, ==, 1);
      b = g_ptr_array_index (out, 0);
      g_assert_cmpint (b->base_offset, <=, o);
      g_assert_cmpint (b->base_offset + b->record_count, >, o);
      g_assert_cmpint (b->record_count, ==, per);
    }
}

/* ---------------------------------------------------------------------- */
/* tests */

static void
test_torn_tail (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) sizes = NULL;
  g_autoptr (SluiceBatch) fourth = NULL;
  g_autoptr (GPtrArray) out = NULL;
  g_autofree char *path = NULL;
  gsize three = 0;
  gint64 first, next;

  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  sizes = append_many (f, &log0, 3, 2, 50);
  for (guint i = 0; i < 3; i++)
    three += g_array_index (sizes, gsize, i);

  fourth = make_batch (6, 2, 50, 1700000000100);
  g_assert_true (f->vt->log_append (f->store, &log0, &fourth, 1, NULL, &error));
  g_assert_no_error (error);
  fixture_close (f);

  /* A crash in the middle of writing the fourth batch. */
  path = segment_path (f, &log0, 0, ".log");
  g_assert_cmpint (truncate (path, (off_t) (three + g_bytes_get_size (fourth->data) / 2)), ==, 0);

  logs_clear ();
  fixture_open (f);
  g_assert_true (logs_have ("WARNING", "events", "partition 0", "offset 6", "dropping",
                            NULL));
  g_assert_true (f->vt->log_bounds (f->store, &log0, &first, &next, &error));
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (next, ==, 6);
  out = read_all (f, &log0, 0, G_MAXSIZE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 3);
  g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, 2))->base_offset, ==, 4);
  {
    struct stat st;
    g_assert_cmpint (stat (path, &st), ==, 0);
    g_assert_cmpuint ((gsize) st.st_size, ==, three);
  }

  /* The log continues where the good data ended. */
  g_assert_true (f->vt->log_append (f->store, &log0, &fourth, 1, NULL, &error));
  g_assert_no_error (error);
  g_ptr_array_set_size (out, 0);
  g_assert_true (f->vt->log_read (f->store, &log0, 7, G_MAXSIZE, out, &error));
  g_assert_cmpuint (out->len, ==, 1);
  g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, 0))->base_offset, ==, 6);
}

static void
test_torn_garbage (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) sizes = NULL;
  g_autofree char *path = NULL;
  static const guint8 junk[300] = { 0 };
  gint64 next;
  int fd;

  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  sizes = append_many (f, &log0, 5, 1, 20);
  fixture_close (f);

  /* A zero-filled tail (the file grew but the data never reached disk). */
  path = segment_path (f, &log0, 0, ".log");
  fd = open (path, O_WRONLY | O_APPEND);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, junk, sizeof junk), ==, sizeof junk);
  close (fd);

  fixture_open (f);
  g_assert_true (logs_have ("WARNING", "dropping 300 bytes", NULL));
  g_assert_true (f->vt->log_bounds (f->store, &log0, NULL, &next, &error));
  g_assert_cmpint (next, ==, 5);
  assert_batches_from (f, &log0, 0, 5, 1);
}

static void
test_index_rebuild (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) sizes = NULL;
  g_autofree char *index = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0, before = 0;

  f->options.index_interval = 200;
  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  sizes = append_many (f, &log0, 40, 3, 30);
  assert_batches_from (f, &log0, 0, 120, 3);
  fixture_close (f);

  index = segment_path (f, &log0, 0, ".index");
  g_assert_true (g_file_get_contents (index, &contents, &before, NULL));
  g_assert_cmpuint (before, >, 0);
  g_assert_cmpuint (before % 16, ==, 0);

  /* Deleted: rebuilt from the log, with the same entries. */
  g_assert_cmpint (unlink (index), ==, 0);
  logs_clear ();
  fixture_open (f);
  g_assert_true (logs_have ("rebuilding index", "events", NULL));
  assert_batches_from (f, &log0, 0, 120, 3);
  g_clear_pointer (&contents, g_free);
  g_assert_true (g_file_get_contents (index, &contents, &len, NULL));
  g_assert_cmpuint (len, ==, before);
  fixture_close (f);

  /* Garbage: its last entry no longer matches the log. */
  memset (contents + len - 16, 0x11, 8);
  g_assert_true (g_file_set_contents (index, contents, (gssize) len, NULL));
  logs_clear ();
  fixture_open (f);
  g_assert_true (logs_have ("rebuilding index", NULL));
  assert_batches_from (f, &log0, 0, 120, 3);

  /* Appends after a rebuild keep indexing. */
  g_array_unref (append_many (f, &log0, 10, 3, 30));
  fixture_reopen (f);
  assert_batches_from (f, &log0, 0, 150, 3);
  g_clear_pointer (&contents, g_free);
  g_assert_true (g_file_get_contents (index, &contents, &len, NULL));
  g_assert_cmpuint (len, >, before);
}

static void
test_segment_roll (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = NULL;
  g_autoptr (GPtrArray) batches = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
  gint64 first, next, new_first;
  guint segments;

  f->options.segment_size = 1024;
  f->options.index_interval = 128;
  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  g_array_unref (append_many (f, &log0, 30, 2, 60));

  /* One call that crosses several segment boundaries. */
  for (guint i = 0; i < 12; i++)
    g_ptr_array_add (batches, make_batch (60 + 2 * i, 2, 60, 1700000001000 + i));
  g_assert_true (f->vt->log_append (f->store, &log0, (SluiceBatch *const *) batches->pdata,
                                    batches->len, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (f->vt->sync (f->store, &log0, 1, &error));

  segments = count_segments (f, &log0);
  g_assert_cmpuint (segments, >, 5);
  assert_batches_from (f, &log0, 0, 84, 2);

  /* One read spans every segment, in order. */
  out = read_all (f, &log0, 0, G_MAXSIZE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 42);
  for (guint i = 0; i < out->len; i++)
    g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, i))->base_offset, ==, 2 * i);

  fixture_reopen (f);
  g_assert_cmpuint (count_segments (f, &log0), ==, segments);
  assert_batches_from (f, &log0, 0, 84, 2);

  /* Trimming drops whole segments only. */
  g_assert_true (f->vt->log_trim (f->store, &log0, 40, 0, 0, &new_first, &error));
  g_assert_no_error (error);
  g_assert_cmpint (new_first, >, 0);
  g_assert_cmpint (new_first, <=, 40);
  g_assert_cmpuint (count_segments (f, &log0), <, segments);
  {
    g_autofree char *path = segment_path (f, &log0, new_first, ".log");
    g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  }
  g_assert_true (f->vt->log_bounds (f->store, &log0, &first, &next, &error));
  g_assert_cmpint (first, ==, new_first);
  g_assert_cmpint (next, ==, 84);
  assert_batches_from (f, &log0, new_first, 84, 2);
}

static void
test_next_floor (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *part = NULL;
  g_autoptr (GDir) dir = NULL;
  const char *name;
  gint64 first, next, new_first;

  f->options.segment_size = 4096;
  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  g_array_unref (append_many (f, &log0, 40, 1, 200));
  g_assert_true (f->vt->log_trim (f->store, &log0, G_MAXINT64, 0, 1, &new_first, &error));
  g_assert_cmpint (new_first, >, 0);
  fixture_close (f);

  /* Even with every segment gone, offsets do not start over. */
  part = g_build_filename (f->dir, "logs", "events", "0", NULL);
  dir = g_dir_open (part, 0, NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".log") || g_str_has_suffix (name, ".index"))
      {
        g_autofree char *p = g_build_filename (part, name, NULL);
        g_assert_cmpint (unlink (p), ==, 0);
      }
  fixture_open (f);
  g_assert_true (f->vt->log_bounds (f->store, &log0, &first, &next, &error));
  g_assert_cmpint (next, ==, 40);
  g_assert_cmpint (first, ==, 40);
}

static void
flip_byte (const char *path, guint64 pos)
{
  int fd = open (path, O_RDWR);
  guint8 c;

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, &c, 1, (off_t) pos), ==, 1);
  c ^= 0x40;
  g_assert_cmpint (pwrite (fd, &c, 1, (off_t) pos), ==, 1);
  close (fd);
}

static void
check_flipped (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = NULL;

  /* The bad batch itself: an error naming where it is. */
  out = read_all (f, &log0, 8, G_MAXSIZE, &error);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "'events'"));
  g_assert_nonnull (strstr (error->message, "partition 0"));
  g_assert_nonnull (strstr (error->message, "offset 8"));
  g_clear_error (&error);
  g_ptr_array_unref (g_steal_pointer (&out));
  out = read_all (f, &log0, 9, 1, &error);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT);
  g_clear_error (&error);
  g_ptr_array_unref (g_steal_pointer (&out));

  /* Before it: readable, and a long read stops short of it. */
  out = read_all (f, &log0, 0, G_MAXSIZE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 4);
  g_ptr_array_unref (g_steal_pointer (&out));
  assert_batches_from (f, &log0, 0, 8, 2);

  /* After it: readable. */
  assert_batches_from (f, &log0, 10, 60, 2);
}

static void
test_flipped_byte (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) sizes = NULL;
  g_autofree char *path = NULL;
  guint64 pos = 0;

  /* Small segments, so the damaged batch sits in an older one. */
  f->options.segment_size = 4096;
  f->options.index_interval = 100;
  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  sizes = append_many (f, &log0, 30, 2, 40);
  g_assert_cmpuint (count_segments (f, &log0), >, 1);

  /* Batch 4 (offsets 8-9): flip a byte of its records. */
  for (guint i = 0; i < 4; i++)
    pos += g_array_index (sizes, gsize, i);
  path = segment_path (f, &log0, 0, ".log");
  flip_byte (path, pos + SLUICE_BATCH_HEADER_SIZE + 10);

  check_flipped (f);
  /* Older segments are trusted at open: nothing is dropped, reads still
   * find the damage. */
  logs_clear ();
  fixture_reopen (f);
  check_flipped (f);
}

static void
test_flipped_byte_newest (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) sizes = NULL;
  g_autofree char *path = NULL;
  guint64 pos = 0;
  gint64 next;

  /* One segment: the damaged batch is in the newest one, which open walks
   * for a torn tail (from its last index entry: none here); acknowledged
   * batches after the damage must stay. */
  f->options.index_interval = 1024 * 1024;
  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  sizes = append_many (f, &log0, 30, 2, 40);
  g_assert_cmpuint (count_segments (f, &log0), ==, 1);
  for (guint i = 0; i < 4; i++)
    pos += g_array_index (sizes, gsize, i);
  path = segment_path (f, &log0, 0, ".log");
  flip_byte (path, pos + SLUICE_BATCH_HEADER_SIZE + 10);

  logs_clear ();
  fixture_reopen (f);
  g_assert_true (logs_have ("WARNING", "offset 8", "corrupt", "kept", NULL));
  g_assert_false (logs_have ("dropping", NULL));
  g_assert_true (f->vt->log_bounds (f->store, &log0, NULL, &next, &error));
  g_assert_cmpint (next, ==, 60);
  check_flipped (f);
}

static gboolean
kv_has (Fixture *f, const char *key, const char *value)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) v = f->vt->kv_get (f->store, key, &error);

  g_assert_no_error (error);
  if (value == NULL)
    return v == NULL;
  return v != NULL && g_bytes_get_size (v) == strlen (value)
         && memcmp (g_bytes_get_data (v, NULL), value, strlen (value)) == 0;
}

static void
kv_put (Fixture *f, const char *key, const char *value)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) v = g_bytes_new (value, strlen (value));
  SluiceKvOp op = { SLUICE_KV_PUT, key, v };

  g_assert_true (f->vt->kv_commit (f->store, &op, 1, &error));
  g_assert_no_error (error);
}

static void
test_kv_torn (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (f->dir, "kv", "kv.log", NULL);
  struct stat st;
  off_t three;

  fixture_open (f);
  kv_put (f, "a", "1");
  kv_put (f, "b", "2");
  kv_put (f, "c", "3");
  g_assert_cmpint (stat (path, &st), ==, 0);
  three = st.st_size;
  {
    g_autoptr (GBytes) v = g_bytes_new ("4", 1);
    g_autoptr (GBytes) w = g_bytes_new ("5", 1);
    SluiceKvOp ops[] = { { SLUICE_KV_PUT, "d", v }, { SLUICE_KV_DELETE, "a", NULL },
                         { SLUICE_KV_PUT, "e", w } };
    g_assert_true (f->vt->kv_commit (f->store, ops, G_N_ELEMENTS (ops), &error));
  }
  fixture_close (f);

  /* The last commit torn half way: none of its ops survive. */
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (truncate (path, three + (st.st_size - three) / 2), ==, 0);
  logs_clear ();
  fixture_open (f);
  g_assert_true (logs_have ("WARNING", "torn last record", NULL));
  g_assert_true (kv_has (f, "a", "1"));
  g_assert_true (kv_has (f, "b", "2"));
  g_assert_true (kv_has (f, "c", "3"));
  g_assert_true (kv_has (f, "d", NULL));
  g_assert_true (kv_has (f, "e", NULL));
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, three);

  /* Commits continue after the dropped record and survive a reopen. */
  kv_put (f, "f", "6");
  fixture_reopen (f);
  g_assert_true (kv_has (f, "f", "6"));
  g_assert_true (kv_has (f, "c", "3"));
  fixture_close (f);

  /* A CRC mismatch in the last record is torn too. */
  g_assert_cmpint (stat (path, &st), ==, 0);
  flip_byte (path, (guint64) st.st_size - 1);
  logs_clear ();
  fixture_open (f);
  g_assert_true (logs_have ("torn last record", NULL));
  g_assert_true (kv_has (f, "f", NULL));
  g_assert_true (kv_has (f, "c", "3"));
}

static void
test_kv_corrupt_middle (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (f->dir, "kv", "kv.log", NULL);

  fixture_open (f);
  kv_put (f, "a", "1");
  kv_put (f, "b", "2");
  kv_put (f, "c", "3");
  fixture_close (f);

  /* Damage with acknowledged commits after it is not a torn write. */
  flip_byte (path, 14);
  f->store = f->vt->open (NULL, &f->options, f->dir, &error);
  g_assert_null (f->store);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "kv.log"));
}

static void
test_kv_compact (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (f->dir, "kv", "kv.log", NULL);
  g_autofree char *big = g_strnfill (64 * 1024, 'x');
  struct stat st;

  fixture_open (f);
  kv_put (f, "keep", "yes");
  /* 6 MiB of overwrites: compaction runs on the way. */
  for (guint i = 0; i < 96; i++)
    {
      big[0] = 'a' + i % 26;
      kv_put (f, "big", big);
    }
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_size, <, 5 * 1024 * 1024);
  g_assert_true (kv_has (f, "big", big));
  fixture_reopen (f);
  g_assert_true (kv_has (f, "big", big));
  g_assert_true (kv_has (f, "keep", "yes"));
  {
    g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
    g_assert_false (g_file_test (tmp, G_FILE_TEST_EXISTS));
  }
}

static void
test_lock (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gpointer second;

  fixture_open (f);
  second = f->vt->open (NULL, &f->options, f->dir, &error);
  g_assert_null (second);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, "in use"));
}

static void
test_append_checks (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceBatch) gap = make_batch (5, 1, 10, 1700000000000);
  g_autoptr (SluiceBatch) good = make_batch (0, 3, 10, 1700000000000);
  gint64 next;

  fixture_open (f);
  g_assert_true (f->vt->log_create (f->store, &log0, &error));
  /* Not contiguous with the log's next offset. */
  g_assert_false (f->vt->log_append (f->store, &log0, &gap, 1, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);
  /* Metadata that disagrees with the bytes. */
  good->record_count = 2;
  g_assert_false (f->vt->log_append (f->store, &log0, &good, 1, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);
  good->record_count = 3;
  g_assert_true (f->vt->log_append (f->store, &log0, &good, 1, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (f->vt->log_bounds (f->store, &log0, NULL, &next, &error));
  g_assert_cmpint (next, ==, 3);

  /* Names that would leave the logs directory. */
  {
    SluiceLogId bad = { "..", 0 };
    g_assert_false (f->vt->log_create (f->store, &bad, &error));
    g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    g_clear_error (&error);
    bad.stream = "a/b";
    g_assert_false (f->vt->log_create (f->store, &bad, &error));
    g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    g_clear_error (&error);
  }
  g_assert_null (f->vt->blob_open_write (f->store, "../escape", &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
}

static void
test_options (void)
{
  const SluicePluginDescriptor *desc = storage_file_LTX_sluice_plugin_query ();
  static const char *const extra[] = { "plugin", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceConfig) config = NULL;
  FileOptions opts = { 0 };

  g_assert_cmpint (desc->kind, ==, SLUICE_PLUGIN_KIND_STORAGE);
  g_assert_cmpstr (desc->name, ==, "file");
  g_assert_cmpuint (desc->options_size, ==, sizeof (FileOptions));

  config = sluice_config_load_from_data ("t.conf", "[storage]\nplugin = file\n", &error);
  g_assert_no_error (error);
  g_assert_true (sluice_config_parse_section (config, "storage", desc->options, extra, &opts,
                                              &error));
  g_assert_no_error (error);
  g_assert_cmpuint (opts.segment_size, ==, 128 * 1024 * 1024);
  g_assert_cmpuint (opts.index_interval, ==, 4096);
  sluice_config_free (g_steal_pointer (&config));

  config = sluice_config_load_from_data ("t.conf", "[storage]\nplugin = file\n"
                                         "segment-size = 1MiB\nindex-interval = 512\n", &error);
  g_assert_no_error (error);
  g_assert_true (sluice_config_parse_section (config, "storage", desc->options, extra, &opts,
                                              &error));
  g_assert_cmpuint (opts.segment_size, ==, 1024 * 1024);
  g_assert_cmpuint (opts.index_interval, ==, 512);
  sluice_config_free (g_steal_pointer (&config));

  config = sluice_config_load_from_data ("t.conf", "[storage]\nplugin = file\n"
                                         "segment-size = 2TiB\n", &error);
  g_assert_no_error (error);
  g_assert_false (sluice_config_parse_section (config, "storage", desc->options, extra,
                                               &opts, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "segment-size"));
  g_clear_error (&error);
  sluice_config_free (g_steal_pointer (&config));

  config = sluice_config_load_from_data ("t.conf", "[storage]\nplugin = file\n"
                                         "segment-bytes = 1MiB\n", &error);
  g_assert_no_error (error);
  g_assert_false (sluice_config_parse_section (config, "storage", desc->options, extra,
                                               &opts, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "segment-bytes"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  log_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/storage/file/recovery/torn-tail", test_torn_tail);
  ADD ("/storage/file/recovery/zero-tail", test_torn_garbage);
  ADD ("/storage/file/index/rebuild", test_index_rebuild);
  ADD ("/storage/file/segment/roll", test_segment_roll);
  ADD ("/storage/file/segment/next-floor", test_next_floor);
  ADD ("/storage/file/corrupt/flipped-byte", test_flipped_byte);
  ADD ("/storage/file/corrupt/flipped-byte-newest", test_flipped_byte_newest);
  ADD ("/storage/file/kv/torn-record", test_kv_torn);
  ADD ("/storage/file/kv/corrupt-middle", test_kv_corrupt_middle);
  ADD ("/storage/file/kv/compact", test_kv_compact);
  ADD ("/storage/file/lock", test_lock);
  ADD ("/storage/file/append/checks", test_append_checks);
#undef ADD
  g_test_add_func ("/storage/file/options", test_options);
  return g_test_run ();
}
