/* Sluice core — building uncompressed record batches v2.
 *
 * Non-Kafka transports turn each message into one record (key = partition
 * key, headers = properties) with this builder; the result is exactly what
 * a Kafka producer without idempotence would send, so Kafka consumers read
 * it unchanged.
 *
 * A record's length prefix comes before its headers, and headers can still
 * be added to the last record (sluice_batch_builder_add_header), so the last
 * record is kept open in `pending` / `pending_headers` and serialised when
 * the next one is added or the batch is finished.
 * SPDX-License-Identifier: Apache-2.0 */
#include "records-private.h"
#include "varint.h"

#include <string.h>

struct _SluiceBatchBuilder {
  gint64 base_timestamp;
  gint64 max_timestamp;
  guint count;
  GByteArray *records;          /* serialised, closed records */
  gboolean have_pending;
  GByteArray *pending;          /* attributes .. value of the open record */
  GByteArray *pending_headers;  /* its headers, without the count */
  gint32 pending_header_count;
};

SluiceBatchBuilder *
sluice_batch_builder_new (gint64 base_timestamp_ms)
{
  SluiceBatchBuilder *builder = g_new0 (SluiceBatchBuilder, 1);

  builder->base_timestamp = base_timestamp_ms;
  builder->max_timestamp = base_timestamp_ms;
  builder->records = g_byte_array_new ();
  builder->pending = g_byte_array_new ();
  builder->pending_headers = g_byte_array_new ();
  return builder;
}

void
sluice_batch_builder_free (SluiceBatchBuilder *builder)
{
  if (builder == NULL)
    return;
  g_byte_array_unref (builder->records);
  g_byte_array_unref (builder->pending);
  g_byte_array_unref (builder->pending_headers);
  g_free (builder);
}

/* A length-prefixed field: -1 for NULL, as Kafka writes a null key, value or
 * header value. */
static void
put_nullable (GByteArray *out, const guint8 *data, gsize len)
{
  if (data == NULL)
    {
      sluice_varint_put_i32 (out, -1);
      return;
    }
  sluice_varint_put_i32 (out, (gint32) len);
  if (len > 0)
    g_byte_array_append (out, data, (guint) len);
}

static void
close_pending (SluiceBatchBuilder *builder)
{
  gsize body_len;

  if (!builder->have_pending)
    return;

  sluice_varint_put_i32 (builder->pending, builder->pending_header_count);
  g_byte_array_append (builder->pending, builder->pending_headers->data,
                       builder->pending_headers->len);
  body_len = builder->pending->len;
  sluice_varint_put_i32 (builder->records, (gint32) body_len);
  g_byte_array_append (builder->records, builder->pending->data, (guint) body_len);

  g_byte_array_set_size (builder->pending, 0);
  g_byte_array_set_size (builder->pending_headers, 0);
  builder->pending_header_count = 0;
  builder->have_pending = FALSE;
}

/* Lengths are gssize as in GLib: negative means NUL-terminated. Kafka
 * lengths are int32, and a batch must stay below 2 GiB as a whole. */
static gboolean
resolve_len (const guint8 *data, gssize len, gsize *out)
{
  gsize n;

  if (data == NULL)
    n = 0;
  else if (len < 0)
    n = strlen ((const char *) data);
  else
    n = (gsize) len;
  if (n > G_MAXINT32 / 2)
    return FALSE;
  *out = n;
  return TRUE;
}

void
sluice_batch_builder_add (SluiceBatchBuilder *builder,
                          const guint8 *key, gssize key_len,
                          const guint8 *value, gssize value_len,
                          const char *const *headers,
                          gint64 timestamp_ms)
{
  gsize klen, vlen;

  g_return_if_fail (builder != NULL);
  g_return_if_fail (builder->count < G_MAXINT32);
  if (!resolve_len (key, key_len, &klen) || !resolve_len (value, value_len, &vlen))
    {
      g_critical ("%s: key or value larger than 1 GiB", G_STRFUNC);
      return;
    }

  close_pending (builder);

  if (builder->count == 0 || timestamp_ms > builder->max_timestamp)
    builder->max_timestamp = timestamp_ms;

  g_byte_array_append (builder->pending, (const guint8 *) "\0", 1); /* attributes */
  /* Wrapping subtraction: the delta is stored as a varlong and read back by
   * adding it to the base, which wraps the same way. */
  sluice_varint_put_i64 (builder->pending,
                         (gint64) ((guint64) timestamp_ms - (guint64) builder->base_timestamp));
  sluice_varint_put_i32 (builder->pending, (gint32) builder->count);
  put_nullable (builder->pending, key, klen);
  put_nullable (builder->pending, value, vlen);
  builder->have_pending = TRUE;
  builder->count++;

  if (headers == NULL)
    return;
  for (gsize i = 0; headers[i] != NULL; i += 2)
    {
      if (headers[i + 1] == NULL)
        {
          g_critical ("%s: header '%s' has no value; headers must come in "
                      "name, value pairs", G_STRFUNC, headers[i]);
          break;
        }
      sluice_batch_builder_add_header (builder, headers[i],
                                       (const guint8 *) headers[i + 1], -1);
    }
}

void
sluice_batch_builder_add_header (SluiceBatchBuilder *builder,
                                 const char *name,
                                 const guint8 *value, gssize value_len)
{
  gsize nlen, vlen;

  g_return_if_fail (builder != NULL);
  g_return_if_fail (builder->have_pending);
  g_return_if_fail (name != NULL);
  g_return_if_fail (builder->pending_header_count < G_MAXINT32);
  if (!resolve_len ((const guint8 *) name, -1, &nlen)
      || !resolve_len (value, value_len, &vlen))
    {
      g_critical ("%s: header name or value larger than 1 GiB", G_STRFUNC);
      return;
    }

  /* Header names are never null in Kafka, values may be. */
  put_nullable (builder->pending_headers, (const guint8 *) name, nlen);
  put_nullable (builder->pending_headers, value, vlen);
  builder->pending_header_count++;
}

guint
sluice_batch_builder_count (SluiceBatchBuilder *builder)
{
  g_return_val_if_fail (builder != NULL, 0);
  return builder->count;
}

GBytes *
sluice_batch_builder_finish (SluiceBatchBuilder *builder)
{
  guint8 header[SLUICE_BATCH_HEADER_SIZE];
  GByteArray *out;
  gsize total;

  g_return_val_if_fail (builder != NULL, NULL);

  close_pending (builder);
  total = SLUICE_BATCH_HEADER_SIZE + (gsize) builder->records->len;
  if (total - 12 > G_MAXINT32)
    {
      g_critical ("%s: batch of %" G_GSIZE_FORMAT " bytes exceeds the 2 GiB "
                  "that Kafka's int32 length allows", G_STRFUNC, total);
      sluice_batch_builder_free (builder);
      return NULL;
    }

  sluice_put_be64 (header + SLUICE_BATCH_OFF_BASE_OFFSET, 0);
  sluice_put_be32 (header + SLUICE_BATCH_OFF_LENGTH, (guint32) (total - 12));
  sluice_put_be32 (header + SLUICE_BATCH_OFF_LEADER_EPOCH, (guint32) -1);
  header[SLUICE_BATCH_OFF_MAGIC] = 2;
  sluice_put_be32 (header + SLUICE_BATCH_OFF_CRC, 0);
  sluice_put_be16 (header + SLUICE_BATCH_OFF_ATTRIBUTES, 0);
  sluice_put_be32 (header + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA,
                   (guint32) ((gint32) builder->count - 1));
  sluice_put_be64 (header + SLUICE_BATCH_OFF_BASE_TIMESTAMP,
                   (guint64) builder->base_timestamp);
  sluice_put_be64 (header + SLUICE_BATCH_OFF_MAX_TIMESTAMP,
                   (guint64) builder->max_timestamp);
  sluice_put_be64 (header + SLUICE_BATCH_OFF_PRODUCER_ID, (guint64) -1);
  sluice_put_be16 (header + SLUICE_BATCH_OFF_PRODUCER_EPOCH, (guint16) -1);
  sluice_put_be32 (header + SLUICE_BATCH_OFF_BASE_SEQUENCE, (guint32) -1);
  sluice_put_be32 (header + SLUICE_BATCH_OFF_RECORD_COUNT, builder->count);

  out = g_byte_array_sized_new ((guint) total);
  g_byte_array_append (out, header, sizeof header);
  g_byte_array_append (out, builder->records->data, builder->records->len);
  sluice_put_be32 (out->data + SLUICE_BATCH_OFF_CRC,
                   sluice_crc32c (0, out->data + SLUICE_BATCH_OFF_ATTRIBUTES,
                                  out->len - SLUICE_BATCH_OFF_ATTRIBUTES));

  sluice_batch_builder_free (builder);
  return g_byte_array_free_to_bytes (out);
}
