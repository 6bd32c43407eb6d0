/* transport-mqtt — decoding one whole packet of either version, with the
 * checks of MQTT 3.1.1 and MQTT 5.0 (the MQTT-x.y.z-n statement numbers are
 * those of the standards; a v5 one is given where both say the same).
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec-private.h"

#include <string.h>

#define V5(version) ((version) == MQTT_VERSION_5)

static gboolean
read_packet_id (MqttReader *r, MqttPacket *p, GError **error)
{
  if (!mqtt_read_u16 (r, &p->packet_id, "packet identifier", error))
    return FALSE;
  /* MQTT-2.2.1-3: a packet that needs an identifier has a non-zero one. */
  if (p->packet_id == 0)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "packet identifier 0");
      return FALSE;
    }
  return TRUE;
}

static gboolean
reason_in (guint8 reason, const guint8 *list, gsize n)
{
  return memchr (list, reason, n) != NULL;
}

static gboolean
check_reason (guint8 reason, const guint8 *list, gsize n, GError **error)
{
  if (!reason_in (reason, list, n))
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                      "reason code 0x%02x is not one this packet may carry", reason);
      return FALSE;
    }
  return TRUE;
}

/* MQTT 5: Authentication Data without an Authentication Method is a
 * protocol error (sections 3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3). */
static gboolean
check_auth_props (const MqttProperties *props, GError **error)
{
  if (mqtt_props_has (props, MQTT_PROP_AUTH_DATA)
      && !mqtt_props_has (props, MQTT_PROP_AUTH_METHOD))
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                      "Authentication Data without an Authentication Method");
      return FALSE;
    }
  return TRUE;
}

static gboolean
decode_connect (MqttReader *r, MqttPacket *p, GError **error)
{
  MqttConnect *c = &p->connect;
  guint8 flags;
  gboolean has_username, has_password;

  c->protocol_name = mqtt_read_string (r, "protocol name", error);
  if (c->protocol_name == NULL
      || !mqtt_read_u8 (r, &c->protocol_level, "protocol level", error))
    return FALSE;
  if (strcmp (c->protocol_name, "MQTT") != 0)
    {
      /* MQTT 3.1 ("MQIsdp", level 3) is a version we do not speak; any other
       * name is not MQTT at all (MQTT-3.1.2-1: close). */
      if (strcmp (c->protocol_name, "MQIsdp") == 0)
        mqtt_set_error (error, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                        "MQTT 3.1 (MQIsdp) is not supported");
      else
        mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "protocol name '%s' is not MQTT",
                        c->protocol_name);
      return FALSE;
    }
  if (c->protocol_level != MQTT_VERSION_3_1_1 && c->protocol_level != MQTT_VERSION_5)
    {
      mqtt_set_error (error, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                      "protocol level %u (4 and 5 are supported)", c->protocol_level);
      return FALSE;
    }
  if (!mqtt_read_u8 (r, &flags, "connect flags", error))
    return FALSE;
  if ((flags & 0x01) != 0)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "reserved connect flag set (MQTT-3.1.2-3)");
      return FALSE;
    }
  c->clean_start = (flags & 0x02) != 0;
  c->will = (flags & 0x04) != 0;
  c->will_qos = (flags >> 3) & 0x03;
  c->will_retain = (flags & 0x20) != 0;
  has_password = (flags & 0x40) != 0;
  has_username = (flags & 0x80) != 0;
  if (!c->will && (c->will_qos != 0 || c->will_retain))
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "will QoS or retain without a will (MQTT-3.1.2-11/13)");
      return FALSE;
    }
  if (c->will_qos == 3)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "will QoS 3 (MQTT-3.1.2-12)");
      return FALSE;
    }
  if (!V5 (c->protocol_level) && has_password && !has_username)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "password without user name (MQTT-3.1.2-22)");
      return FALSE;
    }
  if (!mqtt_read_u16 (r, &c->keepalive, "keep alive", error))
    return FALSE;
  if (V5 (c->protocol_level)
      && (!mqtt_props_decode (r, MQTT_CONNECT, MQTT_ROLE_SERVER, &p->props, error)
          || !check_auth_props (&p->props, error)))
    return FALSE;
  c->client_id = mqtt_read_string (r, "client identifier", error);
  if (c->client_id == NULL)
    return FALSE;
  if (c->will)
    {
      if (V5 (c->protocol_level)
          && !mqtt_props_decode (r, MQTT_PROPS_WILL, MQTT_ROLE_SERVER, &c->will_props,
                                 error))
        return FALSE;
      c->will_topic = mqtt_read_string (r, "will topic", error);
      if (c->will_topic == NULL)
        return FALSE;
      if (c->will_topic[0] == '\0' || !mqtt_topic_name_has_no_wildcards (c->will_topic))
        {
          mqtt_set_error (error, MQTT_RC_TOPIC_NAME_INVALID,
                          "will topic '%s' is not a topic name", c->will_topic);
          return FALSE;
        }
      c->will_payload = mqtt_read_binary (r, "will payload", error);
      if (c->will_payload == NULL)
        return FALSE;
    }
  if (has_username && (c->username = mqtt_read_string (r, "user name", error)) == NULL)
    return FALSE;
  if (has_password && (c->password = mqtt_read_binary (r, "password", error)) == NULL)
    return FALSE;
  return TRUE;
}

static gboolean
decode_connack (MqttReader *r, MqttPacket *p, MqttVersion version, GError **error)
{
  static const guint8 v5_reasons[] = {
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
    0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
  };
  guint8 flags;

  if (!mqtt_read_u8 (r, &flags, "acknowledge flags", error)
      || !mqtt_read_u8 (r, &p->reason, "return code", error))
    return FALSE;
  if ((flags & 0xFE) != 0)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "reserved acknowledge flags 0x%02x (MQTT-3.2.2-1)", flags);
      return FALSE;
    }
  p->connack.session_present = (flags & 0x01) != 0;
  if (V5 (version))
    {
      if (!check_reason (p->reason, v5_reasons, sizeof v5_reasons, error))
        return FALSE;
    }
  else if (p->reason > MQTT_V3_CONNACK_NOT_AUTHORIZED)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "reserved return code %u", p->reason);
      return FALSE;
    }
  if (p->connack.session_present && p->reason != 0)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                      "session present with a refusal (MQTT-3.2.2-6)");
      return FALSE;
    }
  if (V5 (version)
      && (!mqtt_props_decode (r, MQTT_CONNACK, MQTT_ROLE_CLIENT, &p->props, error)
          || !check_auth_props (&p->props, error)))
    return FALSE;
  return TRUE;
}

static gboolean
decode_publish (MqttReader *r, MqttPacket *p, guint8 flags, MqttVersion version,
                MqttRole role, GError **error)
{
  MqttPublish *m = &p->publish;

  m->dup = (flags & 0x08) != 0;
  m->qos = (flags >> 1) & 0x03;
  m->retain = (flags & 0x01) != 0;
  if (m->qos == 3)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "QoS 3 (MQTT-3.3.1-4)");
      return FALSE;
    }
  if (m->qos == 0 && m->dup)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "DUP set on QoS 0 (MQTT-3.3.1-2)");
      return FALSE;
    }
  m->topic = mqtt_read_string (r, "topic name", error);
  if (m->topic == NULL)
    return FALSE;
  if (m->qos > 0 && !read_packet_id (r, p, error))
    return FALSE;
  if (V5 (version) && !mqtt_props_decode (r, MQTT_PUBLISH, role, &p->props, error))
    return FALSE;
  if (!mqtt_topic_name_has_no_wildcards (m->topic))
    {
      mqtt_set_error (error, MQTT_RC_TOPIC_NAME_INVALID,
                      "topic name '%s' has a wildcard (MQTT-3.3.2-2)", m->topic);
      return FALSE;
    }
  /* An empty topic name only stands for a v5 topic alias (MQTT-4.7.3-1,
   * MQTT 5 section 3.3.2.3.4). */
  if (m->topic[0] == '\0' && !mqtt_props_has (&p->props, MQTT_PROP_TOPIC_ALIAS))
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "empty topic name without a topic alias");
      return FALSE;
    }
  g_bytes_unref (m->payload);
  m->payload = g_bytes_new_from_bytes (r->bytes, r->pos, mqtt_reader_left (r));
  r->pos = r->end;
  return TRUE;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP (sections 3.4 - 3.7). */
static gboolean
decode_ack (MqttReader *r, MqttPacket *p, MqttVersion version, MqttRole role,
            GError **error)
{
  static const guint8 pub_reasons[] = { 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99 };
  static const guint8 rel_reasons[] = { 0x00, 0x92 };
  gboolean first_half = p->type == MQTT_PUBACK || p->type == MQTT_PUBREC;

  if (!read_packet_id (r, p, error))
    return FALSE;
  if (!V5 (version) || mqtt_reader_left (r) == 0)
    return TRUE;
  p->reason_on_wire = TRUE;
  if (!mqtt_read_u8 (r, &p->reason, "reason code", error))
    return FALSE;
  if (!check_reason (p->reason, first_half ? pub_reasons : rel_reasons,
                     first_half ? sizeof pub_reasons : sizeof rel_reasons, error))
    return FALSE;
  if (mqtt_reader_left (r) == 0)
    return TRUE;
  p->props_on_wire = TRUE;
  return mqtt_props_decode (r, p->type, role, &p->props, error);
}

static gboolean
decode_subscribe (MqttReader *r, MqttPacket *p, MqttVersion version, GError **error)
{
  if (!read_packet_id (r, p, error))
    return FALSE;
  if (V5 (version)
      && !mqtt_props_decode (r, MQTT_SUBSCRIBE, MQTT_ROLE_SERVER, &p->props, error))
    return FALSE;
  while (mqtt_reader_left (r) > 0)
    {
      MqttSubscription s = { NULL, 0, FALSE, FALSE, 0 };
      guint8 options;

      s.filter = mqtt_read_string (r, "topic filter", error);
      if (s.filter == NULL)
        return FALSE;
      /* Appended at once so that an error below frees it with the packet. */
      g_array_append_val (p->subscribe.subscriptions, s);
      if (!mqtt_read_u8 (r, &options, "subscription options", error))
        return FALSE;
      s.qos = options & 0x03;
      if ((options & (V5 (version) ? 0xC0 : 0xFC)) != 0)
        {
          mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                          "reserved subscription option bits 0x%02x (MQTT-3.8.3-5)",
                          options);
          return FALSE;
        }
      if (s.qos == 3)
        {
          mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                          "QoS 3 for '%s' (MQTT-3.8.3-4)", s.filter);
          return FALSE;
        }
      if (s.filter[0] == '\0')
        {
          mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                          "empty topic filter (MQTT-4.7.3-1)");
          return FALSE;
        }
      if (V5 (version))
        {
          s.no_local = (options & 0x04) != 0;
          s.retain_as_published = (options & 0x08) != 0;
          s.retain_handling = (options >> 4) & 0x03;
          if (s.retain_handling == 3)
            {
              mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                              "retain handling 3 for '%s'", s.filter);
              return FALSE;
            }
          if (s.no_local && g_str_has_prefix (s.filter, "$share/"))
            {
              mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                              "no local on the shared subscription '%s' (MQTT-3.8.3-4)",
                              s.filter);
              return FALSE;
            }
        }
      g_array_index (p->subscribe.subscriptions, MqttSubscription,
                     p->subscribe.subscriptions->len - 1) = s;
    }
  if (p->subscribe.subscriptions->len == 0)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "no topic filter (MQTT-3.8.3-2)");
      return FALSE;
    }
  return TRUE;
}

static gboolean
decode_unsubscribe (MqttReader *r, MqttPacket *p, MqttVersion version, GError **error)
{
  if (!read_packet_id (r, p, error))
    return FALSE;
  if (V5 (version)
      && !mqtt_props_decode (r, MQTT_UNSUBSCRIBE, MQTT_ROLE_SERVER, &p->props, error))
    return FALSE;
  while (mqtt_reader_left (r) > 0)
    {
      char *filter = mqtt_read_string (r, "topic filter", error);

      if (filter == NULL)
        return FALSE;
      g_ptr_array_add (p->unsubscribe.filters, filter);
      if (filter[0] == '\0')
        {
          mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                          "empty topic filter (MQTT-4.7.3-1)");
          return FALSE;
        }
    }
  if (p->unsubscribe.filters->len == 0)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "no topic filter (MQTT-3.10.3-2)");
      return FALSE;
    }
  return TRUE;
}

/* SUBACK and UNSUBACK: reason codes to the end (v3.1.1 UNSUBACK has none). */
static gboolean
decode_ack_list (MqttReader *r, MqttPacket *p, MqttVersion version, GError **error)
{
  static const guint8 v3_suback[] = { 0x00, 0x01, 0x02, 0x80 };
  static const guint8 v5_suback[] = {
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
  };
  static const guint8 v5_unsuback[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91 };
  gboolean sub = p->type == MQTT_SUBACK;
  GByteArray *reasons = sub ? p->suback.reasons : p->unsuback.reasons;
  const guint8 *valid;
  gsize n_valid;

  if (!read_packet_id (r, p, error))
    return FALSE;
  if (!V5 (version) && !sub)
    return TRUE;
  if (V5 (version) && !mqtt_props_decode (r, p->type, MQTT_ROLE_CLIENT, &p->props, error))
    return FALSE;
  if (mqtt_reader_left (r) == 0)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "no reason codes");
      return FALSE;
    }
  valid = !V5 (version) ? v3_suback : sub ? v5_suback : v5_unsuback;
  n_valid = !V5 (version) ? sizeof v3_suback : sub ? sizeof v5_suback : sizeof v5_unsuback;
  for (gsize i = r->pos; i < r->end; i++)
    if (!check_reason (r->data[i], valid, n_valid, error))
      return FALSE;
  g_byte_array_append (reasons, r->data + r->pos, (guint) mqtt_reader_left (r));
  r->pos = r->end;
  return TRUE;
}

/* v5 DISCONNECT and AUTH: an optional reason code, then optional
 * properties (sections 3.14.2, 3.15.2). */
static gboolean
decode_reason_props (MqttReader *r, MqttPacket *p, MqttRole role, GError **error)
{
  static const guint8 disconnect_reasons[] = {
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93,
    0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1,
    0xA2,
  };
  static const guint8 auth_reasons[] = { 0x00, 0x18, 0x19 };
  gboolean auth = p->type == MQTT_AUTH;

  if (mqtt_reader_left (r) == 0)
    return TRUE;
  p->reason_on_wire = TRUE;
  if (!mqtt_read_u8 (r, &p->reason, "reason code", error))
    return FALSE;
  if (!check_reason (p->reason, auth ? auth_reasons : disconnect_reasons,
                     auth ? sizeof auth_reasons : sizeof disconnect_reasons, error))
    return FALSE;
  if (mqtt_reader_left (r) == 0)
    return TRUE;
  p->props_on_wire = TRUE;
  if (!mqtt_props_decode (r, p->type, role, &p->props, error))
    return FALSE;
  /* MQTT 5 section 3.15.2.2.2: an AUTH names its method. */
  if (auth && !mqtt_props_has (&p->props, MQTT_PROP_AUTH_METHOD))
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "no Authentication Method");
      return FALSE;
    }
  return TRUE;
}

/* Which side may send a packet type (MQTT 5 section 2.1.2). */
gboolean
mqtt_check_direction (guint type, MqttVersion version, MqttRole role, GError **error)
{
  /* Bit per type: what a client sends (a server decodes) and the reverse. */
  const guint16 from_client = 1u << MQTT_CONNECT | 1u << MQTT_PUBLISH | 1u << MQTT_PUBACK
                              | 1u << MQTT_PUBREC | 1u << MQTT_PUBREL | 1u << MQTT_PUBCOMP
                              | 1u << MQTT_SUBSCRIBE | 1u << MQTT_UNSUBSCRIBE
                              | 1u << MQTT_PINGREQ | 1u << MQTT_DISCONNECT | 1u << MQTT_AUTH;
  const guint16 from_server = 1u << MQTT_CONNACK | 1u << MQTT_PUBLISH | 1u << MQTT_PUBACK
                              | 1u << MQTT_PUBREC | 1u << MQTT_PUBREL | 1u << MQTT_PUBCOMP
                              | 1u << MQTT_SUBACK | 1u << MQTT_UNSUBACK | 1u << MQTT_PINGRESP
                              | (V5 (version) ? 1u << MQTT_DISCONNECT : 0) | 1u << MQTT_AUTH;

  if (type == 0 || (type == MQTT_AUTH && !V5 (version)))
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "packet type %u is reserved%s", type,
                      type == MQTT_AUTH ? " before MQTT 5" : "");
      return FALSE;
    }
  if (((role == MQTT_ROLE_SERVER ? from_client : from_server) & (1u << type)) == 0)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s is not sent by %s",
                      mqtt_packet_type_name (type),
                      role == MQTT_ROLE_SERVER ? "clients" : "servers");
      return FALSE;
    }
  return TRUE;
}

/* MQTT-2.2.2-1/2: the fixed header flags are exact, except PUBLISH's. */
static gboolean
check_flags (guint type, guint8 flags, GError **error)
{
  guint8 expected;

  if (type == MQTT_PUBLISH)
    return TRUE;
  expected = (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE)
             ? 0x02 : 0x00;
  if (flags != expected)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "fixed header flags 0x%x, must be 0x%x", flags, expected);
      return FALSE;
    }
  return TRUE;
}

static gboolean
decode_body (MqttReader *r, MqttPacket *p, guint8 flags, MqttVersion version,
             MqttRole role, GError **error)
{
  switch (p->type)
    {
    case MQTT_CONNECT:
      return decode_connect (r, p, error);
    case MQTT_CONNACK:
      return decode_connack (r, p, version, error);
    case MQTT_PUBLISH:
      return decode_publish (r, p, flags, version, role, error);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
      return decode_ack (r, p, version, role, error);
    case MQTT_SUBSCRIBE:
      return decode_subscribe (r, p, version, error);
    case MQTT_UNSUBSCRIBE:
      return decode_unsubscribe (r, p, version, error);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
      return decode_ack_list (r, p, version, error);
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
      return TRUE;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
      return !V5 (version) || decode_reason_props (r, p, role, error);
    default:
      g_assert_not_reached ();
    }
}

MqttPacket *
mqtt_packet_decode (GBytes *packet, MqttVersion version, MqttRole role, GError **error)
{
  g_autoptr (MqttPacket) p = NULL;
  GError *local = NULL;
  MqttReader r;
  gsize size;
  const guint8 *data = g_bytes_get_data (packet, &size);
  guint8 first;
  guint32 remaining;
  guint header, type;

  if (!mqtt_frame_peek (data, size, &first, &remaining, &header, &local))
    {
      if (local == NULL)
        mqtt_set_error (&local, MQTT_RC_MALFORMED_PACKET, "truncated fixed header");
      g_propagate_error (error, local);
      return NULL;
    }
  type = first >> 4;
  if (header + (gsize) remaining != size)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "%s: remaining length %u, but %" G_GSIZE_FORMAT " bytes follow",
                      mqtt_packet_type_name (type), remaining, size - header);
      return NULL;
    }
  if (type != MQTT_CONNECT && version != MQTT_VERSION_3_1_1 && version != MQTT_VERSION_5)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s: the version is not known yet",
                      mqtt_packet_type_name (type));
      return NULL;
    }
  if (!mqtt_check_direction (type, version, role, &local) || !check_flags (type, first & 0x0F, &local))
    {
      g_prefix_error (&local, "%s: ", mqtt_packet_type_name (type));
      g_propagate_error (error, local);
      return NULL;
    }

  p = mqtt_packet_new (type);
  r.bytes = packet;
  r.data = data;
  r.pos = header;
  r.end = size;
  if (!decode_body (&r, p, first & 0x0F, version, role, &local))
    {
      g_prefix_error (&local, "%s: ", mqtt_packet_type_name (type));
      g_propagate_error (error, local);
      return NULL;
    }
  if (r.pos != r.end)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "%s: %" G_GSIZE_FORMAT " byte(s) past the end of its fields",
                      mqtt_packet_type_name (type), r.end - r.pos);
      return NULL;
    }
  return g_steal_pointer (&p);
}
