/* The MQTT codec against $SLUICE_VECTORS/mqtt, bytes recorded between real
 * clients (mosquitto_pub / mosquitto_sub 2.0.11, paho-mqtt 1.6.1) and
 * mosquitto 2.0.11:
 *  - every c2s.bin / s2c.bin decodes (server side / client side) into
 *    exactly the packets of index.json at the listed offsets, whole, in the
 *    recorded recv() chunks and one byte at a time; each packet encodes back
 *    to the same bytes;
 *  - every hand-written malformed case is refused the way mosquitto refused
 *    it: the codec's error and reply, played as a server would, give the
 *    same packets (CONNACK code, DISCONNECT reason) and the close.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec.h"

#include <json-glib/json-glib.h>
#include <string.h>

static const char *vectors_dir;

static GBytes *
read_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, &error))
    g_error ("%s: %s", path, error->message);
  return g_bytes_new_take (data, len);
}

static JsonNode *
read_json (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  if (!json_parser_load_from_file (parser, path, &error))
    g_error ("%s: %s", path, error->message);
  return json_node_copy (json_parser_get_root (parser));
}

static GBytes *
hex_bytes (const char *hex)
{
  gsize n = strlen (hex) / 2;
  guint8 *out = g_malloc (n + 1);

  g_assert_cmpuint (strlen (hex) % 2, ==, 0);
  for (gsize i = 0; i < n; i++)
    out[i] = (guint8) (g_ascii_xdigit_value (hex[2 * i]) << 4
                       | g_ascii_xdigit_value (hex[2 * i + 1]));
  return g_bytes_new_take (out, n);
}

static gint64
member_int (JsonObject *o, const char *name)
{
  g_assert_true (json_object_has_member (o, name));
  return json_object_get_int_member (o, name);
}

/* The flags nibble of a packet as decoded, to compare with the index. */
static guint
packet_flags (const MqttPacket *p)
{
  switch (p->type)
    {
    case MQTT_PUBLISH:
      return (p->publish.dup ? 8 : 0) | p->publish.qos << 1 | (p->publish.retain ? 1 : 0);
    case MQTT_PUBREL:
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
      return 2;
    default:
      return 0;
    }
}

typedef struct {
  MqttPacketType type;
  gsize offset;
  gsize length;
} Seen;

/* Whole stream, through the caller-buffer API: checks every packet against
 * its index entry and its re-encoding against the recorded bytes. Returns
 * the packets seen. */
static GArray *
check_whole (const char *where, GBytes *stream, JsonArray *entries, MqttRole role,
             MqttVersion *version)
{
  g_autoptr (MqttDecoder) d = mqtt_decoder_new (role, 0);
  GArray *seen = g_array_new (FALSE, FALSE, sizeof (Seen));
  gsize len;
  const guint8 *data = g_bytes_get_data (stream, &len);
  gsize pos = 0;

  if (role == MQTT_ROLE_CLIENT)
    mqtt_decoder_set_version (d, *version);
  for (;;)
    {
      g_autoptr (MqttPacket) p = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GByteArray) again = g_byte_array_new ();
      gsize consumed = 0;
      MqttDecodeStatus st;
      JsonObject *e;
      Seen s;

      st = mqtt_decoder_decode (d, data + pos, len - pos, &consumed, &p, &error);
      if (st == MQTT_DECODE_ERROR)
        g_error ("%s at %" G_GSIZE_FORMAT ": %s", where, pos, error->message);
      if (st == MQTT_DECODE_NEED_MORE)
        break;
      g_assert_cmpuint (seen->len, <, json_array_get_length (entries));
      e = json_array_get_object_element (entries, seen->len);
      g_assert_cmpint (member_int (e, "offset"), ==, pos);
      g_assert_cmpint (member_int (e, "length"), ==, consumed);
      g_assert_cmpint (member_int (e, "type"), ==, p->type);
      g_assert_cmpint (member_int (e, "flags"), ==, packet_flags (p));
      {
        guint8 first;
        guint32 remaining;
        guint header;

        g_assert_true (mqtt_frame_peek (data + pos, consumed, &first, &remaining, &header, NULL));
        g_assert_cmpint (member_int (e, "remaining_length"), ==, remaining);
        g_assert_cmpuint (header + remaining, ==, consumed);
      }
      g_assert_cmpstr (json_object_get_string_member (e, "name"), ==,
                       mqtt_packet_type_name (p->type));
      if (p->type == MQTT_CONNECT)
        {
          g_assert_cmpstr (json_object_get_string_member (e, "protocol_name"), ==,
                           p->connect.protocol_name);
          g_assert_cmpint (member_int (e, "protocol_level"), ==, p->connect.protocol_level);
          *version = p->connect.protocol_level;
        }
      if (p->type == MQTT_PUBLISH)
        {
          g_assert_cmpstr (json_object_get_string_member (e, "topic"), ==, p->publish.topic);
          g_assert_cmpint (member_int (e, "qos"), ==, p->publish.qos);
          g_assert_cmpint (member_int (e, "retain"), ==, p->publish.retain);
          g_assert_cmpint (member_int (e, "dup"), ==, p->publish.dup);
        }
      /* Round trip: the same bytes as recorded. */
      g_assert_true (mqtt_packet_encode (p, *version, again, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (again->data, again->len, data + pos, consumed);

      s.type = p->type;
      s.offset = pos;
      s.length = consumed;
      g_array_append_val (seen, s);
      pos += consumed;
    }
  /* Every byte belongs to a packet, and every indexed packet was seen. */
  g_assert_cmpuint (pos, ==, len);
  g_assert_cmpuint (seen->len, ==, json_array_get_length (entries));
  return seen;
}

/* The same stream fed in pieces through the feeding API. `pieces` holds
 * the piece sizes; none means one byte at a time. */
static void
check_pieces (const char *where, GBytes *stream, GArray *pieces, MqttRole role,
              MqttVersion version, GArray *expected)
{
  g_autoptr (MqttDecoder) d = mqtt_decoder_new (role, 0);
  gsize len;
  const guint8 *data = g_bytes_get_data (stream, &len);
  gsize pos = 0, at = 0;
  guint n = 0;

  if (role == MQTT_ROLE_CLIENT)
    mqtt_decoder_set_version (d, version);
  for (guint i = 0; pos < len; i++)
    {
      gsize piece = pieces != NULL ? g_array_index (pieces, gsize, i) : 1;

      g_assert_cmpuint (pos + piece, <=, len);
      mqtt_decoder_feed (d, data + pos, piece);
      pos += piece;
      for (;;)
        {
          g_autoptr (MqttPacket) p = NULL;
          g_autoptr (GError) error = NULL;
          MqttDecodeStatus st = mqtt_decoder_next (d, &p, &error);
          const Seen *s;

          if (st == MQTT_DECODE_ERROR)
            g_error ("%s (%s) at %" G_GSIZE_FORMAT ": %s", where,
                     pieces != NULL ? "recorded chunks" : "byte by byte", at, error->message);
          if (st == MQTT_DECODE_NEED_MORE)
            break;
          g_assert_cmpuint (n, <, expected->len);
          s = &g_array_index (expected, Seen, n);
          g_assert_cmpint (p->type, ==, s->type);
          g_assert_cmpuint (at, ==, s->offset);
          at += s->length;
          /* A packet is returned as soon as its last byte is there. */
          g_assert_cmpuint (at, <=, pos);
          if (pieces == NULL)
            g_assert_cmpuint (at, ==, pos);
          n++;
        }
    }
  g_assert_cmpuint (n, ==, expected->len);
  g_assert_cmpuint (mqtt_decoder_get_buffered (d), ==, 0);
}

/* The recv() sizes of one direction, checked against the file's bytes. */
static GArray *
chunk_sizes (JsonNode *chunks, const char *dir, GBytes *stream)
{
  JsonArray *list = json_object_get_array_member (json_node_get_object (chunks), "chunks");
  GArray *sizes = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_autoptr (GByteArray) joined = g_byte_array_new ();

  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *c = json_array_get_object_element (list, i);
      g_autoptr (GBytes) b = NULL;
      gsize n;

      if (g_strcmp0 (json_object_get_string_member (c, "dir"), dir) != 0)
        continue;
      b = hex_bytes (json_object_get_string_member (c, "hex"));
      n = g_bytes_get_size (b);
      g_byte_array_append (joined, g_bytes_get_data (b, NULL), (guint) n);
      g_array_append_val (sizes, n);
    }
  g_assert_cmpmem (joined->data, joined->len, g_bytes_get_data (stream, NULL),
                   g_bytes_get_size (stream));
  return sizes;
}

static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

static GPtrArray *
conn_dirs (const char *scenario)
{
  g_autoptr (GDir) dir = g_dir_open (scenario, 0, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "conn-"))
      g_ptr_array_add (out, g_build_filename (scenario, name, NULL));
  g_ptr_array_sort (out, compare_paths);
  g_assert_cmpuint (out->len, >, 0);
  return out;
}

static void
test_scenario (gconstpointer data)
{
  const char *scenario = data;
  g_autoptr (GPtrArray) conns = conn_dirs (scenario);

  for (guint i = 0; i < conns->len; i++)
    {
      const char *conn = conns->pdata[i];
      g_autoptr (GBytes) c2s = read_file (conn, "c2s.bin");
      g_autoptr (GBytes) s2c = read_file (conn, "s2c.bin");
      g_autoptr (JsonNode) index = read_json (conn, "index.json");
      g_autoptr (JsonNode) chunks = read_json (conn, "chunks.json");
      JsonObject *idx = json_node_get_object (index);
      MqttVersion version = MQTT_VERSION_NONE;
      static const char *const dirs[] = { "c2s", "s2c" };

      g_test_message ("%s: %" G_GSIZE_FORMAT " bytes from the client, %" G_GSIZE_FORMAT
                      " from the server", conn, g_bytes_get_size (c2s),
                      g_bytes_get_size (s2c));
      for (guint k = 0; k < 2; k++)
        {
          GBytes *stream = k == 0 ? c2s : s2c;
          MqttRole role = k == 0 ? MQTT_ROLE_SERVER : MQTT_ROLE_CLIENT;
          g_autoptr (GArray) seen = NULL;
          g_autoptr (GArray) sizes = NULL;
          g_autofree char *where = g_strdup_printf ("%s/%s", conn, dirs[k]);

          seen = check_whole (where, stream, json_object_get_array_member (idx, dirs[k]), role,
                              &version);
          if (k == 0)
            {
              /* Every recorded client starts with CONNECT. */
              g_assert_cmpuint (seen->len, >, 0);
              g_assert_cmpint (g_array_index (seen, Seen, 0).type, ==, MQTT_CONNECT);
            }
          sizes = chunk_sizes (chunks, dirs[k], stream);
          check_pieces (where, stream, sizes, role, version, seen);
          check_pieces (where, stream, NULL, role, version, seen);
        }
    }
}

/* The malformed connections at the framing level: the packets index.json
 * lists are where the fixed headers say, and its error entries are what
 * the framing says (a remaining length past 4 bytes, a packet cut short).
 * Whether each packet is acceptable is the cases test's business. */
static void
test_malformed_framing (gconstpointer data)
{
  g_autoptr (GPtrArray) conns = conn_dirs (data);

  for (guint i = 0; i < conns->len; i++)
    {
      g_autoptr (GBytes) c2s = read_file (conns->pdata[i], "c2s.bin");
      g_autoptr (JsonNode) index = read_json (conns->pdata[i], "index.json");
      JsonArray *entries = json_object_get_array_member (json_node_get_object (index), "c2s");
      gsize len;
      const guint8 *bytes = g_bytes_get_data (c2s, &len);
      gsize pos = 0;

      for (guint k = 0; k < json_array_get_length (entries); k++)
        {
          JsonObject *e = json_array_get_object_element (entries, k);
          g_autoptr (GError) error = NULL;
          guint8 first;
          guint32 remaining;
          guint header;
          gboolean whole;

          g_assert_cmpint (member_int (e, "offset"), ==, pos);
          whole = mqtt_frame_peek (bytes + pos, len - pos, &first, &remaining, &header, &error);
          if (json_object_has_member (e, "error"))
            {
              g_test_message ("%s at %" G_GSIZE_FORMAT ": %s", (char *) conns->pdata[i], pos,
                              json_object_get_string_member (e, "error"));
              /* Either the length field is bad or the packet is cut short. */
              g_assert_true (!whole || header + (gsize) remaining > len - pos);
              if (!whole)
                g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_MALFORMED_PACKET);
              else
                g_assert_cmpint (member_int (e, "declared_remaining_length"), ==, remaining);
              pos = len;
              break;
            }
          g_assert_true (whole);
          g_assert_cmpint (member_int (e, "type"), ==, first >> 4);
          g_assert_cmpint (member_int (e, "flags"), ==, first & 0x0F);
          g_assert_cmpint (member_int (e, "remaining_length"), ==, remaining);
          g_assert_cmpint (member_int (e, "length"), ==, header + remaining);
          pos += header + remaining;
        }
      g_assert_cmpuint (pos, ==, len);
    }
}

/* One packet a server sends, as compared: type and code. */
typedef struct {
  guint8 type;
  guint8 code;
} Sent;

static char *
describe (GArray *sent, gboolean closed)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < sent->len; i++)
    {
      const Sent *p = &g_array_index (sent, Sent, i);

      g_string_append_printf (s, "%s 0x%02x, ", mqtt_packet_type_name (p->type), p->code);
    }
  g_string_append (s, closed ? "close" : "stay open");
  return g_string_free (s, FALSE);
}

static void
test_malformed_case (gconstpointer data)
{
  JsonObject *c = (JsonObject *) data;
  g_autoptr (GBytes) sent = hex_bytes (json_object_get_string_member (c, "sent_hex"));
  g_autoptr (GBytes) received = hex_bytes (json_object_get_string_member (c, "received_hex"));
  gboolean mosquitto_closed = json_object_get_boolean_member (c, "server_closed_within_2s");
  g_autoptr (MqttDecoder) server = mqtt_decoder_new (MQTT_ROLE_SERVER, 256 * 1024);
  g_autoptr (MqttDecoder) client = mqtt_decoder_new (MQTT_ROLE_CLIENT, 0);
  g_autoptr (GArray) ours = g_array_new (FALSE, FALSE, sizeof (Sent));
  g_autoptr (GArray) theirs = g_array_new (FALSE, FALSE, sizeof (Sent));
  g_autoptr (GByteArray) reply_bytes = g_byte_array_new ();
  g_autofree char *ours_text = NULL;
  g_autofree char *theirs_text = NULL;
  const guint8 *sent_data = g_bytes_get_data (sent, NULL);
  gboolean closed = FALSE;
  MqttVersion version = MQTT_VERSION_3_1_1;

  g_test_message ("%s: %s; mosquitto: %s", json_object_get_string_member (c, "name"),
                  json_object_get_string_member (c, "description"),
                  json_object_get_string_member (c, "expected"));

  /* Play the server: CONNACK 0 for an accepted CONNECT, close after
   * DISCONNECT or at end of input inside a packet, and on an error send
   * what the decoder says and close. */
  mqtt_decoder_feed (server, sent_data, g_bytes_get_size (sent));
  while (!closed)
    {
      g_autoptr (MqttPacket) p = NULL;
      g_autoptr (GError) error = NULL;
      MqttDecodeStatus st = mqtt_decoder_next (server, &p, &error);
      MqttErrorReply reply;
      Sent out;

      if (st == MQTT_DECODE_PACKET)
        {
          if (p->type == MQTT_CONNECT)
            {
              out.type = MQTT_CONNACK;
              out.code = 0;
              g_array_append_val (ours, out);
            }
          closed = p->type == MQTT_DISCONNECT;
          continue;
        }
      if (st == MQTT_DECODE_NEED_MORE)
        {
          /* The client half-closed: a partial packet cannot complete. */
          if (mqtt_decoder_get_buffered (server) > 0)
            g_test_message ("end of input inside a packet (%" G_GSIZE_FORMAT " bytes)",
                            mqtt_decoder_get_buffered (server));
          closed = mqtt_decoder_get_buffered (server) > 0;
          break;
        }
      g_test_message ("refused: %s (reason 0x%02x)", error->message, error->code);
      mqtt_decoder_get_error_reply (server, &reply);
      if (reply.kind != MQTT_REPLY_CLOSE)
        {
          out.type = reply.kind == MQTT_REPLY_CONNACK ? MQTT_CONNACK : MQTT_DISCONNECT;
          out.code = reply.code;
          g_array_append_val (ours, out);
          mqtt_error_reply_encode (&reply, reply_bytes);
        }
      closed = TRUE;
    }

  /* What mosquitto sent, decoded as its client would. */
  if (g_bytes_get_size (sent) > 8 && (sent_data[0] >> 4) == MQTT_CONNECT && sent_data[8] == 5)
    version = MQTT_VERSION_5;
  mqtt_decoder_set_version (client, version);
  mqtt_decoder_feed (client, g_bytes_get_data (received, NULL), g_bytes_get_size (received));
  for (;;)
    {
      g_autoptr (MqttPacket) p = NULL;
      g_autoptr (GError) error = NULL;
      MqttDecodeStatus st = mqtt_decoder_next (client, &p, &error);
      Sent in;

      g_assert_no_error (error);
      if (st != MQTT_DECODE_PACKET)
        break;
      in.type = (guint8) p->type;
      in.code = p->reason;
      g_array_append_val (theirs, in);
    }
  g_assert_cmpuint (mqtt_decoder_get_buffered (client), ==, 0);

  ours_text = describe (ours, closed);
  theirs_text = describe (theirs, mosquitto_closed);
  g_test_message ("sluice: %s; mosquitto: %s", ours_text, theirs_text);
  g_assert_cmpstr (ours_text, ==, theirs_text);
  /* The error reply itself is byte for byte what mosquitto sent last. */
  if (reply_bytes->len > 0)
    g_assert_cmpmem (reply_bytes->data, reply_bytes->len,
                     (const guint8 *) g_bytes_get_data (received, NULL)
                     + g_bytes_get_size (received) - reply_bytes->len,
                     reply_bytes->len);
}

static void
test_vectors_missing (void)
{
  g_test_fail_printf ("the MQTT test vectors are missing: set SLUICE_VECTORS to the "
                      "directory that holds mqtt/ (checked: %s)",
                      vectors_dir != NULL ? vectors_dir : "SLUICE_VECTORS not set");
}

int
main (int argc, char **argv)
{
  g_autofree char *mqtt = NULL;
  g_autoptr (JsonNode) cases = NULL;
  g_autoptr (GPtrArray) scenarios = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) dir = NULL;
  const char *name;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  vectors_dir = g_getenv ("SLUICE_VECTORS");
  if (vectors_dir != NULL)
    mqtt = g_build_filename (vectors_dir, "mqtt", NULL);
  if (mqtt == NULL || (dir = g_dir_open (mqtt, 0, NULL)) == NULL)
    {
      g_test_add_func ("/transport/mqtt/vectors/present", test_vectors_missing);
      return g_test_run ();
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (mqtt, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && strcmp (name, "malformed") != 0)
        g_ptr_array_add (scenarios, g_steal_pointer (&path));
    }
  g_ptr_array_sort (scenarios, compare_paths);
  /* 21 scenarios were recorded: 20 streams and the malformed cases. */
  if (scenarios->len < 20)
    {
      g_test_add_func ("/transport/mqtt/vectors/present", test_vectors_missing);
      return g_test_run ();
    }
  for (guint i = 0; i < scenarios->len; i++)
    {
      g_autofree char *base = g_path_get_basename (scenarios->pdata[i]);
      g_autofree char *path = g_strdup_printf ("/transport/mqtt/vectors/stream/%s", base);

      g_test_add_data_func (path, scenarios->pdata[i], test_scenario);
    }

  {
    g_autofree char *malformed = g_build_filename (mqtt, "malformed", NULL);
    JsonArray *list;

    cases = read_json (malformed, "cases.json");
    list = json_object_get_array_member (json_node_get_object (cases), "cases");
    g_assert_cmpuint (json_array_get_length (list), >=, 12);
    g_test_add_data_func_full ("/transport/mqtt/vectors/malformed/framing",
                               g_steal_pointer (&malformed), test_malformed_framing, g_free);
    for (guint i = 0; i < json_array_get_length (list); i++)
      {
        JsonObject *c = json_array_get_object_element (list, i);
        g_autofree char *path = g_strdup_printf ("/transport/mqtt/vectors/malformed/%s",
                                                 json_object_get_string_member (c, "name"));

        g_test_add_data_func (path, c, test_malformed_case);
      }
  }
  return g_test_run ();
}
