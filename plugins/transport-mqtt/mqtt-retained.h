/* transport-mqtt — the retained-message index: one value per topic name, in
 * a tree keyed by topic level, matched against a new subscription's filter.
 * A match walks only the part of the tree the filter can reach: exact levels
 * are looked up, `+` looks at the children of one node, `#` at one subtree;
 * retained messages elsewhere cost nothing.
 *
 * The values are the caller's (a retained message with its properties and
 * expiry); the index frees them with the GDestroyNotify it was given.
 *
 * Threads: no locking. Used from one thread at a time, like MqttSubs; the
 * transport serialises every call.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "mqtt-topic.h"

G_BEGIN_DECLS

typedef struct _MqttRetained MqttRetained;

/* `value_free` may be NULL. */
MqttRetained *mqtt_retained_new (GDestroyNotify value_free);
void mqtt_retained_free (MqttRetained *retained);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttRetained, mqtt_retained_free)

/* Keep `value` (transfer full) as the retained message of `topic`, a valid
 * topic name (mqtt_topic_name_validate), freeing the one it replaces. NULL
 * removes it: a retained PUBLISH with an empty payload (MQTT-3.3.1-6).
 * O(levels). */
void mqtt_retained_set (MqttRetained *retained,
                        const char *topic,
                        gsize topic_len,
                        gpointer value);

/* (transfer none) NULL when `topic` has no retained message. */
gpointer mqtt_retained_lookup (MqttRetained *retained,
                               const char *topic,
                               gsize topic_len);

guint mqtt_retained_count (MqttRetained *retained);       /* messages */
guint mqtt_retained_node_count (MqttRetained *retained);  /* root excluded */

/* One retained message found: its topic name (NUL-terminated, valid during
 * the call) and value (transfer none). Return FALSE to have it removed (it
 * expired) once the walk is over; the index must not be changed from here. */
typedef gboolean (*MqttRetainedFunc) (const char *topic,
                                      gsize topic_len,
                                      gpointer value,
                                      gpointer user_data);

/* Call `func` for every retained message whose topic `filter` (a valid
 * filter proper — retained messages are not sent for shared subscriptions,
 * 5.0 §4.8.2 — with MQTT-4.7.2-1 applied) matches, in no particular order.
 * Returns how many were reported; `*visited` (may be NULL) gets the number
 * of tree nodes looked at. */
guint mqtt_retained_match (MqttRetained *retained,
                           const char *filter,
                           gsize filter_len,
                           MqttRetainedFunc func,
                           gpointer user_data,
                           guint *visited);

/* Every retained message, `$` topics included (to persist or expire them
 * all). Same callback contract. */
guint mqtt_retained_foreach (MqttRetained *retained,
                             MqttRetainedFunc func,
                             gpointer user_data);

G_END_DECLS
