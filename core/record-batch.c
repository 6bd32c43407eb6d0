/* Sluice core — record batch v2: metadata, validation and stamping.
 *
 * Batches arrive from producers (Kafka Produce passes them through) and are
 * stored as they came, so validation is the one place that decides whether
 * untrusted bytes may reach a partition log. It checks the structure that
 * the writer and the storage rely on (sizes, magic, CRC, offset range); the
 * records themselves are checked by the reader, which never trusts them.
 * SPDX-License-Identifier: Apache-2.0 */
#include "records-private.h"
#include "record-compress-private.h"

#include <string.h>
#include "varint.h"

/* The smallest record: length, attributes, timestamp delta, offset delta,
 * key length, value length and header count, one byte each. */
#define MIN_RECORD_SIZE 7

SluiceBatch *
sluice_batch_new (gint64 base_offset, gint32 record_count, gint64 max_timestamp,
                  GBytes *data)
{
  SluiceBatch *batch;

  g_return_val_if_fail (data != NULL, NULL);

  batch = g_new0 (SluiceBatch, 1);
  batch->base_offset = base_offset;
  batch->record_count = record_count;
  batch->max_timestamp = max_timestamp;
  batch->data = g_bytes_ref (data);
  return batch;
}

void
sluice_batch_free (SluiceBatch *batch)
{
  if (batch == NULL)
    return;
  g_clear_pointer (&batch->data, g_bytes_unref);
  g_free (batch);
}

/* Below this size summing the batch again is cheaper than the shift. */
#define STAMP_INCREMENTAL_MIN 4096

static guint32
batch_crc (const guint8 *data, gsize len)
{
  return sluice_crc32c (0, data + SLUICE_BATCH_OFF_ATTRIBUTES,
                        len - SLUICE_BATCH_OFF_ATTRIBUTES);
}

/* The checks every reader of a batch needs before touching its fields:
 * the header is there, magic 2, the length field matches, the codec
 * exists. Shared by sluice_batch_validate() and the batch reader. */
gboolean
sluice_batch_check_frame (const guint8 *data, gsize len, GError **error)
{
  guint32 length;
  guint16 attributes;
  guint codec;

  /* The magic byte sits at the same place in every message format, so a
   * legacy v0 / v1 message set is named as such rather than as garbage. */
  if (len <= SLUICE_BATCH_OFF_MAGIC)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch truncated: %" G_GSIZE_FORMAT " bytes, "
                   "a v2 batch header alone is %d",
                   len, SLUICE_BATCH_HEADER_SIZE);
      return FALSE;
    }
  if (data[SLUICE_BATCH_OFF_MAGIC] != 2)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch magic is %d; only record batch v2 (magic 2, "
                   "Kafka 0.11 and later) is supported",
                   (gint8) data[SLUICE_BATCH_OFF_MAGIC]);
      return FALSE;
    }
  if (len < SLUICE_BATCH_HEADER_SIZE)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch truncated: %" G_GSIZE_FORMAT " bytes, "
                   "a v2 batch header alone is %d",
                   len, SLUICE_BATCH_HEADER_SIZE);
      return FALSE;
    }

  /* The length field counts the bytes after itself. */
  length = sluice_be32 (data + SLUICE_BATCH_OFF_LENGTH);
  if ((guint64) length + 12 > len)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch truncated: its length field says %" G_GUINT32_FORMAT
                   " bytes follow it, only %" G_GSIZE_FORMAT " do",
                   length, len - 12);
      return FALSE;
    }
  if ((guint64) length + 12 < len)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch length field says %" G_GUINT32_FORMAT
                   " bytes follow it, but %" G_GSIZE_FORMAT " do",
                   length, len - 12);
      return FALSE;
    }

  attributes = sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES);
  codec = attributes & SLUICE_BATCH_ATTR_COMPRESSION_MASK;
  if (codec > SLUICE_COMPRESSION_ZSTD)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch uses compression codec %u, which does not exist "
                   "(0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)",
                   codec);
      return FALSE;
    }
  return TRUE;
}

gboolean
sluice_batch_validate (const guint8 *data, gsize len, gint32 *record_count,
                       gint64 *max_timestamp, GError **error)
{
  guint32 stored_crc, crc;
  guint codec;
  gint32 last_offset_delta, count;
  gsize records_len;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!sluice_batch_check_frame (data, len, error))
    return FALSE;
  codec = sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES) & SLUICE_BATCH_ATTR_COMPRESSION_MASK;
  stored_crc = sluice_be32 (data + SLUICE_BATCH_OFF_CRC);
  crc = batch_crc (data, len);
  if (stored_crc != crc)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
                   "record batch CRC-32C mismatch: stored 0x%08" G_GINT32_MODIFIER
                   "x, computed 0x%08" G_GINT32_MODIFIER "x",
                   stored_crc, crc);
      return FALSE;
    }

  count = (gint32) sluice_be32 (data + SLUICE_BATCH_OFF_RECORD_COUNT);
  last_offset_delta = (gint32) sluice_be32 (data + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA);
  if (count < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch record count is negative (%" G_GINT32_FORMAT ")",
                   count);
      return FALSE;
    }
  /* The batch occupies offsets base .. base + last offset delta, so the
   * delta must name at least one offset. Fewer records than offsets is what
   * Kafka's compaction leaves behind; more records than offsets is never
   * valid. */
  if (last_offset_delta < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch last offset delta is negative (%" G_GINT32_FORMAT ")",
                   last_offset_delta);
      return FALSE;
    }
  /* The offset span is reported as a gint32 record count. */
  if (last_offset_delta == G_MAXINT32)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch last offset delta %" G_GINT32_FORMAT " spans more "
                   "offsets than a batch may hold",
                   last_offset_delta);
      return FALSE;
    }
  if ((gint64) count > (gint64) last_offset_delta + 1)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch holds %" G_GINT32_FORMAT " records but its last "
                   "offset delta %" G_GINT32_FORMAT " only leaves room for %" G_GINT64_FORMAT,
                   count, last_offset_delta, (gint64) last_offset_delta + 1);
      return FALSE;
    }
  /* A compressed payload is checked now, decompressed within a bound, so
   * a batch that cannot be read back (or would expand without limit) never
   * reaches a log; producers compress rarely enough for this to pay. */
  if (codec != SLUICE_COMPRESSION_NONE)
    {
      guint n = 0;

      if (!sluice_batch_check_records (data, len, SLUICE_RECORDS_MAX_DECOMPRESSED, &n, error))
        return FALSE;
    }
  records_len = len - SLUICE_BATCH_HEADER_SIZE;
  if (codec == SLUICE_COMPRESSION_NONE
      && (guint64) count * MIN_RECORD_SIZE > records_len)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "record batch claims %" G_GINT32_FORMAT " records in %" G_GSIZE_FORMAT
                   " bytes; a record takes at least %d",
                   count, records_len, MIN_RECORD_SIZE);
      return FALSE;
    }

  if (record_count != NULL)
    *record_count = last_offset_delta + 1;
  if (max_timestamp != NULL)
    *max_timestamp = (gint64) sluice_be64 (data + SLUICE_BATCH_OFF_MAX_TIMESTAMP);
  return TRUE;
}

void
sluice_batch_stamp (guint8 *data, gsize len, gint64 base_offset,
                    gint64 append_time_ms)
{
  guint16 attributes;

  g_return_if_fail (data != NULL);
  g_return_if_fail (len >= SLUICE_BATCH_HEADER_SIZE);

  /* The base offset lies outside the CRC; the attributes and the max
   * timestamp lie inside it. A small batch is simply summed again. For a
   * large one, only the changed span is: CRC-32C is linear, so the old CRC
   * (valid: callers validate first) is corrected by the CRC of the changed
   * bits moved past the rest of the batch in O(log n), and a 1 MiB batch is
   * not read a second time. */
  sluice_put_be64 (data + SLUICE_BATCH_OFF_BASE_OFFSET, (guint64) base_offset);
  if (len < STAMP_INCREMENTAL_MIN)
    {
      attributes = sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES);
      sluice_put_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES,
                       attributes | SLUICE_BATCH_ATTR_LOG_APPEND_TIME);
      sluice_put_be64 (data + SLUICE_BATCH_OFF_MAX_TIMESTAMP, (guint64) append_time_ms);
      sluice_put_be32 (data + SLUICE_BATCH_OFF_CRC, batch_crc (data, len));
      return;
    }
  {
    enum { SPAN = SLUICE_BATCH_OFF_MAX_TIMESTAMP + 8 - SLUICE_BATCH_OFF_ATTRIBUTES };
    guint8 before[SPAN], diff[SPAN];
    static const guint8 zeros[SPAN];
    guint32 crc = sluice_be32 (data + SLUICE_BATCH_OFF_CRC);

    memcpy (before, data + SLUICE_BATCH_OFF_ATTRIBUTES, SPAN);
    attributes = sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES);
    sluice_put_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES,
                     attributes | SLUICE_BATCH_ATTR_LOG_APPEND_TIME);
    sluice_put_be64 (data + SLUICE_BATCH_OFF_MAX_TIMESTAMP, (guint64) append_time_ms);
    for (guint i = 0; i < SPAN; i++)
      diff[i] = before[i] ^ data[SLUICE_BATCH_OFF_ATTRIBUTES + i];
    crc ^= sluice_crc32c_shift (sluice_crc32c (0, diff, SPAN) ^ sluice_crc32c (0, zeros, SPAN),
                                len - SLUICE_BATCH_OFF_ATTRIBUTES - SPAN);
    sluice_put_be32 (data + SLUICE_BATCH_OFF_CRC, crc);
  }
}
