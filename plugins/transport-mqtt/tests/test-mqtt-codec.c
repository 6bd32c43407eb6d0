/* Unit tests of the MQTT packet codec: every packet type of both versions
 * built, encoded, decoded and encoded again to the same bytes; packets the
 * standards refuse, each with its reason code; the stream decoder's order
 * checks, size limit, partial input and replies.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec.h"

#include <string.h>

/* Hex to bytes; spaces are skipped, and "LL" as the second byte stands for
 * the remaining length of what follows (one byte). */
static GBytes *
hex_bytes (const char *hex)
{
  GByteArray *a = g_byte_array_new ();
  gboolean fill = FALSE;

  for (const char *p = hex; *p != '\0';)
    {
      guint8 b;

      if (*p == ' ')
        {
          p++;
          continue;
        }
      if (p[0] == 'L' && p[1] == 'L' && a->len == 1)
        {
          fill = TRUE;
          g_byte_array_append (a, (const guint8 *) "", 1);
          p += 2;
          continue;
        }
      g_assert_true (g_ascii_isxdigit (p[0]) && g_ascii_isxdigit (p[1]));
      b = (guint8) (g_ascii_xdigit_value (p[0]) << 4 | g_ascii_xdigit_value (p[1]));
      g_byte_array_append (a, &b, 1);
      p += 2;
    }
  if (fill)
    {
      g_assert_cmpuint (a->len - 2, <, 128);
      a->data[1] = (guint8) (a->len - 2);
    }
  return g_byte_array_free_to_bytes (a);
}

static char *
to_hex (const guint8 *data, gsize len)
{
  GString *s = g_string_new (NULL);

  for (gsize i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", data[i]);
  return g_string_free (s, FALSE);
}

/* Encode, decode as the peer would, encode again: the same bytes. */
static MqttPacket *
round_trip (const MqttPacket *p, MqttVersion version, MqttRole decoder_role)
{
  g_autoptr (GByteArray) first = g_byte_array_new ();
  g_autoptr (GByteArray) second = g_byte_array_new ();
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  MqttPacket *back;

  g_assert_true (mqtt_packet_encode (p, version, first, &error));
  g_assert_no_error (error);
  bytes = g_bytes_new (first->data, first->len);
  back = mqtt_packet_decode (bytes, version, decoder_role, &error);
  g_assert_no_error (error);
  g_assert_nonnull (back);
  g_assert_cmpint (back->type, ==, p->type);
  g_assert_true (mqtt_packet_encode (back, version, second, &error));
  g_assert_cmpmem (first->data, first->len, second->data, second->len);
  return back;
}

static void
assert_bytes_str (GBytes *b, const char *expected)
{
  g_assert_nonnull (b);
  g_assert_cmpmem (g_bytes_get_data (b, NULL), g_bytes_get_size (b), expected,
                   strlen (expected));
}

static const MqttVersion versions[] = { MQTT_VERSION_3_1_1, MQTT_VERSION_5 };

/* ------------------------------------------------------------------ */
/* Round trips                                                         */

static void
test_connect (void)
{
  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    {
      MqttVersion version = versions[v];
      g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_CONNECT);
      g_autoptr (MqttPacket) back = NULL;
      g_autoptr (GBytes) pw = g_bytes_new_static ("s3cret\0pw", 9);
      g_autoptr (GBytes) will = g_bytes_new_static ("gone", 4);
      g_autoptr (GBytes) auth = g_bytes_new_static ("\x01\x02", 2);

      p->connect.clean_start = TRUE;
      p->connect.keepalive = 1200;
      p->connect.client_id = g_strdup ("dev-1/mod");
      p->connect.will = TRUE;
      p->connect.will_qos = 1;
      p->connect.will_retain = TRUE;
      p->connect.will_topic = g_strdup ("t/will");
      p->connect.will_payload = g_bytes_ref (will);
      p->connect.username = g_strdup ("host/dev-1/?api-version=2021-04-12");
      p->connect.password = g_bytes_ref (pw);
      if (version == MQTT_VERSION_5)
        {
          mqtt_props_set_int (&p->props, MQTT_PROP_SESSION_EXPIRY, 300);
          mqtt_props_set_int (&p->props, MQTT_PROP_RECEIVE_MAXIMUM, 20);
          mqtt_props_set_int (&p->props, MQTT_PROP_MAXIMUM_PACKET_SIZE, 65536);
          mqtt_props_set_int (&p->props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, 10);
          mqtt_props_set_int (&p->props, MQTT_PROP_REQUEST_RESPONSE_INFO, 1);
          mqtt_props_set_int (&p->props, MQTT_PROP_REQUEST_PROBLEM_INFO, 0);
          mqtt_props_set_string (&p->props, MQTT_PROP_AUTH_METHOD, "SAS");
          mqtt_props_set_binary (&p->props, MQTT_PROP_AUTH_DATA, auth);
          mqtt_props_add_user (&p->props, "k", "v");
          mqtt_props_add_user (&p->props, "k", "v2");
          mqtt_props_set_int (&p->connect.will_props, MQTT_PROP_WILL_DELAY, 5);
          mqtt_props_set_string (&p->connect.will_props, MQTT_PROP_CONTENT_TYPE, "text/plain");
          mqtt_props_set_int (&p->connect.will_props, MQTT_PROP_PAYLOAD_FORMAT, 1);
        }
      back = round_trip (p, version, MQTT_ROLE_SERVER);
      g_assert_cmpstr (back->connect.protocol_name, ==, "MQTT");
      g_assert_cmpint (back->connect.protocol_level, ==, version);
      g_assert_true (back->connect.clean_start);
      g_assert_cmpint (back->connect.keepalive, ==, 1200);
      g_assert_cmpstr (back->connect.client_id, ==, "dev-1/mod");
      g_assert_true (back->connect.will);
      g_assert_cmpint (back->connect.will_qos, ==, 1);
      g_assert_true (back->connect.will_retain);
      g_assert_cmpstr (back->connect.will_topic, ==, "t/will");
      assert_bytes_str (back->connect.will_payload, "gone");
      g_assert_cmpstr (back->connect.username, ==, "host/dev-1/?api-version=2021-04-12");
      g_assert_cmpmem (g_bytes_get_data (back->connect.password, NULL),
                       g_bytes_get_size (back->connect.password), "s3cret\0pw", 9);
      if (version == MQTT_VERSION_5)
        {
          g_assert_cmpuint (back->props.session_expiry, ==, 300);
          g_assert_cmpuint (back->props.receive_maximum, ==, 20);
          g_assert_cmpuint (back->props.maximum_packet_size, ==, 65536);
          g_assert_cmpuint (back->props.topic_alias_maximum, ==, 10);
          g_assert_true (mqtt_props_has (&back->props, MQTT_PROP_REQUEST_PROBLEM_INFO));
          g_assert_cmpuint (back->props.request_problem_info, ==, 0);
          g_assert_cmpstr (back->props.auth_method, ==, "SAS");
          g_assert_cmpuint (back->props.user->len, ==, 2);
          g_assert_cmpstr (g_array_index (back->props.user, MqttUserProperty, 1).value, ==, "v2");
          g_assert_cmpuint (back->connect.will_props.will_delay, ==, 5);
          g_assert_cmpstr (back->connect.will_props.content_type, ==, "text/plain");
          g_assert_false (mqtt_props_has (&back->props, MQTT_PROP_WILL_DELAY));
        }
      else
        {
          g_assert_true (mqtt_props_is_empty (&back->props));
        }
    }
}

static void
test_connect_minimal (void)
{
  /* No will, no credentials, empty client id; v5 password without a user
   * name is allowed (MQTT 5 section 3.1.2.9). */
  g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_CONNECT);
  g_autoptr (MqttPacket) back = NULL;
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *hex = NULL;

  back = round_trip (p, MQTT_VERSION_3_1_1, MQTT_ROLE_SERVER);
  g_assert_cmpstr (back->connect.client_id, ==, "");
  g_assert_null (back->connect.username);
  g_assert_null (back->connect.password);
  g_clear_pointer (&back, mqtt_packet_free);
  g_assert_true (mqtt_packet_encode (p, MQTT_VERSION_3_1_1, out, &error));
  hex = to_hex (out->data, out->len);
  g_assert_cmpstr (hex, ==, "100c00044d515454040000000000");

  p->connect.password = g_bytes_new_static ("x", 1);
  back = round_trip (p, MQTT_VERSION_5, MQTT_ROLE_SERVER);
  g_assert_null (back->connect.username);
  assert_bytes_str (back->connect.password, "x");
  /* ... but not in 3.1.1 (MQTT-3.1.2-22). */
  g_byte_array_set_size (out, 0);
  g_assert_false (mqtt_packet_encode (p, MQTT_VERSION_3_1_1, out, &error));
  g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_MALFORMED_PACKET);
  g_assert_cmpuint (out->len, ==, 0);
}

static void
test_connack (void)
{
  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    {
      g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_CONNACK);
      g_autoptr (MqttPacket) back = NULL;

      p->connack.session_present = TRUE;
      if (versions[v] == MQTT_VERSION_5)
        {
          mqtt_props_set_int (&p->props, MQTT_PROP_RECEIVE_MAXIMUM, 100);
          mqtt_props_set_int (&p->props, MQTT_PROP_MAXIMUM_QOS, 1);
          mqtt_props_set_int (&p->props, MQTT_PROP_RETAIN_AVAILABLE, 1);
          mqtt_props_set_int (&p->props, MQTT_PROP_MAXIMUM_PACKET_SIZE, 262144);
          mqtt_props_set_string (&p->props, MQTT_PROP_ASSIGNED_CLIENT_ID, "auto-1");
          mqtt_props_set_int (&p->props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, 10);
          mqtt_props_set_int (&p->props, MQTT_PROP_WILDCARD_SUB_AVAILABLE, 1);
          mqtt_props_set_int (&p->props, MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE, 1);
          mqtt_props_set_int (&p->props, MQTT_PROP_SHARED_SUB_AVAILABLE, 1);
          mqtt_props_set_int (&p->props, MQTT_PROP_SERVER_KEEPALIVE, 60);
          mqtt_props_set_string (&p->props, MQTT_PROP_RESPONSE_INFO, "resp/");
          mqtt_props_set_string (&p->props, MQTT_PROP_SERVER_REFERENCE, "other:1883");
          mqtt_props_set_string (&p->props, MQTT_PROP_REASON_STRING, "welcome");
          mqtt_props_set_int (&p->props, MQTT_PROP_SESSION_EXPIRY, 60);
        }
      back = round_trip (p, versions[v], MQTT_ROLE_CLIENT);
      g_assert_true (back->connack.session_present);
      g_assert_cmpuint (back->reason, ==, 0);
      if (versions[v] == MQTT_VERSION_5)
        {
          g_assert_cmpstr (back->props.assigned_client_id, ==, "auto-1");
          g_assert_cmpuint (back->props.server_keepalive, ==, 60);
          g_assert_cmpuint (back->props.maximum_qos, ==, 1);
        }
      /* A refusal. */
      p->connack.session_present = FALSE;
      p->reason = versions[v] == MQTT_VERSION_5 ? MQTT_RC_NOT_AUTHORIZED
                                                : MQTT_V3_CONNACK_NOT_AUTHORIZED;
      g_clear_pointer (&back, mqtt_packet_free);
      back = round_trip (p, versions[v], MQTT_ROLE_CLIENT);
      g_assert_cmpuint (back->reason, ==, p->reason);
    }
}

static void
test_publish (void)
{
  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    for (guint8 qos = 0; qos <= 2; qos++)
      {
        g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_PUBLISH);
        g_autoptr (MqttPacket) back = NULL;
        g_autoptr (GBytes) corr = g_bytes_new_static ("c-1", 3);

        p->publish.qos = qos;
        p->publish.dup = qos > 0;
        p->publish.retain = TRUE;
        p->publish.topic = g_strdup ("devices/d1/messages/events/a=b");
        g_bytes_unref (p->publish.payload);
        p->publish.payload = g_bytes_new_static ("\x00\xff hello", 8);
        p->packet_id = qos > 0 ? 0xBEEF : 0;
        if (versions[v] == MQTT_VERSION_5)
          {
            mqtt_props_set_int (&p->props, MQTT_PROP_PAYLOAD_FORMAT, 0);
            mqtt_props_set_int (&p->props, MQTT_PROP_MESSAGE_EXPIRY, 60);
            mqtt_props_set_string (&p->props, MQTT_PROP_CONTENT_TYPE, "application/json");
            mqtt_props_set_string (&p->props, MQTT_PROP_RESPONSE_TOPIC, "t/reply");
            mqtt_props_set_binary (&p->props, MQTT_PROP_CORRELATION_DATA, corr);
            mqtt_props_set_int (&p->props, MQTT_PROP_TOPIC_ALIAS, 3);
            mqtt_props_add_user (&p->props, "a", "1");
          }
        back = round_trip (p, versions[v], MQTT_ROLE_SERVER);
        g_assert_cmpuint (back->publish.qos, ==, qos);
        g_assert_cmpint (back->publish.dup, ==, qos > 0);
        g_assert_true (back->publish.retain);
        g_assert_cmpstr (back->publish.topic, ==, "devices/d1/messages/events/a=b");
        g_assert_cmpmem (g_bytes_get_data (back->publish.payload, NULL),
                         g_bytes_get_size (back->publish.payload), "\x00\xff hello", 8);
        g_assert_cmpuint (back->packet_id, ==, p->packet_id);
        if (versions[v] == MQTT_VERSION_5)
          {
            g_assert_cmpstr (back->props.response_topic, ==, "t/reply");
            g_assert_cmpuint (back->props.topic_alias, ==, 3);
            assert_bytes_str (back->props.correlation_data, "c-1");
          }

        /* Server to client, with subscription identifiers (v5), and an
         * empty payload. */
        g_bytes_unref (p->publish.payload);
        p->publish.payload = g_bytes_new (NULL, 0);
        if (versions[v] == MQTT_VERSION_5)
          {
            mqtt_props_set_int (&p->props, MQTT_PROP_SUBSCRIPTION_ID, 7);
            mqtt_props_set_int (&p->props, MQTT_PROP_SUBSCRIPTION_ID, 268435455);
          }
        g_clear_pointer (&back, mqtt_packet_free);
        back = round_trip (p, versions[v], MQTT_ROLE_CLIENT);
        g_assert_cmpuint (g_bytes_get_size (back->publish.payload), ==, 0);
        if (versions[v] == MQTT_VERSION_5)
          {
            g_assert_cmpuint (back->props.subscription_ids->len, ==, 2);
            g_assert_cmpuint (g_array_index (back->props.subscription_ids, guint32, 1), ==,
                              268435455);
          }
      }
}

static void
test_publish_alias_only (void)
{
  /* v5: an empty topic stands for the alias. */
  g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_PUBLISH);
  g_autoptr (MqttPacket) back = NULL;

  p->publish.topic = g_strdup ("");
  mqtt_props_set_int (&p->props, MQTT_PROP_TOPIC_ALIAS, 1);
  back = round_trip (p, MQTT_VERSION_5, MQTT_ROLE_SERVER);
  g_assert_cmpstr (back->publish.topic, ==, "");
  g_assert_cmpuint (back->props.topic_alias, ==, 1);
}

static void
test_acks (void)
{
  static const MqttPacketType types[] = { MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP };

  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    for (guint t = 0; t < G_N_ELEMENTS (types); t++)
      for (guint role = 0; role < 2; role++)
        {
          g_autoptr (MqttPacket) p = mqtt_packet_new (types[t]);
          g_autoptr (MqttPacket) back = NULL;
          g_autoptr (GByteArray) out = g_byte_array_new ();
          g_autoptr (GByteArray) quick = g_byte_array_new ();
          gboolean pub = types[t] == MQTT_PUBACK || types[t] == MQTT_PUBREC;

          p->packet_id = 42;
          back = round_trip (p, versions[v], role);
          g_assert_cmpuint (back->packet_id, ==, 42);
          g_assert_cmpuint (back->reason, ==, 0);
          /* The short form: 2 bytes of remaining length. */
          g_assert_true (mqtt_packet_encode (p, versions[v], out, NULL));
          g_assert_cmpuint (out->len, ==, 4);
          g_assert_cmpuint (out->data[0], ==, types[t] << 4 | (types[t] == MQTT_PUBREL ? 2 : 0));
          mqtt_encode_ack (quick, versions[v], types[t], 42, 0);
          g_assert_cmpmem (out->data, out->len, quick->data, quick->len);
          if (versions[v] != MQTT_VERSION_5)
            continue;

          /* A reason code alone, then with properties. */
          p->reason = pub ? MQTT_RC_NO_MATCHING_SUBSCRIBERS : MQTT_RC_PACKET_ID_NOT_FOUND;
          g_clear_pointer (&back, mqtt_packet_free);
          back = round_trip (p, versions[v], role);
          g_assert_cmpuint (back->reason, ==, p->reason);
          g_assert_true (back->reason_on_wire);
          g_assert_false (back->props_on_wire);
          g_byte_array_set_size (out, 0);
          g_byte_array_set_size (quick, 0);
          g_assert_true (mqtt_packet_encode (p, versions[v], out, NULL));
          mqtt_encode_ack (quick, versions[v], types[t], 42, p->reason);
          g_assert_cmpmem (out->data, out->len, quick->data, quick->len);

          mqtt_props_set_string (&p->props, MQTT_PROP_REASON_STRING, "because");
          mqtt_props_add_user (&p->props, "x", "y");
          g_clear_pointer (&back, mqtt_packet_free);
          back = round_trip (p, versions[v], role);
          g_assert_cmpstr (back->props.reason_string, ==, "because");
          g_assert_true (back->props_on_wire);
        }
}

static void
test_ack_long_forms (void)
{
  /* A success reason code and an empty property list on the wire stay on
   * the wire when re-encoded. */
  static const char *const forms[] = { "4003000100", "400400010000", "6204000100 00",
                                       "e00100", "e0020000", "f00100" };

  for (guint i = 0; i < G_N_ELEMENTS (forms); i++)
    {
      g_autoptr (GBytes) in = hex_bytes (forms[i]);
      g_autoptr (GError) error = NULL;
      g_autoptr (MqttPacket) p = NULL;
      g_autoptr (GByteArray) out = g_byte_array_new ();
      g_autofree char *hex = NULL;
      g_autofree char *expected = to_hex (g_bytes_get_data (in, NULL), g_bytes_get_size (in));

      p = mqtt_packet_decode (in, MQTT_VERSION_5, MQTT_ROLE_SERVER, &error);
      g_assert_no_error (error);
      g_assert_true (mqtt_packet_encode (p, MQTT_VERSION_5, out, &error));
      hex = to_hex (out->data, out->len);
      g_assert_cmpstr (hex, ==, expected);
      g_assert_true (p->reason_on_wire);
    }
}

static void
test_subscribe (void)
{
  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    {
      gboolean v5 = versions[v] == MQTT_VERSION_5;
      g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_SUBSCRIBE);
      g_autoptr (MqttPacket) back = NULL;
      const MqttSubscription *s;

      p->packet_id = 7;
      mqtt_subscribe_add (p, "sensors/#", 2, v5, v5, v5 ? 2 : 0);
      mqtt_subscribe_add (p, "$share/g/a/+/b", 1, FALSE, FALSE, v5 ? 1 : 0);
      mqtt_subscribe_add (p, "x", 0, FALSE, FALSE, 0);
      if (v5)
        {
          mqtt_props_set_int (&p->props, MQTT_PROP_SUBSCRIPTION_ID, 200000);
          mqtt_props_add_user (&p->props, "u", "1");
        }
      back = round_trip (p, versions[v], MQTT_ROLE_SERVER);
      g_assert_cmpuint (back->packet_id, ==, 7);
      g_assert_cmpuint (back->subscribe.subscriptions->len, ==, 3);
      s = &g_array_index (back->subscribe.subscriptions, MqttSubscription, 0);
      g_assert_cmpstr (s->filter, ==, "sensors/#");
      g_assert_cmpuint (s->qos, ==, 2);
      g_assert_cmpint (s->no_local, ==, v5);
      g_assert_cmpint (s->retain_as_published, ==, v5);
      g_assert_cmpuint (s->retain_handling, ==, v5 ? 2 : 0);
      s = &g_array_index (back->subscribe.subscriptions, MqttSubscription, 1);
      g_assert_cmpstr (s->filter, ==, "$share/g/a/+/b");
      g_assert_cmpuint (s->qos, ==, 1);
      if (v5)
        g_assert_cmpuint (g_array_index (back->props.subscription_ids, guint32, 0), ==, 200000);
    }
}

static void
test_suback_unsuback (void)
{
  static const guint8 v3_codes[] = { 0x00, 0x01, 0x02, 0x80 };
  static const guint8 v5_codes[] = { 0x00, 0x02, 0x87, 0x8F, 0x9E, 0xA1, 0xA2 };
  static const guint8 v5_unsub[] = { 0x00, 0x11, 0x87 };

  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    {
      gboolean v5 = versions[v] == MQTT_VERSION_5;
      g_autoptr (MqttPacket) sa = mqtt_packet_new (MQTT_SUBACK);
      g_autoptr (MqttPacket) ua = mqtt_packet_new (MQTT_UNSUBACK);
      g_autoptr (MqttPacket) us = mqtt_packet_new (MQTT_UNSUBSCRIBE);
      g_autoptr (MqttPacket) back = NULL;

      sa->packet_id = 9;
      g_byte_array_append (sa->suback.reasons, v5 ? v5_codes : v3_codes,
                           v5 ? sizeof v5_codes : sizeof v3_codes);
      if (v5)
        mqtt_props_set_string (&sa->props, MQTT_PROP_REASON_STRING, "partly");
      back = round_trip (sa, versions[v], MQTT_ROLE_CLIENT);
      g_assert_cmpmem (back->suback.reasons->data, back->suback.reasons->len,
                       v5 ? v5_codes : v3_codes, v5 ? sizeof v5_codes : sizeof v3_codes);
      g_clear_pointer (&back, mqtt_packet_free);

      us->packet_id = 10;
      mqtt_unsubscribe_add (us, "a/b");
      mqtt_unsubscribe_add (us, "c/#");
      if (v5)
        mqtt_props_add_user (&us->props, "why", "done");
      back = round_trip (us, versions[v], MQTT_ROLE_SERVER);
      g_assert_cmpuint (back->unsubscribe.filters->len, ==, 2);
      g_assert_cmpstr (back->unsubscribe.filters->pdata[1], ==, "c/#");
      g_clear_pointer (&back, mqtt_packet_free);

      ua->packet_id = 10;
      if (v5)
        g_byte_array_append (ua->unsuback.reasons, v5_unsub, sizeof v5_unsub);
      back = round_trip (ua, versions[v], MQTT_ROLE_CLIENT);
      g_assert_cmpuint (back->packet_id, ==, 10);
      g_assert_cmpuint (back->unsuback.reasons->len, ==, v5 ? sizeof v5_unsub : 0);
    }
}

static void
test_ping_disconnect_auth (void)
{
  for (guint v = 0; v < G_N_ELEMENTS (versions); v++)
    {
      gboolean v5 = versions[v] == MQTT_VERSION_5;
      g_autoptr (MqttPacket) req = mqtt_packet_new (MQTT_PINGREQ);
      g_autoptr (MqttPacket) resp = mqtt_packet_new (MQTT_PINGRESP);
      g_autoptr (MqttPacket) disc = mqtt_packet_new (MQTT_DISCONNECT);
      g_autoptr (MqttPacket) back = NULL;
      g_autoptr (GByteArray) out = g_byte_array_new ();
      g_autoptr (GByteArray) quick = g_byte_array_new ();

      back = round_trip (req, versions[v], MQTT_ROLE_SERVER);
      g_clear_pointer (&back, mqtt_packet_free);
      back = round_trip (resp, versions[v], MQTT_ROLE_CLIENT);
      g_clear_pointer (&back, mqtt_packet_free);
      g_assert_true (mqtt_packet_encode (req, versions[v], out, NULL));
      g_assert_true (mqtt_packet_encode (resp, versions[v], out, NULL));
      mqtt_encode_pingreq (quick);
      mqtt_encode_pingresp (quick);
      g_assert_cmpmem (out->data, out->len, quick->data, quick->len);

      back = round_trip (disc, versions[v], MQTT_ROLE_SERVER);
      g_clear_pointer (&back, mqtt_packet_free);
      g_byte_array_set_size (out, 0);
      g_byte_array_set_size (quick, 0);
      g_assert_true (mqtt_packet_encode (disc, versions[v], out, NULL));
      mqtt_encode_disconnect (quick, versions[v], 0);
      g_assert_cmpmem (out->data, out->len, quick->data, quick->len);
      g_assert_cmpuint (out->len, ==, 2);
      if (!v5)
        {
          /* 3.1.1 has no AUTH. */
          g_autoptr (MqttPacket) auth = mqtt_packet_new (MQTT_AUTH);
          g_autoptr (GError) error = NULL;

          g_assert_false (mqtt_packet_encode (auth, versions[v], out, &error));
          g_assert_error (error, MQTT_CODEC_ERROR, MQTT_RC_MALFORMED_PACKET);
          continue;
        }

      /* v5 DISCONNECT from the server, with a reason and properties. */
      disc->reason = MQTT_RC_SERVER_MOVED;
      mqtt_props_set_string (&disc->props, MQTT_PROP_SERVER_REFERENCE, "elsewhere");
      mqtt_props_set_string (&disc->props, MQTT_PROP_REASON_STRING, "moved");
      back = round_trip (disc, versions[v], MQTT_ROLE_CLIENT);
      g_assert_cmpuint (back->reason, ==, MQTT_RC_SERVER_MOVED);
      g_assert_cmpstr (back->props.server_reference, ==, "elsewhere");
      g_clear_pointer (&back, mqtt_packet_free);

      /* AUTH both ways (re-authentication with a fresh SAS token). */
      for (guint role = 0; role < 2; role++)
        {
          g_autoptr (MqttPacket) auth = mqtt_packet_new (MQTT_AUTH);
          g_autoptr (GBytes) token = g_bytes_new_static ("SharedAccessSignature sr=x", 26);

          auth->reason = role == MQTT_ROLE_SERVER ? MQTT_RC_REAUTHENTICATE
                                                  : MQTT_RC_CONTINUE_AUTHENTICATION;
          mqtt_props_set_string (&auth->props, MQTT_PROP_AUTH_METHOD, "SAS");
          mqtt_props_set_binary (&auth->props, MQTT_PROP_AUTH_DATA, token);
          back = round_trip (auth, versions[v], role);
          g_assert_cmpuint (back->reason, ==, auth->reason);
          g_assert_cmpstr (back->props.auth_method, ==, "SAS");
          assert_bytes_str (back->props.auth_data, "SharedAccessSignature sr=x");
          g_clear_pointer (&back, mqtt_packet_free);
        }
    }
}

static void
test_props_helpers (void)
{
  MqttProperties a = { 0 };
  MqttProperties b = { 0 };
  g_autoptr (GBytes) data = g_bytes_new_static ("d", 1);

  g_assert_true (mqtt_props_is_empty (&a));
  mqtt_props_set_int (&a, MQTT_PROP_MESSAGE_EXPIRY, 10);
  mqtt_props_set_string (&a, MQTT_PROP_CONTENT_TYPE, "text/plain");
  mqtt_props_set_binary (&a, MQTT_PROP_CORRELATION_DATA, data);
  mqtt_props_add_user (&a, "n", "v");
  mqtt_props_set_int (&a, MQTT_PROP_SUBSCRIPTION_ID, 3);
  g_assert_true (mqtt_props_has (&a, MQTT_PROP_MESSAGE_EXPIRY));
  g_assert_true (mqtt_props_has (&a, MQTT_PROP_USER_PROPERTY));
  g_assert_true (mqtt_props_has (&a, MQTT_PROP_SUBSCRIPTION_ID));
  g_assert_false (mqtt_props_has (&a, MQTT_PROP_TOPIC_ALIAS));

  mqtt_props_copy (&b, &a);
  mqtt_props_clear (&a);
  g_assert_true (mqtt_props_is_empty (&a));
  g_assert_cmpstr (b.content_type, ==, "text/plain");
  g_assert_cmpuint (b.message_expiry, ==, 10);
  assert_bytes_str (b.correlation_data, "d");
  g_assert_cmpstr (g_array_index (b.user, MqttUserProperty, 0).name, ==, "n");
  g_assert_cmpuint (g_array_index (b.subscription_ids, guint32, 0), ==, 3);

  mqtt_props_unset (&b, MQTT_PROP_CONTENT_TYPE);
  mqtt_props_unset (&b, MQTT_PROP_MESSAGE_EXPIRY);
  mqtt_props_unset (&b, MQTT_PROP_CORRELATION_DATA);
  mqtt_props_unset (&b, MQTT_PROP_USER_PROPERTY);
  mqtt_props_unset (&b, MQTT_PROP_SUBSCRIPTION_ID);
  g_assert_true (mqtt_props_is_empty (&b));
  g_assert_null (b.content_type);
  mqtt_props_clear (&b);

  g_assert_cmpstr (mqtt_prop_name (MQTT_PROP_SESSION_EXPIRY), ==, "Session Expiry Interval");
  g_assert_null (mqtt_prop_name (0x04));
  g_assert_cmpstr (mqtt_reason_name (MQTT_RC_PACKET_TOO_LARGE), ==, "Packet too large");
  g_assert_null (mqtt_reason_name (0x05));
  g_assert_cmpstr (mqtt_packet_type_name (MQTT_SUBACK), ==, "SUBACK");
  g_assert_cmpstr (mqtt_packet_type_name (0), ==, "reserved");
}

static void
test_props_order (void)
{
  /* Properties keep their wire order through a decode; ones set later
   * follow in identifier order. */
  g_autoptr (GBytes) fixed = hex_bytes ("30LL 000174 13 2600016b000176 0300017a 0200000005 230001");
  g_autoptr (MqttPacket) p = NULL;
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *hex = NULL;

  p = mqtt_packet_decode (fixed, MQTT_VERSION_5, MQTT_ROLE_SERVER, &error);
  g_assert_no_error (error);
  g_assert_true (mqtt_packet_encode (p, MQTT_VERSION_5, out, &error));
  g_assert_cmpmem (out->data, out->len, g_bytes_get_data (fixed, NULL),
                   g_bytes_get_size (fixed));

  mqtt_props_set_int (&p->props, MQTT_PROP_PAYLOAD_FORMAT, 1);
  mqtt_props_unset (&p->props, MQTT_PROP_CONTENT_TYPE);
  g_byte_array_set_size (out, 0);
  g_assert_true (mqtt_packet_encode (p, MQTT_VERSION_5, out, &error));
  hex = to_hex (out->data, out->len);
  g_assert_cmpstr (hex, ==, "3015000174112600016b0001760200000005230001" "0101");
}

static void
test_encode_refusals (void)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autofree char *big = g_strnfill (65536, 'a');

  struct {
    const char *what;
    MqttPacket *p;
    MqttVersion version;
    guint8 reason;
  } cases[6];
  guint n = 0;

  cases[n].what = "topic over 65535 bytes";
  cases[n].p = mqtt_packet_new (MQTT_PUBLISH);
  cases[n].p->publish.topic = g_strdup (big);
  cases[n].version = MQTT_VERSION_3_1_1;
  cases[n++].reason = MQTT_RC_MALFORMED_PACKET;

  cases[n].what = "QoS 3";
  cases[n].p = mqtt_packet_new (MQTT_PUBLISH);
  cases[n].p->publish.topic = g_strdup ("t");
  cases[n].p->publish.qos = 3;
  cases[n].p->packet_id = 1;
  cases[n].version = MQTT_VERSION_5;
  cases[n++].reason = MQTT_RC_MALFORMED_PACKET;

  cases[n].what = "packet identifier 0";
  cases[n].p = mqtt_packet_new (MQTT_PUBACK);
  cases[n].version = MQTT_VERSION_5;
  cases[n++].reason = MQTT_RC_PROTOCOL_ERROR;

  cases[n].what = "Topic Alias in a CONNACK";
  cases[n].p = mqtt_packet_new (MQTT_CONNACK);
  mqtt_props_set_int (&cases[n].p->props, MQTT_PROP_TOPIC_ALIAS, 1);
  cases[n].version = MQTT_VERSION_5;
  cases[n++].reason = MQTT_RC_MALFORMED_PACKET;

  cases[n].what = "SUBSCRIBE without filters";
  cases[n].p = mqtt_packet_new (MQTT_SUBSCRIBE);
  cases[n].p->packet_id = 1;
  cases[n].version = MQTT_VERSION_3_1_1;
  cases[n++].reason = MQTT_RC_PROTOCOL_ERROR;

  cases[n].what = "user property over 65535 bytes";
  cases[n].p = mqtt_packet_new (MQTT_DISCONNECT);
  mqtt_props_add_user (&cases[n].p->props, "k", big);
  cases[n].version = MQTT_VERSION_5;
  cases[n++].reason = MQTT_RC_MALFORMED_PACKET;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;

      g_test_message ("encode: %s", cases[i].what);
      g_assert_false (mqtt_packet_encode (cases[i].p, cases[i].version, out, &error));
      g_assert_error (error, MQTT_CODEC_ERROR, cases[i].reason);
      g_assert_cmpuint (out->len, ==, 0);
      mqtt_packet_free (cases[i].p);
    }
}

static void
test_large_publish (void)
{
  /* Remaining lengths of 2, 3 and 4 bytes. */
  static const gsize sizes[] = { 200, 20000, 2100000 };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr (MqttPacket) p = mqtt_packet_new (MQTT_PUBLISH);
      g_autoptr (MqttPacket) back = NULL;
      guint8 *payload = g_malloc (sizes[i]);

      for (gsize j = 0; j < sizes[i]; j++)
        payload[j] = (guint8) (j * 31);
      p->publish.topic = g_strdup ("big");
      g_bytes_unref (p->publish.payload);
      p->publish.payload = g_bytes_new_take (payload, sizes[i]);
      back = round_trip (p, MQTT_VERSION_3_1_1, MQTT_ROLE_SERVER);
      g_assert_true (g_bytes_equal (back->publish.payload, p->publish.payload));
    }
  g_assert_cmpuint (mqtt_varint_size (127), ==, 1);
  g_assert_cmpuint (mqtt_varint_size (128), ==, 2);
  g_assert_cmpuint (mqtt_varint_size (16383), ==, 2);
  g_assert_cmpuint (mqtt_varint_size (16384), ==, 3);
  g_assert_cmpuint (mqtt_varint_size (2097152), ==, 4);
  g_assert_cmpuint (mqtt_varint_size (MQTT_MAX_VARINT), ==, 4);
}

/* ------------------------------------------------------------------ */
/* Refusals                                                            */

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

  g_test_add_func ("/transport/mqtt/codec/round-trip/connect", test_connect);
  g_test_add_func ("/transport/mqtt/codec/round-trip/connect-minimal", test_connect_minimal);
  g_test_add_func ("/transport/mqtt/codec/round-trip/connack", test_connack);
  g_test_add_func ("/transport/mqtt/codec/round-trip/publish", test_publish);
  g_test_add_func ("/transport/mqtt/codec/round-trip/publish-alias", test_publish_alias_only);
  g_test_add_func ("/transport/mqtt/codec/round-trip/acks", test_acks);
  g_test_add_func ("/transport/mqtt/codec/round-trip/ack-long-forms", test_ack_long_forms);
  g_test_add_func ("/transport/mqtt/codec/round-trip/subscribe", test_subscribe);
  g_test_add_func ("/transport/mqtt/codec/round-trip/suback-unsuback", test_suback_unsuback);
  g_test_add_func ("/transport/mqtt/codec/round-trip/ping-disconnect-auth",
                   test_ping_disconnect_auth);
  g_test_add_func ("/transport/mqtt/codec/round-trip/large-publish", test_large_publish);
  g_test_add_func ("/transport/mqtt/codec/props/helpers", test_props_helpers);
  g_test_add_func ("/transport/mqtt/codec/props/order", test_props_order);
  g_test_add_func ("/transport/mqtt/codec/encode/refusals", test_encode_refusals);
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
