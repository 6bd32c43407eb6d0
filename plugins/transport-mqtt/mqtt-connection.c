/* transport-mqtt — the per-connection state machine: CONNECT and
 * authentication (with v5 re-authentication by AUTH), CONNACK, sessions
 * (attach, take-over, expiry), wills, keepalive, PINGREQ, DISCONNECT,
 * revocation of the principal and PUBACKs in PUBLISH order. PUBLISH and
 * SUBSCRIBE are mqtt-pubsub.c's. Everything here runs on the connection's
 * worker thread.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-conn-private.h"

#include <string.h>

struct _MqttPendingAck {
  MqttConn *conn;                /* a ref */
  MqttPacketType type;           /* PUBACK or PUBREC */
  guint16 packet_id;
  gboolean done;
  guint8 reason;
  char *reason_string;
  gboolean failed;
};

void
mqtt_conn_ref (MqttConn *conn)
{
  conn->ref_count++;
}

void
mqtt_conn_unref (MqttConn *conn)
{
  /* Only touched on the connection's worker: no atomics. */
  if (--conn->ref_count > 0)
    return;
  g_clear_pointer (&conn->principal, sluice_principal_unref);
  g_clear_pointer (&conn->decoder, mqtt_decoder_free);
  g_clear_pointer (&conn->session, mqtt_session_unref);
  g_clear_pointer (&conn->will, mqtt_message_unref);
  g_clear_pointer (&conn->out_aliases, g_hash_table_unref);
  g_clear_pointer (&conn->kv_deletes, g_ptr_array_unref);
  if (conn->in_aliases != NULL)
    for (guint i = 0; i <= conn->in_alias_max; i++)
      g_free (conn->in_aliases[i]);
  g_free (conn->in_aliases);
  g_free (conn->client_id);
  g_free (conn->username);
  g_free (conn->device_id);
  g_free (conn->module_id);
  g_free (conn->auth_method);
  g_free (conn->sas_auth_method);
  g_free (conn);
}

MqttVersion
mqtt_conn_get_version (MqttConn *conn)
{
  return conn->version;
}

const char *
mqtt_conn_get_device_id (MqttConn *conn)
{
  return conn->device_id;
}

const char *
mqtt_conn_get_module_id (MqttConn *conn)
{
  return conn->module_id;
}

MqttTransport *
mqtt_conn_get_transport (MqttConn *conn)
{
  return conn->transport;
}

SluicePrincipal *
mqtt_conn_get_principal (MqttConn *conn)
{
  return conn->principal;
}

const char *
mqtt_conn_get_auth_method (MqttConn *conn)
{
  return conn->auth_method;
}

guint64
mqtt_conn_get_id (MqttConn *conn)
{
  return conn->connection != NULL ? sluice_connection_get_id (conn->connection) : 0;
}

void
mqtt_conn_write (MqttConn *conn, GByteArray *out)
{
  if (conn->connection != NULL && out->len > 0)
    sluice_connection_write (conn->connection, out->data, out->len);
}

/* A packet built by hand that the encoder refuses is a bug here, not the
 * peer's doing. */
void
mqtt_conn_send_packet (MqttConn *conn, const MqttPacket *packet)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GError) error = NULL;

  if (!mqtt_packet_encode (packet, conn->version, out, &error))
    {
      sluice_warning (conn->transport->instance_name, "connection %" G_GUINT64_FORMAT
                      ": cannot encode %s: %s", mqtt_conn_get_id (conn),
                      mqtt_packet_type_name (packet->type), error->message);
      return;
    }
  mqtt_conn_write (conn, out);
}

static void
conn_close (MqttConn *conn)
{
  conn->closing = TRUE;
  if (conn->connection != NULL)
    sluice_connection_close (conn->connection, FALSE);
}

void
mqtt_conn_fail (MqttConn *conn, guint8 reason, const char *why)
{
  if (conn->closing || conn->connection == NULL)
    return;
  sluice_info (conn->transport->instance_name, "closing connection %" G_GUINT64_FORMAT
               " (%s, client '%s'): %s", mqtt_conn_get_id (conn),
               sluice_connection_get_peer (conn->connection),
               conn->client_id != NULL ? conn->client_id : "", why);
  if (conn->version == MQTT_VERSION_5 && conn->connected)
    {
      g_autoptr (MqttPacket) packet = mqtt_packet_new (MQTT_DISCONNECT);

      packet->reason = reason;
      mqtt_props_set_string (&packet->props, MQTT_PROP_REASON_STRING, why);
      mqtt_conn_send_packet (conn, packet);
    }
  conn_close (conn);
}

/* --- PUBACKs in order --- */

static void
pending_ack_free (MqttPendingAck *ack)
{
  g_free (ack->reason_string);
  g_free (ack);
}

MqttPendingAck *
mqtt_conn_queue_ack (MqttConn *conn, MqttPacketType type, guint16 packet_id)
{
  MqttPendingAck *ack = g_new0 (MqttPendingAck, 1);

  ack->type = type;
  mqtt_conn_ref (conn);
  ack->conn = conn;
  ack->packet_id = packet_id;
  g_queue_push_tail (&conn->acks, ack);
  return ack;
}

/* Write every completed ack at the head of the queue; stop at the first one
 * whose append is still in flight. */
static void
conn_flush_acks (MqttConn *conn)
{
  MqttPendingAck *ack;

  while ((ack = g_queue_peek_head (&conn->acks)) != NULL && ack->done)
    {
      g_queue_pop_head (&conn->acks);
      if (conn->connection != NULL && !conn->closing)
        {
          if (ack->failed && conn->version != MQTT_VERSION_5)
            {
              /* 3.1.1 has no negative PUBACK: closing without one is how the
               * client learns that this message was not taken. */
              conn_close (conn);
            }
          else if (ack->reason_string != NULL && conn->version == MQTT_VERSION_5)
            {
              g_autoptr (MqttPacket) packet = mqtt_packet_new (ack->type);

              packet->packet_id = ack->packet_id;
              packet->reason = ack->reason;
              mqtt_props_set_string (&packet->props, MQTT_PROP_REASON_STRING,
                                     ack->reason_string);
              mqtt_conn_send_packet (conn, packet);
            }
          else
            {
              g_autoptr (GByteArray) out = g_byte_array_new ();

              mqtt_encode_ack (out, conn->version, ack->type, ack->packet_id, ack->reason);
              mqtt_conn_write (conn, out);
            }
        }
      mqtt_conn_unref (ack->conn);
      pending_ack_free (ack);
    }
  if (conn->paused && conn->acks.length < MQTT_MAX_INFLIGHT / 2)
    {
      conn->paused = FALSE;
      /* The core presents the input left over again. */
      if (conn->connection != NULL && !conn->closing && !conn->blocked)
        sluice_connection_resume (conn->connection);
    }
}

static void
ack_done (MqttPendingAck *ack)
{
  MqttConn *conn = ack->conn;

  ack->done = TRUE;
  mqtt_conn_ref (conn);
  conn_flush_acks (conn);
  mqtt_conn_unref (conn);
}

static void
qos2_id_stored (const GError *error, gpointer data)
{
  MqttPendingAck *ack = data;

  if (error != NULL)
    sluice_warning (ack->conn->transport->instance_name, "connection %" G_GUINT64_FORMAT
                    ": QoS 2 packet id %u of client '%s' not stored (a resend after a "
                    "restart would be taken again): %s", mqtt_conn_get_id (ack->conn),
                    ack->packet_id, ack->conn->client_id, error->message);
  ack_done (ack);
}

void
mqtt_pending_ack_complete (MqttPendingAck *ack, guint8 reason, const char *reason_string,
                           gboolean failed)
{
  MqttConn *conn = ack->conn;

  ack->reason = reason;
  ack->reason_string = g_strdup (reason_string);
  ack->failed = failed;
  /* Exactly once across a restart (MQTT-4.3.3): a QoS 2 message taken for
   * a persistent session keeps its packet id in the KV until PUBREL, stored
   * after the message and before its PUBREC, so a PUBLISH the client resends
   * after a restart is acknowledged, not taken again. */
  if (ack->type == MQTT_PUBREC && reason < 0x80 && !failed && conn->session != NULL
      && conn->connection != NULL && mqtt_session_is_persistent (conn->session))
    {
      g_autofree char *key = mqtt_kv_qos2_key (conn->client_id,
                                               mqtt_session_get_epoch (conn->session),
                                               ack->packet_id);
      g_autoptr (GBytes) value = g_bytes_new_static ("1", 1);
      SluiceKvOp op = { SLUICE_KV_PUT, key, value };

      sluice_host_kv_commit (conn->transport->host, conn->transport->instance_name, &op, 1,
                             qos2_id_stored, ack);
      return;
    }
  ack_done (ack);
}

/* --- keepalive, revocation --- */

static gboolean
keepalive_check (gpointer user_data)
{
  MqttConn *conn = user_data;
  gint64 idle;

  /* A client we stopped reading is not idle. */
  if (conn->paused || conn->blocked)
    conn->last_packet = g_get_monotonic_time ();
  idle = g_get_monotonic_time () - conn->last_packet;

  /* MQTT-3.1.2-24: one and a half times the keepalive without a packet. */
  if (conn->connection != NULL && !conn->closing
      && idle >= (gint64) conn->keepalive * G_USEC_PER_SEC * 3 / 2)
    {
      g_autofree char *why = g_strdup_printf ("keepalive timeout (%u s without a packet)",
                                              conn->keepalive * 3 / 2);
      mqtt_conn_fail (conn, MQTT_RC_KEEP_ALIVE_TIMEOUT, why);
    }
  return G_SOURCE_CONTINUE;
}

static void
conn_start_keepalive (MqttConn *conn)
{
  guint interval_ms;

  if (conn->keepalive == 0)
    return;
  /* Checked every quarter keepalive: the close comes at most that late. */
  interval_ms = MAX (conn->keepalive * 1000 / 4, 100);
  conn->keepalive_source = g_timeout_source_new (interval_ms);
  g_source_set_callback (conn->keepalive_source, keepalive_check, conn, NULL);
  g_source_attach (conn->keepalive_source, sluice_connection_get_context (conn->connection));
}

static void
conn_revoked (const char *reason, gpointer user_data)
{
  MqttConn *conn = user_data;
  g_autofree char *why = g_strdup_printf ("credentials revoked: %s",
                                          reason != NULL ? reason : "");

  /* v5: 0xA0 when a token simply ran out (WIRE.md), 0x87 otherwise. */
  mqtt_conn_fail (conn, reason != NULL && strstr (reason, "expired") != NULL
                          ? MQTT_RC_MAXIMUM_CONNECT_TIME : MQTT_RC_NOT_AUTHORIZED,
                  why);
}

/* --- calls from other workers, through the handle --- */

static void
handle_pump (MqttConnHandle *handle, gpointer data)
{
  MqttConn *conn = data;

  mqtt_conn_ref (conn);
  mqtt_pubsub_pump (conn);
  mqtt_pubsub_flush_kv (conn);
  mqtt_conn_unref (conn);
}

static void
handle_resume (MqttConnHandle *handle, gpointer data)
{
  MqttConn *conn = data;

  if (!conn->blocked)
    return;
  conn->blocked = FALSE;
  if (conn->connection != NULL && !conn->closing && !conn->paused)
    sluice_connection_resume (conn->connection);
}

static void
handle_taken_over (MqttConnHandle *handle, gpointer data)
{
  MqttConn *conn = data;

  /* The session is the new connection's now: this one must not touch it. */
  g_clear_pointer (&conn->session, mqtt_session_unref);
  mqtt_conn_fail (conn, MQTT_RC_SESSION_TAKEN_OVER,
                  "another connection took over the client id");
}

void
mqtt_conn_block (MqttConn *conn)
{
  if (conn->blocked || conn->connection == NULL)
    return;
  conn->blocked = TRUE;
  sluice_connection_pause (conn->connection);
}

MqttBroker *
mqtt_transport_broker_new (MqttTransport *transport)
{
  MqttBrokerHooks hooks = { 0 };

  hooks.pump = handle_pump;
  hooks.resume = handle_resume;
  hooks.taken_over = handle_taken_over;
  hooks.dropped_qos0_offline = transport->dropped_qos0_offline;
  hooks.dropped_expired = transport->dropped_expired;
  hooks.dropped_session_expired = transport->dropped_session_expired;
  hooks.backpressure = transport->backpressure;
  hooks.sessions = transport->sessions;
  hooks.retained = transport->retained;
  return mqtt_broker_new (&hooks, (guint) transport->options->max_queued);
}

/* --- CONNECT --- */

static void
conn_send_connack (MqttConn *conn, guint8 code, gboolean session_present,
                   MqttProperties *props)
{
  g_autoptr (MqttPacket) packet = mqtt_packet_new (MQTT_CONNACK);

  packet->reason = code;
  packet->connack.session_present = session_present;
  if (props != NULL)
    {
      mqtt_props_clear (&packet->props);
      packet->props = *props;
      memset (props, 0, sizeof *props);
    }
  mqtt_conn_send_packet (conn, packet);
}

/* Refuse the CONNECT with v3.1.1 `v3_code` / v5 `v5_code`, then close. */
static void
conn_refuse_connect (MqttConn *conn, guint8 v3_code, guint8 v5_code, const char *why)
{
  MqttTransport *transport = conn->transport;

  sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT
               " (%s, client '%s') refused: %s", mqtt_conn_get_id (conn),
               sluice_connection_get_peer (conn->connection),
               conn->client_id != NULL ? conn->client_id : "", why);
  sluice_counter_add (transport->connects_refused, 1);
  conn_send_connack (conn, conn->version == MQTT_VERSION_5 ? v5_code : v3_code, FALSE, NULL);
  conn_close (conn);
}

static char *
bytes_to_string (GBytes *bytes)
{
  gsize len;
  const char *data;

  if (bytes == NULL)
    return NULL;
  data = g_bytes_get_data (bytes, &len);
  if (memchr (data, '\0', len) != NULL || !g_utf8_validate (data, len, NULL))
    return NULL;
  return g_strndup (data, len);
}

/* Authenticate `username` / `password` (or a SAS token from v5 AUTH data)
 * for this connection's client id. Sets conn->device_id for IoT Hub
 * logins. (transfer full) */
static SluicePrincipal *
conn_authenticate (MqttConn *conn, const char *username, const char *password,
                   GError **error)
{
  MqttTransport *transport = conn->transport;
  SluiceCredentials credentials = { 0 };
  g_autofree char *resource = NULL;

  credentials.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
  credentials.protocol = "mqtt";
  credentials.peer = sluice_connection_get_peer (conn->connection);
  credentials.username = username;
  credentials.password = password;
  credentials.client_id = conn->client_id;
  credentials.peer_certs = sluice_connection_get_peer_certs (conn->connection);
  g_clear_pointer (&conn->device_id, g_free);
  g_clear_pointer (&conn->module_id, g_free);
  if (mqtt_iothub_is_device_login (username, conn->client_id))
    {
      /* The token must cover this hub's device (or module), whatever host
       * the username names. */
      const char *slash = strchr (conn->client_id, '/');

      conn->device_id = slash != NULL ? g_strndup (conn->client_id, slash - conn->client_id)
                                      : g_strdup (conn->client_id);
      conn->module_id = slash != NULL ? g_strdup (slash + 1) : NULL;
      resource = slash != NULL
        ? g_strdup_printf ("%s/devices/%s/modules/%s", sluice_host_get_hostname (transport->host),
                           conn->device_id, conn->module_id)
        : g_strdup_printf ("%s/devices/%s", sluice_host_get_hostname (transport->host),
                           conn->device_id);
      credentials.resource = resource;
    }
  else if (username == NULL && password == NULL && credentials.peer_certs != NULL)
    credentials.type = SLUICE_CREDENTIALS_TLS_PEER;
  return sluice_host_authenticate (transport->host, &credentials, error);
}

static guint32
conn_session_expiry (MqttConn *conn, const MqttPacket *packet)
{
  const MqttConnect *connect = &packet->connect;
  guint32 max = (guint32) MIN (conn->transport->options->max_session_expiry, G_MAXUINT32);

  if (conn->version == MQTT_VERSION_5)
    {
      guint32 asked = mqtt_props_has (&packet->props, MQTT_PROP_SESSION_EXPIRY)
                        ? packet->props.session_expiry : 0;
      conn->session_expiry_set = mqtt_props_has (&packet->props, MQTT_PROP_SESSION_EXPIRY);
      return MIN (asked, max);
    }
  /* 3.1.1: a clean session ends with the connection; a persistent one
   * lasts as long as the hub allows. */
  return connect->clean_start ? 0 : max;
}

static void
conn_handle_connect (MqttConn *conn, MqttPacket *packet)
{
  MqttTransport *transport = conn->transport;
  const MqttConnect *connect = &packet->connect;
  g_autofree char *password = NULL;
  g_autoptr (GError) error = NULL;
  MqttProperties props = { 0 };
  guint keepalive_max = (guint) transport->options->keepalive_max;
  gboolean assigned = FALSE;
  gboolean present = FALSE;
  guint64 ended_epoch = 0;

  conn->version = connect->protocol_level;
  conn->client_id = g_strdup (connect->client_id);
  conn->username = g_strdup (connect->username);

  if (*conn->client_id == '\0')
    {
      if (conn->version != MQTT_VERSION_5 && !connect->clean_start)
        {
          conn_refuse_connect (conn, MQTT_V3_CONNACK_IDENTIFIER_REJECTED,
                               MQTT_RC_CLIENT_ID_NOT_VALID,
                               "empty client id without a clean session");
          return;
        }
      g_free (conn->client_id);
      conn->client_id = g_strdup_printf ("sluice-%" G_GUINT64_FORMAT,
                                         sluice_connection_get_id (conn->connection));
      assigned = TRUE;
    }

  /* v5 enhanced authentication: method `SAS`, data = the token (WIRE.md). */
  if (mqtt_props_has (&packet->props, MQTT_PROP_AUTH_METHOD))
    {
      if (g_strcmp0 (packet->props.auth_method, "SAS") != 0)
        {
          g_autofree char *why = g_strdup_printf ("authentication method '%s' is not "
                                                  "supported (only SAS)",
                                                  packet->props.auth_method);
          conn_refuse_connect (conn, MQTT_V3_CONNACK_NOT_AUTHORIZED,
                               MQTT_RC_BAD_AUTHENTICATION_METHOD, why);
          return;
        }
      conn->sas_auth_method = g_strdup ("SAS");
      password = bytes_to_string (packet->props.auth_data);
      if (password == NULL)
        {
          conn_refuse_connect (conn, MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD,
                               MQTT_RC_BAD_USERNAME_OR_PASSWORD,
                               "SAS authentication data is missing or not UTF-8");
          return;
        }
    }
  else if (connect->password != NULL)
    {
      password = bytes_to_string (connect->password);
      if (password == NULL)
        {
          conn_refuse_connect (conn, MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD,
                               MQTT_RC_BAD_USERNAME_OR_PASSWORD,
                               "the password is not UTF-8 or holds a NUL byte");
          return;
        }
    }

  if (connect->username == NULL && password == NULL
      && sluice_connection_get_peer_certs (conn->connection) == NULL)
    {
      /* Anonymous, when `[auth] allow-anonymous` says so. */
      conn->principal = sluice_host_authenticate (transport->host, NULL, &error);
      if (conn->principal == NULL)
        {
          conn_refuse_connect (conn, MQTT_V3_CONNACK_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                               "no credentials, and [auth] allow-anonymous is false");
          return;
        }
    }
  else
    {
      conn->principal = conn_authenticate (conn, connect->username, password, &error);
      if (conn->principal == NULL)
        {
          gboolean forbidden = g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_FORBIDDEN);

          conn_refuse_connect (conn,
                               forbidden ? MQTT_V3_CONNACK_NOT_AUTHORIZED
                                         : MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD,
                               forbidden ? MQTT_RC_NOT_AUTHORIZED
                                         : MQTT_RC_BAD_USERNAME_OR_PASSWORD,
                               error != NULL ? error->message : "not authenticated");
          return;
        }
      if (conn->device_id != NULL
          && (sluice_principal_get_kind (conn->principal) != SLUICE_PRINCIPAL_DEVICE
              || g_strcmp0 (sluice_principal_get_name (conn->principal), conn->device_id) != 0))
        {
          /* A policy token under a device's client id: the device topics
           * would then be used by someone who is not that device. */
          conn_refuse_connect (conn, MQTT_V3_CONNACK_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                               "the credentials are not those of the device the client id "
                               "names");
          return;
        }
      if (sluice_principal_get_kind (conn->principal) == SLUICE_PRINCIPAL_DEVICE
          && conn->device_id == NULL)
        conn->device_id = g_strdup (sluice_principal_get_name (conn->principal));
    }
  conn->auth_method = g_strdup_printf ("{\"scope\":\"%s\",\"type\":\"%s\",\"issuer\":\"iothub\"}",
                                       conn->principal != NULL
                                         && sluice_principal_get_kind (conn->principal)
                                              == SLUICE_PRINCIPAL_DEVICE ? "device" : "hub",
                                       conn->principal != NULL
                                         ? sluice_principal_get_auth_method (conn->principal)
                                         : "anonymous");

  if (connect->will)
    {
      if (!mqtt_pubsub_may_publish (conn, connect->will_topic))
        {
          g_autofree char *why = g_strdup_printf ("not authorized to publish the will to '%s'",
                                                  connect->will_topic);
          conn_refuse_connect (conn, MQTT_V3_CONNACK_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                               why);
          return;
        }
      conn->will = mqtt_pubsub_message_from (connect->will_topic, connect->will_payload,
                                             connect->will_qos, connect->will_retain,
                                             &connect->will_props, conn->client_id);
      conn->will_delay = mqtt_props_has (&connect->will_props, MQTT_PROP_WILL_DELAY)
                           ? connect->will_props.will_delay : 0;
    }

  /* A v5 client is told the keepalive we enforce when we change it; a
   * 3.1.1 client cannot be told, so one that asks for none or for more than
   * keepalive-max is closed after 1.5 × keepalive-max without a packet. */
  conn->keepalive = connect->keepalive;
  if (conn->keepalive == 0 || conn->keepalive > keepalive_max)
    {
      conn->keepalive = keepalive_max;
      if (conn->version == MQTT_VERSION_5)
        mqtt_props_set_int (&props, MQTT_PROP_SERVER_KEEPALIVE, keepalive_max);
    }

  /* What the client allows us. */
  conn->client_receive_maximum = 65535;
  if (conn->version == MQTT_VERSION_5)
    {
      if (mqtt_props_has (&packet->props, MQTT_PROP_RECEIVE_MAXIMUM))
        conn->client_receive_maximum = packet->props.receive_maximum;
      if (mqtt_props_has (&packet->props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
        conn->client_max_packet = packet->props.maximum_packet_size;
      if (mqtt_props_has (&packet->props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
        conn->client_alias_max = packet->props.topic_alias_maximum;
    }

  /* The session. */
  conn->session_expiry = conn_session_expiry (conn, packet);
  conn->session = mqtt_broker_attach (transport->broker, conn->client_id, connect->clean_start,
                                      conn->session_expiry, conn->handle, &present,
                                      &ended_epoch);
  if (ended_epoch != 0)
    mqtt_persist_delete_session (transport, conn->client_id, ended_epoch);
  if (conn->session_expiry > 0)
    {
      conn->session_stored = TRUE;
      mqtt_persist_save_session (transport, conn->session, conn->session_expiry, NULL, NULL);
    }

  if (conn->version == MQTT_VERSION_5)
    {
      mqtt_props_set_int (&props, MQTT_PROP_RECEIVE_MAXIMUM, conn->receive_maximum);
      mqtt_props_set_int (&props, MQTT_PROP_MAXIMUM_PACKET_SIZE,
                          (guint32) MIN (transport->options->max_packet, MQTT_MAX_PACKET_SIZE));
      if (conn->in_alias_max > 0)
        mqtt_props_set_int (&props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, conn->in_alias_max);
      if (assigned)
        mqtt_props_set_string (&props, MQTT_PROP_ASSIGNED_CLIENT_ID, conn->client_id);
      if (conn->session_expiry_set
          && conn->session_expiry != packet->props.session_expiry)
        mqtt_props_set_int (&props, MQTT_PROP_SESSION_EXPIRY, conn->session_expiry);
      if (packet->props.request_response_info != 0
          && mqtt_props_has (&packet->props, MQTT_PROP_REQUEST_RESPONSE_INFO))
        {
          /* A topic prefix this client may publish responses under. */
          g_autofree char *info = g_strdup_printf ("responses/%s", conn->client_id);
          mqtt_props_set_string (&props, MQTT_PROP_RESPONSE_INFO, info);
        }
      if (conn->sas_auth_method != NULL)
        mqtt_props_set_string (&props, MQTT_PROP_AUTH_METHOD, conn->sas_auth_method);
    }

  if (conn->principal != NULL)
    conn->watch_id = sluice_host_watch_principal (transport->host, conn->principal,
                                                  conn_revoked, conn);
  conn_send_connack (conn, MQTT_RC_SUCCESS, present, &props);
  conn->connected = TRUE;
  conn_start_keepalive (conn);
  sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT
               " (%s): client '%s' connected as %s (MQTT %s, keepalive %u s, session %s)",
               mqtt_conn_get_id (conn), sluice_connection_get_peer (conn->connection),
               conn->client_id,
               conn->principal != NULL ? sluice_principal_get_id (conn->principal) : "anonymous",
               conn->version == MQTT_VERSION_5 ? "5" : "3.1.1", conn->keepalive,
               present ? "resumed" : conn->session_expiry > 0 ? "new, persistent" : "clean");
  if (present)
    mqtt_pubsub_resend_inflight (conn);
  mqtt_pubsub_pump (conn);
}

/* --- AUTH: v5 re-authentication with a fresh SAS token --- */

static void
conn_handle_auth (MqttConn *conn, const MqttPacket *packet)
{
  MqttTransport *transport = conn->transport;
  g_autofree char *token = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *device_before = g_strdup (conn->device_id);
  SluicePrincipal *principal;

  if (conn->sas_auth_method == NULL)
    {
      mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR,
                      "AUTH without an authentication method in CONNECT");
      return;
    }
  if (packet->reason != MQTT_RC_REAUTHENTICATE
      || g_strcmp0 (packet->props.auth_method, conn->sas_auth_method) != 0)
    {
      mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR,
                      "AUTH must be re-authentication (0x19) with method SAS");
      return;
    }
  token = bytes_to_string (packet->props.auth_data);
  principal = token != NULL ? conn_authenticate (conn, conn->username, token, &error) : NULL;
  if (principal == NULL
      || g_strcmp0 (device_before, conn->device_id) != 0
      || (conn->principal != NULL
          && g_strcmp0 (sluice_principal_get_id (principal),
                        sluice_principal_get_id (conn->principal)) != 0))
    {
      g_autofree char *why = g_strdup_printf ("re-authentication failed: %s",
                                              error != NULL ? error->message
                                              : "the new credentials name another identity");
      g_clear_pointer (&principal, sluice_principal_unref);
      g_free (conn->device_id);
      conn->device_id = g_steal_pointer (&device_before);
      mqtt_conn_fail (conn, MQTT_RC_NOT_AUTHORIZED, why);
      return;
    }
  if (conn->watch_id != 0)
    sluice_host_unwatch_principal (transport->host, conn->watch_id);
  g_clear_pointer (&conn->principal, sluice_principal_unref);
  conn->principal = principal;
  conn->watch_id = sluice_host_watch_principal (transport->host, conn->principal,
                                                conn_revoked, conn);
  {
    g_autoptr (MqttPacket) reply = mqtt_packet_new (MQTT_AUTH);

    reply->reason = MQTT_RC_SUCCESS;
    mqtt_props_set_string (&reply->props, MQTT_PROP_AUTH_METHOD, conn->sas_auth_method);
    mqtt_conn_send_packet (conn, reply);
  }
  sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT
               ": client '%s' re-authenticated (credentials valid until %" G_GINT64_FORMAT ")",
               mqtt_conn_get_id (conn), conn->client_id,
               sluice_principal_get_expires_at (conn->principal));
}

/* --- DISCONNECT --- */

/* The connection is over for its session: the will goes out (unless a
 * normal DISCONNECT discarded it) and the session is detached, ended when
 * it expires now. Done at DISCONNECT already, so that a client reconnecting
 * at once finds the session as it should be. */
static void
conn_end_session (MqttConn *conn)
{
  MqttTransport *transport = conn->transport;
  g_autoptr (MqttSession) session = g_steal_pointer (&conn->session);

  if (conn->will != NULL)
    mqtt_pubsub_send_will (conn, session);
  if (session != NULL)
    {
      guint64 epoch = mqtt_session_get_epoch (session);

      if (mqtt_broker_detach (transport->broker, session, conn->handle, conn->session_expiry)
          && conn->session_stored)
        mqtt_persist_delete_session (transport, conn->client_id, epoch);
    }
}

static void
conn_handle_disconnect (MqttConn *conn, const MqttPacket *packet)
{
  sluice_debug (conn->transport->instance_name, "connection %" G_GUINT64_FORMAT
                ": client '%s' disconnected (reason 0x%02x)", mqtt_conn_get_id (conn),
                conn->client_id, packet->reason);
  if (conn->version == MQTT_VERSION_5
      && mqtt_props_has (&packet->props, MQTT_PROP_SESSION_EXPIRY))
    {
      if (conn->session_expiry == 0 && packet->props.session_expiry != 0)
        {
          /* MQTT-3.14.2-2 */
          mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR,
                          "DISCONNECT sets a session expiry after CONNECT set none");
          return;
        }
      conn->session_expiry = MIN (packet->props.session_expiry,
                                  (guint32) MIN (conn->transport->options->max_session_expiry,
                                                 G_MAXUINT32));
      if (conn->session_expiry > 0 && conn->session != NULL)
        conn->session_stored = TRUE;
      if (conn->session_expiry > 0 && conn->session != NULL)
        mqtt_persist_save_session (conn->transport, conn->session, conn->session_expiry,
                                   NULL, NULL);
    }
  /* MQTT-3.14.4-3: a normal DISCONNECT discards the will; 0x04 keeps it. */
  if (!(conn->version == MQTT_VERSION_5 && packet->reason == MQTT_RC_DISCONNECT_WITH_WILL))
    g_clear_pointer (&conn->will, mqtt_message_unref);
  conn->disconnected = TRUE;
  conn_end_session (conn);
  conn_close (conn);
}

/* --- packets --- */

static void
conn_handle_packet (MqttConn *conn, MqttPacket *packet)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();

  switch (packet->type)
    {
    case MQTT_CONNECT:
      conn_handle_connect (conn, packet);
      break;
    case MQTT_PUBLISH:
      mqtt_pubsub_handle_publish (conn, packet);
      break;
    case MQTT_PUBACK:
      mqtt_pubsub_handle_puback (conn, packet);
      break;
    case MQTT_PUBREC:
      mqtt_pubsub_handle_pubrec (conn, packet);
      break;
    case MQTT_PUBREL:
      mqtt_pubsub_handle_pubrel (conn, packet);
      break;
    case MQTT_PUBCOMP:
      mqtt_pubsub_handle_pubcomp (conn, packet);
      break;
    case MQTT_SUBSCRIBE:
      mqtt_pubsub_handle_subscribe (conn, packet);
      break;
    case MQTT_UNSUBSCRIBE:
      mqtt_pubsub_handle_unsubscribe (conn, packet);
      break;
    case MQTT_PINGREQ:
      mqtt_encode_pingresp (out);
      mqtt_conn_write (conn, out);
      break;
    case MQTT_DISCONNECT:
      conn_handle_disconnect (conn, packet);
      break;
    case MQTT_AUTH:
      conn_handle_auth (conn, packet);
      break;
    default:
      mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR, "unexpected packet");
      break;
    }
}

/* --- the vtable's connection slots --- */

gpointer
mqtt_conn_open (MqttTransport *transport, SluiceConnection *connection)
{
  MqttConn *conn = g_new0 (MqttConn, 1);

  conn->ref_count = 1;
  conn->transport = transport;
  conn->connection = connection;
  conn->handle = mqtt_conn_handle_new (sluice_connection_get_context (connection), conn);
  conn->decoder = mqtt_decoder_new (MQTT_ROLE_SERVER, transport->options->max_packet);
  conn->last_packet = g_get_monotonic_time ();
  conn->receive_maximum = (guint) MIN (transport->options->receive_maximum, MQTT_MAX_INFLIGHT);
  conn->in_alias_max = (guint16) transport->options->topic_alias_maximum;
  /* in_aliases, kv_deletes and out_aliases are made when first needed:
   * an idle connection should cost little. */
  g_queue_init (&conn->acks);
  /* One whole packet plus one read: the decoder refuses a larger packet as
   * soon as its fixed header is there. */
  sluice_connection_set_max_input (connection, transport->options->max_packet + 65536);
  sluice_counter_add (transport->connections, 1);
  g_atomic_int_inc (&transport->n_connections);
  return conn;
}

gsize
mqtt_conn_input (MqttConn *conn, const guint8 *data, gsize len)
{
  gsize pos = 0;
  gsize result;

  mqtt_conn_ref (conn);
  while (!conn->closing && conn->connection != NULL && pos < len)
    {
      g_autoptr (MqttPacket) packet = NULL;
      g_autoptr (GError) error = NULL;
      gsize consumed = 0;
      MqttDecodeStatus status;

      if (conn->acks.length >= MQTT_MAX_INFLIGHT)
        {
          conn->paused = TRUE;
          sluice_connection_pause (conn->connection);
          break;
        }
      if (conn->blocked)
        break;
      status = mqtt_decoder_decode (conn->decoder, data + pos, len - pos, &consumed,
                                    &packet, &error);
      if (status == MQTT_DECODE_NEED_MORE)
        break;
      if (status == MQTT_DECODE_ERROR)
        {
          MqttErrorReply reply;
          g_autoptr (GByteArray) out = g_byte_array_new ();

          mqtt_decoder_get_error_reply (conn->decoder, &reply);
          mqtt_error_reply_encode (&reply, out);
          sluice_info (conn->transport->instance_name, "closing connection %"
                       G_GUINT64_FORMAT " (%s): malformed input: %s",
                       mqtt_conn_get_id (conn), sluice_connection_get_peer (conn->connection),
                       error->message);
          sluice_counter_add (conn->transport->malformed, 1);
          mqtt_conn_write (conn, out);
          conn_close (conn);
          break;
        }
      pos += consumed;
      sluice_counter_add (conn->transport->bytes_in, consumed);
      conn->last_packet = g_get_monotonic_time ();
      conn_handle_packet (conn, packet);
    }
  mqtt_pubsub_flush_kv (conn);
  /* After a fatal answer the rest is not looked at. */
  result = conn->closing ? len : pos;
  mqtt_conn_unref (conn);
  return result;
}

void
mqtt_conn_drained (MqttConn *conn)
{
  mqtt_conn_ref (conn);
  conn->congested = FALSE;
  mqtt_pubsub_pump (conn);
  mqtt_pubsub_flush_kv (conn);
  mqtt_conn_unref (conn);
}

void
mqtt_conn_closed (MqttConn *conn)
{
  MqttTransport *transport = conn->transport;

  sluice_counter_add (transport->connections, -1);
  g_atomic_int_add (&transport->n_connections, -1);
  conn->connection = NULL;
  conn->closing = TRUE;
  conn->handle->conn = NULL;
  if (conn->watch_id != 0)
    sluice_host_unwatch_principal (transport->host, conn->watch_id);
  conn->watch_id = 0;
  if (conn->keepalive_source != NULL)
    {
      g_source_destroy (conn->keepalive_source);
      g_clear_pointer (&conn->keepalive_source, g_source_unref);
    }
  conn_end_session (conn);
  mqtt_pubsub_flush_kv (conn);
  g_clear_pointer (&conn->handle, mqtt_conn_handle_unref);
  /* Acks still in flight hold their own refs and are dropped as their
   * appends complete. */
  mqtt_conn_unref (conn);
}
