/* sluicectl — telemetry and streams: send as a device or to a stream, read a
 * partition (once or following it with long polls), show a stream, show and
 * commit consumer-group offsets.
 * SPDX-License-Identifier: Apache-2.0 */
#include "sluicectl-private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define API_VERSION "api-version=2021-04-12"
/* How long one `read --follow` request waits on the hub for new records. */
#define FOLLOW_WAIT_MS 20000
#define DEVICE_TOKEN_TTL 3600

/* WIRE.md: 1–255 characters of [A-Za-z0-9._-], not starting with `_`, and
 * not a reserved first path segment (the hub matches paths
 * case-insensitively, so neither does `Devices`). */
static gboolean
check_stream_name (const char *name, GError **error)
{
  static const char *const reserved[] = {
    "devices", "twins", "messages", "files", "healthz", "metrics", "jobs",
  };
  gsize len = strlen (name);

  for (gsize i = 0; i < G_N_ELEMENTS (reserved); i++)
    if (g_ascii_strcasecmp (name, reserved[i]) == 0)
      {
        g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                     "'%s' is a reserved path of the hub, not a stream name", name);
        return FALSE;
      }
  if (len == 0 || len > 255 || name[0] == '_')
    goto bad;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '_' && *p != '-')
      goto bad;
  return TRUE;

bad:
  g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
               "bad stream name '%s': 1 to 255 characters of A-Z a-z 0-9 . _ -, "
               "not starting with _", name);
  return FALSE;
}

/* --- send ------------------------------------------------------------------ */

/* RFC 9110 token characters: what a header name may hold. */
static gboolean
is_header_token (const char *text)
{
  if (text[0] == '\0')
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("!#$%&'*+-.^_`|~", *p) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
check_header_value (const char *option, const char *value, GError **error)
{
  if (strpbrk (value, "\r\n") == NULL)
    return TRUE;
  g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE, "%s: a value cannot span lines", option);
  return FALSE;
}

/* `--property k=v` as `{prefix}k: v` headers, appended to `headers`. */
static gboolean
add_properties (GPtrArray *headers, char **properties, const char *prefix, GError **error)
{
  for (gsize i = 0; properties != NULL && properties[i] != NULL; i++)
    {
      const char *eq = strchr (properties[i], '=');
      g_autofree char *name = eq != NULL ? g_strndup (properties[i], eq - properties[i]) : NULL;

      if (name == NULL || !is_header_token (name))
        {
          g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                       "--property takes NAME=VALUE, NAME of letters, digits and "
                       "!#$%%&'*+-.^_`|~ (value '%s')", properties[i]);
          return FALSE;
        }
      if (!check_header_value ("--property", eq + 1, error))
        return FALSE;
      g_ptr_array_add (headers, g_strconcat (prefix, name, NULL));
      g_ptr_array_add (headers, g_strdup (eq + 1));
    }
  return TRUE;
}

static void
add_header (GPtrArray *headers, const char *name, const char *value)
{
  if (value == NULL)
    return;
  g_ptr_array_add (headers, g_strdup (name));
  g_ptr_array_add (headers, g_strdup (value));
}

/* The message body: the argument's bytes, or stdin for `-`. */
static GBytes *
read_body (const char *arg, GError **error)
{
  g_autoptr (GByteArray) data = NULL;
  char buffer[65536];
  size_t n;

  if (strcmp (arg, "-") != 0)
    return g_bytes_new (arg, strlen (arg));

  data = g_byte_array_new ();
  while ((n = fread (buffer, 1, sizeof buffer, stdin)) > 0)
    g_byte_array_append (data, (const guint8 *) buffer, n);
  if (ferror (stdin))
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_INPUT, "cannot read the body from stdin: %s",
                   g_strerror (errno));
      return NULL;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&data));
}

static gboolean
send_run (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autofree char *device_id = NULL;
  g_autofree char *stream = NULL;
  g_auto (GStrv) properties = NULL;
  g_autofree char *message_id = NULL;
  g_autofree char *correlation_id = NULL;
  g_autofree char *content_type = NULL;
  g_autofree char *content_encoding = NULL;
  g_autofree char *partition_key = NULL;
  const GOptionEntry entries[] = {
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_id,
      "Send telemetry as this device (its key comes from the registry)", "ID" },
    { "stream", 0, 0, G_OPTION_ARG_STRING, &stream,
      "Send to this stream with the policy's credentials", "NAME" },
    { "property", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &properties,
      "An application property (repeatable)", "NAME=VALUE" },
    { "message-id", 0, 0, G_OPTION_ARG_STRING, &message_id, "The message id", "ID" },
    { "correlation-id", 0, 0, G_OPTION_ARG_STRING, &correlation_id, "The correlation id",
      "ID" },
    { "content-type", 0, 0, G_OPTION_ARG_STRING, &content_type,
      "The body's content type, e.g. application/json", "TYPE" },
    { "content-encoding", 0, 0, G_OPTION_ARG_STRING, &content_encoding,
      "The body's content encoding, e.g. utf-8", "ENC" },
    { "key", 0, 0, G_OPTION_ARG_STRING, &partition_key,
      "With --stream: the partition key", "KEY" },
    { NULL }
  };
  g_autoptr (GPtrArray) headers = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GBytes) body = NULL;
  g_autoptr (JsonNode) answer = NULL;
  g_autofree char *path = NULL;
  g_autofree char *subject = NULL;
  g_autofree char *token = NULL;
  const char *query = NULL;

  if (!ctl_parse_options (command, entries, &argc, &argv, 1, 1, error))
    return FALSE;
  if (device_id != NULL && stream != NULL)
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "--device and --stream exclude each other");
      return FALSE;
    }
  if (stream != NULL && !check_stream_name (stream, error))
    return FALSE;
  if (partition_key != NULL && stream == NULL)
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "--key goes with --stream (device telemetry is keyed by the "
                           "device id)");
      return FALSE;
    }
  if ((message_id != NULL && !check_header_value ("--message-id", message_id, error))
      || (correlation_id != NULL
          && !check_header_value ("--correlation-id", correlation_id, error))
      || (content_type != NULL && !check_header_value ("--content-type", content_type, error))
      || (content_encoding != NULL
          && !check_header_value ("--content-encoding", content_encoding, error))
      || (partition_key != NULL && !check_header_value ("--key", partition_key, error)))
    return FALSE;
  if (!ctl_resolve (ctl, error))
    return FALSE;
  if (device_id == NULL && stream == NULL)
    {
      if (ctl->device_id == NULL)
        {
          g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                               "send needs --device ID or --stream NAME");
          return FALSE;
        }
      device_id = g_strdup (ctl->device_id);
    }

  body = read_body (argv[1], error);
  if (body == NULL)
    return FALSE;

  if (device_id != NULL)
    {
      g_autofree char *key = NULL;
      g_autofree char *resource = NULL;
      g_autofree char *escaped = ctl_escape (device_id);

      /* IoT Hub's HTTPS device API: iothub-app-* are the properties,
       * iothub-* the system properties. */
      if (!add_properties (headers, properties, "iothub-app-", error))
        return FALSE;
      add_header (headers, "iothub-messageid", message_id);
      add_header (headers, "iothub-correlationid", correlation_id);
      add_header (headers, "iothub-contenttype", content_type);
      add_header (headers, "iothub-contentencoding", content_encoding);

      key = ctl_device_key_lookup (ctl, device_id, "primary", error);
      if (key == NULL)
        return FALSE;
      resource = g_strdup_printf ("%s/devices/%s", ctl->host_name, device_id);
      token = ctl_make_token (resource, key, NULL, DEVICE_TOKEN_TTL, error);
      memset (key, 0, strlen (key));
      if (token == NULL)
        return FALSE;
      path = g_strconcat ("/devices/", escaped, "/messages/events", NULL);
      query = API_VERSION;
      subject = g_strdup_printf ("device '%s'", device_id);
    }
  else
    {
      g_autofree char *escaped = ctl_escape (stream);
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      g_autoptr (JsonGenerator) generator = json_generator_new ();
      g_autoptr (JsonNode) broker = NULL;
      g_autofree char *broker_text = NULL;

      if (!ctl_require_service (ctl, "send --stream", error))
        return FALSE;
      /* Event Hubs' REST send: BrokerProperties carries the partition key
       * and the system properties; application properties are headers of
       * their own, which the hub tells apart with the iothub-app- prefix. */
      if (!add_properties (headers, properties, "iothub-app-", error))
        return FALSE;
      json_builder_begin_object (builder);
      if (partition_key != NULL)
        {
          json_builder_set_member_name (builder, "PartitionKey");
          json_builder_add_string_value (builder, partition_key);
        }
      if (message_id != NULL)
        {
          json_builder_set_member_name (builder, "MessageId");
          json_builder_add_string_value (builder, message_id);
        }
      if (correlation_id != NULL)
        {
          json_builder_set_member_name (builder, "CorrelationId");
          json_builder_add_string_value (builder, correlation_id);
        }
      json_builder_end_object (builder);
      broker = json_builder_get_root (builder);
      if (json_object_get_size (json_node_get_object (broker)) > 0)
        {
          json_generator_set_root (generator, broker);
          broker_text = json_generator_to_data (generator, NULL);
          add_header (headers, "BrokerProperties", broker_text);
        }
      add_header (headers, "iothub-messageid", message_id);
      add_header (headers, "iothub-correlationid", correlation_id);
      add_header (headers, "iothub-contentencoding", content_encoding);
      path = g_strconcat ("/", escaped, "/messages", NULL);
      subject = g_strdup_printf ("stream '%s'", stream);
    }
  g_ptr_array_add (headers, NULL);

  CtlRequest request = {
    .method = "POST", .path = path, .query = query, .token = token, .subject = subject,
    /* No type unless given: the hub would keep it as the message's. */
    .content_type = content_type,
    .body = body, .headers = (const char *const *) headers->pdata,
  };
  answer = ctl_call (ctl, &request, error);
  return answer != NULL;
}

/* --- read --------------------------------------------------------------------- */

static gboolean
parse_offset (const char *text, const char *what, gint64 *value, GError **error)
{
  if (g_ascii_string_to_signed (text, 10, 0, G_MAXINT64, value, NULL))
    return TRUE;
  g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
               "%s is an offset, a whole number from 0 (value '%s')", what, text);
  return FALSE;
}

/* GET /{stream} (transfer full) */
static JsonNode *
stream_get (Ctl *ctl, const char *stream, GError **error)
{
  g_autofree char *escaped = ctl_escape (stream);
  g_autofree char *path = g_strconcat ("/", escaped, NULL);
  g_autofree char *subject = g_strdup_printf ("stream '%s'", stream);
  CtlRequest request = { .method = "GET", .path = path, .subject = subject };
  g_autoptr (JsonNode) node = ctl_call (ctl, &request, error);

  if (node != NULL && !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_SERVER,
                   "stream '%s': the hub's answer is not a JSON object", stream);
      return NULL;
    }
  return g_steal_pointer (&node);
}

/* `--from start|end`: the partition's first or next offset. */
static gboolean
partition_bound (Ctl *ctl, const char *stream, gint64 partition, const char *which,
                 gint64 *offset, GError **error)
{
  g_autoptr (JsonNode) info = stream_get (ctl, stream, error);
  JsonObject *object;
  JsonArray *partitions;

  if (info == NULL)
    return FALSE;
  object = json_node_get_object (info);
  if (json_object_has_member (object, "partitions")
      && JSON_NODE_HOLDS_ARRAY (json_object_get_member (object, "partitions")))
    {
      partitions = json_object_get_array_member (object, "partitions");
      for (guint i = 0; i < json_array_get_length (partitions); i++)
        {
          JsonNode *node = json_array_get_element (partitions, i);
          JsonObject *p;

          if (!JSON_NODE_HOLDS_OBJECT (node))
            continue;
          p = json_node_get_object (node);
          if (json_object_get_int_member_with_default (p, "id", -1) == partition)
            {
              *offset = json_object_get_int_member_with_default (p, which, 0);
              return TRUE;
            }
        }
    }
  g_set_error (error, CTL_ERROR, CTL_ERROR_NOT_FOUND,
               "stream '%s' partition %" G_GINT64_FORMAT " not found", stream, partition);
  return FALSE;
}

static gboolean
read_run (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  gint partition = -1;
  g_autofree char *from_text = NULL;
  g_autofree char *group = NULL;
  gint limit = 0;
  gboolean follow = FALSE;
  const GOptionEntry entries[] = {
    { "partition", 0, 0, G_OPTION_ARG_INT, &partition, "The partition to read (required)",
      "P" },
    { "from", 0, 0, G_OPTION_ARG_STRING, &from_text,
      "Start at this offset, or at 'start' / 'end' of the partition", "OFFSET" },
    { "group", 0, 0, G_OPTION_ARG_STRING, &group,
      "Start at this consumer group's committed offset", "G" },
    { "limit", 0, 0, G_OPTION_ARG_INT, &limit, "Print at most N records", "N" },
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &follow,
      "Keep reading: wait for new records (until --limit, or forever)", NULL },
    { NULL }
  };
  g_autofree char *escaped_stream = NULL;
  g_autofree char *escaped_group = NULL;
  g_autofree char *path = NULL;
  g_autofree char *subject = NULL;
  const char *stream;
  gint64 from = -1;
  gint64 printed = 0;

  if (!ctl_parse_options (command, entries, &argc, &argv, 1, 1, error))
    return FALSE;
  stream = argv[1];
  if (!check_stream_name (stream, error))
    return FALSE;
  if (partition < 0)
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "read needs --partition P (a number from 0)");
      return FALSE;
    }
  if (limit < 0)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   "--limit is a number from 1 (value '%d')", limit);
      return FALSE;
    }
  if (from_text != NULL && group != NULL)
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "--from and --group exclude each other");
      return FALSE;
    }
  if (from_text != NULL && strcmp (from_text, "start") != 0 && strcmp (from_text, "end") != 0
      && !parse_offset (from_text, "--from", &from, error))
    return FALSE;
  if (!ctl_require_service (ctl, "read", error))
    return FALSE;
  if (from_text != NULL && from < 0
      && !partition_bound (ctl, stream, partition,
                           strcmp (from_text, "start") == 0 ? "first" : "next", &from, error))
    return FALSE;

  escaped_stream = ctl_escape (stream);
  escaped_group = group != NULL ? g_uri_escape_string (group, NULL, FALSE) : NULL;
  path = g_strdup_printf ("/%s/partitions/%d/messages", escaped_stream, partition);
  subject = g_strdup_printf ("stream '%s' partition %d", stream, partition);

  do
    {
      g_autoptr (GString) query = g_string_new (NULL);
      g_autoptr (JsonNode) answer = NULL;
      JsonArray *records;
      guint n;
      gint64 started = g_get_monotonic_time ();

      /* After the first record the position is ours: a group's committed
       * offset only says where to begin. */
      if (from >= 0)
        g_string_append_printf (query, "from=%" G_GINT64_FORMAT, from);
      else if (escaped_group != NULL)
        g_string_append_printf (query, "group=%s", escaped_group);
      if (limit > 0)
        g_string_append_printf (query, "%slimit=%" G_GINT64_FORMAT, query->len > 0 ? "&" : "",
                                (gint64) limit - printed);
      if (follow)
        g_string_append_printf (query, "%swait=%d", query->len > 0 ? "&" : "",
                                FOLLOW_WAIT_MS);

      CtlRequest request = {
        .method = "GET", .path = path, .query = query->len > 0 ? query->str : NULL,
        .subject = subject,
      };
      answer = ctl_call (ctl, &request, error);
      if (answer == NULL)
        return FALSE;
      if (!JSON_NODE_HOLDS_ARRAY (answer))
        {
          g_set_error (error, CTL_ERROR, CTL_ERROR_SERVER,
                       "%s: the hub's answer is not a JSON array", subject);
          return FALSE;
        }

      records = json_node_get_array (answer);
      n = json_array_get_length (records);
      for (guint i = 0; i < n && (limit == 0 || printed < limit); i++)
        {
          JsonNode *record = json_array_get_element (records, i);

          ctl_print_json (record, FALSE);
          printed++;
          if (JSON_NODE_HOLDS_OBJECT (record))
            {
              JsonObject *object = json_node_get_object (record);

              if (json_object_has_member (object, "offset"))
                from = json_object_get_int_member (object, "offset") + 1;
            }
        }

      /* A hub that does not long-poll answers [] at once: do not spin. */
      if (follow && n == 0 && g_get_monotonic_time () - started < 200 * G_TIME_SPAN_MILLISECOND)
        g_usleep (500 * G_TIME_SPAN_MILLISECOND);
    }
  while (follow && (limit == 0 || printed < limit));

  return TRUE;
}

/* --- streams show ------------------------------------------------------------------ */

static gboolean
streams_show (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autoptr (JsonNode) info = NULL;

  if (!ctl_parse_options (command, NULL, &argc, &argv, 1, 1, error)
      || !check_stream_name (argv[1], error)
      || !ctl_require_service (ctl, "streams show", error))
    return FALSE;
  info = stream_get (ctl, argv[1], error);
  if (info == NULL)
    return FALSE;
  ctl_print_json (info, TRUE);
  return TRUE;
}

/* --- offsets ------------------------------------------------------------------------- */

static char *
offsets_path (const char *stream, const char *group)
{
  g_autofree char *s = ctl_escape (stream);
  g_autofree char *g = ctl_escape (group);

  return g_strdup_printf ("/%s/consumergroups/%s/offsets", s, g);
}

static gboolean
offsets_show (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autofree char *path = NULL;
  g_autofree char *subject = NULL;
  g_autoptr (JsonNode) answer = NULL;

  if (!ctl_parse_options (command, NULL, &argc, &argv, 2, 2, error)
      || !check_stream_name (argv[1], error)
      || !ctl_require_service (ctl, "offsets show", error))
    return FALSE;
  path = offsets_path (argv[1], argv[2]);
  subject = g_strdup_printf ("consumer group '%s' of stream '%s'", argv[2], argv[1]);
  CtlRequest request = { .method = "GET", .path = path, .subject = subject };
  answer = ctl_call (ctl, &request, error);
  if (answer == NULL)
    return FALSE;
  ctl_print_json (answer, TRUE);
  return TRUE;
}

static gboolean
offsets_commit (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autofree char *path = NULL;
  g_autofree char *subject = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (JsonNode) answer = NULL;
  gint64 partition, offset;

  if (!ctl_parse_options (command, NULL, &argc, &argv, 4, 4, error)
      || !check_stream_name (argv[1], error))
    return FALSE;
  if (!g_ascii_string_to_signed (argv[3], 10, 0, G_MAXINT32, &partition, NULL))
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   "PARTITION is a number from 0 (value '%s')", argv[3]);
      return FALSE;
    }
  if (!parse_offset (argv[4], "OFFSET", &offset, error)
      || !ctl_require_service (ctl, "offsets commit", error))
    return FALSE;

  text = g_strdup_printf ("[{\"partition\":%" G_GINT64_FORMAT ",\"offset\":%" G_GINT64_FORMAT
                          "}]", partition, offset);
  body = g_bytes_new_take (text, strlen (text));
  text = NULL;
  path = offsets_path (argv[1], argv[2]);
  subject = g_strdup_printf ("consumer group '%s' of stream '%s'", argv[2], argv[1]);
  CtlRequest request = {
    .method = "POST", .path = path, .subject = subject,
    .content_type = "application/json", .body = body,
  };
  answer = ctl_call (ctl, &request, error);
  if (answer == NULL)
    return FALSE;
  printf ("committed offset %" G_GINT64_FORMAT " of partition %" G_GINT64_FORMAT
          " for group '%s' of stream '%s'\n", offset, partition, argv[2], argv[1]);
  return TRUE;
}

const CtlCommand ctl_stream_commands[] = {
  { NULL, "send", "BODY|-",
    "Send telemetry as --device ID, or to --stream NAME",
    "BODY is the message; '-' reads it from stdin. As a device, sluicectl fetches the "
    "device's key from the registry with the service credentials and signs a device "
    "token (POST /devices/{id}/messages/events); to a stream it uses the policy's token "
    "(POST /{stream}/messages).", send_run },
  { NULL, "read", "STREAM", "Print a partition's records, one JSON object per line",
    "GET /{stream}/partitions/{p}/messages. With --follow it keeps long-polling and "
    "continues after the last offset printed.", read_run },
  { "streams", "show", "STREAM", "Print a stream's partitions and their bounds", NULL,
    streams_show },
  { "offsets", "show", "STREAM GROUP", "Print a consumer group's committed offsets", NULL,
    offsets_show },
  { "offsets", "commit", "STREAM GROUP PARTITION OFFSET",
    "Commit a consumer group's offset for one partition", NULL, offsets_commit },
  { NULL }
};
