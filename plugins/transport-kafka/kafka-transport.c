/* transport-kafka — the plugin: options, metrics and the vtable. The core
 * owns the listeners (plain and TLS) and the I/O; each connection is the
 * request pipeline of kafka-connection.c on the codec of kafka-protocol.h.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"
#include "kafka-sasl.h"

#include <string.h>

static const SluiceOption kafka_options[] = {
  { "max-request", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (KafkaOptions, max_request), "100MiB",
    "largest request accepted (Kafka's socket.request.max.bytes); a larger one closes "
    "the connection", 1024, 1LL << 30, NULL, { NULL, NULL } },
  { "advertised", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (KafkaOptions, advertised), NULL,
    "host:port clients are told to connect to (Metadata, FindCoordinator), for every "
    "listener of this transport; default: the address each client connected to (so plain "
    "and TLS listeners each name themselves)", 0, 0, NULL, { NULL, NULL } },
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
wipe_free (gpointer data)
{
  char *secret = data;

  if (secret != NULL)
    memset (secret, 0, strlen (secret));
  g_free (secret);
}

static void
kafka_transport_free (KafkaTransport *transport)
{
  g_free (transport->instance_name);
  g_free (transport->cluster_id);
  wipe_free (transport->anonymous_key);
  g_clear_pointer (&transport->policy_keys, g_hash_table_unref);
  g_clear_pointer (&transport->scram_secrets, g_hash_table_unref);
  if (transport->groups != NULL)
    kafka_groups_teardown (transport);
  g_clear_pointer (&transport->producers, kafka_producers_free);
  /* Produce requests still waiting (start never finished): their
   * connections are gone with the workers by now. */
  g_clear_pointer (&transport->deferred, g_ptr_array_unref);
  g_mutex_clear (&transport->deferred_lock);
  g_clear_pointer (&transport->internal_principal, sluice_principal_unref);
  g_mutex_clear (&transport->keys_lock);
  g_free (transport);
}

/* Every [policy.NAME]'s primary key: SCRAM users are policies, and their
 * verifiers are derived from the key (WIRE.md). */
static GHashTable *
load_policy_keys (SluiceConfig *config, GError **error)
{
  g_auto (GStrv) sections = sluice_config_list_sections (config, "policy.");
  g_autoptr (GHashTable) keys_by_policy = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                                 g_free, wipe_free);

  for (guint i = 0; sections != NULL && sections[i] != NULL; i++)
    {
      PolicyKeys keys = { 0 };

      if (!sluice_config_parse_section (config, sections[i], policy_keys, NULL, &keys, error))
        {
          sluice_options_clear (policy_keys, &keys);
          return NULL;
        }
      if (keys.primary_key != NULL)
        g_hash_table_insert (keys_by_policy,
                             g_strdup (sections[i] + strlen ("policy.")),
                             g_strdup (keys.primary_key));
      if (keys.primary_key != NULL)
        memset (keys.primary_key, 0, strlen (keys.primary_key));
      if (keys.secondary_key != NULL)
        memset (keys.secondary_key, 0, strlen (keys.secondary_key));
      sluice_options_clear (policy_keys, &keys);
    }
  return g_steal_pointer (&keys_by_policy);
}

/* The anonymous policy's key in `keys`, or NULL with `error`. */
static char *
anonymous_key_from (const KafkaOptions *opts, GHashTable *keys, GError **error)
{
  const char *key = g_hash_table_lookup (keys, opts->anonymous_policy);

  if (key == NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "anonymous-policy: no [policy.%s] with a primary-key (value '%s')",
                   opts->anonymous_policy, opts->anonymous_policy);
      return NULL;
    }
  return g_strdup (key);
}

char *
kafka_transport_policy_key (KafkaTransport *transport, const char *policy)
{
  char *key;

  g_mutex_lock (&transport->keys_lock);
  key = transport->policy_keys != NULL
        ? g_strdup (g_hash_table_lookup (transport->policy_keys, policy)) : NULL;
  g_mutex_unlock (&transport->keys_lock);
  return key;
}

char *
kafka_transport_anonymous_key (KafkaTransport *transport)
{
  char *key;

  g_mutex_lock (&transport->keys_lock);
  key = g_strdup (transport->anonymous_key);
  g_mutex_unlock (&transport->keys_lock);
  return key;
}

KafkaScramSecret *
kafka_transport_scram_secret (KafkaTransport *transport, const char *id)
{
  const KafkaScramSecret *secret;
  KafkaScramSecret *copy = NULL;

  g_mutex_lock (&transport->keys_lock);
  secret = transport->scram_secrets != NULL
           ? g_hash_table_lookup (transport->scram_secrets, id) : NULL;
  if (secret != NULL)
    copy = g_memdup2 (secret, sizeof *secret);
  g_mutex_unlock (&transport->keys_lock);
  return copy;
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
  g_mutex_init (&transport->deferred_lock);
  g_mutex_init (&transport->keys_lock);
  transport->host = host;
  transport->instance_name = g_strdup (name);
  transport->options = opts;
  /* Kafka clients only compare it; one per hub name. */
  transport->cluster_id = g_strdup_printf ("sluice-%s", sluice_host_get_hostname (host));

  transport->policy_keys = load_policy_keys (config->config, error);
  if (transport->policy_keys == NULL
      || (opts->anonymous_policy != NULL
          && (transport->anonymous_key = anonymous_key_from (opts, transport->policy_keys,
                                                             error)) == NULL))
    {
      kafka_transport_free (transport);
      return NULL;
    }

  kafka_groups_setup (transport);
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

static void
scram_stored (const GError *error, gpointer user_data)
{
  g_autofree char *key = user_data;

  if (error != NULL)
    g_warning ("storing the SCRAM verifier %s: %s", key, error->message);
}

/* The verifiers of every policy in `keys`: the stored one while its key is
 * unchanged, else a fresh one (new salt), stored. (transfer full) */
static GHashTable *
scram_derive (KafkaTransport *transport, GHashTable *keys)
{
  static const KafkaScramMechanism mechs[] = { KAFKA_SCRAM_SHA_256, KAFKA_SCRAM_SHA_512 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) stored = sluice_host_kv_scan_sync (transport->host,
                                                           transport->instance_name,
                                                           "scram/", &error);
  g_autoptr (GHashTable) found = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                        (GDestroyNotify) kafka_scram_secret_free);
  GHashTableIter it;
  gpointer name, key;
  GHashTable *secrets;

  if (stored == NULL)
    sluice_warning (transport->instance_name, "reading the stored SCRAM verifiers: %s",
                    error->message);
  for (guint i = 0; stored != NULL && i < stored->len; i++)
    {
      SluiceKvPair *pair = stored->pdata[i];
      KafkaScramSecret *secret = kafka_scram_secret_from_bytes (pair->value, NULL);

      if (secret != NULL && g_str_has_prefix (pair->key, "scram/"))
        g_hash_table_insert (found, g_strdup (pair->key + strlen ("scram/")), secret);
      else if (secret != NULL)
        kafka_scram_secret_free (secret);
    }

  secrets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify) kafka_scram_secret_free);
  g_hash_table_iter_init (&it, keys);
  while (g_hash_table_iter_next (&it, &name, &key))
    for (guint m = 0; m < G_N_ELEMENTS (mechs); m++)
      {
        char *id = g_strdup_printf ("%s/%s", kafka_scram_mechanism_name (mechs[m]),
                                    (const char *) name);
        KafkaScramSecret *secret = g_hash_table_lookup (found, id);

        if (secret != NULL && kafka_scram_secret_matches (secret, key))
          {
            gpointer found_key = NULL;

            g_hash_table_steal_extended (found, id, &found_key, NULL);
            g_free (found_key);
          }
        else
          {
            /* New policy or rotated key: a fresh salt, stored. */
            g_autoptr (GBytes) bytes = NULL;
            SluiceKvOp op = { 0 };
            g_autofree char *kv_key = g_strdup_printf ("scram/%s", id);

            secret = kafka_scram_secret_new (mechs[m], key, KAFKA_SCRAM_MIN_ITERATIONS);
            bytes = kafka_scram_secret_to_bytes (secret);
            op.type = SLUICE_KV_PUT;
            op.key = kv_key;
            op.value = bytes;
            sluice_host_kv_commit (transport->host, transport->instance_name, &op, 1,
                                   scram_stored, g_strdup (kv_key));
          }
        g_hash_table_insert (secrets, id, secret);
      }
  return secrets;
}

void
kafka_scram_load (KafkaTransport *transport)
{
  GHashTable *secrets = scram_derive (transport, transport->policy_keys);

  g_mutex_lock (&transport->keys_lock);
  g_clear_pointer (&transport->scram_secrets, g_hash_table_unref);
  transport->scram_secrets = secrets;
  g_mutex_unlock (&transport->keys_lock);
}

/* SIGHUP: the policies' keys again, and their SCRAM verifiers (a rotated key
 * gets a fresh verifier; the old key stops working for SCRAM at once, as it
 * does for PLAIN through the auth chain). */
static gboolean
kafka_reload (gpointer self, SluiceConfig *config, GError **error)
{
  KafkaTransport *transport = self;
  g_autoptr (GHashTable) keys = load_policy_keys (config, error);
  g_autofree char *anonymous = NULL;
  GHashTable *secrets;

  if (keys == NULL)
    return FALSE;
  if (transport->options->anonymous_policy != NULL
      && (anonymous = anonymous_key_from (transport->options, keys, error)) == NULL)
    return FALSE;
  secrets = scram_derive (transport, keys);
  g_mutex_lock (&transport->keys_lock);
  g_clear_pointer (&transport->scram_secrets, g_hash_table_unref);
  transport->scram_secrets = secrets;
  g_clear_pointer (&transport->policy_keys, g_hash_table_unref);
  transport->policy_keys = g_steal_pointer (&keys);
  wipe_free (transport->anonymous_key);
  transport->anonymous_key = g_steal_pointer (&anonymous);
  g_mutex_unlock (&transport->keys_lock);
  sluice_info (transport->instance_name, "reloaded the keys of %u policies for SASL",
               g_hash_table_size (transport->policy_keys));
  return TRUE;
}

static gboolean
kafka_start (gpointer self, GError **error)
{
  KafkaTransport *transport = self;

  kafka_scram_load (transport);
  /* Reads its own bookkeeping (the log tail after the producer snapshot);
   * never handed to a client. */
  transport->internal_principal = sluice_principal_new (SLUICE_PRINCIPAL_ANONYMOUS, "",
                                                        SLUICE_RIGHT_LISTEN, NULL, 0,
                                                        "internal");
  kafka_producers_setup (transport);
  return TRUE;
}

static void
kafka_stop (gpointer self)
{
  /* The core drains the connections; appends in flight still complete.
   * The producer state is written once more. */
  kafka_producers_stop (self);
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
  .reload = kafka_reload,
};

SLUICE_PLUGIN_DEFINE (transport, kafka, "0.1.0",
                      "the Kafka wire protocol: topics are streams, record batches pass through",
                      "Apache-2.0", &kafka_vtable, kafka_options, sizeof (KafkaOptions), NULL)
