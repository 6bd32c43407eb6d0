/* storage-file — partition logs: lookup, create / delete / list, append,
 * sync, bounds and trim (reads are in file-read.c). Locking is explained in
 * file-log.h.
 * SPDX-License-Identifier: Apache-2.0 */
#include "file-log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct _FileLogs {
  char *root;                 /* {data_dir}/logs */
  const FileOptions *options;
  GMutex lock;                /* guards `partitions` */
  GHashTable *partitions;     /* "stream/partition" -> FilePartition* */
};

/* ---------------------------------------------------------------------- */
/* partitions */

static FilePartition *
partition_ref (FilePartition *p)
{
  g_atomic_ref_count_inc (&p->ref);
  return p;
}

void
file_partition_unref (FilePartition *p)
{
  if (p == NULL || !g_atomic_ref_count_dec (&p->ref))
    return;
  g_ptr_array_unref (p->segments);
  g_mutex_clear (&p->write_lock);
  g_rw_lock_clear (&p->lock);
  g_free (p->stream);
  g_free (p->dir);
  g_free (p);
}

static char *
partition_key (const char *stream, gint32 partition)
{
  return g_strdup_printf ("%s/%d", stream, partition);
}

static gboolean
check_stream_name (const char *stream, GError **error)
{
  /* The core restricts names to [A-Za-z0-9._-]; these are the ones that
   * would still escape the logs directory. */
  if (stream == NULL || *stream == '\0' || strcmp (stream, ".") == 0
      || strcmp (stream, "..") == 0 || strchr (stream, '/') != NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "invalid stream name '%s'", stream ? stream : "(null)");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_log_id (const SluiceLogId *log, GError **error)
{
  if (!check_stream_name (log->stream, error))
    return FALSE;
  if (log->partition < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "stream '%s': invalid partition %d", log->stream, log->partition);
      return FALSE;
    }
  return TRUE;
}

static FilePartition *
partition_new (FileLogs *logs, const char *stream, gint32 partition)
{
  FilePartition *p = g_new0 (FilePartition, 1);
  g_autofree char *part = g_strdup_printf ("%d", partition);

  g_atomic_ref_count_init (&p->ref);
  p->stream = g_strdup (stream);
  p->partition = partition;
  p->dir = g_build_filename (logs->root, stream, part, NULL);
  p->options = logs->options;
  g_mutex_init (&p->write_lock);
  g_rw_lock_init (&p->lock);
  p->segments = g_ptr_array_new_with_free_func ((GDestroyNotify) file_segment_unref);
  return p;
}

static gint64
read_next_floor (FilePartition *p)
{
  g_autofree char *path = g_build_filename (p->dir, "next", NULL);
  g_autofree char *text = NULL;
  gint64 value = 0;

  if (g_file_get_contents (path, &text, NULL, NULL)
      && !g_ascii_string_to_signed (g_strstrip (text), 10, 0, G_MAXINT64, &value, NULL))
    {
      g_warning ("stream '%s' partition %d: ignoring unreadable %s", p->stream,
                 p->partition, path);
      value = 0;
    }
  return value;
}

static gint
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

/* Load every segment of an existing partition directory (recovery). */
static FilePartition *
partition_load (FileLogs *logs, const char *stream, gint32 partition, GError **error)
{
  g_autoptr (FilePartition) p = partition_new (logs, stream, partition);
  g_autoptr (GArray) bases = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GDir) dir = g_dir_open (p->dir, 0, error);
  const char *name;

  if (dir == NULL)
    return NULL;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      gint64 base;
      g_autofree char *digits = NULL;

      if (!g_str_has_suffix (name, ".log") || strlen (name) != 24)
        continue;
      digits = g_strndup (name, 20);
      if (!g_ascii_string_to_signed (digits, 10, 0, G_MAXINT64, &base, NULL))
        continue;
      g_array_append_val (bases, base);
    }
  g_array_sort (bases, compare_gint64);

  if (bases->len == 0)
    {
      /* Created but never written, or every file lost: start at the floor a
       * trim recorded so offsets never go backwards. */
      gint64 floor = read_next_floor (p);
      FileSegment *seg = file_segment_create (p->dir, floor, error);
      if (seg == NULL || !file_fsync_dir (p->dir, error))
        {
          g_clear_pointer (&seg, file_segment_unref);
          return NULL;
        }
      g_ptr_array_add (p->segments, seg);
      return g_steal_pointer (&p);
    }

  for (guint i = 0; i < bases->len; i++)
    {
      gboolean newest = i + 1 == bases->len;
      FileSegment *seg = file_segment_load (p, g_array_index (bases, gint64, i), newest,
                                            error);
      if (seg == NULL)
        return NULL;
      if (i > 0)
        {
          FileSegment *prev = g_ptr_array_index (p->segments, i - 1);
          if (prev->next != seg->base)
            g_warning ("stream '%s' partition %d: segment %s ends at offset %"
                       G_GINT64_FORMAT " but the next one starts at %" G_GINT64_FORMAT,
                       stream, partition, prev->log_path, prev->next, seg->base);
          /* Exact by construction: appends are contiguous. */
          prev->next = seg->base;
        }
      g_ptr_array_add (p->segments, seg);
    }
  {
    FileSegment *active = g_ptr_array_index (p->segments, p->segments->len - 1);
    g_info ("stream '%s' partition %d: %u segment(s), offsets %" G_GINT64_FORMAT
            " to %" G_GINT64_FORMAT, stream, partition, p->segments->len,
            ((FileSegment *) g_ptr_array_index (p->segments, 0))->base, active->next);
  }
  return g_steal_pointer (&p);
}

static gboolean
partition_is_name (const char *name, gint32 *partition)
{
  gint64 v;

  if (!g_ascii_string_to_signed (name, 10, 0, G_MAXINT32, &v, NULL))
    return FALSE;
  /* Only the canonical spelling (no "007"): it is what we create. */
  {
    g_autofree char *canon = g_strdup_printf ("%" G_GINT64_FORMAT, v);
    if (strcmp (canon, name) != 0)
      return FALSE;
  }
  *partition = (gint32) v;
  return TRUE;
}

FilePartition *
file_logs_lookup (FileLogs *logs, const SluiceLogId *log, GError **error)
{
  g_autofree char *key = NULL;
  FilePartition *p;

  if (!check_log_id (log, error))
    return NULL;
  key = partition_key (log->stream, log->partition);
  g_mutex_lock (&logs->lock);
  p = g_hash_table_lookup (logs->partitions, key);
  if (p != NULL)
    partition_ref (p);
  g_mutex_unlock (&logs->lock);
  if (p == NULL)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                 "stream '%s' partition %d: no such log", log->stream, log->partition);
  return p;
}

/* ---------------------------------------------------------------------- */
/* open / close / create / delete / list */

FileLogs *
file_logs_open (const char *data_dir, const FileOptions *options, GError **error)
{
  FileLogs *logs = g_new0 (FileLogs, 1);
  g_autoptr (GDir) streams = NULL;
  const char *sname;

  logs->root = g_build_filename (data_dir, "logs", NULL);
  logs->options = options;
  g_mutex_init (&logs->lock);
  logs->partitions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify) file_partition_unref);
  if (!file_mkdir_durable (logs->root, error))
    goto fail;

  streams = g_dir_open (logs->root, 0, error);
  if (streams == NULL)
    goto fail;
  while ((sname = g_dir_read_name (streams)) != NULL)
    {
      g_autofree char *sdir = g_build_filename (logs->root, sname, NULL);
      g_autoptr (GDir) parts = NULL;
      const char *pname;

      if (!g_file_test (sdir, G_FILE_TEST_IS_DIR) || !check_stream_name (sname, NULL))
        continue;
      parts = g_dir_open (sdir, 0, error);
      if (parts == NULL)
        goto fail;
      while ((pname = g_dir_read_name (parts)) != NULL)
        {
          g_autofree char *pdir = g_build_filename (sdir, pname, NULL);
          gint32 partition;
          FilePartition *p;

          if (!partition_is_name (pname, &partition) || !g_file_test (pdir, G_FILE_TEST_IS_DIR))
            {
              g_message ("ignoring %s: not a partition directory", pdir);
              continue;
            }
          p = partition_load (logs, sname, partition, error);
          if (p == NULL)
            {
              g_prefix_error (error, "stream '%s' partition %d: ", sname, partition);
              goto fail;
            }
          g_hash_table_insert (logs->partitions, partition_key (sname, partition), p);
        }
    }
  return logs;

fail:
  file_logs_close (logs);
  return NULL;
}

static void
partition_close (FilePartition *p)
{
  FileSegment *active;

  g_mutex_lock (&p->write_lock);
  active = g_ptr_array_index (p->segments, p->segments->len - 1);
  /* A graceful stop keeps what was appended even when nobody synced it. */
  if (p->unsynced && !p->deleted && fdatasync (active->fd) < 0)
    g_warning ("stream '%s' partition %d: cannot sync %s at close: %s", p->stream,
               p->partition, active->log_path, g_strerror (errno));
  p->unsynced = FALSE;
  g_mutex_unlock (&p->write_lock);
}

void
file_logs_close (FileLogs *logs)
{
  GHashTableIter iter;
  gpointer value;

  if (logs == NULL)
    return;
  g_hash_table_iter_init (&iter, logs->partitions);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    partition_close (value);
  g_hash_table_unref (logs->partitions);
  g_mutex_clear (&logs->lock);
  g_free (logs->root);
  g_free (logs);
}

gboolean
file_logs_create (FileLogs *logs, const SluiceLogId *log, GError **error)
{
  g_autofree char *key = NULL;
  g_autoptr (FilePartition) p = NULL;
  gboolean ok = FALSE;

  if (!check_log_id (log, error))
    return FALSE;
  key = partition_key (log->stream, log->partition);
  g_mutex_lock (&logs->lock);
  if (g_hash_table_contains (logs->partitions, key))
    {
      ok = TRUE;
      goto out;
    }
  p = partition_new (logs, log->stream, log->partition);
  if (!file_mkdir_durable (p->dir, error))
    goto out;
  {
    FileSegment *seg = file_segment_create (p->dir, read_next_floor (p), error);
    if (seg == NULL)
      goto out;
    g_ptr_array_add (p->segments, seg);
  }
  if (!file_fsync_dir (p->dir, error))
    goto out;
  g_hash_table_insert (logs->partitions, g_steal_pointer (&key), g_steal_pointer (&p));
  ok = TRUE;

out:
  g_mutex_unlock (&logs->lock);
  return ok;
}

gboolean
file_logs_create_at (FileLogs *logs, const SluiceLogId *log, gint64 next_offset,
                     GError **error)
{
  g_autoptr (FilePartition) p = NULL;
  g_autofree char *part = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *floor_path = NULL;
  g_autofree char *text = NULL;

  if (!check_log_id (log, error))
    return FALSE;
  if (next_offset < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "stream '%s' partition %d: invalid offset %" G_GINT64_FORMAT, log->stream,
                   log->partition, next_offset);
      return FALSE;
    }
  p = file_logs_lookup (logs, log, NULL);
  if (p != NULL)
    {
      gint64 next = 0;
      if (!file_logs_bounds (logs, log, NULL, &next, error))
        return FALSE;
      if (next != next_offset)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS,
                       "stream '%s' partition %d: the log exists and its next offset is %"
                       G_GINT64_FORMAT ", not %" G_GINT64_FORMAT, log->stream,
                       log->partition, next, next_offset);
          return FALSE;
        }
      return TRUE;
    }
  /* The floor a trim would have left: file_logs_create starts the first
   * segment there. */
  part = g_strdup_printf ("%d", log->partition);
  dir = g_build_filename (logs->root, log->stream, part, NULL);
  floor_path = g_build_filename (dir, "next", NULL);
  text = g_strdup_printf ("%" G_GINT64_FORMAT "\n", next_offset);
  if (!file_mkdir_durable (dir, error)
      || !file_replace_contents (floor_path, text, strlen (text), error))
    return FALSE;
  return file_logs_create (logs, log, error);
}

gboolean
file_logs_delete (FileLogs *logs, const char *stream, GError **error)
{
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func ((GDestroyNotify) file_partition_unref);
  g_autofree char *sdir = NULL;
  GHashTableIter iter;
  gpointer value;

  if (!check_stream_name (stream, error))
    return FALSE;
  g_mutex_lock (&logs->lock);
  g_hash_table_iter_init (&iter, logs->partitions);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      FilePartition *p = value;
      if (strcmp (p->stream, stream) == 0)
        {
          g_ptr_array_add (gone, partition_ref (p));
          g_hash_table_iter_remove (&iter);
        }
    }
  /* Held across the removal so a log_create of the same stream cannot
   * create files that the removal then deletes. */
  for (guint i = 0; i < gone->len; i++)
    {
      FilePartition *p = g_ptr_array_index (gone, i);
      g_mutex_lock (&p->write_lock);
      p->deleted = TRUE;
      g_mutex_unlock (&p->write_lock);
    }
  sdir = g_build_filename (logs->root, stream, NULL);
  if (!file_remove_tree (sdir, error) || !file_fsync_dir (logs->root, error))
    {
      g_mutex_unlock (&logs->lock);
      return FALSE;
    }
  g_mutex_unlock (&logs->lock);
  return TRUE;
}

static gint
compare_partitions (gconstpointer a, gconstpointer b)
{
  const FilePartition *x = *(FilePartition *const *) a, *y = *(FilePartition *const *) b;
  int c = strcmp (x->stream, y->stream);
  return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

gboolean
file_logs_list (FileLogs *logs, GPtrArray *streams_out, GArray *partitions_out,
                GError **error)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  /* The map mirrors {data_dir}/logs: it is built from a scan at open and
   * changed only together with the directories. */
  g_mutex_lock (&logs->lock);
  g_hash_table_iter_init (&iter, logs->partitions);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (all, value);
  g_ptr_array_sort (all, compare_partitions);
  for (guint i = 0; i < all->len; i++)
    {
      FilePartition *p = g_ptr_array_index (all, i);
      g_ptr_array_add (streams_out, g_strdup (p->stream));
      g_array_append_val (partitions_out, p->partition);
    }
  g_mutex_unlock (&logs->lock);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* append / sync */

static gboolean
check_batches (FilePartition *p, gint64 next, SluiceBatch *const *batches, guint n,
               GError **error)
{
  for (guint i = 0; i < n; i++)
    {
      const SluiceBatch *b = batches[i];
      gsize len = 0;
      const guint8 *data = b->data ? g_bytes_get_data (b->data, &len) : NULL;
      gint64 base, max_ts;
      guint32 blen;
      gint32 delta;

      if (data == NULL || len < SLUICE_BATCH_HEADER_SIZE
          || !file_batch_header (data, &base, &blen, &delta, &max_ts) || blen != len)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "stream '%s' partition %d: batch %u is not a v2 record batch",
                       p->stream, p->partition, i);
          return FALSE;
        }
      if (base != b->base_offset || b->base_offset != next
          || b->record_count != delta + 1)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "stream '%s' partition %d: batch at offset %" G_GINT64_FORMAT
                       " (%d records, %" G_GINT64_FORMAT " in its header) does not "
                       "continue the log at offset %" G_GINT64_FORMAT,
                       p->stream, p->partition, b->base_offset, b->record_count, base,
                       next);
          return FALSE;
        }
      next += b->record_count;
    }
  return TRUE;
}

/* Write batches[from, to) to the active segment and publish them. */
static gboolean
append_run (FilePartition *p, FileSegment *seg, SluiceBatch *const *batches, guint from,
            guint to, GError **error)
{
  g_autofree struct iovec *iov = g_new (struct iovec, to - from);
  g_autoptr (GArray) entries = g_array_new (FALSE, FALSE, sizeof (FileIndexEntry));
  g_autoptr (GByteArray) disk = g_byte_array_new ();
  guint64 pos = seg->size;
  gint64 next = seg->next, max_ts = seg->max_ts;

  if (from == to)
    return TRUE;
  for (guint i = from; i < to; i++)
    {
      gsize len;
      iov[i - from].iov_base = (void *) g_bytes_get_data (batches[i]->data, &len);
      iov[i - from].iov_len = len;
    }
  if (!file_writev_all (seg->fd, iov, (int) (to - from), seg->log_path, error))
    {
      /* Undo a partial write so the next append starts on a boundary. */
      if (ftruncate (seg->fd, (off_t) seg->size) < 0)
        {
          p->broken = TRUE;
          g_warning ("stream '%s' partition %d: cannot undo a failed append to %s: %s; "
                     "the partition refuses appends until a restart recovers it",
                     p->stream, p->partition, seg->log_path, g_strerror (errno));
        }
      g_prefix_error (error, "stream '%s' partition %d: ", p->stream, p->partition);
      return FALSE;
    }

  for (guint i = from; i < to; i++)
    {
      const SluiceBatch *b = batches[i];
      gsize len = g_bytes_get_size (b->data);

      if (pos > 0 && pos - seg->last_entry_pos >= p->options->index_interval)
        {
          FileIndexEntry e = { (guint32) (b->base_offset - seg->base), (guint32) pos };
          guint8 rec[FILE_INDEX_ENTRY_SIZE];

          file_put_be32 (rec, e.rel);
          file_put_be32 (rec + 4, e.pos);
          file_put_be64 (rec + 8, (guint64) max_ts);
          g_byte_array_append (disk, rec, sizeof rec);
          g_array_append_val (entries, e);
          seg->last_entry_pos = pos;
        }
      max_ts = MAX (max_ts, b->max_timestamp);
      next = b->base_offset + b->record_count;
      pos += len;
    }
  /* Best effort: a missing or short index is rebuilt at open. */
  if (disk->len > 0 && !file_write_all (seg->index_fd, disk->data, disk->len,
                                        seg->index_path, NULL))
    g_debug ("stream '%s' partition %d: index write failed", p->stream, p->partition);

  g_rw_lock_writer_lock (&p->lock);
  seg->size = pos;
  seg->next = next;
  seg->max_ts = max_ts;
  g_array_append_vals (seg->index, entries->data, entries->len);
  g_rw_lock_writer_unlock (&p->lock);
  p->unsynced = TRUE;
  return TRUE;
}

/* cache-window: log data that is synced (clean) and further than the window
 * behind the partition's end leaves the page cache. Appends then take the
 * memory of data nobody is about to read instead of fresh pages (which cost
 * several times the copy itself on a virtual machine: README, Kafka
 * benchmark), and a log's cold past does not push other memory out. Readers
 * further behind than the window read from disk, sequentially with
 * readahead. Dropping is advice: dirty pages are never dropped.
 *
 * Marks [seg->dropped, upto) as dropped (caller holds write_lock) and
 * returns its length; the caller advises the kernel outside the lock. */
static guint64
drop_range (FileSegment *seg, guint64 upto, guint64 *from)
{
  *from = seg->dropped;
  if (upto <= seg->dropped)
    return 0;
  seg->dropped = upto;
  return upto - *from;
}

static void
drop_advise (int fd, guint64 from, guint64 len)
{
  if (len > 0)
    (void) posix_fadvise (fd, (off_t) from, (off_t) len, POSIX_FADV_DONTNEED);
}

static FileSegment *
roll (FilePartition *p, FileSegment *active, GError **error)
{
  FileSegment *seg;

  /* Only the newest segment is checked at open, so an older one must be
   * whole on disk before a newer one can exist. */
  if (fdatasync (active->fd) < 0)
    {
      file_set_io_error (error, errno, "cannot sync", active->log_path);
      return NULL;
    }
  /* All of it is clean now; its last window stays cached until the next
   * segment holds a window of its own (file_logs_sync). */
  if (p->options->cache_window > 0 && active->size > p->options->cache_window)
    {
      guint64 from, len = drop_range (active, active->size - p->options->cache_window, &from);

      drop_advise (active->fd, from, len);
    }
  seg = file_segment_create (p->dir, active->next, error);
  if (seg == NULL)
    return NULL;
  close (active->index_fd);
  active->index_fd = -1;
  g_rw_lock_writer_lock (&p->lock);
  g_ptr_array_add (p->segments, seg);
  g_rw_lock_writer_unlock (&p->lock);
  p->dir_dirty = TRUE;
  return seg;
}

gboolean
file_logs_append (FileLogs *logs, const SluiceLogId *log, SluiceBatch *const *batches,
                  guint n, gint64 *assigned_base_offsets, GError **error)
{
  g_autoptr (FilePartition) p = file_logs_lookup (logs, log, error);
  FileSegment *active;
  guint64 pending;
  guint run = 0;
  gboolean ok = FALSE;

  if (p == NULL)
    return FALSE;
  g_mutex_lock (&p->write_lock);
  if (p->deleted || p->broken)
    {
      g_set_error (error, SLUICE_ERROR, p->deleted ? SLUICE_ERROR_NOT_FOUND : SLUICE_ERROR_STORAGE,
                   "stream '%s' partition %d: %s", p->stream, p->partition,
                   p->deleted ? "the log was deleted" : "the log needs a restart to recover");
      goto out;
    }
  active = g_ptr_array_index (p->segments, p->segments->len - 1);
  if (!check_batches (p, active->next, batches, n, error))
    goto out;

  /* Consecutive batches go out in one writev; a segment roll splits them. */
  pending = active->size;
  for (guint i = 0; i < n; i++)
    {
      gsize len = g_bytes_get_size (batches[i]->data);

      if (pending > 0 && pending + len > p->options->segment_size)
        {
          if (!append_run (p, active, batches, run, i, error))
            goto out;
          active = roll (p, active, error);
          if (active == NULL)
            goto out;
          run = i;
          pending = 0;
        }
      pending += len;
    }
  if (!append_run (p, active, batches, run, n, error))
    goto out;
  if (assigned_base_offsets != NULL)
    for (guint i = 0; i < n; i++)
      assigned_base_offsets[i] = batches[i]->base_offset;
  ok = TRUE;

out:
  g_mutex_unlock (&p->write_lock);
  return ok;
}

gboolean
file_logs_sync (FileLogs *logs, const SluiceLogId *ids, guint n, GError **error)
{
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (FilePartition) p = file_logs_lookup (logs, &ids[i], error);
      FileSegment *active;
      gboolean ok = TRUE;
      int fd = -1;
      gboolean dir = FALSE;
      g_autofree char *path = NULL;
      g_autoptr (FileSegment) synced_seg = NULL;
      g_autoptr (FileSegment) prev_seg = NULL;
      guint64 synced_size = 0;

      if (p == NULL)
        return FALSE;

      /* The core syncs on its own thread while its writer goes on appending
       * (DESIGN.md: one fsync covers what arrived while the previous one
       * ran), so the fdatasync runs outside the write lock, on a duplicate
       * of the active segment's fd: it covers every append that returned
       * before this call, and a segment roll meanwhile cannot close it. */
      g_mutex_lock (&p->write_lock);
      active = g_ptr_array_index (p->segments, p->segments->len - 1);
      if (p->unsynced && !p->deleted)
        {
          fd = dup (active->fd);
          if (fd < 0)
            {
              file_set_io_error (error, errno, "cannot sync", active->log_path);
              ok = FALSE;
            }
          else
            {
              p->unsynced = FALSE;
              path = g_strdup (active->log_path);
              synced_size = active->size;
              synced_seg = file_segment_ref (active);
              if (p->segments->len >= 2)
                prev_seg = file_segment_ref (g_ptr_array_index (p->segments,
                                                                p->segments->len - 2));
            }
        }
      if (ok && p->dir_dirty && !p->deleted)
        {
          dir = TRUE;
          p->dir_dirty = FALSE;
        }
      g_mutex_unlock (&p->write_lock);

      if (fd >= 0)
        {
          if (fdatasync (fd) < 0)
            {
              file_set_io_error (error, errno, "cannot sync", path);
              ok = FALSE;
            }
          else if (p->options->cache_window > 0)
            {
              guint64 window = p->options->cache_window;
              guint64 from = 0, len = 0, prev_from = 0, prev_len = 0;

              g_mutex_lock (&p->write_lock);
              if (synced_size > window)
                len = drop_range (synced_seg, synced_size - window, &from);
              /* The segment before holds none of the window any more. */
              if (prev_seg != NULL && synced_size >= window)
                prev_len = drop_range (prev_seg, prev_seg->size, &prev_from);
              g_mutex_unlock (&p->write_lock);
              drop_advise (fd, from, len);
              if (prev_len > 0)
                drop_advise (prev_seg->fd, prev_from, prev_len);
            }
          close (fd);
        }
      if (ok && dir)
        ok = file_fsync_dir (p->dir, error);
      if (!ok)
        {
          /* Not durable: the next sync must try again. */
          g_mutex_lock (&p->write_lock);
          p->unsynced = p->unsynced || fd >= 0;
          p->dir_dirty = p->dir_dirty || dir;
          g_mutex_unlock (&p->write_lock);
        }
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* bounds / trim */

gboolean
file_logs_bounds (FileLogs *logs, const SluiceLogId *log, gint64 *first, gint64 *next,
                  GError **error)
{
  g_autoptr (FilePartition) p = file_logs_lookup (logs, log, error);
  FileSegment *oldest, *active;

  if (p == NULL)
    return FALSE;
  g_rw_lock_reader_lock (&p->lock);
  oldest = g_ptr_array_index (p->segments, 0);
  active = g_ptr_array_index (p->segments, p->segments->len - 1);
  if (first != NULL)
    *first = oldest->base;
  if (next != NULL)
    *next = active->next;
  g_rw_lock_reader_unlock (&p->lock);
  return TRUE;
}

gboolean
file_logs_trim (FileLogs *logs, const SluiceLogId *log, gint64 before_offset,
                gint64 older_than_ms, guint64 max_bytes, gint64 *new_first, GError **error)
{
  g_autoptr (FilePartition) p = file_logs_lookup (logs, log, error);
  g_autoptr (GPtrArray) dropped = NULL;
  guint64 total = 0;
  guint limit, n = 0;
  gboolean ok = TRUE;

  if (p == NULL)
    return FALSE;
  g_mutex_lock (&p->write_lock);
  if (p->deleted)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                   "stream '%s' partition %d: the log was deleted", p->stream, p->partition);
      ok = FALSE;
      goto out;
    }
  for (guint i = 0; i < p->segments->len; i++)
    total += ((FileSegment *) g_ptr_array_index (p->segments, i))->size;
  /* Never the active segment, nor the one before it when the active one is
   * still empty: that one holds the newest data. */
  limit = p->segments->len - 1;
  if (limit > 0 && ((FileSegment *) g_ptr_array_index (p->segments, limit))->size == 0)
    limit--;
  while (n < limit)
    {
      FileSegment *seg = g_ptr_array_index (p->segments, n);
      gboolean drop = (before_offset != G_MAXINT64 && seg->next <= before_offset)
                      || (older_than_ms > 0 && seg->max_ts < older_than_ms)
                      || (max_bytes > 0 && total > max_bytes);
      if (!drop)
        break;
      total -= seg->size;
      n++;
    }

  if (n > 0)
    {
      g_autofree char *next_path = g_build_filename (p->dir, "next", NULL);
      g_autofree char *text = NULL;
      FileSegment *active = g_ptr_array_index (p->segments, p->segments->len - 1);

      g_rw_lock_writer_lock (&p->lock);
      dropped = g_ptr_array_new_with_free_func ((GDestroyNotify) file_segment_unref);
      for (guint i = 0; i < n; i++)
        g_ptr_array_add (dropped, g_ptr_array_steal_index (p->segments, 0));
      g_rw_lock_writer_unlock (&p->lock);

      /* Oldest first: a crash half way leaves a shorter but whole log. */
      for (guint i = 0; i < dropped->len; i++)
        {
          FileSegment *seg = g_ptr_array_index (dropped, i);
          if (unlink (seg->log_path) < 0 && errno != ENOENT)
            g_warning ("stream '%s' partition %d: cannot remove %s: %s", p->stream,
                       p->partition, seg->log_path, g_strerror (errno));
          unlink (seg->index_path);
        }
      /* The floor keeps offsets from going backwards even if every segment
       * file were lost. */
      text = g_strdup_printf ("%" G_GINT64_FORMAT "\n", active->next);
      ok = file_replace_contents (next_path, text, strlen (text), error);
      g_info ("stream '%s' partition %d: trimmed %u segment(s) before offset %"
              G_GINT64_FORMAT, p->stream, p->partition, n,
              ((FileSegment *) g_ptr_array_index (p->segments, 0))->base);
    }
  if (new_first != NULL)
    *new_first = ((FileSegment *) g_ptr_array_index (p->segments, 0))->base;

out:
  g_mutex_unlock (&p->write_lock);
  return ok;
}
