/* transport-lines — newline-delimited JSON over TCP into one stream.
 *
 * An example of an out-of-tree transport plugin built only from the
 * installed SDK (<sluice/sluice.h>) and json-glib. The protocol:
 *
 *   client: SharedAccessSignature sr=...&sig=...&se=...[&skn=...]
 *   server: ok
 *   client: {"key":"k","properties":{"a":"b"},"body":"hello"}
 *   server: ok PARTITION OFFSET          (once the stream's durability is met)
 *   client: {not json
 *   server: error bad JSON: ...
 *
 * Answers go out in line order even when appends complete out of order.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "sluice-lines"
#endif

#include <string.h>
#include <sluice/sluice.h>
#include <json-glib/json-glib.h>

#define LINES_TOKEN_PREFIX "SharedAccessSignature "

typedef struct {
  char *stream;
  guint64 max_line;
  gint64 max_inflight;
} LinesOptions;

static const SluiceOption lines_options[] = {
  { "stream", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (LinesOptions, stream), NULL,
    "the stream every line is appended to (required)", 0, 0, NULL, { NULL, NULL } },
  { "max-line", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (LinesOptions, max_line), "1MiB",
    "longest accepted line; a longer one closes the connection",
    16, (gint64) 1 << 30, NULL, { NULL, NULL } },
  { "max-inflight", SLUICE_OPTION_INT, G_STRUCT_OFFSET (LinesOptions, max_inflight), "1024",
    "answers pending per connection before reading pauses",
    1, 1000000, NULL, { NULL, NULL } },
  SLUICE_OPTION_END
};

typedef struct {
  SluiceHost *host;
  char *instance_name;
  const LinesOptions *options;   /* owned by the core until destroy */
  SluiceCounter *lines_total;
  SluiceCounter *errors_total;
} LinesTransport;

typedef struct _LinesConn LinesConn;

/* One answer slot, queued in line order. `text` is NULL while its append is
 * in flight. */
typedef struct {
  LinesConn *conn;               /* a ref while the append is in flight */
  char *text;
  gboolean close_after;          /* close the connection once written */
  gboolean detached;             /* the connection is gone: just free it */
} LinesAnswer;

struct _LinesConn {
  gint ref_count;
  LinesTransport *transport;
  SluiceConnection *connection;  /* NULL once closed */
  SluicePrincipal *principal;    /* NULL until the token was accepted */
  guint watch_id;
  GQueue answers;                /* LinesAnswer*, line order */
  GByteArray *input;             /* bytes taken from the core, not yet handled */
  gboolean paused_inflight;
  gboolean paused_congested;
  gboolean closing;              /* a fatal answer is queued: ignore input */
  gboolean processing;           /* inside lines_conn_process_input() */
};

static void lines_conn_process_input (LinesConn *conn);

static LinesConn *
lines_conn_ref (LinesConn *conn)
{
  conn->ref_count++;
  return conn;
}

static void
lines_conn_unref (LinesConn *conn)
{
  /* Only touched on the connection's worker, so no atomics are needed. */
  if (--conn->ref_count > 0)
    return;
  g_clear_pointer (&conn->principal, sluice_principal_unref);
  if (conn->input != NULL)
    g_byte_array_unref (conn->input);
  g_free (conn);
}

static void
lines_answer_free (LinesAnswer *answer)
{
  g_free (answer->text);
  g_free (answer);
}

static gboolean
lines_conn_is_paused (LinesConn *conn)
{
  return conn->paused_inflight || conn->paused_congested;
}

static void
lines_conn_update_reading (LinesConn *conn, gboolean was_paused)
{
  gboolean paused = lines_conn_is_paused (conn);

  if (conn->connection == NULL || paused == was_paused)
    return;
  if (paused)
    sluice_connection_pause (conn->connection);
  else
    sluice_connection_resume (conn->connection);
}

/* Write every answer at the head of the queue whose text is known; stop at
 * the first one still in flight so answers keep line order. */
static void
lines_conn_flush (LinesConn *conn)
{
  LinesAnswer *answer;
  gboolean was_paused = lines_conn_is_paused (conn);
  gboolean close_now = FALSE;
  guint max_inflight;

  if (conn->connection == NULL)
    return;

  while ((answer = g_queue_peek_head (&conn->answers)) != NULL && answer->text != NULL)
    {
      g_queue_pop_head (&conn->answers);
      sluice_connection_write (conn->connection, answer->text, strlen (answer->text));
      sluice_connection_write (conn->connection, "\n", 1);
      close_now = answer->close_after;
      lines_answer_free (answer);
      if (close_now)
        break;
    }

  if (close_now)
    {
      sluice_connection_close (conn->connection, FALSE);
      return;
    }

  max_inflight = (guint) conn->transport->options->max_inflight;
  if (conn->paused_inflight && conn->answers.length < MAX (max_inflight / 2, 1))
    conn->paused_inflight = FALSE;
  if (sluice_connection_is_congested (conn->connection))
    conn->paused_congested = TRUE;
  lines_conn_update_reading (conn, was_paused);

  if (was_paused && !lines_conn_is_paused (conn))
    lines_conn_process_input (conn);
}

/* Queue an answer whose text is already known (an error found while parsing,
 * or the greeting). */
static void
lines_conn_answer_now (LinesConn *conn, gboolean close_after, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

static void
lines_conn_answer_now (LinesConn *conn, gboolean close_after, const char *format, ...)
{
  LinesAnswer *answer = g_new0 (LinesAnswer, 1);
  va_list args;

  va_start (args, format);
  answer->text = g_strdup_vprintf (format, args);
  va_end (args);
  answer->close_after = close_after;
  g_queue_push_tail (&conn->answers, answer);
  if (close_after)
    conn->closing = TRUE;
  if (g_str_has_prefix (answer->text, "error"))
    sluice_counter_add (conn->transport->errors_total, 1);
}

/* Error texts must stay on one line. */
static char *
lines_one_line (const char *text)
{
  char *copy = g_strdup (text != NULL ? text : "");

  for (char *p = copy; *p != '\0'; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  return copy;
}

static const char *
lines_error_reason (const GError *error)
{
  if (error->domain != SLUICE_ERROR)
    return "failed";
  switch (error->code)
    {
    case SLUICE_ERROR_INVALID: return "invalid";
    case SLUICE_ERROR_NOT_FOUND: return "stream unknown";
    case SLUICE_ERROR_UNAUTHENTICATED: return "unauthorized";
    case SLUICE_ERROR_FORBIDDEN: return "forbidden";
    case SLUICE_ERROR_TOO_LARGE: return "too large";
    case SLUICE_ERROR_THROTTLED: return "throttled";
    case SLUICE_ERROR_STORAGE: return "storage failure";
    case SLUICE_ERROR_SHUTTING_DOWN: return "shutting down";
    default: return "failed";
    }
}

static void
lines_publish_done (const SluiceAppendResult *result, const GError *error, gpointer user_data)
{
  LinesAnswer *answer = user_data;
  LinesConn *conn = answer->conn;

  answer->conn = NULL;
  if (answer->detached)
    {
      lines_answer_free (answer);
      lines_conn_unref (conn);
      return;
    }

  if (error != NULL)
    {
      g_autofree char *message = lines_one_line (error->message);

      answer->text = g_strdup_printf ("error %s: %s", lines_error_reason (error), message);
      sluice_counter_add (conn->transport->errors_total, 1);
    }
  else
    {
      answer->text = g_strdup_printf ("ok %d %" G_GINT64_FORMAT, result->partition,
                                      result->base_offset);
    }

  lines_conn_flush (conn);
  lines_conn_unref (conn);
}

static void
lines_conn_revoked (const char *reason, gpointer user_data)
{
  LinesConn *conn = user_data;
  g_autofree char *text = NULL;
  g_autofree char *why = lines_one_line (reason);

  if (conn->connection == NULL || conn->closing)
    return;

  g_info ("transport.%s: connection %" G_GUINT64_FORMAT " of %s revoked: %s",
          conn->transport->instance_name, sluice_connection_get_id (conn->connection),
          sluice_principal_get_id (conn->principal), why);

  /* Revocation does not wait for pending answers: the principal may no
   * longer be told anything. */
  conn->closing = TRUE;
  text = g_strdup_printf ("error revoked: %s\n", why);
  sluice_connection_write (conn->connection, text, strlen (text));
  sluice_connection_close (conn->connection, FALSE);
}

static void
lines_conn_authenticate (LinesConn *conn, const char *line)
{
  LinesTransport *transport = conn->transport;
  SluiceCredentials credentials = { 0 };
  g_autoptr (GError) error = NULL;

  if (!g_str_has_prefix (line, LINES_TOKEN_PREFIX))
    {
      lines_conn_answer_now (conn, TRUE, "error expected a SharedAccessSignature token first");
      return;
    }

  credentials.type = SLUICE_CREDENTIALS_SAS_TOKEN;
  credentials.protocol = "lines";
  credentials.peer = sluice_connection_get_peer (conn->connection);
  credentials.token = line;
  conn->principal = sluice_host_authenticate (transport->host, &credentials, &error);
  if (conn->principal == NULL)
    {
      /* The host has logged the reason; the client gets a generic refusal. */
      sluice_debug (transport->instance_name, "closing %s: not authenticated",
                    credentials.peer);
      lines_conn_answer_now (conn, TRUE, "error unauthorized");
      return;
    }

  conn->watch_id = sluice_host_watch_principal (transport->host, conn->principal,
                                                lines_conn_revoked, conn);
  lines_conn_answer_now (conn, FALSE, "ok");
}

/* Validate one JSON line and turn it into key, headers and body.
 * Returns an error text (transfer full) or NULL on success. */
static char *
lines_parse_message (const char *line, gsize len, char **key_out, GPtrArray *headers,
                     GBytes **body_out)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) error = NULL;
  JsonNode *root;
  JsonObject *object;
  JsonNode *node;
  g_autoptr (GList) members = NULL;

  if (!json_parser_load_from_data (parser, line, (gssize) len, &error))
    {
      g_autofree char *message = lines_one_line (error->message);
      return g_strdup_printf ("error bad JSON: %s", message);
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return g_strdup ("error bad JSON: expected an object");
  object = json_node_get_object (root);

  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      if (g_strcmp0 (name, "key") != 0 && g_strcmp0 (name, "properties") != 0
          && g_strcmp0 (name, "body") != 0)
        {
          g_autofree char *shown = lines_one_line (name);
          return g_strdup_printf ("error bad JSON: unknown member '%s'", shown);
        }
    }

  node = json_object_get_member (object, "key");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (json_node_get_value_type (node) != G_TYPE_STRING)
        return g_strdup ("error bad JSON: key must be a string");
      *key_out = g_strdup (json_node_get_string (node));
    }

  node = json_object_get_member (object, "properties");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      JsonObject *properties;
      g_autoptr (GList) names = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return g_strdup ("error bad JSON: properties must be an object");
      properties = json_node_get_object (node);
      names = json_object_get_members (properties);
      for (GList *l = names; l != NULL; l = l->next)
        {
          JsonNode *value = json_object_get_member (properties, l->data);

          if (!JSON_NODE_HOLDS_VALUE (value)
              || json_node_get_value_type (value) != G_TYPE_STRING)
            {
              g_autofree char *shown = lines_one_line (l->data);
              return g_strdup_printf ("error bad JSON: property '%s' must be a string", shown);
            }
          g_ptr_array_add (headers, g_strdup (l->data));
          g_ptr_array_add (headers, g_strdup (json_node_get_string (value)));
        }
    }
  g_ptr_array_add (headers, NULL);

  node = json_object_get_member (object, "body");
  if (node == NULL)
    return g_strdup ("error missing body");
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      const char *text = json_node_get_string (node);
      *body_out = g_bytes_new (text, strlen (text));
    }
  else
    {
      /* Any other JSON value is stored as its compact serialisation. */
      char *text = json_to_string (node, FALSE);
      *body_out = g_bytes_new_take (text, strlen (text));
    }
  return NULL;
}

static void
lines_conn_publish (LinesConn *conn, const char *line, gsize len)
{
  LinesTransport *transport = conn->transport;
  g_autoptr (GPtrArray) headers = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *key = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autofree char *problem = NULL;
  LinesAnswer *answer;

  sluice_counter_add (transport->lines_total, 1);
  problem = lines_parse_message (line, len, &key, headers, &body);
  if (problem != NULL)
    {
      lines_conn_answer_now (conn, FALSE, "%s", problem);
      return;
    }

  answer = g_new0 (LinesAnswer, 1);
  answer->conn = lines_conn_ref (conn);
  g_queue_push_tail (&conn->answers, answer);
  sluice_host_publish (transport->host, conn->principal, transport->options->stream, -1,
                       key, (const char *const *) headers->pdata, body,
                       lines_publish_done, answer);
}

/* Handle complete lines in conn->input until it runs out, reading pauses or
 * a fatal answer is queued; keep the unhandled rest. Returns TRUE when it
 * stopped because reading paused (so more lines may be waiting). */
static gboolean
lines_conn_handle_lines (LinesConn *conn)
{
  const LinesOptions *options = conn->transport->options;
  gboolean stopped_by_pause = FALSE;
  gsize pos = 0;

  while (!conn->closing && conn->connection != NULL)
    {
      const guint8 *start = conn->input->data + pos;
      gsize avail = conn->input->len - pos;
      const guint8 *nl;
      gsize line_len;
      g_autofree char *line = NULL;
      gboolean was_paused;

      if (lines_conn_is_paused (conn))
        {
          stopped_by_pause = TRUE;
          break;
        }
      nl = memchr (start, '\n', avail);
      if (nl == NULL)
        {
          /* +1: the line's '\r' may still be unseen. */
          if (avail > options->max_line + 1)
            lines_conn_answer_now (conn, TRUE, "error line too long");
          break;
        }

      line_len = (gsize) (nl - start);
      pos += line_len + 1;
      if (line_len > 0 && start[line_len - 1] == '\r')
        line_len--;
      if (line_len > options->max_line)
        {
          lines_conn_answer_now (conn, TRUE, "error line too long");
          break;
        }
      line = g_strndup ((const char *) start, line_len);

      if (conn->principal == NULL)
        {
          lines_conn_authenticate (conn, line);
          continue;
        }
      if (line_len == 0)
        continue;
      if (strlen (line) != line_len)
        lines_conn_answer_now (conn, FALSE, "error bad JSON: NUL byte in line");
      else
        lines_conn_publish (conn, line, line_len);

      was_paused = lines_conn_is_paused (conn);
      if (conn->answers.length >= (guint) options->max_inflight)
        conn->paused_inflight = TRUE;
      lines_conn_update_reading (conn, was_paused);
    }

  if (conn->closing)
    g_byte_array_set_size (conn->input, 0);
  else if (pos > 0)
    g_byte_array_remove_range (conn->input, 0, (guint) pos);
  return stopped_by_pause;
}

static void
lines_conn_process_input (LinesConn *conn)
{
  gboolean more;

  /* lines_conn_flush() resumes reading and calls back here; loop instead of
   * recursing. */
  if (conn->processing)
    return;
  conn->processing = TRUE;
  do
    {
      more = lines_conn_handle_lines (conn);
      /* Answers found while parsing (errors, the greeting) go out now; that
       * may lift the in-flight pause. */
      lines_conn_flush (conn);
    }
  while (more && !conn->closing && conn->connection != NULL && !lines_conn_is_paused (conn));
  conn->processing = FALSE;
}

/* --- vtable --- */

static gpointer
lines_create (SluiceHost *host, const SluiceTransportConfig *config, const void *options,
              GError **error)
{
  const LinesOptions *opts = options;
  LinesTransport *transport;
  g_autofree char *lines_name = NULL;
  g_autofree char *errors_name = NULL;

  if (opts->stream == NULL || *opts->stream == '\0')
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "[transport.%s] stream: required (the stream lines are appended to)",
                   config->instance_name);
      return NULL;
    }
  if (!sluice_stream_name_is_valid (opts->stream))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "[transport.%s] stream: not a valid stream name (value '%s')",
                   config->instance_name, opts->stream);
      return NULL;
    }
  transport = g_new0 (LinesTransport, 1);
  transport->host = host;
  transport->instance_name = g_strdup (config->instance_name);
  transport->options = opts;
  lines_name = g_strdup_printf ("sluice_lines_lines_total{transport=\"%s\"}",
                                config->instance_name);
  errors_name = g_strdup_printf ("sluice_lines_errors_total{transport=\"%s\"}",
                                 config->instance_name);
  transport->lines_total = sluice_host_counter (host, lines_name,
                                                "Lines received by the lines transport");
  transport->errors_total = sluice_host_counter (host, errors_name,
                                                 "Error answers sent by the lines transport");
  return transport;
}

static gboolean
lines_start (gpointer self, GError **error)
{
  LinesTransport *transport = self;
  SluiceStreamInfo info;
  g_autoptr (GError) local_error = NULL;

  /* Streams may also be created at run time, so an unknown one is only
   * worth a warning here; each line then answers `error stream unknown`. */
  if (!sluice_host_stream_info (transport->host, transport->options->stream, &info,
                                &local_error))
    sluice_warning (transport->instance_name, "stream '%s': %s", transport->options->stream,
                    local_error->message);
  return TRUE;
}

static void
lines_stop (gpointer self)
{
  /* The core owns the listeners and connections and drains them; in-flight
   * appends still answer through lines_publish_done. */
}

static void
lines_destroy (gpointer self)
{
  LinesTransport *transport = self;

  g_free (transport->instance_name);
  g_free (transport);
}

static gpointer
lines_connection_open (gpointer self, SluiceConnection *connection)
{
  LinesTransport *transport = self;
  LinesConn *conn = g_new0 (LinesConn, 1);

  conn->ref_count = 1;
  conn->transport = transport;
  conn->connection = connection;
  conn->input = g_byte_array_new ();
  g_queue_init (&conn->answers);
  /* Every byte is taken into conn->input at once, so the core's buffer only
   * needs room for one read past the longest line. */
  sluice_connection_set_max_input (connection, transport->options->max_line + (1 << 20));
  return conn;
}

static gsize
lines_connection_input (gpointer conn_state, SluiceConnection *connection,
                        const guint8 *data, gsize len)
{
  LinesConn *conn = conn_state;

  if (conn->closing)
    return len;
  /* Take everything: while reading is paused the core may not present its
   * leftover again, so unhandled lines wait here until reading resumes. */
  g_byte_array_append (conn->input, data, (guint) len);
  lines_conn_ref (conn);
  lines_conn_process_input (conn);
  lines_conn_unref (conn);
  return len;
}

static void
lines_connection_drained (gpointer conn_state, SluiceConnection *connection)
{
  LinesConn *conn = conn_state;
  gboolean was_paused = lines_conn_is_paused (conn);

  if (!conn->paused_congested)
    return;
  conn->paused_congested = FALSE;
  lines_conn_update_reading (conn, was_paused);
  if (!lines_conn_is_paused (conn))
    lines_conn_process_input (conn);
}

static void
lines_connection_closed (gpointer conn_state, SluiceConnection *connection)
{
  LinesConn *conn = conn_state;
  LinesAnswer *answer;

  if (conn->watch_id != 0)
    sluice_host_unwatch_principal (conn->transport->host, conn->watch_id);
  conn->watch_id = 0;
  conn->connection = NULL;
  conn->closing = TRUE;

  /* Answers still in flight free themselves when their append completes. */
  while ((answer = g_queue_pop_head (&conn->answers)) != NULL)
    {
      if (answer->conn != NULL)
        answer->detached = TRUE;
      else
        lines_answer_free (answer);
    }
  lines_conn_unref (conn);
}

static const SluiceTransportVTable lines_vtable = {
  .flags = 0,
  .create = lines_create,
  .start = lines_start,
  .stop = lines_stop,
  .destroy = lines_destroy,
  .connection_open = lines_connection_open,
  .connection_input = lines_connection_input,
  .connection_drained = lines_connection_drained,
  .connection_closed = lines_connection_closed,
};

SLUICE_PLUGIN_DEFINE (transport, lines, "1.0",
                      "newline-delimited JSON over TCP into one stream",
                      "Apache-2.0", &lines_vtable, lines_options, sizeof (LinesOptions),
                      NULL)
