/* Unit tests of the MQTT codec's refusals: packets of every type and both
 * versions that the standards refuse, each with the reason code it must
 * carry; and the stream decoder: packet order, the size limit, remaining
 * lengths, partial input, the replies to send.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec.h"
#include "mqtt-test-util.h"

#include <string.h>

static const MqttVersion versions[] = { MQTT_VERSION_3_1_1, MQTT_VERSION_5 };

static void
assert_bytes_str (GBytes *b, const char *expected)
{
  g_assert_nonnull (b);
  g_assert_cmpmem (g_bytes_get_data (b, NULL), g_bytes_get_size (b), expected,
                   strlen (expected));
}

typedef struct {
  const char *name;
  MqttVersion version;           /* NONE: CONNECT brings its own */
  MqttRole role;
  const char *hex;
  guint8 reason;
} Refusal;

#define V3 MQTT_VERSION_3_1_1
#define V5 MQTT_VERSION_5
#define SRV MQTT_ROLE_SERVER
#define CLI MQTT_ROLE_CLIENT
#define C3 "00044d5154540402003c"   /* "MQTT", level 4, clean, keepalive 60 */
#define C5 "00044d5154540502003c"   /* "MQTT", level 5, clean, keepalive 60 */

static const Refusal refusals[] = {
  /* CONNECT */
  { "connect/reserved-flag", 0, SRV, "10LL00044d5154540403001e00036e6567", 0x81 },
  { "connect/protocol-name", 0, SRV, "10LL00044d5154580402001e00036e6567", 0x82 },
  { "connect/mqtt-3.1", 0, SRV, "10LL00064d51497364700302001e00036e6567", 0x84 },
  { "connect/level-7", 0, SRV, "10LL00044d5154540702001e00036e6567", 0x84 },
  { "connect/level-3-named-mqtt", 0, SRV, "10LL00044d5154540302001e00036e6567", 0x84 },
  { "connect/will-qos-3", 0, SRV, "10LL00044d515454041e001e00036e65670001740003776f77", 0x81 },
  { "connect/will-retain-no-will", 0, SRV, "10LL00044d5154540422001e00036e6567", 0x81 },
  { "connect/will-qos-no-will", 0, SRV, "10LL00044d5154540408001e00036e6567", 0x81 },
  { "connect/will-topic-wildcard", 0, SRV, "10LL00044d5154540406001e00036e65670001230000", 0x90 },
  { "connect/v3-password-no-user", 0, SRV, "10LL00044d5154540442001e00036e656700017a", 0x81 },
  { "connect/truncated-body", 0, SRV, "100a00044d5154540402001e", 0x81 },
  { "connect/trailing-bytes", 0, SRV, "10LL00044d5154540402001e00036e6567ff", 0x81 },
  { "connect/client-id-bad-utf8", 0, SRV, "10LL" C3 "0002c328", 0x81 },
  { "connect/client-id-nul", 0, SRV, "10LL" C3 "00026100", 0x81 },
  { "connect/client-id-surrogate", 0, SRV, "10LL" C3 "0003eda080", 0x81 },
  { "connect/client-id-overlong", 0, SRV, "10LL" C3 "0002c0af", 0x81 },
  { "connect/client-id-past-end", 0, SRV, "10LL" C3 "00056162", 0x81 },
  { "connect/user-bad-utf8", 0, SRV, "10LL00044d5154540482003c" "000161" "0001ff", 0x81 },
  { "connect/v5-duplicate-property", 0, SRV, "10LL00044d5154540502001e0a110000000a110000000a00036e6567", 0x82 },
  { "connect/v5-topic-alias", 0, SRV, "10LL" C5 "0323000100016e", 0x81 },
  { "connect/v5-unknown-property", 0, SRV, "10LL" C5 "027f0000016e", 0x81 },
  { "connect/v5-property-length-past-end", 0, SRV, "10LL" C5 "0911000000016e", 0x81 },
  { "connect/v5-property-varint-5-bytes", 0, SRV, "10LL" C5 "ffffffff7f00016e", 0x81 },
  { "connect/v5-receive-maximum-0", 0, SRV, "10LL" C5 "0321000000016e", 0x82 },
  { "connect/v5-max-packet-size-0", 0, SRV, "10LL" C5 "052700000000" "00016e", 0x82 },
  { "connect/v5-problem-info-2", 0, SRV, "10LL" C5 "021702" "00016e", 0x82 },
  { "connect/v5-auth-data-no-method", 0, SRV, "10LL" C5 "03160000" "00016e", 0x82 },
  { "connect/v5-will-session-expiry", 0, SRV, "10LL00044d5154540506003c0000016e" "0511000000010001740000", 0x81 },
  { "connect/v5-user-property-bad-utf8", 0, SRV, "10LL" C5 "07260001ff00016100016e", 0x81 },
  /* CONNACK (as decoded by a client) */
  { "connack/v3-reserved-flags", V3, CLI, "20LL0200", 0x81 },
  { "connack/v3-return-code-6", V3, CLI, "20LL0006", 0x82 },
  { "connack/v3-session-present-refused", V3, CLI, "20LL0105", 0x82 },
  { "connack/v3-too-long", V3, CLI, "20LL000000", 0x81 },
  { "connack/v5-reason-0x10", V5, CLI, "20LL001000", 0x82 },
  { "connack/v5-session-present-refused", V5, CLI, "20LL018700", 0x82 },
  { "connack/v5-will-delay", V5, CLI, "20LL0000051800000001", 0x81 },
  { "connack/v5-no-properties", V5, CLI, "20LL0000", 0x81 },
  { "connack/from-client", V3, SRV, "20LL0000", 0x82 },
  /* PUBLISH */
  { "publish/qos-3", V3, SRV, "36LL0003742f7870", 0x81 },
  { "publish/v5-qos-3", V5, SRV, "36LL000374 2f78 0001 00", 0x81 },
  { "publish/dup-qos-0", V3, SRV, "38LL0003742f7870", 0x81 },
  { "publish/wildcard-plus", V3, SRV, "30LL0003742f2b70", 0x90 },
  { "publish/wildcard-hash", V5, SRV, "30LL0003742f230070", 0x90 },
  { "publish/empty-topic-v3", V3, SRV, "30LL000070", 0x82 },
  { "publish/empty-topic-no-alias", V5, SRV, "30LL00000070", 0x82 },
  { "publish/packet-id-0", V3, SRV, "32LL0003742f7800 00", 0x82 },
  { "publish/topic-past-end", V3, SRV, "30LL0009742f", 0x81 },
  { "publish/no-packet-id", V3, SRV, "32LL0002742f", 0x81 },
  { "publish/v5-topic-alias-0", V5, SRV, "30LL00017403230000", 0x94 },
  { "publish/v5-subscription-id-from-client", V5, SRV, "30LL00017402 0b01", 0x82 },
  { "publish/v5-subscription-id-0", V5, CLI, "30LL00017402 0b00", 0x82 },
  { "publish/v5-response-topic-wildcard", V5, SRV, "30LL000174040800012361", 0x82 },
  { "publish/v5-response-topic-plus", V5, SRV, "30LL00017405080002612b", 0x82 },
  { "publish/v5-payload-format-2", V5, SRV, "30LL0001740201 02", 0x82 },
  { "publish/v5-session-expiry", V5, SRV, "30LL000174051100000001", 0x81 },
  { "publish/v5-duplicate-content-type", V5, SRV, "30LL0001740603000003000061", 0x82 },
  /* PUBACK family */
  { "puback/bad-flags", V3, SRV, "41LL0001", 0x81 },
  { "puback/packet-id-0", V3, SRV, "40LL0000", 0x82 },
  { "puback/too-short", V3, SRV, "40LL00", 0x81 },
  { "puback/v3-reason", V3, SRV, "40LL000100", 0x81 },
  { "puback/v5-bad-reason", V5, SRV, "40LL000105", 0x82 },
  { "puback/v5-property-not-allowed", V5, SRV, "40LL00018003230001", 0x81 },
  { "pubrec/v5-reason-0x92", V5, CLI, "50LL000192", 0x82 },
  { "pubrel/flags-0", V3, SRV, "60LL0001", 0x81 },
  { "pubrel/v5-reason-0x10", V5, SRV, "62LL000110", 0x82 },
  { "pubcomp/flags-2", V5, CLI, "72LL0001", 0x81 },
  /* SUBSCRIBE */
  { "subscribe/flags-0", V3, SRV, "80LL00010003742f7801", 0x81 },
  { "subscribe/empty", V3, SRV, "82LL0001", 0x82 },
  { "subscribe/v5-empty", V5, SRV, "82LL000100", 0x82 },
  { "subscribe/qos-3", V3, SRV, "82LL00010003742f7803", 0x81 },
  { "subscribe/v5-qos-3", V5, SRV, "82LL0001000003742f7803", 0x81 },
  { "subscribe/v3-option-bits", V3, SRV, "82LL00010003742f7804", 0x81 },
  { "subscribe/v5-reserved-bits", V5, SRV, "82LL0001000003742f7840", 0x81 },
  { "subscribe/v5-retain-handling-3", V5, SRV, "82LL0001000003742f7830", 0x82 },
  { "subscribe/v5-no-local-shared", V5, SRV, "82LL000100000a2473686172652f672f7404", 0x82 },
  { "subscribe/empty-filter", V3, SRV, "82LL00010000 01", 0x81 },
  { "subscribe/no-options", V3, SRV, "82LL00010003742f78", 0x81 },
  { "subscribe/packet-id-0", V3, SRV, "82LL00000003742f7801", 0x82 },
  { "subscribe/v5-subscription-id-0", V5, SRV, "82LL000102 0b00 0003742f7801", 0x82 },
  { "subscribe/v5-two-subscription-ids", V5, SRV, "82LL000104 0b01 0b02 0003742f7801", 0x82 },
  { "subscribe/v5-reason-string", V5, SRV, "82LL000104 1f0001 61 0003742f7801", 0x81 },
  /* SUBACK */
  { "suback/v3-code-3", V3, CLI, "90LL000103", 0x82 },
  { "suback/v3-empty", V3, CLI, "90LL0001", 0x82 },
  { "suback/v5-code-0x11", V5, CLI, "90LL00010011", 0x82 },
  { "suback/v5-empty", V5, CLI, "90LL000100", 0x82 },
  { "suback/from-client", V3, SRV, "90LL000100", 0x82 },
  /* UNSUBSCRIBE, UNSUBACK */
  { "unsubscribe/flags-0", V3, SRV, "a0LL00010003742f78", 0x81 },
  { "unsubscribe/empty", V3, SRV, "a2LL0001", 0x82 },
  { "unsubscribe/empty-filter", V5, SRV, "a2LL000100 0000", 0x81 },
  { "unsubscribe/bad-utf8", V3, SRV, "a2LL0001 0001ff", 0x81 },
  { "unsuback/v3-too-long", V3, CLI, "b0LL000100", 0x81 },
  { "unsuback/v5-no-reasons", V5, CLI, "b0LL000100", 0x82 },
  { "unsuback/v5-code-0x01", V5, CLI, "b0LL00010001", 0x82 },
  /* PINGREQ, PINGRESP */
  { "pingreq/remaining-1", V3, SRV, "c0LL00", 0x81 },
  { "pingreq/flags", V5, SRV, "c1LL", 0x81 },
  { "pingresp/from-client", V3, SRV, "d0LL", 0x82 },
  { "pingreq/from-server", V3, CLI, "c0LL", 0x82 },
  /* DISCONNECT */
  { "disconnect/v3-remaining-1", V3, SRV, "e0LL00", 0x81 },
  { "disconnect/flags", V3, SRV, "e1LL", 0x81 },
  { "disconnect/v5-bad-reason", V5, SRV, "e0LL05", 0x82 },
  { "disconnect/v5-property-not-allowed", V5, SRV, "e0LL0003 230001", 0x81 },
  { "disconnect/v5-property-length-past-end", V5, SRV, "e003000500", 0x81 },
  { "disconnect/v3-from-server", V3, CLI, "e0LL", 0x82 },
  /* AUTH */
  { "auth/in-3.1.1", V3, SRV, "f0LL", 0x81 },
  { "auth/v5-bad-reason", V5, SRV, "f0LL01", 0x82 },
  { "auth/v5-no-method", V5, SRV, "f0LL1800", 0x82 },
  { "auth/v5-data-no-method", V5, SRV, "f0LL18041600 0161", 0x82 },
  { "auth/v5-flags", V5, SRV, "f1LL", 0x81 },
  /* Framing */
  { "reserved-type-0", V3, SRV, "00LL", 0x81 },
  { "remaining-length-mismatch", V3, SRV, "c00000", 0x81 },
};

static void
test_refusal (gconstpointer data)
{
  const Refusal *c = data;
  g_autoptr (GBytes) in = hex_bytes (c->hex);
  g_autoptr (GError) error = NULL;
  g_autoptr (MqttPacket) p = NULL;

  p = mqtt_packet_decode (in, c->version, c->role, &error);
  g_assert_null (p);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", c->name, error->message);
  g_assert_true (error->domain == MQTT_CODEC_ERROR);
  if (error->code != c->reason)
    g_error ("%s: reason 0x%02x (%s), expected 0x%02x: %s", c->name, error->code,
             mqtt_reason_name ((guint8) error->code), c->reason, error->message);
  /* Every message names the packet it is about. */
  g_assert_nonnull (strchr (error->message, ':'));
}

/* ------------------------------------------------------------------ */
/* The stream decoder                                                  */

static const char connect_v3[] = "100f00044d5154540402001e00036e6567";
static const char connect_v5[] = "101000044d5154540502001e0000036e6567";

static MqttDecodeStatus
feed_hex (MqttDecoder *d, const char *hex, MqttPacket **p, GError **error)
{
  g_autoptr (GBytes) b = hex_bytes (hex);

  mqtt_decoder_feed (d, g_bytes_get_data (b, NULL), g_bytes_get_size (b));
  return mqtt_decoder_next (d, p, error);
}

static void
test_decoder_order (void)
{
  MqttErrorReply reply;

  /* A PUBLISH first: refused at its first byte; close. */
  {
    g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_SERVER, 0);
    g_autoptr (GError) error = NULL;
    MqttPacket *p = NULL;
    gsize consumed = 99;
    const guint8 one = 0x30;

    g_assert_cmpint (mqtt_decoder_decode (d, &one, 1, &consumed, &p, &error), ==,
                     MQTT_DECODE_ERROR);
    g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PROTOCOL_ERROR);
    g_assert_cmpuint (consumed, ==, 0);
    g_assert_null (p);
    mqtt_decoder_get_error_reply (d, &reply);
    g_assert_cmpint (reply.kind, ==, MQTT_REPLY_CLOSE);
  }
  /* A second CONNECT: 3.1.1 closes, v5 answers DISCONNECT 0x82. */
  for (guint v = 0; v < 2; v++)
    {
      g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_SERVER, 0);
      g_autoptr (MqttPacket) p = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GByteArray) out = g_byte_array_new ();
      const char *connect = v == 0 ? connect_v3 : connect_v5;
      MqttPacket *again = NULL;

      g_assert_cmpint (mqtt_decoder_get_version (d), ==, MQTT_VERSION_NONE);
      g_assert_cmpint (feed_hex (d, connect, &p, &error), ==, MQTT_DECODE_PACKET);
      g_assert_cmpint (p->type, ==, MQTT_CONNECT);
      g_assert_cmpint (mqtt_decoder_get_version (d), ==, versions[v]);
      g_assert_cmpint (feed_hex (d, connect, &again, &error), ==, MQTT_DECODE_ERROR);
      g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PROTOCOL_ERROR);
      mqtt_decoder_get_error_reply (d, &reply);
      g_assert_cmpint (reply.kind, ==, v == 0 ? MQTT_REPLY_CLOSE : MQTT_REPLY_DISCONNECT);
      mqtt_error_reply_encode (&reply, out);
      g_assert_cmpuint (out->len, ==, v == 0 ? 0 : 3);
      if (v == 1)
        g_assert_cmpmem (out->data, out->len, "\xe0\x01\x82", 3);

      /* Sticky: good bytes after the error are refused too. */
      g_clear_error (&error);
      g_assert_cmpint (feed_hex (d, "c000", &again, &error), ==, MQTT_DECODE_ERROR);
      g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PROTOCOL_ERROR);
      g_assert_cmpuint (mqtt_decoder_get_buffered (d), ==, 0);
    }
  /* A client: CONNACK first, one only; v5 AUTH may come before it. */
  {
    g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_CLIENT, 0);
    g_autoptr (GError) error = NULL;
    MqttPacket *p = NULL;

    g_assert_cmpint (feed_hex (d, "20020000", &p, &error), ==, MQTT_DECODE_ERROR);
    g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PROTOCOL_ERROR);
  }
  {
    g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_CLIENT, 0);
    g_autoptr (GError) error = NULL;
    MqttPacket *p = NULL;

    mqtt_decoder_set_version (d, MQTT_VERSION_3_1_1);
    g_assert_cmpint (feed_hex (d, "9003000100", &p, &error), ==, MQTT_DECODE_ERROR);
    g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PROTOCOL_ERROR);
  }
  {
    g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_CLIENT, 0);
    g_autoptr (GError) error = NULL;
    MqttPacket *p = NULL;

    mqtt_decoder_set_version (d, MQTT_VERSION_5);
    g_assert_cmpint (feed_hex (d, "f00f180d1500035341531600046461", &p, &error), ==,
                     MQTT_DECODE_NEED_MORE);
    g_assert_cmpint (feed_hex (d, "7461", &p, &error), ==, MQTT_DECODE_PACKET);
    g_assert_no_error (error);
    g_assert_cmpint (p->type, ==, MQTT_AUTH);
    assert_bytes_str (p->props.auth_data, "data");
    mqtt_packet_free (p);
  }
  {
    g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_CLIENT, 0);
    g_autoptr (GError) error = NULL;
    g_autoptr (MqttPacket) auth = NULL;
    g_autoptr (MqttPacket) connack = NULL;
    MqttPacket *p = NULL;

    mqtt_decoder_set_version (d, MQTT_VERSION_5);
    g_assert_cmpint (feed_hex (d, "f00e180c150003534153160003646174", &auth, &error), ==,
                     MQTT_DECODE_PACKET);
    g_assert_no_error (error);
    g_assert_cmpint (auth->type, ==, MQTT_AUTH);
    g_assert_cmpint (feed_hex (d, "2003000000", &connack, &error), ==, MQTT_DECODE_PACKET);
    g_assert_cmpint (feed_hex (d, "2003000000", &p, &error), ==, MQTT_DECODE_ERROR);
    g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PROTOCOL_ERROR);
    mqtt_decoder_get_error_reply (d, &reply);
    g_assert_cmpint (reply.kind, ==, MQTT_REPLY_DISCONNECT);
  }
}

static void
test_decoder_too_large (void)
{
  /* The limit is checked on the fixed header, before the body is there. */
  for (guint v = 0; v < 3; v++)
    {
      g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_SERVER, 64);
      g_autoptr (GError) error = NULL;
      g_autoptr (MqttPacket) connect = NULL;
      MqttPacket *p = NULL;
      MqttErrorReply reply;

      if (v > 0)
        g_assert_cmpint (feed_hex (d, v == 1 ? connect_v3 : connect_v5, &connect, &error), ==,
                         MQTT_DECODE_PACKET);
      /* 63 bytes pass (61 + 2 of header), 65 do not. */
      g_assert_cmpint (feed_hex (d, v == 0 ? "103d" : "303d", &p, &error), ==,
                       MQTT_DECODE_NEED_MORE);
      g_assert_cmpuint (mqtt_decoder_get_buffered (d), ==, 2);
      mqtt_decoder_set_max_packet_size (d, 62);
      g_assert_cmpint (mqtt_decoder_next (d, &p, &error), ==, MQTT_DECODE_ERROR);
      g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PACKET_TOO_LARGE);
      g_assert_null (p);
      mqtt_decoder_get_error_reply (d, &reply);
      g_assert_cmpint (reply.kind, ==, v == 2 ? MQTT_REPLY_DISCONNECT : MQTT_REPLY_CLOSE);
      g_assert_cmpuint (reply.code, ==, MQTT_RC_PACKET_TOO_LARGE);
      /* Nothing more is kept. */
      g_clear_error (&error);
      g_assert_cmpint (feed_hex (d, "00000000", &p, &error), ==, MQTT_DECODE_ERROR);
      g_assert_cmpuint (mqtt_decoder_get_buffered (d), ==, 0);
    }
  /* A CONNECT of the protocol's largest size is refused on its header. */
  {
    g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_SERVER, 256 * 1024);
    g_autoptr (GError) error = NULL;
    MqttPacket *p = NULL;

    g_assert_cmpint (feed_hex (d, "10ffffff7f", &p, &error), ==, MQTT_DECODE_ERROR);
    g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_PACKET_TOO_LARGE);
  }
}

static void
test_decoder_bad_length (void)
{
  /* Four continuation bytes: malformed once the 4th is there, without
   * waiting for a 5th. */
  g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_SERVER, 0);
  g_autoptr (GError) error = NULL;
  MqttPacket *p = NULL;
  MqttErrorReply reply;
  guint8 first;
  guint32 remaining;
  guint header;

  g_assert_cmpint (feed_hex (d, "10ffffff", &p, &error), ==, MQTT_DECODE_NEED_MORE);
  g_assert_cmpint (feed_hex (d, "ff", &p, &error), ==, MQTT_DECODE_ERROR);
  g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_MALFORMED_PACKET);
  mqtt_decoder_get_error_reply (d, &reply);
  g_assert_cmpint (reply.kind, ==, MQTT_REPLY_CLOSE);

  /* The largest 4-byte length and a non-minimal encoding are fine. */
  g_assert_true (mqtt_frame_peek ((const guint8 *) "\x30\xff\xff\xff\x7f", 5, &first,
                                  &remaining, &header, NULL));
  g_assert_cmpuint (remaining, ==, MQTT_MAX_REMAINING_LENGTH);
  g_assert_cmpuint (header, ==, 5);
  g_assert_true (mqtt_frame_peek ((const guint8 *) "\xc0\x80\x00", 3, &first, &remaining,
                                  &header, NULL));
  g_assert_cmpuint (remaining, ==, 0);
  g_assert_cmpuint (header, ==, 3);
  g_assert_cmpuint (first, ==, 0xc0);
  g_assert_false (mqtt_frame_peek ((const guint8 *) "\xc0", 1, &first, &remaining, &header,
                                   NULL));
}

static void
test_decoder_partial (void)
{
  /* Every prefix of a stream of packets is "need more" until a packet is
   * whole; the caller-buffer API and the feeding API agree. */
  g_autoptr (GBytes) stream = hex_bytes ("100f00044d5154540402001e00036e6567"
                                         "82080001 0003742f7801"
                                         "3206 0001 74 0001 58"
                                         "c000" "e000");
  gsize len;
  const guint8 *data = g_bytes_get_data (stream, &len);
  static const MqttPacketType expected[] = { MQTT_CONNECT, MQTT_SUBSCRIBE, MQTT_PUBLISH,
                                             MQTT_PINGREQ, MQTT_DISCONNECT };
  g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_SERVER, 0);
  g_autoptr (MqttDecoder) fed = mqtt_decoder_new (MQTT_ROLE_SERVER, 0);
  gsize start = 0;
  guint n = 0, n_fed = 0;

  for (gsize end = start + 1; end <= len; end++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (MqttPacket) p = NULL;
      gsize consumed;
      MqttDecodeStatus st = mqtt_decoder_decode (d, data + start, end - start, &consumed, &p,
                                                 &error);

      g_assert_no_error (error);
      if (st == MQTT_DECODE_PACKET)
        {
          g_assert_cmpint (p->type, ==, expected[n]);
          g_assert_cmpuint (consumed, ==, end - start);
          n++;
          start = end;
        }
      else
        {
          g_assert_cmpint (st, ==, MQTT_DECODE_NEED_MORE);
          g_assert_cmpuint (consumed, ==, 0);
        }

      mqtt_decoder_feed (fed, data + end - 1, 1);
      for (;;)
        {
          g_autoptr (MqttPacket) q = NULL;

          st = mqtt_decoder_next (fed, &q, &error);
          g_assert_no_error (error);
          if (st != MQTT_DECODE_PACKET)
            break;
          g_assert_cmpint (q->type, ==, expected[n_fed]);
          n_fed++;
        }
    }
  g_assert_cmpuint (n, ==, G_N_ELEMENTS (expected));
  g_assert_cmpuint (n_fed, ==, G_N_ELEMENTS (expected));
  g_assert_cmpuint (mqtt_decoder_get_buffered (fed), ==, 0);
}

static void
test_decoder_many (void)
{
  /* Thousands of packets through the feeding API: its buffer is compacted
   * as it goes (the start offset passes 4 KiB many times). */
  g_autoptr (MqttDecoder) d = mqtt_decoder_new (MQTT_ROLE_SERVER, 0);
  g_autoptr (GBytes) connect = hex_bytes (connect_v3);
  g_autoptr (GByteArray) chunk = g_byte_array_new ();
  g_autoptr (MqttPacket) first = NULL;
  guint n = 0;

  mqtt_decoder_feed (d, g_bytes_get_data (connect, NULL), g_bytes_get_size (connect));
  g_assert_cmpint (mqtt_decoder_next (d, &first, NULL), ==, MQTT_DECODE_PACKET);
  for (guint i = 0; i < 5000; i++)
    {
      g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_PUBLISH);

      p->publish.topic = g_strdup_printf ("t/%u", i);
      p->publish.qos = 1;
      p->packet_id = (guint16) (i + 1);
      g_assert_true (mqtt_packet_encode (p, MQTT_VERSION_3_1_1, chunk, NULL));
    }
  /* Fed in odd-sized pieces. */
  for (guint off = 0; off < chunk->len; off += 777)
    {
      mqtt_decoder_feed (d, chunk->data + off, MIN (777, chunk->len - off));
      for (;;)
        {
          g_autoptr (MqttPacket) p = NULL;
          g_autoptr (GError) error = NULL;
          g_autofree char *topic = NULL;

          if (mqtt_decoder_next (d, &p, &error) != MQTT_DECODE_PACKET)
            {
              g_assert_no_error (error);
              break;
            }
          topic = g_strdup_printf ("t/%u", n);
          g_assert_cmpstr (p->publish.topic, ==, topic);
          g_assert_cmpuint (p->packet_id, ==, n + 1);
          n++;
        }
    }
  g_assert_cmpuint (n, ==, 5000);
  g_assert_cmpuint (mqtt_decoder_get_buffered (d), ==, 0);
}

static void
test_error_replies (void)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  MqttErrorReply r;

  /* Protocol level: CONNACK 0x01 in the 3.1.1 format. */
  mqtt_error_reply_for (MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, MQTT_VERSION_NONE, FALSE, &r);
  g_assert_cmpint (r.kind, ==, MQTT_REPLY_CONNACK);
  mqtt_error_reply_encode (&r, out);
  g_assert_cmpmem (out->data, out->len, "\x20\x02\x00\x01", 4);
  /* Other CONNECT errors: close. */
  mqtt_error_reply_for (MQTT_RC_MALFORMED_PACKET, MQTT_VERSION_NONE, FALSE, &r);
  g_assert_cmpint (r.kind, ==, MQTT_REPLY_CLOSE);
  g_byte_array_set_size (out, 0);
  mqtt_error_reply_encode (&r, out);
  g_assert_cmpuint (out->len, ==, 0);
  /* After CONNECT: v5 DISCONNECT, 3.1.1 close. */
  mqtt_error_reply_for (MQTT_RC_TOPIC_ALIAS_INVALID, MQTT_VERSION_5, TRUE, &r);
  g_assert_cmpint (r.kind, ==, MQTT_REPLY_DISCONNECT);
  mqtt_error_reply_encode (&r, out);
  g_assert_cmpmem (out->data, out->len, "\xe0\x01\x94", 3);
  mqtt_error_reply_for (MQTT_RC_TOPIC_ALIAS_INVALID, MQTT_VERSION_3_1_1, TRUE, &r);
  g_assert_cmpint (r.kind, ==, MQTT_REPLY_CLOSE);
  /* A v5 CONNACK reply (the state machine's refusals use the same call). */
  r.kind = MQTT_REPLY_CONNACK;
  r.version = MQTT_VERSION_5;
  r.code = MQTT_RC_BAD_USERNAME_OR_PASSWORD;
  g_byte_array_set_size (out, 0);
  mqtt_error_reply_encode (&r, out);
  g_assert_cmpmem (out->data, out->len, "\x20\x03\x00\x86\x00", 5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (refusals); i++)
    {
      g_autofree char *path = g_strdup_printf ("/transport/mqtt/codec/refuse/%s",
                                               refusals[i].name);

      g_test_add_data_func (path, &refusals[i], test_refusal);
    }
  g_test_add_func ("/transport/mqtt/codec/decoder/order", test_decoder_order);
  g_test_add_func ("/transport/mqtt/codec/decoder/too-large", test_decoder_too_large);
  g_test_add_func ("/transport/mqtt/codec/decoder/bad-length", test_decoder_bad_length);
  g_test_add_func ("/transport/mqtt/codec/decoder/partial", test_decoder_partial);
  g_test_add_func ("/transport/mqtt/codec/decoder/many", test_decoder_many);
  g_test_add_func ("/transport/mqtt/codec/error-replies", test_error_replies);
  return g_test_run ();
}
