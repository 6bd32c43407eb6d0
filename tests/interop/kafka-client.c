/* kafka-client: a small librdkafka client for the interop tests.
 *
 *   kafka-client produce --brokers B --topic T --count N [--prefix P]
 *   kafka-client consume --brokers B --topic T --group G [--count N]
 *
 * `produce` is an idempotent producer (enable.idempotence, acks=all) that
 * sends N keyed messages and prints every delivery report; its exit status
 * says whether all of them were delivered. `consume` is a high-level
 * KafkaConsumer in a group without auto-commit: it commits synchronously after
 * every message (or every --commit-every messages), prints every message,
 * rebalance, commit and partition end, and runs until SIGTERM / SIGINT, until
 * stdin is closed, or until it has read --count messages; it then commits what
 * it processed and leaves the group with rd_kafka_consumer_close.
 *
 * Every event is one JSON object on its own line of stdout, flushed at once,
 * so that a test driver can follow the client while it runs.
 *
 * SPDX-License-Identifier: Apache-2.0
 */

#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal (int signum)
{
  (void) signum;
  stop_requested = 1;
}

/* --- options ------------------------------------------------------------- */

static char *opt_brokers;
static char *opt_topic;
static char *opt_group;
static char *opt_prefix;
static char *opt_client_id;
static char *opt_offset_reset;
static char **opt_props;
static int opt_count;
static int opt_start;
static int opt_commit_every = 1;
static int opt_timeout_ms = 60000;
static gboolean opt_no_stdin;

static GOptionEntry common_entries[] = {
  { "brokers", 'b', 0, G_OPTION_ARG_STRING, &opt_brokers, "bootstrap.servers", "HOST:PORT" },
  { "topic", 't', 0, G_OPTION_ARG_STRING, &opt_topic, "topic (stream) name", "TOPIC" },
  { "count", 'n', 0, G_OPTION_ARG_INT, &opt_count,
    "produce: messages to send; consume: stop after this many (0: run until told)", "N" },
  { "client-id", 'c', 0, G_OPTION_ARG_STRING, &opt_client_id, "client.id", "ID" },
  { "property", 'X', 0, G_OPTION_ARG_STRING_ARRAY, &opt_props,
    "any librdkafka property (repeatable); a value of @VAR is read from the environment "
    "variable VAR so that secrets stay out of argv", "KEY=VALUE" },
  { "timeout-ms", 0, 0, G_OPTION_ARG_INT, &opt_timeout_ms,
    "produce: how long to wait for all delivery reports", "MS" },
  { "prefix", 'p', 0, G_OPTION_ARG_STRING, &opt_prefix,
    "produce: message i has key PREFIX-i and value 'PREFIX value i'", "PREFIX" },
  { "start", 's', 0, G_OPTION_ARG_INT, &opt_start, "produce: first i", "I" },
  { "group", 'g', 0, G_OPTION_ARG_STRING, &opt_group, "consume: group.id", "GROUP" },
  { "commit-every", 'k', 0, G_OPTION_ARG_INT, &opt_commit_every,
    "consume: commit synchronously after this many messages", "K" },
  { "offset-reset", 0, 0, G_OPTION_ARG_STRING, &opt_offset_reset,
    "consume: auto.offset.reset (default earliest)", "WHERE" },
  { "no-stdin", 0, 0, G_OPTION_ARG_NONE, &opt_no_stdin,
    "consume: do not stop when stdin is closed", NULL },
  { NULL }
};

/* --- JSON lines -------------------------------------------------------------- */

static void
emit (JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = json_to_string (root, FALSE);

  fputs (text, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
}

static JsonBuilder *
event_new (const char *event)
{
  JsonBuilder *builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "event");
  json_builder_add_string_value (builder, event);
  return builder;
}

static void
event_end (JsonBuilder *builder)
{
  json_builder_end_object (builder);
  emit (builder);
}

/* Keys and values are text in these tests; anything else is printed as
 * base64 with an "...-encoding" member so that the driver never guesses. */
static void
add_bytes (JsonBuilder *builder, const char *name, const void *data, size_t len)
{
  json_builder_set_member_name (builder, name);
  if (data == NULL)
    {
      json_builder_add_null_value (builder);
      return;
    }
  if (g_utf8_validate (data, len, NULL) && memchr (data, '\0', len) == NULL)
    {
      g_autofree char *text = g_strndup (data, len);
      json_builder_add_string_value (builder, text);
      return;
    }
  g_autofree char *b64 = g_base64_encode (data, len);
  g_autofree char *enc = g_strconcat (name, "-encoding", NULL);
  json_builder_add_string_value (builder, b64);
  json_builder_set_member_name (builder, enc);
  json_builder_add_string_value (builder, "base64");
}

static void
add_error (JsonBuilder *builder, rd_kafka_resp_err_t err)
{
  json_builder_set_member_name (builder, "error");
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    json_builder_add_null_value (builder);
  else
    json_builder_add_string_value (builder, rd_kafka_err2name (err));
}

static void
add_partitions (JsonBuilder *builder, const rd_kafka_topic_partition_list_t *parts,
                gboolean with_offsets)
{
  json_builder_set_member_name (builder, "partitions");
  json_builder_begin_array (builder);
  for (int i = 0; parts != NULL && i < parts->cnt; i++)
    {
      const rd_kafka_topic_partition_t *tp = &parts->elems[i];

      if (!with_offsets)
        {
          json_builder_add_int_value (builder, tp->partition);
          continue;
        }
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "topic");
      json_builder_add_string_value (builder, tp->topic);
      json_builder_set_member_name (builder, "partition");
      json_builder_add_int_value (builder, tp->partition);
      json_builder_set_member_name (builder, "offset");
      json_builder_add_int_value (builder, tp->offset);
      add_error (builder, tp->err);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
}

/* librdkafka's own errors and logs go to stderr as text; an "error" event on
 * stdout lets the driver show them beside what the client saw. */
static void
on_error (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  g_autoptr (JsonBuilder) builder = event_new ("error");

  (void) rk;
  (void) opaque;
  add_error (builder, err);
  json_builder_set_member_name (builder, "reason");
  json_builder_add_string_value (builder, reason);
  json_builder_set_member_name (builder, "fatal");
  json_builder_add_boolean_value (builder, err == RD_KAFKA_RESP_ERR__FATAL);
  event_end (builder);
}

/* --- configuration ------------------------------------------------------------ */

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: %s", key, errstr);
      return FALSE;
    }
  return TRUE;
}

static rd_kafka_conf_t *
conf_new (GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();

  if (!conf_set (conf, "bootstrap.servers", opt_brokers, error)
      || (opt_client_id != NULL && !conf_set (conf, "client.id", opt_client_id, error)))
    goto fail;
  for (char **p = opt_props; p != NULL && *p != NULL; p++)
    {
      g_auto (GStrv) kv = g_strsplit (*p, "=", 2);
      const char *value;

      if (kv[0] == NULL || kv[1] == NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "-X %s: expected KEY=VALUE", *p);
          goto fail;
        }
      value = kv[1];
      if (value[0] == '@')
        {
          value = g_getenv (value + 1);
          if (value == NULL)
            {
              g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "-X %s: environment variable %s is not set", kv[0], kv[1] + 1);
              goto fail;
            }
        }
      if (!conf_set (conf, kv[0], value, error))
        goto fail;
    }
  rd_kafka_conf_set_error_cb (conf, on_error);
  return conf;

fail:
  rd_kafka_conf_destroy (conf);
  return NULL;
}

/* --- produce -------------------------------------------------------------------- */

typedef struct
{
  int delivered;
  int failed;
} ProduceState;

static void
on_delivery (rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
  ProduceState *state = opaque;
  g_autoptr (JsonBuilder) builder = event_new ("delivery");

  (void) rk;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    state->delivered++;
  else
    state->failed++;
  json_builder_set_member_name (builder, "partition");
  json_builder_add_int_value (builder, msg->partition);
  json_builder_set_member_name (builder, "offset");
  json_builder_add_int_value (builder, msg->offset);
  add_bytes (builder, "key", msg->key, msg->key_len);
  add_bytes (builder, "value", msg->payload, msg->len);
  add_error (builder, msg->err);
  event_end (builder);
}

static int
run_produce (GError **error)
{
  ProduceState state = { 0 };
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  char errstr[512];
  int queued = 0;
  rd_kafka_resp_err_t fatal;

  if (opt_count <= 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "produce needs --count > 0");
      return 2;
    }
  if ((conf = conf_new (error)) == NULL)
    return 2;
  /* Set after -X so that a test cannot turn the idempotent producer off by
   * accident: that is what this mode exists to exercise. */
  if (!conf_set (conf, "enable.idempotence", "true", error)
      || !conf_set (conf, "acks", "all", error))
    {
      rd_kafka_conf_destroy (conf);
      return 2;
    }
  rd_kafka_conf_set_dr_msg_cb (conf, on_delivery);
  rd_kafka_conf_set_opaque (conf, &state);
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "rd_kafka_new: %s", errstr);
      return 2;
    }

  for (int i = opt_start; i < opt_start + opt_count && !stop_requested; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s-%d", opt_prefix, i);
      g_autofree char *value = g_strdup_printf ("%s value %d", opt_prefix, i);
      rd_kafka_resp_err_t err;

      err = rd_kafka_producev (rk, RD_KAFKA_V_TOPIC (opt_topic),
                               RD_KAFKA_V_KEY (key, strlen (key)),
                               RD_KAFKA_V_VALUE (value, strlen (value)),
                               RD_KAFKA_V_MSGFLAGS (RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        {
          /* Serve delivery reports to make room, then try the same message. */
          rd_kafka_poll (rk, 100);
          i--;
          continue;
        }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          g_autoptr (JsonBuilder) builder = event_new ("produce-failed");

          json_builder_set_member_name (builder, "key");
          json_builder_add_string_value (builder, key);
          add_error (builder, err);
          event_end (builder);
          state.failed++;
          continue;
        }
      queued++;
      rd_kafka_poll (rk, 0);
    }

  rd_kafka_flush (rk, opt_timeout_ms);
  fatal = rd_kafka_fatal_error (rk, errstr, sizeof errstr);

  {
    g_autoptr (JsonBuilder) builder = event_new ("done");

    json_builder_set_member_name (builder, "queued");
    json_builder_add_int_value (builder, queued);
    json_builder_set_member_name (builder, "delivered");
    json_builder_add_int_value (builder, state.delivered);
    json_builder_set_member_name (builder, "failed");
    json_builder_add_int_value (builder, state.failed);
    json_builder_set_member_name (builder, "undelivered");
    json_builder_add_int_value (builder, rd_kafka_outq_len (rk));
    add_error (builder, fatal);
    event_end (builder);
  }
  rd_kafka_destroy (rk);
  return (state.delivered == opt_count && state.failed == 0
          && fatal == RD_KAFKA_RESP_ERR_NO_ERROR) ? 0 : 1;
}

/* --- consume -------------------------------------------------------------------- */

typedef struct
{
  rd_kafka_t *rk;
  /* Processed but not yet committed: "topic\npartition" -> next offset. */
  GHashTable *pending;
  int uncommitted;
  int messages;
  int commit_errors;
} ConsumeState;

/* Commits what this member processed, synchronously, and prints the outcome
 * per partition. Called after every --commit-every messages, before a
 * revocation takes the partitions away, and before leaving. */
static void
commit_pending (ConsumeState *state, const char *why)
{
  rd_kafka_topic_partition_list_t *offsets;
  GHashTableIter iter;
  gpointer k, v;
  rd_kafka_resp_err_t err;

  if (g_hash_table_size (state->pending) == 0)
    return;
  offsets = rd_kafka_topic_partition_list_new (g_hash_table_size (state->pending));
  g_hash_table_iter_init (&iter, state->pending);
  while (g_hash_table_iter_next (&iter, &k, &v))
    {
      const char *sep = strrchr (k, '\n');
      g_autofree char *topic = g_strndup (k, sep - (const char *) k);
      gint64 partition = g_ascii_strtoll (sep + 1, NULL, 10);

      rd_kafka_topic_partition_list_add (offsets, topic, (int32_t) partition)->offset =
        *(gint64 *) v;
    }

  err = rd_kafka_commit (state->rk, offsets, 0 /* synchronous */);

  g_autoptr (JsonBuilder) builder = event_new ("commit");
  json_builder_set_member_name (builder, "why");
  json_builder_add_string_value (builder, why);
  add_error (builder, err);
  add_partitions (builder, offsets, TRUE);
  event_end (builder);

  for (int i = 0; i < offsets->cnt; i++)
    if (offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
      err = offsets->elems[i].err;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    state->commit_errors++;
  rd_kafka_topic_partition_list_destroy (offsets);
  g_hash_table_remove_all (state->pending);
  state->uncommitted = 0;
}

static void
on_rebalance (rd_kafka_t *rk, rd_kafka_resp_err_t err,
              rd_kafka_topic_partition_list_t *parts, void *opaque)
{
  ConsumeState *state = opaque;
  gboolean cooperative = g_strcmp0 (rd_kafka_rebalance_protocol (rk), "COOPERATIVE") == 0;
  gboolean assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
  g_autoptr (JsonBuilder) builder = NULL;
  rd_kafka_error_t *rerr = NULL;
  rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

  /* Commit before giving partitions up, so that the member that gets them
   * next starts right after what this one processed. */
  if (!assign)
    commit_pending (state, "revoke");

  builder = event_new (assign ? "assigned" : "revoked");
  json_builder_set_member_name (builder, "protocol");
  json_builder_add_string_value (builder, cooperative ? "cooperative" : "eager");
  add_partitions (builder, parts, FALSE);

  if (cooperative)
    rerr = assign ? rd_kafka_incremental_assign (rk, parts)
                  : rd_kafka_incremental_unassign (rk, parts);
  else
    aerr = rd_kafka_assign (rk, assign ? parts : NULL);
  if (rerr != NULL)
    {
      aerr = rd_kafka_error_code (rerr);
      rd_kafka_error_destroy (rerr);
    }
  add_error (builder, aerr);
  event_end (builder);
}

static void
print_message (const rd_kafka_message_t *msg)
{
  g_autoptr (JsonBuilder) builder = event_new ("message");

  json_builder_set_member_name (builder, "partition");
  json_builder_add_int_value (builder, msg->partition);
  json_builder_set_member_name (builder, "offset");
  json_builder_add_int_value (builder, msg->offset);
  add_bytes (builder, "key", msg->key, msg->key_len);
  add_bytes (builder, "value", msg->payload, msg->len);
  event_end (builder);
}

static void
print_partition_event (const char *event, const rd_kafka_message_t *msg)
{
  g_autoptr (JsonBuilder) builder = event_new (event);

  json_builder_set_member_name (builder, "partition");
  json_builder_add_int_value (builder, msg->partition);
  json_builder_set_member_name (builder, "offset");
  json_builder_add_int_value (builder, msg->offset);
  add_error (builder, msg->err);
  if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
    {
      json_builder_set_member_name (builder, "reason");
      json_builder_add_string_value (builder, rd_kafka_message_errstr (msg));
    }
  event_end (builder);
}

/* TRUE when stdin reached its end (or failed): the driver's way to tell a
 * member to leave without a signal. Lines written to stdin are ignored. */
static gboolean
stdin_closed (void)
{
  struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
  char buf[256];
  ssize_t n;

  if (opt_no_stdin)
    return FALSE;
  if (poll (&pfd, 1, 0) <= 0)
    return FALSE;
  if (pfd.revents & (POLLERR | POLLNVAL))
    return TRUE;
  n = read (STDIN_FILENO, buf, sizeof buf);
  return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
}

/* Prints the group's committed offsets for what this member holds now, as the
 * coordinator reports them (not as this process remembers them). */
static void
print_committed (ConsumeState *state)
{
  rd_kafka_topic_partition_list_t *assignment = NULL;
  rd_kafka_resp_err_t err;
  g_autoptr (JsonBuilder) builder = event_new ("committed");

  err = rd_kafka_assignment (state->rk, &assignment);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && assignment->cnt > 0)
    err = rd_kafka_committed (state->rk, assignment, 10000);
  add_error (builder, err);
  add_partitions (builder, assignment, TRUE);
  event_end (builder);
  if (assignment != NULL)
    rd_kafka_topic_partition_list_destroy (assignment);
}

static int
run_consume (GError **error)
{
  ConsumeState state = { 0 };
  rd_kafka_conf_t *conf;
  rd_kafka_topic_partition_list_t *topics;
  rd_kafka_resp_err_t err;
  char errstr[512];
  const char *why = "stopped";

  if (opt_group == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "consume needs --group");
      return 2;
    }
  if (opt_commit_every < 1)
    opt_commit_every = 1;
  if ((conf = conf_new (error)) == NULL)
    return 2;
  if (!conf_set (conf, "group.id", opt_group, error)
      || !conf_set (conf, "enable.auto.commit", "false", error)
      || !conf_set (conf, "enable.auto.offset.store", "false", error)
      || !conf_set (conf, "enable.partition.eof", "true", error)
      || !conf_set (conf, "auto.offset.reset",
                    opt_offset_reset != NULL ? opt_offset_reset : "earliest", error))
    {
      rd_kafka_conf_destroy (conf);
      return 2;
    }
  rd_kafka_conf_set_rebalance_cb (conf, on_rebalance);
  rd_kafka_conf_set_opaque (conf, &state);
  state.pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  state.rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (state.rk == NULL)
    {
      g_hash_table_unref (state.pending);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "rd_kafka_new: %s", errstr);
      return 2;
    }
  rd_kafka_poll_set_consumer (state.rk);

  topics = rd_kafka_topic_partition_list_new (1);
  rd_kafka_topic_partition_list_add (topics, opt_topic, RD_KAFKA_PARTITION_UA);
  err = rd_kafka_subscribe (state.rk, topics);
  rd_kafka_topic_partition_list_destroy (topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "subscribe %s: %s",
                   opt_topic, rd_kafka_err2str (err));
      rd_kafka_destroy (state.rk);
      g_hash_table_unref (state.pending);
      return 2;
    }

  for (;;)
    {
      rd_kafka_message_t *msg;

      if (stop_requested)
        {
          why = "signal";
          break;
        }
      if (stdin_closed ())
        {
          why = "stdin";
          break;
        }
      if (opt_count > 0 && state.messages >= opt_count)
        {
          why = "count";
          break;
        }
      msg = rd_kafka_consumer_poll (state.rk, 100);
      if (msg == NULL)
        continue;
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          print_partition_event (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? "eof" : "error",
                                 msg);
          rd_kafka_message_destroy (msg);
          continue;
        }

      print_message (msg);
      state.messages++;
      {
        char *key = g_strdup_printf ("%s\n%d", rd_kafka_topic_name (msg->rkt), msg->partition);
        gint64 *next = g_new (gint64, 1);

        *next = msg->offset + 1;
        g_hash_table_replace (state.pending, key, next);
      }
      rd_kafka_message_destroy (msg);
      if (++state.uncommitted >= opt_commit_every)
        commit_pending (&state, "processed");
    }

  commit_pending (&state, "close");
  print_committed (&state);
  /* Leaves the group (the rebalance callback sees the revocation first) so
   * that the others are rebalanced at once, not after a session timeout. */
  err = rd_kafka_consumer_close (state.rk);

  {
    g_autoptr (JsonBuilder) builder = event_new ("closed");

    json_builder_set_member_name (builder, "why");
    json_builder_add_string_value (builder, why);
    json_builder_set_member_name (builder, "messages");
    json_builder_add_int_value (builder, state.messages);
    json_builder_set_member_name (builder, "commit-errors");
    json_builder_add_int_value (builder, state.commit_errors);
    add_error (builder, err);
    event_end (builder);
  }
  rd_kafka_destroy (state.rk);
  g_hash_table_unref (state.pending);
  return (err == RD_KAFKA_RESP_ERR_NO_ERROR && state.commit_errors == 0
          && (opt_count == 0 || state.messages >= opt_count)) ? 0 : 1;
}

int
main (int argc, char *argv[])
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  struct sigaction sa = { 0 };
  const char *mode;
  int status;

  context = g_option_context_new ("produce|consume - a librdkafka test client");
  g_option_context_add_main_entries (context, common_entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("kafka-client: %s\n", error->message);
      return 2;
    }
  mode = argc > 1 ? argv[1] : "";
  if (opt_brokers == NULL || opt_topic == NULL)
    {
      g_printerr ("kafka-client: --brokers and --topic are required\n");
      return 2;
    }
  if (opt_prefix == NULL)
    opt_prefix = g_strdup ("m");

  sa.sa_handler = on_stop_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  /* The driver may close our stdout's reader early; fail writes, not die. */
  signal (SIGPIPE, SIG_IGN);

  if (g_strcmp0 (mode, "produce") == 0)
    status = run_produce (&error);
  else if (g_strcmp0 (mode, "consume") == 0)
    status = run_consume (&error);
  else
    {
      g_printerr ("kafka-client: mode must be produce or consume (got '%s')\n", mode);
      return 2;
    }
  if (error != NULL)
    g_printerr ("kafka-client: %s\n", error->message);

  g_free (opt_brokers);
  g_free (opt_topic);
  g_free (opt_group);
  g_free (opt_prefix);
  g_free (opt_client_id);
  g_free (opt_offset_reset);
  g_strfreev (opt_props);
  /* Give librdkafka's threads the time to go before the sanitizer's leak check. */
  rd_kafka_wait_destroyed (5000);
  return status;
}
