/* transport-mqtt — `[mqtt-map.NAME]` (CONFIG.md): plain MQTT topics ↔
 * Sluice streams.
 *
 *   [mqtt-map.sensors]
 *   filter = sensors/#
 *   stream = sensors
 *   key = topic              # or client-id
 *   direction = both         # in (default), out or both
 *   topic-prefix = bridge/sensors
 *
 * In (`in`, `both`): a PUBLISH whose topic matches `filter` is also appended
 * to `stream`, keyed by the topic or by the publisher's client id. Out
 * (`out`, `both`): records appended to `stream` by any transport are
 * published to MQTT subscribers on `{topic-prefix}/{record key}`.
 * `filter` is required for in and both and refused for out; `topic-prefix`
 * is required for out and both and refused for in.
 *
 * Matching walks the in-direction entries in file order with
 * mqtt_topic_matches() rather than building a subscription index: an
 * operator configures a handful of maps, and a plain list is free of the
 * index's per-thread match state, so any thread may match concurrently. The
 * caller only asks about plain topics (the IoT Hub device topics have their
 * own route to the `events` stream).
 *
 * Threads: an MqttMap never changes after mqtt_map_load(); a config reload
 * builds a new one.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

G_BEGIN_DECLS

typedef struct _MqttMap MqttMap;

typedef enum {
  MQTT_MAP_KEY_TOPIC,               /* the record key is the topic name */
  MQTT_MAP_KEY_CLIENT_ID,           /* the record key is the publisher's
                                     * client id */
} MqttMapKey;

/* Bit flags: `both` is in | out. */
typedef enum {
  MQTT_MAP_DIRECTION_IN = 1 << 0,
  MQTT_MAP_DIRECTION_OUT = 1 << 1,
  MQTT_MAP_DIRECTION_BOTH = MQTT_MAP_DIRECTION_IN | MQTT_MAP_DIRECTION_OUT,
} MqttMapDirection;

/* One section. Read-only; every string is owned by the MqttMap and lives as
 * long as it does. */
typedef struct {
  const char *name;                 /* NAME of [mqtt-map.NAME] */
  const char *filter;               /* in / both; NULL for out */
  gsize filter_len;
  /* The stream name. Entries naming the same stream share one string, so
   * callers may compare streams by pointer. */
  const char *stream;
  MqttMapKey key;
  MqttMapDirection direction;
  const char *topic_prefix;         /* out / both, no trailing `/`; NULL for in */
} MqttMapEntry;

/* Parse every `[mqtt-map.*]` section of `config` (none: an empty map).
 * Errors (SLUICE_ERROR_INVALID, or the option parser's own) read
 * `FILE: [section] key: what (value 'x')`. (transfer full) */
MqttMap *mqtt_map_load (SluiceConfig *config, GError **error);
void mqtt_map_free (MqttMap *map);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttMap, mqtt_map_free)

/* Every entry, in file order. (transfer none) */
const MqttMapEntry *const *mqtt_map_get_entries (const MqttMap *map, guint *n_entries);

/* The entries with the out direction (out and both), in file order: the
 * streams to bridge out and where to. (transfer none) */
const MqttMapEntry *const *mqtt_map_get_out (const MqttMap *map, guint *n_entries);

/* Empty `out` (a GPtrArray without a free function; keep one per thread to
 * reuse its buffer) and fill it with the in-direction entries (in and both)
 * whose filter matches the topic name `topic` (valid, `topic_len` bytes):
 * the streams a PUBLISH there is appended to. At most one entry per stream,
 * the first in file order, so overlapping maps never append a message twice
 * to one stream. A wildcard at the start of a filter does not match a `$`
 * topic. Returns out->len. O(in-direction maps × topic levels); allocates
 * only when `out` grows. */
guint mqtt_map_match (const MqttMap *map,
                      const char *topic,
                      gsize topic_len,
                      GPtrArray *out);

/* The topic a record of an out-direction entry is published on:
 * `{topic-prefix}/{key}`; a record without a key (NULL or empty) goes to
 * `{topic-prefix}/`. Fails (SLUICE_ERROR_INVALID) when the key cannot be
 * part of a topic name (a `+` or `#`, U+0000, invalid UTF-8, over 65535
 * bytes in all): such a record is not published and the caller counts it.
 * (transfer full) */
char *mqtt_map_out_topic (const MqttMapEntry *entry,
                          const char *key,
                          gsize key_len,
                          GError **error);

G_END_DECLS
