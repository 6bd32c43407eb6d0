/* transport-https — IoT Hub's device paths: telemetry
 * (`POST /devices/{id}/messages/events`) and the registry
 * (`PUT|GET|DELETE /devices/{id}`, `GET /devices`).
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <string.h>

static char *
device_resource (HttpsTransport *t, const char *device_id)
{
  return g_strdup_printf ("%s/devices/%s", t->hostname, device_id);
}

static gboolean
check_device_id (SoupServerMessage *msg, const char *device_id)
{
  if (sluice_device_id_is_valid (device_id))
    return TRUE;
  https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, TRUE, "ArgumentInvalid",
                     "invalid device id '%s': 1-128 characters of A-Z a-z 0-9 - . %% _ * ? ! "
                     "( ) , : = @ $ '", device_id);
  return FALSE;
}

/* --- telemetry --- */

/* Set `name` to `value` in a name, value, ... list, replacing an earlier
 * one: system properties win over application properties of the same name,
 * so a device cannot pose as another with `iothub-app-iothub-connection-...`. */
static void
set_header (GPtrArray *headers, const char *name, const char *value)
{
  for (guint i = 0; i + 1 < headers->len; i += 2)
    if (g_ascii_strcasecmp (headers->pdata[i], name) == 0)
      {
        headers->pdata[i + 1] = (gpointer) value;
        return;
      }
  g_ptr_array_add (headers, (gpointer) name);
  g_ptr_array_add (headers, (gpointer) value);
}

/* The record headers of a telemetry request (borrowed strings: the request
 * headers and `auth_method`): application properties in their order, then
 * the system ones, where IoT Hub's own header (iothub-contenttype) wins over
 * the plain HTTP one (Content-Type). */
static GPtrArray *
telemetry_headers (SoupMessageHeaders *request, const char *device_id, const char *auth_method)
{
  GPtrArray *headers = g_ptr_array_new ();
  g_autoptr (GPtrArray) plain = g_ptr_array_new ();
  g_autoptr (GPtrArray) iothub = g_ptr_array_new ();
  SoupMessageHeadersIter it;
  const char *name, *value;

  soup_message_headers_iter_init (&it, request);
  while (soup_message_headers_iter_next (&it, &name, &value))
    {
      gboolean app;
      const char *record_name = https_device_header_name (name, &app);
      GPtrArray *to;

      if (!record_name)
        continue;
      to = app ? headers : g_ascii_strncasecmp (name, "iothub-", 7) == 0 ? iothub : plain;
      g_ptr_array_add (to, (gpointer) record_name);
      g_ptr_array_add (to, (gpointer) value);
    }
  for (guint i = 0; i < plain->len; i += 2)
    set_header (headers, plain->pdata[i], plain->pdata[i + 1]);
  for (guint i = 0; i < iothub->len; i += 2)
    set_header (headers, iothub->pdata[i], iothub->pdata[i + 1]);
  set_header (headers, "iothub-connection-device-id", device_id);
  set_header (headers, "iothub-connection-auth-method", auth_method);
  g_ptr_array_add (headers, NULL);
  return headers;
}

void
https_handle_device_events (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route)
{
  HttpsTransport *t = server->transport;
  g_autoptr (GError) error = NULL;
  g_autoptr (SluicePrincipal) principal = NULL;
  g_autoptr (GPtrArray) headers = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autofree char *resource = NULL;
  g_autofree char *auth_method = NULL;
  HttpsRequest *request;

  if (!check_device_id (msg, route->device_id))
    return;
  resource = device_resource (t, route->device_id);
  principal = https_authenticate (server, msg, resource, &error);
  if (!principal
      || !sluice_host_authorize (t->host, principal, SLUICE_ACTION_DEVICE_SEND,
                                 route->device_id, &error))
    {
      https_reply_gerror (msg, TRUE, error);
      return;
    }

  /* As IoT Hub stamps it on every message. */
  auth_method = g_strdup_printf ("{\"scope\":\"%s\",\"type\":\"%s\",\"issuer\":\"iothub\"}",
                                 sluice_principal_get_kind (principal) == SLUICE_PRINCIPAL_DEVICE
                                   ? "device" : "hub",
                                 sluice_principal_get_auth_method (principal));
  headers = telemetry_headers (soup_server_message_get_request_headers (msg), route->device_id,
                               auth_method);
  body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  request = https_request_new (server, msg, route, principal);
  if (!https_batch_add (server, request, "events", request->route.device_id,
                        (const char *const *) headers->pdata, body, &error))
    {
      https_reply_gerror (msg, TRUE, error);
      https_request_finish (request);
    }
}

/* --- registry --- */

static void
reply_device (SoupServerMessage *msg, const SluiceDevice *device)
{
  g_autofree char *etag = g_strdup_printf ("\"%s\"", device->etag ? device->etag : "");

  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "ETag", etag);
  https_reply_json (msg, SOUP_STATUS_OK, sluice_device_to_json (device));
}

static void
put_done (SluiceDevice *device, const GError *error, gpointer data)
{
  HttpsRequest *request = data;

  if (error)
    https_reply_gerror (request->msg, TRUE, error);
  else
    reply_device (request->msg, device);
  if (device)
    sluice_device_free (device);
  https_request_finish (request);
}

static void
delete_done (const GError *error, gpointer data)
{
  HttpsRequest *request = data;

  if (error)
    https_reply_gerror (request->msg, TRUE, error);
  else
    https_reply_empty (request->msg, SOUP_STATUS_NO_CONTENT);
  https_request_finish (request);
}

static void
registry_put (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route,
              SluicePrincipal *principal)
{
  HttpsTransport *t = server->transport;
  g_autoptr (GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  const char *if_match = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                       "If-Match");
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceDevice) device = NULL;
  gsize len = 0;
  const char *data = g_bytes_get_data (body, &len);
  HttpsRequest *request;

  device = sluice_device_from_json (data ? data : "", (gssize) len, &error);
  if (!device)
    {
      https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, TRUE, "ArgumentInvalid",
                         "the device JSON is not valid: %s", error->message);
      return;
    }
  if (!device->device_id)
    device->device_id = g_strdup (route->device_id);
  else if (!g_str_equal (device->device_id, route->device_id))
    {
      https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, TRUE, "ArgumentInvalid",
                         "deviceId '%s' in the body is not the device '%s' of the path",
                         device->device_id, route->device_id);
      return;
    }
  request = https_request_new (server, msg, route, principal);
  sluice_host_registry_put (t->host, principal, device, if_match, put_done, request);
}

void
https_handle_registry (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route)
{
  HttpsTransport *t = server->transport;
  const char *method = soup_server_message_get_method (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (SluicePrincipal) principal = NULL;
  g_autofree char *resource = NULL;

  if (!check_device_id (msg, route->device_id))
    return;
  resource = device_resource (t, route->device_id);
  principal = https_authenticate (server, msg, resource, &error);
  if (!principal)
    {
      https_reply_gerror (msg, TRUE, error);
      return;
    }

  if (g_str_equal (method, "GET"))
    {
      g_autoptr (SluiceDevice) device = NULL;

      if (!sluice_host_authorize (t->host, principal, SLUICE_ACTION_REGISTRY_READ,
                                  route->device_id, &error))
        https_reply_gerror (msg, TRUE, error);
      else if (!(device = sluice_host_registry_lookup (t->host, route->device_id)))
        https_reply_error (msg, SOUP_STATUS_NOT_FOUND, TRUE, "DeviceNotFound",
                           "device '%s' does not exist", route->device_id);
      else
        reply_device (msg, device);
    }
  else if (g_str_equal (method, "PUT"))
    registry_put (server, msg, route, principal);
  else
    {
      const char *if_match = soup_message_headers_get_one (
        soup_server_message_get_request_headers (msg), "If-Match");
      HttpsRequest *request = https_request_new (server, msg, route, principal);

      sluice_host_registry_delete (t->host, principal, request->route.device_id, if_match,
                                   delete_done, request);
    }
}

void
https_handle_registry_list (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route,
                            GHashTable *query)
{
  HttpsTransport *t = server->transport;
  g_autoptr (GError) error = NULL;
  g_autoptr (SluicePrincipal) principal = NULL;
  g_autoptr (GPtrArray) devices = NULL;
  g_autofree char *resource = g_strdup_printf ("%s/devices", t->hostname);
  const char *top_text = query ? g_hash_table_lookup (query, "top") : NULL;
  gint64 top = G_MAXINT64;
  GString *out;

  /* IoT Hub's `top` caps the count (its maximum is 1000). */
  if (top_text && !https_parse_int (top_text, 1, 1000, &top))
    {
      https_reply_error (msg, SOUP_STATUS_BAD_REQUEST, TRUE, "ArgumentInvalid",
                         "top must be an integer from 1 to 1000 (got '%s')", top_text);
      return;
    }
  principal = https_authenticate (server, msg, resource, &error);
  if (!principal || !(devices = sluice_host_registry_list (t->host, principal, &error)))
    {
      https_reply_gerror (msg, TRUE, error);
      return;
    }
  out = g_string_new ("[");
  for (guint i = 0; i < devices->len && (gint64) i < top; i++)
    {
      g_autofree char *json = sluice_device_to_json (devices->pdata[i]);

      if (i > 0)
        g_string_append_c (out, ',');
      g_string_append (out, json);
    }
  g_string_append_c (out, ']');
  https_reply_json (msg, SOUP_STATUS_OK, g_string_free (out, FALSE));
}
