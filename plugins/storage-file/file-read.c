/* storage-file — reading partition logs: whole batches from one pread per
 * segment window, sliced, CRC-checked, never past the published end.
 * SPDX-License-Identifier: Apache-2.0 */
#include "file-log.h"

/* ---------------------------------------------------------------------- */
/* read */

/* A window of one segment read with a single pread; batches are slices. */
typedef struct {
  FileSegment *seg;
  guint64 end;                /* published size when the read began */
  GBytes *buf;
  guint64 buf_pos;
} Window;

static const guint8 *
window_get (Window *w, guint64 pos, gsize len, guint64 want, GError **error)
{
  gsize have = w->buf ? g_bytes_get_size (w->buf) : 0;
  guint8 *data;
  gsize n;

  if (w->buf != NULL && pos >= w->buf_pos && pos + len <= w->buf_pos + have)
    return (const guint8 *) g_bytes_get_data (w->buf, NULL) + (pos - w->buf_pos);
  n = (gsize) MIN (MAX ((guint64) len, want), w->end - pos);
  data = g_malloc (n);
  if (!file_pread_all (w->seg->fd, data, n, pos, w->seg->log_path, error))
    {
      g_free (data);
      return NULL;
    }
  g_clear_pointer (&w->buf, g_bytes_unref);
  w->buf = g_bytes_new_take (data, n);
  w->buf_pos = pos;
  return data;
}

static void
set_corrupt (GError **error, FilePartition *p, gint64 offset, const char *why)
{
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
               "stream '%s' partition %d: the batch at offset %" G_GINT64_FORMAT
               " is corrupt (%s)", p->stream, p->partition, offset, why);
}

/* Read from one segment. Sets *done when the read is complete (budget
 * reached or a bad batch after good ones). `out` may already hold the
 * caller's batches: the "first batch" rules look only past `first_out`. */
static gboolean
read_segment (FilePartition *p, FileSegment *seg, guint64 pos, guint64 end, gint64 from,
              gsize max_bytes, guint first_out, gsize *total, GPtrArray *out,
              gboolean *done, GError **error)
{
  Window w = { seg, end, NULL, 0 };
  guint64 want = MAX ((guint64) max_bytes, SLUICE_BATCH_HEADER_SIZE);
  gint64 expected = -1;
  gboolean ok = TRUE;

  /* The batch wanted is usually within one index interval of `pos`: one
   * pread then covers the walk and the batches returned. */
  want = want > G_MAXUINT64 - p->options->index_interval ? G_MAXUINT64
                                                          : want + p->options->index_interval;

  /* Walk headers from the index entry to the batch holding `from`. */
  while (pos < end)
    {
      const guint8 *hdr;
      gint64 base, max_ts;
      guint32 len;
      gint32 delta;
      g_autoptr (GError) local = NULL;

      if (pos + SLUICE_BATCH_HEADER_SIZE > end
          || (hdr = window_get (&w, pos, SLUICE_BATCH_HEADER_SIZE, want, &local)) == NULL
          || !file_batch_header (hdr, &base, &len, &delta, &max_ts) || pos + len > end
          || (expected >= 0 && base != expected))
        {
          if (out->len == first_out)
            {
              if (local != NULL)
                g_propagate_error (error, g_steal_pointer (&local));
              else
                set_corrupt (error, p, MAX (from, expected), "bad batch header");
              ok = FALSE;
            }
          *done = TRUE;
          break;
        }
      if (base + delta < from)
        {
          expected = base + delta + 1;
          pos += len;
          continue;
        }

      /* A batch to return. */
      if (out->len > first_out && *total + len > max_bytes)
        {
          *done = TRUE;
          break;
        }
      {
        const guint8 *data = window_get (&w, pos, len, max_bytes - MIN (*total, max_bytes),
                                         &local);
        gint32 count;
        gint64 ts;

        if (data == NULL || !sluice_batch_validate (data, len, &count, &ts, &local)
            || count != delta + 1)
          {
            if (out->len == first_out)
              {
                if (data == NULL)
                  g_propagate_error (error, g_steal_pointer (&local));
                else
                  set_corrupt (error, p, base,
                               local ? local->message : "record count mismatch");
                ok = FALSE;
              }
            *done = TRUE;
            break;
          }
        {
          g_autoptr (GBytes) slice = g_bytes_new_from_bytes (w.buf, pos - w.buf_pos, len);
          g_ptr_array_add (out, sluice_batch_new (base, count, ts, slice));
        }
      }
      *total += len;
      expected = base + delta + 1;
      pos += len;
      if (*total >= max_bytes)
        {
          *done = TRUE;
          break;
        }
    }
  g_clear_pointer (&w.buf, g_bytes_unref);
  return ok;
}

gboolean
file_logs_read (FileLogs *logs, const SluiceLogId *log, gint64 from_offset,
                gsize max_bytes, GPtrArray *out, GError **error)
{
  g_autoptr (FilePartition) p = file_logs_lookup (logs, log, error);
  guint first_out = out->len;
  gint64 cursor = from_offset;
  gsize total = 0;
  gboolean done = FALSE;

  if (p == NULL)
    return FALSE;

  while (!done)
    {
      g_autoptr (FileSegment) seg = NULL;
      guint64 pos, end;
      gint64 seg_next;
      gboolean last;
      guint lo = 0, hi;

      /* Copy what the read needs and let go of the lock before any I/O. */
      g_rw_lock_reader_lock (&p->lock);
      hi = p->segments->len;
      while (lo + 1 < hi)
        {
          guint mid = lo + (hi - lo) / 2;
          if (((FileSegment *) g_ptr_array_index (p->segments, mid))->base <= cursor)
            lo = mid;
          else
            hi = mid;
        }
      seg = file_segment_ref (g_ptr_array_index (p->segments, lo));
      last = lo + 1 == p->segments->len;
      end = seg->size;
      seg_next = seg->next;
      pos = file_segment_lookup (seg, cursor);
      g_rw_lock_reader_unlock (&p->lock);

      if (cursor < seg_next
          && !read_segment (p, seg, pos, end, cursor, max_bytes, first_out, &total, out,
                            &done, error))
        return FALSE;
      if (last)
        break;
      cursor = MAX (cursor, seg_next);
    }
  return TRUE;
}
