/* storage-lmdb — the key/value store: one LMDB database, keys as their
 * UTF-8 bytes (LMDB orders them bytewise, which is the key order the
 * interface promises), one write transaction and one sync per commit.
 * SPDX-License-Identifier: Apache-2.0 */
#include "lmdb-store.h"

#include <string.h>

GBytes *
lmdb_kv_get (LmdbStore *store, const char *key, GError **error)
{
  MDB_txn *txn;
  MDB_val k, v;
  GBytes *value = NULL;
  int rc;

  if (key == NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "kv: NULL key");
      return NULL;
    }
  k.mv_size = strlen (key);
  k.mv_data = (void *) key;
  /* Such keys cannot be stored (kv_commit refuses them): absent. */
  if (k.mv_size == 0 || k.mv_size > (gsize) mdb_env_get_maxkeysize (store->env))
    return NULL;
  txn = lmdb_read_begin (store, error);
  if (txn == NULL)
    return NULL;
  rc = mdb_get (txn, store->kv, &k, &v);
  if (rc == 0)
    value = g_bytes_new (v.mv_data, v.mv_size);
  lmdb_read_end (store, txn);
  if (rc != 0 && rc != MDB_NOTFOUND)
    lmdb_set_error (error, rc, "kv get");
  return value;
}

gboolean
lmdb_kv_scan (LmdbStore *store, const char *prefix, GPtrArray *out, GError **error)
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
  rc = mdb_cursor_open (txn, store->kv, &cur);
  if (rc == 0)
    {
      k.mv_size = plen;
      k.mv_data = (void *) prefix;
      rc = mdb_cursor_get (cur, &k, &v, plen == 0 ? MDB_FIRST : MDB_SET_RANGE);
    }
  while (rc == 0 && k.mv_size >= plen && memcmp (k.mv_data, prefix, plen) == 0)
    {
      SluiceKvPair *pair = g_new0 (SluiceKvPair, 1);

      pair->key = g_strndup (k.mv_data, k.mv_size);
      pair->value = g_bytes_new (v.mv_data, v.mv_size);
      g_ptr_array_add (out, pair);
      rc = mdb_cursor_get (cur, &k, &v, MDB_NEXT);
    }
  if (cur != NULL)
    mdb_cursor_close (cur);
  lmdb_read_end (store, txn);
  if (rc != 0 && rc != MDB_NOTFOUND)
    {
      lmdb_set_error (error, rc, "kv scan");
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  const SluiceKvOp *ops;
  guint n;
} Commit;

static int
commit_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  Commit *c = data;

  for (guint i = 0; i < c->n; i++)
    {
      const SluiceKvOp *op = &c->ops[i];
      MDB_val k = { strlen (op->key), (void *) op->key };
      int rc;

      if (op->type == SLUICE_KV_PUT)
        {
          gsize len = 0;
          gconstpointer bytes = g_bytes_get_data (op->value, &len);
          MDB_val v = { len, (void *) (bytes ? bytes : "") };
          rc = mdb_put (txn, store->kv, &k, &v, 0);
        }
      else
        {
          rc = mdb_del (txn, store->kv, &k, NULL);
          if (rc == MDB_NOTFOUND)
            rc = 0;
        }
      if (rc != 0)
        return rc;
    }
  return 0;
}

gboolean
lmdb_kv_commit (LmdbStore *store, const SluiceKvOp *ops, guint n, GError **error)
{
  Commit c = { ops, n };
  gsize expected = 0;
  gsize max_key = (gsize) mdb_env_get_maxkeysize (store->env);

  if (n == 0)
    return TRUE;
  for (guint i = 0; i < n; i++)
    {
      const SluiceKvOp *op = &ops[i];
      if (op->key == NULL || *op->key == '\0' || !g_utf8_validate (op->key, -1, NULL)
          || strlen (op->key) > max_key
          || (op->type != SLUICE_KV_PUT && op->type != SLUICE_KV_DELETE)
          || (op->type == SLUICE_KV_PUT && op->value == NULL))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "kv: operation %u is invalid (key '%s')", i,
                       op->key && g_utf8_validate (op->key, -1, NULL) ? op->key : "?");
          return FALSE;
        }
      expected += strlen (op->key) + 64 + (op->value ? g_bytes_get_size (op->value) : 0);
    }
  /* Durable when it returns: the KV is never weaker than `batch`. */
  return lmdb_write (store, expected, commit_in_txn, &c, error) && lmdb_sync (store, error);
}
