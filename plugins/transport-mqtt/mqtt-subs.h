/* transport-mqtt — the subscription index: which sessions get a PUBLISH.
 *
 * A trie over topic levels; each node has children by exact level, a `+`
 * child and a `#` child, and holds the subscriptions whose filter ends there
 * (plain ones, and shared ones grouped by share name). A match walks only
 * the nodes on paths the topic can take, so its cost depends on the topic's
 * levels and on the subscriptions that match, never on the ones that do not.
 * Subscribe and unsubscribe cost O(levels of the filter); a node frees
 * itself when its last subscription and its last child go.
 *
 * Threads: none of its own and no locking. The index is used from one thread
 * at a time; the transport serialises every call (subscribe, unsubscribe and
 * match alike), and a match result is only valid until the next call that
 * changes the index.
 *
 * Subscribers are opaque handles (the transport's session objects), compared
 * by pointer and never dereferenced or freed by the index. One session is
 * one client id, so "the same client" in the spec's rules (merged overlaps,
 * no-local) is "the same handle" here.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "mqtt-topic.h"

G_BEGIN_DECLS

typedef struct _MqttSubs MqttSubs;

/* The subscription options of MQTT 5 §3.8.3.1 (3.1.1 has the QoS only). */
typedef struct {
  guint8 qos;                       /* maximum QoS: 0, 1 or 2 */
  gboolean no_local;                /* not to the publishing client */
  gboolean retain_as_published;     /* keep the RETAIN flag when forwarding */
  guint8 retain_handling;           /* 0, 1 or 2; kept for the session's
                                     * records, the index does not use it */
  guint32 subscription_id;          /* 1..268435455; 0: none */
} MqttSubOptions;

#define MQTT_SUBSCRIPTION_ID_MAX 268435455u

#define MQTT_SUBS_ERROR (mqtt_subs_error_quark ())
GQuark mqtt_subs_error_quark (void);

typedef enum {
  MQTT_SUBS_ERROR_BAD_OPTIONS,      /* QoS, retain handling or subscription
                                     * identifier out of range */
  MQTT_SUBS_ERROR_SHARED_NO_LOCAL,  /* no-local on a shared subscription
                                     * (MQTT-3.8.3-4: a Protocol Error) */
} MqttSubsError;

/* `limits` (copied; NULL: protocol limits only) apply to every filter
 * subscribed. */
MqttSubs *mqtt_subs_new (const MqttTopicLimits *limits);
void mqtt_subs_free (MqttSubs *subs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttSubs, mqtt_subs_free)

/* Add or replace the subscription of `subscriber` to `filter` (as the
 * SUBSCRIBE carried it: `$share/{name}/{filter}` is a shared subscription).
 * A filter byte-identical to one this subscriber already has replaces its
 * options (MQTT-3.8.4-3); `*existed` (may be NULL) then says TRUE, which is
 * what Retain Handling 1 asks about. Fails with MQTT_TOPIC_ERROR for an
 * invalid filter (limits included), and with MQTT_SUBS_ERROR for bad
 * options; nothing changes then. `filter` is copied. O(levels). */
gboolean mqtt_subs_subscribe (MqttSubs *subs,
                              gpointer subscriber,
                              const char *filter,
                              gsize filter_len,
                              const MqttSubOptions *options,
                              gboolean *existed,
                              GError **error);

/* Remove that subscription. FALSE (no error: UNSUBACK's 0x11 No
 * subscription existed) when the subscriber has no such filter. O(levels). */
gboolean mqtt_subs_unsubscribe (MqttSubs *subs,
                                gpointer subscriber,
                                const char *filter,
                                gsize filter_len);

/* Remove every subscription of `subscriber` (its session ended); returns how
 * many. O(its subscriptions × their levels). */
guint mqtt_subs_remove_subscriber (MqttSubs *subs, gpointer subscriber);

/* The options of a subscription, or NULL when there is none. (transfer
 * none: valid until that subscription changes) */
const MqttSubOptions *mqtt_subs_lookup (MqttSubs *subs,
                                        gpointer subscriber,
                                        const char *filter,
                                        gsize filter_len);

/* Call `func` for each subscription of `subscriber` (to persist a session);
 * the filter as subscribed. The index must not change during the walk. */
typedef void (*MqttSubsForeachFunc) (const char *filter,
                                     const MqttSubOptions *options,
                                     gpointer user_data);
void mqtt_subs_foreach_of (MqttSubs *subs,
                           gpointer subscriber,
                           MqttSubsForeachFunc func,
                           gpointer user_data);

guint mqtt_subs_count (MqttSubs *subs);          /* subscriptions */
guint mqtt_subs_node_count (MqttSubs *subs);     /* trie nodes, root excluded */

/* One copy of the message to one subscriber. */
typedef struct {
  gpointer subscriber;
  /* NUL-terminated share name for a shared subscription's pick, NULL for the
   * merge of the subscriber's plain subscriptions. (transfer none: owned by
   * the index) */
  const char *share_name;
  /* Plain: the maximum QoS of all the subscriber's matching subscriptions
   * (MQTT-3.3.4-2). Shared: the picked member's QoS. The caller still caps
   * it at the PUBLISH's own QoS. */
  guint8 qos;
  /* Plain: TRUE when any matching subscription asks for it. */
  gboolean retain_as_published;
  /* Plain, and only when match() was given no publisher: TRUE when every
   * matching subscription has no-local, so the caller drops this copy if the
   * subscriber is the publishing client (MQTT-3.8.3-3). With a publisher
   * given the index has already left out that client's no-local
   * subscriptions, and this is FALSE. */
  gboolean no_local;
  /* Shared only: every member of the group refused (the `can_take`
   * callback); this is the member whose turn it was, for the caller to queue
   * to under back-pressure rather than drop. */
  gboolean all_busy;
  /* Subscription identifiers of the matching subscriptions that have one
   * (MQTT-3.3.4-3): `n_ids` of them from `first_id` in MqttSubsMatch.ids. */
  guint first_id;
  guint n_ids;
} MqttSubsDelivery;

/* The result of a match. Keep one per thread and pass it to every match:
 * its buffers are reused, so a match allocates nothing once they have
 * grown. */
typedef struct {
  GArray *deliveries;               /* MqttSubsDelivery */
  GArray *ids;                      /* guint32 subscription identifiers */
  guint visited;                    /* trie nodes the match looked at */
  /*< private >*/
  GString *topic;                   /* the topic, with NULs for `/` */
  GArray *levels;                   /* const char * into `topic` */
  GPtrArray *hits;                  /* plain subscriptions that matched */
  GHashTable *by_subscriber;        /* subscriber → index in deliveries + 1 */
  GArray *stack;                    /* nodes still to walk */
} MqttSubsMatch;

void mqtt_subs_match_init (MqttSubsMatch *match);
void mqtt_subs_match_clear (MqttSubsMatch *match);

static inline const guint32 *
mqtt_subs_delivery_ids (const MqttSubsMatch *match,
                        const MqttSubsDelivery *delivery)
{
  return &g_array_index (match->ids, guint32, delivery->first_id);
}

/* Back-pressure for shared subscriptions: FALSE when `subscriber` cannot take
 * a message now, so the next member in turn gets it. Must not change the
 * index. */
typedef gboolean (*MqttSubsCanTakeFunc) (gpointer subscriber,
                                         guint8 qos,
                                         gpointer user_data);

/* Fill `match` with the copies a PUBLISH to `topic` goes out as: one per
 * subscriber with a matching plain subscription (merged), plus one per
 * shared group with a matching filter (a member picked round-robin, skipping
 * those `can_take` refuses; `can_take` NULL: everyone can). `topic` must be a
 * valid topic name (mqtt_topic_name_validate). `publisher`: the publishing
 * client's handle, whose no-local subscriptions are left out; NULL when the
 * message comes from elsewhere (a stream bridged out) or when the caller
 * applies no-local itself (see MqttSubsDelivery.no_local). The order of the
 * deliveries is unspecified. Advances the round-robin turns. */
void mqtt_subs_match (MqttSubs *subs,
                      const char *topic,
                      gsize topic_len,
                      gpointer publisher,
                      MqttSubsCanTakeFunc can_take,
                      gpointer can_take_data,
                      MqttSubsMatch *match);

G_END_DECLS
