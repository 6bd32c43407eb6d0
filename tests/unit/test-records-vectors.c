/* Unit tests: record batches captured from real Kafka clients
 * ($SLUICE_VECTORS/kafka, Produce v7 requests from kcat, confluent-kafka,
 * kafka-python and kafkajs) through validate, stamp and the reader.
 * SPDX-License-Identifier: Apache-2.0 */
#include "records-private.h"
#include "varint.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* A bounds-checked cursor for the few Produce fields we walk over. */
typedef struct {
  const guint8 *p;
  const guint8 *end;
} Cursor;

static gboolean
take (Cursor *c, gsize n, const guint8 **out)
{
  if ((gsize) (c->end - c->p) < n)
    return FALSE;
  if (out != NULL)
    *out = c->p;
  c->p += n;
  return TRUE;
}

static gboolean
get16 (Cursor *c, gint16 *v)
{
  const guint8 *b;

  if (!take (c, 2, &b))
    return FALSE;
  *v = (gint16) sluice_be16 (b);
  return TRUE;
}

static gboolean
get32 (Cursor *c, gint32 *v)
{
  const guint8 *b;

  if (!take (c, 4, &b))
    return FALSE;
  *v = (gint32) sluice_be32 (b);
  return TRUE;
}

static gboolean
skip_string (Cursor *c)
{
  gint16 n;

  if (!get16 (c, &n))
    return FALSE;
  return n < 0 ? n == -1 : take (c, (gsize) n, NULL);
}

static const char *
vectors_dir (void)
{
  const char *dir = g_getenv ("SLUICE_VECTORS");

  if (dir == NULL || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_fail_printf ("protocol vectors not found (SLUICE_VECTORS=%s); "
                          "they live in ../shared/vectors beside the source tree",
                          dir != NULL ? dir : "(unset)");
      return NULL;
    }
  return dir;
}

/* Every record batch of every Produce (v3 .. v8, the non-flexible
 * versions) request in one connection's c2s.bin, appended to `batches`. */
static void
collect_produce_batches (const char *conn_dir, GPtrArray *batches)
{
  g_autofree char *index_path = g_build_filename (conn_dir, "index.json", NULL);
  g_autofree char *c2s_path = g_build_filename (conn_dir, "c2s.bin", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *c2s = NULL;
  gsize c2s_len = 0;
  JsonArray *requests;

  json_parser_load_from_file (parser, index_path, &error);
  g_assert_no_error (error);
  g_file_get_contents (c2s_path, &c2s, &c2s_len, &error);
  g_assert_no_error (error);

  requests = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                           "requests");
  g_assert_nonnull (requests);
  for (guint i = 0; i < json_array_get_length (requests); i++)
    {
      JsonObject *req = json_array_get_object_element (requests, i);
      gint64 offset, size, body_offset, version;
      Cursor c;
      gint16 acks = 0;
      gint32 timeout = 0, n_topics = 0;

      if (json_object_get_int_member (req, "api_key") != 0)
        continue;
      version = json_object_get_int_member (req, "api_version");
      g_assert_cmpint (version, >=, 3);
      g_assert_cmpint (version, <=, 8);
      offset = json_object_get_int_member (req, "offset");
      size = json_object_get_int_member (req, "size");
      body_offset = json_object_get_int_member (req, "body_offset");
      g_assert_cmpint (offset + 4 + size, <=, (gint64) c2s_len);
      g_assert_cmpint (body_offset, <, offset + 4 + size);
      c.p = (const guint8 *) c2s + body_offset;
      c.end = (const guint8 *) c2s + offset + 4 + size;

      g_assert_true (skip_string (&c));          /* transactional_id */
      g_assert_true (get16 (&c, &acks));
      g_assert_true (get32 (&c, &timeout));
      g_assert_true (get32 (&c, &n_topics));
      for (gint32 t = 0; t < n_topics; t++)
        {
          gint32 n_parts = 0;

          g_assert_true (skip_string (&c));      /* topic name */
          g_assert_true (get32 (&c, &n_parts));
          for (gint32 p = 0; p < n_parts; p++)
            {
              gint32 partition = 0, records_len = 0;
              Cursor r;

              g_assert_true (get32 (&c, &partition));
              g_assert_true (get32 (&c, &records_len));
              if (records_len < 0)
                continue;
              r.p = c.p;
              g_assert_true (take (&c, (gsize) records_len, NULL));
              r.end = c.p;
              /* A records field may hold several batches back to back. */
              while (r.p < r.end)
                {
                  const guint8 *start = r.p;
                  guint32 length;

                  g_assert_cmpint (r.end - r.p, >=, SLUICE_BATCH_HEADER_SIZE);
                  length = sluice_be32 (r.p + SLUICE_BATCH_OFF_LENGTH);
                  g_assert_true (take (&r, 12 + (gsize) length, NULL));
                  g_ptr_array_add (batches, g_bytes_new (start, 12 + (gsize) length));
                }
            }
        }
      g_assert_true (c.p == c.end);
    }
}

static GPtrArray *
scenario_batches (const char *scenario)
{
  const char *dir = vectors_dir ();
  g_autofree char *path = NULL;
  g_autoptr (GDir) d = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *batches = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  const char *name;

  if (dir == NULL)
    return batches;
  path = g_build_filename (dir, "kafka", scenario, NULL);
  d = g_dir_open (path, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "conn-"))
      g_ptr_array_add (names, g_strdup (name));
  /* Connection order = capture order. */
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *conn = g_build_filename (path, names->pdata[i], NULL);

      collect_produce_batches (conn, batches);
    }
  return batches;
}

static gint
cmp_keys (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* kcat -P -K: with records "kN-<codec>:vN-<codec>" and headers hdr1=val1,
 * trace=abc-<codec>. librdkafka sends a batch uncompressed when the codec
 * would not make it smaller, so most of the tiny batches of the
 * "compressed" scenarios arrive as codec 0 and are decoded like "none". */
static void
check_kcat (const char *codec_name, guint codec, guint *n_compressed)
{
  g_autofree char *scenario = g_strdup_printf ("kcat-produce-%s", codec_name);
  g_autofree char *trace = g_strdup_printf ("abc-%s", codec_name);
  g_autofree char *suffix = g_strdup_printf ("-%s", codec_name);
  g_autoptr (GPtrArray) batches = scenario_batches (scenario);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);

  if (batches->len == 0 && g_test_failed ())
    return;
  g_assert_cmpuint (batches->len, >=, 1);

  for (guint i = 0; i < batches->len; i++)
    {
      GBytes *batch = batches->pdata[i];
      gsize len;
      const guint8 *data = g_bytes_get_data (batch, &len);
      g_autoptr (GError) error = NULL;
      g_autoptr (SluiceBatchReader) reader = NULL;
      g_autoptr (SluiceBatchBuilder) builder = NULL;
      g_autoptr (GBytes) rebuilt = NULL;
      SluiceRecordView rec;
      gint32 count = 0;
      gint64 max_ts = 0;
      gint64 base_ts = (gint64) sluice_be64 (data + SLUICE_BATCH_OFF_BASE_TIMESTAMP);
      guint batch_codec = sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES)
                          & SLUICE_BATCH_ATTR_COMPRESSION_MASK;

      g_assert_true (sluice_batch_validate (data, len, &count, &max_ts, &error));
      g_assert_no_error (error);
      g_assert_cmpint (count, >=, 1);
      g_assert_true (batch_codec == 0 || batch_codec == codec);

      /* Compressed batches read like the others (decompressed by the
       * reader); count them so the test knows the codecs were exercised. */
      reader = sluice_batch_reader_new (batch, &error);
      g_assert_no_error (error);
      if (batch_codec != 0)
        (*n_compressed)++;

      builder = sluice_batch_builder_new (base_ts);
      while (sluice_batch_reader_next (reader, &rec, &error))
        {
          g_autofree char *key = NULL;
          g_autofree char *value = NULL;
          g_autofree char *expect_value = NULL;

          g_assert_nonnull (rec.key);
          g_assert_nonnull (rec.value);
          key = g_strndup ((const char *) rec.key, rec.key_len);
          value = g_strndup ((const char *) rec.value, rec.value_len);
          g_assert_true (g_str_has_prefix (key, "k") && g_str_has_suffix (key, suffix));
          expect_value = g_strdup_printf ("v%s", key + 1);
          g_assert_cmpstr (value, ==, expect_value);
          g_assert_cmpint (rec.timestamp, <=, max_ts);
          g_assert_cmpuint (rec.n_headers, ==, 2);
          g_assert_cmpmem (rec.headers[0].name, rec.headers[0].name_len, "hdr1", 4);
          g_assert_cmpmem (rec.headers[0].value, rec.headers[0].value_len, "val1", 4);
          g_assert_cmpmem (rec.headers[1].name, rec.headers[1].name_len, "trace", 5);
          g_assert_cmpmem (rec.headers[1].value, rec.headers[1].value_len,
                           trace, strlen (trace));

          sluice_batch_builder_add (builder, rec.key, rec.key_len, rec.value,
                                    rec.value_len, NULL, rec.timestamp);
          for (guint h = 0; h < rec.n_headers; h++)
            {
              g_autofree char *name = g_strndup ((const char *) rec.headers[h].name,
                                                 rec.headers[h].name_len);

              sluice_batch_builder_add_header (builder, name, rec.headers[h].value,
                                               rec.headers[h].value_len);
            }
          g_ptr_array_add (keys, g_steal_pointer (&key));
        }
      g_assert_no_error (error);

      /* Our builder writes the same bytes librdkafka wrote, CRC included
       * (only the uncovered leader epoch differs: -1 here, 0 there); for a
       * compressed batch, the same records as its decompressed form. */
      rebuilt = sluice_batch_builder_finish (g_steal_pointer (&builder));
      if (batch_codec == 0)
        g_assert_cmpmem ((const guint8 *) g_bytes_get_data (rebuilt, NULL)
                         + SLUICE_BATCH_OFF_MAGIC,
                         g_bytes_get_size (rebuilt) - SLUICE_BATCH_OFF_MAGIC,
                         data + SLUICE_BATCH_OFF_MAGIC, len - SLUICE_BATCH_OFF_MAGIC);
    }

  /* kcat sent three messages in all. */
  g_assert_cmpint ((gint32) keys->len, ==, 3);
  g_ptr_array_sort (keys, cmp_keys);
  for (guint i = 0; i < keys->len; i++)
    {
      g_autofree char *expect = g_strdup_printf ("k%u-%s", i + 1, codec_name);

      g_assert_cmpstr (keys->pdata[i], ==, expect);
    }
}

static void
test_kcat_none (void)
{
  guint n_compressed = 0;

  check_kcat ("none", SLUICE_COMPRESSION_NONE, &n_compressed);
  g_assert_cmpuint (n_compressed, ==, 0);
}

static void
test_kcat_compressed (void)
{
  guint n_compressed = 0;

  check_kcat ("gzip", SLUICE_COMPRESSION_GZIP, &n_compressed);
  check_kcat ("snappy", SLUICE_COMPRESSION_SNAPPY, &n_compressed);
  check_kcat ("lz4", SLUICE_COMPRESSION_LZ4, &n_compressed);
  check_kcat ("zstd", SLUICE_COMPRESSION_ZSTD, &n_compressed);
  /* The capture has snappy batches and one zstd batch really compressed. */
  g_assert_cmpuint (n_compressed, >=, 2);
}

/* Every Produce batch of every client validates, survives stamping, and
 * reads back completely, compressed or not. */
static void
test_all_clients (void)
{
  static const char *scenarios[] = {
    "kcat-produce-none", "kcat-produce-gzip", "kcat-produce-snappy",
    "kcat-produce-lz4", "kcat-produce-zstd", "confluent-idempotent-producer",
    "kafka-python-producer", "kafkajs-produce-consume-group",
  };
  guint total = 0, uncompressed = 0;

  for (gsize s = 0; s < G_N_ELEMENTS (scenarios); s++)
    {
      g_autoptr (GPtrArray) batches = scenario_batches (scenarios[s]);

      if (batches->len == 0 && g_test_failed ())
        return;
      g_assert_cmpuint (batches->len, >=, 1);
      for (guint i = 0; i < batches->len; i++)
        {
          gsize len;
          g_autofree guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (batches->pdata[i]),
                                                            &len);
          g_autoptr (GBytes) stamped = NULL;
          g_autoptr (GError) error = NULL;
          gint32 count = 0, header_count;
          gint64 max_ts = 0;

          g_assert_true (sluice_batch_validate (copy, len, &count, &max_ts, &error));
          g_assert_no_error (error);
          header_count = (gint32) sluice_be32 (copy + SLUICE_BATCH_OFF_RECORD_COUNT);
          /* Freshly produced batches have no offset gaps. */
          g_assert_cmpint (count, ==, header_count);

          sluice_batch_stamp (copy, len, 1000 + total, 1712345678000);
          g_assert_true (sluice_batch_validate (copy, len, &count, &max_ts, &error));
          g_assert_no_error (error);
          g_assert_cmpint (max_ts, ==, 1712345678000);
          total++;

          if ((sluice_be16 (copy + SLUICE_BATCH_OFF_ATTRIBUTES)
               & SLUICE_BATCH_ATTR_COMPRESSION_MASK) == 0)
            uncompressed++;

          {
            g_autoptr (SluiceBatchReader) reader = NULL;
            SluiceRecordView rec;
            gint32 n = 0;

            stamped = g_bytes_new (copy, len);
            reader = sluice_batch_reader_new (stamped, &error);
            g_assert_no_error (error);
            while (sluice_batch_reader_next (reader, &rec, &error))
              {
                g_assert_cmpint (rec.offset, ==, 1000 + (gint64) total - 1 + n);
                g_assert_cmpint (rec.timestamp, ==, 1712345678000);
                n++;
              }
            g_assert_no_error (error);
            g_assert_cmpint (n, ==, header_count);
          }
        }
    }
  g_test_message ("%u batches, %u uncompressed", total, uncompressed);
  g_assert_cmpuint (uncompressed, >=, 3);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/records/vectors/kcat-none", test_kcat_none);
  g_test_add_func ("/records/vectors/kcat-compressed", test_kcat_compressed);
  g_test_add_func ("/records/vectors/all-clients", test_all_clients);

  return g_test_run ();
}
