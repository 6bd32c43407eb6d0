/* transport-mqtt — codec basics: errors and names, the bounds-checked reader
 * and the counting writer, packet lifetime, framing, the incremental stream
 * decoder and the replies to refused packets.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec-private.h"

#include <string.h>

G_DEFINE_QUARK (mqtt-codec-error-quark, mqtt_codec_error)

void
mqtt_set_error (GError **error, guint8 reason, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL)
    *error = g_error_new_valist (MQTT_CODEC_ERROR, reason, format, args);
  va_end (args);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

static const char *const packet_names[] = {
  "reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
  "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
  "PINGRESP", "DISCONNECT", "AUTH",
};

const char *
mqtt_packet_type_name (guint type)
{
  return type < G_N_ELEMENTS (packet_names) ? packet_names[type] : "reserved";
}

const char *
mqtt_reason_name (guint8 reason)
{
  switch (reason)
    {
    case 0x00: return "Success";
    case 0x01: return "Granted QoS 1";
    case 0x02: return "Granted QoS 2";
    case 0x04: return "Disconnect with Will Message";
    case 0x10: return "No matching subscribers";
    case 0x11: return "No subscription existed";
    case 0x18: return "Continue authentication";
    case 0x19: return "Re-authenticate";
    case 0x80: return "Unspecified error";
    case 0x81: return "Malformed Packet";
    case 0x82: return "Protocol Error";
    case 0x83: return "Implementation specific error";
    case 0x84: return "Unsupported Protocol Version";
    case 0x85: return "Client Identifier not valid";
    case 0x86: return "Bad User Name or Password";
    case 0x87: return "Not authorized";
    case 0x88: return "Server unavailable";
    case 0x89: return "Server busy";
    case 0x8A: return "Banned";
    case 0x8B: return "Server shutting down";
    case 0x8C: return "Bad authentication method";
    case 0x8D: return "Keep Alive timeout";
    case 0x8E: return "Session taken over";
    case 0x8F: return "Topic Filter invalid";
    case 0x90: return "Topic Name invalid";
    case 0x91: return "Packet Identifier in use";
    case 0x92: return "Packet Identifier not found";
    case 0x93: return "Receive Maximum exceeded";
    case 0x94: return "Topic Alias invalid";
    case 0x95: return "Packet too large";
    case 0x96: return "Message rate too high";
    case 0x97: return "Quota exceeded";
    case 0x98: return "Administrative action";
    case 0x99: return "Payload format invalid";
    case 0x9A: return "Retain not supported";
    case 0x9B: return "QoS not supported";
    case 0x9C: return "Use another server";
    case 0x9D: return "Server moved";
    case 0x9E: return "Shared Subscriptions not supported";
    case 0x9F: return "Connection rate exceeded";
    case 0xA0: return "Maximum connect time";
    case 0xA1: return "Subscription Identifiers not supported";
    case 0xA2: return "Wildcard Subscriptions not supported";
    default: return NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

static gboolean
need (MqttReader *r, gsize n, const char *what, GError **error)
{
  if (mqtt_reader_left (r) < n)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "%s runs past the end of the packet", what);
      return FALSE;
    }
  return TRUE;
}

gboolean
mqtt_read_u8 (MqttReader *r, guint8 *out, const char *what, GError **error)
{
  if (!need (r, 1, what, error))
    return FALSE;
  *out = r->data[r->pos++];
  return TRUE;
}

gboolean
mqtt_read_u16 (MqttReader *r, guint16 *out, const char *what, GError **error)
{
  if (!need (r, 2, what, error))
    return FALSE;
  *out = (guint16) ((r->data[r->pos] << 8) | r->data[r->pos + 1]);
  r->pos += 2;
  return TRUE;
}

gboolean
mqtt_read_u32 (MqttReader *r, guint32 *out, const char *what, GError **error)
{
  const guint8 *p;

  if (!need (r, 4, what, error))
    return FALSE;
  p = r->data + r->pos;
  *out = ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
  r->pos += 4;
  return TRUE;
}

gboolean
mqtt_read_varint (MqttReader *r, guint32 *out, const char *what, GError **error)
{
  guint32 value = 0;

  for (guint i = 0; i < 4; i++)
    {
      guint8 b;

      if (!mqtt_read_u8 (r, &b, what, error))
        return FALSE;
      value |= (guint32) (b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0)
        {
          *out = value;
          return TRUE;
        }
    }
  mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                  "%s: variable byte integer longer than 4 bytes", what);
  return FALSE;
}

char *
mqtt_read_string (MqttReader *r, const char *what, GError **error)
{
  const char *s;
  const char *bad = NULL;
  guint16 len;

  if (!mqtt_read_u16 (r, &len, what, error) || !need (r, len, what, error))
    return NULL;
  s = (const char *) r->data + r->pos;
  /* GLib's validator refuses ill-formed sequences, surrogates, code points
   * past U+10FFFF and, with an explicit length, U+0000 (MQTT-1.5.4-1/2). */
  if (!g_utf8_validate_len (s, len, &bad))
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "%s is not valid UTF-8 (byte %" G_GSIZE_FORMAT " of %u)", what,
                      (gsize) (bad - s), len);
      return NULL;
    }
  r->pos += len;
  return g_strndup (s, len);
}

GBytes *
mqtt_read_binary (MqttReader *r, const char *what, GError **error)
{
  GBytes *b;
  guint16 len;

  if (!mqtt_read_u16 (r, &len, what, error) || !need (r, len, what, error))
    return NULL;
  b = g_bytes_new_from_bytes (r->bytes, r->pos, len);
  r->pos += len;
  return b;
}

gboolean
mqtt_topic_name_has_no_wildcards (const char *s)
{
  return strpbrk (s, "+#") == NULL;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

void
mqtt_write_bytes (MqttWriter *w, const void *data, gsize len)
{
  if (w->out != NULL && len > 0)
    g_byte_array_append (w->out, data, (guint) len);
  w->len += len;
}

void
mqtt_write_u8 (MqttWriter *w, guint8 v)
{
  mqtt_write_bytes (w, &v, 1);
}

void
mqtt_write_u16 (MqttWriter *w, guint16 v)
{
  guint8 b[2] = { (guint8) (v >> 8), (guint8) v };

  mqtt_write_bytes (w, b, 2);
}

void
mqtt_write_u32 (MqttWriter *w, guint32 v)
{
  guint8 b[4] = { (guint8) (v >> 24), (guint8) (v >> 16), (guint8) (v >> 8), (guint8) v };

  mqtt_write_bytes (w, b, 4);
}

void
mqtt_write_varint (MqttWriter *w, guint32 v)
{
  guint8 b[4];
  guint n = 0;

  g_assert (v <= MQTT_MAX_VARINT);
  do
    {
      b[n] = v & 0x7F;
      v >>= 7;
      if (v > 0)
        b[n] |= 0x80;
      n++;
    }
  while (v > 0);
  mqtt_write_bytes (w, b, n);
}

void
mqtt_write_string (MqttWriter *w, const char *s)
{
  gsize len = s != NULL ? strlen (s) : 0;

  mqtt_write_u16 (w, (guint16) len);
  mqtt_write_bytes (w, s, len);
}

void
mqtt_write_binary (MqttWriter *w, GBytes *b)
{
  gsize len = 0;
  const void *data = b != NULL ? g_bytes_get_data (b, &len) : NULL;

  mqtt_write_u16 (w, (guint16) len);
  mqtt_write_bytes (w, data, len);
}

gboolean
mqtt_check_length (gsize len, const char *what, GError **error)
{
  if (len > G_MAXUINT16)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "%s is %" G_GSIZE_FORMAT " bytes; at most 65535 fit", what, len);
      return FALSE;
    }
  return TRUE;
}

guint
mqtt_varint_size (guint32 value)
{
  return value < 128 ? 1 : value < 16384 ? 2 : value < 2097152 ? 3 : 4;
}

void
mqtt_varint_append (GByteArray *out, guint32 value)
{
  MqttWriter w = { out, 0 };

  mqtt_write_varint (&w, value);
}

/* ------------------------------------------------------------------ */
/* Packets                                                             */

static void
subscription_clear (gpointer data)
{
  MqttSubscription *s = data;

  g_free (s->filter);
}

MqttPacket *
mqtt_packet_new (MqttPacketType type)
{
  MqttPacket *p = g_new0 (MqttPacket, 1);

  p->type = type;
  switch (type)
    {
    case MQTT_PUBLISH:
      p->publish.payload = g_bytes_new (NULL, 0);
      break;
    case MQTT_SUBSCRIBE:
      p->subscribe.subscriptions = g_array_new (FALSE, TRUE, sizeof (MqttSubscription));
      g_array_set_clear_func (p->subscribe.subscriptions, subscription_clear);
      break;
    case MQTT_UNSUBSCRIBE:
      p->unsubscribe.filters = g_ptr_array_new_with_free_func (g_free);
      break;
    case MQTT_SUBACK:
      p->suback.reasons = g_byte_array_new ();
      break;
    case MQTT_UNSUBACK:
      p->unsuback.reasons = g_byte_array_new ();
      break;
    default:
      break;
    }
  return p;
}

void
mqtt_packet_free (MqttPacket *p)
{
  if (p == NULL)
    return;
  switch (p->type)
    {
    case MQTT_CONNECT:
      g_free (p->connect.protocol_name);
      g_free (p->connect.client_id);
      mqtt_props_clear (&p->connect.will_props);
      g_free (p->connect.will_topic);
      g_clear_pointer (&p->connect.will_payload, g_bytes_unref);
      g_free (p->connect.username);
      g_clear_pointer (&p->connect.password, g_bytes_unref);
      break;
    case MQTT_PUBLISH:
      g_free (p->publish.topic);
      g_clear_pointer (&p->publish.payload, g_bytes_unref);
      break;
    case MQTT_SUBSCRIBE:
      g_clear_pointer (&p->subscribe.subscriptions, g_array_unref);
      break;
    case MQTT_UNSUBSCRIBE:
      g_clear_pointer (&p->unsubscribe.filters, g_ptr_array_unref);
      break;
    case MQTT_SUBACK:
      g_clear_pointer (&p->suback.reasons, g_byte_array_unref);
      break;
    case MQTT_UNSUBACK:
      g_clear_pointer (&p->unsuback.reasons, g_byte_array_unref);
      break;
    default:
      break;
    }
  mqtt_props_clear (&p->props);
  g_free (p);
}

void
mqtt_subscribe_add (MqttPacket *subscribe, const char *filter, guint8 qos,
                    gboolean no_local, gboolean retain_as_published,
                    guint8 retain_handling)
{
  MqttSubscription s = { g_strdup (filter), qos, no_local, retain_as_published,
                         retain_handling };

  g_return_if_fail (subscribe->type == MQTT_SUBSCRIBE && filter != NULL);
  g_array_append_val (subscribe->subscribe.subscriptions, s);
}

void
mqtt_unsubscribe_add (MqttPacket *unsubscribe, const char *filter)
{
  g_return_if_fail (unsubscribe->type == MQTT_UNSUBSCRIBE && filter != NULL);
  g_ptr_array_add (unsubscribe->unsubscribe.filters, g_strdup (filter));
}

/* ------------------------------------------------------------------ */
/* Framing                                                             */

gboolean
mqtt_frame_peek (const guint8 *data, gsize len, guint8 *first_byte,
                 guint32 *remaining_length, guint *header_size, GError **error)
{
  guint32 value = 0;

  for (guint i = 1; i <= 4; i++)
    {
      if (i >= len)
        return FALSE;
      value |= (guint32) (data[i] & 0x7F) << (7 * (i - 1));
      if ((data[i] & 0x80) == 0)
        {
          *first_byte = data[0];
          *remaining_length = value;
          *header_size = i + 1;
          return TRUE;
        }
    }
  /* MQTT-1.5.5 / 2.1.4: at most 4 bytes; the 4th must end it. */
  mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                  "%s: remaining length longer than 4 bytes",
                  mqtt_packet_type_name (data[0] >> 4));
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Replies to refused packets                                          */

void
mqtt_error_reply_for (guint8 reason, MqttVersion version, gboolean connected,
                      MqttErrorReply *reply)
{
  reply->version = version;
  reply->code = reason;
  if (reason == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION && !connected)
    {
      /* The client's version is unknown: answer in the oldest format we
       * speak, as mosquitto does (MQTT-3.1.2-2, MQTT 5 section 3.1.2.2). */
      reply->kind = MQTT_REPLY_CONNACK;
      reply->version = MQTT_VERSION_3_1_1;
      reply->code = MQTT_V3_CONNACK_BAD_PROTOCOL_VERSION;
    }
  else if (connected && version == MQTT_VERSION_5)
    {
      reply->kind = MQTT_REPLY_DISCONNECT;
    }
  else
    {
      reply->kind = MQTT_REPLY_CLOSE;
    }
}

void
mqtt_error_reply_encode (const MqttErrorReply *reply, GByteArray *out)
{
  switch (reply->kind)
    {
    case MQTT_REPLY_CONNACK:
      {
        guint8 v3[] = { 0x20, 0x02, 0x00, reply->code };
        guint8 v5[] = { 0x20, 0x03, 0x00, reply->code, 0x00 };

        if (reply->version == MQTT_VERSION_5)
          g_byte_array_append (out, v5, sizeof v5);
        else
          g_byte_array_append (out, v3, sizeof v3);
        break;
      }
    case MQTT_REPLY_DISCONNECT:
      mqtt_encode_disconnect (out, reply->version, reply->code);
      break;
    case MQTT_REPLY_CLOSE:
    default:
      break;
    }
}

/* ------------------------------------------------------------------ */
/* The stream decoder                                                  */

struct _MqttDecoder {
  MqttRole role;
  MqttVersion version;
  gsize max_packet_size;         /* 0: MQTT_MAX_PACKET_SIZE */
  gboolean connected;            /* server: CONNECT seen; client: CONNACK seen */
  GError *error;                 /* sticky once set */
  MqttErrorReply reply;
  /* mqtt_decoder_feed()'s bytes; decoding starts at `start`. */
  GByteArray *buffer;
  gsize start;
};

MqttDecoder *
mqtt_decoder_new (MqttRole role, gsize max_packet_size)
{
  MqttDecoder *d = g_new0 (MqttDecoder, 1);

  d->role = role;
  d->max_packet_size = max_packet_size;
  d->buffer = g_byte_array_new ();
  return d;
}

void
mqtt_decoder_free (MqttDecoder *d)
{
  if (d == NULL)
    return;
  g_clear_error (&d->error);
  g_byte_array_unref (d->buffer);
  g_free (d);
}

void
mqtt_decoder_set_version (MqttDecoder *d, MqttVersion version)
{
  g_return_if_fail (version == MQTT_VERSION_3_1_1 || version == MQTT_VERSION_5);
  d->version = version;
}

MqttVersion
mqtt_decoder_get_version (const MqttDecoder *d)
{
  return d->version;
}

void
mqtt_decoder_set_max_packet_size (MqttDecoder *d, gsize max_packet_size)
{
  d->max_packet_size = max_packet_size;
}

static MqttDecodeStatus
fail (MqttDecoder *d, GError *error, GError **out)
{
  d->error = error;
  mqtt_error_reply_for ((guint8) error->code, d->version, d->connected, &d->reply);
  g_propagate_error (out, g_error_copy (error));
  return MQTT_DECODE_ERROR;
}

/* Packet order, checked on the first byte so that nothing more is read:
 * a server's first packet is CONNECT and there is one (MQTT-3.1.0-1/2); a
 * client's first is CONNACK, or AUTH in v5 (MQTT 5 section 4.12). */
static gboolean
check_order (MqttDecoder *d, guint type, GError **error)
{
  const char *name = mqtt_packet_type_name (type);

  if (type == 0)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "packet type 0 is reserved");
      return FALSE;
    }
  if (d->role == MQTT_ROLE_SERVER)
    {
      if (!d->connected && type != MQTT_CONNECT)
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s before CONNECT", name);
          return FALSE;
        }
      if (d->connected && type == MQTT_CONNECT)
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "a second CONNECT");
          return FALSE;
        }
    }
  else
    {
      if (d->version == MQTT_VERSION_NONE)
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                          "%s: the client decoder has no version set", name);
          return FALSE;
        }
      if (!d->connected && type != MQTT_CONNACK
          && !(type == MQTT_AUTH && d->version == MQTT_VERSION_5))
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s before CONNACK", name);
          return FALSE;
        }
      if (d->connected && type == MQTT_CONNACK)
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "a second CONNACK");
          return FALSE;
        }
    }
  /* Once the version is known, a packet the peer may not send is refused
   * before its body is waited for. */
  if (d->connected || d->role == MQTT_ROLE_CLIENT)
    return mqtt_check_direction (type, d->version, d->role, error);
  return TRUE;
}

MqttDecodeStatus
mqtt_decoder_decode (MqttDecoder *d, const guint8 *data, gsize len, gsize *consumed,
                     MqttPacket **packet, GError **error)
{
  GError *local = NULL;
  g_autoptr (GBytes) bytes = NULL;
  MqttPacket *p;
  gsize max = d->max_packet_size != 0 ? d->max_packet_size : MQTT_MAX_PACKET_SIZE;
  guint8 first;
  guint32 remaining;
  guint header;
  gsize total;

  *consumed = 0;
  *packet = NULL;
  if (d->error != NULL)
    {
      g_propagate_error (error, g_error_copy (d->error));
      return MQTT_DECODE_ERROR;
    }
  if (len == 0)
    return MQTT_DECODE_NEED_MORE;
  if (!check_order (d, data[0] >> 4, &local))
    return fail (d, local, error);
  if (!mqtt_frame_peek (data, len, &first, &remaining, &header, &local))
    {
      if (local != NULL)
        return fail (d, local, error);
      return MQTT_DECODE_NEED_MORE;
    }
  total = header + (gsize) remaining;
  if (total > max)
    {
      mqtt_set_error (&local, MQTT_RC_PACKET_TOO_LARGE,
                      "%s of %" G_GSIZE_FORMAT " bytes is over the maximum packet size %"
                      G_GSIZE_FORMAT, mqtt_packet_type_name (first >> 4), total, max);
      return fail (d, local, error);
    }
  if (len < total)
    return MQTT_DECODE_NEED_MORE;

  bytes = g_bytes_new (data, total);
  p = mqtt_packet_decode (bytes, d->version, d->role, &local);
  if (p == NULL)
    return fail (d, local, error);
  if (d->role == MQTT_ROLE_SERVER && p->type == MQTT_CONNECT)
    {
      d->version = p->connect.protocol_level;
      d->connected = TRUE;
    }
  else if (d->role == MQTT_ROLE_CLIENT && p->type == MQTT_CONNACK)
    {
      d->connected = TRUE;
    }
  *consumed = total;
  *packet = p;
  return MQTT_DECODE_PACKET;
}

void
mqtt_decoder_feed (MqttDecoder *d, const guint8 *data, gsize len)
{
  /* Once refused, nothing more is kept: an oversize packet is never
   * buffered past the chunk that brought its header. */
  if (d->error != NULL || len == 0)
    return;
  if (d->start > 0 && d->start == d->buffer->len)
    {
      g_byte_array_set_size (d->buffer, 0);
      d->start = 0;
    }
  else if (d->start >= 4096 && d->start * 2 >= d->buffer->len)
    {
      g_byte_array_remove_range (d->buffer, 0, (guint) d->start);
      d->start = 0;
    }
  g_byte_array_append (d->buffer, data, (guint) len);
}

MqttDecodeStatus
mqtt_decoder_next (MqttDecoder *d, MqttPacket **packet, GError **error)
{
  gsize consumed = 0;
  MqttDecodeStatus status;

  /* No arithmetic on the NULL data of a never-filled array (UBSan). */
  status = mqtt_decoder_decode (d, d->buffer->len > 0 ? d->buffer->data + d->start : NULL,
                                d->buffer->len - d->start, &consumed, packet, error);
  d->start += consumed;
  if (status == MQTT_DECODE_ERROR)
    {
      g_byte_array_set_size (d->buffer, 0);
      d->start = 0;
    }
  return status;
}

gsize
mqtt_decoder_get_buffered (const MqttDecoder *d)
{
  return d->buffer->len - d->start;
}

void
mqtt_decoder_get_error_reply (const MqttDecoder *d, MqttErrorReply *reply)
{
  if (d->error == NULL)
    {
      reply->kind = MQTT_REPLY_CLOSE;
      reply->version = d->version;
      reply->code = MQTT_RC_SUCCESS;
      return;
    }
  *reply = d->reply;
}
