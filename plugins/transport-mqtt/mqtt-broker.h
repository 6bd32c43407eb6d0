/* transport-mqtt — the broker: sessions, the subscription index, retained
 * messages and delivery between I/O workers. Private to the plugin.
 *
 * Threads. A connection lives on one worker; a publisher on worker A
 * matches the topic against the index (broker lock) and appends a queued
 * copy to each matching session (session lock); the session's connection,
 * on worker B, is woken once per batch and writes what its client's
 * Receive Maximum and socket allow. Lock order: broker, then session.
 *
 * No silent loss. A session whose queue passes the high-water mark makes
 * the publishers that fed it stop reading their sockets (back-pressure)
 * until it drains below the low-water mark; nothing accepted is dropped
 * for it. What must drop is counted: QoS 0 for a session without a
 * connection, expired messages, sessions past their expiry.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

#include "mqtt-codec.h"
#include "mqtt-subs.h"
#include "mqtt-retained.h"

G_BEGIN_DECLS

typedef struct _MqttBroker MqttBroker;
typedef struct _MqttSession MqttSession;
typedef struct _MqttConnHandle MqttConnHandle;

/* An application message as published: immutable once made, shared by
 * every queue it is in. */
typedef struct {
  gint ref_count;
  char *topic;
  GBytes *payload;
  guint8 qos;                    /* as published */
  gboolean retain;               /* as published */
  gint64 expires_at;             /* real time, µs; 0: never */
  /* The v5 properties forwarded to subscribers (MQTT-3.3.2-*): payload
   * format, content type, response topic, correlation data, user
   * properties. Topic alias, subscription ids and expiry are per copy. */
  MqttProperties props;
  char *origin;                  /* publishing client id, for no-local and logs */
} MqttMessage;

MqttMessage *mqtt_message_new (const char *topic, GBytes *payload, guint8 qos,
                               gboolean retain);
MqttMessage *mqtt_message_ref (MqttMessage *message);
void mqtt_message_unref (MqttMessage *message);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttMessage, mqtt_message_unref)
/* For the KV: a GVariant serialization; NULL when `bytes` are not one. */
GBytes *mqtt_message_serialize (const MqttMessage *message, guint8 qos,
                                const GArray *sub_ids);
MqttMessage *mqtt_message_deserialize (GBytes *bytes, guint8 *qos, GArray **sub_ids);

/* One copy waiting in (or sent from) a session. */
typedef struct {
  MqttMessage *message;
  guint8 qos;                    /* min (published, granted) */
  gboolean retain;               /* the RETAIN flag this copy carries */
  GArray *sub_ids;               /* guint32, NULL: none */
  guint64 store_seq;             /* its KV key in a persistent session; 0: none */
  guint16 packet_id;             /* once sent with QoS > 0 */
  gboolean released;             /* QoS 2: PUBREC came, PUBREL sent */
} MqttQueued;

void mqtt_queued_free (MqttQueued *queued);

/* A connection as other threads see it: where it lives, and (on that
 * worker only) the connection itself, NULL once it closed. */
struct _MqttConnHandle {
  gint ref_count;
  GMainContext *context;
  gpointer conn;                 /* MqttConn *, read on `context` only */
};

MqttConnHandle *mqtt_conn_handle_new (GMainContext *context, gpointer conn);
MqttConnHandle *mqtt_conn_handle_ref (MqttConnHandle *handle);
void mqtt_conn_handle_unref (MqttConnHandle *handle);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttConnHandle, mqtt_conn_handle_unref)

/* Called on a handle's worker: the session has messages to send, or a
 * publisher may read again, or the connection lost its session. */
typedef void (*MqttHandleFunc) (MqttConnHandle *handle, gpointer conn);

typedef struct {
  MqttHandleFunc pump;           /* the attached session has messages */
  MqttHandleFunc resume;         /* a blocked publisher may read again */
  MqttHandleFunc taken_over;     /* another connection took the session */
  SluiceCounter *dropped_qos0_offline;
  SluiceCounter *dropped_expired;
  SluiceCounter *dropped_session_expired;
  SluiceCounter *backpressure;   /* times a publisher was paused */
  SluiceCounter *sessions;       /* gauge */
  SluiceCounter *retained;       /* gauge */
  SluiceCounter *messages_out[3];
  SluiceCounter *bytes_out;
} MqttBrokerHooks;

MqttBroker *mqtt_broker_new (const MqttBrokerHooks *hooks, guint queue_high_water);
void mqtt_broker_free (MqttBroker *broker);

/* --- sessions --- */

/* Find or make the session of `client_id` and attach `handle` to it.
 * `clean`: discard an existing one first. `*present`: an old one was kept.
 * `*ended_epoch`: the epoch of a persistent session `clean` discarded (its
 * stored state must be deleted), 0: none.
 * A live connection on it is told it was taken over. (transfer full) */
MqttSession *mqtt_broker_attach (MqttBroker *broker, const char *client_id, gboolean clean,
                                 guint32 expiry, MqttConnHandle *handle, gboolean *present,
                                 guint64 *ended_epoch);
/* The connection ended. The session stays for `expiry` seconds (0: it ends
 * now; G_MAXUINT32: never) unless another connection took it. Returns TRUE
 * when the session ended here (its persisted state must be deleted). */
gboolean mqtt_broker_detach (MqttBroker *broker, MqttSession *session, MqttConnHandle *handle,
                             guint32 expiry);
typedef struct {
  char *client_id;
  guint64 epoch;
} MqttEndedSession;
void mqtt_ended_session_free (MqttEndedSession *ended);
/* Sessions without a connection whose expiry passed: ended, counted.
 * Returns them (MqttEndedSession*, transfer full) so that their stored
 * state can be deleted. */
GPtrArray *mqtt_broker_expire_sessions (MqttBroker *broker);
MqttSession *mqtt_session_ref (MqttSession *session);
void mqtt_session_unref (MqttSession *session);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttSession, mqtt_session_unref)
const char *mqtt_session_get_client_id (MqttSession *session);
gboolean mqtt_session_is_persistent (MqttSession *session);
guint mqtt_broker_session_count (MqttBroker *broker);

/* Lock the session for the pump: the queue, the in-flight window, packet
 * ids. Only the attached connection's worker takes the copies. */
void mqtt_session_lock (MqttSession *session);
void mqtt_session_unlock (MqttSession *session);
/* (locked) The next copy to send, or NULL. Expired copies are dropped and
 * counted on the way. (transfer full) */
MqttQueued *mqtt_session_pop (MqttSession *session);
/* (locked) KV keys of stored copies dropped (expired) since the last
 * call, to delete; NULL: none. (transfer full) */
GPtrArray *mqtt_session_take_dead_keys (MqttSession *session);
/* (locked) Put a copy back at the front (the socket is full). */
void mqtt_session_push_front (MqttSession *session, MqttQueued *queued);
/* (locked) Assign a free packet id and keep `queued` in flight. */
guint16 mqtt_session_send_inflight (MqttSession *session, MqttQueued *queued);
/* (locked) The in-flight copy with `packet_id`, or NULL. */
MqttQueued *mqtt_session_inflight_lookup (MqttSession *session, guint16 packet_id);
/* (locked) Done with it (PUBACK / PUBCOMP / a failure reason): removed and
 * returned (transfer full). */
MqttQueued *mqtt_session_inflight_remove (MqttSession *session, guint16 packet_id);
guint mqtt_session_inflight_count (MqttSession *session);
/* (locked) Every in-flight copy in the order sent, for a resumed session. */
GList *mqtt_session_inflight_list (MqttSession *session);
/* (locked) The queue passed below its low-water mark: the publishers it
 * held back are returned (transfer full: MqttConnHandle*) to be resumed. */
GPtrArray *mqtt_session_take_waiters_if_drained (MqttSession *session);
/* (locked) Clear the pending-wake flag (the pump runs now). */
void mqtt_session_woken (MqttSession *session);
guint mqtt_session_queue_length (MqttSession *session);
/* QoS 2 PUBLISHes received whose PUBREL has not come (MQTT-4.3.3): a
 * resent PUBLISH is not delivered twice. (locked) */
gboolean mqtt_session_qos2_received (MqttSession *session, guint16 packet_id);
void mqtt_session_qos2_add (MqttSession *session, guint16 packet_id);
gboolean mqtt_session_qos2_release (MqttSession *session, guint16 packet_id);
/* (locked) The next KV sequence number of the session's stored copies. */
guint64 mqtt_session_next_store_seq (MqttSession *session);
void mqtt_session_set_store_seq (MqttSession *session, guint64 next);

/* --- subscriptions --- */

gboolean mqtt_broker_subscribe (MqttBroker *broker, MqttSession *session, const char *filter,
                                const MqttSubOptions *options, gboolean *existed,
                                GError **error);
gboolean mqtt_broker_unsubscribe (MqttBroker *broker, MqttSession *session,
                                  const char *filter);
/* Every subscription of the session (filter, options), for persistence. */
void mqtt_broker_foreach_subscription (MqttBroker *broker, MqttSession *session,
                                       MqttSubsForeachFunc func, gpointer user_data);

/* --- publishing --- */

typedef struct {
  guint matched;                 /* sessions that got a copy */
  gboolean blocked;              /* some session is over its high-water mark:
                                    the publisher was added as a waiter */
  /* Copies queued to persistent sessions, to store before the PUBACK:
   * (client id, seq, serialized) triples. */
  GPtrArray *stored_keys;        /* char *: `q/{client}/{seq}` */
  GPtrArray *stored_values;      /* GBytes * */
} MqttPublishResult;

void mqtt_publish_result_clear (MqttPublishResult *result);

/* Deliver `message` to every matching session. `publisher`: the publishing
 * session (no-local), may be NULL. `waiter`: the publisher's handle, to be
 * resumed when a full session drains (NULL: never block, e.g. wills). */
void mqtt_broker_publish (MqttBroker *broker, MqttMessage *message, MqttSession *publisher,
                          MqttConnHandle *waiter, MqttPublishResult *result);
/* Queue a copy to one session directly (restored state, retained on
 * subscribe). (queued: transfer full) */
void mqtt_broker_enqueue (MqttBroker *broker, MqttSession *session, MqttQueued *queued);

/* Resume the publishers a drained session held back. (waiters: transfer none) */
void mqtt_broker_resume_waiters (MqttBroker *broker, GPtrArray *waiters);
/* Wake the session's connection for another pump (more is queued). */
void mqtt_broker_wake (MqttBroker *broker, MqttSession *session);
/* TRUE when `session` is still the client id's session and has a
 * connection (a delayed will is then not sent). */
gboolean mqtt_broker_session_is_attached (MqttBroker *broker, const char *client_id,
                                          MqttSession *session);
/* A stored session at start-up, without a connection. (transfer none) */
MqttSession *mqtt_broker_restore_session (MqttBroker *broker, const char *client_id,
                                          guint32 expiry, guint64 epoch);

gboolean mqtt_broker_has_session (MqttBroker *broker, const char *client_id);
/* (transfer none) Only while nothing can end sessions (start-up). */
MqttSession *mqtt_broker_lookup_session (MqttBroker *broker, const char *client_id);

/* --- retained --- */

/* Store (or, with an empty payload, delete) the retained message of its
 * topic. */
void mqtt_broker_retain (MqttBroker *broker, MqttMessage *message);
/* Retained messages matching `filter`, (transfer full: MqttMessage*). */
GPtrArray *mqtt_broker_retained_matching (MqttBroker *broker, const char *filter);
guint mqtt_broker_retained_count (MqttBroker *broker);

/* KV keys. (transfer full) */
char *mqtt_kv_session_key (const char *client_id);
/* Stored copies: `q/{client}/{epoch}/{seq}`. The epoch changes with every
 * new session of a client id, so deleting an ended session's copies never
 * touches those of the session that replaced it. `epoch` 0 in the prefix:
 * every epoch. */
char *mqtt_kv_queued_key (const char *client_id, guint64 epoch, guint64 seq);
char *mqtt_kv_queued_prefix (const char *client_id, guint64 epoch);
/* i/{client}/{epoch}/{packet id}: a QoS 2 PUBLISH taken, its PUBREL not yet
 * come (persistent sessions). */
char *mqtt_kv_qos2_key (const char *client_id, guint64 epoch, guint16 packet_id);
char *mqtt_kv_qos2_prefix (const char *client_id, guint64 epoch);
guint64 mqtt_session_get_epoch (MqttSession *session);
void mqtt_session_set_epoch (MqttSession *session, guint64 epoch);
char *mqtt_kv_retained_key (const char *topic);

G_END_DECLS
