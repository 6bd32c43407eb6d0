/* Sluice core — reading records out of a record batch v2.
 *
 * The bytes may come straight from a producer, so every length and varint
 * is checked against the end of its record and of the batch before it is
 * used: a bad batch yields SLUICE_ERROR_INVALID, never a read out of
 * bounds. Integrity (the CRC) is sluice_batch_validate()'s job; the reader
 * only decodes. A compressed batch is decompressed once, within
 * SLUICE_RECORDS_MAX_DECOMPRESSED, and its records are read from that copy.
 * SPDX-License-Identifier: Apache-2.0 */
#include "records-private.h"
#include "record-compress-private.h"
#include "varint.h"

struct _SluiceBatchReader {
  GBytes *bytes;
  GBytes *records;              /* decompressed records, NULL when stored plain */
  const guint8 *pos;
  const guint8 *end;
  gint64 base_offset;
  gint64 base_timestamp;
  gint64 max_timestamp;
  gboolean log_append_time;
  gint32 last_offset_delta;
  gint32 remaining;             /* records still to read, per the header */
  guint index;                  /* of the next record, for messages */
  gint64 prev_offset_delta;
  GArray *headers;              /* of SluiceHeaderView, reused per record */
  GError *error;                /* sticky once set */
};

/* The reader over `data` (which `owner`, when set, keeps alive). */
static SluiceBatchReader *
reader_new (GBytes *owner, const guint8 *data, gsize len, gsize max_decompressed,
            GError **error)
{
  g_autoptr (SluiceBatchReader) reader = NULL;
  guint16 attributes;
  guint codec;
  gint32 count;

  if (!sluice_batch_check_frame (data, len, error))
    return NULL;
  attributes = sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES);
  codec = attributes & SLUICE_BATCH_ATTR_COMPRESSION_MASK;
  count = (gint32) sluice_be32 (data + SLUICE_BATCH_OFF_RECORD_COUNT);
  if (count < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch record count is negative (%" G_GINT32_FORMAT ")",
                   count);
      return NULL;
    }

  reader = g_new0 (SluiceBatchReader, 1);
  if (owner != NULL)
    reader->bytes = g_bytes_ref (owner);
  if (codec != SLUICE_COMPRESSION_NONE)
    {
      gsize rlen;
      const guint8 *rdata;

      reader->records = sluice_records_decompress (codec, data + SLUICE_BATCH_HEADER_SIZE,
                                                   len - SLUICE_BATCH_HEADER_SIZE,
                                                   max_decompressed, error);
      if (reader->records == NULL)
        return NULL;
      rdata = g_bytes_get_data (reader->records, &rlen);
      reader->pos = rdata;
      reader->end = rdata + rlen;
    }
  else
    {
      reader->pos = data + SLUICE_BATCH_HEADER_SIZE;
      reader->end = data + len;
    }
  reader->base_offset = (gint64) sluice_be64 (data + SLUICE_BATCH_OFF_BASE_OFFSET);
  reader->base_timestamp = (gint64) sluice_be64 (data + SLUICE_BATCH_OFF_BASE_TIMESTAMP);
  reader->max_timestamp = (gint64) sluice_be64 (data + SLUICE_BATCH_OFF_MAX_TIMESTAMP);
  reader->log_append_time = (attributes & SLUICE_BATCH_ATTR_LOG_APPEND_TIME) != 0;
  reader->last_offset_delta = (gint32) sluice_be32 (data + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA);
  reader->remaining = count;
  reader->prev_offset_delta = -1;
  reader->headers = g_array_new (FALSE, TRUE, sizeof (SluiceHeaderView));
  return g_steal_pointer (&reader);
}

SluiceBatchReader *
sluice_batch_reader_new (GBytes *batch, GError **error)
{
  const guint8 *data;
  gsize len;

  g_return_val_if_fail (batch != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  data = g_bytes_get_data (batch, &len);
  return reader_new (batch, data, len, SLUICE_RECORDS_MAX_DECOMPRESSED, error);
}

void
sluice_batch_reader_free (SluiceBatchReader *reader)
{
  if (reader == NULL)
    return;
  g_clear_pointer (&reader->bytes, g_bytes_unref);
  g_clear_pointer (&reader->records, g_bytes_unref);
  g_clear_pointer (&reader->headers, g_array_unref);
  g_clear_error (&reader->error);
  g_free (reader);
}

static gboolean G_GNUC_PRINTF (2, 3)
fail (SluiceBatchReader *reader, const char *format, ...)
{
  va_list args;
  g_autofree char *what = NULL;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  reader->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                               "record %u of the batch: %s", reader->index, what);
  return FALSE;
}

/* A nullable length-prefixed field inside [*p, end): -1 is null, anything
 * else below 0 or past the end is an error. */
static gboolean
read_nullable (const guint8 **p, const guint8 *end, const guint8 **data,
               gsize *len)
{
  gint32 n;

  if (!sluice_varint_get_i32 (p, end, &n))
    return FALSE;
  if (n == -1)
    {
      *data = NULL;
      *len = 0;
      return TRUE;
    }
  if (n < 0 || (gsize) n > (gsize) (end - *p))
    return FALSE;
  *data = *p;
  *len = (gsize) n;
  *p += n;
  return TRUE;
}

static gboolean
read_record (SluiceBatchReader *reader, SluiceRecordView *record)
{
  const guint8 *p = reader->pos;
  const guint8 *rec_end;
  gint32 length, offset_delta, header_count;
  gint64 timestamp_delta;

  if (!sluice_varint_get_i32 (&p, reader->end, &length))
    return fail (reader, "its length is not a valid varint within the batch");
  if (length < 0 || (gsize) length > (gsize) (reader->end - p))
    return fail (reader, "its length %" G_GINT32_FORMAT " runs past the end of "
                 "the batch (%" G_GSIZE_FORMAT " bytes left)",
                 length, (gsize) (reader->end - p));
  rec_end = p + length;

  if (p >= rec_end)
    return fail (reader, "truncated before its attributes");
  p++; /* record attributes: unused by every version so far */

  if (!sluice_varint_get_i64 (&p, rec_end, &timestamp_delta))
    return fail (reader, "bad or truncated timestamp delta");
  if (!sluice_varint_get_i32 (&p, rec_end, &offset_delta))
    return fail (reader, "bad or truncated offset delta");
  if (offset_delta <= reader->prev_offset_delta)
    return fail (reader, "offset delta %" G_GINT32_FORMAT " does not follow "
                 "the previous one (%" G_GINT64_FORMAT ")",
                 offset_delta, reader->prev_offset_delta);
  if (offset_delta > reader->last_offset_delta)
    return fail (reader, "offset delta %" G_GINT32_FORMAT " is past the "
                 "batch's last offset delta %" G_GINT32_FORMAT,
                 offset_delta, reader->last_offset_delta);
  if (__builtin_add_overflow (reader->base_offset, (gint64) offset_delta,
                              &record->offset))
    return fail (reader, "base offset %" G_GINT64_FORMAT " plus offset delta %"
                 G_GINT32_FORMAT " overflows", reader->base_offset, offset_delta);

  if (reader->log_append_time)
    record->timestamp = reader->max_timestamp;
  else if (__builtin_add_overflow (reader->base_timestamp, timestamp_delta,
                                   &record->timestamp))
    return fail (reader, "base timestamp %" G_GINT64_FORMAT " plus delta %"
                 G_GINT64_FORMAT " overflows",
                 reader->base_timestamp, timestamp_delta);

  if (!read_nullable (&p, rec_end, &record->key, &record->key_len))
    return fail (reader, "bad key length or key runs past the record");
  if (!read_nullable (&p, rec_end, &record->value, &record->value_len))
    return fail (reader, "bad value length or value runs past the record");

  if (!sluice_varint_get_i32 (&p, rec_end, &header_count))
    return fail (reader, "bad or truncated header count");
  /* Each header takes at least two bytes, which bounds the allocation by
   * the input size however large the count claims to be. */
  if (header_count < 0 || (gsize) header_count > (gsize) (rec_end - p) / 2)
    return fail (reader, "header count %" G_GINT32_FORMAT " does not fit in "
                 "the %" G_GSIZE_FORMAT " bytes left in the record",
                 header_count, (gsize) (rec_end - p));
  g_array_set_size (reader->headers, (guint) header_count);
  for (gint32 i = 0; i < header_count; i++)
    {
      SluiceHeaderView *h = &g_array_index (reader->headers, SluiceHeaderView, i);

      if (!read_nullable (&p, rec_end, &h->name, &h->name_len) || h->name == NULL)
        return fail (reader, "header %" G_GINT32_FORMAT ": bad or null name", i);
      if (!read_nullable (&p, rec_end, &h->value, &h->value_len))
        return fail (reader, "header %" G_GINT32_FORMAT ": bad value length or "
                     "value runs past the record", i);
    }
  if (p != rec_end)
    return fail (reader, "%" G_GSIZE_FORMAT " unread bytes at its end "
                 "(length %" G_GINT32_FORMAT ")",
                 (gsize) (rec_end - p), length);

  record->n_headers = (guint) header_count;
  record->headers = header_count > 0
                      ? &g_array_index (reader->headers, SluiceHeaderView, 0)
                      : NULL;
  reader->prev_offset_delta = offset_delta;
  reader->pos = rec_end;
  return TRUE;
}

gboolean
sluice_batch_reader_next (SluiceBatchReader *reader, SluiceRecordView *record,
                          GError **error)
{
  SluiceRecordView view = { 0 };

  g_return_val_if_fail (reader != NULL, FALSE);
  g_return_val_if_fail (record != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (reader->error != NULL)
    {
      g_propagate_error (error, g_error_copy (reader->error));
      return FALSE;
    }
  if (reader->remaining == 0)
    {
      if (reader->pos != reader->end)
        {
          reader->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                                       "record batch has %" G_GSIZE_FORMAT
                                       " bytes after its last record (count %u)",
                                       (gsize) (reader->end - reader->pos),
                                       reader->index);
          g_propagate_error (error, g_error_copy (reader->error));
        }
      return FALSE;
    }
  if (reader->pos >= reader->end)
    {
      reader->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                                   "record batch ends after %u records, its "
                                   "header promises %" G_GINT32_FORMAT " more",
                                   reader->index, reader->remaining);
      g_propagate_error (error, g_error_copy (reader->error));
      return FALSE;
    }
  if (!read_record (reader, &view))
    {
      g_propagate_error (error, g_error_copy (reader->error));
      return FALSE;
    }

  *record = view;
  reader->remaining--;
  reader->index++;
  return TRUE;
}

gboolean
sluice_batch_check_records (const guint8 *data, gsize len, gsize max_decompressed,
                            guint *n_records, GError **error)
{
  g_autoptr (SluiceBatchReader) reader = NULL;
  g_autoptr (GError) local = NULL;
  SluiceRecordView record;
  guint n = 0;

  /* The bytes are the caller's and outlive the reader: no owner needed. */
  reader = reader_new (NULL, data, len, max_decompressed, error);
  if (reader == NULL)
    return FALSE;
  while (sluice_batch_reader_next (reader, &record, &local))
    n++;
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (n_records != NULL)
    *n_records = n;
  return TRUE;
}
