/* storage-file — the key/value store: an append-only log of commit records
 * replayed into a sorted in-memory map at open.
 *
 * Record: "SKV1" | payload length u32 | CRC-32C u32 (over the length field
 * and the payload) | payload. Payload: op count u32, then per op: type u8,
 * key length u32, key, and for a put: value length u32, value. Big-endian.
 * One record per kv_commit, written with one write() and fdatasync'ed before
 * the commit returns, so only the last record can be torn by a crash.
 * SPDX-License-Identifier: Apache-2.0 */
#include "file-store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KV_MAGIC "SKV1"
#define KV_HEADER_SIZE 12
/* Compact when the garbage exceeds both the live data and this. */
#define KV_COMPACT_MIN_GARBAGE (G_GUINT64_CONSTANT (4) * 1024 * 1024)
/* Snapshot records stay below this payload size. */
#define KV_SNAPSHOT_RECORD_SIZE (1024 * 1024)

struct _FileKv {
  char *dir;
  char *path;
  int fd;
  GMutex commit_lock;         /* one commit at a time: file order = apply order */
  GRWLock lock;               /* guards `tree` */
  GTree *tree;                /* char* -> GBytes* */
  guint64 file_size;
  guint64 live_size;          /* bytes a snapshot of `tree` would take */
  gboolean broken;            /* a failed write could not be undone */
};

/* Byte order, as memcmp-ordered backends (LMDB) scan. */
static gint
compare_keys (gconstpointer a, gconstpointer b, gpointer user_data)
{
  return strcmp (a, b);
}

static guint64
op_size (gsize key_len, gsize value_len)
{
  return 1 + 4 + key_len + 4 + value_len;
}

static void
tree_put (FileKv *kv, const char *key, gsize key_len, GBytes *value)
{
  GBytes *old = g_tree_lookup (kv->tree, key);

  if (old != NULL)
    kv->live_size -= op_size (key_len, g_bytes_get_size (old));
  kv->live_size += op_size (key_len, g_bytes_get_size (value));
  g_tree_replace (kv->tree, g_strndup (key, key_len), g_bytes_ref (value));
}

static void
tree_delete (FileKv *kv, const char *key, gsize key_len)
{
  GBytes *old = g_tree_lookup (kv->tree, key);

  if (old != NULL)
    {
      kv->live_size -= op_size (key_len, g_bytes_get_size (old));
      g_tree_remove (kv->tree, key);
    }
}

/* Apply one record's payload (already CRC-checked). */
static gboolean
apply_payload (FileKv *kv, const guint8 *p, gsize len)
{
  const guint8 *end = p + len;
  guint32 n;

  if (len < 4)
    return FALSE;
  n = file_get_be32 (p);
  p += 4;
  for (guint32 i = 0; i < n; i++)
    {
      guint8 type;
      guint32 klen, vlen;
      g_autofree char *key = NULL;

      if (end - p < 5)
        return FALSE;
      type = p[0];
      klen = file_get_be32 (p + 1);
      p += 5;
      if ((gsize) (end - p) < klen)
        return FALSE;
      key = g_strndup ((const char *) p, klen);
      p += klen;
      if (type == SLUICE_KV_PUT)
        {
          g_autoptr (GBytes) value = NULL;
          if (end - p < 4)
            return FALSE;
          vlen = file_get_be32 (p);
          p += 4;
          if ((gsize) (end - p) < vlen)
            return FALSE;
          value = g_bytes_new (p, vlen);
          p += vlen;
          tree_put (kv, key, klen, value);
        }
      else if (type == SLUICE_KV_DELETE)
        tree_delete (kv, key, klen);
      else
        return FALSE;
    }
  return p == end;
}

static gboolean
all_zero (const guint8 *p, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (p[i] != 0)
      return FALSE;
  return TRUE;
}

/* Replay kv.log; returns the size of its good prefix in *good. */
static gboolean
replay (FileKv *kv, const guint8 *data, gsize size, gsize *good, char **torn_reason,
        GError **error)
{
  gsize pos = 0;

  while (pos < size)
    {
      gsize left = size - pos;
      const guint8 *r = data + pos;
      guint32 len;

      if (left < KV_HEADER_SIZE)
        {
          *torn_reason = g_strdup ("partial record header");
          break;
        }
      if (memcmp (r, KV_MAGIC, 4) != 0)
        {
          /* A crash can leave a zero-filled tail behind the last write. */
          if (all_zero (r, left))
            {
              *torn_reason = g_strdup ("zero-filled tail");
              break;
            }
          goto corrupt;
        }
      len = file_get_be32 (r + 4);
      if ((guint64) len + KV_HEADER_SIZE > left)
        {
          *torn_reason = g_strdup ("partial record");
          break;
        }
      {
        /* CRC covers length + payload; it sits between them on disk. */
        guint32 crc = sluice_crc32c (0, r + 4, 4);
        crc = sluice_crc32c (crc, r + KV_HEADER_SIZE, len);
        if (crc != file_get_be32 (r + 8))
          {
            if ((guint64) len + KV_HEADER_SIZE == left)
              {
                *torn_reason = g_strdup ("CRC mismatch in the last record");
                break;
              }
            goto corrupt;
          }
      }
      if (!apply_payload (kv, r + KV_HEADER_SIZE, len))
        goto corrupt;
      pos += KV_HEADER_SIZE + len;
    }
  *good = pos;
  return TRUE;

corrupt:
  /* Not the last record: committed data follows, so dropping it silently
   * would lose acknowledged commits. */
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
               "%s is corrupt at position %" G_GSIZE_FORMAT " with %" G_GSIZE_FORMAT
               " bytes after it; refusing to drop committed data (restore it from a "
               "backup or remove the file)", kv->path, pos, size - pos);
  return FALSE;
}

/* Frame the payload in `rec` (which starts with KV_HEADER_SIZE spare bytes). */
static void
frame_record (GByteArray *rec)
{
  guint32 len = rec->len - KV_HEADER_SIZE;
  guint32 crc;

  memcpy (rec->data, KV_MAGIC, 4);
  file_put_be32 (rec->data + 4, len);
  crc = sluice_crc32c (0, rec->data + 4, 4);
  crc = sluice_crc32c (crc, rec->data + KV_HEADER_SIZE, len);
  file_put_be32 (rec->data + 8, crc);
}

static void
put_op (GByteArray *rec, SluiceKvOpType type, const char *key, GBytes *value)
{
  guint8 hdr[5];
  gsize klen = strlen (key);

  hdr[0] = (guint8) type;
  file_put_be32 (hdr + 1, (guint32) klen);
  g_byte_array_append (rec, hdr, 5);
  g_byte_array_append (rec, (const guint8 *) key, klen);
  if (type == SLUICE_KV_PUT)
    {
      gsize vlen;
      const guint8 *v = g_bytes_get_data (value, &vlen);
      guint8 l[4];
      file_put_be32 (l, (guint32) vlen);
      g_byte_array_append (rec, l, 4);
      if (vlen > 0)
        g_byte_array_append (rec, v, vlen);
    }
}

static GByteArray *
record_begin (void)
{
  GByteArray *rec = g_byte_array_new ();
  g_byte_array_set_size (rec, KV_HEADER_SIZE + 4);
  return rec;
}

typedef struct {
  int fd;
  const char *path;
  GByteArray *rec;
  guint32 n;
  guint64 written;
  GError **error;
  gboolean failed;
} SnapshotCtx;

static gboolean
snapshot_flush (SnapshotCtx *c)
{
  if (c->n == 0)
    return TRUE;
  file_put_be32 (c->rec->data + KV_HEADER_SIZE, c->n);
  frame_record (c->rec);
  if (!file_write_all (c->fd, c->rec->data, c->rec->len, c->path, c->error))
    return FALSE;
  c->written += c->rec->len;
  g_byte_array_set_size (c->rec, KV_HEADER_SIZE + 4);
  c->n = 0;
  return TRUE;
}

static gboolean
snapshot_one (gpointer key, gpointer value, gpointer data)
{
  SnapshotCtx *c = data;

  put_op (c->rec, SLUICE_KV_PUT, key, value);
  c->n++;
  if (c->rec->len >= KV_SNAPSHOT_RECORD_SIZE && !snapshot_flush (c))
    {
      c->failed = TRUE;
      return TRUE;
    }
  return FALSE;
}

/* Rewrite kv.log as the live pairs only: tmp, fsync, rename, fsync dir. */
static gboolean
compact (FileKv *kv, GError **error)
{
  g_autofree char *tmp = g_strconcat (kv->path, ".tmp", NULL);
  g_autoptr (GByteArray) rec = record_begin ();
  SnapshotCtx c = { -1, tmp, rec, 0, 0, error, FALSE };
  guint64 before = kv->file_size;

  c.fd = open (tmp, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (c.fd < 0)
    {
      file_set_io_error (error, errno, "cannot create", tmp);
      return FALSE;
    }
  g_tree_foreach (kv->tree, snapshot_one, &c);
  if (c.failed || !snapshot_flush (&c))
    goto fail;
  if (fsync (c.fd) < 0)
    {
      file_set_io_error (error, errno, "cannot sync", tmp);
      goto fail;
    }
  if (rename (tmp, kv->path) < 0)
    {
      file_set_io_error (error, errno, "cannot rename to", kv->path);
      goto fail;
    }
  /* Appends continue on the new file (O_APPEND, like the old one). */
  if (kv->fd >= 0)
    close (kv->fd);
  kv->fd = c.fd;
  kv->file_size = c.written;
  /* The rename happened; only its durability is in doubt on failure. */
  if (!file_fsync_dir (kv->dir, error))
    return FALSE;
  g_info ("kv: compacted %s from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT " bytes",
          kv->path, before, c.written);
  return TRUE;

fail:
  close (c.fd);
  unlink (tmp);
  return FALSE;
}

static gboolean
wants_compaction (FileKv *kv)
{
  guint64 garbage = kv->file_size > kv->live_size ? kv->file_size - kv->live_size : 0;
  return garbage > MAX (kv->live_size, KV_COMPACT_MIN_GARBAGE);
}

void
file_kv_close (FileKv *kv)
{
  if (kv == NULL)
    return;
  if (kv->fd >= 0)
    close (kv->fd);
  g_tree_unref (kv->tree);
  g_mutex_clear (&kv->commit_lock);
  g_rw_lock_clear (&kv->lock);
  g_free (kv->dir);
  g_free (kv->path);
  g_free (kv);
}

FileKv *
file_kv_open (const char *data_dir, GError **error)
{
  FileKv *kv = g_new0 (FileKv, 1);
  g_autofree char *contents = NULL;
  g_autofree char *torn_reason = NULL;
  g_autofree char *tmp = NULL;
  gsize size = 0, good = 0;
  struct stat st;

  kv->dir = g_build_filename (data_dir, "kv", NULL);
  kv->path = g_build_filename (kv->dir, "kv.log", NULL);
  kv->fd = -1;
  g_mutex_init (&kv->commit_lock);
  g_rw_lock_init (&kv->lock);
  kv->tree = g_tree_new_full (compare_keys, NULL, g_free,
                              (GDestroyNotify) g_bytes_unref);
  if (!file_mkdir_durable (kv->dir, error))
    goto fail;
  /* A compaction interrupted before its rename left only garbage. */
  tmp = g_strconcat (kv->path, ".tmp", NULL);
  unlink (tmp);

  kv->fd = open (kv->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (kv->fd < 0 || fstat (kv->fd, &st) < 0)
    {
      file_set_io_error (error, errno, "cannot open", kv->path);
      goto fail;
    }
  if (st.st_size > 0)
    {
      contents = g_malloc ((gsize) st.st_size);
      size = (gsize) st.st_size;
      if (!file_pread_all (kv->fd, contents, size, 0, kv->path, error))
        goto fail;
    }
  if (!replay (kv, (const guint8 *) contents, size, &good, &torn_reason, error))
    goto fail;
  if (good < size)
    {
      g_warning ("kv: dropping %" G_GSIZE_FORMAT " bytes of a torn last record at position %"
                 G_GSIZE_FORMAT " of %s (%s); it was never acknowledged",
                 size - good, good, kv->path, torn_reason);
      if (ftruncate (kv->fd, (off_t) good) < 0 || fsync (kv->fd) < 0)
        {
          file_set_io_error (error, errno, "cannot truncate", kv->path);
          goto fail;
        }
    }
  kv->file_size = good;
  if (good == 0 && st.st_size == 0 && !file_fsync_dir (kv->dir, error))
    goto fail;
  if (wants_compaction (kv) && !compact (kv, error))
    goto fail;
  return kv;

fail:
  file_kv_close (kv);
  return NULL;
}

GBytes *
file_kv_get (FileKv *kv, const char *key, GError **error)
{
  GBytes *value;

  if (key == NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "kv: NULL key");
      return NULL;
    }
  g_rw_lock_reader_lock (&kv->lock);
  value = g_tree_lookup (kv->tree, key);
  if (value != NULL)
    g_bytes_ref (value);
  g_rw_lock_reader_unlock (&kv->lock);
  return value;
}

gboolean
file_kv_scan (FileKv *kv, const char *prefix, GPtrArray *out, GError **error)
{
  gsize plen;
  GTreeNode *node;

  if (prefix == NULL)
    prefix = "";
  plen = strlen (prefix);
  g_rw_lock_reader_lock (&kv->lock);
  for (node = g_tree_lower_bound (kv->tree, prefix); node != NULL;
       node = g_tree_node_next (node))
    {
      const char *key = g_tree_node_key (node);
      SluiceKvPair *pair;

      if (strncmp (key, prefix, plen) != 0)
        break;
      pair = g_new0 (SluiceKvPair, 1);
      pair->key = g_strdup (key);
      pair->value = g_bytes_ref (g_tree_node_value (node));
      g_ptr_array_add (out, pair);
    }
  g_rw_lock_reader_unlock (&kv->lock);
  return TRUE;
}

gboolean
file_kv_commit (FileKv *kv, const SluiceKvOp *ops, guint n, GError **error)
{
  g_autoptr (GByteArray) rec = NULL;
  gboolean ok = FALSE;

  if (n == 0)
    return TRUE;
  for (guint i = 0; i < n; i++)
    {
      const SluiceKvOp *op = &ops[i];
      if (op->key == NULL || *op->key == '\0' || !g_utf8_validate (op->key, -1, NULL)
          || (op->type != SLUICE_KV_PUT && op->type != SLUICE_KV_DELETE)
          || (op->type == SLUICE_KV_PUT && op->value == NULL))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "kv: operation %u is invalid (key '%s')", i,
                       op->key && g_utf8_validate (op->key, -1, NULL) ? op->key : "?");
          return FALSE;
        }
    }
  rec = record_begin ();
  file_put_be32 (rec->data + KV_HEADER_SIZE, n);
  for (guint i = 0; i < n; i++)
    put_op (rec, ops[i].type, ops[i].key, ops[i].value);
  if (rec->len - KV_HEADER_SIZE > G_MAXUINT32)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE, "kv: commit too large");
      return FALSE;
    }
  frame_record (rec);

  g_mutex_lock (&kv->commit_lock);
  if (kv->broken)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                   "kv: %s failed earlier and needs a restart to recover", kv->path);
      goto out;
    }
  if (!file_write_all (kv->fd, rec->data, rec->len, kv->path, error))
    {
      /* Never leave a torn record in front of later commits. */
      if (ftruncate (kv->fd, (off_t) kv->file_size) < 0)
        kv->broken = TRUE;
      goto out;
    }
  if (fdatasync (kv->fd) < 0)
    {
      /* After a failed fdatasync the page cache state is unknown. */
      file_set_io_error (error, errno, "cannot sync", kv->path);
      kv->broken = TRUE;
      goto out;
    }
  kv->file_size += rec->len;

  g_rw_lock_writer_lock (&kv->lock);
  for (guint i = 0; i < n; i++)
    {
      if (ops[i].type == SLUICE_KV_PUT)
        tree_put (kv, ops[i].key, strlen (ops[i].key), ops[i].value);
      else
        tree_delete (kv, ops[i].key, strlen (ops[i].key));
    }
  g_rw_lock_writer_unlock (&kv->lock);
  ok = TRUE;

  if (wants_compaction (kv))
    {
      g_autoptr (GError) local = NULL;
      /* The commit is durable already; a failed compaction only costs space. */
      if (!compact (kv, &local))
        g_warning ("kv: compaction failed: %s", local->message);
    }

out:
  g_mutex_unlock (&kv->commit_lock);
  return ok;
}
