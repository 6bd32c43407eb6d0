/* storage-lmdb — what the plugin's files share.
 *
 * Layout: one LMDB environment in `{data_dir}/lmdb/` (data.mdb, lock.mdb)
 * plus `{data_dir}/storage.lock` (one process at a time). Named databases:
 *   parts   stream '\0' be32 partition            -> be64 floor, be64 bytes
 *   logs    stream '\0' be32 partition be64 base  -> be32 crc, be32 count,
 *                                                    be64 max_ts, batch
 *   kv      key                                   -> value
 *   blobs   name                                  -> be64 id, be64 size
 *   chunks  be64 id be32 index                    -> up to LMDB_CHUNK bytes
 *   meta    "blob-seq"                            -> be64 next blob id
 *
 * Logs share one database with a composite key rather than one database per
 * partition: LMDB fixes the number of named databases when the environment
 * opens and a database handle opened in a write transaction may only be used
 * once that transaction commits, while streams come and go at run time.
 * One database needs neither, a partition is one contiguous key range
 * (delete and scans are range walks) and the big-endian offsets sort
 * numerically.
 *
 * Locking: every transaction runs under `map_lock` held shared; growing the
 * map (mdb_env_set_mapsize needs no transaction open in this process) holds
 * it exclusively. Write transactions are serialised by LMDB itself.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <lmdb.h>
#include <sluice/sluice.h>

G_BEGIN_DECLS

typedef struct {
  guint64 map_size;
  guint64 max_map_size;
  gboolean verify_at_open;
  gint64 max_readers;
} LmdbOptions;

#define LMDB_DEFAULT_MAP_SIZE (G_GUINT64_CONSTANT (1) << 30)
#define LMDB_DEFAULT_MAX_MAP_SIZE (G_GUINT64_CONSTANT (256) << 30)
#define LMDB_DEFAULT_MAX_READERS 512
/* Blob chunk size: big enough to keep per-chunk overhead small, small
 * enough that a window read touches little more than it returns. */
#define LMDB_CHUNK (64 * 1024)
/* Bytes of the stored header in front of each batch. */
#define LMDB_BATCH_HEADER 16

typedef struct {
  char *data_dir;
  char *env_dir;
  LmdbOptions options;
  int lock_fd;
  MDB_env *env;
  MDB_dbi parts, logs, kv, blobs, chunks, meta;
  GRWLock map_lock;
  guint64 map_size;           /* under map_lock */
  guint page_size;
  GMutex blob_lock;           /* guards blob_seq */
  guint64 blob_seq;
} LmdbStore;

/* A callback run inside a write transaction: returns 0, an LMDB / errno
 * code (`error` untouched), or LMDB_FAILED with `error` set. */
#define LMDB_FAILED (-1)
typedef int (*LmdbWriteFunc) (LmdbStore *store, MDB_txn *txn, gpointer data,
                              GError **error);

/* --- storage-lmdb.c --- */
/* Maps an LMDB / errno code to SLUICE_ERROR (disk full says so; damaged
 * pages are CORRUPT). */
void lmdb_set_error (GError **error, int rc, const char *what);
/* Runs `fn` in one write transaction and commits it (not synced: the env
 * runs with MDB_NOSYNC). Grows the map first when `expected` more bytes
 * might not fit, and again and retries when LMDB says the map is full. */
gboolean lmdb_write (LmdbStore *store, gsize expected, LmdbWriteFunc fn, gpointer data,
                     GError **error);
/* A read-only transaction under the map lock; end it with lmdb_read_end. */
MDB_txn *lmdb_read_begin (LmdbStore *store, GError **error);
void lmdb_read_end (LmdbStore *store, MDB_txn *txn);
/* Deletes the cursor's entry and moves to the next one (MDB_NOTFOUND at
 * the end): a fresh MDB_SET_RANGE on a copy of the key, because LMDB leaves
 * the cursor unpositioned after deleting the last entry of a database. */
int lmdb_cursor_del_next (MDB_cursor *cur, MDB_val *key, MDB_val *val);
/* fdatasync of the data file: everything committed so far is durable. */
gboolean lmdb_sync (LmdbStore *store, GError **error);

static inline void
lmdb_put_be32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static inline guint32
lmdb_get_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static inline void
lmdb_put_be64 (guint8 *p, guint64 v)
{
  lmdb_put_be32 (p, v >> 32);
  lmdb_put_be32 (p + 4, (guint32) v);
}

static inline guint64
lmdb_get_be64 (const guint8 *p)
{
  return ((guint64) lmdb_get_be32 (p) << 32) | lmdb_get_be32 (p + 4);
}

/* --- lmdb-log.c --- */
gboolean lmdb_logs_open (LmdbStore *store, GError **error);
gboolean lmdb_logs_create (LmdbStore *store, const SluiceLogId *log, GError **error);
gboolean lmdb_logs_create_at (LmdbStore *store, const SluiceLogId *log, gint64 next_offset,
                              GError **error);
gboolean lmdb_logs_delete (LmdbStore *store, const char *stream, GError **error);
gboolean lmdb_logs_list (LmdbStore *store, GPtrArray *streams_out, GArray *partitions_out,
                         GError **error);
gboolean lmdb_logs_append (LmdbStore *store, const SluiceLogId *log,
                           SluiceBatch *const *batches, guint n,
                           gint64 *assigned_base_offsets, GError **error);
gboolean lmdb_logs_read (LmdbStore *store, const SluiceLogId *log, gint64 from_offset,
                         gsize max_bytes, GPtrArray *out, GError **error);
gboolean lmdb_logs_bounds (LmdbStore *store, const SluiceLogId *log, gint64 *first,
                           gint64 *next, GError **error);
gboolean lmdb_logs_trim (LmdbStore *store, const SluiceLogId *log, gint64 before_offset,
                         gint64 older_than_ms, guint64 max_bytes, gint64 *new_first,
                         GError **error);
/* The CRC stored with a batch: over everything after the CRC field. */
guint32 lmdb_batch_crc (const guint8 *value, gsize len);

/* --- lmdb-kv.c --- */
GBytes *lmdb_kv_get (LmdbStore *store, const char *key, GError **error);
gboolean lmdb_kv_scan (LmdbStore *store, const char *prefix, GPtrArray *out,
                       GError **error);
gboolean lmdb_kv_commit (LmdbStore *store, const SluiceKvOp *ops, guint n, GError **error);

/* --- lmdb-blob.c --- */
gboolean lmdb_blobs_open (LmdbStore *store, GError **error);
SluiceBlobWriter *lmdb_blobs_open_write (LmdbStore *store, const char *name,
                                         GError **error);
gboolean lmdb_blobs_write (LmdbStore *store, SluiceBlobWriter *writer, const guint8 *data,
                           gsize len, GError **error);
gboolean lmdb_blobs_commit (LmdbStore *store, SluiceBlobWriter *writer, GError **error);
void lmdb_blobs_abort (LmdbStore *store, SluiceBlobWriter *writer);
GBytes *lmdb_blobs_read (LmdbStore *store, const char *name, guint64 offset,
                         gsize max_bytes, guint64 *total_size, GError **error);
gboolean lmdb_blobs_delete (LmdbStore *store, const char *name, GError **error);
gboolean lmdb_blobs_list (LmdbStore *store, const char *prefix, GPtrArray *names_out,
                          GError **error);

/* --- lmdb-verify.c --- */
/* Walks every database of the environment at `env_dir` in a child process
 * (a damaged page may crash the walker) and checks the newest batch of each
 * partition. FALSE with SLUICE_ERROR_CORRUPT when the walk fails. */
gboolean lmdb_verify (const char *env_dir, guint64 map_size, GError **error);

G_END_DECLS
