/* transport-mqtt — the plugin: options, metrics and the vtable. The core
 * owns the listeners (plain and TLS) and the I/O; each connection is the
 * state machine of mqtt-connection.c on the codec of mqtt-codec.h.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-conn-private.h"
#include "mqtt-acl.h"
#include "mqtt-map.h"

static const SluiceOption mqtt_options[] = {
  { "max-packet", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (MqttOptions, max_packet), "256KiB",
    "largest MQTT packet accepted; a larger one closes the connection (v5: 0x95)",
    64, MQTT_MAX_PACKET_SIZE, NULL, { NULL, NULL } },
  { "keepalive-max", SLUICE_OPTION_INT, G_STRUCT_OFFSET (MqttOptions, keepalive_max), "1200",
    "longest keepalive in seconds; also enforced on clients that ask for none",
    1, 65535, NULL, { NULL, NULL } },
  { "max-queued-messages", SLUICE_OPTION_INT, G_STRUCT_OFFSET (MqttOptions, max_queued),
    "1000", "messages queued to one session before the publishers feeding it stop being "
    "read (back-pressure; nothing is dropped)", 2, 10000000, NULL, { NULL, NULL } },
  { "receive-maximum", SLUICE_OPTION_INT, G_STRUCT_OFFSET (MqttOptions, receive_maximum),
    "100", "QoS 1 / 2 PUBLISHes a client may have unacknowledged (v5 Receive Maximum)",
    1, 65535, NULL, { NULL, NULL } },
  { "topic-alias-maximum", SLUICE_OPTION_INT,
    G_STRUCT_OFFSET (MqttOptions, topic_alias_maximum), "64",
    "topic aliases a v5 client may set", 0, 65535, NULL, { NULL, NULL } },
  { "max-session-expiry", SLUICE_OPTION_INT, G_STRUCT_OFFSET (MqttOptions, max_session_expiry),
    "4294967295", "longest session expiry in seconds (4294967295: never); also the expiry "
    "of MQTT 3.1.1 persistent sessions", 0, G_MAXUINT32, NULL, { NULL, NULL } },
  { "max-topic-levels", SLUICE_OPTION_INT, G_STRUCT_OFFSET (MqttOptions, max_topic_levels),
    "64", "levels of a topic name or filter (0: no limit)", 0, 65535, NULL, { NULL, NULL } },
  SLUICE_OPTION_END
};

static const char *const mqtt_owned_sections[] = { "mqtt-map.", "mqtt-acl.", NULL };

static SluiceCounter *
transport_counter (SluiceHost *host, const char *instance, const char *name,
                   const char *labels, const char *help)
{
  g_autofree char *full = g_strdup_printf ("%s{transport=\"%s\"%s%s}", name, instance,
                                           labels != NULL ? "," : "",
                                           labels != NULL ? labels : "");
  return sluice_host_counter (host, full, help);
}

static gpointer
mqtt_create (SluiceHost *host, const SluiceTransportConfig *config, const void *options,
             GError **error)
{
  g_autofree MqttTransport *transport = g_new0 (MqttTransport, 1);
  const char *name = config->instance_name;
  g_autofree char *gauge = g_strdup_printf ("sluice_mqtt_connections{transport=\"%s\"}", name);
  g_autofree char *sessions = g_strdup_printf ("sluice_mqtt_sessions{transport=\"%s\"}", name);
  g_autofree char *retained = g_strdup_printf ("sluice_mqtt_retained_messages{transport=\"%s\"}",
                                               name);
  g_autofree char *map_name = g_strdup_printf ("mqtt-map:%s", name);
  static const char *const qos_labels[] = { "qos=\"0\"", "qos=\"1\"", "qos=\"2\"" };

  transport->host = host;
  transport->options = options;
  if (config->config != NULL)
    {
      transport->map = mqtt_map_load (config->config, error);
      if (transport->map == NULL)
        return NULL;
      transport->acl = mqtt_acl_load (config->config, error);
      if (transport->acl == NULL)
        {
          mqtt_map_free (transport->map);
          return NULL;
        }
    }
  transport->instance_name = g_strdup (name);
  transport->connections = sluice_host_gauge (host, gauge, "Open MQTT connections");
  transport->sessions = sluice_host_gauge (host, sessions,
                                           "MQTT sessions (connected and persistent)");
  transport->retained = sluice_host_gauge (host, retained, "MQTT retained messages");
  transport->connects_refused = transport_counter (host, name,
                                                   "sluice_mqtt_connects_refused_total", NULL,
                                                   "MQTT CONNECTs refused");
  for (guint q = 0; q < 3; q++)
    {
      transport->messages_in[q] = transport_counter (host, name,
                                                     "sluice_mqtt_messages_in_total",
                                                     qos_labels[q], "MQTT PUBLISHes taken");
      transport->messages_out[q] = transport_counter (host, name,
                                                      "sluice_mqtt_messages_out_total",
                                                      qos_labels[q],
                                                      "MQTT PUBLISHes sent to subscribers");
    }
  transport->bytes_in = transport_counter (host, name, "sluice_mqtt_bytes_in_total", NULL,
                                           "MQTT packet bytes received");
  transport->bytes_out = transport_counter (host, name, "sluice_mqtt_bytes_out_total", NULL,
                                            "MQTT PUBLISH bytes sent to subscribers");
  transport->refused = transport_counter (host, name, "sluice_mqtt_refused_total", NULL,
                                          "MQTT PUBLISHes and subscriptions refused");
  transport->malformed = transport_counter (host, name, "sluice_mqtt_malformed_total", NULL,
                                            "MQTT connections closed for malformed input");
  transport->dropped_qos0_offline = transport_counter (host, name, "sluice_mqtt_dropped_total",
                                                       "reason=\"qos0-offline\"",
                                                       "MQTT messages not delivered, by reason");
  transport->dropped_qos0_congested = transport_counter (host, name,
                                                         "sluice_mqtt_dropped_total",
                                                         "reason=\"qos0-congested\"",
                                                         "MQTT messages not delivered, by reason");
  transport->dropped_expired = transport_counter (host, name, "sluice_mqtt_dropped_total",
                                                  "reason=\"expired\"",
                                                  "MQTT messages not delivered, by reason");
  transport->dropped_session_expired = transport_counter (host, name,
                                                          "sluice_mqtt_dropped_total",
                                                          "reason=\"session-expired\"",
                                                          "MQTT messages not delivered, by "
                                                          "reason");
  transport->dropped_too_large = transport_counter (host, name, "sluice_mqtt_dropped_total",
                                                    "reason=\"too-large-for-client\"",
                                                    "MQTT messages not delivered, by reason");
  transport->bridged_out = transport_counter (host, name, "sluice_mqtt_bridged_out_total", NULL,
                                              "stream records published to MQTT "
                                              "subscribers ([mqtt-map.*] out)");
  transport->backpressure = transport_counter (host, name, "sluice_mqtt_backpressure_total",
                                               NULL, "times a publisher stopped being read "
                                               "because a subscriber's session was full");
  transport->map_principal = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, map_name,
                                                   SLUICE_RIGHT_SEND, NULL, 0, "mqtt-map");
  transport->broker = mqtt_transport_broker_new (transport);
  return g_steal_pointer (&transport);
}

static gboolean
expiry_tick (gpointer data)
{
  MqttTransport *transport = data;
  g_autoptr (GPtrArray) ended = mqtt_broker_expire_sessions (transport->broker);

  for (guint i = 0; i < ended->len; i++)
    {
      MqttEndedSession *e = ended->pdata[i];

      sluice_info (transport->instance_name, "session '%s' expired", e->client_id);
      mqtt_persist_delete_session (transport, e->client_id, e->epoch);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
mqtt_start (gpointer self, GError **error)
{
  MqttTransport *transport = self;
  SluiceStreamInfo info;
  g_autoptr (GError) local_error = NULL;

  /* Streams may be created at run time; until then telemetry is refused
   * per PUBLISH. */
  if (!sluice_host_stream_info (transport->host, "events", &info, &local_error))
    sluice_warning (transport->instance_name, "stream 'events' (device telemetry): %s",
                    local_error->message);
  if (!mqtt_persist_restore (transport, error))
    {
      g_prefix_error (error, "[transport.%s]: restoring MQTT sessions: ",
                      transport->instance_name);
      return FALSE;
    }
  transport->bridge = mqtt_bridge_start (transport);
  transport->expiry_source = g_timeout_source_new_seconds (1);
  g_source_set_callback (transport->expiry_source, expiry_tick, transport, NULL);
  g_source_attach (transport->expiry_source, NULL);
  return TRUE;
}

static void
mqtt_stop (gpointer self)
{
  MqttTransport *transport = self;

  /* The core drains the connections; in-flight appends still complete. */
  mqtt_bridge_stop (transport->bridge);
  if (transport->expiry_source != NULL)
    {
      g_source_destroy (transport->expiry_source);
      g_clear_pointer (&transport->expiry_source, g_source_unref);
    }
}

static void
mqtt_destroy (gpointer self)
{
  MqttTransport *transport = self;

  mqtt_stop (transport);
  g_clear_pointer (&transport->bridge, mqtt_bridge_free);
  mqtt_broker_free (transport->broker);
  mqtt_map_free (transport->map);
  mqtt_acl_free (transport->acl);
  sluice_principal_unref (transport->map_principal);
  g_free (transport->instance_name);
  g_free (transport);
}

static gpointer
mqtt_connection_open (gpointer self, SluiceConnection *connection)
{
  return mqtt_conn_open (self, connection);
}

static gsize
mqtt_connection_input (gpointer conn_state, SluiceConnection *connection,
                       const guint8 *data, gsize len)
{
  return mqtt_conn_input (conn_state, data, len);
}

static void
mqtt_connection_drained (gpointer conn_state, SluiceConnection *connection)
{
  mqtt_conn_drained (conn_state);
}

static void
mqtt_connection_closed (gpointer conn_state, SluiceConnection *connection)
{
  mqtt_conn_closed (conn_state);
}

static const SluiceTransportVTable mqtt_vtable = {
  .flags = 0,
  .create = mqtt_create,
  .start = mqtt_start,
  .stop = mqtt_stop,
  .destroy = mqtt_destroy,
  .connection_open = mqtt_connection_open,
  .connection_input = mqtt_connection_input,
  .connection_drained = mqtt_connection_drained,
  .connection_closed = mqtt_connection_closed,
};

SLUICE_PLUGIN_DEFINE (transport, mqtt, "0.1.0", "MQTT 3.1.1 and 5.0 with IoT Hub device topics",
                      "Apache-2.0", &mqtt_vtable, mqtt_options, sizeof (MqttOptions),
                      mqtt_owned_sections)
