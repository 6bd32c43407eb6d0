/* Unit tests: CRC-32C, murmur2, varints, record batch build / read /
 * validate / stamp.
 * SPDX-License-Identifier: Apache-2.0 */
#include "records-private.h"
#include "record-compress-private.h"
#include "varint.h"

#include <string.h>

/* ---------- helpers ---------- */

/* A batch header around hand-written record bytes, with a correct length
 * and CRC, so that the reader's own checks are what a test exercises. */
static GBytes *
make_batch (const guint8 *records, gsize records_len, gint32 count,
            gint32 last_offset_delta, guint16 attributes)
{
  gsize len = SLUICE_BATCH_HEADER_SIZE + records_len;
  guint8 *b = g_malloc0 (len);

  sluice_put_be64 (b + SLUICE_BATCH_OFF_BASE_OFFSET, 100);
  sluice_put_be32 (b + SLUICE_BATCH_OFF_LENGTH, (guint32) (len - 12));
  sluice_put_be32 (b + SLUICE_BATCH_OFF_LEADER_EPOCH, (guint32) -1);
  b[SLUICE_BATCH_OFF_MAGIC] = 2;
  sluice_put_be16 (b + SLUICE_BATCH_OFF_ATTRIBUTES, attributes);
  sluice_put_be32 (b + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA, (guint32) last_offset_delta);
  sluice_put_be64 (b + SLUICE_BATCH_OFF_BASE_TIMESTAMP, 1000);
  sluice_put_be64 (b + SLUICE_BATCH_OFF_MAX_TIMESTAMP, 1000);
  sluice_put_be64 (b + SLUICE_BATCH_OFF_PRODUCER_ID, (guint64) -1);
  sluice_put_be16 (b + SLUICE_BATCH_OFF_PRODUCER_EPOCH, (guint16) -1);
  sluice_put_be32 (b + SLUICE_BATCH_OFF_BASE_SEQUENCE, (guint32) -1);
  sluice_put_be32 (b + SLUICE_BATCH_OFF_RECORD_COUNT, (guint32) count);
  if (records_len > 0)
    memcpy (b + SLUICE_BATCH_HEADER_SIZE, records, records_len);
  sluice_put_be32 (b + SLUICE_BATCH_OFF_CRC,
                   sluice_crc32c (0, b + SLUICE_BATCH_OFF_ATTRIBUTES,
                                  len - SLUICE_BATCH_OFF_ATTRIBUTES));
  return g_bytes_new_take (b, len);
}

static void
fix_crc (guint8 *b, gsize len)
{
  sluice_put_be32 (b + SLUICE_BATCH_OFF_CRC,
                   sluice_crc32c (0, b + SLUICE_BATCH_OFF_ATTRIBUTES,
                                  len - SLUICE_BATCH_OFF_ATTRIBUTES));
}

/* Reads every record; returns the count, or -1 with `error` set. */
static gint
read_all (GBytes *batch, GError **error)
{
  g_autoptr (SluiceBatchReader) reader = sluice_batch_reader_new (batch, error);
  SluiceRecordView rec;
  gint n = 0;

  if (reader == NULL)
    return -1;
  while (sluice_batch_reader_next (reader, &rec, error))
    n++;
  return (error != NULL && *error != NULL) ? -1 : n;
}

static GBytes *
build_simple (guint n)
{
  g_autoptr (SluiceBatchBuilder) builder = sluice_batch_builder_new (5000);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *value = g_strdup_printf ("value-%u", i);
      const char *headers[] = { "h", "x", NULL };

      sluice_batch_builder_add (builder, (const guint8 *) "key", 3,
                                (const guint8 *) value, -1, headers, 5000 + i);
    }
  return sluice_batch_builder_finish (g_steal_pointer (&builder));
}

/* ---------- CRC-32C ---------- */

static void
test_crc32c_known_answers (void)
{
  /* "123456789" is the classic check value; the 32-byte cases are the
   * iSCSI examples of RFC 3720 appendix B.4. */
  guint8 zeros[32] = { 0 }, ones[32], inc[32], dec[32];

  for (guint i = 0; i < 32; i++)
    {
      ones[i] = 0xff;
      inc[i] = (guint8) i;
      dec[i] = (guint8) (31 - i);
    }

  g_assert_cmphex (sluice_crc32c (0, "123456789", 9), ==, 0xE3069283);
  g_assert_cmphex (sluice_crc32c_table (0, "123456789", 9), ==, 0xE3069283);
  g_assert_cmphex (sluice_crc32c (0, "", 0), ==, 0);
  g_assert_cmphex (sluice_crc32c (0, zeros, 32), ==, 0x8A9136AA);
  g_assert_cmphex (sluice_crc32c (0, ones, 32), ==, 0x62A8AB43);
  g_assert_cmphex (sluice_crc32c (0, inc, 32), ==, 0x46DD794E);
  g_assert_cmphex (sluice_crc32c (0, dec, 32), ==, 0x113FDB5C);
  g_assert_cmphex (sluice_crc32c_table (0, zeros, 32), ==, 0x8A9136AA);
  g_assert_cmphex (sluice_crc32c_table (0, ones, 32), ==, 0x62A8AB43);
  g_assert_cmphex (sluice_crc32c_table (0, inc, 32), ==, 0x46DD794E);
  g_assert_cmphex (sluice_crc32c_table (0, dec, 32), ==, 0x113FDB5C);
}

static void
test_crc32c_hw_vs_table (void)
{
  g_autofree guint8 *buf = g_malloc (4096 + 16);

  if (sluice_crc32c_have_hw ())
    g_test_message ("sluice_crc32c() uses the SSE4.2 crc32 instruction");
  else
    g_test_message ("no SSE4.2 here: sluice_crc32c() uses the table too");

  for (gsize i = 0; i < 4096 + 16; i++)
    buf[i] = (guint8) g_test_rand_int ();

  /* Every small length and alignment (head, 8-byte body and tail loops),
   * then random ones. */
  for (gsize off = 0; off < 16; off++)
    for (gsize len = 0; len < 80; len++)
      g_assert_cmphex (sluice_crc32c (0, buf + off, len), ==,
                       sluice_crc32c_table (0, buf + off, len));
  for (guint round = 0; round < 500; round++)
    {
      gsize off = g_test_rand_int_range (0, 16);
      gsize len = g_test_rand_int_range (0, 4096);
      guint32 seed = g_test_rand_int ();

      g_assert_cmphex (sluice_crc32c (seed, buf + off, len), ==,
                       sluice_crc32c_table (seed, buf + off, len));
    }
}

static void
test_crc32c_chaining (void)
{
  guint8 buf[1000];
  guint32 whole;

  for (gsize i = 0; i < sizeof buf; i++)
    buf[i] = (guint8) (i * 7 + 3);
  whole = sluice_crc32c (0, buf, sizeof buf);
  for (gsize cut = 0; cut <= sizeof buf; cut += 37)
    {
      guint32 c = sluice_crc32c (0, buf, cut);

      g_assert_cmphex (sluice_crc32c (c, buf + cut, sizeof buf - cut), ==, whole);
      c = sluice_crc32c_table (0, buf, cut);
      g_assert_cmphex (sluice_crc32c_table (c, buf + cut, sizeof buf - cut), ==, whole);
    }
}

/* ---------- murmur2 ---------- */

static void
test_murmur2_kafka (void)
{
  /* org.apache.kafka.common.utils.UtilsTest.testMurmur2 */
  static const struct {
    const char *key;
    gint32 hash;
  } cases[] = {
    { "21", -973932308 },
    { "foobar", -790332482 },
    { "a-little-bit-long-string", -985981536 },
    { "a-little-bit-longer-string", -1486304829 },
    { "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971 },
    { "abc", 479470107 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (sluice_murmur2 (cases[i].key, strlen (cases[i].key)), ==,
                     cases[i].hash);
}

static void
test_murmur2_partition (void)
{
  /* (-790332482 & 0x7fffffff) % 50 = 1357151166 % 50 = 16 */
  g_assert_cmpint (sluice_partition_for_key ("foobar", 6, 50), ==, 16);
  /* (479470107 & 0x7fffffff) % 7 = 479470107 % 7 = 3 */
  g_assert_cmpint (sluice_partition_for_key ("abc", 3, 7), ==, 479470107 % 7);
  g_assert_cmpint (sluice_partition_for_key ("abc", 3, 1), ==, 0);
  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *key = g_strdup_printf ("device-%u", i);
      gint32 p = sluice_partition_for_key (key, strlen (key), 12);
      guint32 expect = ((guint32) sluice_murmur2 (key, strlen (key)) & 0x7fffffff) % 12;

      g_assert_cmpint (p, >=, 0);
      g_assert_cmpint (p, <, 12);
      g_assert_cmpint (p, ==, (gint32) expect);
    }
}

/* ---------- varints ---------- */

static void
test_varint_round_trip (void)
{
  static const gint64 values64[] = { 0, 1, -1, 63, -64, 64, -65, 8191, 8192,
                                     G_MININT32, G_MAXINT32, G_MININT64, G_MAXINT64 };
  static const gint32 values32[] = { 0, 1, -1, 63, -64, 64, 300, -300,
                                     G_MININT32, G_MAXINT32 };

  for (gsize i = 0; i < G_N_ELEMENTS (values64); i++)
    {
      g_autoptr (GByteArray) out = g_byte_array_new ();
      const guint8 *p;
      gint64 v = 0;

      sluice_varint_put_i64 (out, values64[i]);
      g_assert_cmpuint (out->len, <=, SLUICE_VARINT_MAX_64);
      p = out->data;
      g_assert_true (sluice_varint_get_i64 (&p, out->data + out->len, &v));
      g_assert_cmpint (v, ==, values64[i]);
      g_assert_true (p == out->data + out->len);
      /* One byte short must fail, not read past the end. */
      p = out->data;
      g_assert_false (sluice_varint_get_i64 (&p, out->data + out->len - 1, &v));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (values32); i++)
    {
      g_autoptr (GByteArray) out = g_byte_array_new ();
      const guint8 *p;
      gint32 v = 0;

      sluice_varint_put_i32 (out, values32[i]);
      g_assert_cmpuint (out->len, <=, SLUICE_VARINT_MAX_32);
      p = out->data;
      g_assert_true (sluice_varint_get_i32 (&p, out->data + out->len, &v));
      g_assert_cmpint (v, ==, values32[i]);
    }
}

static void
test_varint_known_encodings (void)
{
  /* Zigzag: 0 -> 0, -1 -> 1, 1 -> 2, 150 -> 300 = ac 02. */
  static const guint8 overlong32[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
  static const guint8 overlong64[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                       0x80, 0x80, 0x80, 0x80, 0x00 };
  g_autoptr (GByteArray) out = g_byte_array_new ();
  const guint8 *p;
  gint32 v32;
  gint64 v64;

  sluice_varint_put_i32 (out, -1);
  sluice_varint_put_i32 (out, 1);
  sluice_varint_put_i32 (out, 150);
  g_assert_cmpuint (out->len, ==, 4);
  g_assert_cmphex (out->data[0], ==, 0x01);
  g_assert_cmphex (out->data[1], ==, 0x02);
  g_assert_cmphex (out->data[2], ==, 0xac);
  g_assert_cmphex (out->data[3], ==, 0x02);

  p = overlong32;
  g_assert_false (sluice_varint_get_i32 (&p, overlong32 + sizeof overlong32, &v32));
  g_assert_true (p == overlong32);
  p = overlong64;
  g_assert_false (sluice_varint_get_i64 (&p, overlong64 + sizeof overlong64, &v64));
  p = overlong32;
  g_assert_false (sluice_varint_get_i32 (&p, overlong32, &v32));
}

/* ---------- builder and reader ---------- */

static void
test_batch_round_trip (void)
{
  static const guint8 bin_key[] = { 0x00, 0xff, 0x00, 0x7f };
  static const guint8 bin_value[] = { 0x00, 0x01, 0x02, 0x00 };
  const char *headers[] = { "content-type", "text/plain", "message-id", "m-1", NULL };
  g_autoptr (SluiceBatchBuilder) builder = sluice_batch_builder_new (1700000000000);
  g_autoptr (GBytes) batch = NULL;
  g_autoptr (SluiceBatchReader) reader = NULL;
  g_autoptr (GError) error = NULL;
  SluiceRecordView rec;
  gint32 count = 0;
  gint64 max_ts = 0;
  const guint8 *data;
  gsize len;

  /* 0: string key and value, string headers */
  sluice_batch_builder_add (builder, (const guint8 *) "dev-1", -1,
                            (const guint8 *) "hello", 5, headers, 1700000000000);
  /* 1: null key, null value, binary header with embedded NULs + a null
   * header value */
  sluice_batch_builder_add (builder, NULL, 0, NULL, 0, NULL, 1700000000500);
  sluice_batch_builder_add_header (builder, "bin", bin_value, sizeof bin_value);
  sluice_batch_builder_add_header (builder, "nothing", NULL, 0);
  /* 2: binary key, empty (non-null) value, timestamp before the base */
  sluice_batch_builder_add (builder, bin_key, sizeof bin_key,
                            (const guint8 *) "", 0, NULL, 1699999999000);
  g_assert_cmpuint (sluice_batch_builder_count (builder), ==, 3);

  batch = sluice_batch_builder_finish (g_steal_pointer (&builder));
  g_assert_nonnull (batch);
  data = g_bytes_get_data (batch, &len);

  g_assert_true (sluice_batch_validate (data, len, &count, &max_ts, &error));
  g_assert_no_error (error);
  g_assert_cmpint (count, ==, 3);
  g_assert_cmpint (max_ts, ==, 1700000000500);
  /* Fixed header fields of a non-idempotent producer's batch. */
  g_assert_cmpint ((gint64) sluice_be64 (data + SLUICE_BATCH_OFF_BASE_OFFSET), ==, 0);
  g_assert_cmpint ((gint32) sluice_be32 (data + SLUICE_BATCH_OFF_LEADER_EPOCH), ==, -1);
  g_assert_cmpint ((gint64) sluice_be64 (data + SLUICE_BATCH_OFF_PRODUCER_ID), ==, -1);
  g_assert_cmpint ((gint16) sluice_be16 (data + SLUICE_BATCH_OFF_PRODUCER_EPOCH), ==, -1);
  g_assert_cmpint ((gint32) sluice_be32 (data + SLUICE_BATCH_OFF_BASE_SEQUENCE), ==, -1);
  g_assert_cmpint (sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES), ==, 0);
  g_assert_cmpint ((gint32) sluice_be32 (data + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA), ==, 2);
  g_assert_cmpint ((gint32) sluice_be32 (data + SLUICE_BATCH_OFF_RECORD_COUNT), ==, 3);
  g_assert_cmpint ((gint64) sluice_be64 (data + SLUICE_BATCH_OFF_BASE_TIMESTAMP), ==,
                   1700000000000);

  reader = sluice_batch_reader_new (batch, &error);
  g_assert_no_error (error);

  g_assert_true (sluice_batch_reader_next (reader, &rec, &error));
  g_assert_cmpint (rec.offset, ==, 0);
  g_assert_cmpint (rec.timestamp, ==, 1700000000000);
  g_assert_cmpmem (rec.key, rec.key_len, "dev-1", 5);
  g_assert_cmpmem (rec.value, rec.value_len, "hello", 5);
  g_assert_cmpuint (rec.n_headers, ==, 2);
  g_assert_cmpmem (rec.headers[0].name, rec.headers[0].name_len, "content-type", 12);
  g_assert_cmpmem (rec.headers[0].value, rec.headers[0].value_len, "text/plain", 10);
  g_assert_cmpmem (rec.headers[1].name, rec.headers[1].name_len, "message-id", 10);
  g_assert_cmpmem (rec.headers[1].value, rec.headers[1].value_len, "m-1", 3);

  g_assert_true (sluice_batch_reader_next (reader, &rec, &error));
  g_assert_cmpint (rec.offset, ==, 1);
  g_assert_cmpint (rec.timestamp, ==, 1700000000500);
  g_assert_null (rec.key);
  g_assert_null (rec.value);
  g_assert_cmpuint (rec.n_headers, ==, 2);
  g_assert_cmpmem (rec.headers[0].name, rec.headers[0].name_len, "bin", 3);
  g_assert_cmpmem (rec.headers[0].value, rec.headers[0].value_len,
                   bin_value, sizeof bin_value);
  g_assert_cmpmem (rec.headers[1].name, rec.headers[1].name_len, "nothing", 7);
  g_assert_null (rec.headers[1].value);

  g_assert_true (sluice_batch_reader_next (reader, &rec, &error));
  g_assert_cmpint (rec.offset, ==, 2);
  g_assert_cmpint (rec.timestamp, ==, 1699999999000);
  g_assert_cmpmem (rec.key, rec.key_len, bin_key, sizeof bin_key);
  g_assert_nonnull (rec.value);
  g_assert_cmpuint (rec.value_len, ==, 0);
  g_assert_cmpuint (rec.n_headers, ==, 0);

  g_assert_false (sluice_batch_reader_next (reader, &rec, &error));
  g_assert_no_error (error);
  /* The end stays the end. */
  g_assert_false (sluice_batch_reader_next (reader, &rec, &error));
  g_assert_no_error (error);
}

static void
test_batch_many_records (void)
{
  const guint n = 20000;
  g_autoptr (GBytes) batch = build_simple (n);
  g_autoptr (SluiceBatchReader) reader = NULL;
  g_autoptr (GError) error = NULL;
  SluiceRecordView rec;
  gint32 count = 0;
  gint64 max_ts = 0;
  guint i = 0;

  g_assert_true (sluice_batch_validate (g_bytes_get_data (batch, NULL),
                                        g_bytes_get_size (batch), &count, &max_ts,
                                        &error));
  g_assert_no_error (error);
  g_assert_cmpint (count, ==, n);
  g_assert_cmpint (max_ts, ==, 5000 + n - 1);

  reader = sluice_batch_reader_new (batch, &error);
  g_assert_no_error (error);
  while (sluice_batch_reader_next (reader, &rec, &error))
    {
      g_autofree char *expect = g_strdup_printf ("value-%u", i);

      g_assert_cmpint (rec.offset, ==, i);
      g_assert_cmpint (rec.timestamp, ==, 5000 + i);
      g_assert_cmpmem (rec.value, rec.value_len, expect, strlen (expect));
      g_assert_cmpuint (rec.n_headers, ==, 1);
      i++;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (i, ==, n);
}

static void
test_batch_large_values (void)
{
  /* Sizes around varint byte boundaries and a few MiB. */
  static const gsize sizes[] = { 63, 64, 8191, 8192, 1048575, 1048576, 3 * 1048576 + 7 };
  g_autoptr (SluiceBatchBuilder) builder = sluice_batch_builder_new (0);
  g_autoptr (GBytes) batch = NULL;
  g_autoptr (SluiceBatchReader) reader = NULL;
  g_autoptr (GError) error = NULL;
  SluiceRecordView rec;

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree guint8 *value = g_malloc (sizes[i]);

      memset (value, (int) ('a' + i), sizes[i]);
      sluice_batch_builder_add (builder, NULL, 0, value, sizes[i], NULL, 0);
      sluice_batch_builder_add_header (builder, "big", value, sizes[i] / 2);
    }
  batch = sluice_batch_builder_finish (g_steal_pointer (&builder));
  g_assert_true (sluice_batch_validate (g_bytes_get_data (batch, NULL),
                                        g_bytes_get_size (batch), NULL, NULL, &error));
  g_assert_no_error (error);

  reader = sluice_batch_reader_new (batch, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_assert_true (sluice_batch_reader_next (reader, &rec, &error));
      g_assert_cmpuint (rec.value_len, ==, sizes[i]);
      g_assert_cmpint (rec.value[0], ==, 'a' + i);
      g_assert_cmpint (rec.value[sizes[i] - 1], ==, 'a' + i);
      g_assert_cmpuint (rec.n_headers, ==, 1);
      g_assert_cmpuint (rec.headers[0].value_len, ==, sizes[i] / 2);
    }
  g_assert_false (sluice_batch_reader_next (reader, &rec, &error));
  g_assert_no_error (error);
}

static void
test_batch_empty_builder (void)
{
  g_autoptr (GBytes) batch = sluice_batch_builder_finish (sluice_batch_builder_new (7));
  g_autoptr (GError) error = NULL;

  /* A batch without records names no offsets: the writer could not place
   * it, so validation refuses it. */
  g_assert_false (sluice_batch_validate (g_bytes_get_data (batch, NULL),
                                         g_bytes_get_size (batch), NULL, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_cmpint (read_all (batch, &error), ==, 0);
  g_assert_no_error (error);
}

/* ---------- validate ---------- */

static void
expect_invalid (const guint8 *data, gsize len, gint code, const char *fragment)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (sluice_batch_validate (data, len, NULL, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, code);
  if (fragment != NULL && strstr (error->message, fragment) == NULL)
    g_error ("expected '%s' in: %s", fragment, error->message);
}

static void
test_validate_truncated (void)
{
  g_autoptr (GBytes) batch = build_simple (3);
  gsize len;
  const guint8 *data = g_bytes_get_data (batch, &len);

  for (gsize cut = 0; cut < len; cut++)
    {
      /* A copy of exactly `cut` bytes, so ASan sees any read past it. */
      g_autofree guint8 *copy = g_memdup2 (data, cut);

      expect_invalid (copy, cut, SLUICE_ERROR_INVALID, "truncated");
    }
}

static void
test_validate_wrong_magic (void)
{
  g_autoptr (GBytes) batch = build_simple (2);
  gsize len;
  g_autofree guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (batch), &len);

  copy[SLUICE_BATCH_OFF_MAGIC] = 1;
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "magic is 1");
  copy[SLUICE_BATCH_OFF_MAGIC] = 0;
  expect_invalid (copy, 20, SLUICE_ERROR_INVALID, "magic is 0");
}

static void
test_validate_wrong_crc (void)
{
  g_autoptr (GBytes) batch = build_simple (2);
  gsize len;
  g_autofree guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (batch), &len);

  /* Any byte from the attributes on is covered. */
  for (gsize i = SLUICE_BATCH_OFF_ATTRIBUTES; i < len; i++)
    {
      copy[i] ^= 0x40;
      expect_invalid (copy, len, SLUICE_ERROR_CORRUPT, "CRC-32C mismatch");
      copy[i] ^= 0x40;
    }
  copy[SLUICE_BATCH_OFF_CRC + 3] ^= 1;
  expect_invalid (copy, len, SLUICE_ERROR_CORRUPT, "CRC-32C mismatch");
  copy[SLUICE_BATCH_OFF_CRC + 3] ^= 1;
  /* The base offset and leader epoch are not covered, by design. */
  copy[3] ^= 1;
  copy[SLUICE_BATCH_OFF_LEADER_EPOCH] ^= 1;
  g_assert_true (sluice_batch_validate (copy, len, NULL, NULL, NULL));
}

static void
test_validate_wrong_length (void)
{
  g_autoptr (GBytes) batch = build_simple (2);
  gsize len;
  g_autofree guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (batch), &len);
  g_autofree guint8 *longer = g_malloc0 (len + 1);
  guint32 length = sluice_be32 (copy + SLUICE_BATCH_OFF_LENGTH);

  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LENGTH, length + 1);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "truncated");
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LENGTH, length - 1);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "length field");
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LENGTH, G_MAXUINT32);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "truncated");
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LENGTH, length);
  g_assert_true (sluice_batch_validate (copy, len, NULL, NULL, NULL));

  /* One trailing byte after a correct batch. */
  memcpy (longer, copy, len);
  expect_invalid (longer, len + 1, SLUICE_ERROR_INVALID, "length field");
}

static void
test_validate_counts (void)
{
  g_autoptr (GBytes) batch = build_simple (4);
  gsize len;
  g_autofree guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (batch), &len);
  g_autoptr (GError) error = NULL;
  gint32 count = 0;

  sluice_put_be32 (copy + SLUICE_BATCH_OFF_RECORD_COUNT, (guint32) -1);
  fix_crc (copy, len);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "negative");

  sluice_put_be32 (copy + SLUICE_BATCH_OFF_RECORD_COUNT, 5);
  fix_crc (copy, len);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "last offset delta");

  sluice_put_be32 (copy + SLUICE_BATCH_OFF_RECORD_COUNT, 4);
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA, (guint32) -1);
  fix_crc (copy, len);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "negative");

  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA, G_MAXINT32);
  fix_crc (copy, len);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "spans more offsets");

  /* More claimed records than bytes can hold. */
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_RECORD_COUNT, 100000);
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA, 100000);
  fix_crc (copy, len);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "at least");

  /* Unknown codec. */
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_RECORD_COUNT, 4);
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA, 3);
  sluice_put_be16 (copy + SLUICE_BATCH_OFF_ATTRIBUTES, 5);
  fix_crc (copy, len);
  expect_invalid (copy, len, SLUICE_ERROR_INVALID, "codec 5");

  /* An offset range wider than the records (what compaction leaves) is
   * accepted, and the reported count is the range. */
  sluice_put_be16 (copy + SLUICE_BATCH_OFF_ATTRIBUTES, 0);
  sluice_put_be32 (copy + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA, 9);
  fix_crc (copy, len);
  g_assert_true (sluice_batch_validate (copy, len, &count, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (count, ==, 10);
}

/* ---------- stamp ---------- */

static void
test_stamp (void)
{
  g_autoptr (GBytes) batch = build_simple (5);
  g_autoptr (GBytes) stamped = NULL;
  g_autoptr (SluiceBatchReader) reader = NULL;
  g_autoptr (GError) error = NULL;
  SluiceRecordView rec;
  gsize len;
  guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (batch), &len);
  const gint64 append = 1712345678901;
  gint32 count = 0;
  gint64 max_ts = 0;
  guint i = 0;

  sluice_batch_stamp (copy, len, 4242, append);
  g_assert_cmpint ((gint64) sluice_be64 (copy + SLUICE_BATCH_OFF_BASE_OFFSET), ==, 4242);
  g_assert_cmphex (sluice_be16 (copy + SLUICE_BATCH_OFF_ATTRIBUTES)
                     & SLUICE_BATCH_ATTR_LOG_APPEND_TIME, ==, SLUICE_BATCH_ATTR_LOG_APPEND_TIME);
  g_assert_cmpint ((gint64) sluice_be64 (copy + SLUICE_BATCH_OFF_MAX_TIMESTAMP), ==, append);
  /* Stamping leaves the record data and the base timestamp alone. */
  g_assert_cmpmem (copy + SLUICE_BATCH_HEADER_SIZE, len - SLUICE_BATCH_HEADER_SIZE,
                   (const guint8 *) g_bytes_get_data (batch, NULL) + SLUICE_BATCH_HEADER_SIZE,
                   len - SLUICE_BATCH_HEADER_SIZE);
  g_assert_cmpint ((gint64) sluice_be64 (copy + SLUICE_BATCH_OFF_BASE_TIMESTAMP), ==, 5000);

  g_assert_true (sluice_batch_validate (copy, len, &count, &max_ts, &error));
  g_assert_no_error (error);
  g_assert_cmpint (count, ==, 5);
  g_assert_cmpint (max_ts, ==, append);

  stamped = g_bytes_new_take (copy, len);
  reader = sluice_batch_reader_new (stamped, &error);
  g_assert_no_error (error);
  while (sluice_batch_reader_next (reader, &rec, &error))
    {
      g_assert_cmpint (rec.offset, ==, 4242 + i);
      g_assert_cmpint (rec.timestamp, ==, append);
      i++;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (i, ==, 5);

  /* Restamping (a batch read back and re-appended) keeps it valid. */
  copy = g_bytes_unref_to_data (g_bytes_ref (stamped), &len);
  sluice_batch_stamp (copy, len, 0, append + 1);
  g_assert_true (sluice_batch_validate (copy, len, NULL, &max_ts, NULL));
  g_assert_cmpint (max_ts, ==, append + 1);
  g_free (copy);
}

/* ---------- reader on hostile input ---------- */

/* One hand-written record: length, attributes, ts delta, offset delta,
 * key "k", value "v", header count 0. */
static const guint8 good_record[] = { 0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00 };

static void
expect_reader_error (const guint8 *records, gsize len, gint32 count,
                     gint32 last_delta, const char *fragment)
{
  g_autoptr (GBytes) batch = make_batch (records, len, count, last_delta, 0);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (read_all (batch, &error), ==, -1);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  if (strstr (error->message, fragment) == NULL)
    g_error ("expected '%s' in: %s", fragment, error->message);
}

static void
test_reader_hand_written (void)
{
  g_autoptr (GBytes) ok = make_batch (good_record, sizeof good_record, 1, 0, 0);
  g_autoptr (GError) error = NULL;
  guint8 buf[64];

  g_assert_cmpint (read_all (ok, &error), ==, 1);
  g_assert_no_error (error);

  /* record length past the end of the batch */
  memcpy (buf, good_record, sizeof good_record);
  buf[0] = 0x12;
  expect_reader_error (buf, sizeof good_record, 1, 0, "runs past the end");
  /* negative record length */
  buf[0] = 0x03;
  expect_reader_error (buf, sizeof good_record, 1, 0, "length -2");
  /* key length past the record (length still 8) */
  memcpy (buf, good_record, sizeof good_record);
  buf[4] = 0x20;
  expect_reader_error (buf, sizeof good_record, 1, 0, "key");
  /* key length -2 */
  buf[4] = 0x03;
  expect_reader_error (buf, sizeof good_record, 1, 0, "key");
  /* value length past the record */
  memcpy (buf, good_record, sizeof good_record);
  buf[6] = 0x06;
  expect_reader_error (buf, sizeof good_record, 1, 0, "value");
  /* huge header count */
  memcpy (buf, good_record, sizeof good_record);
  buf[8] = 0x7e;
  expect_reader_error (buf, sizeof good_record, 1, 0, "header count");
  /* negative header count */
  buf[8] = 0x01;
  expect_reader_error (buf, sizeof good_record, 1, 0, "header count");
  /* fewer records than the header says */
  expect_reader_error (good_record, sizeof good_record, 2, 1, "promises 1 more");
  /* bytes left after the last record */
  memcpy (buf, good_record, sizeof good_record);
  buf[sizeof good_record] = 0;
  expect_reader_error (buf, sizeof good_record + 1, 1, 0, "after its last record");
  /* unread bytes inside a record (length 9, one spare byte) */
  memcpy (buf, good_record, sizeof good_record);
  buf[0] = 0x12;
  buf[sizeof good_record] = 0;
  expect_reader_error (buf, sizeof good_record + 1, 1, 0, "unread bytes");
  /* offset delta beyond last offset delta */
  memcpy (buf, good_record, sizeof good_record);
  buf[3] = 0x02;
  expect_reader_error (buf, sizeof good_record, 1, 0, "past the batch");
  /* repeated offset delta */
  memcpy (buf, good_record, sizeof good_record);
  memcpy (buf + sizeof good_record, good_record, sizeof good_record);
  expect_reader_error (buf, 2 * sizeof good_record, 2, 1, "does not follow");
  /* overlong varint timestamp delta (11 bytes) in a large enough record */
  {
    static const guint8 rec[] = { 0x20, 0x00,
                                  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
                                  0x00, 0x01, 0x01, 0x00 };
    expect_reader_error (rec, sizeof rec, 1, 0, "timestamp delta");
  }
  /* header with a null name */
  {
    static const guint8 rec[] = { 0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x01, 0x01 };
    expect_reader_error (rec, sizeof rec, 1, 0, "null name");
  }
}

static void
test_reader_header_checks (void)
{
  g_autoptr (GBytes) batch = build_simple (2);
  gsize len;
  const guint8 *data = g_bytes_get_data (batch, &len);
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *copy = NULL;

  for (gsize cut = 0; cut < len; cut++)
    {
      g_autoptr (GBytes) part = g_bytes_new (data, cut);

      g_assert_cmpint (read_all (part, &error), ==, -1);
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
      g_clear_error (&error);
    }

  copy = g_memdup2 (data, len);
  copy[SLUICE_BATCH_OFF_MAGIC] = 1;
  {
    g_autoptr (GBytes) b = g_bytes_new (copy, len);

    g_assert_null (sluice_batch_reader_new (b, &error));
    g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    g_clear_error (&error);
  }
}

static void
test_reader_compressed (void)
{
  for (guint codec = 1; codec <= 4; codec++)
    {
      g_autoptr (GBytes) plain = make_batch (good_record, sizeof good_record, 1, 0, 0);
      g_autoptr (GBytes) fake = make_batch (good_record, sizeof good_record, 1, 0, codec);
      g_autoptr (GBytes) packed = NULL;
      g_autoptr (SluiceBatchReader) reader = NULL;
      g_autoptr (GError) error = NULL;
      SluiceRecordView view;

      /* Plain records under a codec flag: the CRC holds, the payload does
       * not decompress, so validation refuses what no reader could read. */
      g_assert_false (sluice_batch_validate (g_bytes_get_data (fake, NULL),
                                             g_bytes_get_size (fake), NULL, NULL, &error));
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
      g_clear_error (&error);
      g_assert_null (sluice_batch_reader_new (fake, &error));
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
      g_clear_error (&error);

      /* Really compressed: validates and reads like the plain batch. */
      packed = sluice_batch_compress (plain, codec, &error);
      g_assert_no_error (error);
      g_assert_true (sluice_batch_validate (g_bytes_get_data (packed, NULL),
                                            g_bytes_get_size (packed), NULL, NULL, &error));
      g_assert_no_error (error);
      reader = sluice_batch_reader_new (packed, &error);
      g_assert_no_error (error);
      g_assert_true (sluice_batch_reader_next (reader, &view, &error));
      g_assert_cmpint (view.offset, ==, 100);
      g_assert_cmpmem (view.key, view.key_len, "k", 1);
      g_assert_cmpmem (view.value, view.value_len, "v", 1);
      g_assert_false (sluice_batch_reader_next (reader, &view, &error));
      g_assert_no_error (error);
    }
}

static void
test_reader_control_batch (void)
{
  /* A transaction marker: key = version 0, type 1 (commit); the caller
   * decides to skip it, the reader just shows it. */
  static const guint8 rec[] = { 0x20, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01,
                                0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
  g_autoptr (GBytes) batch = make_batch (rec, sizeof rec, 1, 0,
                                         SLUICE_BATCH_ATTR_CONTROL
                                           | SLUICE_BATCH_ATTR_TRANSACTIONAL);
  g_autoptr (SluiceBatchReader) reader = NULL;
  g_autoptr (GError) error = NULL;
  SluiceRecordView view;

  g_assert_true (sluice_batch_validate (g_bytes_get_data (batch, NULL),
                                        g_bytes_get_size (batch), NULL, NULL, &error));
  g_assert_no_error (error);
  reader = sluice_batch_reader_new (batch, &error);
  g_assert_no_error (error);
  g_assert_true (sluice_batch_reader_next (reader, &view, &error));
  g_assert_cmpuint (view.key_len, ==, 4);
  g_assert_cmpint (view.key[3], ==, 1);
  g_assert_cmpint (view.offset, ==, 100);
  g_assert_cmpuint (view.value_len, ==, 6);
  g_assert_false (sluice_batch_reader_next (reader, &view, &error));
  g_assert_no_error (error);
}

static void
test_reader_random_corruption (void)
{
  /* Random byte flips in the record area must end in records or a clean
   * INVALID error, never a crash or an out-of-bounds read (run under
   * ASan). */
  g_autoptr (GBytes) batch = build_simple (6);
  gsize len;
  const guint8 *data = g_bytes_get_data (batch, &len);

  for (guint round = 0; round < 3000; round++)
    {
      guint8 *copy = g_memdup2 (data, len);
      g_autoptr (GBytes) mutated = NULL;
      g_autoptr (GError) error = NULL;
      guint flips = g_test_rand_int_range (1, 4);
      gint n;

      for (guint f = 0; f < flips; f++)
        copy[g_test_rand_int_range (SLUICE_BATCH_HEADER_SIZE, (gint32) len)] =
          (guint8) g_test_rand_int ();
      mutated = g_bytes_new_take (copy, len);
      n = read_all (mutated, &error);
      if (n < 0)
        g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
      else
        g_assert_cmpint (n, ==, 6);
    }
}

/* Long buffers take the three-stream path of the hardware CRC. */
static void
test_crc32c_long (void)
{
  gsize size = 1 << 20;
  g_autofree guint8 *buf = g_malloc (size + 16);

  for (gsize i = 0; i < size + 16; i++)
    buf[i] = g_test_rand_int ();
  for (int i = 0; i < 40; i++)
    {
      gsize off = g_test_rand_int_range (0, 16);
      gsize len = i == 0 ? size : (gsize) g_test_rand_int_range (5000, size);
      guint32 seed = g_test_rand_int ();
      g_assert_cmphex (sluice_crc32c (seed, buf + off, len), ==,
                       sluice_crc32c_table (seed, buf + off, len));
    }
}

/* Large batches get their CRC updated for the changed span only: it must
 * equal a full recomputation, for many sizes and stamp values, and a second
 * stamp (as after a re-append) must stay right too. */
static void
test_stamp_incremental (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  static const gsize sizes[] = { 10, 100, 4000, 4096, 5000, 65536, 300000, 1 << 20 };

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      SluiceBatchBuilder *b = sluice_batch_builder_new (1000);
      g_autofree guint8 *value = g_malloc (sizes[s]);
      g_autoptr (GBytes) batch = NULL;
      guint8 *data;
      gsize len;

      for (gsize i = 0; i < sizes[s]; i++)
        value[i] = g_rand_int (rand);
      sluice_batch_builder_add (b, NULL, 0, value, sizes[s], NULL, 1000);
      batch = sluice_batch_builder_finish (b);
      data = g_bytes_unref_to_data (g_steal_pointer (&batch), &len);
      for (int round = 0; round < 3; round++)
        {
          gint64 when = 1700000000000 + g_rand_int (rand);
          g_autoptr (GError) error = NULL;
          gint32 count;
          gint64 max_ts;
          guint32 want;

          sluice_batch_stamp (data, len, g_rand_int (rand), when);
          want = sluice_crc32c (0, data + SLUICE_BATCH_OFF_ATTRIBUTES,
                                len - SLUICE_BATCH_OFF_ATTRIBUTES);
          guint32 stored;

          memcpy (&stored, data + SLUICE_BATCH_OFF_CRC, sizeof stored);
          g_assert_cmphex (GUINT32_FROM_BE (stored), ==, want);
          g_assert_true (sluice_batch_validate (data, len, &count, &max_ts, &error));
          g_assert_no_error (error);
          g_assert_cmpint (max_ts, ==, when);
        }
      g_free (data);
    }
  /* The shift itself: n zeros after a register equals summing them. */
  {
    guint8 zeros[1000] = { 0 };
    for (guint n = 0; n < 1000; n += 37)
      {
        guint32 reg = 0x12345678;
        /* sluice_crc32c chains with pre/post inversion; undo it for the raw
         * register: raw' = ~crc32c(~raw, zeros). */
        guint32 direct = ~sluice_crc32c (~reg, zeros, n);
        g_assert_cmphex (sluice_crc32c_shift (reg, n), ==, direct);
      }
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/records/crc32c/known-answers", test_crc32c_known_answers);
  g_test_add_func ("/records/crc32c/hw-vs-table", test_crc32c_hw_vs_table);
  g_test_add_func ("/records/crc32c/long-buffers", test_crc32c_long);
  g_test_add_func ("/records/crc32c/chaining", test_crc32c_chaining);
  g_test_add_func ("/records/murmur2/kafka", test_murmur2_kafka);
  g_test_add_func ("/records/murmur2/partition", test_murmur2_partition);
  g_test_add_func ("/records/varint/round-trip", test_varint_round_trip);
  g_test_add_func ("/records/varint/known-encodings", test_varint_known_encodings);
  g_test_add_func ("/records/batch/round-trip", test_batch_round_trip);
  g_test_add_func ("/records/batch/many-records", test_batch_many_records);
  g_test_add_func ("/records/batch/large-values", test_batch_large_values);
  g_test_add_func ("/records/batch/empty-builder", test_batch_empty_builder);
  g_test_add_func ("/records/validate/truncated", test_validate_truncated);
  g_test_add_func ("/records/validate/wrong-magic", test_validate_wrong_magic);
  g_test_add_func ("/records/validate/wrong-crc", test_validate_wrong_crc);
  g_test_add_func ("/records/validate/wrong-length", test_validate_wrong_length);
  g_test_add_func ("/records/validate/counts", test_validate_counts);
  g_test_add_func ("/records/stamp", test_stamp);
  g_test_add_func ("/records/stamp/incremental-crc", test_stamp_incremental);
  g_test_add_func ("/records/reader/hand-written", test_reader_hand_written);
  g_test_add_func ("/records/reader/header-checks", test_reader_header_checks);
  g_test_add_func ("/records/reader/compressed", test_reader_compressed);
  g_test_add_func ("/records/reader/control-batch", test_reader_control_batch);
  g_test_add_func ("/records/reader/random-corruption", test_reader_random_corruption);

  return g_test_run ();
}
