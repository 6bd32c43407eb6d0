/* transport-kafka — topic administration: CreateTopics (a stream with its
 * partitions, retention and max message size from the topic configs),
 * DeleteTopics, and DescribeConfigs of topics (a stream's settings under
 * Kafka's config names) and of this broker.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"

#include <string.h>

#define RESOURCE_TOPIC 2
#define RESOURCE_BROKER 4
#define SOURCE_TOPIC_CONFIG 1
#define SOURCE_STATIC_BROKER 4
#define SOURCE_DEFAULT 5

typedef struct {
  KafkaConn *conn;
  KafkaPending *pending;
  KafkaRequest *request;
  KafkaResponse *response;
  guint outstanding;
} AdminOp;

typedef struct {
  AdminOp *op;
  KafkaTopicResult *result;
} AdminTopic;

static AdminOp *
admin_op_new (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  AdminOp *op = g_new0 (AdminOp, 1);

  op->conn = kafka_conn_ref (conn);
  op->pending = pending;
  op->request = request;
  op->response = kafka_response_new (request->header.api_key, request->header.api_version,
                                     request->header.correlation_id);
  op->outstanding = 1;
  return op;
}

static void
admin_op_release (AdminOp *op)
{
  if (--op->outstanding > 0)
    return;
  kafka_pending_complete (op->pending, g_steal_pointer (&op->response));
  kafka_request_free (op->request);
  kafka_conn_unref (op->conn);
  g_free (op);
}

static gint16
admin_error (const GError *error, gboolean create)
{
  if (g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_INVALID))
    return create ? KAFKA_ERR_INVALID_TOPIC_EXCEPTION : KAFKA_ERR_POLICY_VIOLATION;
  return kafka_error_from_sluice (error);
}

static void
admin_topic_done (const GError *error, gpointer user_data)
{
  AdminTopic *at = user_data;
  AdminOp *op = at->op;

  if (error != NULL)
    {
      at->result->error_code = admin_error (error,
                                            op->request->header.api_key
                                              == KAFKA_API_CREATE_TOPICS);
      at->result->error_message = kafka_response_strdup (op->response, error->message);
    }
  g_free (at);
  admin_op_release (op);
}

/* --- CreateTopics --- */

/* Kafka topic configs that map onto a stream's settings; FALSE (with a
 * message) for any other, or a bad value. */
static gboolean
apply_topic_config (const KafkaConfigEntry *config, SluiceStreamInfo *info, const char **why)
{
  gint64 n;
  char *end = NULL;

  if (config->value == NULL)
    return TRUE;
  if (strcmp (config->name, "cleanup.policy") == 0)
    {
      if (strcmp (config->value, "delete") != 0)
        {
          *why = "cleanup.policy: only 'delete' (streams are not compacted)";
          return FALSE;
        }
      return TRUE;
    }
  n = g_ascii_strtoll (config->value, &end, 10);
  if (end == config->value || *end != '\0')
    {
      *why = "a config value that is not a number";
      return FALSE;
    }
  if (strcmp (config->name, "retention.ms") == 0)
    info->retention_time_ms = n < 0 ? 0 : n;
  else if (strcmp (config->name, "retention.bytes") == 0)
    info->retention_size = n < 0 ? 0 : (guint64) n;
  else if (strcmp (config->name, "max.message.bytes") == 0 && n > 0)
    info->max_message = (guint64) n;
  else if (strcmp (config->name, "min.insync.replicas") == 0 && n == 1)
    return TRUE;
  else
    {
      *why = "a topic config this broker does not support";
      return FALSE;
    }
  return TRUE;
}

void
kafka_handle_create_topics (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaCreateTopicsRequest *req = &request->create_topics;
  AdminOp *op = admin_op_new (conn, pending, request);
  KafkaTopicsResponse *m = &op->response->create_topics;

  m->n_topics = req->n_topics;
  m->topics = kafka_response_new0 (op->response, KafkaTopicResult, req->n_topics);
  for (guint i = 0; i < req->n_topics; i++)
    {
      const KafkaCreatableTopic *topic = &req->topics[i];
      KafkaTopicResult *result = &m->topics[i];
      SluiceStreamInfo info = { 0 };
      const char *why = NULL;
      AdminTopic *at;

      result->name = topic->name;
      info.partitions = topic->num_partitions == -1 ? (gint32) t->options->default_partitions
                                                   : topic->num_partitions;
      if (!sluice_stream_name_is_valid (topic->name))
        {
          result->error_code = KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
          why = "not a valid stream name";
        }
      else if (info.partitions <= 0 || topic->n_assignments > 0)
        {
          result->error_code = KAFKA_ERR_INVALID_PARTITIONS;
          why = "partitions must be a positive count (no manual assignments)";
        }
      else if (topic->replication_factor != -1 && topic->replication_factor != 1)
        {
          result->error_code = KAFKA_ERR_INVALID_REPLICATION_FACTOR;
          why = "this broker is the only replica: replication factor 1";
        }
      for (guint j = 0; result->error_code == KAFKA_ERR_NONE && j < topic->n_configs; j++)
        if (!apply_topic_config (&topic->configs[j], &info, &why))
          result->error_code = KAFKA_ERR_INVALID_CONFIG;
      if (result->error_code == KAFKA_ERR_NONE && req->validate_only)
        {
          SluiceStreamInfo existing;

          if (sluice_host_stream_info (t->host, topic->name, &existing, NULL))
            {
              result->error_code = KAFKA_ERR_TOPIC_ALREADY_EXISTS;
              why = "the stream exists";
            }
          else if (!sluice_host_authorize (t->host, kafka_conn_get_principal (conn),
                                           SLUICE_ACTION_MANAGE, topic->name, NULL))
            result->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
        }
      if (result->error_code != KAFKA_ERR_NONE || req->validate_only)
        {
          result->error_message = why;
          continue;
        }
      at = g_new0 (AdminTopic, 1);
      at->op = op;
      at->result = result;
      op->outstanding++;
      sluice_host_stream_create (t->host, kafka_conn_get_principal (conn), topic->name, &info,
                                 admin_topic_done, at);
    }
  admin_op_release (op);
}

/* --- DeleteTopics --- */

void
kafka_handle_delete_topics (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaDeleteTopicsRequest *req = &request->delete_topics;
  AdminOp *op = admin_op_new (conn, pending, request);
  KafkaTopicsResponse *m = &op->response->delete_topics;

  m->n_topics = req->n_topics;
  m->topics = kafka_response_new0 (op->response, KafkaTopicResult, req->n_topics);
  for (guint i = 0; i < req->n_topics; i++)
    {
      AdminTopic *at = g_new0 (AdminTopic, 1);

      m->topics[i].name = req->topics[i];
      at->op = op;
      at->result = &m->topics[i];
      op->outstanding++;
      if (g_atomic_int_get (&t->producers_ready))
        kafka_producers_forget_stream (t->producers, req->topics[i]);
      sluice_host_stream_delete (t->host, kafka_conn_get_principal (conn), req->topics[i],
                                 admin_topic_done, at);
    }
  admin_op_release (op);
}

/* --- DescribeConfigs --- */

static void
add_config (KafkaResponse *resp, GArray *configs, const KafkaDescribeConfigsResource *res,
            const char *name, char *value, gint8 source)
{
  KafkaConfigResult c = { 0 };
  gboolean wanted = res->all_keys;

  for (guint i = 0; !wanted && i < res->n_keys; i++)
    wanted = strcmp (res->keys[i], name) == 0;
  if (!wanted)
    {
      g_free (value);
      return;
    }
  c.name = name;
  c.value = kafka_response_strdup (resp, value);
  g_free (value);
  /* Changed through the file or CreateTopics, not through AlterConfigs. */
  c.read_only = TRUE;
  c.is_default = source == SOURCE_DEFAULT;
  c.config_source = source;
  g_array_append_val (configs, c);
}

void
kafka_handle_describe_configs (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  KafkaTransport *t = kafka_conn_get_transport (conn);
  const KafkaDescribeConfigsRequest *req = &request->describe_configs;
  KafkaResponse *response = kafka_response_new (KAFKA_API_DESCRIBE_CONFIGS,
                                                request->header.api_version,
                                                request->header.correlation_id);
  KafkaDescribeConfigsResponse *m = &response->describe_configs;
  static const char *const durability[] = { "none", "interval", "batch" };

  m->n_results = req->n_resources;
  m->results = kafka_response_new0 (response, KafkaDescribeConfigsResult, req->n_resources);
  for (guint i = 0; i < req->n_resources; i++)
    {
      const KafkaDescribeConfigsResource *res = &req->resources[i];
      KafkaDescribeConfigsResult *r = &m->results[i];
      g_autoptr (GArray) configs = g_array_new (FALSE, TRUE, sizeof (KafkaConfigResult));
      SluiceStreamInfo info;
      g_autoptr (GError) error = NULL;
      SluicePrincipal *p = kafka_conn_get_principal (conn);

      r->resource_type = res->resource_type;
      r->resource_name = res->resource_name;
      if (res->resource_type == RESOURCE_BROKER)
        {
          add_config (response, configs, res, "broker.id",
                      g_strdup_printf ("%" G_GINT64_FORMAT, t->options->node_id),
                      SOURCE_STATIC_BROKER);
          add_config (response, configs, res, "num.partitions",
                      g_strdup_printf ("%" G_GINT64_FORMAT, t->options->default_partitions),
                      SOURCE_STATIC_BROKER);
          add_config (response, configs, res, "auto.create.topics.enable",
                      g_strdup (t->options->auto_create_topics ? "true" : "false"),
                      SOURCE_STATIC_BROKER);
          add_config (response, configs, res, "socket.request.max.bytes",
                      g_strdup_printf ("%" G_GUINT64_FORMAT, t->options->max_request),
                      SOURCE_STATIC_BROKER);
        }
      else if (res->resource_type != RESOURCE_TOPIC)
        {
          r->error_code = KAFKA_ERR_INVALID_REQUEST;
          r->error_message = "only topic and broker configs";
        }
      else if (!sluice_host_stream_info (t->host, res->resource_name, &info, &error))
        {
          r->error_code = kafka_error_from_sluice (error);
          r->error_message = kafka_response_strdup (response, error->message);
        }
      else if (!sluice_host_authorize (t->host, p, SLUICE_ACTION_LISTEN, res->resource_name, NULL)
               && !sluice_host_authorize (t->host, p, SLUICE_ACTION_SEND, res->resource_name,
                                          NULL)
               && !sluice_host_authorize (t->host, p, SLUICE_ACTION_MANAGE, res->resource_name,
                                          NULL))
        r->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
      else
        {
          add_config (response, configs, res, "retention.ms",
                      g_strdup_printf ("%" G_GINT64_FORMAT,
                                       info.retention_time_ms > 0 ? info.retention_time_ms : -1),
                      SOURCE_TOPIC_CONFIG);
          add_config (response, configs, res, "retention.bytes",
                      g_strdup_printf ("%" G_GINT64_FORMAT,
                                       info.retention_size > 0 ? (gint64) info.retention_size
                                                               : -1),
                      SOURCE_TOPIC_CONFIG);
          add_config (response, configs, res, "max.message.bytes",
                      g_strdup_printf ("%" G_GUINT64_FORMAT, info.max_message),
                      SOURCE_TOPIC_CONFIG);
          add_config (response, configs, res, "cleanup.policy", g_strdup ("delete"),
                      SOURCE_DEFAULT);
          add_config (response, configs, res, "message.timestamp.type",
                      g_strdup ("LogAppendTime"), SOURCE_DEFAULT);
          add_config (response, configs, res, "sluice.partitions",
                      g_strdup_printf ("%d", info.partitions), SOURCE_TOPIC_CONFIG);
          add_config (response, configs, res, "sluice.durability",
                      g_strdup (durability[CLAMP ((gint) info.durability, 0, 2)]),
                      SOURCE_TOPIC_CONFIG);
        }
      r->n_configs = configs->len;
      r->configs = kafka_response_new0 (response, KafkaConfigResult, MAX (configs->len, 1));
      if (configs->len > 0)
        memcpy (r->configs, configs->data, configs->len * sizeof (KafkaConfigResult));
    }
  kafka_pending_complete (pending, response);
  kafka_request_free (request);
}
