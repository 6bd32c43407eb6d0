/* transport-mqtt — the plugin: options, metrics and the vtable. The core
 * owns the listeners (plain and TLS) and the I/O; each connection is the
 * state machine of mqtt-connection.c on the codec of mqtt-codec.h.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-transport.h"

static const SluiceOption mqtt_options[] = {
  { "max-packet", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (MqttOptions, max_packet), "256KiB",
    "largest MQTT packet accepted; a larger one closes the connection (v5: 0x95)",
    64, MQTT_MAX_PACKET_SIZE, NULL, { NULL, NULL } },
  { "keepalive-max", SLUICE_OPTION_INT, G_STRUCT_OFFSET (MqttOptions, keepalive_max), "1200",
    "longest keepalive in seconds; also enforced on clients that ask for none",
    1, 65535, NULL, { NULL, NULL } },
  SLUICE_OPTION_END
};

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
  MqttTransport *transport = g_new0 (MqttTransport, 1);
  const char *name = config->instance_name;
  g_autofree char *gauge = g_strdup_printf ("sluice_mqtt_connections{transport=\"%s\"}", name);

  transport->host = host;
  transport->instance_name = g_strdup (name);
  transport->options = options;
  transport->connections = sluice_host_gauge (host, gauge, "Open MQTT connections");
  transport->connects_refused = transport_counter (host, name,
                                                   "sluice_mqtt_connects_refused_total", NULL,
                                                   "MQTT CONNECTs refused");
  transport->messages_in[0] = transport_counter (host, name, "sluice_mqtt_messages_in_total",
                                                 "qos=\"0\"", "MQTT PUBLISHes taken");
  transport->messages_in[1] = transport_counter (host, name, "sluice_mqtt_messages_in_total",
                                                 "qos=\"1\"", "MQTT PUBLISHes taken");
  transport->refused = transport_counter (host, name, "sluice_mqtt_refused_total", NULL,
                                          "MQTT PUBLISHes and subscriptions refused");
  transport->malformed = transport_counter (host, name, "sluice_mqtt_malformed_total", NULL,
                                            "MQTT connections closed for malformed input");
  return transport;
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
  return TRUE;
}

static void
mqtt_stop (gpointer self)
{
  /* The core drains the connections; in-flight appends still complete. */
}

static void
mqtt_destroy (gpointer self)
{
  MqttTransport *transport = self;

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
  .connection_drained = NULL,
  .connection_closed = mqtt_connection_closed,
};

SLUICE_PLUGIN_DEFINE (transport, mqtt, "0.1.0", "MQTT 3.1.1 and 5.0 with IoT Hub device topics",
                      "Apache-2.0", &mqtt_vtable, mqtt_options, sizeof (MqttOptions), NULL)
