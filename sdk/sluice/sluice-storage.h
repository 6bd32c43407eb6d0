/* Sluice plugin SDK — the storage interface.
 *
 * One storage instance per hub. Every slot may block (disk I/O, fsync), so the
 * core calls storage only from its own writer and reader threads, never from
 * an I/O worker. Concurrency: the core calls log_append and log_trim from
 * its one writer thread, never at the same time; it calls sync from its sync
 * thread, concurrently with log_append and log_trim (so that one fsync
 * covers what arrives while the previous one runs); log_read, log_bounds and the
 * kv_* and blob_* slots may be called from several threads at once, also
 * while an append to the same partition runs, and must be thread-safe.
 *
 * Nothing here may assume a local file: a backend may be a remote cluster.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>
#include <sluice/sluice-record.h>

G_BEGIN_DECLS

/* One partition's log. */
typedef struct {
  const char *stream;
  gint32 partition;
} SluiceLogId;

typedef enum {
  SLUICE_KV_PUT = 1,
  SLUICE_KV_DELETE = 2,
} SluiceKvOpType;

typedef struct {
  SluiceKvOpType type;
  const char *key;         /* UTF-8; `/`-separated by convention (`devices/abc`) */
  GBytes *value;           /* PUT only (transfer none) */
} SluiceKvOp;

typedef struct {
  char *key;
  GBytes *value;
} SluiceKvPair;
SLUICE_API void sluice_kv_pair_free (SluiceKvPair *pair);

typedef struct _SluiceBlobWriter SluiceBlobWriter; /* backend-defined */

/* Storage errors use SLUICE_ERROR: STORAGE for I/O (disk full: message says
 * so), CORRUPT for a batch whose CRC fails (the message names stream,
 * partition and offset), NOT_FOUND for unknown logs / blobs. */
typedef struct {
  /* Open (or create) the store. `options` is the plugin's options struct as
   * filled from `[storage]` (transfer none; valid until close). `data_dir`
   * exists. Recovery (torn tails, CRC checks of the newest data) happens here
   * and is logged. Returns the instance (transfer full). */
  gpointer (*open) (SluiceHost *host, const void *options, const char *data_dir,
                    GError **error);
  /* Flush and close. Every log appended and synced must be readable after the
   * next open. */
  void (*close) (gpointer self);

  /* --- logs --- */
  /* Create the log of one partition (no-op when it exists). */
  gboolean (*log_create) (gpointer self, const SluiceLogId *log, GError **error);
  /* Delete every partition log of `stream`. */
  gboolean (*log_delete) (gpointer self, const char *stream, GError **error);
  /* Every partition log that exists: appends its stream name (char *,
   * transfer full) to `streams_out` and its partition (gint32) to
   * `partitions_out`, pairwise. */
  gboolean (*log_list) (gpointer self, GPtrArray *streams_out, GArray *partitions_out,
                        GError **error);
  /* Append `n` stamped batches in order. Local backends store each batch at
   * its `base_offset` (assigned by the core's writer, contiguous with the log's
   * next offset); a remote backend may assign its own and writes them to
   * `assigned_base_offsets` (may be NULL when the caller does not care).
   * Data is durable only once a later sync() returns. (batch->data transfer none) */
  gboolean (*log_append) (gpointer self, const SluiceLogId *log,
                          SluiceBatch *const *batches, guint n,
                          gint64 *assigned_base_offsets, GError **error);
  /* Make durable every batch whose log_append on these logs returned before
   * this call (fdatasync, or a synced commit). Called once per group commit
   * for all logs touched, from the core's sync thread, while log_append may
   * be running for later batches: those need not be covered. */
  gboolean (*sync) (gpointer self, const SluiceLogId *logs, guint n, GError **error);
  /* Read whole batches starting with the one that contains `from_offset`,
   * until `max_bytes` is reached (at least one batch is returned when one
   * exists at or after from_offset, even if larger). Appends SluiceBatch* to
   * `out` (transfer full). A batch whose CRC fails is an error
   * SLUICE_ERROR_CORRUPT when it is the first one; otherwise the read stops
   * before it. */
  gboolean (*log_read) (gpointer self, const SluiceLogId *log, gint64 from_offset,
                        gsize max_bytes, GPtrArray *out, GError **error);
  /* First offset still stored and the next offset to be assigned. */
  gboolean (*log_bounds) (gpointer self, const SluiceLogId *log, gint64 *first,
                          gint64 *next, GError **error);
  /* Retention: drop whole storage units (segments, batches) that lie entirely
   * before `before_offset` (G_MAXINT64: no limit), or whose newest timestamp
   * is older than `older_than_ms` (0: no limit), or the oldest ones while the
   * log is larger than `max_bytes` (0: no limit). The unit holding the newest
   * data is never dropped. Writes the new first offset to `new_first`. */
  gboolean (*log_trim) (gpointer self, const SluiceLogId *log, gint64 before_offset,
                        gint64 older_than_ms, guint64 max_bytes, gint64 *new_first,
                        GError **error);

  /* --- key/value (registry, twins, offsets, sessions, retained, C2D) --- */
  /* NULL value with no error: the key is absent. (transfer full) */
  GBytes *(*kv_get) (gpointer self, const char *key, GError **error);
  /* All pairs whose key starts with `prefix`, in key order; appends
   * SluiceKvPair* to `out` (transfer full). */
  gboolean (*kv_scan) (gpointer self, const char *prefix, GPtrArray *out, GError **error);
  /* Apply all ops atomically; durable when it returns. */
  gboolean (*kv_commit) (gpointer self, const SluiceKvOp *ops, guint n, GError **error);

  /* --- blobs (file upload) --- */
  SluiceBlobWriter *(*blob_open_write) (gpointer self, const char *name, GError **error);
  gboolean (*blob_write) (gpointer self, SluiceBlobWriter *writer, const guint8 *data,
                          gsize len, GError **error);
  /* Make the blob visible under its name (replacing an older one), durably.
   * Frees the writer either way. */
  gboolean (*blob_commit) (gpointer self, SluiceBlobWriter *writer, GError **error);
  /* Discard and free the writer. */
  void (*blob_abort) (gpointer self, SluiceBlobWriter *writer);
  /* Up to `max_bytes` from `offset`; an empty GBytes at the end. Size of the
   * whole blob in `total_size` (may be NULL). (transfer full) */
  GBytes *(*blob_read) (gpointer self, const char *name, guint64 offset, gsize max_bytes,
                        guint64 *total_size, GError **error);
  gboolean (*blob_delete) (gpointer self, const char *name, GError **error);

  /* --- appended after ABI 1.0: optional (may be NULL); check vtable_size --- */
  /* Create an empty log whose first and next offset is `next_offset`, so
   * that a log copied from another store keeps its offsets (`sluiced
   * --migrate`). EXISTS when the log exists and its next offset differs. */
  gboolean (*log_create_at) (gpointer self, const SluiceLogId *log, gint64 next_offset,
                             GError **error);
  /* Every committed blob whose name starts with `prefix`, in name order:
   * appends the names (char *, transfer full) to `names_out`. */
  gboolean (*blob_list) (gpointer self, const char *prefix, GPtrArray *names_out,
                         GError **error);
} SluiceStorageVTable;

G_END_DECLS
