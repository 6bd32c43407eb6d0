/* transport-mqtt — what the codec's files share: a bounds-checked reader,
 * a writer that can also just count, and the property codec.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "mqtt-codec.h"

G_BEGIN_DECLS

/* Reads one packet. Every read checks `pos` against `end`; binary fields
 * are slices of `bytes`. */
typedef struct {
  GBytes *bytes;
  const guint8 *data;
  gsize pos;
  gsize end;
} MqttReader;

G_GNUC_PRINTF (3, 4)
void mqtt_set_error (GError **error, guint8 reason, const char *format, ...);

static inline gsize
mqtt_reader_left (const MqttReader *r)
{
  return r->end - r->pos;
}

gboolean mqtt_read_u8 (MqttReader *r, guint8 *out, const char *what, GError **error);
gboolean mqtt_read_u16 (MqttReader *r, guint16 *out, const char *what, GError **error);
gboolean mqtt_read_u32 (MqttReader *r, guint32 *out, const char *what, GError **error);
gboolean mqtt_read_varint (MqttReader *r, guint32 *out, const char *what, GError **error);
/* A UTF-8 Encoded String (MQTT-1.5.4): well-formed, no U+0000, no
 * surrogates. (transfer full) */
char *mqtt_read_string (MqttReader *r, const char *what, GError **error);
/* Binary Data: a slice of the packet. (transfer full) */
GBytes *mqtt_read_binary (MqttReader *r, const char *what, GError **error);
/* TRUE when `s` holds neither `+` nor `#`. */
gboolean mqtt_topic_name_has_no_wildcards (const char *s);

/* Writes into `out`, or only counts when `out` is NULL: encoders run once
 * to size the remaining length, then again to write. */
typedef struct {
  GByteArray *out;
  gsize len;
} MqttWriter;

void mqtt_write_u8 (MqttWriter *w, guint8 v);
void mqtt_write_u16 (MqttWriter *w, guint16 v);
void mqtt_write_u32 (MqttWriter *w, guint32 v);
void mqtt_write_varint (MqttWriter *w, guint32 v);
void mqtt_write_bytes (MqttWriter *w, const void *data, gsize len);
/* Two-byte length prefix and the bytes; the caller has checked the length
 * (mqtt_check_length). */
void mqtt_write_string (MqttWriter *w, const char *s);
void mqtt_write_binary (MqttWriter *w, GBytes *b);
gboolean mqtt_check_length (gsize len, const char *what, GError **error);

/* Whether the peer of `role` may send `type` in `version` (known). */
gboolean mqtt_check_direction (guint type, MqttVersion version, MqttRole role,
                               GError **error);

/* Pseudo packet type for a CONNECT's will properties (type 0 is reserved,
 * so its bit is free in the per-type masks). */
#define MQTT_PROPS_WILL 0

/* Read a property length and the properties after it. `packet_type` is an
 * MqttPacketType or MQTT_PROPS_WILL; `role` is who decodes. */
gboolean mqtt_props_decode (MqttReader *r, guint packet_type, MqttRole role,
                            MqttProperties *props, GError **error);
/* The size of the properties without the length in front, after checking
 * that they can be encoded for `packet_type`. */
gboolean mqtt_props_size (const MqttProperties *props, guint packet_type,
                          gsize *size, GError **error);
/* Write the property length and the properties (mqtt_props_size() said
 * they are fine). */
void mqtt_props_write (MqttWriter *w, const MqttProperties *props, gsize size);

G_END_DECLS
