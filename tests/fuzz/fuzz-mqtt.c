/* libFuzzer target: the MQTT stream decoder (plugins/transport-mqtt).
 *
 * Input: one control byte, then the bytes a peer sends. Control bits:
 *   0x01  decode as a client (what a server sends) instead of as a server
 *   0x02  the client's version is 5 (else 3.1.1; a server learns it from
 *         CONNECT)
 *   0x3C  piece size - 1 for feeding (0: all at once)
 *   0x40  a 64-byte maximum packet size
 * The seed corpus (tests/fuzz/corpus/mqtt) is the recorded c2s.bin and
 * s2c.bin streams of the test vectors behind such a byte.
 *
 * The decoder must never read out of bounds, leak or hit undefined
 * behaviour; both its APIs (caller buffer, fed buffer) must agree; every
 * refusal carries a reason code a reply can be made of; and every packet it
 * accepts encodes to bytes that decode to a packet encoding to the same
 * bytes, no longer than the input (the encoder writes minimal lengths and
 * keeps property order and short forms, so equal length means equal bytes).
 *
 * Build and run: make fuzz && tests/fuzz/fuzz-mqtt tests/fuzz/corpus/mqtt
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec.h"

#include <string.h>

typedef struct {
  MqttPacketType type;
  gsize size;
} Got;

static void
check_packet (const MqttPacket *p, const guint8 *wire, gsize wire_len, MqttVersion version,
              MqttRole role)
{
  g_autoptr (GByteArray) first = g_byte_array_new ();
  g_autoptr (GByteArray) second = g_byte_array_new ();
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (MqttPacket) back = NULL;
  g_autoptr (GError) error = NULL;

  if (!mqtt_packet_encode (p, version, first, &error))
    g_error ("a decoded %s does not encode: %s", mqtt_packet_type_name (p->type),
             error->message);
  g_assert (first->len <= wire_len);
  if (first->len == wire_len)
    g_assert (memcmp (first->data, wire, wire_len) == 0);
  bytes = g_bytes_new (first->data, first->len);
  back = mqtt_packet_decode (bytes, version, role, &error);
  if (back == NULL)
    g_error ("an encoded %s does not decode: %s", mqtt_packet_type_name (p->type),
             error->message);
  g_assert (mqtt_packet_encode (back, version, second, NULL));
  g_assert (first->len == second->len && memcmp (first->data, second->data, first->len) == 0);
}

static void
check_error (MqttDecoder *d, const GError *error)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  MqttErrorReply reply;

  g_assert (error != NULL && error->domain == MQTT_CODEC_ERROR);
  g_assert (error->code >= 0x80 && error->code <= 0xA2);
  g_assert (mqtt_reason_name ((guint8) error->code) != NULL);
  g_assert (error->message != NULL && error->message[0] != '\0');
  mqtt_decoder_get_error_reply (d, &reply);
  mqtt_error_reply_encode (&reply, out);
  g_assert ((reply.kind == MQTT_REPLY_CLOSE) == (out->len == 0));
}

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (MqttDecoder) fed = NULL;
  g_autoptr (MqttDecoder) direct = NULL;
  g_autoptr (GArray) got = g_array_new (FALSE, FALSE, sizeof (Got));
  MqttRole role;
  MqttVersion version;
  gsize piece, max, pos = 0, offset = 0;
  guint n = 0;
  gint fed_error = 0, direct_error = 0;

  if (size < 1)
    return 0;
  role = (data[0] & 0x01) ? MQTT_ROLE_CLIENT : MQTT_ROLE_SERVER;
  version = (data[0] & 0x02) ? MQTT_VERSION_5 : MQTT_VERSION_3_1_1;
  piece = ((data[0] >> 2) & 0x0F);
  max = (data[0] & 0x40) ? 64 : 0;
  data++;
  size--;

  /* The caller-buffer API, as a transport's connection_input uses it. */
  direct = mqtt_decoder_new (role, max);
  if (role == MQTT_ROLE_CLIENT)
    mqtt_decoder_set_version (direct, version);
  for (;;)
    {
      g_autoptr (MqttPacket) p = NULL;
      g_autoptr (GError) error = NULL;
      gsize consumed = 0;
      MqttDecodeStatus st = mqtt_decoder_decode (direct, data + pos, size - pos, &consumed,
                                                 &p, &error);
      MqttVersion v;
      Got g;

      if (st == MQTT_DECODE_NEED_MORE)
        {
          g_assert (error == NULL && p == NULL && consumed == 0);
          break;
        }
      if (st == MQTT_DECODE_ERROR)
        {
          g_assert (p == NULL && consumed == 0);
          check_error (direct, error);
          direct_error = error->code;
          break;
        }
      g_assert (p != NULL && consumed > 0 && consumed <= size - pos);
      if (max != 0)
        g_assert (consumed <= max);
      v = p->type == MQTT_CONNECT ? p->connect.protocol_level : mqtt_decoder_get_version (direct);
      check_packet (p, data + pos, consumed, v, role);
      g.type = p->type;
      g.size = consumed;
      g_array_append_val (got, g);
      pos += consumed;
    }

  /* The feeding API, in pieces: the same packets and the same error. */
  fed = mqtt_decoder_new (role, max);
  if (role == MQTT_ROLE_CLIENT)
    mqtt_decoder_set_version (fed, version);
  while (offset < size && fed_error == 0)
    {
      gsize len = piece == 0 ? size : MIN (piece, size - offset);

      mqtt_decoder_feed (fed, data + offset, len);
      offset += len;
      for (;;)
        {
          g_autoptr (MqttPacket) p = NULL;
          g_autoptr (GError) error = NULL;
          MqttDecodeStatus st = mqtt_decoder_next (fed, &p, &error);

          if (st == MQTT_DECODE_NEED_MORE)
            break;
          if (st == MQTT_DECODE_ERROR)
            {
              check_error (fed, error);
              fed_error = error->code;
              break;
            }
          g_assert (n < got->len);
          g_assert (g_array_index (got, Got, n).type == p->type);
          n++;
        }
    }
  g_assert (n == got->len);
  g_assert (fed_error == direct_error);
  if (fed_error == 0)
    g_assert (mqtt_decoder_get_buffered (fed) == size - pos);
  return 0;
}
