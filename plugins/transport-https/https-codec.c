/* transport-https — routes, JSON in and out, header mapping (no I/O).
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-codec.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <time.h>

/* --- routes --- */

static gboolean
seg_is (const char *seg, const char *name)
{
  return g_ascii_strcasecmp (seg, name) == 0;
}

static void
route_set (HttpsRoute *route, HttpsRouteKind kind, const char *methods)
{
  route->kind = kind;
  route->methods = methods;
}

static void
route_not_implemented (HttpsRoute *route, const char *feature)
{
  route->kind = HTTPS_ROUTE_NOT_IMPLEMENTED;
  route->feature = feature;
  route->methods = NULL;
}

static void
route_device (HttpsRoute *route, char **seg, guint n)
{
  route->iothub = TRUE;
  if (n == 1)
    {
      route_set (route, HTTPS_ROUTE_DEVICES, "GET");
      return;
    }
  route->device_id = g_strdup (seg[1]);
  if (n == 2)
    {
      route_set (route, HTTPS_ROUTE_DEVICE, "GET, PUT, DELETE");
      return;
    }
  if (seg_is (seg[2], "messages") && n == 4 && seg_is (seg[3], "events"))
    route_set (route, HTTPS_ROUTE_DEVICE_EVENTS, "POST");
  else if (seg_is (seg[2], "messages") && n >= 4 && seg_is (seg[3], "devicebound"))
    route_not_implemented (route, "cloud-to-device messages");
  else if (seg_is (seg[2], "files"))
    route_not_implemented (route, "file upload");
  else if (seg_is (seg[2], "modules"))
    route_not_implemented (route, "modules");
  else if (seg_is (seg[2], "twin") || seg_is (seg[2], "twins"))
    route_not_implemented (route, "device twins");
  else if (seg_is (seg[2], "methods"))
    route_not_implemented (route, "direct methods");
  else
    route->feature = "device path";
}

static void
route_stream (HttpsRoute *route, char **seg, guint n)
{
  gint64 partition;

  if (!sluice_stream_name_is_valid (seg[0]))
    {
      route->feature = "stream";
      return;
    }
  route->stream = g_strdup (seg[0]);
  if (n == 1)
    route_set (route, HTTPS_ROUTE_STREAM, "GET");
  else if (n == 2 && seg_is (seg[1], "messages"))
    route_set (route, HTTPS_ROUTE_STREAM_SEND, "POST");
  else if (n == 4 && seg_is (seg[1], "partitions") && seg_is (seg[3], "messages"))
    {
      if (https_parse_int (seg[2], 0, G_MAXINT32, &partition))
        {
          route->partition = (gint32) partition;
          route_set (route, HTTPS_ROUTE_STREAM_PARTITION, "GET, POST");
        }
      else
        route->feature = "partition";
    }
  else if (n == 4 && seg_is (seg[1], "consumergroups") && seg_is (seg[3], "offsets"))
    {
      route->group = g_strdup (seg[2]);
      route_set (route, HTTPS_ROUTE_GROUP_OFFSETS, "GET, POST");
    }
  else
    route->feature = "stream path";
}

void
https_route_parse (const char *path, HttpsRoute *route)
{
  g_auto (GStrv) parts = g_strsplit (path ? path : "", "/", -1);
  g_autofree char **seg = g_new0 (char *, g_strv_length (parts) + 1);
  guint n = 0;

  memset (route, 0, sizeof *route);
  route->partition = -1;
  route->feature = "path";
  for (guint i = 0; parts[i]; i++)
    if (parts[i][0] != '\0')
      seg[n++] = parts[i];
  if (n == 0)
    return;

  /* Reserved first segments (WIRE.md) are never streams. */
  if (seg_is (seg[0], "healthz"))
    {
      if (n == 1)
        route_set (route, HTTPS_ROUTE_HEALTHZ, "GET, HEAD");
    }
  else if (seg_is (seg[0], "metrics"))
    {
      if (n == 1)
        route_set (route, HTTPS_ROUTE_METRICS, "GET");
    }
  else if (seg_is (seg[0], "devices"))
    route_device (route, seg, n);
  else if (seg_is (seg[0], "twins"))
    {
      route->iothub = TRUE;
      route_not_implemented (route, n >= 3 && seg_is (seg[2], "methods") ? "direct methods"
                                                                       : "device twins");
    }
  else if (seg_is (seg[0], "jobs"))
    {
      route->iothub = TRUE;
      route_not_implemented (route, "jobs");
    }
  else if (seg_is (seg[0], "files"))
    {
      route->iothub = TRUE;
      route_not_implemented (route, "file upload notifications");
    }
  else if (seg_is (seg[0], "messages"))
    {
      route->iothub = TRUE;
      route_not_implemented (route, "service-bound messages");
    }
  else if (seg_is (seg[0], "$iothub") || seg_is (seg[0], "$servicebus"))
    route_not_implemented (route, "WebSocket transports");
  else
    route_stream (route, seg, n);
}

void
https_route_clear (HttpsRoute *route)
{
  g_clear_pointer (&route->device_id, g_free);
  g_clear_pointer (&route->stream, g_free);
  g_clear_pointer (&route->group, g_free);
}

gboolean
https_route_allows (const HttpsRoute *route, const char *method)
{
  const char *m = route->methods;
  gsize n = strlen (method);

  while (m && *m)
    {
      if (strncmp (m, method, n) == 0 && (m[n] == ',' || m[n] == '\0'))
        return TRUE;
      m = strchr (m, ',');
      if (m)
        m += strspn (m, ", ");
    }
  return FALSE;
}

gboolean
https_group_name_is_valid (const char *name)
{
  gsize n = name ? strlen (name) : 0;

  if (n == 0 || n > 255)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == '/')
      return FALSE;
  return TRUE;
}

gboolean
https_parse_int (const char *text, gint64 min, gint64 max, gint64 *out)
{
  const char *p = text;
  gboolean negative = FALSE;
  guint64 v = 0;

  if (!p || !*p)
    return FALSE;
  if (*p == '-')
    {
      negative = TRUE;
      p++;
    }
  if (!*p || strlen (p) > 19)
    return FALSE;
  for (; *p; p++)
    {
      if (!g_ascii_isdigit (*p))
        return FALSE;
      v = v * 10 + (guint64) (*p - '0');
    }
  if (v > (guint64) G_MAXINT64)
    return FALSE;
  if ((negative ? -(gint64) v : (gint64) v) < min || (negative ? -(gint64) v : (gint64) v) > max)
    return FALSE;
  *out = negative ? -(gint64) v : (gint64) v;
  return TRUE;
}

/* --- JSON out --- */

void
https_format_time (gint64 ms, char buf[32])
{
  gint64 secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int millis = (int) (ms - secs * 1000);
  time_t t = (time_t) secs;
  struct tm tm;

  gmtime_r (&t, &tm);
  g_snprintf (buf, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
              tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

static void
append_escaped_valid (GString *out, const char *s, gsize len)
{
  static const char hex[] = "0123456789abcdef";
  gsize start = 0;

  g_string_append_c (out, '"');
  for (gsize i = 0; i < len; i++)
    {
      guchar c = (guchar) s[i];
      const char *esc = NULL;

      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      if (i > start)
        g_string_append_len (out, s + start, (gssize) (i - start));
      start = i + 1;
      switch (c)
        {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
      if (esc)
        g_string_append (out, esc);
      else
        {
          char u[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0 };
          g_string_append (out, u);
        }
    }
  if (len > start)
    g_string_append_len (out, s + start, (gssize) (len - start));
  g_string_append_c (out, '"');
}

/* NULs are fine in JSON strings (\u0000); everything between them must be
 * UTF-8. */
static gboolean
utf8_valid_with_nuls (const char *s, gsize n)
{
  for (gsize i = 0; i < n;)
    {
      gsize piece = strnlen (s + i, n - i);

      if (!g_utf8_validate_len (s + i, piece, NULL))
        return FALSE;
      i += piece + 1;
    }
  return TRUE;
}

void
https_json_append_string (GString *out, const char *data, gssize len)
{
  gsize n = len < 0 ? strlen (data) : (gsize) len;
  g_autofree char *fixed = NULL;

  if (utf8_valid_with_nuls (data, n))
    {
      append_escaped_valid (out, data, n);
      return;
    }
  fixed = g_utf8_make_valid (data, (gssize) n);
  append_escaped_valid (out, fixed, strlen (fixed));
}

/* UTF-8 without NULs reads as text; anything else is base64. */
static gboolean
is_text (const guint8 *data, gsize len)
{
  return g_utf8_validate_len ((const char *) data, len, NULL);
}

static void
append_bytes_member (GString *out, const char *name, const char *encoding_name,
                     const guint8 *data, gsize len)
{
  g_string_append_printf (out, ",\"%s\":", name);
  if (data == NULL)
    g_string_append (out, "null");
  else if (is_text (data, len))
    append_escaped_valid (out, (const char *) data, len);
  else
    {
      g_autofree char *b64 = g_base64_encode (data, len);
      g_string_append_printf (out, "\"%s\",\"%s\":\"base64\"", b64, encoding_name);
    }
}

void
https_json_append_record (GString *out, const SluiceRecordView *record)
{
  char when[32];

  https_format_time (record->timestamp, when);
  g_string_append_printf (out, "{\"offset\":%" G_GINT64_FORMAT ",\"enqueuedTime\":\"%s\"",
                          record->offset, when);
  append_bytes_member (out, "key", "keyEncoding", record->key, record->key_len);
  g_string_append (out, ",\"properties\":{");
  for (guint i = 0; i < record->n_headers; i++)
    {
      const SluiceHeaderView *h = &record->headers[i];

      if (i > 0)
        g_string_append_c (out, ',');
      https_json_append_string (out, (const char *) h->name, (gssize) h->name_len);
      g_string_append_c (out, ':');
      if (h->value == NULL)
        g_string_append (out, "null");
      else
        https_json_append_string (out, (const char *) h->value, (gssize) h->value_len);
    }
  g_string_append_c (out, '}');
  append_bytes_member (out, "body", "bodyEncoding", record->value, record->value_len);
  g_string_append_c (out, '}');
}

/* --- headers --- */

#define APP_PREFIX "iothub-app-"

const char *
https_device_header_name (const char *http_name, gboolean *app)
{
  static const struct {
    const char *http;
    const char *record;
  } fixed[] = {
    { "iothub-messageid", "message-id" },
    { "iothub-correlationid", "correlation-id" },
    { "iothub-contenttype", "content-type" },
    { "content-type", "content-type" },
    { "iothub-contentencoding", "content-encoding" },
    { "content-encoding", "content-encoding" },
    { "iothub-userid", "user-id" },
    { "iothub-to", "to" },
    { "iothub-expiry", "absolute-expiry-time" },
  };

  *app = FALSE;
  if (g_ascii_strncasecmp (http_name, APP_PREFIX, strlen (APP_PREFIX)) == 0)
    {
      if (http_name[strlen (APP_PREFIX)] == '\0')
        return NULL;
      *app = TRUE;
      return http_name + strlen (APP_PREFIX);
    }
  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    if (g_ascii_strcasecmp (http_name, fixed[i].http) == 0)
      return fixed[i].record;
  return NULL;
}

/* --- JSON in --- */

void
https_send_message_free (HttpsSendMessage *message)
{
  if (!message)
    return;
  g_clear_pointer (&message->body, g_bytes_unref);
  g_free (message->partition_key);
  g_ptr_array_unref (message->headers);
  g_free (message);
}

HttpsSendMessage *
https_send_message_new (void)
{
  HttpsSendMessage *m = g_new0 (HttpsSendMessage, 1);

  m->headers = g_ptr_array_new_with_free_func (g_free);
  return m;
}

void
https_send_message_set_header (HttpsSendMessage *m, const char *name, const char *value)
{
  for (guint i = 0; i + 1 < m->headers->len; i += 2)
    if (g_str_equal (m->headers->pdata[i], name))
      {
        g_free (m->headers->pdata[i + 1]);
        m->headers->pdata[i + 1] = g_strdup (value);
        return;
      }
  g_ptr_array_add (m->headers, g_strdup (name));
  g_ptr_array_add (m->headers, g_strdup (value));
}

/* Scalars as their text; objects and arrays as JSON. */
static char *
node_to_text (JsonNode *node)
{
  if (JSON_NODE_HOLDS_VALUE (node))
    {
      GType t = json_node_get_value_type (node);
      if (t == G_TYPE_STRING)
        return g_strdup (json_node_get_string (node));
      if (t == G_TYPE_INT64)
        return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
      if (t == G_TYPE_BOOLEAN)
        return g_strdup (json_node_get_boolean (node) ? "true" : "false");
      if (t == G_TYPE_DOUBLE)
        {
          char buf[G_ASCII_DTOSTR_BUF_SIZE];
          return g_strdup (g_ascii_dtostr (buf, sizeof buf, json_node_get_double (node)));
        }
    }
  if (JSON_NODE_HOLDS_NULL (node))
    return g_strdup ("");
  return json_to_string (node, FALSE);
}

static gboolean
apply_broker_object (HttpsSendMessage *m, JsonObject *o, GError **error)
{
  static const struct {
    const char *json;
    const char *record;
  } map[] = {
    { "MessageId", "message-id" },
    { "CorrelationId", "correlation-id" },
    { "ContentType", "content-type" },
    { "To", "to" },
  };
  JsonNode *pk = json_object_get_member (o, "PartitionKey");

  if (pk && !JSON_NODE_HOLDS_NULL (pk))
    {
      if (!JSON_NODE_HOLDS_VALUE (pk) || json_node_get_value_type (pk) != G_TYPE_STRING)
        {
          g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                               "BrokerProperties.PartitionKey must be a string");
          return FALSE;
        }
      g_free (m->partition_key);
      m->partition_key = g_strdup (json_node_get_string (pk));
    }
  for (guint i = 0; i < G_N_ELEMENTS (map); i++)
    {
      JsonNode *v = json_object_get_member (o, map[i].json);
      if (v && !JSON_NODE_HOLDS_NULL (v))
        {
          g_autofree char *text = node_to_text (v);
          https_send_message_set_header (m, map[i].record, text);
        }
    }
  return TRUE;
}

static JsonNode *
parse_json (const char *json, gsize len, const char *what, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local = NULL;
  JsonNode *root;

  if (!json_parser_load_from_data (parser, json, (gssize) len, &local))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s is not valid JSON: %s", what,
                   local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (!root)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s is empty", what);
      return NULL;
    }
  return json_node_ref (root);
}

gboolean
https_apply_broker_properties (HttpsSendMessage *message, const char *json, GError **error)
{
  g_autoptr (JsonNode) root = parse_json (json, strlen (json), "BrokerProperties", error);

  if (!root)
    return FALSE;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                           "BrokerProperties must be a JSON object");
      return FALSE;
    }
  return apply_broker_object (message, json_node_get_object (root), error);
}

static HttpsSendMessage *
parse_batch_member (JsonNode *node, guint index, GError **error)
{
  g_autoptr (HttpsSendMessage) m = https_send_message_new ();
  JsonObject *o;
  JsonNode *body, *user, *broker;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "batch message %u is not a JSON object", index);
      return NULL;
    }
  o = json_node_get_object (node);
  body = json_object_get_member (o, "Body");
  if (!body || JSON_NODE_HOLDS_NULL (body))
    m->body = g_bytes_new_static ("", 0);
  else
    {
      char *text = node_to_text (body);
      m->body = g_bytes_new_take (text, strlen (text));
    }
  user = json_object_get_member (o, "UserProperties");
  if (user && !JSON_NODE_HOLDS_NULL (user))
    {
      JsonObjectIter it;
      const char *name;
      JsonNode *value;

      if (!JSON_NODE_HOLDS_OBJECT (user))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "batch message %u: UserProperties must be a JSON object", index);
          return NULL;
        }
      json_object_iter_init (&it, json_node_get_object (user));
      while (json_object_iter_next (&it, &name, &value))
        {
          g_autofree char *text = node_to_text (value);
          https_send_message_set_header (m, name, text);
        }
    }
  broker = json_object_get_member (o, "BrokerProperties");
  if (broker && !JSON_NODE_HOLDS_NULL (broker))
    {
      if (!JSON_NODE_HOLDS_OBJECT (broker))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "batch message %u: BrokerProperties must be a JSON object", index);
          return NULL;
        }
      if (!apply_broker_object (m, json_node_get_object (broker), error))
        {
          g_prefix_error (error, "batch message %u: ", index);
          return NULL;
        }
    }
  return g_steal_pointer (&m);
}

GPtrArray *
https_parse_send_batch (const char *json, gsize len, GError **error)
{
  g_autoptr (JsonNode) root = parse_json (json, len, "the batch", error);
  g_autoptr (GPtrArray) messages = NULL;
  JsonArray *array;

  if (!root)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                           "a batch is a JSON array of {\"Body\", \"UserProperties\", "
                           "\"BrokerProperties\"} objects");
      return NULL;
    }
  array = json_node_get_array (root);
  if (json_array_get_length (array) == 0)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "the batch is empty");
      return NULL;
    }
  messages = g_ptr_array_new_with_free_func ((GDestroyNotify) https_send_message_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      HttpsSendMessage *m = parse_batch_member (json_array_get_element (array, i), i, error);
      if (!m)
        return NULL;
      g_ptr_array_add (messages, m);
    }
  return g_steal_pointer (&messages);
}

static gboolean
member_int (JsonObject *o, const char *name, gint64 min, gint64 *out)
{
  JsonNode *n = json_object_get_member (o, name);

  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return *out >= min;
}

GArray *
https_parse_offsets (const char *json, gsize len, GError **error)
{
  g_autoptr (JsonNode) root = parse_json (json, len, "the offsets", error);
  g_autoptr (GArray) offsets = NULL;
  JsonArray *array;

  if (!root)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                           "offsets are a JSON array of {\"partition\", \"offset\"} objects");
      return NULL;
    }
  array = json_node_get_array (root);
  offsets = g_array_new (FALSE, TRUE, sizeof (SluiceGroupOffset));
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      SluiceGroupOffset o = { 0, 0, NULL };
      gint64 partition, offset;

      if (!JSON_NODE_HOLDS_OBJECT (node)
          || !member_int (json_node_get_object (node), "partition", 0, &partition)
          || partition > G_MAXINT32
          || !member_int (json_node_get_object (node), "offset", 0, &offset))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "offsets[%u] needs an integer \"partition\" and a non-negative "
                       "integer \"offset\"", i);
          return NULL;
        }
      o.partition = (gint32) partition;
      o.offset = offset;
      g_array_append_val (offsets, o);
    }
  if (offsets->len == 0)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "no offsets given");
      return NULL;
    }
  return g_steal_pointer (&offsets);
}

char *
https_offsets_to_json (const GArray *offsets)
{
  GString *out = g_string_new ("[");

  for (guint i = 0; i < offsets->len; i++)
    {
      const SluiceGroupOffset *o = &g_array_index (offsets, SluiceGroupOffset, i);

      g_string_append_printf (out, "%s{\"partition\":%d,\"offset\":%" G_GINT64_FORMAT,
                              i ? "," : "", o->partition, o->offset);
      if (o->metadata)
        {
          g_string_append (out, ",\"metadata\":");
          https_json_append_string (out, o->metadata, -1);
        }
      g_string_append_c (out, '}');
    }
  g_string_append_c (out, ']');
  return g_string_free (out, FALSE);
}
