/* transport-mqtt — plain MQTT pub/sub on a connection: PUBLISH in (QoS 0,
 * 1 and 2, topic aliases, authorization, mapped streams, retained, the
 * durable copies of persistent sessions), PUBLISH out (the client's
 * Receive Maximum, Maximum Packet Size and Topic Alias Maximum, QoS 1 and
 * 2 flows, resending after a resumed session), SUBSCRIBE and UNSUBSCRIBE
 * (retain handling, subscription identifiers, shared subscriptions).
 * Runs on the connection's worker.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-conn-private.h"
#include "mqtt-acl.h"
#include "mqtt-map.h"
#include "mqtt-topic.h"

#include <string.h>

/* Copies written per pump before yielding to other connections. */
#define PUMP_BATCH 256

/* --- who may do what --- */

static void
conn_who (MqttConn *conn, MqttAclWho *who)
{
  if (conn->principal == NULL
      || sluice_principal_get_kind (conn->principal) == SLUICE_PRINCIPAL_ANONYMOUS)
    {
      who->kind = MQTT_ACL_WHO_ANONYMOUS;
      who->name = "";
    }
  else if (sluice_principal_get_kind (conn->principal) == SLUICE_PRINCIPAL_DEVICE)
    {
      who->kind = MQTT_ACL_WHO_DEVICE;
      who->name = sluice_principal_get_name (conn->principal);
    }
  else
    {
      who->kind = MQTT_ACL_WHO_POLICY;
      who->name = sluice_principal_get_name (conn->principal);
    }
}

gboolean
mqtt_pubsub_may_publish (MqttConn *conn, const char *topic)
{
  MqttAclWho who;

  conn_who (conn, &who);
  return mqtt_acl_allows_publish (conn->transport->acl, &who, topic);
}

gboolean
mqtt_pubsub_may_subscribe (MqttConn *conn, const char *filter)
{
  MqttAclWho who;

  conn_who (conn, &who);
  return mqtt_acl_allows_subscribe (conn->transport->acl, &who, filter);
}

/* The IoT Hub topic families: a device's own, handled by mqtt-iothub.c. */
static gboolean
is_iothub_topic (const char *topic)
{
  return g_str_has_prefix (topic, "devices/") || g_str_has_prefix (topic, "$iothub/");
}

/* --- messages --- */

MqttMessage *
mqtt_pubsub_message_from (const char *topic, GBytes *payload, guint8 qos, gboolean retain,
                          const MqttProperties *props, const char *origin)
{
  MqttMessage *m = mqtt_message_new (topic, payload, qos, retain);

  m->origin = g_strdup (origin);
  if (props == NULL)
    return m;
  /* MQTT-3.3.2-4 and friends: what the server forwards unaltered. */
  if (mqtt_props_has (props, MQTT_PROP_PAYLOAD_FORMAT))
    mqtt_props_set_int (&m->props, MQTT_PROP_PAYLOAD_FORMAT, props->payload_format);
  if (mqtt_props_has (props, MQTT_PROP_CONTENT_TYPE))
    mqtt_props_set_string (&m->props, MQTT_PROP_CONTENT_TYPE, props->content_type);
  if (mqtt_props_has (props, MQTT_PROP_RESPONSE_TOPIC))
    mqtt_props_set_string (&m->props, MQTT_PROP_RESPONSE_TOPIC, props->response_topic);
  if (mqtt_props_has (props, MQTT_PROP_CORRELATION_DATA))
    mqtt_props_set_binary (&m->props, MQTT_PROP_CORRELATION_DATA, props->correlation_data);
  for (guint i = 0; props->user != NULL && i < props->user->len; i++)
    {
      MqttUserProperty *u = &g_array_index (props->user, MqttUserProperty, i);
      mqtt_props_add_user (&m->props, u->name, u->value);
    }
  if (mqtt_props_has (props, MQTT_PROP_MESSAGE_EXPIRY))
    m->expires_at = g_get_real_time () + (gint64) props->message_expiry * G_USEC_PER_SEC;
  return m;
}

/* --- PUBLISH in --- */

/* One PUBLISH's work: delivery, mapped appends, stored copies, retained.
 * The acknowledgement goes out when every part is done. */
typedef struct {
  MqttTransport *transport;
  MqttPendingAck *ack;           /* NULL for QoS 0 */
  MqttSession *session;          /* QoS 2: to forget the packet id on failure */
  guint16 packet_id;
  guint8 qos;
  guint parts;
  guint8 reason;                 /* first failure, or 0x10 for no subscribers */
  char *reason_string;
  gboolean failed;
  guint64 conn_id;
  char *topic;
} PublishJob;

static void
publish_job_part_done (PublishJob *job, const GError *error, const char *what)
{
  if (error != NULL && !job->failed)
    {
      job->failed = TRUE;
      job->reason = g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_FORBIDDEN)
                      ? MQTT_RC_NOT_AUTHORIZED
                      : g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE)
                          ? MQTT_RC_PACKET_TOO_LARGE
                          : g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_THROTTLED)
                              ? MQTT_RC_QUOTA_EXCEEDED : MQTT_RC_UNSPECIFIED_ERROR;
      job->reason_string = g_strdup_printf ("%s: %s", what, error->message);
      sluice_warning (job->transport->instance_name, "connection %" G_GUINT64_FORMAT
                      ": PUBLISH to '%s' not taken: %s", job->conn_id, job->topic,
                      job->reason_string);
      sluice_counter_add (job->transport->refused, 1);
    }
  if (--job->parts > 0)
    return;
  if (job->ack != NULL)
    {
      if (job->failed && job->session != NULL)
        {
          mqtt_session_lock (job->session);
          mqtt_session_qos2_release (job->session, job->packet_id);
          mqtt_session_unlock (job->session);
        }
      mqtt_pending_ack_complete (job->ack, job->reason,
                                 job->reason_string, job->failed);
    }
  if (job->session != NULL)
    mqtt_session_unref (job->session);
  g_free (job->reason_string);
  g_free (job->topic);
  g_free (job);
}

static void
publish_append_done (const SluiceAppendResult *result, const GError *error, gpointer data)
{
  publish_job_part_done (data, error, "mapped stream");
}

static void
publish_kv_done (const GError *error, gpointer data)
{
  publish_job_part_done (data, error, "stored copies");
}

static void
publish_retain_done (const GError *error, gpointer data)
{
  publish_job_part_done (data, error, "retained message");
}

/* Refuse one PUBLISH: v5 answers QoS 1 / 2 with PUBACK / PUBREC `reason`
 * (in order) and QoS 0 by closing with DISCONNECT `reason`; 3.1.1 can
 * only close. */
static void
refuse_publish (MqttConn *conn, const MqttPacket *packet, const char *topic, guint8 reason,
                const char *why)
{
  MqttTransport *transport = conn->transport;

  sluice_counter_add (transport->refused, 1);
  if (conn->version == MQTT_VERSION_5 && packet->publish.qos > 0)
    {
      sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT
                   " (client '%s'): PUBLISH to '%s' refused: %s", mqtt_conn_get_id (conn),
                   conn->client_id, topic, why);
      mqtt_pending_ack_complete (mqtt_conn_queue_ack (conn, packet->publish.qos == 2
                                                              ? MQTT_PUBREC : MQTT_PUBACK,
                                                      packet->packet_id),
                                 reason, why, FALSE);
      return;
    }
  {
    g_autofree char *text = g_strdup_printf ("PUBLISH to '%s' refused: %s", topic, why);
    mqtt_conn_fail (conn, reason, text);
  }
}

/* v5 topic aliases from the client (MQTT-3.3.2-7..12). Returns the topic to
 * use (transfer none), or NULL after failing the connection. */
static const char *
resolve_alias (MqttConn *conn, MqttPacket *packet)
{
  const char *topic = packet->publish.topic;
  guint16 alias;

  if (!mqtt_props_has (&packet->props, MQTT_PROP_TOPIC_ALIAS))
    {
      if (*topic == '\0')
        {
          mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR, "PUBLISH without a topic or alias");
          return NULL;
        }
      return topic;
    }
  alias = packet->props.topic_alias;
  if (alias == 0 || alias > conn->in_alias_max)
    {
      g_autofree char *why = g_strdup_printf ("topic alias %u over the maximum (%u)", alias,
                                              conn->in_alias_max);
      mqtt_conn_fail (conn, MQTT_RC_TOPIC_ALIAS_INVALID, why);
      return NULL;
    }
  if (conn->in_aliases == NULL)
    conn->in_aliases = g_new0 (char *, conn->in_alias_max + 1);
  if (*topic != '\0')
    {
      g_free (conn->in_aliases[alias]);
      conn->in_aliases[alias] = g_strdup (topic);
      return topic;
    }
  if (conn->in_aliases[alias] == NULL)
    {
      g_autofree char *why = g_strdup_printf ("topic alias %u was never set", alias);
      mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR, why);
      return NULL;
    }
  return conn->in_aliases[alias];
}

static char **
mapped_headers (MqttConn *conn, const char *topic, const MqttProperties *props)
{
  GPtrArray *h = g_ptr_array_new ();

  g_ptr_array_add (h, g_strdup ("mqtt-topic"));
  g_ptr_array_add (h, g_strdup (topic));
  if (mqtt_props_has (props, MQTT_PROP_CONTENT_TYPE))
    {
      g_ptr_array_add (h, g_strdup ("content-type"));
      g_ptr_array_add (h, g_strdup (props->content_type));
    }
  if (mqtt_props_has (props, MQTT_PROP_RESPONSE_TOPIC))
    {
      g_ptr_array_add (h, g_strdup ("mqtt-response-topic"));
      g_ptr_array_add (h, g_strdup (props->response_topic));
    }
  if (conn->principal != NULL
      && sluice_principal_get_kind (conn->principal) != SLUICE_PRINCIPAL_ANONYMOUS)
    {
      g_ptr_array_add (h, g_strdup ("user-id"));
      g_ptr_array_add (h, g_strdup (sluice_principal_get_id (conn->principal)));
    }
  g_ptr_array_add (h, g_strdup ("mqtt-client-id"));
  g_ptr_array_add (h, g_strdup (conn->client_id));
  /* So that a bridge out of the same stream does not send it back. */
  g_ptr_array_add (h, g_strdup ("mqtt-transport"));
  g_ptr_array_add (h, g_strdup (conn->transport->instance_name));
  for (guint i = 0; props->user != NULL && i < props->user->len; i++)
    {
      MqttUserProperty *u = &g_array_index (props->user, MqttUserProperty, i);
      g_ptr_array_add (h, g_strdup (u->name));
      g_ptr_array_add (h, g_strdup (u->value));
    }
  g_ptr_array_add (h, NULL);
  return (char **) g_ptr_array_free (h, FALSE);
}

void
mqtt_pubsub_handle_publish (MqttConn *conn, MqttPacket *packet)
{
  MqttTransport *transport = conn->transport;
  MqttPublish *pub = &packet->publish;
  const char *topic;
  g_autoptr (MqttMessage) message = NULL;
  g_autoptr (GPtrArray) maps = NULL;
  MqttPublishResult result;
  PublishJob *job;
  g_autoptr (GError) error = NULL;
  MqttTopicLimits limits = { 0, (guint) transport->options->max_topic_levels };

  if (pub->qos > 0 && conn->version == MQTT_VERSION_5
      && conn->acks.length >= conn->receive_maximum)
    {
      /* MQTT-3.3.4-7 */
      mqtt_conn_fail (conn, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
                      "more QoS 1 / 2 PUBLISHes in flight than the Receive Maximum");
      return;
    }
  topic = resolve_alias (conn, packet);
  if (topic == NULL)
    return;
  if (!mqtt_topic_name_validate (topic, strlen (topic), &limits, &error))
    {
      refuse_publish (conn, packet, topic, MQTT_RC_TOPIC_NAME_INVALID, error->message);
      return;
    }

  /* QoS 2: a PUBLISH resent before PUBREL is acknowledged, not delivered
   * again (MQTT-4.3.3-9). */
  if (pub->qos == 2)
    {
      gboolean again;

      mqtt_session_lock (conn->session);
      again = mqtt_session_qos2_received (conn->session, packet->packet_id);
      if (!again)
        mqtt_session_qos2_add (conn->session, packet->packet_id);
      mqtt_session_unlock (conn->session);
      if (again)
        {
          mqtt_pending_ack_complete (mqtt_conn_queue_ack (conn, MQTT_PUBREC,
                                                          packet->packet_id),
                                     MQTT_RC_SUCCESS, NULL, FALSE);
          return;
        }
    }

  if (conn->device_id != NULL && is_iothub_topic (topic))
    {
      /* A device's own topics: telemetry into `events`, the rest says
       * clearly what is not there yet. */
      mqtt_iothub_handle_publish (conn, packet, topic);
      return;
    }
  if (!mqtt_pubsub_may_publish (conn, topic))
    {
      refuse_publish (conn, packet, topic, MQTT_RC_NOT_AUTHORIZED,
                      "no [mqtt-acl.*] grants this client publishing to this topic");
      if (pub->qos == 2)
        {
          mqtt_session_lock (conn->session);
          mqtt_session_qos2_release (conn->session, packet->packet_id);
          mqtt_session_unlock (conn->session);
        }
      return;
    }

  sluice_counter_add (transport->messages_in[pub->qos], 1);
  message = mqtt_pubsub_message_from (topic, pub->payload, pub->qos, pub->retain,
                                      &packet->props, conn->client_id);

  job = g_new0 (PublishJob, 1);
  job->transport = transport;
  job->qos = pub->qos;
  job->packet_id = packet->packet_id;
  job->parts = 1;
  job->conn_id = mqtt_conn_get_id (conn);
  job->topic = g_strdup (topic);
  if (pub->qos > 0)
    job->ack = mqtt_conn_queue_ack (conn, pub->qos == 2 ? MQTT_PUBREC : MQTT_PUBACK,
                                    packet->packet_id);
  if (pub->qos == 2)
    job->session = mqtt_session_ref (conn->session);

  /* Streams the topic is mapped to: the PUBACK follows their durability. */
  maps = g_ptr_array_new ();
  mqtt_map_match (transport->map, topic, strlen (topic), maps);
  if (maps->len > 0)
    {
      g_auto (GStrv) headers = mapped_headers (conn, topic, &packet->props);

      for (guint i = 0; i < maps->len; i++)
        {
          const MqttMapEntry *e = maps->pdata[i];

          job->parts++;
          sluice_host_publish (transport->host, transport->map_principal, e->stream, -1,
                               e->key == MQTT_MAP_KEY_CLIENT_ID ? conn->client_id : topic,
                               (const char *const *) headers, pub->payload,
                               publish_append_done, job);
        }
    }

  if (pub->retain)
    {
      mqtt_broker_retain (transport->broker, message);
      job->parts++;
      mqtt_persist_retain (transport, message, publish_retain_done, job);
    }

  mqtt_broker_publish (transport->broker, message, conn->session, conn->handle, &result);
  if (result.stored_keys != NULL)
    {
      g_autoptr (GArray) ops = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));

      for (guint i = 0; i < result.stored_keys->len; i++)
        {
          SluiceKvOp op = { SLUICE_KV_PUT, result.stored_keys->pdata[i],
                            result.stored_values->pdata[i] };
          g_array_append_val (ops, op);
        }
      job->parts++;
      sluice_host_kv_commit (transport->host, transport->instance_name,
                             (SluiceKvOp *) ops->data, ops->len, publish_kv_done, job);
    }
  if (result.matched == 0 && maps->len == 0 && conn->version == MQTT_VERSION_5)
    job->reason = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
  if (result.blocked)
    mqtt_conn_block (conn);
  mqtt_publish_result_clear (&result);
  publish_job_part_done (job, NULL, NULL);
}

/* --- acknowledgements from the client (PUBLISH out) --- */

static void
conn_kv_delete (MqttConn *conn, char *key)
{
  if (conn->kv_deletes == NULL)
    conn->kv_deletes = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (conn->kv_deletes, key);
}

static void
conn_done_with (MqttConn *conn, MqttQueued *q)
{
  if (q->store_seq != 0)
    conn_kv_delete (conn,
                     mqtt_kv_queued_key (conn->client_id,
                                         mqtt_session_get_epoch (conn->session),
                                         q->store_seq));
  mqtt_queued_free (q);
}

void
mqtt_pubsub_handle_puback (MqttConn *conn, const MqttPacket *packet)
{
  MqttQueued *q;

  if (conn->session == NULL)
    return;
  mqtt_session_lock (conn->session);
  q = mqtt_session_inflight_lookup (conn->session, packet->packet_id);
  if (q != NULL && q->qos == 1)
    q = mqtt_session_inflight_remove (conn->session, packet->packet_id);
  else
    q = NULL;
  mqtt_session_unlock (conn->session);
  if (q == NULL)
    {
      /* A late PUBACK after a resend, or for nothing we sent: harmless. */
      sluice_debug (conn->transport->instance_name, "connection %" G_GUINT64_FORMAT
                    ": PUBACK for unknown packet id %u", mqtt_conn_get_id (conn),
                    packet->packet_id);
      return;
    }
  conn_done_with (conn, q);
  mqtt_pubsub_pump (conn);
}

void
mqtt_pubsub_handle_pubrec (MqttConn *conn, const MqttPacket *packet)
{
  MqttQueued *q = NULL;
  gboolean found = FALSE;
  g_autoptr (GByteArray) out = g_byte_array_new ();

  if (conn->session == NULL)
    return;
  mqtt_session_lock (conn->session);
  q = mqtt_session_inflight_lookup (conn->session, packet->packet_id);
  if (q != NULL && q->qos == 2)
    {
      found = TRUE;
      if (packet->reason >= 0x80)
        q = mqtt_session_inflight_remove (conn->session, packet->packet_id);
      else
        {
          q->released = TRUE;
          q = NULL;
        }
    }
  else
    q = NULL;
  mqtt_session_unlock (conn->session);
  if (found && packet->reason >= 0x80)
    {
      /* The client refused it: done with it (MQTT-4.3.3). */
      conn_done_with (conn, q);
      mqtt_pubsub_pump (conn);
      return;
    }
  mqtt_encode_ack (out, conn->version, MQTT_PUBREL, packet->packet_id,
                   found || conn->version != MQTT_VERSION_5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND);
  mqtt_conn_write (conn, out);
}

void
mqtt_pubsub_handle_pubcomp (MqttConn *conn, const MqttPacket *packet)
{
  MqttQueued *q;

  if (conn->session == NULL)
    return;
  mqtt_session_lock (conn->session);
  q = mqtt_session_inflight_lookup (conn->session, packet->packet_id);
  if (q != NULL && q->qos == 2 && q->released)
    q = mqtt_session_inflight_remove (conn->session, packet->packet_id);
  else
    q = NULL;
  mqtt_session_unlock (conn->session);
  if (q == NULL)
    return;
  conn_done_with (conn, q);
  mqtt_pubsub_pump (conn);
}

void
mqtt_pubsub_handle_pubrel (MqttConn *conn, const MqttPacket *packet)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  gboolean known;

  mqtt_session_lock (conn->session);
  known = mqtt_session_qos2_release (conn->session, packet->packet_id);
  mqtt_session_unlock (conn->session);
  if (known && mqtt_session_is_persistent (conn->session))
    conn_kv_delete (conn, mqtt_kv_qos2_key (conn->client_id,
                                            mqtt_session_get_epoch (conn->session),
                                            packet->packet_id));
  /* After a restart the id is not known any more, but the message was
   * taken before its PUBREC: completing is right (v5 says which). */
  mqtt_encode_ack (out, conn->version, MQTT_PUBCOMP, packet->packet_id,
                   known || conn->version != MQTT_VERSION_5 ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND);
  mqtt_conn_write (conn, out);
}

/* --- PUBLISH out --- */

/* The fixed header and variable header of a PUBLISH without properties;
 * the payload follows without a copy. */
static void
write_publish_fast (MqttConn *conn, const char *topic, guint16 alias_unused, guint8 qos,
                    gboolean retain, gboolean dup, guint16 packet_id, GBytes *payload)
{
  guint8 head[16 + 2];
  g_autoptr (GByteArray) out = g_byte_array_sized_new (32 + strlen (topic));
  gsize topic_len = strlen (topic);
  gsize payload_len = g_bytes_get_size (payload);
  gsize remaining = 2 + topic_len + (qos > 0 ? 2 : 0)
                    + (conn->version == MQTT_VERSION_5 ? 1 : 0) + payload_len;
  guint8 b;

  b = (guint8) (0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0));
  g_byte_array_append (out, &b, 1);
  mqtt_varint_append (out, (guint32) remaining);
  head[0] = (guint8) (topic_len >> 8);
  head[1] = (guint8) topic_len;
  g_byte_array_append (out, head, 2);
  g_byte_array_append (out, (const guint8 *) topic, topic_len);
  if (qos > 0)
    {
      head[0] = (guint8) (packet_id >> 8);
      head[1] = (guint8) packet_id;
      g_byte_array_append (out, head, 2);
    }
  if (conn->version == MQTT_VERSION_5)
    {
      b = 0;
      g_byte_array_append (out, &b, 1);
    }
  sluice_connection_write (conn->connection, out->data, out->len);
  if (payload_len > 0)
    sluice_connection_write_bytes (conn->connection, payload);
  sluice_counter_add (conn->transport->bytes_out, out->len + payload_len);
}

/* Encode and write one copy. Returns FALSE when it is larger than the
 * client's Maximum Packet Size (MQTT-3.1.2-24: then it is not sent). */
static gboolean
write_publish (MqttConn *conn, MqttQueued *q, gboolean dup)
{
  MqttMessage *m = q->message;
  gboolean needs_props;
  guint16 alias = 0;
  gboolean alias_new = FALSE;
  const char *topic = m->topic;

  if (conn->version == MQTT_VERSION_5 && conn->client_alias_max > 0)
    {
      if (conn->out_aliases == NULL)
        conn->out_aliases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      alias = GPOINTER_TO_UINT (g_hash_table_lookup (conn->out_aliases, topic));
      if (alias == 0 && conn->next_out_alias < conn->client_alias_max)
        {
          alias = ++conn->next_out_alias;
          g_hash_table_insert (conn->out_aliases, g_strdup (topic), GUINT_TO_POINTER (alias));
          alias_new = TRUE;
        }
    }
  needs_props = conn->version == MQTT_VERSION_5
                && (!mqtt_props_is_empty (&m->props) || q->sub_ids != NULL
                    || m->expires_at != 0 || alias != 0);
  if (!needs_props && conn->client_max_packet == 0)
    {
      write_publish_fast (conn, topic, 0, q->qos, q->retain, dup, q->packet_id, m->payload);
      return TRUE;
    }
  {
    g_autoptr (MqttPacket) packet = mqtt_packet_new (MQTT_PUBLISH);
    g_autoptr (GByteArray) out = g_byte_array_new ();
    g_autoptr (GError) error = NULL;

    packet->publish.dup = dup;
    packet->publish.qos = q->qos;
    packet->publish.retain = q->retain;
    packet->packet_id = q->packet_id;
    g_free (packet->publish.topic);
    packet->publish.topic = g_strdup (alias != 0 && !alias_new ? "" : topic);
    g_bytes_unref (packet->publish.payload);
    packet->publish.payload = g_bytes_ref (m->payload);
    if (conn->version == MQTT_VERSION_5)
      {
        mqtt_props_clear (&packet->props);
        mqtt_props_copy (&packet->props, &m->props);
        for (guint i = 0; q->sub_ids != NULL && i < q->sub_ids->len; i++)
          mqtt_props_set_int (&packet->props, MQTT_PROP_SUBSCRIPTION_ID,
                              g_array_index (q->sub_ids, guint32, i));
        if (m->expires_at != 0)
          {
            /* MQTT-3.3.2-6: the time left. */
            gint64 left = (m->expires_at - g_get_real_time () + G_USEC_PER_SEC - 1)
                          / G_USEC_PER_SEC;
            mqtt_props_set_int (&packet->props, MQTT_PROP_MESSAGE_EXPIRY,
                                (guint32) MAX (left, 1));
          }
        if (alias != 0)
          mqtt_props_set_int (&packet->props, MQTT_PROP_TOPIC_ALIAS, alias);
      }
    if (!mqtt_packet_encode (packet, conn->version, out, &error))
      {
        sluice_warning (conn->transport->instance_name, "connection %" G_GUINT64_FORMAT
                        ": cannot encode a PUBLISH to '%s': %s", mqtt_conn_get_id (conn),
                        topic, error->message);
        return FALSE;
      }
    if (conn->client_max_packet != 0 && out->len > conn->client_max_packet)
      {
        if (alias_new)
          {
            g_hash_table_remove (conn->out_aliases, topic);
            conn->next_out_alias--;
          }
        return FALSE;
      }
    mqtt_conn_write (conn, out);
    sluice_counter_add (conn->transport->bytes_out, out->len);
  }
  return TRUE;
}

void
mqtt_pubsub_pump (MqttConn *conn)
{
  MqttSession *session = conn->session;
  g_autoptr (GPtrArray) waiters = NULL;
  g_autoptr (GPtrArray) dead = NULL;
  guint sent = 0;
  gboolean more = FALSE;

  if (session == NULL || conn->connection == NULL || conn->closing || !conn->connected)
    return;
  mqtt_session_lock (session);
  mqtt_session_woken (session);
  while (!conn->congested)
    {
      MqttQueued *q;

      if (sent >= PUMP_BATCH)
        {
          more = TRUE;
          break;
        }
      q = mqtt_session_pop (session);
      if (q == NULL)
        break;
      if (q->qos > 0 && mqtt_session_inflight_count (session) >= conn->client_receive_maximum)
        {
          /* MQTT-4.9.0-2: wait for an acknowledgement. */
          mqtt_session_push_front (session, q);
          break;
        }
      if (q->qos > 0)
        mqtt_session_send_inflight (session, q);
      if (!write_publish (conn, q, FALSE))
        {
          sluice_counter_add (conn->transport->dropped_too_large, 1);
          sluice_info (conn->transport->instance_name, "connection %" G_GUINT64_FORMAT
                       ": a message to '%s' is larger than the client's maximum packet "
                       "size and was not sent", mqtt_conn_get_id (conn), q->message->topic);
          if (q->qos > 0)
            mqtt_session_inflight_remove (session, q->packet_id);
          conn_done_with (conn, q);
          continue;
        }
      sluice_counter_add (conn->transport->messages_out[q->qos], 1);
      sent++;
      if (q->qos == 0)
        mqtt_queued_free (q);
      if (sluice_connection_is_congested (conn->connection))
        conn->congested = TRUE;
    }
  dead = mqtt_session_take_dead_keys (session);
  waiters = mqtt_session_take_waiters_if_drained (session);
  mqtt_session_unlock (session);
  if (dead != NULL)
    for (guint i = 0; i < dead->len; i++)
      conn_kv_delete (conn, g_strdup (dead->pdata[i]));
  if (waiters != NULL)
    mqtt_broker_resume_waiters (conn->transport->broker, waiters);
  if (more)
    mqtt_broker_wake (conn->transport->broker, session);
}

void
mqtt_pubsub_resend_inflight (MqttConn *conn)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();

  mqtt_session_lock (conn->session);
  for (GList *l = mqtt_session_inflight_list (conn->session); l != NULL; l = l->next)
    {
      MqttQueued *q = l->data;

      if (q->released)
        mqtt_encode_ack (out, conn->version, MQTT_PUBREL, q->packet_id, 0);
      else
        {
          if (out->len > 0)
            {
              mqtt_conn_write (conn, out);
              g_byte_array_set_size (out, 0);
            }
          /* MQTT-4.4.0-1: the same packet id, DUP set. */
          write_publish (conn, q, TRUE);
        }
    }
  mqtt_session_unlock (conn->session);
  mqtt_conn_write (conn, out);
}

void
mqtt_pubsub_flush_kv (MqttConn *conn)
{
  g_autoptr (GArray) ops = NULL;
  g_autoptr (GPtrArray) keys = NULL;

  if (conn->kv_deletes == NULL || conn->kv_deletes->len == 0)
    return;
  keys = g_steal_pointer (&conn->kv_deletes);
  ops = g_array_sized_new (FALSE, TRUE, sizeof (SluiceKvOp), keys->len);
  for (guint i = 0; i < keys->len; i++)
    {
      SluiceKvOp op = { SLUICE_KV_DELETE, keys->pdata[i], NULL };
      g_array_append_val (ops, op);
    }
  /* A delete lost to a crash only means the copy is sent again: QoS 1
   * and 2 allow it. */
  sluice_host_kv_commit (conn->transport->host, conn->transport->instance_name,
                         (SluiceKvOp *) ops->data, ops->len, NULL, NULL);
}

/* --- wills --- */

typedef struct {
  MqttTransport *transport;
  MqttMessage *will;
  char *client_id;
} WillJob;

static void
will_done (const GError *error, gpointer data)
{
  WillJob *job = data;

  if (error != NULL)
    sluice_warning (job->transport->instance_name, "the will of client '%s' to '%s' was "
                    "not stored: %s", job->client_id, job->will->topic, error->message);
  mqtt_message_unref (job->will);
  g_free (job->client_id);
  g_free (job);
}

static void
will_publish (MqttTransport *transport, MqttMessage *will, const char *client_id)
{
  MqttPublishResult result;
  WillJob *job;

  if (will->retain)
    {
      mqtt_broker_retain (transport->broker, will);
      job = g_new0 (WillJob, 1);
      job->transport = transport;
      job->will = mqtt_message_ref (will);
      job->client_id = g_strdup (client_id);
      mqtt_persist_retain (transport, will, will_done, job);
    }
  mqtt_broker_publish (transport->broker, will, NULL, NULL, &result);
  if (result.stored_keys != NULL)
    {
      g_autoptr (GArray) ops = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));

      for (guint i = 0; i < result.stored_keys->len; i++)
        {
          SluiceKvOp op = { SLUICE_KV_PUT, result.stored_keys->pdata[i],
                            result.stored_values->pdata[i] };
          g_array_append_val (ops, op);
        }
      job = g_new0 (WillJob, 1);
      job->transport = transport;
      job->will = mqtt_message_ref (will);
      job->client_id = g_strdup (client_id);
      sluice_host_kv_commit (transport->host, transport->instance_name,
                             (SluiceKvOp *) ops->data, ops->len, will_done, job);
    }
  mqtt_publish_result_clear (&result);
  sluice_info (transport->instance_name, "published the will of client '%s' to '%s' "
               "(%u subscribers)", client_id, will->topic, result.matched);
}

typedef struct {
  MqttTransport *transport;
  MqttMessage *will;
  MqttSession *session;
  char *client_id;
} DelayedWill;

static gboolean
delayed_will_fire (gpointer data)
{
  DelayedWill *d = data;

  /* MQTT-3.1.3-9: not sent when the session was resumed meanwhile. */
  if (!mqtt_broker_session_is_attached (d->transport->broker, d->client_id, d->session))
    will_publish (d->transport, d->will, d->client_id);
  return G_SOURCE_REMOVE;
}

static void
delayed_will_free (gpointer data)
{
  DelayedWill *d = data;

  mqtt_message_unref (d->will);
  mqtt_session_unref (d->session);
  g_free (d->client_id);
  g_free (d);
}

void
mqtt_pubsub_send_will (MqttConn *conn, MqttSession *session)
{
  g_autoptr (MqttMessage) will = g_steal_pointer (&conn->will);
  guint32 delay = MIN (conn->will_delay, conn->session_expiry);

  if (delay == 0 || session == NULL)
    {
      will_publish (conn->transport, will, conn->client_id);
      return;
    }
  {
    DelayedWill *d = g_new0 (DelayedWill, 1);
    GSource *source = g_timeout_source_new_seconds (delay);

    d->transport = conn->transport;
    d->will = mqtt_message_ref (will);
    d->session = mqtt_session_ref (session);
    d->client_id = g_strdup (conn->client_id);
    g_source_set_callback (source, delayed_will_fire, d, delayed_will_free);
    g_source_attach (source, conn->handle->context);
    g_source_unref (source);
  }
}

/* --- SUBSCRIBE, UNSUBSCRIBE --- */

typedef struct {
  MqttConn *conn;
  MqttPacket *suback;
  GPtrArray *retained;           /* MqttQueued*, sent after the SUBACK */
} SubscribeJob;

static void
subscribe_job_finish (SubscribeJob *job)
{
  MqttConn *conn = job->conn;

  if (conn->connection != NULL && !conn->closing)
    {
      mqtt_conn_send_packet (conn, job->suback);
      for (guint i = 0; i < job->retained->len; i++)
        mqtt_broker_enqueue (conn->transport->broker, conn->session,
                             g_steal_pointer (&job->retained->pdata[i]));
    }
  g_ptr_array_unref (job->retained);
  mqtt_packet_free (job->suback);
  mqtt_conn_unref (conn);
  g_free (job);
}

static void
subscribe_saved (const GError *error, gpointer data)
{
  SubscribeJob *job = data;

  if (error != NULL)
    {
      /* The subscriptions hold in memory; after a restart they would be
       * gone, so say so rather than pretend. */
      sluice_warning (job->conn->transport->instance_name, "client '%s': the session's "
                      "subscriptions were not stored: %s", job->conn->client_id,
                      error->message);
      for (guint i = 0; i < job->suback->suback.reasons->len; i++)
        if (job->suback->suback.reasons->data[i] < 0x80)
          job->suback->suback.reasons->data[i] = job->conn->version == MQTT_VERSION_5
                                                   ? MQTT_RC_UNSPECIFIED_ERROR : 0x80;
    }
  subscribe_job_finish (job);
}

static void
queue_retained (MqttConn *conn, const MqttTopicFilter *parsed, guint8 granted,
                guint32 sub_id, GPtrArray *out)
{
  g_autofree char *filter = g_strndup (parsed->filter, parsed->filter_len);
  g_autoptr (GPtrArray) found = mqtt_broker_retained_matching (conn->transport->broker,
                                                               filter);

  for (guint i = 0; i < found->len; i++)
    {
      MqttQueued *q = g_new0 (MqttQueued, 1);

      q->message = mqtt_message_ref (found->pdata[i]);
      q->qos = MIN (q->message->qos, granted);
      /* MQTT-3.3.1-9: RETAIN set on messages sent for a new subscription. */
      q->retain = TRUE;
      if (sub_id != 0)
        {
          q->sub_ids = g_array_new (FALSE, FALSE, sizeof (guint32));
          g_array_append_val (q->sub_ids, sub_id);
        }
      g_ptr_array_add (out, q);
    }
}

void
mqtt_pubsub_handle_subscribe (MqttConn *conn, const MqttPacket *packet)
{
  MqttTransport *transport = conn->transport;
  SubscribeJob *job = g_new0 (SubscribeJob, 1);
  const char *reason_string = NULL;
  guint32 sub_id = 0;
  gboolean changed = FALSE;
  MqttTopicLimits limits = { 0, (guint) transport->options->max_topic_levels };

  mqtt_conn_ref (conn);
  job->conn = conn;
  job->suback = mqtt_packet_new (MQTT_SUBACK);
  job->suback->packet_id = packet->packet_id;
  job->retained = g_ptr_array_new_with_free_func ((GDestroyNotify) mqtt_queued_free);
  if (packet->props.subscription_ids != NULL && packet->props.subscription_ids->len > 0)
    sub_id = g_array_index (packet->props.subscription_ids, guint32, 0);

  for (guint i = 0; i < packet->subscribe.subscriptions->len; i++)
    {
      const MqttSubscription *sub = &g_array_index (packet->subscribe.subscriptions,
                                                    MqttSubscription, i);
      MqttTopicFilter parsed;
      g_autoptr (GError) error = NULL;
      guint8 reason = sub->qos;
      const char *why = NULL;

      if (!mqtt_topic_filter_parse (sub->filter, strlen (sub->filter), &limits, &parsed,
                                    &error))
        {
          reason = MQTT_RC_TOPIC_FILTER_INVALID;
          why = "topic filter not valid";
        }
      else if (conn->device_id != NULL && parsed.share_name == NULL
               && is_iothub_topic (sub->filter)
               && mqtt_iothub_is_service_topic (sub->filter))
        reason = mqtt_iothub_subscribe_reason (conn, sub, &why);
      else
        {
          g_autofree char *inner = g_strndup (parsed.filter, parsed.filter_len);

          if (!mqtt_pubsub_may_subscribe (conn, inner))
            {
              reason = MQTT_RC_NOT_AUTHORIZED;
              why = "no [mqtt-acl.*] grants this client subscribing to this filter";
            }
          else
            {
              MqttSubOptions options = { sub->qos, sub->no_local, sub->retain_as_published,
                                         sub->retain_handling, sub_id };
              gboolean existed = FALSE;

              if (!mqtt_broker_subscribe (transport->broker, conn->session, sub->filter,
                                          &options, &existed, &error))
                {
                  if (g_error_matches (error, MQTT_SUBS_ERROR,
                                       MQTT_SUBS_ERROR_SHARED_NO_LOCAL))
                    {
                      /* MQTT-3.8.3-4 */
                      mqtt_conn_fail (conn, MQTT_RC_PROTOCOL_ERROR,
                                      "no-local on a shared subscription");
                      g_ptr_array_set_size (job->retained, 0);
                      subscribe_job_finish (job);
                      return;
                    }
                  reason = MQTT_RC_UNSPECIFIED_ERROR;
                  why = error->message;
                }
              else
                {
                  changed = TRUE;
                  /* Retained messages: not for shared subscriptions; retain
                   * handling 0 always, 1 for a new subscription, 2 never. */
                  if (parsed.share_name == NULL
                      && (sub->retain_handling == 0
                          || (sub->retain_handling == 1 && !existed)))
                    queue_retained (conn, &parsed, sub->qos, sub_id, job->retained);
                }
            }
        }
      if (reason >= 0x80)
        {
          sluice_counter_add (transport->refused, 1);
          sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT
                       " (client '%s'): SUBSCRIBE to '%s' refused: %s",
                       mqtt_conn_get_id (conn), conn->client_id, sub->filter, why);
          /* 3.1.1 has one failure code. */
          if (conn->version != MQTT_VERSION_5)
            reason = 0x80;
          if (reason_string == NULL)
            reason_string = why;
        }
      g_byte_array_append (job->suback->suback.reasons, &reason, 1);
    }
  if (conn->version == MQTT_VERSION_5 && reason_string != NULL)
    mqtt_props_set_string (&job->suback->props, MQTT_PROP_REASON_STRING, reason_string);
  if (changed && mqtt_session_is_persistent (conn->session))
    {
      /* The SUBACK promises the subscription: store it first. */
      mqtt_persist_save_session (transport, conn->session, conn->session_expiry,
                                 subscribe_saved, job);
      return;
    }
  subscribe_job_finish (job);
}

void
mqtt_pubsub_handle_unsubscribe (MqttConn *conn, const MqttPacket *packet)
{
  g_autoptr (MqttPacket) unsuback = mqtt_packet_new (MQTT_UNSUBACK);
  gboolean changed = FALSE;

  unsuback->packet_id = packet->packet_id;
  for (guint i = 0; i < packet->unsubscribe.filters->len; i++)
    {
      const char *filter = packet->unsubscribe.filters->pdata[i];
      guint8 reason;

      if (mqtt_broker_unsubscribe (conn->transport->broker, conn->session, filter))
        {
          reason = MQTT_RC_SUCCESS;
          changed = TRUE;
        }
      else
        reason = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
      if (conn->version == MQTT_VERSION_5)
        g_byte_array_append (unsuback->unsuback.reasons, &reason, 1);
    }
  if (changed && mqtt_session_is_persistent (conn->session))
    mqtt_persist_save_session (conn->transport, conn->session, conn->session_expiry, NULL,
                               NULL);
  mqtt_conn_send_packet (conn, unsuback);
}
