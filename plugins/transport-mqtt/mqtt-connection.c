/* transport-mqtt — the per-connection state machine: CONNECT and
 * authentication, CONNACK, keepalive, PINGREQ, DISCONNECT, revocation of
 * the principal, SUBSCRIBE / UNSUBSCRIBE answers and PUBACKs in PUBLISH
 * order. Everything here runs on the connection's worker thread.
 *
 * Sessions: only clean sessions so far. A CONNECT with clean session 0 /
 * clean start 0 (IoT Hub device SDKs send it) is accepted with session
 * present 0 and nothing is kept after the connection ends; persistent
 * sessions come with the session store.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-transport.h"

#include <string.h>

/* PUBLISHes whose append is in flight per connection before reading pauses
 * (also the Receive Maximum told to v5 clients): bounded memory for a
 * client that publishes faster than the stream's durability policy lets
 * appends complete. Reading resumes below half of it. */
#define MQTT_MAX_INFLIGHT 1024

struct _MqttConn {
  gint ref_count;
  MqttTransport *transport;
  SluiceConnection *connection;  /* NULL once closed */
  MqttDecoder *decoder;
  MqttVersion version;
  gboolean connected;            /* CONNACK 0 sent */
  gboolean closing;              /* a fatal answer is queued: ignore input */
  gboolean paused;               /* too many appends in flight */
  SluicePrincipal *principal;
  guint watch_id;
  char *client_id;
  char *device_id;               /* the IoT Hub device, NULL for other logins */
  char *auth_method;             /* iothub-connection-auth-method JSON */
  guint keepalive;               /* seconds enforced; 0: none */
  gint64 last_packet;            /* monotonic µs */
  GSource *keepalive_source;
  GQueue acks;                   /* MqttPendingAck*, PUBLISH order */
};

struct _MqttPendingAck {
  MqttConn *conn;                /* a ref */
  MqttPacketType type;           /* PUBACK or PUBREC */
  guint16 packet_id;
  gboolean done;
  guint8 reason;
  char *reason_string;
  gboolean failed;
};

static MqttConn *
conn_ref (MqttConn *conn)
{
  conn->ref_count++;
  return conn;
}

static void
conn_unref (MqttConn *conn)
{
  /* Only touched on the connection's worker: no atomics. */
  if (--conn->ref_count > 0)
    return;
  g_clear_pointer (&conn->principal, sluice_principal_unref);
  g_clear_pointer (&conn->decoder, mqtt_decoder_free);
  g_free (conn->client_id);
  g_free (conn->device_id);
  g_free (conn->auth_method);
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

static void
conn_write (MqttConn *conn, GByteArray *out)
{
  if (conn->connection != NULL && out->len > 0)
    sluice_connection_write (conn->connection, out->data, out->len);
}

/* A packet built by hand that the encoder refuses is a bug here, not the
 * peer's doing. */
static void
conn_send_packet (MqttConn *conn, const MqttPacket *packet)
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
  conn_write (conn, out);
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
      conn_send_packet (conn, packet);
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
  ack->conn = conn_ref (conn);
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
              conn_send_packet (conn, packet);
            }
          else
            {
              g_autoptr (GByteArray) out = g_byte_array_new ();

              mqtt_encode_ack (out, conn->version, ack->type, ack->packet_id, ack->reason);
              conn_write (conn, out);
            }
        }
      conn_unref (ack->conn);
      pending_ack_free (ack);
    }
  if (conn->paused && conn->acks.length < MQTT_MAX_INFLIGHT / 2)
    {
      conn->paused = FALSE;
      /* The core presents the input left over again. */
      if (conn->connection != NULL && !conn->closing)
        sluice_connection_resume (conn->connection);
    }
}

void
mqtt_pending_ack_complete (MqttPendingAck *ack, guint8 reason, const char *reason_string,
                           gboolean failed)
{
  MqttConn *conn = ack->conn;

  ack->done = TRUE;
  ack->reason = reason;
  ack->reason_string = g_strdup (reason_string);
  ack->failed = failed;
  conn_ref (conn);
  conn_flush_acks (conn);
  conn_unref (conn);
}

/* --- keepalive, revocation --- */

static gboolean
keepalive_check (gpointer user_data)
{
  MqttConn *conn = user_data;
  gint64 idle;

  /* A client we stopped reading is not idle. */
  if (conn->paused)
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

  mqtt_conn_fail (conn, MQTT_RC_NOT_AUTHORIZED, why);
}

/* --- CONNECT --- */

static void
conn_send_connack (MqttConn *conn, guint8 code, MqttProperties *props)
{
  g_autoptr (MqttPacket) packet = mqtt_packet_new (MQTT_CONNACK);

  packet->reason = code;
  packet->connack.session_present = FALSE;
  if (props != NULL)
    {
      mqtt_props_clear (&packet->props);
      packet->props = *props;
      memset (props, 0, sizeof *props);
    }
  conn_send_packet (conn, packet);
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
  conn_send_connack (conn, conn->version == MQTT_VERSION_5 ? v5_code : v3_code, NULL);
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
  if (memchr (data, '\0', len) != NULL)
    return NULL;
  return g_strndup (data, len);
}

static void
conn_handle_connect (MqttConn *conn, MqttPacket *packet)
{
  MqttTransport *transport = conn->transport;
  const MqttConnect *connect = &packet->connect;
  SluiceCredentials credentials = { 0 };
  g_autofree char *password = NULL;
  g_autofree char *resource = NULL;
  g_autoptr (GError) error = NULL;
  MqttProperties props = { 0 };
  guint keepalive_max = (guint) transport->options->keepalive_max;
  gboolean assigned = FALSE;

  conn->version = connect->protocol_level;
  conn->client_id = g_strdup (connect->client_id);

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
  if (mqtt_props_has (&packet->props, MQTT_PROP_AUTH_METHOD))
    {
      conn_refuse_connect (conn, MQTT_V3_CONNACK_NOT_AUTHORIZED,
                           MQTT_RC_BAD_AUTHENTICATION_METHOD,
                           "enhanced authentication (AUTH) is not implemented yet");
      return;
    }
  if (connect->will)
    {
      /* Taking the CONNECT and dropping its will would lose it silently. */
      conn_refuse_connect (conn, MQTT_V3_CONNACK_SERVER_UNAVAILABLE,
                           MQTT_RC_IMPLEMENTATION_SPECIFIC,
                           "will messages are not implemented yet");
      return;
    }

  if (connect->password != NULL)
    {
      password = bytes_to_string (connect->password);
      if (password == NULL)
        {
          conn_refuse_connect (conn, MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD,
                               MQTT_RC_BAD_USERNAME_OR_PASSWORD, "NUL byte in the password");
          return;
        }
    }

  credentials.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
  credentials.protocol = "mqtt";
  credentials.peer = sluice_connection_get_peer (conn->connection);
  credentials.username = connect->username;
  credentials.password = password;
  credentials.client_id = conn->client_id;
  if (mqtt_iothub_is_device_login (connect->username, conn->client_id))
    {
      /* The token must cover this hub's device, whatever host the username
       * names. */
      conn->device_id = g_strdup (conn->client_id);
      resource = g_strdup_printf ("%s/devices/%s", sluice_host_get_hostname (transport->host),
                                  conn->device_id);
      credentials.resource = resource;
    }
  conn->principal = sluice_host_authenticate (transport->host, &credentials, &error);
  if (conn->principal == NULL)
    {
      gboolean forbidden = g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_FORBIDDEN);

      conn_refuse_connect (conn,
                           forbidden ? MQTT_V3_CONNACK_NOT_AUTHORIZED
                                     : MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD,
                           forbidden ? MQTT_RC_NOT_AUTHORIZED : MQTT_RC_BAD_USERNAME_OR_PASSWORD,
                           error != NULL ? error->message : "not authenticated");
      return;
    }
  if (conn->device_id != NULL
      && (sluice_principal_get_kind (conn->principal) != SLUICE_PRINCIPAL_DEVICE
          || g_strcmp0 (sluice_principal_get_name (conn->principal), conn->device_id) != 0))
    {
      /* A policy token under a device's client id: the device topics would
       * then be used by someone who is not that device. */
      conn_refuse_connect (conn, MQTT_V3_CONNACK_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                           "the credentials are not those of the device the client id names");
      return;
    }
  conn->auth_method = g_strdup_printf ("{\"scope\":\"%s\",\"type\":\"%s\",\"issuer\":\"iothub\"}",
                                       sluice_principal_get_kind (conn->principal)
                                         == SLUICE_PRINCIPAL_DEVICE ? "device" : "hub",
                                       sluice_principal_get_auth_method (conn->principal));

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
  if (conn->version == MQTT_VERSION_5)
    {
      mqtt_props_set_int (&props, MQTT_PROP_MAXIMUM_QOS, 1);
      mqtt_props_set_int (&props, MQTT_PROP_RECEIVE_MAXIMUM, MQTT_MAX_INFLIGHT);
      mqtt_props_set_int (&props, MQTT_PROP_RETAIN_AVAILABLE, 0);
      mqtt_props_set_int (&props, MQTT_PROP_MAXIMUM_PACKET_SIZE,
                          (guint32) MIN (transport->options->max_packet, MQTT_MAX_PACKET_SIZE));
      mqtt_props_set_int (&props, MQTT_PROP_SHARED_SUB_AVAILABLE, 0);
      mqtt_props_set_int (&props, MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE, 0);
      mqtt_props_set_int (&props, MQTT_PROP_WILDCARD_SUB_AVAILABLE, 0);
      if (assigned)
        mqtt_props_set_string (&props, MQTT_PROP_ASSIGNED_CLIENT_ID, conn->client_id);
      /* No session is kept (see the top of this file): say so. */
      if (mqtt_props_has (&packet->props, MQTT_PROP_SESSION_EXPIRY))
        mqtt_props_set_int (&props, MQTT_PROP_SESSION_EXPIRY, 0);
    }

  conn->watch_id = sluice_host_watch_principal (transport->host, conn->principal,
                                                conn_revoked, conn);
  conn_send_connack (conn, MQTT_RC_SUCCESS, &props);
  conn->connected = TRUE;
  conn_start_keepalive (conn);
  sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT
               " (%s): client '%s' connected as %s (MQTT %s, keepalive %u s)",
               mqtt_conn_get_id (conn), sluice_connection_get_peer (conn->connection),
               conn->client_id, sluice_principal_get_id (conn->principal),
               conn->version == MQTT_VERSION_5 ? "5" : "3.1.1", conn->keepalive);
}

/* --- SUBSCRIBE, UNSUBSCRIBE --- */

static void
conn_handle_subscribe (MqttConn *conn, const MqttPacket *packet)
{
  g_autoptr (MqttPacket) suback = mqtt_packet_new (MQTT_SUBACK);
  const char *reason_string = NULL;

  suback->packet_id = packet->packet_id;
  for (guint i = 0; i < packet->subscribe.subscriptions->len; i++)
    {
      const MqttSubscription *sub = &g_array_index (packet->subscribe.subscriptions,
                                                    MqttSubscription, i);
      const char *why = NULL;
      guint8 reason = mqtt_iothub_subscribe_reason (conn, sub, &why);

      /* 3.1.1 has one failure code. */
      if (conn->version != MQTT_VERSION_5 && reason >= 0x80)
        reason = 0x80;
      g_byte_array_append (suback->suback.reasons, &reason, 1);
      if (why != NULL && reason_string == NULL)
        reason_string = why;
    }
  if (conn->version == MQTT_VERSION_5 && reason_string != NULL)
    mqtt_props_set_string (&suback->props, MQTT_PROP_REASON_STRING, reason_string);
  conn_send_packet (conn, suback);
}

static void
conn_handle_unsubscribe (MqttConn *conn, const MqttPacket *packet)
{
  g_autoptr (MqttPacket) unsuback = mqtt_packet_new (MQTT_UNSUBACK);

  unsuback->packet_id = packet->packet_id;
  if (conn->version == MQTT_VERSION_5)
    for (guint i = 0; i < packet->unsubscribe.filters->len; i++)
      {
        /* No SUBSCRIBE has succeeded yet, so none existed. */
        guint8 reason = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
        g_byte_array_append (unsuback->unsuback.reasons, &reason, 1);
      }
  conn_send_packet (conn, unsuback);
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
      mqtt_iothub_handle_publish (conn, packet);
      break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
      /* Nothing is sent to clients with QoS > 0 yet. */
      mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR,
                      "acknowledgement for a message that was never sent");
      break;
    case MQTT_PUBREL:
      /* QoS 2 PUBLISHes are refused with PUBREC 0x9B, so there is nothing
       * to release. */
      mqtt_encode_ack (out, conn->version, MQTT_PUBCOMP, packet->packet_id,
                       conn->version == MQTT_VERSION_5 ? MQTT_RC_PACKET_ID_NOT_FOUND : 0);
      conn_write (conn, out);
      break;
    case MQTT_SUBSCRIBE:
      conn_handle_subscribe (conn, packet);
      break;
    case MQTT_UNSUBSCRIBE:
      conn_handle_unsubscribe (conn, packet);
      break;
    case MQTT_PINGREQ:
      mqtt_encode_pingresp (out);
      conn_write (conn, out);
      break;
    case MQTT_DISCONNECT:
      sluice_debug (conn->transport->instance_name, "connection %" G_GUINT64_FORMAT
                    ": client '%s' disconnected", mqtt_conn_get_id (conn), conn->client_id);
      conn_close (conn);
      break;
    case MQTT_AUTH:
      mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR,
                      "AUTH without an authentication method in CONNECT");
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
  conn->decoder = mqtt_decoder_new (MQTT_ROLE_SERVER, transport->options->max_packet);
  conn->last_packet = g_get_monotonic_time ();
  g_queue_init (&conn->acks);
  /* One whole packet plus one read: the decoder refuses a larger packet as
   * soon as its fixed header is there. */
  sluice_connection_set_max_input (connection, transport->options->max_packet + 65536);
  sluice_counter_add (transport->connections, 1);
  return conn;
}

gsize
mqtt_conn_input (MqttConn *conn, const guint8 *data, gsize len)
{
  gsize pos = 0;
  gsize result;

  conn_ref (conn);
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
          conn_write (conn, out);
          conn_close (conn);
          break;
        }
      pos += consumed;
      conn->last_packet = g_get_monotonic_time ();
      conn_handle_packet (conn, packet);
    }
  /* After a fatal answer the rest is not looked at. */
  result = conn->closing ? len : pos;
  conn_unref (conn);
  return result;
}

void
mqtt_conn_closed (MqttConn *conn)
{
  MqttTransport *transport = conn->transport;

  sluice_counter_add (transport->connections, -1);
  conn->connection = NULL;
  conn->closing = TRUE;
  if (conn->watch_id != 0)
    sluice_host_unwatch_principal (transport->host, conn->watch_id);
  conn->watch_id = 0;
  if (conn->keepalive_source != NULL)
    {
      g_source_destroy (conn->keepalive_source);
      g_clear_pointer (&conn->keepalive_source, g_source_unref);
    }
  /* Acks still in flight hold their own refs and are dropped as their
   * appends complete. */
  conn_unref (conn);
}
