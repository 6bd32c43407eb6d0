/* transport-mqtt — the transport instance, the per-connection state machine
 * and the IoT Hub device topics, shared between mqtt-transport.c,
 * mqtt-connection.c and mqtt-iothub.c. Private to the plugin.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

#include "mqtt-codec.h"
#include "mqtt-broker.h"

G_BEGIN_DECLS

typedef struct {
  guint64 max_packet;            /* largest whole packet accepted */
  gint64 keepalive_max;          /* seconds */
  gint64 max_queued;             /* per session, before back-pressure */
  gint64 receive_maximum;        /* QoS 1 / 2 PUBLISHes in flight from a client */
  gint64 topic_alias_maximum;    /* aliases a client may set */
  gint64 max_session_expiry;     /* seconds; caps what clients ask */
  gint64 max_topic_levels;
} MqttOptions;

typedef struct _MqttMap MqttMap;
typedef struct _MqttBridge MqttBridge;
typedef struct _MqttAcl MqttAcl;

typedef struct {
  SluiceHost *host;
  char *instance_name;
  const MqttOptions *options;    /* owned by the core until destroy */
  MqttBroker *broker;
  MqttMap *map;                  /* [mqtt-map.*] */
  MqttAcl *acl;                  /* [mqtt-acl.*] */
  /* Appends to mapped streams are the operator's decision (the config
   * maps the topic; the ACL let the client publish it), made with this
   * principal. */
  SluicePrincipal *map_principal;
  GSource *expiry_source;        /* session expiry, on the main context */
  MqttBridge *bridge;            /* streams bridged out ([mqtt-map.*] out) */
  SluiceCounter *bridged_out;
  SluiceCounter *connections;    /* gauge */
  gint n_connections;            /* atomic */
  SluiceCounter *connects_refused;
  SluiceCounter *messages_in[3]; /* by QoS */
  SluiceCounter *messages_out[3];
  SluiceCounter *bytes_in;
  SluiceCounter *bytes_out;
  SluiceCounter *refused;        /* publishes / subscriptions refused */
  SluiceCounter *malformed;
  SluiceCounter *dropped_qos0_offline;
  SluiceCounter *dropped_qos0_congested;
  SluiceCounter *dropped_expired;
  SluiceCounter *dropped_session_expired;
  SluiceCounter *dropped_too_large;
  SluiceCounter *backpressure;
  SluiceCounter *sessions;       /* gauge */
  SluiceCounter *retained;       /* gauge */
} MqttTransport;

typedef struct _MqttConn MqttConn;

/* mqtt-connection.c: the connection slots of the vtable. */
gpointer mqtt_conn_open (MqttTransport *transport, SluiceConnection *connection);
gsize mqtt_conn_input (MqttConn *conn, const guint8 *data, gsize len);
void mqtt_conn_drained (MqttConn *conn);
void mqtt_conn_closed (MqttConn *conn);
/* mqtt-bridge.c: streams bridged out to MQTT subscribers (main thread).
 * NULL when no map bridges out. */
MqttBridge *mqtt_bridge_start (MqttTransport *transport);
void mqtt_bridge_stop (MqttBridge *bridge);
void mqtt_bridge_free (MqttBridge *bridge);
/* The broker with the connection callbacks wired in. */
MqttBroker *mqtt_transport_broker_new (MqttTransport *transport);

/* What mqtt-iothub.c needs of a connection. */
MqttVersion mqtt_conn_get_version (MqttConn *conn);
const char *mqtt_conn_get_device_id (MqttConn *conn);
/* `{module}` of a module login (ClientId `{id}/{module}`), else NULL. */
const char *mqtt_conn_get_module_id (MqttConn *conn);
MqttTransport *mqtt_conn_get_transport (MqttConn *conn);
SluicePrincipal *mqtt_conn_get_principal (MqttConn *conn);
const char *mqtt_conn_get_auth_method (MqttConn *conn);
guint64 mqtt_conn_get_id (MqttConn *conn);
/* Send a v5 DISCONNECT with `reason` and a reason string (v3.1.1: nothing),
 * then close. `why` goes to the log. */
void mqtt_conn_fail (MqttConn *conn, guint8 reason, const char *why);

/* An acknowledgement that must go out in PUBLISH order (MQTT-4.6.0-2):
 * queued when the PUBLISH arrives, completed when its append is done. */
typedef struct _MqttPendingAck MqttPendingAck;
/* `type`: MQTT_PUBACK, or MQTT_PUBREC for a refused QoS 2 PUBLISH. */
MqttPendingAck *mqtt_conn_queue_ack (MqttConn *conn, MqttPacketType type,
                                     guint16 packet_id);
/* `reason` 0: success. `failed`: the message was not taken; v5 says so
 * with `reason` (and `reason_string`, may be NULL) and goes on, 3.1.1 has no
 * negative PUBACK and closes once the acks before this one are written.
 * Takes over `ack`. */
void mqtt_pending_ack_complete (MqttPendingAck *ack, guint8 reason,
                                const char *reason_string, gboolean failed);

/* mqtt-iothub.c */
/* Handle a PUBLISH on an accepted connection. */
void mqtt_iothub_handle_publish (MqttConn *conn, const MqttPacket *packet,
                                 const char *topic);
/* C2D, twin and method topics a device subscribes to (answered with a
 * clear refusal until the device services exist). */
gboolean mqtt_iothub_is_service_topic (const char *filter);
/* The SUBACK reason for one filter (a failure in this slice) and, for v5,
 * its reason string (static). Logs the refusal. */
guint8 mqtt_iothub_subscribe_reason (MqttConn *conn, const MqttSubscription *sub,
                                     const char **reason_string);

/* Pure helpers (unit-tested). */
/* `devices/{id}/messages/events/{bag}` (the trailing `/` and the bag may be
 * absent): TRUE with the device id (transfer full) and the bag (a pointer
 * into `topic`, "" when absent). */
gboolean mqtt_iothub_parse_events_topic (const char *topic, char **device_id, char **module_id,
                                         const char **bag);
/* Parse an url-encoded property bag `k=v&k2=v2` into record headers,
 * appended to `headers` as name, value pairs (transfer full strings):
 * `$.mid` → message-id, `$.cid` → correlation-id, `$.ct` → content-type,
 * `$.ce` → content-encoding, other `$.` names dropped, the rest as they are.
 * FALSE on a bad escape or an empty name. */
gboolean mqtt_iothub_parse_property_bag (const char *bag, GPtrArray *headers,
                                         GError **error);
/* The IoT Hub login: Username `{host}/{id}/?api-version=...` with ClientId
 * `{id}`. TRUE when `username` has that form for `client_id`. */
gboolean mqtt_iothub_is_device_login (const char *username, const char *client_id);

G_END_DECLS
