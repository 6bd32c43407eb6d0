/* Unit tests of the MQTT packet codec: every packet type of both versions
 * built, encoded, decoded and encoded again to the same bytes; properties;
 * what the encoder refuses. (Refused input and the stream decoder:
 * test-mqtt-refusals.c; recorded traffic: test-mqtt-vectors.c.)
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec.h"
#include "mqtt-test-util.h"

#include <string.h>

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
  return g_test_run ();
}
