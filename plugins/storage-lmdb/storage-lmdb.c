/* storage-lmdb — the storage plugin `lmdb`: partition logs, the KV and blobs
 * in one LMDB environment under the hub's data directory (layout in
 * lmdb-store.h).
 *
 * Durability: the environment runs with MDB_NOSYNC, so a commit writes its
 * pages (pwrite: no MDB_WRITEMAP, a full disk is an error and not a SIGBUS)
 * without flushing them; `sync` is mdb_env_sync (force), one fdatasync of the
 * data file that covers every transaction committed before it, which is the
 * group commit the core's writer drives (`batch` acknowledges after it,
 * `interval` runs it on a timer, `none` leaves it to the page cache and to
 * close). kv_commit and blob_commit sync before they return. A process crash
 * (kill -9) loses nothing committed; between two syncs an operating system
 * crash or power loss may lose the unsynced transactions, and because LMDB
 * then has no ordering between data and meta pages it may leave the file
 * needing the verification pass at open to notice damage (what MDB_NOSYNC
 * documents).
 *
 * The map grows by itself (doubling, up to `max-map-size`) before it is
 * full. Retention deletes whole batches: their pages go back to LMDB's free
 * list and are reused by later appends, but the file never shrinks (copy it
 * with `mdb_copy -c` offline to compact it).
 * SPDX-License-Identifier: Apache-2.0 */
#include "lmdb-store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const SluiceOption lmdb_options[] = {
  { "map-size", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (LmdbOptions, map_size), "1GiB",
    "initial size of the memory map (it grows by itself)", 1024 * 1024,
    G_MAXINT64, NULL, { NULL, NULL } },
  { "max-map-size", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (LmdbOptions, max_map_size),
    "256GiB", "the map never grows past this (the store is then full)", 1024 * 1024,
    G_MAXINT64, NULL, { NULL, NULL } },
  { "verify-at-open", SLUICE_OPTION_BOOL, G_STRUCT_OFFSET (LmdbOptions, verify_at_open),
    "true", "walk every database in a child process before opening", 0, 0, NULL,
    { NULL, NULL } },
  { "max-readers", SLUICE_OPTION_INT, G_STRUCT_OFFSET (LmdbOptions, max_readers), "512",
    "read transactions open at once (reader threads)", 16, 65536, NULL, { NULL, NULL } },
  SLUICE_OPTION_END
};

void
lmdb_set_error (GError **error, int rc, const char *what)
{
  if (rc == ENOSPC || rc == EDQUOT)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                 "storage lmdb: %s: disk full (%s)", what, mdb_strerror (rc));
  else if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
                 "storage lmdb: %s: the data file is damaged (%s)", what, mdb_strerror (rc));
  else if (rc == MDB_MAP_FULL)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                 "storage lmdb: %s: the store is full (max-map-size reached)", what);
  else
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE, "storage lmdb: %s: %s", what,
                 mdb_strerror (rc));
}

/* ---------------------------------------------------------------------- */
/* the map */

static guint64
used_bytes (LmdbStore *store)
{
  MDB_envinfo info;

  if (mdb_env_info (store->env, &info) != 0)
    return 0;
  return ((guint64) info.me_last_pgno + 1) * store->page_size;
}

/* Grow so that `expected` more bytes fit comfortably; `force` when LMDB has
 * just said the map is full. Needs no transaction open in this process,
 * hence the exclusive map lock. */
static gboolean
maybe_grow (LmdbStore *store, gsize expected, gboolean force, GError **error)
{
  guint64 want, used, old;
  gboolean ok = TRUE;
  int rc;

  /* Cheap check first, without the exclusive lock. */
  g_rw_lock_reader_lock (&store->map_lock);
  used = used_bytes (store);
  old = store->map_size;
  g_rw_lock_reader_unlock (&store->map_lock);
  want = used + 2 * (guint64) expected + 4 * 1024 * 1024;
  if (!force && want <= old / 4 * 3)
    return TRUE;

  g_rw_lock_writer_lock (&store->map_lock);
  if (store->map_size != old && !force)
    goto out; /* someone else grew it meanwhile */
  used = used_bytes (store);
  want = MAX (store->map_size * 2, (used + 2 * (guint64) expected) * 2);
  want = MIN (want, store->options.max_map_size);
  if (want <= store->map_size)
    {
      if (force)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                       "storage lmdb: the store is full: max-map-size (%" G_GUINT64_FORMAT
                       " bytes) reached; raise it in [storage] or lower retention",
                       store->options.max_map_size);
          ok = FALSE;
        }
      goto out;
    }
  rc = mdb_env_set_mapsize (store->env, want);
  if (rc != 0)
    {
      lmdb_set_error (error, rc, "cannot grow the map");
      ok = FALSE;
      goto out;
    }
  g_info ("storage lmdb: map grown from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
          " bytes (%" G_GUINT64_FORMAT " in use)", store->map_size, want, used);
  store->map_size = want;

out:
  g_rw_lock_writer_unlock (&store->map_lock);
  return ok;
}

gboolean
lmdb_write (LmdbStore *store, gsize expected, LmdbWriteFunc fn, gpointer data,
            GError **error)
{
  for (guint attempt = 0;; attempt++)
    {
      g_autoptr (GError) local = NULL;
      MDB_txn *txn = NULL;
      int rc;

      if (!maybe_grow (store, expected, attempt > 0, error))
        return FALSE;
      g_rw_lock_reader_lock (&store->map_lock);
      rc = mdb_txn_begin (store->env, NULL, 0, &txn);
      if (rc == 0)
        {
          rc = fn (store, txn, data, &local);
          if (rc == 0)
            rc = mdb_txn_commit (txn);
          else
            mdb_txn_abort (txn);
        }
      g_rw_lock_reader_unlock (&store->map_lock);

      if (rc == MDB_MAP_FULL && attempt < 8)
        continue;
      if (rc == LMDB_FAILED)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      if (rc != 0)
        {
          lmdb_set_error (error, rc, "write transaction");
          return FALSE;
        }
      return TRUE;
    }
}

MDB_txn *
lmdb_read_begin (LmdbStore *store, GError **error)
{
  MDB_txn *txn = NULL;
  int rc;

  g_rw_lock_reader_lock (&store->map_lock);
  rc = mdb_txn_begin (store->env, NULL, MDB_RDONLY, &txn);
  if (rc != 0)
    {
      g_rw_lock_reader_unlock (&store->map_lock);
      lmdb_set_error (error, rc, "read transaction");
      return NULL;
    }
  return txn;
}

void
lmdb_read_end (LmdbStore *store, MDB_txn *txn)
{
  mdb_txn_abort (txn);
  g_rw_lock_reader_unlock (&store->map_lock);
}

int
lmdb_cursor_del_next (MDB_cursor *cur, MDB_val *key, MDB_val *val)
{
  guint8 copy[512];
  gsize len = MIN (key->mv_size, sizeof copy);
  int rc;

  memcpy (copy, key->mv_data, len);
  if ((rc = mdb_cursor_del (cur, 0)) != 0)
    return rc;
  key->mv_size = len;
  key->mv_data = copy;
  rc = mdb_cursor_get (cur, key, val, MDB_SET_RANGE);
  /* `copy` dies here: a found key points into the page, a missing one is
   * not used. */
  if (rc != 0)
    {
      key->mv_size = 0;
      key->mv_data = NULL;
    }
  return rc;
}

gboolean
lmdb_sync (LmdbStore *store, GError **error)
{
  int rc;

  /* Runs beside write transactions (the core syncs while its writer goes on
   * appending); only the map resize must not run under it. */
  g_rw_lock_reader_lock (&store->map_lock);
  rc = mdb_env_sync (store->env, 1);
  g_rw_lock_reader_unlock (&store->map_lock);
  if (rc != 0)
    {
      lmdb_set_error (error, rc, "cannot sync");
      return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* open / close */

static void
lmdb_close (gpointer self)
{
  LmdbStore *store = self;

  if (store == NULL)
    return;
  if (store->env != NULL)
    {
      /* A graceful stop keeps what was appended even when nobody synced it. */
      int rc = mdb_env_sync (store->env, 1);
      if (rc != 0)
        g_warning ("storage lmdb: cannot sync at close: %s", mdb_strerror (rc));
      mdb_env_close (store->env);
    }
  if (store->lock_fd >= 0)
    close (store->lock_fd);
  g_rw_lock_clear (&store->map_lock);
  g_mutex_clear (&store->blob_lock);
  g_free (store->env_dir);
  g_free (store->data_dir);
  g_free (store);
}

static gboolean
lock_data_dir (LmdbStore *store, GError **error)
{
  g_autofree char *path = g_build_filename (store->data_dir, "storage.lock", NULL);
  int saved;

  store->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (store->lock_fd < 0)
    {
      saved = errno;
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE, "cannot open %s: %s", path,
                   g_strerror (saved));
      return FALSE;
    }
  /* LMDB itself allows several processes, but the core's writer assumes it
   * alone assigns offsets. */
  if (flock (store->lock_fd, LOCK_EX | LOCK_NB) < 0)
    {
      saved = errno;
      if (saved == EWOULDBLOCK)
        g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                     "data directory %s is in use by another process (lock %s)",
                     store->data_dir, path);
      else
        g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE, "cannot lock %s: %s", path,
                     g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

static int
open_databases (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {
    { "parts", &store->parts }, { "logs", &store->logs },     { "kv", &store->kv },
    { "blobs", &store->blobs }, { "chunks", &store->chunks }, { "meta", &store->meta },
  };

  for (guint i = 0; i < G_N_ELEMENTS (dbs); i++)
    {
      int rc = mdb_dbi_open (txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
      if (rc != 0)
        return rc;
    }
  return 0;
}

static gpointer
lmdb_open (SluiceHost *host, const void *options, const char *data_dir, GError **error)
{
  LmdbStore *store = g_new0 (LmdbStore, 1);
  const LmdbOptions *opts = options;
  g_autofree char *data_file = NULL;
  MDB_envinfo info;
  MDB_stat st;
  int rc, dead = 0;

  g_rw_lock_init (&store->map_lock);
  g_mutex_init (&store->blob_lock);
  store->lock_fd = -1;
  store->data_dir = g_strdup (data_dir);
  store->env_dir = g_build_filename (data_dir, "lmdb", NULL);
  /* Zero means "unset" (options filled by hand, e.g. in tests). */
  store->options.map_size = opts && opts->map_size ? opts->map_size : LMDB_DEFAULT_MAP_SIZE;
  store->options.max_map_size = opts && opts->max_map_size ? opts->max_map_size
                                                           : LMDB_DEFAULT_MAX_MAP_SIZE;
  store->options.max_map_size = MAX (store->options.max_map_size, store->options.map_size);
  store->options.verify_at_open = opts ? opts->verify_at_open : TRUE;
  store->options.max_readers = opts && opts->max_readers ? opts->max_readers
                                                         : LMDB_DEFAULT_MAX_READERS;

  if (!lock_data_dir (store, error))
    goto fail;
  if (g_mkdir_with_parents (store->env_dir, 0750) < 0)
    {
      int saved = errno;
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE, "cannot create %s: %s",
                   store->env_dir, g_strerror (saved));
      goto fail;
    }
  data_file = g_build_filename (store->env_dir, "data.mdb", NULL);
  if (store->options.verify_at_open && g_file_test (data_file, G_FILE_TEST_EXISTS))
    {
      gint64 t0 = g_get_monotonic_time ();
      if (!lmdb_verify (store->env_dir, store->options.map_size, error))
        goto fail;
      g_info ("storage lmdb: verified %s in %" G_GINT64_FORMAT " ms", data_file,
              (g_get_monotonic_time () - t0) / 1000);
    }

  if ((rc = mdb_env_create (&store->env)) != 0)
    {
      store->env = NULL;
      lmdb_set_error (error, rc, "cannot create the environment");
      goto fail;
    }
  if ((rc = mdb_env_set_maxdbs (store->env, 8)) != 0
      || (rc = mdb_env_set_maxreaders (store->env, (unsigned) store->options.max_readers)) != 0
      || (rc = mdb_env_set_mapsize (store->env, store->options.map_size)) != 0
      || (rc = mdb_env_open (store->env, store->env_dir, MDB_NOSYNC | MDB_NOTLS, 0640)) != 0)
    {
      lmdb_set_error (error, rc, store->env_dir);
      goto fail;
    }
  /* Reader slots left behind by a process that died holding them would pin
   * old pages forever. */
  mdb_reader_check (store->env, &dead);
  if (dead > 0)
    g_info ("storage lmdb: cleared %d stale reader slot(s)", dead);
  mdb_env_stat (store->env, &st);
  store->page_size = st.ms_psize;
  mdb_env_info (store->env, &info);
  /* An existing file larger than the configured map keeps its own size. */
  store->map_size = MAX (info.me_mapsize, store->options.map_size);

  if (!lmdb_write (store, 0, open_databases, NULL, error) || !lmdb_sync (store, error))
    goto fail;
  if (!lmdb_logs_open (store, error) || !lmdb_blobs_open (store, error))
    goto fail;
  g_info ("storage lmdb: opened %s (map %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
          " in use, max-map-size %" G_GUINT64_FORMAT ")", store->env_dir, store->map_size,
          used_bytes (store), store->options.max_map_size);
  return store;

fail:
  g_prefix_error (error, "storage lmdb: ");
  lmdb_close (store);
  return NULL;
}

#define STORE(self) ((LmdbStore *) (self))

static gboolean
lmdb_log_create (gpointer self, const SluiceLogId *log, GError **error)
{
  return lmdb_logs_create (STORE (self), log, error);
}

static gboolean
lmdb_log_delete (gpointer self, const char *stream, GError **error)
{
  return lmdb_logs_delete (STORE (self), stream, error);
}

static gboolean
lmdb_log_list (gpointer self, GPtrArray *streams_out, GArray *partitions_out,
               GError **error)
{
  return lmdb_logs_list (STORE (self), streams_out, partitions_out, error);
}

static gboolean
lmdb_log_append (gpointer self, const SluiceLogId *log, SluiceBatch *const *batches,
                 guint n, gint64 *assigned_base_offsets, GError **error)
{
  return lmdb_logs_append (STORE (self), log, batches, n, assigned_base_offsets, error);
}

static gboolean
lmdb_sync_slot (gpointer self, const SluiceLogId *logs, guint n, GError **error)
{
  /* One fdatasync covers every log: they share one file. */
  return n == 0 || lmdb_sync (STORE (self), error);
}

static gboolean
lmdb_log_read (gpointer self, const SluiceLogId *log, gint64 from_offset, gsize max_bytes,
               GPtrArray *out, GError **error)
{
  return lmdb_logs_read (STORE (self), log, from_offset, max_bytes, out, error);
}

static gboolean
lmdb_log_bounds (gpointer self, const SluiceLogId *log, gint64 *first, gint64 *next,
                 GError **error)
{
  return lmdb_logs_bounds (STORE (self), log, first, next, error);
}

static gboolean
lmdb_log_trim (gpointer self, const SluiceLogId *log, gint64 before_offset,
               gint64 older_than_ms, guint64 max_bytes, gint64 *new_first, GError **error)
{
  return lmdb_logs_trim (STORE (self), log, before_offset, older_than_ms, max_bytes,
                         new_first, error);
}

static GBytes *
lmdb_kv_get_slot (gpointer self, const char *key, GError **error)
{
  return lmdb_kv_get (STORE (self), key, error);
}

static gboolean
lmdb_kv_scan_slot (gpointer self, const char *prefix, GPtrArray *out, GError **error)
{
  return lmdb_kv_scan (STORE (self), prefix, out, error);
}

static gboolean
lmdb_kv_commit_slot (gpointer self, const SluiceKvOp *ops, guint n, GError **error)
{
  return lmdb_kv_commit (STORE (self), ops, n, error);
}

static SluiceBlobWriter *
lmdb_blob_open_write (gpointer self, const char *name, GError **error)
{
  return lmdb_blobs_open_write (STORE (self), name, error);
}

static gboolean
lmdb_blob_write (gpointer self, SluiceBlobWriter *writer, const guint8 *data, gsize len,
                 GError **error)
{
  return lmdb_blobs_write (STORE (self), writer, data, len, error);
}

static gboolean
lmdb_blob_commit (gpointer self, SluiceBlobWriter *writer, GError **error)
{
  return lmdb_blobs_commit (STORE (self), writer, error);
}

static void
lmdb_blob_abort (gpointer self, SluiceBlobWriter *writer)
{
  lmdb_blobs_abort (STORE (self), writer);
}

static GBytes *
lmdb_blob_read (gpointer self, const char *name, guint64 offset, gsize max_bytes,
                guint64 *total_size, GError **error)
{
  return lmdb_blobs_read (STORE (self), name, offset, max_bytes, total_size, error);
}

static gboolean
lmdb_blob_delete (gpointer self, const char *name, GError **error)
{
  return lmdb_blobs_delete (STORE (self), name, error);
}

static gboolean
lmdb_log_create_at (gpointer self, const SluiceLogId *log, gint64 next_offset,
                    GError **error)
{
  return lmdb_logs_create_at (STORE (self), log, next_offset, error);
}

static gboolean
lmdb_blob_list (gpointer self, const char *prefix, GPtrArray *names_out, GError **error)
{
  return lmdb_blobs_list (STORE (self), prefix, names_out, error);
}

static const SluiceStorageVTable lmdb_vtable = {
  .open = lmdb_open,
  .close = lmdb_close,
  .log_create = lmdb_log_create,
  .log_delete = lmdb_log_delete,
  .log_list = lmdb_log_list,
  .log_append = lmdb_log_append,
  .sync = lmdb_sync_slot,
  .log_read = lmdb_log_read,
  .log_bounds = lmdb_log_bounds,
  .log_trim = lmdb_log_trim,
  .kv_get = lmdb_kv_get_slot,
  .kv_scan = lmdb_kv_scan_slot,
  .kv_commit = lmdb_kv_commit_slot,
  .blob_open_write = lmdb_blob_open_write,
  .blob_write = lmdb_blob_write,
  .blob_commit = lmdb_blob_commit,
  .blob_abort = lmdb_blob_abort,
  .blob_read = lmdb_blob_read,
  .blob_delete = lmdb_blob_delete,
  .log_create_at = lmdb_log_create_at,
  .blob_list = lmdb_blob_list,
};

SLUICE_PLUGIN_DEFINE (storage, lmdb, "0.1.0",
                      "partition logs, KV and blobs in one LMDB environment",
                      "Apache-2.0", &lmdb_vtable, lmdb_options, sizeof (LmdbOptions), NULL)
