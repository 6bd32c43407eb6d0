/* storage-file — the storage plugin `file`: segment logs, a KV commit log
 * and blob files under the hub's data directory (layout in file-store.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "file-store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

static const SluiceOption file_options[] = {
  { "segment-size", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (FileOptions, segment_size),
    "128MiB", "roll a log segment once it reaches this size", 4096,
    (gint64) FILE_MAX_SEGMENT_SIZE, NULL, { NULL, NULL } },
  { "index-interval", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (FileOptions, index_interval),
    "4KiB", "bytes of log between two sparse index entries", 1,
    (gint64) FILE_MAX_SEGMENT_SIZE, NULL, { NULL, NULL } },
  { "cache-window", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (FileOptions, cache_window),
    "64MiB", "synced log data further than this behind a partition's end is dropped from "
    "the page cache (read back from disk when asked for); 0 leaves it to the kernel", 0,
    G_MAXINT64, NULL, { NULL, NULL } },
  SLUICE_OPTION_END
};

static void
file_close (gpointer self)
{
  FileStore *store = self;

  if (store == NULL)
    return;
  file_logs_close (store->logs);
  file_kv_close (store->kv);
  file_blobs_close (store->blobs);
  if (store->lock_fd >= 0)
    close (store->lock_fd);
  g_free (store->data_dir);
  g_free (store);
}

static gboolean
lock_data_dir (FileStore *store, GError **error)
{
  g_autofree char *path = g_build_filename (store->data_dir, "storage.lock", NULL);

  store->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (store->lock_fd < 0)
    {
      file_set_io_error (error, errno, "cannot open", path);
      return FALSE;
    }
  /* Two hubs on one data directory would interleave their appends. */
  if (flock (store->lock_fd, LOCK_EX | LOCK_NB) < 0)
    {
      if (errno == EWOULDBLOCK)
        g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                     "data directory %s is in use by another process (lock %s)",
                     store->data_dir, path);
      else
        file_set_io_error (error, errno, "cannot lock", path);
      return FALSE;
    }
  return TRUE;
}

static gpointer
file_open (SluiceHost *host, const void *options, const char *data_dir, GError **error)
{
  FileStore *store = g_new0 (FileStore, 1);
  const FileOptions *opts = options;

  store->data_dir = g_strdup (data_dir);
  store->lock_fd = -1;
  /* Zero means "unset" (options filled by hand, e.g. in tests). */
  store->options.segment_size = opts && opts->segment_size ? opts->segment_size
                                                           : FILE_DEFAULT_SEGMENT_SIZE;
  store->options.index_interval = opts && opts->index_interval ? opts->index_interval
                                                               : FILE_DEFAULT_INDEX_INTERVAL;
  store->options.segment_size = MIN (store->options.segment_size, FILE_MAX_SEGMENT_SIZE);
  /* Here zero is a value: keep everything in the page cache. */
  store->options.cache_window = opts ? opts->cache_window : FILE_DEFAULT_CACHE_WINDOW;

  if (!lock_data_dir (store, error))
    goto fail;
  store->kv = file_kv_open (data_dir, error);
  if (store->kv == NULL)
    goto fail;
  store->blobs = file_blobs_open (data_dir, error);
  if (store->blobs == NULL)
    goto fail;
  store->logs = file_logs_open (data_dir, &store->options, error);
  if (store->logs == NULL)
    goto fail;
  g_info ("storage file: opened %s (segment-size %" G_GUINT64_FORMAT ", index-interval %"
          G_GUINT64_FORMAT ")", data_dir, store->options.segment_size,
          store->options.index_interval);
  return store;

fail:
  g_prefix_error (error, "storage file: ");
  file_close (store);
  return NULL;
}

#define STORE(self) (((FileStore *) (self)))

static gboolean
file_log_create (gpointer self, const SluiceLogId *log, GError **error)
{
  return file_logs_create (STORE (self)->logs, log, error);
}

static gboolean
file_log_delete (gpointer self, const char *stream, GError **error)
{
  return file_logs_delete (STORE (self)->logs, stream, error);
}

static gboolean
file_log_list (gpointer self, GPtrArray *streams_out, GArray *partitions_out,
               GError **error)
{
  return file_logs_list (STORE (self)->logs, streams_out, partitions_out, error);
}

static gboolean
file_log_append (gpointer self, const SluiceLogId *log, SluiceBatch *const *batches,
                 guint n, gint64 *assigned_base_offsets, GError **error)
{
  return file_logs_append (STORE (self)->logs, log, batches, n, assigned_base_offsets,
                           error);
}

static gboolean
file_sync (gpointer self, const SluiceLogId *logs, guint n, GError **error)
{
  return file_logs_sync (STORE (self)->logs, logs, n, error);
}

static gboolean
file_log_read (gpointer self, const SluiceLogId *log, gint64 from_offset, gsize max_bytes,
               GPtrArray *out, GError **error)
{
  return file_logs_read (STORE (self)->logs, log, from_offset, max_bytes, out, error);
}

static gboolean
file_log_bounds (gpointer self, const SluiceLogId *log, gint64 *first, gint64 *next,
                 GError **error)
{
  return file_logs_bounds (STORE (self)->logs, log, first, next, error);
}

static gboolean
file_log_trim (gpointer self, const SluiceLogId *log, gint64 before_offset,
               gint64 older_than_ms, guint64 max_bytes, gint64 *new_first, GError **error)
{
  return file_logs_trim (STORE (self)->logs, log, before_offset, older_than_ms, max_bytes,
                         new_first, error);
}

static GBytes *
file_kv_get_slot (gpointer self, const char *key, GError **error)
{
  return file_kv_get (STORE (self)->kv, key, error);
}

static gboolean
file_kv_scan_slot (gpointer self, const char *prefix, GPtrArray *out, GError **error)
{
  return file_kv_scan (STORE (self)->kv, prefix, out, error);
}

static gboolean
file_kv_commit_slot (gpointer self, const SluiceKvOp *ops, guint n, GError **error)
{
  return file_kv_commit (STORE (self)->kv, ops, n, error);
}

static SluiceBlobWriter *
file_blob_open_write (gpointer self, const char *name, GError **error)
{
  return file_blobs_open_write (STORE (self)->blobs, name, error);
}

static gboolean
file_blob_write (gpointer self, SluiceBlobWriter *writer, const guint8 *data, gsize len,
                 GError **error)
{
  return file_blobs_write (STORE (self)->blobs, writer, data, len, error);
}

static gboolean
file_blob_commit (gpointer self, SluiceBlobWriter *writer, GError **error)
{
  return file_blobs_commit (STORE (self)->blobs, writer, error);
}

static void
file_blob_abort (gpointer self, SluiceBlobWriter *writer)
{
  file_blobs_abort (STORE (self)->blobs, writer);
}

static GBytes *
file_blob_read (gpointer self, const char *name, guint64 offset, gsize max_bytes,
                guint64 *total_size, GError **error)
{
  return file_blobs_read (STORE (self)->blobs, name, offset, max_bytes, total_size, error);
}

static gboolean
file_blob_delete (gpointer self, const char *name, GError **error)
{
  return file_blobs_delete (STORE (self)->blobs, name, error);
}

static gboolean
file_log_create_at (gpointer self, const SluiceLogId *log, gint64 next_offset,
                    GError **error)
{
  return file_logs_create_at (STORE (self)->logs, log, next_offset, error);
}

static gboolean
file_blob_list (gpointer self, const char *prefix, GPtrArray *names_out, GError **error)
{
  return file_blobs_list (STORE (self)->blobs, prefix, names_out, error);
}

static const SluiceStorageVTable file_vtable = {
  .open = file_open,
  .close = file_close,
  .log_create = file_log_create,
  .log_delete = file_log_delete,
  .log_list = file_log_list,
  .log_append = file_log_append,
  .sync = file_sync,
  .log_read = file_log_read,
  .log_bounds = file_log_bounds,
  .log_trim = file_log_trim,
  .kv_get = file_kv_get_slot,
  .kv_scan = file_kv_scan_slot,
  .kv_commit = file_kv_commit_slot,
  .blob_open_write = file_blob_open_write,
  .blob_write = file_blob_write,
  .blob_commit = file_blob_commit,
  .blob_abort = file_blob_abort,
  .blob_read = file_blob_read,
  .blob_delete = file_blob_delete,
  .log_create_at = file_log_create_at,
  .blob_list = file_blob_list,
};

SLUICE_PLUGIN_DEFINE (storage, file, "0.1.0",
                      "segment-file logs, KV commit log and blob files on local disk",
                      "Apache-2.0", &file_vtable, file_options, sizeof (FileOptions), NULL)
