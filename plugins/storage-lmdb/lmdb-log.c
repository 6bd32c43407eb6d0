/* storage-lmdb — partition logs: create / delete / list, append, read,
 * bounds and trim, each batch stored under its big-endian base offset with
 * a CRC-32C that every read checks.
 * SPDX-License-Identifier: Apache-2.0 */
#include "lmdb-store.h"

#include <string.h>

/* Longest stream name that still leaves room for the offset in a key
 * (LMDB's default maximum key size is 511 bytes). */
#define MAX_STREAM 480
#define PART_VALUE 16

guint32
lmdb_batch_crc (const guint8 *value, gsize len)
{
  return sluice_crc32c (0, value + 4, len - 4);
}

static gboolean
check_stream_name (const char *stream, GError **error)
{
  if (stream == NULL || *stream == '\0' || strlen (stream) > MAX_STREAM)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "invalid stream name '%s'",
                   stream ? stream : "(null)");
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

/* A key: stream '\0' be32 partition [be64 offset]. Returns its length. */
typedef struct {
  guint8 bytes[MAX_STREAM + 1 + 4 + 8];
  gsize prefix;               /* length without the offset */
} LogKey;

static void
log_key_init (LogKey *k, const SluiceLogId *log)
{
  gsize n = strlen (log->stream);

  memcpy (k->bytes, log->stream, n + 1);
  lmdb_put_be32 (k->bytes + n + 1, (guint32) log->partition);
  k->prefix = n + 1 + 4;
}

static MDB_val
log_key_part (LogKey *k)
{
  MDB_val v = { k->prefix, k->bytes };
  return v;
}

static MDB_val
log_key_at (LogKey *k, guint64 offset)
{
  MDB_val v = { k->prefix + 8, k->bytes };
  lmdb_put_be64 (k->bytes + k->prefix, offset);
  return v;
}

static gboolean
in_partition (const LogKey *k, const MDB_val *key)
{
  return key->mv_size == k->prefix + 8 && memcmp (key->mv_data, k->bytes, k->prefix) == 0;
}

static gint64
key_offset (const MDB_val *key)
{
  return (gint64) lmdb_get_be64 ((const guint8 *) key->mv_data + key->mv_size - 8);
}

static void
set_not_found (GError **error, const SluiceLogId *log)
{
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
               "stream '%s' partition %d: no such log", log->stream, log->partition);
}

/* The partition's record (floor, bytes), or MDB_NOTFOUND. */
static int
get_part (LmdbStore *store, MDB_txn *txn, LogKey *k, gint64 *floor, guint64 *bytes)
{
  MDB_val key = log_key_part (k), val;
  int rc = mdb_get (txn, store->parts, &key, &val);

  if (rc != 0)
    return rc;
  if (val.mv_size != PART_VALUE)
    return MDB_CORRUPTED;
  *floor = (gint64) lmdb_get_be64 (val.mv_data);
  *bytes = lmdb_get_be64 ((const guint8 *) val.mv_data + 8);
  return 0;
}

static int
put_part (LmdbStore *store, MDB_txn *txn, LogKey *k, gint64 floor, guint64 bytes)
{
  MDB_val key = log_key_part (k);
  guint8 buf[PART_VALUE];
  MDB_val val = { sizeof buf, buf };

  lmdb_put_be64 (buf, (guint64) floor);
  lmdb_put_be64 (buf + 8, bytes);
  return mdb_put (txn, store->parts, &key, &val, 0);
}

/* First and last stored batch of a partition (found = FALSE when none). */
static int
edges (LmdbStore *store, MDB_cursor *cur, LogKey *k, gboolean *found, gint64 *first_base,
       gint64 *last_base, gint32 *last_count)
{
  MDB_val key = log_key_at (k, 0), val;
  int rc;

  *found = FALSE;
  rc = mdb_cursor_get (cur, &key, &val, MDB_SET_RANGE);
  if (rc == MDB_NOTFOUND || (rc == 0 && !in_partition (k, &key)))
    return 0;
  if (rc != 0)
    return rc;
  *first_base = key_offset (&key);
  key = log_key_at (k, G_MAXUINT64);
  rc = mdb_cursor_get (cur, &key, &val, MDB_SET_RANGE);
  if (rc == 0)
    rc = mdb_cursor_get (cur, &key, &val, MDB_PREV);
  else if (rc == MDB_NOTFOUND)
    rc = mdb_cursor_get (cur, &key, &val, MDB_LAST);
  if (rc != 0)
    return rc;
  if (!in_partition (k, &key) || val.mv_size < LMDB_BATCH_HEADER)
    return MDB_CORRUPTED;
  *last_base = key_offset (&key);
  *last_count = (gint32) lmdb_get_be32 ((const guint8 *) val.mv_data + 4);
  *found = TRUE;
  return 0;
}

/* ---------------------------------------------------------------------- */

gboolean
lmdb_logs_open (LmdbStore *store, GError **error)
{
  MDB_txn *txn = lmdb_read_begin (store, error);
  MDB_stat st;
  guint n_parts = 0;

  if (txn == NULL)
    return FALSE;
  if (mdb_stat (txn, store->parts, &st) == 0)
    n_parts = (guint) st.ms_entries;
  if (mdb_stat (txn, store->logs, &st) == 0)
    g_info ("storage lmdb: %u partition log(s), %zu batch(es)", n_parts, st.ms_entries);
  lmdb_read_end (store, txn);
  return TRUE;
}

static int
create_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  LogKey *k = data;
  gint64 floor;
  guint64 bytes;
  int rc = get_part (store, txn, k, &floor, &bytes);

  if (rc == MDB_NOTFOUND)
    rc = put_part (store, txn, k, 0, 0);
  return rc;
}

gboolean
lmdb_logs_create (LmdbStore *store, const SluiceLogId *log, GError **error)
{
  LogKey k;

  if (!check_log_id (log, error))
    return FALSE;
  log_key_init (&k, log);
  /* The core writes the stream's settings to the KV (synced) right after;
   * a log created and lost in a crash is created again at start. */
  return lmdb_write (store, 64, create_in_txn, &k, error) && lmdb_sync (store, error);
}

typedef struct {
  const SluiceLogId *log;
  LogKey k;
  gint64 next_offset;
} CreateAt;

static int
create_at_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  CreateAt *c = data;
  MDB_cursor *cur = NULL;
  gint64 floor, first_base, last_base, next;
  gint32 last_count;
  guint64 bytes;
  gboolean found;
  int rc = get_part (store, txn, &c->k, &floor, &bytes);

  if (rc == MDB_NOTFOUND)
    return put_part (store, txn, &c->k, c->next_offset, 0);
  if (rc != 0 || (rc = mdb_cursor_open (txn, store->logs, &cur)) != 0)
    return rc;
  rc = edges (store, cur, &c->k, &found, &first_base, &last_base, &last_count);
  mdb_cursor_close (cur);
  if (rc != 0)
    return rc;
  next = found ? last_base + last_count : floor;
  if (next != c->next_offset)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS,
                   "stream '%s' partition %d: the log exists and its next offset is %"
                   G_GINT64_FORMAT ", not %" G_GINT64_FORMAT, c->log->stream,
                   c->log->partition, next, c->next_offset);
      return LMDB_FAILED;
    }
  return 0;
}

gboolean
lmdb_logs_create_at (LmdbStore *store, const SluiceLogId *log, gint64 next_offset,
                     GError **error)
{
  CreateAt c = { log, { { 0 }, 0 }, next_offset };

  if (!check_log_id (log, error))
    return FALSE;
  if (next_offset < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "stream '%s' partition %d: invalid offset %" G_GINT64_FORMAT, log->stream,
                   log->partition, next_offset);
      return FALSE;
    }
  log_key_init (&c.k, log);
  return lmdb_write (store, 64, create_at_in_txn, &c, error) && lmdb_sync (store, error);
}

/* Delete every key of `dbi` that starts with `prefix`. */
static int
delete_range (MDB_txn *txn, MDB_dbi dbi, const guint8 *prefix, gsize len)
{
  MDB_cursor *cur;
  MDB_val key = { len, (void *) prefix }, val;
  int rc = mdb_cursor_open (txn, dbi, &cur);

  if (rc != 0)
    return rc;
  rc = mdb_cursor_get (cur, &key, &val, MDB_SET_RANGE);
  while (rc == 0 && key.mv_size >= len && memcmp (key.mv_data, prefix, len) == 0)
    {
      rc = lmdb_cursor_del_next (cur, &key, &val);
    }
  mdb_cursor_close (cur);
  return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

static int
delete_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  const char *stream = data;
  gsize len = strlen (stream) + 1; /* with the '\0' that ends the name */
  int rc = delete_range (txn, store->logs, (const guint8 *) stream, len);

  if (rc == 0)
    rc = delete_range (txn, store->parts, (const guint8 *) stream, len);
  return rc;
}

gboolean
lmdb_logs_delete (LmdbStore *store, const char *stream, GError **error)
{
  if (!check_stream_name (stream, error))
    return FALSE;
  return lmdb_write (store, 0, delete_in_txn, (gpointer) stream, error)
         && lmdb_sync (store, error);
}

gboolean
lmdb_logs_list (LmdbStore *store, GPtrArray *streams_out, GArray *partitions_out,
                GError **error)
{
  MDB_txn *txn = lmdb_read_begin (store, error);
  MDB_cursor *cur = NULL;
  MDB_val key, val;
  int rc;

  if (txn == NULL)
    return FALSE;
  rc = mdb_cursor_open (txn, store->parts, &cur);
  if (rc == 0)
    rc = mdb_cursor_get (cur, &key, &val, MDB_FIRST);
  while (rc == 0)
    {
      const guint8 *p = key.mv_data;
      const guint8 *nul = memchr (p, 0, key.mv_size);
      gint32 partition;

      if (nul == NULL || (gsize) (nul - p) + 1 + 4 != key.mv_size)
        {
          rc = MDB_CORRUPTED;
          break;
        }
      partition = (gint32) lmdb_get_be32 (nul + 1);
      g_ptr_array_add (streams_out, g_strndup ((const char *) p, nul - p));
      g_array_append_val (partitions_out, partition);
      rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT);
    }
  if (cur != NULL)
    mdb_cursor_close (cur);
  lmdb_read_end (store, txn);
  if (rc != MDB_NOTFOUND)
    {
      lmdb_set_error (error, rc, "cannot list the logs");
      return FALSE;
    }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* append */

typedef struct {
  const SluiceLogId *log;
  LogKey k;
  SluiceBatch *const *batches;
  guint n;
} Append;

static gboolean
batch_header (const guint8 *data, gsize len, gint64 *base, gint32 *delta)
{
  if (len < SLUICE_BATCH_HEADER_SIZE || data[SLUICE_BATCH_OFF_MAGIC] != 2
      || (gsize) lmdb_get_be32 (data + SLUICE_BATCH_OFF_LENGTH) + 12 != len)
    return FALSE;
  *base = (gint64) lmdb_get_be64 (data + SLUICE_BATCH_OFF_BASE_OFFSET);
  *delta = (gint32) lmdb_get_be32 (data + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA);
  return *delta >= 0;
}

static int
append_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  Append *a = data;
  MDB_cursor *cur = NULL;
  gint64 floor, first_base, last_base, next;
  gint32 last_count;
  guint64 bytes;
  gboolean found;
  int rc = get_part (store, txn, &a->k, &floor, &bytes);

  if (rc == MDB_NOTFOUND)
    {
      set_not_found (error, a->log);
      return LMDB_FAILED;
    }
  if (rc != 0)
    return rc;
  if ((rc = mdb_cursor_open (txn, store->logs, &cur)) != 0)
    return rc;
  rc = edges (store, cur, &a->k, &found, &first_base, &last_base, &last_count);
  if (rc != 0)
    goto out;
  next = found ? last_base + last_count : floor;

  for (guint i = 0; i < a->n; i++)
    {
      const SluiceBatch *b = a->batches[i];
      gsize len = 0;
      const guint8 *src = b->data ? g_bytes_get_data (b->data, &len) : NULL;
      gint64 base;
      gint32 delta;
      MDB_val key, val;
      guint8 *dst;

      if (src == NULL || !batch_header (src, len, &base, &delta))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "stream '%s' partition %d: batch %u is not a v2 record batch",
                       a->log->stream, a->log->partition, i);
          rc = LMDB_FAILED;
          goto out;
        }
      if (base != b->base_offset || b->base_offset != next || b->record_count != delta + 1)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "stream '%s' partition %d: batch at offset %" G_GINT64_FORMAT
                       " (%d records, %" G_GINT64_FORMAT " in its header) does not "
                       "continue the log at offset %" G_GINT64_FORMAT,
                       a->log->stream, a->log->partition, b->base_offset,
                       b->record_count, base, next);
          rc = LMDB_FAILED;
          goto out;
        }
      /* Written in place (MDB_RESERVE): one copy from the batch into the
       * page, the CRC computed over the page copy. */
      key = log_key_at (&a->k, (guint64) base);
      val.mv_size = LMDB_BATCH_HEADER + len;
      val.mv_data = NULL;
      rc = mdb_cursor_put (cur, &key, &val, MDB_RESERVE | MDB_NOOVERWRITE);
      if (rc != 0)
        goto out;
      dst = val.mv_data;
      lmdb_put_be32 (dst + 4, (guint32) b->record_count);
      lmdb_put_be64 (dst + 8, (guint64) b->max_timestamp);
      memcpy (dst + LMDB_BATCH_HEADER, src, len);
      lmdb_put_be32 (dst, lmdb_batch_crc (dst, val.mv_size));
      next += b->record_count;
      bytes += len;
    }
  rc = put_part (store, txn, &a->k, floor, bytes);

out:
  mdb_cursor_close (cur);
  return rc;
}

gboolean
lmdb_logs_append (LmdbStore *store, const SluiceLogId *log, SluiceBatch *const *batches,
                  guint n, gint64 *assigned_base_offsets, GError **error)
{
  Append a = { log, { { 0 }, 0 }, batches, n };
  gsize total = 0;

  if (!check_log_id (log, error))
    return FALSE;
  if (n == 0)
    return TRUE;
  log_key_init (&a.k, log);
  for (guint i = 0; i < n; i++)
    total += batches[i]->data ? g_bytes_get_size (batches[i]->data) + 64 : 0;
  if (!lmdb_write (store, total, append_in_txn, &a, error))
    {
      g_prefix_error (error, "stream '%s' partition %d: ", log->stream, log->partition);
      return FALSE;
    }
  if (assigned_base_offsets != NULL)
    for (guint i = 0; i < n; i++)
      assigned_base_offsets[i] = batches[i]->base_offset;
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* read / bounds */

static void
set_corrupt (GError **error, const SluiceLogId *log, gint64 offset, const char *why)
{
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
               "stream '%s' partition %d: the batch at offset %" G_GINT64_FORMAT
               " is corrupt (%s)", log->stream, log->partition, offset, why);
}

/* Checks a stored value and copies its batch out. */
static SluiceBatch *
batch_from_value (const SluiceLogId *log, const MDB_val *key, const MDB_val *val,
                  GError **error)
{
  const guint8 *v = val->mv_data;
  gint64 base = key_offset (key), hbase;
  gint32 count, delta;
  g_autoptr (GBytes) data = NULL;

  if (val->mv_size < LMDB_BATCH_HEADER + SLUICE_BATCH_HEADER_SIZE)
    {
      set_corrupt (error, log, base, "too short");
      return NULL;
    }
  if (lmdb_get_be32 (v) != lmdb_batch_crc (v, val->mv_size))
    {
      set_corrupt (error, log, base, "CRC mismatch");
      return NULL;
    }
  count = (gint32) lmdb_get_be32 (v + 4);
  if (!batch_header (v + LMDB_BATCH_HEADER, val->mv_size - LMDB_BATCH_HEADER, &hbase, &delta)
      || hbase != base || delta + 1 != count)
    {
      set_corrupt (error, log, base, "batch header does not match its key");
      return NULL;
    }
  data = g_bytes_new (v + LMDB_BATCH_HEADER, val->mv_size - LMDB_BATCH_HEADER);
  return sluice_batch_new (base, count, (gint64) lmdb_get_be64 (v + 8), data);
}

gboolean
lmdb_logs_read (LmdbStore *store, const SluiceLogId *log, gint64 from_offset,
                gsize max_bytes, GPtrArray *out, GError **error)
{
  guint first_out = out->len;
  gsize total = 0;
  MDB_txn *txn;
  MDB_cursor *cur = NULL;
  MDB_val key, val;
  LogKey k;
  gint64 floor;
  guint64 bytes;
  gboolean ok = TRUE;
  int rc;

  if (!check_log_id (log, error))
    return FALSE;
  log_key_init (&k, log);
  txn = lmdb_read_begin (store, error);
  if (txn == NULL)
    return FALSE;
  rc = get_part (store, txn, &k, &floor, &bytes);
  if (rc == MDB_NOTFOUND)
    {
      set_not_found (error, log);
      ok = FALSE;
      goto out;
    }
  if (rc == 0)
    rc = mdb_cursor_open (txn, store->logs, &cur);
  if (rc != 0)
    goto out;

  /* The batch holding from_offset starts at or before it: the greatest key
   * <= from, unless from lies before the first batch. */
  key = log_key_at (&k, (guint64) MAX (from_offset, 0));
  rc = mdb_cursor_get (cur, &key, &val, MDB_SET_RANGE);
  if (rc == MDB_NOTFOUND
      || (rc == 0 && !(in_partition (&k, &key) && key_offset (&key) == from_offset)))
    {
      MDB_val pkey, pval;
      int prc = mdb_cursor_get (cur, &pkey, &pval, rc == 0 ? MDB_PREV : MDB_LAST);

      if (prc == 0 && in_partition (&k, &pkey))
        {
          if (pval.mv_size >= LMDB_BATCH_HEADER
              && key_offset (&pkey) + (gint32) lmdb_get_be32 ((const guint8 *) pval.mv_data + 4)
                     > from_offset)
            {
              key = pkey;
              val = pval;
              rc = 0;
            }
          else
            rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT);
        }
      else if (prc == 0 && rc == 0)
        rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT); /* from precedes the log */
      else if (rc == 0)
        {
          /* Nothing before the key found: it is the first of the database. */
          key = log_key_at (&k, (guint64) MAX (from_offset, 0));
          rc = mdb_cursor_get (cur, &key, &val, MDB_SET_RANGE);
        }
      else if (prc != MDB_NOTFOUND && prc != 0)
        rc = prc;
    }

  while (rc == 0 && in_partition (&k, &key))
    {
      gsize len = val.mv_size - MIN (val.mv_size, LMDB_BATCH_HEADER);
      g_autoptr (GError) local = NULL;
      SluiceBatch *b;

      if (out->len > first_out && total + len > max_bytes)
        break;
      b = batch_from_value (log, &key, &val, &local);
      if (b == NULL)
        {
          if (out->len == first_out)
            {
              g_propagate_error (error, g_steal_pointer (&local));
              ok = FALSE;
            }
          break;
        }
      g_ptr_array_add (out, b);
      total += len;
      if (total >= max_bytes)
        break;
      rc = mdb_cursor_get (cur, &key, &val, MDB_NEXT);
    }
  if (rc == MDB_NOTFOUND)
    rc = 0;

out:
  if (cur != NULL)
    mdb_cursor_close (cur);
  lmdb_read_end (store, txn);
  if (ok && rc != 0)
    {
      lmdb_set_error (error, rc, "cannot read");
      g_prefix_error (error, "stream '%s' partition %d: ", log->stream, log->partition);
      ok = FALSE;
    }
  return ok;
}

gboolean
lmdb_logs_bounds (LmdbStore *store, const SluiceLogId *log, gint64 *first, gint64 *next,
                  GError **error)
{
  MDB_txn *txn;
  MDB_cursor *cur = NULL;
  LogKey k;
  gint64 floor, first_base = 0, last_base = 0;
  gint32 last_count = 0;
  guint64 bytes;
  gboolean found = FALSE;
  int rc;

  if (!check_log_id (log, error))
    return FALSE;
  log_key_init (&k, log);
  txn = lmdb_read_begin (store, error);
  if (txn == NULL)
    return FALSE;
  rc = get_part (store, txn, &k, &floor, &bytes);
  if (rc == 0)
    rc = mdb_cursor_open (txn, store->logs, &cur);
  if (rc == 0)
    rc = edges (store, cur, &k, &found, &first_base, &last_base, &last_count);
  if (cur != NULL)
    mdb_cursor_close (cur);
  lmdb_read_end (store, txn);
  if (rc == MDB_NOTFOUND)
    {
      set_not_found (error, log);
      return FALSE;
    }
  if (rc != 0)
    {
      lmdb_set_error (error, rc, "cannot read the bounds");
      return FALSE;
    }
  if (first != NULL)
    *first = found ? first_base : floor;
  if (next != NULL)
    *next = found ? last_base + last_count : floor;
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* trim */

typedef struct {
  const SluiceLogId *log;
  LogKey k;
  gint64 before_offset, older_than_ms;
  guint64 max_bytes;
  gint64 new_first;
  guint dropped;
} Trim;

static int
trim_in_txn (LmdbStore *store, MDB_txn *txn, gpointer data, GError **error)
{
  Trim *t = data;
  MDB_cursor *cur = NULL;
  MDB_val key, val;
  gint64 floor, first_base, last_base, next;
  gint32 last_count;
  guint64 bytes;
  gboolean found;
  int rc = get_part (store, txn, &t->k, &floor, &bytes);

  t->dropped = 0;
  if (rc == MDB_NOTFOUND)
    {
      set_not_found (error, t->log);
      return LMDB_FAILED;
    }
  if (rc != 0 || (rc = mdb_cursor_open (txn, store->logs, &cur)) != 0)
    return rc;
  rc = edges (store, cur, &t->k, &found, &first_base, &last_base, &last_count);
  if (rc != 0 || !found)
    {
      t->new_first = floor;
      goto out;
    }
  next = last_base + last_count;

  key = log_key_at (&t->k, (guint64) first_base);
  rc = mdb_cursor_get (cur, &key, &val, MDB_SET_KEY);
  /* The batch holding the newest data is never dropped. */
  while (rc == 0 && in_partition (&t->k, &key) && key_offset (&key) < last_base)
    {
      const guint8 *v = val.mv_data;
      gint64 base = key_offset (&key);
      gint32 count;
      gint64 max_ts;
      gsize len;

      if (val.mv_size < LMDB_BATCH_HEADER)
        {
          rc = MDB_CORRUPTED;
          break;
        }
      count = (gint32) lmdb_get_be32 (v + 4);
      max_ts = (gint64) lmdb_get_be64 (v + 8);
      len = val.mv_size - LMDB_BATCH_HEADER;
      if (!((t->before_offset != G_MAXINT64 && base + count <= t->before_offset)
            || (t->older_than_ms > 0 && max_ts < t->older_than_ms)
            || (t->max_bytes > 0 && bytes > t->max_bytes)))
        break;
      if ((rc = lmdb_cursor_del_next (cur, &key, &val)) != 0)
        break;
      bytes -= MIN (bytes, (guint64) len);
      t->dropped++;
    }
  if (rc != 0 && rc != MDB_NOTFOUND)
    goto out;
  rc = 0;
  t->new_first = t->dropped > 0 && rc == 0 && in_partition (&t->k, &key) ? key_offset (&key)
                                                                            : first_base;
  /* The floor keeps offsets from going backwards should the log ever be
   * empty again. */
  if (t->dropped > 0)
    rc = put_part (store, txn, &t->k, next, bytes);

out:
  mdb_cursor_close (cur);
  return rc;
}

gboolean
lmdb_logs_trim (LmdbStore *store, const SluiceLogId *log, gint64 before_offset,
                gint64 older_than_ms, guint64 max_bytes, gint64 *new_first, GError **error)
{
  Trim t = { log, { { 0 }, 0 }, before_offset, older_than_ms, max_bytes, 0, 0 };

  if (!check_log_id (log, error))
    return FALSE;
  log_key_init (&t.k, log);
  if (!lmdb_write (store, 0, trim_in_txn, &t, error))
    return FALSE;
  if (t.dropped > 0)
    g_info ("stream '%s' partition %d: trimmed %u batch(es) before offset %" G_GINT64_FORMAT,
            log->stream, log->partition, t.dropped, t.new_first);
  if (new_first != NULL)
    *new_first = t.new_first;
  return TRUE;
}
