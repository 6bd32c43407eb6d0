/* storage-file — one log segment: creation, index, and recovery at open.
 * SPDX-License-Identifier: Apache-2.0 */
#include "file-log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An index entry as stored (with the timestamp the memory copy drops). */
typedef struct {
  guint32 rel;
  guint32 pos;
  gint64 max_ts;
} DiskEntry;

FileSegment *
file_segment_ref (FileSegment *seg)
{
  g_atomic_ref_count_inc (&seg->ref);
  return seg;
}

void
file_segment_unref (FileSegment *seg)
{
  if (seg == NULL || !g_atomic_ref_count_dec (&seg->ref))
    return;
  if (seg->fd >= 0)
    close (seg->fd);
  if (seg->index_fd >= 0)
    close (seg->index_fd);
  g_array_unref (seg->index);
  g_free (seg->log_path);
  g_free (seg->index_path);
  g_free (seg);
}

char *
file_segment_name (gint64 base, const char *suffix)
{
  return g_strdup_printf ("%020" G_GINT64_FORMAT "%s", base, suffix);
}

static FileSegment *
segment_new (const char *dir, gint64 base)
{
  FileSegment *seg = g_new0 (FileSegment, 1);
  g_autofree char *log_name = file_segment_name (base, ".log");
  g_autofree char *index_name = file_segment_name (base, ".index");

  g_atomic_ref_count_init (&seg->ref);
  seg->base = base;
  seg->log_path = g_build_filename (dir, log_name, NULL);
  seg->index_path = g_build_filename (dir, index_name, NULL);
  seg->fd = -1;
  seg->index_fd = -1;
  seg->next = base;
  seg->max_ts = G_MININT64;
  seg->index = g_array_new (FALSE, FALSE, sizeof (FileIndexEntry));
  return seg;
}

FileSegment *
file_segment_create (const char *dir, gint64 base, GError **error)
{
  g_autoptr (FileSegment) seg = segment_new (dir, base);

  seg->fd = open (seg->log_path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (seg->fd < 0)
    {
      file_set_io_error (error, errno, "cannot create segment", seg->log_path);
      return NULL;
    }
  seg->index_fd = open (seg->index_path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0640);
  if (seg->index_fd < 0)
    {
      file_set_io_error (error, errno, "cannot create index", seg->index_path);
      unlink (seg->log_path);
      return NULL;
    }
  return g_steal_pointer (&seg);
}

gboolean
file_batch_header (const guint8 *hdr, gint64 *base, guint32 *len, gint32 *last_delta,
                   gint64 *max_ts)
{
  gint32 length = (gint32) file_get_be32 (hdr + SLUICE_BATCH_OFF_LENGTH);
  gint32 delta = (gint32) file_get_be32 (hdr + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA);

  if (hdr[SLUICE_BATCH_OFF_MAGIC] != 2)
    return FALSE;
  if (length < SLUICE_BATCH_HEADER_SIZE - SLUICE_BATCH_OFF_LEADER_EPOCH)
    return FALSE;
  if (delta < 0)
    return FALSE;
  *base = (gint64) file_get_be64 (hdr + SLUICE_BATCH_OFF_BASE_OFFSET);
  *len = (guint32) length + SLUICE_BATCH_OFF_LEADER_EPOCH;
  *last_delta = delta;
  *max_ts = (gint64) file_get_be64 (hdr + SLUICE_BATCH_OFF_MAX_TIMESTAMP);
  return *base >= 0;
}

guint64
file_segment_lookup (FileSegment *seg, gint64 offset)
{
  const FileIndexEntry *e = (const FileIndexEntry *) seg->index->data;
  guint lo = 0, hi = seg->index->len;

  if (offset <= seg->base)
    return 0;
  /* Last entry with base + rel <= offset. */
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      if (seg->base + (gint64) e[mid].rel <= offset)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo == 0 ? 0 : e[lo - 1].pos;
}

/* Read the index file; FALSE (and a reason) when it cannot be trusted. */
static gboolean
load_index (FileSegment *seg, guint64 file_size, GArray *entries, gboolean *changed,
            char **reason)
{
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (seg->index_path, &contents, &len, &local))
    {
      /* An index is only missing when someone removed it: a segment with
       * data always has one. */
      *changed = TRUE;
      if (file_size == 0)
        return TRUE;
      *reason = g_strdup (local->message);
      return FALSE;
    }
  if (len % FILE_INDEX_ENTRY_SIZE != 0)
    {
      /* A torn entry at the end: the complete ones before it still count. */
      len -= len % FILE_INDEX_ENTRY_SIZE;
      *changed = TRUE;
    }
  for (gsize i = 0; i < len; i += FILE_INDEX_ENTRY_SIZE)
    {
      const guint8 *p = (const guint8 *) contents + i;
      DiskEntry e = { file_get_be32 (p), file_get_be32 (p + 4),
                      (gint64) file_get_be64 (p + 8) };

      if (entries->len > 0)
        {
          const DiskEntry *prev = &g_array_index (entries, DiskEntry, entries->len - 1);
          if (e.pos <= prev->pos || e.rel <= prev->rel)
            {
              *reason = g_strdup ("entries out of order");
              return FALSE;
            }
        }
      if (e.pos == 0 || e.pos >= file_size)
        {
          *reason = g_strdup_printf ("entry points past the end of the log (%u)", e.pos);
          return FALSE;
        }
      g_array_append_val (entries, e);
    }
  if (entries->len > 0)
    {
      const DiskEntry *last = &g_array_index (entries, DiskEntry, entries->len - 1);
      guint8 hdr[SLUICE_BATCH_HEADER_SIZE];
      gint64 base, max_ts;
      guint32 blen;
      gint32 delta;

      if (last->pos + (guint64) SLUICE_BATCH_HEADER_SIZE > file_size
          || !file_pread_all (seg->fd, hdr, sizeof hdr, last->pos, seg->log_path, NULL)
          || !file_batch_header (hdr, &base, &blen, &delta, &max_ts)
          || base != seg->base + (gint64) last->rel)
        {
          *reason = g_strdup ("its last entry does not match the log");
          return FALSE;
        }
    }
  return TRUE;
}

static void
write_index (FilePartition *p, FileSegment *seg, GArray *entries)
{
  g_autofree guint8 *buf = g_malloc ((gsize) entries->len * FILE_INDEX_ENTRY_SIZE + 1);
  g_autoptr (GError) local = NULL;

  for (guint i = 0; i < entries->len; i++)
    {
      const DiskEntry *e = &g_array_index (entries, DiskEntry, i);
      guint8 *q = buf + (gsize) i * FILE_INDEX_ENTRY_SIZE;
      file_put_be32 (q, e->rel);
      file_put_be32 (q + 4, e->pos);
      file_put_be64 (q + 8, (guint64) e->max_ts);
    }
  /* The index is rebuilt from the log whenever it is wrong, so it is
   * rewritten in place and never synced. */
  if (!g_file_set_contents_full (seg->index_path, (const char *) buf,
                                 (gssize) entries->len * FILE_INDEX_ENTRY_SIZE,
                                 G_FILE_SET_CONTENTS_NONE, 0640, &local))
    g_message ("stream '%s' partition %d: cannot write index %s: %s (it will be "
               "rebuilt at the next open)", p->stream, p->partition, seg->index_path,
               local->message);
}

/* Does a whole batch starting at offset `next` lie at `pos`? */
static gboolean
followed_by_batch (FileSegment *seg, guint64 pos, guint64 file_size, gint64 next)
{
  guint8 hdr[SLUICE_BATCH_HEADER_SIZE];
  gint64 base, max_ts;
  guint32 len;
  gint32 delta;

  return pos + sizeof hdr <= file_size
         && file_pread_all (seg->fd, hdr, sizeof hdr, pos, seg->log_path, NULL)
         && file_batch_header (hdr, &base, &len, &delta, &max_ts) && base == next
         && pos + len <= file_size;
}

FileSegment *
file_segment_load (FilePartition *p, gint64 base, gboolean newest, GError **error)
{
  g_autoptr (FileSegment) seg = segment_new (p->dir, base);
  g_autoptr (GArray) entries = g_array_new (FALSE, FALSE, sizeof (DiskEntry));
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  g_autofree char *reason = NULL;
  g_autofree char *stop_reason = NULL;
  gboolean changed = FALSE;
  guint64 interval = p->options->index_interval;
  guint64 file_size, pos = 0;
  gint64 expected = base, max_ts = G_MININT64;
  struct stat st;

  seg->fd = open (seg->log_path, (newest ? O_RDWR | O_APPEND : O_RDONLY) | O_CLOEXEC);
  if (seg->fd < 0 || fstat (seg->fd, &st) < 0)
    {
      file_set_io_error (error, errno, "cannot open segment", seg->log_path);
      return NULL;
    }
  file_size = (guint64) st.st_size;
  if (file_size > G_MAXUINT32)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                   "segment %s is larger than 4 GiB, which this plugin never writes",
                   seg->log_path);
      return NULL;
    }

  if (!load_index (seg, file_size, entries, &changed, &reason))
    {
      g_message ("stream '%s' partition %d: rebuilding index %s from the log (%s)",
                 p->stream, p->partition, seg->index_path, reason);
      g_array_set_size (entries, 0);
      changed = TRUE;
    }
  if (entries->len > 0)
    {
      const DiskEntry *last = &g_array_index (entries, DiskEntry, entries->len - 1);
      pos = last->pos;
      expected = base + last->rel;
      max_ts = last->max_ts;
    }
  seg->last_entry_pos = pos;

  /* Walk the batches after the last entry: the newest segment is checked in
   * full (its tail may be a write that was never acknowledged); an older one
   * only for its newest timestamp (its corruption is found on read). */
  while (pos < file_size)
    {
      guint8 hdr[SLUICE_BATCH_HEADER_SIZE];
      gint64 bbase, bmax_ts;
      guint32 blen;
      gint32 delta;
      g_autoptr (GError) local = NULL;

      if (pos + sizeof hdr > file_size)
        {
          stop_reason = g_strdup ("partial batch header");
          break;
        }
      if (!file_pread_all (seg->fd, hdr, sizeof hdr, pos, seg->log_path, error))
        return NULL;
      if (!file_batch_header (hdr, &bbase, &blen, &delta, &bmax_ts))
        {
          stop_reason = g_strdup ("not a batch header");
          break;
        }
      if (bbase != expected)
        {
          stop_reason = g_strdup_printf ("batch offset %" G_GINT64_FORMAT
                                         " out of sequence", bbase);
          break;
        }
      if (pos + blen > file_size)
        {
          stop_reason = g_strdup_printf ("partial batch (%" G_GUINT64_FORMAT " of %u bytes)",
                                         file_size - pos, blen);
          break;
        }
      if (newest)
        {
          gint32 count;

          g_byte_array_set_size (buf, blen);
          if (!file_pread_all (seg->fd, buf->data, blen, pos, seg->log_path, error))
            return NULL;
          if (!sluice_batch_validate (buf->data, blen, &count, NULL, &local))
            {
              /* Damage with more of the log after it is not a torn write:
               * those batches were acknowledged. Keep it; reads at it
               * report it. */
              if (!followed_by_batch (seg, pos + blen, file_size, bbase + delta + 1))
                {
                  stop_reason = g_strdup (local->message);
                  break;
                }
              g_warning ("stream '%s' partition %d: the batch at offset %" G_GINT64_FORMAT
                         " in %s is corrupt (%s); it is kept and reads at it report it",
                         p->stream, p->partition, bbase, seg->log_path, local->message);
            }
        }
      if (pos > 0 && pos - seg->last_entry_pos >= interval)
        {
          DiskEntry e = { (guint32) (bbase - base), (guint32) pos, max_ts };
          g_array_append_val (entries, e);
          seg->last_entry_pos = pos;
          changed = TRUE;
        }
      max_ts = MAX (max_ts, bmax_ts);
      expected = bbase + delta + 1;
      pos += blen;
    }

  if (pos < file_size && newest)
    {
      g_warning ("stream '%s' partition %d: dropping %" G_GUINT64_FORMAT " bytes of a torn "
                 "or corrupt tail at offset %" G_GINT64_FORMAT " of %s (%s); the log now "
                 "ends at offset %" G_GINT64_FORMAT, p->stream, p->partition,
                 file_size - pos, expected, seg->log_path, stop_reason, expected);
      if (ftruncate (seg->fd, (off_t) pos) < 0 || fsync (seg->fd) < 0)
        {
          file_set_io_error (error, errno, "cannot truncate", seg->log_path);
          return NULL;
        }
      while (entries->len > 0
             && g_array_index (entries, DiskEntry, entries->len - 1).pos >= pos)
        {
          g_array_set_size (entries, entries->len - 1);
          changed = TRUE;
        }
      if (entries->len > 0)
        seg->last_entry_pos = g_array_index (entries, DiskEntry, entries->len - 1).pos;
      else
        seg->last_entry_pos = 0;
      file_size = pos;
    }
  else if (pos < file_size)
    {
      g_warning ("stream '%s' partition %d: segment %s is damaged at position %"
                 G_GUINT64_FORMAT " (%s); reads from offset %" G_GINT64_FORMAT
                 " on will report it", p->stream, p->partition, seg->log_path, pos,
                 stop_reason, expected);
    }

  if (changed)
    write_index (p, seg, entries);
  if (newest)
    {
      seg->index_fd = open (seg->index_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
      if (seg->index_fd < 0)
        {
          file_set_io_error (error, errno, "cannot open index", seg->index_path);
          return NULL;
        }
    }

  for (guint i = 0; i < entries->len; i++)
    {
      const DiskEntry *e = &g_array_index (entries, DiskEntry, i);
      FileIndexEntry m = { e->rel, e->pos };
      g_array_append_val (seg->index, m);
    }
  seg->size = file_size;
  seg->next = expected;
  seg->max_ts = max_ts;
  return g_steal_pointer (&seg);
}
