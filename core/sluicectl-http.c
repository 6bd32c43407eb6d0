/* sluicectl — HTTP calls to the hub and the error lines made from its
 * answers; device keys from the registry for device tokens.
 * SPDX-License-Identifier: Apache-2.0 */
#include "sluicectl-private.h"

#include <stdio.h>
#include <string.h>

/* --- HTTP -------------------------------------------------------------------- */

char *
ctl_escape (const char *segment)
{
  /* Device ids may hold `%`, `?`, `'`, `$`, ...: escape all but the
   * sub-delimiters a path segment may carry as they are. */
  return g_uri_escape_string (segment, "!$&'()*+,;=:@", FALSE);
}

static char *
tls_problem (GTlsCertificateFlags flags)
{
  g_autoptr (GString) text = g_string_new (NULL);
  static const struct
  {
    GTlsCertificateFlags flag;
    const char *words;
  } names[] = {
    { G_TLS_CERTIFICATE_UNKNOWN_CA, "signed by an unknown authority" },
    { G_TLS_CERTIFICATE_BAD_IDENTITY, "not issued for this host name" },
    { G_TLS_CERTIFICATE_NOT_ACTIVATED, "not valid yet" },
    { G_TLS_CERTIFICATE_EXPIRED, "expired" },
    { G_TLS_CERTIFICATE_REVOKED, "revoked" },
    { G_TLS_CERTIFICATE_INSECURE, "insecure" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (flags & names[i].flag)
      g_string_append_printf (text, "%s%s", text->len > 0 ? ", " : "", names[i].words);
  if (text->len == 0)
    g_string_append (text, "not acceptable");
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static void
set_network_error (Ctl *ctl, SoupMessage *message, GError *cause, GError **error)
{
  GTlsCertificateFlags flags = soup_message_get_tls_peer_certificate_errors (message);

  if (flags != 0 || g_error_matches (cause, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE))
    {
      g_autofree char *problem = tls_problem (flags);
      g_autofree char *host = g_uri_to_string_partial (soup_message_get_uri (message),
                                                       G_URI_HIDE_USERINFO);

      if (flags & G_TLS_CERTIFICATE_BAD_IDENTITY)
        g_set_error (error, CTL_ERROR, CTL_ERROR_NETWORK,
                     "the TLS certificate of %s is %s: the host in --url must be one the "
                     "certificate names", ctl->base_url, problem);
      else
        g_set_error (error, CTL_ERROR, CTL_ERROR_NETWORK,
                     "the TLS certificate of %s is %s: pass --cacert FILE (or set "
                     "SLUICE_CACERT) to trust it, e.g. {data-dir}/tls/dev-cert.pem",
                     ctl->base_url, problem);
      return;
    }
  if (g_error_matches (cause, G_TLS_ERROR, G_TLS_ERROR_UNAVAILABLE))
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_NETWORK,
                           "TLS is not available: install the Debian package glib-networking");
      return;
    }
  g_set_error (error, CTL_ERROR, CTL_ERROR_NETWORK,
               "cannot reach the hub at %s: %s (is sluiced running? set --url or SLUICE_URL)",
               ctl->base_url, cause->message);
}

/* The hub's error body: `{"Message","ErrorCode"}`, or IoT Hub's
 * `{"Message":"ErrorCode:DeviceNotFound;text","ExceptionMessage":..}`. */
static void
parse_error_body (GBytes *body, char **code, char **text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *data = body != NULL ? g_bytes_get_data (body, &len) : NULL;
  JsonObject *object;
  const char *message = NULL;

  *code = NULL;
  *text = NULL;
  if (data == NULL || len == 0)
    return;

  if (!json_parser_load_from_data (parser, data, len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      /* Not JSON (a proxy's page?): its first line, if it is short text. */
      g_autofree char *copy = g_strndup (data, MIN (len, 200));
      char *nl = strpbrk (copy, "\r\n");

      if (nl != NULL)
        *nl = '\0';
      if (g_utf8_validate (copy, -1, NULL) && copy[0] != '<')
        *text = g_strdup (g_strstrip (copy));
      return;
    }

  object = json_node_get_object (json_parser_get_root (parser));
  if (json_object_has_member (object, "ErrorCode"))
    *code = g_strdup (json_object_get_string_member_with_default (object, "ErrorCode", NULL));
  message = json_object_get_string_member_with_default (object, "Message", NULL);
  if (message == NULL)
    message = json_object_get_string_member_with_default (object, "message", NULL);
  if (message != NULL && g_str_has_prefix (message, "ErrorCode:"))
    {
      const char *start = message + strlen ("ErrorCode:");
      const char *semi = strchr (start, ';');

      if (*code == NULL)
        *code = semi != NULL ? g_strndup (start, semi - start) : g_strdup (start);
      message = semi != NULL ? semi + 1 : NULL;
    }
  if (message != NULL && message[0] != '\0')
    *text = g_strdup (message);
  else if (json_object_has_member (object, "ExceptionMessage"))
    *text = g_strdup (json_object_get_string_member_with_default (object, "ExceptionMessage",
                                                                  NULL));
  if (*code != NULL && (*code)[0] == '\0')
    g_clear_pointer (code, g_free);
  if (*text != NULL && (*text)[0] == '\0')
    g_clear_pointer (text, g_free);
}

static void
set_server_error (Ctl *ctl, const CtlRequest *request, SoupMessage *message, GBytes *body,
                  GError **error)
{
  guint status = soup_message_get_status (message);
  const char *reason = soup_message_get_reason_phrase (message);
  const char *subject = request->subject != NULL ? request->subject : "the request";
  g_autofree char *code = NULL;
  g_autofree char *text = NULL;
  g_autofree char *line = NULL;

  parse_error_body (body, &code, &text);
  /* IoT Hub also names the error in a header (kept when the body is not
   * JSON, e.g. from a HEAD or a proxy). */
  if (code == NULL)
    code = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (message),
                                                   "iothub-errorcode"));
  if (code == NULL)
    code = g_strdup (reason != NULL && reason[0] != '\0'
                     ? reason : soup_status_get_phrase (status));

  switch (status)
    {
    case SOUP_STATUS_NOT_FOUND:
      line = g_strdup_printf ("%s not found", subject);
      break;
    case SOUP_STATUS_UNAUTHORIZED:
      /* The hub says no more than "unauthorized" (it does not tell an
       * attacker which part was wrong); say what to check. */
      if (request->token == NULL)
        line = g_strdup_printf ("the hub refused policy '%s' for %s: check the connection "
                                "string's SharedAccessKeyName and SharedAccessKey",
                                ctl->policy_name, subject);
      else
        line = g_strdup_printf ("the hub refused the credentials of %s: is it disabled, "
                                "or was its key changed?", subject);
      break;
    case SOUP_STATUS_FORBIDDEN:
      line = g_strdup_printf ("access to %s denied: %s", subject,
                              text != NULL ? text : "the policy lacks the right");
      break;
    case SOUP_STATUS_CONFLICT:
      line = g_strdup_printf ("%s already exists%s%s", subject,
                              text != NULL ? ": " : "", text != NULL ? text : "");
      break;
    case SOUP_STATUS_PRECONDITION_FAILED:
      line = g_strdup_printf ("%s was changed meanwhile (etag mismatch); try again", subject);
      break;
    case SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE:
      line = g_strdup_printf ("%s: the message is too large for the hub", subject);
      break;
    case 429: /* Too Many Requests; libsoup 3.2 has no name for it */
      line = g_strdup_printf ("%s: the hub is throttling; try again later", subject);
      break;
    default:
      line = g_strdup_printf ("%s: %s", subject, text != NULL ? text : code);
      break;
    }

  g_set_error (error, CTL_ERROR,
               status == SOUP_STATUS_NOT_FOUND ? CTL_ERROR_NOT_FOUND : CTL_ERROR_SERVER,
               "%s (%u %s)", line, status, code);
}

static void
on_restarted (SoupMessage *message, gpointer data)
{
  const CtlRequest *request = data;

  /* A 303 redirect turns the request into a GET without a body: keep it so. */
  if (g_strcmp0 (soup_message_get_method (message), request->method) == 0)
    soup_message_set_request_body_from_bytes (message, request->content_type, request->body);
}

JsonNode *
ctl_call (Ctl *ctl, const CtlRequest *request, GError **error)
{
  const char *token = request->token;
  g_autofree char *url = NULL;
  g_autoptr (SoupMessage) message = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonParser) parser = NULL;
  SoupMessageHeaders *headers;
  gsize len = 0;
  const char *data;
  guint status;

  if (!ctl_resolve (ctl, error))
    return NULL;
  if (token == NULL && (token = ctl_service_token (ctl, error)) == NULL)
    return NULL;

  url = g_strconcat (ctl->base_url, request->path, request->query != NULL ? "?" : "",
                     request->query != NULL ? request->query : "", NULL);
  message = soup_message_new (request->method, url);
  if (message == NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE, "cannot make a URL of '%s'", url);
      return NULL;
    }

  headers = soup_message_get_request_headers (message);
  soup_message_headers_replace (headers, "Authorization", token);
  soup_message_headers_replace (headers, "Accept", "application/json");
  if (request->if_match != NULL)
    soup_message_headers_replace (headers, "If-Match", request->if_match);
  if (request->if_none_match != NULL)
    soup_message_headers_replace (headers, "If-None-Match", request->if_none_match);
  for (gsize i = 0; request->headers != NULL && request->headers[i] != NULL; i += 2)
    soup_message_headers_append (headers, request->headers[i], request->headers[i + 1]);
  if (request->body != NULL)
    {
      soup_message_set_request_body_from_bytes (message, request->content_type, request->body);
      /* libsoup 3.2 resends a request whose kept-alive connection turned
       * out closed, but with an empty body: give it the body again. */
      g_signal_connect (message, "restarted", G_CALLBACK (on_restarted), (gpointer) request);
    }

  g_debug ("%s %s", request->method, url);
  body = soup_session_send_and_read (ctl->session, message, NULL, &local);
  if (body == NULL)
    {
      set_network_error (ctl, message, local, error);
      return NULL;
    }

  status = soup_message_get_status (message);
  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      set_server_error (ctl, request, message, body, error);
      return NULL;
    }

  data = g_bytes_get_data (body, &len);
  if (data == NULL || len == 0)
    return json_node_new (JSON_NODE_NULL);

  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, data, len, &local))
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_SERVER,
                   "%s: the hub answered %u with a body that is not JSON: %s",
                   request->subject != NULL ? request->subject : url, status, local->message);
      return NULL;
    }
  return json_parser_steal_root (parser);
}

void
ctl_print_json (JsonNode *node, gboolean pretty)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_root (generator, node);
  json_generator_set_pretty (generator, pretty);
  json_generator_set_indent (generator, 2);
  text = json_generator_to_data (generator, NULL);
  fputs (text, stdout);
  fputc ('\n', stdout);
  /* `read --follow` is watched through pipes: each line now, not at exit. */
  fflush (stdout);
}

/* --- the registry: keys for device tokens ------------------------------------- */

JsonNode *
ctl_device_get (Ctl *ctl, const char *device_id, GError **error)
{
  g_autofree char *escaped = ctl_escape (device_id);
  g_autofree char *path = g_strconcat ("/devices/", escaped, NULL);
  g_autofree char *subject = g_strdup_printf ("device '%s'", device_id);
  CtlRequest request = {
    .method = "GET", .path = path, .query = "api-version=2021-04-12", .subject = subject,
  };
  g_autoptr (JsonNode) node = ctl_call (ctl, &request, error);

  if (node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_SERVER,
                   "device '%s': the hub's answer is not a device object", device_id);
      return NULL;
    }
  return g_steal_pointer (&node);
}

char *
ctl_device_key (JsonNode *device, const char *device_id, const char *which, GError **error)
{
  JsonObject *object = json_node_get_object (device);
  JsonObject *auth = NULL;
  JsonObject *symmetric = NULL;
  const char *member = g_str_equal (which, "secondary") ? "secondaryKey" : "primaryKey";
  const char *key = NULL;

  if (json_object_has_member (object, "authentication")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (object, "authentication")))
    auth = json_object_get_object_member (object, "authentication");
  if (auth != NULL && json_object_has_member (auth, "symmetricKey")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (auth, "symmetricKey")))
    symmetric = json_object_get_object_member (auth, "symmetricKey");
  if (symmetric != NULL)
    key = json_object_get_string_member_with_default (symmetric, member, NULL);
  if (key == NULL || key[0] == '\0')
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_SERVER,
                   "device '%s' has no %s symmetric key (is it an X.509 device?)",
                   device_id, which);
      return NULL;
    }
  return g_strdup (key);
}

char *
ctl_device_key_lookup (Ctl *ctl, const char *device_id, const char *which, GError **error)
{
  g_autoptr (JsonNode) device = NULL;

  if (!ctl_resolve (ctl, error))
    return NULL;
  /* A device connection string carries its own key: no registry needed. */
  if (ctl->device_id != NULL)
    {
      if (g_strcmp0 (ctl->device_id, device_id) != 0)
        {
          g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                       "the connection string is device '%s''s; it cannot act as device '%s'",
                       ctl->device_id, device_id);
          return NULL;
        }
      if (g_str_equal (which, "secondary"))
        {
          g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                               "a device connection string holds one key: leave out --key");
          return NULL;
        }
      return g_strdup (ctl->key);
    }

  device = ctl_device_get (ctl, device_id, error);
  if (device == NULL)
    return NULL;
  return ctl_device_key (device, device_id, which, error);
}
