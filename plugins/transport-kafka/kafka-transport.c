/* transport-kafka — the plugin: options, metrics and the vtable. The core
 * owns the listeners (plain and TLS) and the I/O; each connection is the
 * request pipeline of kafka-connection.c on the codec of kafka-protocol.h.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"

#include <string.h>

static const SluiceOption kafka_options[] = {
  { "max-request", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (KafkaOptions, max_request), "100MiB",
    "largest request accepted (Kafka's socket.request.max.bytes); a larger one closes "
    "the connection", 1024, 1LL << 30, NULL, { NULL, NULL } },
  { "advertised", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (KafkaOptions, advertised), NULL,
    "host:port clients are told to connect to (Metadata, FindCoordinator); default: "
    "the address each client connected to", 0, 0, NULL, { NULL, NULL } },
  { "auto-create-topics", SLUICE_OPTION_BOOL,
    G_STRUCT_OFFSET (KafkaOptions, auto_create_topics), "false",
    "create a stream when Metadata asks for an unknown topic and the client allows it",
    0, 0, NULL, { NULL, NULL } },
  { "default-partitions", SLUICE_OPTION_INT,
    G_STRUCT_OFFSET (KafkaOptions, default_partitions), "1",
    "partitions of auto-created topics (Kafka's num.partitions)", 1, 10000, NULL,
    { NULL, NULL } },
  { "anonymous-policy", SLUICE_OPTION_STRING,
    G_STRUCT_OFFSET (KafkaOptions, anonymous_policy), NULL,
    "a [policy.NAME] whose rights loopback clients get without SASL (development)",
    0, 0, NULL, { NULL, NULL } },
  { "node-id", SLUICE_OPTION_INT, G_STRUCT_OFFSET (KafkaOptions, node_id), "1",
    "this broker's id in Metadata", 0, G_MAXINT32, NULL, { NULL, NULL } },
  { "max-wait", SLUICE_OPTION_DURATION, G_STRUCT_OFFSET (KafkaOptions, max_wait_cap_ms),
    "30s", "longest Fetch long-poll honoured (a client's max_wait_ms is capped to it)",
    0, 300000, NULL, { NULL, NULL } },
  SLUICE_OPTION_END
};

typedef struct {
  char *primary_key;
  char *secondary_key;
  char **rights;
  char **streams;
} PolicyKeys;

/* Only the policy's key is used (to authenticate as it through the auth
 * chain, so the principal is exactly what auth-key makes of it); the other
 * keys are listed so that the section parses. */
static const SluiceOption policy_keys[] = {
  { "primary-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PolicyKeys, primary_key), NULL,
    "", 0, 0, NULL, { NULL, NULL } },
  { "secondary-key", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (PolicyKeys, secondary_key), NULL,
    "", 0, 0, NULL, { NULL, NULL } },
  { "rights", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (PolicyKeys, rights), NULL, "", 0, 0, NULL,
    { NULL, NULL } },
  { "streams", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (PolicyKeys, streams), NULL, "", 0, 0,
    NULL, { NULL, NULL } },
  SLUICE_OPTION_END
};

static gboolean
check_host_port (const char *text, GError **error)
{
  const char *colon = strrchr (text, ':');
  guint64 port = 0;

  if (colon == NULL || colon == text
      || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "advertised: expected host:port (value '%s')", text);
      return FALSE;
    }
  return TRUE;
}

static SluiceCounter *
transport_counter (SluiceHost *host, const char *instance, const char *name, const char *help)
{
  g_autofree char *full = g_strdup_printf ("%s{transport=\"%s\"}", name, instance);
  return sluice_host_counter (host, full, help);
}

static void
kafka_transport_free (KafkaTransport *transport)
{
  g_free (transport->instance_name);
  g_free (transport->cluster_id);
  if (transport->anonymous_key != NULL)
    memset (transport->anonymous_key, 0, strlen (transport->anonymous_key));
  g_free (transport->anonymous_key);
  g_free (transport);
}

static gpointer
kafka_create (SluiceHost *host, const SluiceTransportConfig *config, const void *options,
              GError **error)
{
  const KafkaOptions *opts = options;
  KafkaTransport *transport;
  const char *name = config->instance_name;
  g_autofree char *gauge = g_strdup_printf ("sluice_kafka_connections{transport=\"%s\"}", name);

  if (opts->advertised != NULL && !check_host_port (opts->advertised, error))
    return NULL;

  transport = g_new0 (KafkaTransport, 1);
  transport->host = host;
  transport->instance_name = g_strdup (name);
  transport->options = opts;
  /* Kafka clients only compare it; one per hub name. */
  transport->cluster_id = g_strdup_printf ("sluice-%s", sluice_host_get_hostname (host));

  if (opts->anonymous_policy != NULL)
    {
      g_autofree char *section = g_strdup_printf ("policy.%s", opts->anonymous_policy);
      PolicyKeys keys = { 0 };
      g_autoptr (GError) local_error = NULL;
      g_auto (GStrv) sections = sluice_config_list_sections (config->config, "policy.");

      if (!g_strv_contains ((const char *const *) sections, section))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "anonymous-policy: no [%s] section (value '%s')", section,
                       opts->anonymous_policy);
          kafka_transport_free (transport);
          return NULL;
        }
      if (!sluice_config_parse_section (config->config, section, policy_keys, NULL, &keys,
                                        &local_error)
          || keys.primary_key == NULL)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "anonymous-policy: [%s] has no usable primary-key (value '%s')",
                       section, opts->anonymous_policy);
          sluice_options_clear (policy_keys, &keys);
          kafka_transport_free (transport);
          return NULL;
        }
      transport->anonymous_key = g_strdup (keys.primary_key);
      memset (keys.primary_key, 0, strlen (keys.primary_key));
      if (keys.secondary_key != NULL)
        memset (keys.secondary_key, 0, strlen (keys.secondary_key));
      sluice_options_clear (policy_keys, &keys);
    }

  transport->connections = sluice_host_gauge (host, gauge, "Open Kafka connections");
  transport->requests = transport_counter (host, name, "sluice_kafka_requests_total",
                                           "Kafka requests answered");
  transport->malformed = transport_counter (host, name, "sluice_kafka_malformed_total",
                                            "Kafka connections closed for malformed input");
  transport->records_in = transport_counter (host, name, "sluice_kafka_batches_in_total",
                                             "Record batches appended over Kafka");
  transport->batches_out = transport_counter (host, name, "sluice_kafka_batches_out_total",
                                              "Record batches fetched over Kafka");
  return transport;
}

static gboolean
kafka_start (gpointer self, GError **error)
{
  return TRUE;
}

static void
kafka_stop (gpointer self)
{
  /* The core drains the connections; appends in flight still complete. */
}

static void
kafka_destroy (gpointer self)
{
  kafka_transport_free (self);
}

static gpointer
kafka_connection_open (gpointer self, SluiceConnection *connection)
{
  return kafka_conn_open (self, connection);
}

static gsize
kafka_connection_input (gpointer conn_state, SluiceConnection *connection,
                        const guint8 *data, gsize len)
{
  return kafka_conn_input (conn_state, data, len);
}

static void
kafka_connection_drained (gpointer conn_state, SluiceConnection *connection)
{
  kafka_conn_drained (conn_state);
}

static void
kafka_connection_closed (gpointer conn_state, SluiceConnection *connection)
{
  kafka_conn_closed (conn_state);
}

static const SluiceTransportVTable kafka_vtable = {
  .flags = 0,
  .create = kafka_create,
  .start = kafka_start,
  .stop = kafka_stop,
  .destroy = kafka_destroy,
  .connection_open = kafka_connection_open,
  .connection_input = kafka_connection_input,
  .connection_drained = kafka_connection_drained,
  .connection_closed = kafka_connection_closed,
};

SLUICE_PLUGIN_DEFINE (transport, kafka, "0.1.0",
                      "the Kafka wire protocol: topics are streams, record batches pass through",
                      "Apache-2.0", &kafka_vtable, kafka_options, sizeof (KafkaOptions), NULL)
