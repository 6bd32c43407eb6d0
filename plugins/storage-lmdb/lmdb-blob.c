/* storage-lmdb — blobs in chunks: a writer gets a fresh id and stores its
 * content as LMDB_CHUNK-sized chunks keyed (be64 id, be32 index) as it
 * arrives; commit points the name at the id (dropping the old chunks) in one
 * synced transaction, so readers see the old blob or the new one. Chunks of
 * writers that never committed (a crash) are removed at open.
 * SPDX-License-Identifier: Apache-2.0 */
#include "lmdb-store.h"

#include <string.h>

#define BLOB_VALUE 16

struct _SluiceBlobWriter {
  char *name;
  guint64 id;
  guint32 next_chunk;
  guint64 size;
  GByteArray *pending;        /* bytes not yet stored: less than one chunk */
};

static void
chunk_key (guint8 *buf, guint64 id, guint32 index)
{
  lmdb_put_be64 (buf, id);
  lmdb_put_be32 (buf + 8, index);
}

static gboolean
check_name (LmdbStore *store, const char *name, GError **error)
{
  g_auto (GStrv) parts = NULL;

  /* The same rules as storage-file (where names are paths), so a blob name
   * is valid in every backend. */
  if (name == NULL || *name == '\0' || *name == '/' || g_str_has_suffix (name, "/")
      || !g_utf8_validate (name, -1, NULL)
      || strlen (name) > (gsize) mdb_env_get_maxkeysize (store->env))
    goto bad;
  parts = g_strsplit (name, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (*parts[i] == '\0' || strcmp (parts[i], ".") == 0 || strcmp (parts[i], "..") == 0)
      goto bad;
  return TRUE;

bad:
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "invalid blob name '%s'",
               name && g_utf8_validate (name, -1, NULL) ? name : "?");
  return FALSE;
}

/* Delete chunks of `id` from index `from` on. */
static int
delete_chunks (LmdbStore *store, MDB_txn *txn, guint64 id, guint32 from)
{
  MDB_cursor *cur;
  guint8 kb[12];
  MDB_val key = { sizeof kb, kb }, val;
  int rc = mdb_cursor_open (txn, store->chunks, &cur);

  if (rc != 0)
    return rc;
  chunk_key (kb, id, from);
  rc = mdb_cursor_get (cur, &key, &val, MDB_SET_RANGE);
  while (rc == 0 && key.mv_size == 12 && lmdb_get_be64 (key.mv_data) == id)
    {
      rc = lmdb_cursor_del_next (cur, &key, &val);
    }
  mdb_cursor_close (cur);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
cleanup_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  g_autoptr (GHashTable) live = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                       NULL);
  MDB_cursor *cur = NULL;
  MDB_val key, val;
  guint64 max_id = 0;
  guint orphans = 0;
  int rc = mdb_cursor_open (txn, store->blobs, &cur);

  if (rc != 0)
    return rc;
  for (rc = mdb_cursor_get (cur, &key, &val, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT))
    {
      gint64 *id;
      if (val.mv_size != BLOB_VALUE)
        {
          rc = MDB_CORRUPTED;
          break;
        }
      id = g_new (gint64, 1);
      *id = (gint64) lmdb_get_be64 (val.mv_data);
      max_id = MAX (max_id, (guint64) *id);
      g_hash_table_add (live, id);
    }
  mdb_cursor_close (cur);
  if (rc != MDB_NOTFOUND)
    return rc;

  if ((rc = mdb_cursor_open (txn, store->chunks, &cur)) != 0)
    return rc;
  rc = mdb_cursor_get (cur, &key, &val, MDB_FIRST);
  while (rc == 0)
    {
      gint64 id = key.mv_size == 12 ? (gint64) lmdb_get_be64 (key.mv_data) : -1;
      if (id < 0 || !g_hash_table_contains (live, &id))
        {
          orphans++;
          rc = lmdb_cursor_del_next (cur, &key, &val);
        }
      else
        rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT);
    }
  mdb_cursor_close (cur);
  if (rc != MDB_NOTFOUND)
    return rc;
  if (orphans > 0)
    g_info ("storage lmdb: removed %u chunk(s) of blobs never committed", orphans);
  store->blob_seq = max_id + 1;
  return 0;
}

gboolean
lmdb_blobs_open (LmdbStore *store, GError **error)
{
  return lmdb_write (store, 0, cleanup_in_txn, NULL, error);
}

SluiceBlobWriter *
lmdb_blobs_open_write (LmdbStore *store, const char *name, GError **error)
{
  SluiceBlobWriter *w;

  if (!check_name (store, name, error))
    return NULL;
  w = g_new0 (SluiceBlobWriter, 1);
  w->name = g_strdup (name);
  w->pending = g_byte_array_new ();
  g_mutex_lock (&store->blob_lock);
  w->id = store->blob_seq++;
  g_mutex_unlock (&store->blob_lock);
  return w;
}

static void
writer_free (SluiceBlobWriter *w)
{
  g_byte_array_unref (w->pending);
  g_free (w->name);
  g_free (w);
}

typedef struct {
  SluiceBlobWriter *w;
  gboolean final;             /* also the partial last chunk, and the name */
  guint32 stored;             /* chunks stored by this transaction */
} Flush;

static int
flush_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  Flush *f = data;
  SluiceBlobWriter *w = f->w;
  gsize at = 0;
  int rc;

  f->stored = 0;
  while (w->pending->len - at >= LMDB_CHUNK || (f->final && at < w->pending->len))
    {
      guint8 kb[12];
      MDB_val key = { sizeof kb, kb };
      MDB_val val = { MIN ((gsize) LMDB_CHUNK, w->pending->len - at), w->pending->data + at };

      chunk_key (kb, w->id, w->next_chunk + f->stored);
      if ((rc = mdb_put (txn, store->chunks, &key, &val, 0)) != 0)
        return rc;
      at += val.mv_size;
      f->stored++;
    }
  if (f->final)
    {
      MDB_val key = { strlen (w->name), w->name }, val;
      guint8 vb[BLOB_VALUE];

      rc = mdb_get (txn, store->blobs, &key, &val);
      if (rc == 0 && val.mv_size == BLOB_VALUE)
        rc = delete_chunks (store, txn, lmdb_get_be64 (val.mv_data), 0);
      else if (rc == MDB_NOTFOUND)
        rc = 0;
      if (rc != 0)
        return rc;
      lmdb_put_be64 (vb, w->id);
      lmdb_put_be64 (vb + 8, w->size);
      val.mv_size = sizeof vb;
      val.mv_data = vb;
      if ((rc = mdb_put (txn, store->blobs, &key, &val, 0)) != 0)
        return rc;
    }
  return 0;
}

static void
flushed (Flush *f)
{
  gsize n = MIN ((gsize) f->stored * LMDB_CHUNK, f->w->pending->len);

  f->w->next_chunk += f->stored;
  g_byte_array_remove_range (f->w->pending, 0, (guint) n);
}

gboolean
lmdb_blobs_write (LmdbStore *store, SluiceBlobWriter *writer, const guint8 *data,
                  gsize len, GError **error)
{
  Flush f = { writer, FALSE, 0 };

  g_byte_array_append (writer->pending, data, (guint) len);
  writer->size += len;
  if (writer->pending->len < LMDB_CHUNK)
    return TRUE;
  if (!lmdb_write (store, writer->pending->len + 4096, flush_in_txn, &f, error))
    return FALSE;
  flushed (&f);
  return TRUE;
}

static int
abort_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  SluiceBlobWriter *w = data;
  return delete_chunks (store, txn, w->id, 0);
}

void
lmdb_blobs_abort (LmdbStore *store, SluiceBlobWriter *writer)
{
  g_autoptr (GError) error = NULL;

  if (writer == NULL)
    return;
  /* Not fatal: the next open removes chunks nobody points at. */
  if (writer->next_chunk > 0 && !lmdb_write (store, 0, abort_in_txn, writer, &error))
    g_message ("storage lmdb: blob '%s' aborted; its chunks stay until the next open: %s",
               writer->name, error->message);
  writer_free (writer);
}

gboolean
lmdb_blobs_commit (LmdbStore *store, SluiceBlobWriter *writer, GError **error)
{
  Flush f = { writer, TRUE, 0 };
  gboolean ok;

  if (!lmdb_write (store, writer->pending->len + 4096, flush_in_txn, &f, error))
    {
      lmdb_blobs_abort (store, writer);
      return FALSE;
    }
  /* Committed: a failed sync leaves it in place, just not known durable. */
  ok = lmdb_sync (store, error);
  writer_free (writer);
  return ok;
}

GBytes *
lmdb_blobs_read (LmdbStore *store, const char *name, guint64 offset, gsize max_bytes,
                 guint64 *total_size, GError **error)
{
  g_autoptr (GByteArray) buf = NULL;
  MDB_txn *txn;
  MDB_val key, val;
  guint64 id, size, end;
  int rc;

  if (!check_name (store, name, error))
    return NULL;
  txn = lmdb_read_begin (store, error);
  if (txn == NULL)
    return NULL;
  key.mv_size = strlen (name);
  key.mv_data = (void *) name;
  rc = mdb_get (txn, store->blobs, &key, &val);
  if (rc == MDB_NOTFOUND)
    {
      lmdb_read_end (store, txn);
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND, "no blob '%s'", name);
      return NULL;
    }
  if (rc == 0 && val.mv_size != BLOB_VALUE)
    rc = MDB_CORRUPTED;
  if (rc != 0)
    goto fail;
  id = lmdb_get_be64 (val.mv_data);
  size = lmdb_get_be64 ((const guint8 *) val.mv_data + 8);
  if (total_size != NULL)
    *total_size = size;
  offset = MIN (offset, size);
  end = offset + MIN ((guint64) max_bytes, size - offset);
  buf = g_byte_array_sized_new ((guint) (end - offset));
  while (offset < end)
    {
      guint8 kb[12];
      guint32 index = (guint32) (offset / LMDB_CHUNK);
      gsize within = (gsize) (offset % LMDB_CHUNK), n;

      chunk_key (kb, id, index);
      key.mv_size = sizeof kb;
      key.mv_data = kb;
      if ((rc = mdb_get (txn, store->chunks, &key, &val)) != 0)
        {
          /* A blob whose chunks are missing is damaged, not absent. */
          rc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
          goto fail;
        }
      if (val.mv_size <= within)
        {
          rc = MDB_CORRUPTED;
          goto fail;
        }
      n = (gsize) MIN ((guint64) (val.mv_size - within), end - offset);
      g_byte_array_append (buf, (const guint8 *) val.mv_data + within, (guint) n);
      offset += n;
    }
  lmdb_read_end (store, txn);
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));

fail:
  lmdb_read_end (store, txn);
  lmdb_set_error (error, rc, "blob read");
  g_prefix_error (error, "blob '%s': ", name);
  return NULL;
}

static int
delete_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  const char *name = data;
  MDB_val key = { strlen (name), (void *) name }, val;
  int rc = mdb_get (txn, store->blobs, &key, &val);

  if (rc == MDB_NOTFOUND)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND, "no blob '%s'", name);
      return LMDB_FAILED;
    }
  if (rc == 0 && val.mv_size != BLOB_VALUE)
    rc = MDB_CORRUPTED;
  if (rc == 0)
    rc = delete_chunks (store, txn, lmdb_get_be64 (val.mv_data), 0);
  if (rc == 0)
    rc = mdb_del (txn, store->blobs, &key, NULL);
  return rc;
}

gboolean
lmdb_blobs_delete (LmdbStore *store, const char *name, GError **error)
{
  if (!check_name (store, name, error))
    return FALSE;
  return lmdb_write (store, 0, delete_in_txn, (gpointer) name, error)
         && lmdb_sync (store, error);
}

gboolean
lmdb_blobs_list (LmdbStore *store, const char *prefix, GPtrArray *names_out,
                 GError **error)
{
  MDB_txn *txn;
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  gsize plen;
  int rc;

  if (prefix == NULL)
    prefix = "";
  plen = strlen (prefix);
  txn = lmdb_read_begin (store, error);
  if (txn == NULL)
    return FALSE;
  rc = mdb_cursor_open (txn, store->blobs, &cur);
  if (rc == 0)
    {
      k.mv_size = plen;
      k.mv_data = (void *) prefix;
      rc = mdb_cursor_get (cur, &k, &v, plen == 0 ? MDB_FIRST : MDB_SET_RANGE);
    }
  while (rc == 0 && k.mv_size >= plen && memcmp (k.mv_data, prefix, plen) == 0)
    {
      g_ptr_array_add (names_out, g_strndup (k.mv_data, k.mv_size));
      rc = mdb_cursor_get (cur, &k, &v, MDB_NEXT);
    }
  if (cur != NULL)
    mdb_cursor_close (cur);
  lmdb_read_end (store, txn);
  if (rc != 0 && rc != MDB_NOTFOUND)
    {
      lmdb_set_error (error, rc, "blob list");
      return FALSE;
    }
  return TRUE;
}
