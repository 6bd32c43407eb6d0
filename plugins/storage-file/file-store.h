/* storage-file — what the plugin's files share.
 *
 * Layout under the data directory:
 *   logs/{stream}/{partition}/{base:020}.log    batches back to back
 *   logs/{stream}/{partition}/{base:020}.index  sparse index (rebuildable)
 *   logs/{stream}/{partition}/next              offset floor kept by trims
 *   kv/kv.log                                   append-only commit records
 *   blobs/{name}                                committed blobs
 *   blob-tmp/                                   blobs being written
 *   storage.lock                                one process at a time
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>
#include <sys/uio.h>

G_BEGIN_DECLS

typedef struct {
  guint64 segment_size;
  guint64 index_interval;
  guint64 cache_window;
} FileOptions;

#define FILE_DEFAULT_SEGMENT_SIZE (G_GUINT64_CONSTANT (128) * 1024 * 1024)
#define FILE_DEFAULT_INDEX_INTERVAL (G_GUINT64_CONSTANT (4) * 1024)
#define FILE_DEFAULT_CACHE_WINDOW (G_GUINT64_CONSTANT (64) * 1024 * 1024)
/* Index positions are 32-bit: a segment never grows past this. */
#define FILE_MAX_SEGMENT_SIZE (G_GUINT64_CONSTANT (1) << 30)

typedef struct _FileLogs FileLogs;
typedef struct _FileKv FileKv;
typedef struct _FileBlobs FileBlobs;

typedef struct {
  char *data_dir;
  FileOptions options;
  int lock_fd;
  FileLogs *logs;
  FileKv *kv;
  FileBlobs *blobs;
} FileStore;

/* --- file-util.c --- */
/* Sets SLUICE_ERROR_STORAGE from errno (`saved_errno`), saying "disk full"
 * for ENOSPC / EDQUOT so an operator sees the cause at once. */
void file_set_io_error (GError **error, int saved_errno, const char *what,
                        const char *path);
gboolean file_write_all (int fd, const void *data, gsize len, const char *path,
                         GError **error);
/* writev until everything is written (partial writes and EINTR). `iov` is
 * modified. */
gboolean file_writev_all (int fd, struct iovec *iov, int n_iov, const char *path,
                          GError **error);
/* pread exactly `len` bytes; a short file is an error. */
gboolean file_pread_all (int fd, void *buf, gsize len, guint64 pos, const char *path,
                         GError **error);
gboolean file_fsync_dir (const char *path, GError **error);
/* mkdir -p; fsyncs the parent of every directory it creates. */
gboolean file_mkdir_durable (const char *path, GError **error);
/* Write `contents` to `path` atomically and durably (tmp, fsync, rename,
 * fsync dir). */
gboolean file_replace_contents (const char *path, const void *contents, gsize len,
                                GError **error);
/* rm -r (the tree must only hold files and directories). */
gboolean file_remove_tree (const char *path, GError **error);

static inline void
file_put_be32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static inline guint32
file_get_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static inline void
file_put_be64 (guint8 *p, guint64 v)
{
  file_put_be32 (p, v >> 32);
  file_put_be32 (p + 4, (guint32) v);
}

static inline guint64
file_get_be64 (const guint8 *p)
{
  return ((guint64) file_get_be32 (p) << 32) | file_get_be32 (p + 4);
}

/* --- file-log.c / file-segment.c --- */
FileLogs *file_logs_open (const char *data_dir, const FileOptions *options,
                          GError **error);
void file_logs_close (FileLogs *logs);
gboolean file_logs_create (FileLogs *logs, const SluiceLogId *log, GError **error);
gboolean file_logs_create_at (FileLogs *logs, const SluiceLogId *log, gint64 next_offset,
                              GError **error);
gboolean file_logs_delete (FileLogs *logs, const char *stream, GError **error);
gboolean file_logs_list (FileLogs *logs, GPtrArray *streams_out, GArray *partitions_out,
                         GError **error);
gboolean file_logs_append (FileLogs *logs, const SluiceLogId *log,
                           SluiceBatch *const *batches, guint n,
                           gint64 *assigned_base_offsets, GError **error);
gboolean file_logs_sync (FileLogs *logs, const SluiceLogId *ids, guint n, GError **error);
gboolean file_logs_read (FileLogs *logs, const SluiceLogId *log, gint64 from_offset,
                         gsize max_bytes, GPtrArray *out, GError **error);
gboolean file_logs_bounds (FileLogs *logs, const SluiceLogId *log, gint64 *first,
                           gint64 *next, GError **error);
gboolean file_logs_trim (FileLogs *logs, const SluiceLogId *log, gint64 before_offset,
                         gint64 older_than_ms, guint64 max_bytes, gint64 *new_first,
                         GError **error);

/* --- file-kv.c --- */
FileKv *file_kv_open (const char *data_dir, GError **error);
void file_kv_close (FileKv *kv);
GBytes *file_kv_get (FileKv *kv, const char *key, GError **error);
gboolean file_kv_scan (FileKv *kv, const char *prefix, GPtrArray *out, GError **error);
gboolean file_kv_commit (FileKv *kv, const SluiceKvOp *ops, guint n, GError **error);

/* --- file-blob.c --- */
FileBlobs *file_blobs_open (const char *data_dir, GError **error);
void file_blobs_close (FileBlobs *blobs);
SluiceBlobWriter *file_blobs_open_write (FileBlobs *blobs, const char *name,
                                         GError **error);
gboolean file_blobs_write (FileBlobs *blobs, SluiceBlobWriter *writer, const guint8 *data,
                           gsize len, GError **error);
gboolean file_blobs_commit (FileBlobs *blobs, SluiceBlobWriter *writer, GError **error);
void file_blobs_abort (FileBlobs *blobs, SluiceBlobWriter *writer);
GBytes *file_blobs_read (FileBlobs *blobs, const char *name, guint64 offset,
                         gsize max_bytes, guint64 *total_size, GError **error);
gboolean file_blobs_delete (FileBlobs *blobs, const char *name, GError **error);
gboolean file_blobs_list (FileBlobs *blobs, const char *prefix, GPtrArray *names_out,
                          GError **error);

G_END_DECLS
