/* storage-file — partitions and their segments (shared by file-log.c and
 * file-segment.c).
 *
 * Locking: a partition's `write_lock` serialises append / sync / trim /
 * delete (the core already does so per partition; the mutex makes misuse
 * harmless). `lock` (a GRWLock) guards the segment list and every segment's
 * published fields (size, next, max_ts, index); writers hold it only to
 * publish, never across I/O. Readers copy what they need under it, take a
 * reference on the segment and pread without any lock: a segment dropped by
 * a trim stays readable through its open fd until the last reader is done.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "file-store.h"

G_BEGIN_DECLS

/* A sparse index entry: the batch at `pos` starts at offset base + rel. */
typedef struct {
  guint32 rel;
  guint32 pos;
} FileIndexEntry;

/* On disk an entry also carries the newest timestamp of the batches before
 * it, so an older segment's newest timestamp is known at open from its last
 * entry plus a short scan. Big-endian: rel u32, pos u32, max_ts i64. */
#define FILE_INDEX_ENTRY_SIZE 16

typedef struct {
  gatomicrefcount ref;
  gint64 base;
  char *log_path;
  char *index_path;
  int fd;                     /* O_RDWR | O_APPEND when active, else O_RDONLY */
  int index_fd;               /* the active segment's index, -1 otherwise */

  /* Published (under the partition's rwlock). */
  guint64 size;               /* bytes of whole batches */
  gint64 next;                /* offset after the last batch */
  gint64 max_ts;              /* newest batch timestamp, G_MININT64 when empty */
  GArray *index;              /* FileIndexEntry, by position */

  /* Writer only. */
  guint64 last_entry_pos;     /* position of the last index entry (0: start) */
  /* Bytes from the start already dropped from the page cache (cache-window;
   * under the partition's write_lock). */
  guint64 dropped;
} FileSegment;

typedef struct {
  gatomicrefcount ref;
  char *stream;
  gint32 partition;
  char *dir;
  const FileOptions *options;

  GMutex write_lock;
  gboolean deleted;           /* under write_lock */
  gboolean unsynced;          /* active segment written since the last sync */
  gboolean dir_dirty;         /* a segment was created since the last sync */
  gboolean broken;            /* a failed append could not be undone */

  GRWLock lock;
  GPtrArray *segments;        /* FileSegment*, oldest first; never empty */
} FilePartition;

/* A reference to the partition of `log`; NOT_FOUND when it does not exist. */
FilePartition *file_logs_lookup (FileLogs *logs, const SluiceLogId *log, GError **error);
void file_partition_unref (FilePartition *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FilePartition, file_partition_unref)

FileSegment *file_segment_ref (FileSegment *seg);
void file_segment_unref (FileSegment *seg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FileSegment, file_segment_unref)

char *file_segment_name (gint64 base, const char *suffix);
/* A new, empty active segment (files created; the caller syncs the dir). */
FileSegment *file_segment_create (const char *dir, gint64 base, GError **error);
/* Open an existing segment: load (or rebuild) its index, scan its tail.
 * `newest`: validate every batch from the last index entry and truncate a
 * torn or corrupt tail; otherwise only walk headers for the timestamp. */
FileSegment *file_segment_load (FilePartition *p, gint64 base, gboolean newest,
                                GError **error);
/* Position of the batch containing `offset` or an earlier one (index
 * lookup; caller holds the partition lock). */
guint64 file_segment_lookup (FileSegment *seg, gint64 offset);

/* Parse the fields of a v2 batch header the log needs. FALSE when the header
 * cannot be one (bad magic, impossible length). */
gboolean file_batch_header (const guint8 *hdr, gint64 *base, guint32 *len,
                            gint32 *last_delta, gint64 *max_ts);

G_END_DECLS
