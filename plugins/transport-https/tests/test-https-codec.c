/* transport-https codec: routes, JSON out and in, header mapping.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-codec.h"

#include <string.h>

/* --- routes --- */

static void
test_route_device_paths (void)
{
  HttpsRoute r;

  https_route_parse ("/devices/dev-1/messages/events", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_DEVICE_EVENTS);
  g_assert_cmpstr (r.device_id, ==, "dev-1");
  g_assert_true (r.iothub);
  g_assert_true (https_route_allows (&r, "POST"));
  g_assert_false (https_route_allows (&r, "GET"));
  https_route_clear (&r);

  /* Fixed segments case-insensitively, ids as written, trailing slash. */
  https_route_parse ("/Devices/Dev-1/Messages/Events/", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_DEVICE_EVENTS);
  g_assert_cmpstr (r.device_id, ==, "Dev-1");
  https_route_clear (&r);

  https_route_parse ("/devices/d1", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_DEVICE);
  g_assert_true (https_route_allows (&r, "PUT"));
  g_assert_true (https_route_allows (&r, "DELETE"));
  g_assert_true (https_route_allows (&r, "GET"));
  g_assert_false (https_route_allows (&r, "POST"));
  g_assert_false (https_route_allows (&r, "GE"));
  https_route_clear (&r);

  https_route_parse ("/devices", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_DEVICES);
  https_route_clear (&r);

  https_route_parse ("/devices/d1/messages/deviceBound", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NOT_IMPLEMENTED);
  g_assert_cmpstr (r.feature, ==, "cloud-to-device messages");
  g_assert_true (r.iothub);
  https_route_clear (&r);

  https_route_parse ("/devices/d1/messages/devicebound/lock-1/abandon", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NOT_IMPLEMENTED);
  https_route_clear (&r);

  https_route_parse ("/devices/d1/files/notifications", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NOT_IMPLEMENTED);
  g_assert_cmpstr (r.feature, ==, "file upload");
  https_route_clear (&r);

  https_route_parse ("/twins/d1/methods", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NOT_IMPLEMENTED);
  g_assert_cmpstr (r.feature, ==, "direct methods");
  https_route_clear (&r);

  https_route_parse ("/twins/d1", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NOT_IMPLEMENTED);
  g_assert_cmpstr (r.feature, ==, "device twins");
  https_route_clear (&r);

  https_route_parse ("/devices/d1/whatever", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NONE);
  g_assert_true (r.iothub);
  https_route_clear (&r);
}

static void
test_route_stream_paths (void)
{
  HttpsRoute r;

  https_route_parse ("/orders", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_STREAM);
  g_assert_cmpstr (r.stream, ==, "orders");
  g_assert_false (r.iothub);
  https_route_clear (&r);

  https_route_parse ("/orders/Messages", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_STREAM_SEND);
  g_assert_cmpint (r.partition, ==, -1);
  https_route_clear (&r);

  https_route_parse ("/orders/Partitions/3/messages", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_STREAM_PARTITION);
  g_assert_cmpint (r.partition, ==, 3);
  g_assert_true (https_route_allows (&r, "GET"));
  g_assert_true (https_route_allows (&r, "POST"));
  https_route_clear (&r);

  https_route_parse ("/orders/partitions/-1/messages", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NONE);
  https_route_clear (&r);

  https_route_parse ("/orders/partitions/x/messages", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NONE);
  https_route_clear (&r);

  https_route_parse ("/orders/ConsumerGroups/g1/offsets", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_GROUP_OFFSETS);
  g_assert_cmpstr (r.group, ==, "g1");
  https_route_clear (&r);

  https_route_parse ("/orders/nothing", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NONE);
  https_route_clear (&r);
}

static void
test_route_reserved (void)
{
  const char *reserved[] = { "/healthz/x", "/metrics/x", "/messages", "/jobs/1", "/files",
                             "/$iothub/websocket", "/_private", "/$x" };
  HttpsRoute r;

  for (guint i = 0; i < G_N_ELEMENTS (reserved); i++)
    {
      https_route_parse (reserved[i], &r);
      g_assert_null (r.stream);
      g_assert_cmpint (r.kind, !=, HTTPS_ROUTE_STREAM);
      https_route_clear (&r);
    }
  https_route_parse ("/healthz", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_HEALTHZ);
  https_route_clear (&r);
  https_route_parse ("/METRICS", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_METRICS);
  https_route_clear (&r);
  https_route_parse ("/", &r);
  g_assert_cmpint (r.kind, ==, HTTPS_ROUTE_NONE);
  https_route_clear (&r);
}

static void
test_parse_int (void)
{
  gint64 v = 7;

  g_assert_true (https_parse_int ("0", 0, 10, &v));
  g_assert_cmpint (v, ==, 0);
  g_assert_true (https_parse_int ("9223372036854775807", 0, G_MAXINT64, &v));
  g_assert_cmpint (v, ==, G_MAXINT64);
  g_assert_true (https_parse_int ("-5", -10, 10, &v));
  g_assert_cmpint (v, ==, -5);
  g_assert_false (https_parse_int ("-5", 0, 10, &v));
  g_assert_false (https_parse_int ("11", 0, 10, &v));
  g_assert_false (https_parse_int ("", 0, 10, &v));
  g_assert_false (https_parse_int ("1x", 0, 10, &v));
  g_assert_false (https_parse_int (" 1", 0, 10, &v));
  g_assert_false (https_parse_int ("99999999999999999999", 0, G_MAXINT64, &v));
  g_assert_false (https_parse_int ("-", -10, 10, &v));
}

/* --- JSON out --- */

static void
test_format_time (void)
{
  char buf[32];

  https_format_time (0, buf);
  g_assert_cmpstr (buf, ==, "1970-01-01T00:00:00.000Z");
  https_format_time (1714564800123, buf);
  g_assert_cmpstr (buf, ==, "2024-05-01T12:00:00.123Z");
  https_format_time (-1, buf);
  g_assert_cmpstr (buf, ==, "1969-12-31T23:59:59.999Z");
}

static void
test_json_string (void)
{
  GString *out = g_string_new (NULL);

  https_json_append_string (out, "a\"b\\c\n\x01", -1);
  g_assert_cmpstr (out->str, ==, "\"a\\\"b\\\\c\\n\\u0001\"");
  g_string_truncate (out, 0);
  https_json_append_string (out, "x\0y", 3);
  g_assert_cmpstr (out->str, ==, "\"x\\u0000y\"");
  g_string_truncate (out, 0);
  https_json_append_string (out, "caf\xc3\xa9", -1);
  g_assert_cmpstr (out->str, ==, "\"caf\xc3\xa9\"");
  g_string_truncate (out, 0);
  /* Invalid UTF-8 never reaches the output. */
  https_json_append_string (out, "a\xff", -1);
  g_assert_true (g_utf8_validate (out->str, -1, NULL));
  g_assert_true (g_str_has_prefix (out->str, "\"a"));
  g_string_free (out, TRUE);
}

static void
test_json_record (void)
{
  SluiceHeaderView headers[] = {
    { (const guint8 *) "temp", 4, (const guint8 *) "21", 2 },
    { (const guint8 *) "nothing", 7, NULL, 0 },
  };
  SluiceRecordView rec = { 0 };
  static const guint8 binary[] = { 0x00, 0xff, 0x10 };
  GString *out = g_string_new (NULL);

  rec.offset = 42;
  rec.timestamp = 1714564800123;
  rec.key = (const guint8 *) "dev-1";
  rec.key_len = 5;
  rec.value = (const guint8 *) "hello \"world\"";
  rec.value_len = strlen ((const char *) rec.value);
  rec.n_headers = G_N_ELEMENTS (headers);
  rec.headers = headers;
  https_json_append_record (out, &rec);
  g_assert_cmpstr (out->str, ==,
                   "{\"offset\":42,\"enqueuedTime\":\"2024-05-01T12:00:00.123Z\","
                   "\"key\":\"dev-1\",\"properties\":{\"temp\":\"21\",\"nothing\":null},"
                   "\"body\":\"hello \\\"world\\\"\"}");

  g_string_truncate (out, 0);
  rec.key = NULL;
  rec.key_len = 0;
  rec.value = binary;
  rec.value_len = sizeof binary;
  rec.n_headers = 0;
  https_json_append_record (out, &rec);
  g_assert_cmpstr (out->str, ==,
                   "{\"offset\":42,\"enqueuedTime\":\"2024-05-01T12:00:00.123Z\","
                   "\"key\":null,\"properties\":{},"
                   "\"body\":\"AP8Q\",\"bodyEncoding\":\"base64\"}");
  g_string_free (out, TRUE);
}

/* --- headers and JSON in --- */

static void
test_device_headers (void)
{
  gboolean app;

  g_assert_cmpstr (https_device_header_name ("iothub-app-temp", &app), ==, "temp");
  g_assert_true (app);
  g_assert_cmpstr (https_device_header_name ("IoTHub-App-Temp", &app), ==, "Temp");
  g_assert_true (app);
  g_assert_null (https_device_header_name ("iothub-app-", &app));
  g_assert_cmpstr (https_device_header_name ("iothub-MessageId", &app), ==, "message-id");
  g_assert_false (app);
  g_assert_cmpstr (https_device_header_name ("iothub-correlationid", &app), ==,
                   "correlation-id");
  g_assert_cmpstr (https_device_header_name ("Content-Type", &app), ==, "content-type");
  g_assert_cmpstr (https_device_header_name ("content-encoding", &app), ==,
                   "content-encoding");
  g_assert_null (https_device_header_name ("User-Agent", &app));
  g_assert_null (https_device_header_name ("Authorization", &app));
}

static const char *
header_of (HttpsSendMessage *m, const char *name)
{
  for (guint i = 0; i + 1 < m->headers->len; i += 2)
    if (g_str_equal (m->headers->pdata[i], name))
      return m->headers->pdata[i + 1];
  return NULL;
}

static void
test_send_batch (void)
{
  const char *json = "[{\"Body\":\"one\",\"UserProperties\":{\"a\":\"x\",\"n\":5,\"b\":true},"
                     "\"BrokerProperties\":{\"PartitionKey\":\"k1\",\"MessageId\":\"m1\"}},"
                     "{\"Body\":{\"t\":1}},{}]";
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) batch = https_parse_send_batch (json, strlen (json), &error);
  HttpsSendMessage *m;

  g_assert_no_error (error);
  g_assert_nonnull (batch);
  g_assert_cmpuint (batch->len, ==, 3);
  m = batch->pdata[0];
  g_assert_cmpmem (g_bytes_get_data (m->body, NULL), g_bytes_get_size (m->body), "one", 3);
  g_assert_cmpstr (m->partition_key, ==, "k1");
  g_assert_cmpstr (header_of (m, "a"), ==, "x");
  g_assert_cmpstr (header_of (m, "n"), ==, "5");
  g_assert_cmpstr (header_of (m, "b"), ==, "true");
  g_assert_cmpstr (header_of (m, "message-id"), ==, "m1");
  m = batch->pdata[1];
  g_assert_cmpmem (g_bytes_get_data (m->body, NULL), g_bytes_get_size (m->body), "{\"t\":1}", 7);
  g_assert_null (m->partition_key);
  m = batch->pdata[2];
  g_assert_cmpuint (g_bytes_get_size (m->body), ==, 0);
}

static void
test_send_batch_bad (void)
{
  const char *bad[] = { "", "{", "{}", "[]", "[1]", "[{\"UserProperties\":[]}]",
                        "[{\"BrokerProperties\":{\"PartitionKey\":5}}]" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) batch = https_parse_send_batch (bad[i], strlen (bad[i]), &error);

      g_assert_null (batch);
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    }
}

static void
test_offsets (void)
{
  const char *json = "[{\"partition\":0,\"offset\":5},{\"partition\":3,\"offset\":0}]";
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) offsets = https_parse_offsets (json, strlen (json), &error);
  g_autofree char *back = NULL;
  const char *bad[] = { "[]", "{}", "[{\"partition\":0}]", "[{\"partition\":-1,\"offset\":1}]",
                        "[{\"partition\":0,\"offset\":-1}]", "[{\"partition\":\"0\",\"offset\":1}]",
                        "nope" };

  g_assert_no_error (error);
  g_assert_cmpuint (offsets->len, ==, 2);
  g_assert_cmpint (g_array_index (offsets, SluiceGroupOffset, 1).partition, ==, 3);
  g_assert_cmpint (g_array_index (offsets, SluiceGroupOffset, 0).offset, ==, 5);
  back = https_offsets_to_json (offsets);
  g_assert_cmpstr (back, ==, json);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (GArray) none = https_parse_offsets (bad[i], strlen (bad[i]), &e);

      g_assert_null (none);
      g_assert_error (e, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    }
}

static void
test_group_names (void)
{
  g_autofree char *long_name = g_strnfill (256, 'g');

  g_assert_true (https_group_name_is_valid ("$Default"));
  g_assert_true (https_group_name_is_valid ("analytics-1"));
  g_assert_false (https_group_name_is_valid (""));
  g_assert_false (https_group_name_is_valid (NULL));
  g_assert_false (https_group_name_is_valid ("a b"));
  g_assert_false (https_group_name_is_valid ("a/b"));
  g_assert_false (https_group_name_is_valid (long_name));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/transport/https/route/device", test_route_device_paths);
  g_test_add_func ("/transport/https/route/stream", test_route_stream_paths);
  g_test_add_func ("/transport/https/route/reserved", test_route_reserved);
  g_test_add_func ("/transport/https/parse-int", test_parse_int);
  g_test_add_func ("/transport/https/json/time", test_format_time);
  g_test_add_func ("/transport/https/json/string", test_json_string);
  g_test_add_func ("/transport/https/json/record", test_json_record);
  g_test_add_func ("/transport/https/headers/device", test_device_headers);
  g_test_add_func ("/transport/https/send/batch", test_send_batch);
  g_test_add_func ("/transport/https/send/batch-bad", test_send_batch_bad);
  g_test_add_func ("/transport/https/offsets", test_offsets);
  g_test_add_func ("/transport/https/group-names", test_group_names);
  return g_test_run ();
}
