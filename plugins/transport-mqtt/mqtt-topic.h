/* transport-mqtt — topic names and topic filters (MQTT 3.1.1 §4.7, 5.0 §4.7
 * and §4.8.2): validation, `$share/{name}/{filter}` parsing and matching.
 * Pure functions over byte ranges (a topic arrives from the wire without a
 * terminating NUL and may contain one); no I/O, no core calls, no state, so
 * any thread may call them.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* An MQTT UTF-8 string has a 16-bit length. */
#define MQTT_TOPIC_MAX_LENGTH 65535

/* Limits from the transport's config on top of the protocol's own. */
typedef struct {
  /* Bytes of the whole string as received (a shared subscription's
   * `$share/{name}/` prefix included); 0 or above MQTT_TOPIC_MAX_LENGTH:
   * MQTT_TOPIC_MAX_LENGTH. */
  gsize max_length;
  /* Levels of the topic name or of the topic filter (after a `$share/{name}/`
   * prefix); 0: no limit. `a/b` and `a/+` have 2 levels, `/` has 2. */
  guint max_levels;
} MqttTopicLimits;

#define MQTT_TOPIC_ERROR (mqtt_topic_error_quark ())
GQuark mqtt_topic_error_quark (void);

/* The state machine maps these to reason codes: for a PUBLISH every one is
 * 0x90 Topic Name invalid; for a SUBSCRIBE 0x8F Topic Filter invalid, or
 * 0x9E Shared Subscriptions not supported where it refuses them. */
typedef enum {
  MQTT_TOPIC_ERROR_EMPTY,            /* zero length (MQTT-4.7.3-1) */
  MQTT_TOPIC_ERROR_TOO_LONG,         /* above the length limit */
  MQTT_TOPIC_ERROR_TOO_MANY_LEVELS,  /* above the level limit */
  MQTT_TOPIC_ERROR_INVALID_UTF8,     /* ill-formed UTF-8 or U+0000 (MQTT-4.7.3-2) */
  MQTT_TOPIC_ERROR_WILDCARD,         /* `+` or `#` in a topic name (MQTT-3.3.2-2) */
  MQTT_TOPIC_ERROR_BAD_WILDCARD,     /* `+` or `#` not alone in its level, or
                                      * `#` not last (MQTT-4.7.1-2, -3) */
  MQTT_TOPIC_ERROR_BAD_SHARE,        /* `$share/...` malformed (MQTT-4.8.2-1, -2) */
} MqttTopicError;

/* A topic name a PUBLISH (or a will) may carry: 1..max_length bytes of
 * well-formed UTF-8 without U+0000, no `+` or `#`. `$` topics are valid
 * here (devices publish to `$iothub/...`); whether a client may use them is
 * an authorization question. `limits` may be NULL: protocol limits only. */
gboolean mqtt_topic_name_validate (const char *topic,
                                   gsize len,
                                   const MqttTopicLimits *limits,
                                   GError **error);

/* A topic filter as a SUBSCRIBE or an UNSUBSCRIBE carries it, shared or not. */
typedef struct {
  /* Shared subscription: the share name (1+ bytes, no `/`, `+`, `#`);
   * NULL otherwise. Points into the parsed string. */
  const char *share_name;
  gsize share_name_len;
  /* The topic filter proper: the whole string, or what follows
   * `$share/{name}/`. Points into the parsed string. */
  const char *filter;
  gsize filter_len;
  guint levels;                     /* levels of `filter` */
  gboolean has_wildcards;           /* `filter` contains `+` or `#` */
} MqttTopicFilter;

/* Validate `text` as a topic filter and split it. A string whose first level
 * is exactly `$share` is a shared subscription and must be
 * `$share/{name}/{filter}` with a valid, non-empty filter; `$sharex/...` is
 * an ordinary filter. `parsed` may be NULL (validate only); on failure it is
 * left untouched. `limits` may be NULL. */
gboolean mqtt_topic_filter_parse (const char *text,
                                  gsize len,
                                  const MqttTopicLimits *limits,
                                  MqttTopicFilter *parsed,
                                  GError **error);

/* TRUE when the topic name `topic` matches the topic filter `filter` (the
 * filter proper, without a `$share/{name}/` prefix). Both must be valid; a
 * filter whose first level is a wildcard does not match a topic that begins
 * with `$` (MQTT-4.7.2-1). A plain level-by-level walk: this is the
 * reference the subscription index is tested against, and the check for
 * ACL entries. */
gboolean mqtt_topic_matches (const char *filter,
                             gsize filter_len,
                             const char *topic,
                             gsize topic_len);

/* TRUE when every topic name that `requested` matches is also matched by
 * `allowed` (both valid filters proper): the check that a SUBSCRIBE stays
 * inside what an ACL grants. `devices/d1/#` covers `devices/d1/x/+` and
 * `devices/d1`; `#` does not cover `$SYS/#`; `a/+` does not cover `a/#`. */
gboolean mqtt_topic_filter_covers (const char *allowed,
                                   gsize allowed_len,
                                   const char *requested,
                                   gsize requested_len);

G_END_DECLS
