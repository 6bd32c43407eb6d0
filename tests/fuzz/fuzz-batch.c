/* libFuzzer target: record batch v2 validation, reading and rebuilding.
 *
 * The input is one batch as a producer could send it. Validation and the
 * reader must never read out of bounds or hit undefined behaviour; every
 * batch the reader accepts must survive a rebuild with the builder and read
 * back to the same records.
 *
 * Build and run: make fuzz && tests/fuzz/fuzz-batch tests/fuzz/corpus/batch
 * SPDX-License-Identifier: Apache-2.0 */
#include "records-private.h"

#include <string.h>

typedef struct {
  const guint8 *key;
  gsize key_len;
  const guint8 *value;
  gsize value_len;
  guint n_headers;
  gint64 timestamp;
} Seen;

static void
read_and_rebuild (GBytes *batch)
{
  g_autoptr (SluiceBatchReader) reader = NULL;
  g_autoptr (SluiceBatchBuilder) builder = NULL;
  g_autoptr (GBytes) rebuilt = NULL;
  g_autoptr (SluiceBatchReader) again = NULL;
  g_autoptr (GArray) seen = g_array_new (FALSE, TRUE, sizeof (Seen));
  g_autoptr (GError) error = NULL;
  SluiceRecordView rec;
  gsize len;
  const guint8 *data = g_bytes_get_data (batch, &len);
  gboolean compressed = len > SLUICE_BATCH_OFF_ATTRIBUTES + 1
                        && (data[SLUICE_BATCH_OFF_ATTRIBUTES + 1]
                            & SLUICE_BATCH_ATTR_COMPRESSION_MASK) != 0;
  guint i = 0;

  reader = sluice_batch_reader_new (batch, &error);
  if (reader == NULL)
    {
      g_assert (error != NULL);
      return;
    }
  builder = sluice_batch_builder_new (0);
  while (sluice_batch_reader_next (reader, &rec, &error))
    {
      Seen s = { rec.key, rec.key_len, rec.value, rec.value_len,
                 rec.n_headers, rec.timestamp };

      /* Views must lie inside the batch (a compressed batch's lie in its
       * decompressed records, which ASan checks on every access below). */
      if (rec.key != NULL && !compressed)
        g_assert (rec.key >= data && rec.key + rec.key_len <= data + len);
      if (rec.value != NULL && !compressed)
        g_assert (rec.value >= data && rec.value + rec.value_len <= data + len);
      sluice_batch_builder_add (builder, rec.key, (gssize) rec.key_len,
                                rec.value, (gssize) rec.value_len, NULL,
                                rec.timestamp);
      for (guint h = 0; h < rec.n_headers; h++)
        {
          g_autofree char *name = g_strndup ((const char *) rec.headers[h].name,
                                             rec.headers[h].name_len);

          /* A name with a NUL cannot go through the builder's C string. */
          if (strlen (name) != rec.headers[h].name_len)
            return;
          sluice_batch_builder_add_header (builder, name, rec.headers[h].value,
                                           (gssize) rec.headers[h].value_len);
        }
      g_array_append_val (seen, s);
    }
  if (error != NULL || seen->len == 0)
    return;

  rebuilt = sluice_batch_builder_finish (g_steal_pointer (&builder));
  g_assert (sluice_batch_validate (g_bytes_get_data (rebuilt, NULL),
                                   g_bytes_get_size (rebuilt), NULL, NULL, NULL));
  again = sluice_batch_reader_new (rebuilt, NULL);
  g_assert (again != NULL);
  while (sluice_batch_reader_next (again, &rec, NULL))
    {
      Seen *s = &g_array_index (seen, Seen, i);

      g_assert (i < seen->len);
      g_assert ((rec.key == NULL) == (s->key == NULL));
      g_assert (rec.key_len == s->key_len);
      g_assert (rec.key_len == 0 || memcmp (rec.key, s->key, rec.key_len) == 0);
      g_assert ((rec.value == NULL) == (s->value == NULL));
      g_assert (rec.value_len == s->value_len);
      g_assert (rec.value_len == 0 || memcmp (rec.value, s->value, rec.value_len) == 0);
      g_assert (rec.n_headers == s->n_headers);
      g_assert (rec.timestamp == s->timestamp);
      i++;
    }
  g_assert (i == seen->len);
}

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (GBytes) batch = g_bytes_new (data, size);
  g_autoptr (GError) error = NULL;
  gint32 count;
  gint64 max_ts;

  /* Random bytes almost never carry a matching CRC: validate a copy with
   * the CRC fixed too, so the checks behind it are reached. */
  if (size >= SLUICE_BATCH_HEADER_SIZE)
    {
      g_autofree guint8 *fixed = g_memdup2 (data, size);
      guint32 crc = sluice_crc32c (0, fixed + SLUICE_BATCH_OFF_ATTRIBUTES,
                                   size - SLUICE_BATCH_OFF_ATTRIBUTES);

      fixed[SLUICE_BATCH_OFF_CRC] = (guint8) (crc >> 24);
      fixed[SLUICE_BATCH_OFF_CRC + 1] = (guint8) (crc >> 16);
      fixed[SLUICE_BATCH_OFF_CRC + 2] = (guint8) (crc >> 8);
      fixed[SLUICE_BATCH_OFF_CRC + 3] = (guint8) crc;
      if (sluice_batch_validate (fixed, size, &count, &max_ts, NULL))
        {
          sluice_batch_stamp (fixed, size, 77, 1700000000000);
          g_assert (sluice_batch_validate (fixed, size, NULL, &max_ts, NULL));
          g_assert (max_ts == 1700000000000);
        }
    }

  if (sluice_batch_validate (data, size, &count, &max_ts, &error))
    {
      /* A valid batch stays valid once the writer stamps it. */
      g_autofree guint8 *copy = g_memdup2 (data, size);

      g_assert (count >= 1);
      sluice_batch_stamp (copy, size, 77, 1700000000000);
      g_assert (sluice_batch_validate (copy, size, NULL, &max_ts, NULL));
      g_assert (max_ts == 1700000000000);
    }
  else
    {
      g_assert (error != NULL);
    }

  /* The reader must cope with what validation would refuse (a wrong CRC
   * does not protect it). */
  read_and_rebuild (batch);
  return 0;
}
