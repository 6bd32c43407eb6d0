/* transport-mqtt — encoding packets of either version. Each packet is
 * checked, then written twice: once to count its remaining length, once
 * into the output, so that nothing is appended for a packet that cannot be
 * encoded.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec-private.h"

#include <string.h>

#define V5(version) ((version) == MQTT_VERSION_5)

typedef struct {
  gsize props;                   /* size of packet->props */
  gsize will_props;              /* size of the CONNECT's will properties */
} Sizes;

static gboolean
check_string (const char *s, const char *what, GError **error)
{
  return mqtt_check_length (s != NULL ? strlen (s) : 0, what, error);
}

static gboolean
check_binary (GBytes *b, const char *what, GError **error)
{
  return mqtt_check_length (b != NULL ? g_bytes_get_size (b) : 0, what, error);
}

static gboolean
check_qos (guint8 qos, const char *what, GError **error)
{
  if (qos > 2)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "%s %u", what, qos);
      return FALSE;
    }
  return TRUE;
}

static gboolean
has_packet_id (const MqttPacket *p)
{
  switch (p->type)
    {
    case MQTT_PUBLISH:
      return p->publish.qos > 0;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_SUBSCRIBE:
    case MQTT_SUBACK:
    case MQTT_UNSUBSCRIBE:
    case MQTT_UNSUBACK:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Whether `props` go on the wire in v5 at all (the short forms). */
static gboolean
carries_props (const MqttPacket *p)
{
  switch (p->type)
    {
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
      return FALSE;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
      return p->props_on_wire || !mqtt_props_is_empty (&p->props);
    default:
      return TRUE;
    }
}

static gboolean
carries_reason (const MqttPacket *p)
{
  return p->reason_on_wire || p->reason != 0 || carries_props (p);
}

static gboolean
check_packet (const MqttPacket *p, MqttVersion version, Sizes *sizes, GError **error)
{
  if (p->type < MQTT_CONNECT || p->type > MQTT_AUTH || (p->type == MQTT_AUTH && !V5 (version)))
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "no packet type %u in MQTT %s",
                      p->type, V5 (version) ? "5" : "3.1.1");
      return FALSE;
    }
  if (has_packet_id (p) && p->packet_id == 0)
    {
      mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "packet identifier 0");
      return FALSE;
    }
  if (V5 (version) && carries_props (p)
      && !mqtt_props_size (&p->props, p->type, &sizes->props, error))
    return FALSE;

  switch (p->type)
    {
    case MQTT_CONNECT:
      {
        const MqttConnect *c = &p->connect;

        if (!check_string (c->client_id, "client identifier", error)
            || !check_string (c->username, "user name", error)
            || !check_binary (c->password, "password", error))
          return FALSE;
        if (!V5 (version) && c->password != NULL && c->username == NULL)
          {
            mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                            "MQTT 3.1.1 has no password without a user name");
            return FALSE;
          }
        if (c->will
            && (!check_qos (c->will_qos, "will QoS", error)
                || !check_string (c->will_topic, "will topic", error)
                || !check_binary (c->will_payload, "will payload", error)
                || (V5 (version)
                    && !mqtt_props_size (&c->will_props, MQTT_PROPS_WILL, &sizes->will_props,
                                         error))))
          return FALSE;
        return TRUE;
      }
    case MQTT_PUBLISH:
      return check_qos (p->publish.qos, "QoS", error)
             && check_string (p->publish.topic, "topic name", error);
    case MQTT_SUBSCRIBE:
      {
        GArray *subs = p->subscribe.subscriptions;

        if (subs == NULL || subs->len == 0)
          {
            mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "SUBSCRIBE without a filter");
            return FALSE;
          }
        for (guint i = 0; i < subs->len; i++)
          {
            const MqttSubscription *s = &g_array_index (subs, MqttSubscription, i);

            if (!check_string (s->filter, "topic filter", error)
                || !check_qos (s->qos, "QoS", error))
              return FALSE;
            if (s->retain_handling > 2)
              {
                mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "retain handling %u",
                                s->retain_handling);
                return FALSE;
              }
          }
        return TRUE;
      }
    case MQTT_UNSUBSCRIBE:
      {
        GPtrArray *filters = p->unsubscribe.filters;

        if (filters == NULL || filters->len == 0)
          {
            mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "UNSUBSCRIBE without a filter");
            return FALSE;
          }
        for (guint i = 0; i < filters->len; i++)
          if (!check_string (filters->pdata[i], "topic filter", error))
            return FALSE;
        return TRUE;
      }
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
      {
        GByteArray *reasons = p->type == MQTT_SUBACK ? p->suback.reasons : p->unsuback.reasons;

        if ((p->type == MQTT_SUBACK || V5 (version)) && (reasons == NULL || reasons->len == 0))
          {
            mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s without a reason code",
                            mqtt_packet_type_name (p->type));
            return FALSE;
          }
        return TRUE;
      }
    default:
      return TRUE;
    }
}

static guint8
first_byte (const MqttPacket *p)
{
  guint8 flags = 0;

  switch (p->type)
    {
    case MQTT_PUBLISH:
      flags = (guint8) ((p->publish.dup ? 0x08 : 0) | (p->publish.qos << 1)
                        | (p->publish.retain ? 0x01 : 0));
      break;
    case MQTT_PUBREL:
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
      flags = 0x02;
      break;
    default:
      break;
    }
  return (guint8) (p->type << 4) | flags;
}

static void
write_connect (MqttWriter *w, const MqttPacket *p, MqttVersion version, const Sizes *sizes)
{
  const MqttConnect *c = &p->connect;
  guint8 flags = 0;

  if (c->username != NULL)
    flags |= 0x80;
  if (c->password != NULL)
    flags |= 0x40;
  if (c->will)
    flags |= (guint8) (0x04 | (c->will_qos << 3) | (c->will_retain ? 0x20 : 0));
  if (c->clean_start)
    flags |= 0x02;
  mqtt_write_string (w, "MQTT");
  mqtt_write_u8 (w, (guint8) version);
  mqtt_write_u8 (w, flags);
  mqtt_write_u16 (w, c->keepalive);
  if (V5 (version))
    mqtt_props_write (w, &p->props, sizes->props);
  mqtt_write_string (w, c->client_id);
  if (c->will)
    {
      if (V5 (version))
        mqtt_props_write (w, &c->will_props, sizes->will_props);
      mqtt_write_string (w, c->will_topic);
      mqtt_write_binary (w, c->will_payload);
    }
  if (c->username != NULL)
    mqtt_write_string (w, c->username);
  if (c->password != NULL)
    mqtt_write_binary (w, c->password);
}

static void
write_body (MqttWriter *w, const MqttPacket *p, MqttVersion version, const Sizes *sizes)
{
  switch (p->type)
    {
    case MQTT_CONNECT:
      write_connect (w, p, version, sizes);
      break;
    case MQTT_CONNACK:
      mqtt_write_u8 (w, p->connack.session_present ? 0x01 : 0x00);
      mqtt_write_u8 (w, p->reason);
      if (V5 (version))
        mqtt_props_write (w, &p->props, sizes->props);
      break;
    case MQTT_PUBLISH:
      {
        gsize len = 0;
        const void *data = p->publish.payload != NULL
                           ? g_bytes_get_data (p->publish.payload, &len) : NULL;

        mqtt_write_string (w, p->publish.topic);
        if (p->publish.qos > 0)
          mqtt_write_u16 (w, p->packet_id);
        if (V5 (version))
          mqtt_props_write (w, &p->props, sizes->props);
        mqtt_write_bytes (w, data, len);
        break;
      }
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
      if (p->type != MQTT_DISCONNECT && p->type != MQTT_AUTH)
        mqtt_write_u16 (w, p->packet_id);
      if (V5 (version) && carries_reason (p))
        mqtt_write_u8 (w, p->reason);
      if (V5 (version) && carries_props (p))
        mqtt_props_write (w, &p->props, sizes->props);
      break;
    case MQTT_SUBSCRIBE:
      mqtt_write_u16 (w, p->packet_id);
      if (V5 (version))
        mqtt_props_write (w, &p->props, sizes->props);
      for (guint i = 0; i < p->subscribe.subscriptions->len; i++)
        {
          const MqttSubscription *s = &g_array_index (p->subscribe.subscriptions,
                                                      MqttSubscription, i);
          guint8 options = s->qos;

          if (V5 (version))
            options |= (guint8) ((s->no_local ? 0x04 : 0) | (s->retain_as_published ? 0x08 : 0)
                                 | (s->retain_handling << 4));
          mqtt_write_string (w, s->filter);
          mqtt_write_u8 (w, options);
        }
      break;
    case MQTT_UNSUBSCRIBE:
      mqtt_write_u16 (w, p->packet_id);
      if (V5 (version))
        mqtt_props_write (w, &p->props, sizes->props);
      for (guint i = 0; i < p->unsubscribe.filters->len; i++)
        mqtt_write_string (w, p->unsubscribe.filters->pdata[i]);
      break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
      {
        GByteArray *reasons = p->type == MQTT_SUBACK ? p->suback.reasons : p->unsuback.reasons;

        mqtt_write_u16 (w, p->packet_id);
        if (V5 (version))
          mqtt_props_write (w, &p->props, sizes->props);
        if (p->type == MQTT_SUBACK || V5 (version))
          mqtt_write_bytes (w, reasons->data, reasons->len);
        break;
      }
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
    default:
      break;
    }
}

gboolean
mqtt_packet_encode (const MqttPacket *packet, MqttVersion version, GByteArray *out,
                    GError **error)
{
  GError *local = NULL;
  Sizes sizes = { 0, 0 };
  MqttWriter counter = { NULL, 0 };
  MqttWriter writer = { out, 0 };

  if (version != MQTT_VERSION_3_1_1 && version != MQTT_VERSION_5)
    {
      mqtt_set_error (error, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                      "cannot encode for protocol level %u", version);
      return FALSE;
    }
  if (!check_packet (packet, version, &sizes, &local))
    {
      g_prefix_error (&local, "%s: ", mqtt_packet_type_name (packet->type));
      g_propagate_error (error, local);
      return FALSE;
    }
  write_body (&counter, packet, version, &sizes);
  if (counter.len > MQTT_MAX_REMAINING_LENGTH)
    {
      mqtt_set_error (error, MQTT_RC_PACKET_TOO_LARGE,
                      "%s: remaining length %" G_GSIZE_FORMAT " is over %u",
                      mqtt_packet_type_name (packet->type), counter.len,
                      MQTT_MAX_REMAINING_LENGTH);
      return FALSE;
    }
  mqtt_write_u8 (&writer, first_byte (packet));
  mqtt_write_varint (&writer, (guint32) counter.len);
  write_body (&writer, packet, version, &sizes);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Small packets                                                       */

void
mqtt_encode_ack (GByteArray *out, MqttVersion version, MqttPacketType type,
                 guint16 packet_id, guint8 reason)
{
  guint8 b[5];
  guint n = 4;

  g_return_if_fail (type >= MQTT_PUBACK && type <= MQTT_PUBCOMP);
  b[0] = (guint8) (type << 4) | (type == MQTT_PUBREL ? 0x02 : 0x00);
  b[1] = 2;
  b[2] = (guint8) (packet_id >> 8);
  b[3] = (guint8) packet_id;
  if (V5 (version) && reason != 0)
    {
      b[1] = 3;
      b[4] = reason;
      n = 5;
    }
  g_byte_array_append (out, b, n);
}

void
mqtt_encode_pingresp (GByteArray *out)
{
  static const guint8 b[] = { MQTT_PINGRESP << 4, 0x00 };

  g_byte_array_append (out, b, sizeof b);
}

void
mqtt_encode_pingreq (GByteArray *out)
{
  static const guint8 b[] = { MQTT_PINGREQ << 4, 0x00 };

  g_byte_array_append (out, b, sizeof b);
}

void
mqtt_encode_disconnect (GByteArray *out, MqttVersion version, guint8 reason)
{
  guint8 b[] = { MQTT_DISCONNECT << 4, 0x01, reason };

  if (!V5 (version) || reason == 0)
    b[1] = 0x00;
  g_byte_array_append (out, b, b[1] == 0 ? 2 : 3);
}
