/* transport-mqtt — the connection's state, shared by mqtt-connection.c
 * (CONNECT, keepalive, AUTH, close), mqtt-pubsub.c (PUBLISH both ways,
 * SUBSCRIBE) and mqtt-persist.c. Everything in it is touched on the
 * connection's worker only.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "mqtt-transport.h"

G_BEGIN_DECLS

/* PUBLISHes whose append is in flight per connection before reading pauses
 * (also the Receive Maximum told to v5 clients unless configured lower). */
#define MQTT_MAX_INFLIGHT 1024

struct _MqttConn {
  gint ref_count;
  MqttTransport *transport;
  SluiceConnection *connection;  /* NULL once closed */
  MqttConnHandle *handle;        /* how other workers reach this connection */
  MqttDecoder *decoder;
  MqttVersion version;
  gboolean connected;            /* CONNACK 0 sent */
  gboolean closing;              /* a fatal answer is queued: ignore input */
  gboolean paused;               /* too many appends in flight */
  gboolean blocked;              /* a subscriber's session is full */
  gboolean disconnected;         /* DISCONNECT received (no will unless 0x04) */
  SluicePrincipal *principal;    /* NULL: anonymous */
  guint watch_id;
  char *client_id;
  char *username;                /* as sent in CONNECT, for re-authentication */
  char *device_id;               /* the IoT Hub device, NULL for other logins */
  char *module_id;               /* its module, for a module login */
  char *auth_method;             /* iothub-connection-auth-method JSON */
  char *sas_auth_method;         /* v5 CONNECT Authentication Method `SAS` */
  guint keepalive;               /* seconds enforced; 0: none */
  gint64 last_packet;            /* monotonic µs */
  GSource *keepalive_source;
  GQueue acks;                   /* MqttPendingAck*, PUBLISH order */
  guint receive_maximum;         /* ours, told to the client */

  /* session */
  MqttSession *session;
  guint32 session_expiry;        /* seconds; G_MAXUINT32: never */
  gboolean session_expiry_set;   /* v5 CONNECT had the property */
  gboolean session_stored;       /* its record is in the KV */
  MqttMessage *will;             /* sent unless a normal DISCONNECT came */
  guint32 will_delay;

  /* toward the client */
  guint client_receive_maximum;  /* v5 Receive Maximum, 65535 by default */
  guint32 client_max_packet;     /* 0: the protocol's limit */
  guint16 client_alias_max;      /* aliases we may set */
  GHashTable *out_aliases;       /* topic → alias */
  guint16 next_out_alias;
  gboolean congested;            /* waiting for connection_drained */
  GPtrArray *kv_deletes;         /* stored copies delivered: keys to delete */

  /* from the client */
  char **in_aliases;             /* [alias] → topic; receive side */
  guint16 in_alias_max;          /* told to the client */
};

/* mqtt-connection.c */
void mqtt_conn_ref (MqttConn *conn);
void mqtt_conn_unref (MqttConn *conn);
void mqtt_conn_send_packet (MqttConn *conn, const MqttPacket *packet);
void mqtt_conn_write (MqttConn *conn, GByteArray *out);
/* Pause reading (a subscriber is full); resumed through the handle. */
void mqtt_conn_block (MqttConn *conn);

/* mqtt-pubsub.c */
void mqtt_pubsub_handle_publish (MqttConn *conn, MqttPacket *packet);
void mqtt_pubsub_handle_puback (MqttConn *conn, const MqttPacket *packet);
void mqtt_pubsub_handle_pubrec (MqttConn *conn, const MqttPacket *packet);
void mqtt_pubsub_handle_pubrel (MqttConn *conn, const MqttPacket *packet);
void mqtt_pubsub_handle_pubcomp (MqttConn *conn, const MqttPacket *packet);
void mqtt_pubsub_handle_subscribe (MqttConn *conn, const MqttPacket *packet);
void mqtt_pubsub_handle_unsubscribe (MqttConn *conn, const MqttPacket *packet);
/* Write what the session has queued, as far as the client's window and the
 * socket allow. */
void mqtt_pubsub_pump (MqttConn *conn);
/* A resumed session: resend what was in flight (MQTT-4.4.0-1). */
void mqtt_pubsub_resend_inflight (MqttConn *conn);
/* Publish the will now (or after its delay; `session`, may be NULL, is the
 * one whose resumption cancels a delayed will). */
void mqtt_pubsub_send_will (MqttConn *conn, MqttSession *session);
/* Delete delivered stored copies (batched). */
void mqtt_pubsub_flush_kv (MqttConn *conn);
/* Build a message from a PUBLISH (or a will) with the forwarded v5
 * properties and the expiry. */
MqttMessage *mqtt_pubsub_message_from (const char *topic, GBytes *payload, guint8 qos,
                                       gboolean retain, const MqttProperties *props,
                                       const char *origin);
/* May this client publish to / subscribe to a plain topic? */
gboolean mqtt_pubsub_may_publish (MqttConn *conn, const char *topic);
gboolean mqtt_pubsub_may_subscribe (MqttConn *conn, const char *filter);

/* mqtt-persist.c: persistent sessions and retained messages in the KV. */
/* Load every stored session, queued copy and retained message. Main thread,
 * before serving. */
gboolean mqtt_persist_restore (MqttTransport *transport, GError **error);
/* Store the session's record (expiry, subscriptions); `done` when durable. */
void mqtt_persist_save_session (MqttTransport *transport, MqttSession *session,
                                guint32 expiry, SluiceDoneFunc done, gpointer user_data);
/* Delete an ended session's record and stored copies. */
void mqtt_persist_delete_session (MqttTransport *transport, const char *client_id,
                                  guint64 epoch);
/* Store or delete (empty payload) a retained message. */
void mqtt_persist_retain (MqttTransport *transport, MqttMessage *message,
                          SluiceDoneFunc done, gpointer user_data);

G_END_DECLS
