/* transport-mqtt — IoT Hub's device topics (WIRE.md "MQTT"): telemetry on
 * `devices/{id}/messages/events/{property-bag}` into the `events` stream,
 * PUBACK once the append met the stream's durability policy. The C2D,
 * twin and method topics answer a clear SUBACK failure until the core's
 * device services exist; plain MQTT topics and QoS 2 are refused the same
 * way for now.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-transport.h"
#include "mqtt-topic.h"

#include <string.h>

#define EVENTS_STREAM "events"

/* --- pure helpers --- */

gboolean
mqtt_iothub_is_device_login (const char *username, const char *client_id)
{
  const char *rest;
  gsize id_len;

  const char *slash = client_id != NULL ? strchr (client_id, '/') : NULL;

  /* `{id}` or, for a module, `{id}/{module}`: neither part empty. */
  if (username == NULL || client_id == NULL || *client_id == '\0' || slash == client_id
      || (slash != NULL && (slash[1] == '\0' || strchr (slash + 1, '/') != NULL)))
    return FALSE;
  rest = strchr (username, '/');
  if (rest == NULL || rest == username)
    return FALSE;
  rest++;
  id_len = strlen (client_id);
  if (strncmp (rest, client_id, id_len) != 0)
    return FALSE;
  rest += id_len;
  /* `{host}/{id}`, `{host}/{id}/` or `{host}/{id}/?api-version=...`. */
  return *rest == '\0' || g_str_equal (rest, "/") || g_str_has_prefix (rest, "/?");
}

gboolean
mqtt_iothub_parse_events_topic (const char *topic, char **device_id, char **module_id,
                                const char **bag)
{
  const char *id_start, *id_end, *rest;
  const char *mod_start = NULL, *mod_end = NULL;

  if (!g_str_has_prefix (topic, "devices/"))
    return FALSE;
  id_start = topic + strlen ("devices/");
  id_end = strchr (id_start, '/');
  if (id_end == NULL || id_end == id_start)
    return FALSE;
  rest = id_end;
  if (g_str_has_prefix (rest, "/modules/"))
    {
      mod_start = rest + strlen ("/modules/");
      mod_end = strchr (mod_start, '/');
      if (mod_end == NULL || mod_end == mod_start)
        return FALSE;
      rest = mod_end;
    }
  if (!g_str_has_prefix (rest, "/messages/events"))
    return FALSE;
  rest += strlen ("/messages/events");
  if (*rest == '/')
    rest++;
  else if (*rest != '\0')
    return FALSE;                /* `/messages/eventsX` */
  *device_id = g_strndup (id_start, (gsize) (id_end - id_start));
  if (module_id != NULL)
    *module_id = mod_start != NULL ? g_strndup (mod_start, (gsize) (mod_end - mod_start)) : NULL;
  *bag = rest;
  return TRUE;
}

static const char *
system_property_name (const char *name)
{
  static const struct { const char *bag, *header; } map[] = {
    { "$.mid", "message-id" },
    { "$.cid", "correlation-id" },
    { "$.ct", "content-type" },
    { "$.ce", "content-encoding" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (map); i++)
    if (g_str_equal (name, map[i].bag))
      return map[i].header;
  return NULL;
}

gboolean
mqtt_iothub_parse_property_bag (const char *bag, GPtrArray *headers, GError **error)
{
  g_auto (GStrv) pairs = NULL;

  if (bag == NULL || *bag == '\0')
    return TRUE;
  pairs = g_strsplit (bag, "&", -1);
  for (guint i = 0; pairs[i] != NULL; i++)
    {
      const char *eq;
      g_autofree char *name = NULL;
      g_autofree char *value = NULL;

      if (*pairs[i] == '\0')
        continue;
      eq = strchr (pairs[i], '=');
      if (eq != NULL)
        {
          g_autofree char *raw_name = g_strndup (pairs[i], (gsize) (eq - pairs[i]));
          name = g_uri_unescape_string (raw_name, NULL);
          value = g_uri_unescape_string (eq + 1, NULL);
        }
      else
        {
          /* A name alone is a property with an empty value. */
          name = g_uri_unescape_string (pairs[i], NULL);
          value = g_strdup ("");
        }
      if (name == NULL || value == NULL || !g_utf8_validate (value, -1, NULL)
          || !g_utf8_validate (name, -1, NULL))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "property bag: bad escape or encoding in '%s'", pairs[i]);
          return FALSE;
        }
      if (*name == '\0')
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "property bag: empty property name in '%s'", pairs[i]);
          return FALSE;
        }
      if (g_str_has_prefix (name, "$."))
        {
          const char *header = system_property_name (name);

          /* Other system properties ($.to, $.exp, ...) are IoT Hub's to
           * set, not the device's. */
          if (header == NULL)
            continue;
          g_ptr_array_add (headers, g_strdup (header));
        }
      else
        g_ptr_array_add (headers, g_steal_pointer (&name));
      g_ptr_array_add (headers, g_steal_pointer (&value));
    }
  return TRUE;
}

/* Set `name` to `value` in a name, value, ... list of owned strings,
 * replacing an earlier one: the hub's own properties win over the device's,
 * so a device cannot pose as another. */
static void
set_header (GPtrArray *headers, const char *name, const char *value)
{
  for (guint i = 0; i + 1 < headers->len; i += 2)
    if (g_ascii_strcasecmp (headers->pdata[i], name) == 0)
      {
        g_free (headers->pdata[i + 1]);
        headers->pdata[i + 1] = g_strdup (value);
        return;
      }
  g_ptr_array_add (headers, g_strdup (name));
  g_ptr_array_add (headers, g_strdup (value));
}

static gboolean
has_header (GPtrArray *headers, const char *name)
{
  for (guint i = 0; i + 1 < headers->len; i += 2)
    if (g_ascii_strcasecmp (headers->pdata[i], name) == 0)
      return TRUE;
  return FALSE;
}

/* --- PUBLISH --- */

typedef struct {
  MqttTransport *transport;
  MqttPendingAck *ack;           /* NULL for QoS 0 */
  guint64 conn_id;
  char *device_id;
} PublishCtx;

static guint8
append_error_reason (const GError *error)
{
  if (error->domain == SLUICE_ERROR)
    switch (error->code)
      {
      case SLUICE_ERROR_FORBIDDEN:
      case SLUICE_ERROR_UNAUTHENTICATED:
        return MQTT_RC_NOT_AUTHORIZED;
      case SLUICE_ERROR_TOO_LARGE:
      case SLUICE_ERROR_THROTTLED:
        return MQTT_RC_QUOTA_EXCEEDED;
      default:
        break;
      }
  return MQTT_RC_UNSPECIFIED_ERROR;
}

static void
publish_done (const SluiceAppendResult *result, const GError *error, gpointer user_data)
{
  PublishCtx *ctx = user_data;

  if (error != NULL)
    {
      sluice_warning (ctx->transport->instance_name, "connection %" G_GUINT64_FORMAT
                      ": telemetry of device '%s' not appended: %s", ctx->conn_id,
                      ctx->device_id, error->message);
      sluice_counter_add (ctx->transport->refused, 1);
      if (ctx->ack != NULL)
        mqtt_pending_ack_complete (ctx->ack, append_error_reason (error), error->message,
                                   TRUE);
    }
  else if (ctx->ack != NULL)
    mqtt_pending_ack_complete (ctx->ack, MQTT_RC_SUCCESS, NULL, FALSE);
  g_free (ctx->device_id);
  g_free (ctx);
}

/* Refuse one PUBLISH: v5 answers a QoS 1 one with PUBACK `reason` (in
 * order) and a QoS 0 one with DISCONNECT `reason`; 3.1.1 can only close. */
static void
refuse_publish (MqttConn *conn, const MqttPacket *packet, guint8 reason, const char *why)
{
  MqttTransport *transport = mqtt_conn_get_transport (conn);

  sluice_counter_add (transport->refused, 1);
  if (mqtt_conn_get_version (conn) == MQTT_VERSION_5 && packet->publish.qos > 0)
    {
      sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT
                   ": PUBLISH to '%s' refused: %s", mqtt_conn_get_id (conn),
                   packet->publish.topic, why);
      mqtt_pending_ack_complete (mqtt_conn_queue_ack (conn, packet->publish.qos == 2
                                                              ? MQTT_PUBREC : MQTT_PUBACK,
                                                      packet->packet_id),
                                 reason, why, FALSE);
      return;
    }
  {
    g_autofree char *text = g_strdup_printf ("PUBLISH to '%s' refused: %s",
                                             packet->publish.topic, why);
    mqtt_conn_fail (conn, reason, text);
  }
}

void
mqtt_iothub_handle_publish (MqttConn *conn, const MqttPacket *packet, const char *topic)
{
  MqttTransport *transport = mqtt_conn_get_transport (conn);
  const MqttPublish *pub = &packet->publish;
  g_autofree char *device_id = NULL;
  g_autofree char *module_id = NULL;
  g_autoptr (GPtrArray) headers = NULL;
  g_autoptr (GError) error = NULL;
  const char *bag = NULL;
  PublishCtx *ctx;

  if (!mqtt_iothub_parse_events_topic (topic, &device_id, &module_id, &bag))
    {
      const char *why = g_str_has_prefix (topic, "$iothub/twin/")
                          ? "device twins are not implemented yet"
                        : g_str_has_prefix (topic, "$iothub/methods/")
                          ? "direct methods are not implemented yet"
                          : "not an IoT Hub device topic (telemetry goes to "
                            "devices/{id}/messages/events/)";
      refuse_publish (conn, packet, MQTT_RC_TOPIC_NAME_INVALID, why);
      return;
    }
  if (!sluice_host_authorize (transport->host, mqtt_conn_get_principal (conn),
                              SLUICE_ACTION_DEVICE_SEND, device_id, &error)
      || (mqtt_conn_get_device_id (conn) != NULL
          && !g_str_equal (mqtt_conn_get_device_id (conn), device_id))
      || g_strcmp0 (mqtt_conn_get_module_id (conn), module_id) != 0)
    {
      g_autofree char *why = module_id != NULL
        ? g_strdup_printf ("not authorized to send as module '%s' of device '%s'", module_id,
                           device_id)
        : g_strdup_printf ("not authorized to send as device '%s'", device_id);
      refuse_publish (conn, packet, MQTT_RC_NOT_AUTHORIZED, why);
      return;
    }

  headers = g_ptr_array_new_with_free_func (g_free);
  if (mqtt_props_has (&packet->props, MQTT_PROP_CONTENT_TYPE))
    {
      g_ptr_array_add (headers, g_strdup ("content-type"));
      g_ptr_array_add (headers, g_strdup (packet->props.content_type));
    }
  if (packet->props.user != NULL)
    for (guint i = 0; i < packet->props.user->len; i++)
      {
        MqttUserProperty *up = &g_array_index (packet->props.user, MqttUserProperty, i);
        g_ptr_array_add (headers, g_strdup (up->name));
        g_ptr_array_add (headers, g_strdup (up->value));
      }
  {
    g_autoptr (GPtrArray) bag_headers = g_ptr_array_new_with_free_func (g_free);

    if (!mqtt_iothub_parse_property_bag (bag, bag_headers, &error))
      {
        refuse_publish (conn, packet, MQTT_RC_TOPIC_NAME_INVALID, error->message);
        return;
      }
    /* The property bag is IoT Hub's way and wins over v5 properties. */
    for (guint i = 0; i + 1 < bag_headers->len; i += 2)
      {
        if (has_header (headers, bag_headers->pdata[i]))
          set_header (headers, bag_headers->pdata[i], bag_headers->pdata[i + 1]);
        else
          {
            g_ptr_array_add (headers, g_strdup (bag_headers->pdata[i]));
            g_ptr_array_add (headers, g_strdup (bag_headers->pdata[i + 1]));
          }
      }
  }
  set_header (headers, "iothub-connection-device-id", device_id);
  if (module_id != NULL)
    set_header (headers, "iothub-connection-module-id", module_id);
  set_header (headers, "iothub-connection-auth-method", mqtt_conn_get_auth_method (conn));
  set_header (headers, "mqtt-topic", topic);
  g_ptr_array_add (headers, NULL);

  sluice_counter_add (transport->messages_in[pub->qos], 1);
  ctx = g_new0 (PublishCtx, 1);
  ctx->transport = transport;
  ctx->conn_id = mqtt_conn_get_id (conn);
  ctx->device_id = g_strdup (device_id);
  if (pub->qos > 0)
    ctx->ack = mqtt_conn_queue_ack (conn, pub->qos == 2 ? MQTT_PUBREC : MQTT_PUBACK,
                                    packet->packet_id);
  sluice_host_publish (transport->host, mqtt_conn_get_principal (conn), EVENTS_STREAM, -1,
                       device_id, (const char *const *) headers->pdata, pub->payload,
                       publish_done, ctx);
}

/* --- SUBSCRIBE --- */

gboolean
mqtt_iothub_is_service_topic (const char *filter)
{
  return (g_str_has_prefix (filter, "devices/")
          && strstr (filter, "/messages/devicebound") != NULL)
         || g_str_has_prefix (filter, "$iothub/");
}

guint8
mqtt_iothub_subscribe_reason (MqttConn *conn, const MqttSubscription *sub,
                              const char **reason_string)
{
  MqttTransport *transport = mqtt_conn_get_transport (conn);
  const char *filter = sub->filter;

  if (g_str_has_prefix (filter, "devices/") && strstr (filter, "/messages/devicebound") != NULL)
    *reason_string = "cloud-to-device messages are not implemented yet";
  else if (g_str_has_prefix (filter, "$iothub/twin/"))
    *reason_string = "device twins are not implemented yet";
  else if (g_str_has_prefix (filter, "$iothub/methods/"))
    *reason_string = "direct methods are not implemented yet";
  else
    *reason_string = "not an IoT Hub topic a device subscribes to";
  sluice_counter_add (transport->refused, 1);
  return MQTT_RC_IMPLEMENTATION_SPECIFIC;
}
