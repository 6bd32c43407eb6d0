/* sluicectl — device commands (the registry: PUT|GET|DELETE /devices/{id},
 * GET /devices), device connection strings and SAS tokens.
 * SPDX-License-Identifier: Apache-2.0 */
#include "sluicectl-private.h"

#include <stdio.h>
#include <string.h>

#define API_VERSION "api-version=2021-04-12"

/* WIRE.md: 1–128 characters of [A-Za-z0-9-.%_*?!(),:=@$']. Checked here so
 * that a typo is a usage error, not a round trip. */
static gboolean
check_device_id (const char *id, GError **error)
{
  gsize len = strlen (id);

  if (len == 0 || len > 128)
    goto bad;
  for (const char *p = id; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("-.%_*?!(),:=@$'", *p) == NULL)
      goto bad;
  return TRUE;

bad:
  g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
               "bad device id '%s': 1 to 128 characters of A-Z a-z 0-9 - . %% _ * ? ! ( ) , : = @ $ '",
               id);
  return FALSE;
}

static gboolean
check_key_choice (const char *which, GError **error)
{
  if (g_strcmp0 (which, "primary") == 0 || g_strcmp0 (which, "secondary") == 0)
    return TRUE;
  g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
               "--key is primary or secondary (value '%s')", which);
  return FALSE;
}

static char *
device_path (const char *id)
{
  g_autofree char *escaped = ctl_escape (id);

  return g_strconcat ("/devices/", escaped, NULL);
}

/* PUT the device; the hub answers with the stored entry. (transfer full) */
static JsonNode *
device_put (Ctl *ctl, const char *id, JsonNode *device, const char *if_match,
            const char *if_none_match, GError **error)
{
  g_autofree char *path = device_path (id);
  g_autofree char *subject = g_strdup_printf ("device '%s'", id);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (GBytes) body = NULL;
  gsize len = 0;
  char *text;

  json_generator_set_root (generator, device);
  text = json_generator_to_data (generator, &len);
  body = g_bytes_new_take (text, len);

  CtlRequest request = {
    .method = "PUT", .path = path, .query = API_VERSION, .subject = subject,
    .content_type = "application/json", .body = body,
    .if_match = if_match, .if_none_match = if_none_match,
  };
  return ctl_call (ctl, &request, error);
}

/* If-Match wants the etag quoted; IoT Hub's device JSON has it bare. */
static char *
quoted_etag (JsonObject *device)
{
  const char *etag = json_object_get_string_member_with_default (device, "etag", NULL);

  if (etag == NULL || etag[0] == '\0')
    return NULL;
  if (etag[0] == '"' || g_str_has_prefix (etag, "W/\""))
    return g_strdup (etag);
  return g_strdup_printf ("\"%s\"", etag);
}

/* --- device create --------------------------------------------------------- */

static gboolean
device_create (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autofree char *primary = NULL;
  g_autofree char *secondary = NULL;
  gboolean disabled = FALSE;
  const GOptionEntry entries[] = {
    { "primary-key", 0, 0, G_OPTION_ARG_STRING, &primary,
      "Primary key (base64); with --secondary-key. Default: the hub generates both", "KEY" },
    { "secondary-key", 0, 0, G_OPTION_ARG_STRING, &secondary,
      "Secondary key (base64)", "KEY" },
    { "disabled", 0, 0, G_OPTION_ARG_NONE, &disabled, "Create it disabled", NULL },
    { NULL }
  };
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) device = NULL;
  g_autoptr (JsonNode) existing = NULL;
  g_autoptr (JsonNode) created = NULL;
  g_autoptr (GError) local = NULL;
  const char *id;

  if (!ctl_parse_options (command, entries, &argc, &argv, 1, 1, error))
    return FALSE;
  id = argv[1];
  if (!check_device_id (id, error))
    return FALSE;
  if ((primary == NULL) != (secondary == NULL))
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "give both --primary-key and --secondary-key, or neither "
                           "to have the hub generate them");
      return FALSE;
    }
  if (!ctl_require_service (ctl, "device create", error))
    return FALSE;

  /* A PUT replaces an existing device (and its keys): refuse instead. The
   * If-None-Match below closes the window for hubs that honour it. */
  existing = ctl_device_get (ctl, id, &local);
  if (existing != NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_SERVER,
                   "device '%s' already exists (use 'device show %s')", id, id);
      return FALSE;
    }
  if (!g_error_matches (local, CTL_ERROR, CTL_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "deviceId");
  json_builder_add_string_value (builder, id);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, disabled ? "disabled" : "enabled");
  json_builder_set_member_name (builder, "authentication");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "sas");
  if (primary != NULL)
    {
      json_builder_set_member_name (builder, "symmetricKey");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "primaryKey");
      json_builder_add_string_value (builder, primary);
      json_builder_set_member_name (builder, "secondaryKey");
      json_builder_add_string_value (builder, secondary);
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  device = json_builder_get_root (builder);

  created = device_put (ctl, id, device, NULL, "*", error);
  if (created == NULL)
    return FALSE;
  ctl_print_json (created, TRUE);
  return TRUE;
}

/* --- device list / show --------------------------------------------------------- */

static gboolean
device_list (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  gboolean as_json = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, "Print the hub's JSON array", NULL },
    { NULL }
  };
  g_autoptr (JsonNode) list = NULL;
  JsonArray *array;
  guint width = 0;

  if (!ctl_parse_options (command, entries, &argc, &argv, 0, 0, error)
      || !ctl_require_service (ctl, "device list", error))
    return FALSE;

  CtlRequest request = {
    .method = "GET", .path = "/devices", .query = API_VERSION, .subject = "the device list",
  };
  list = ctl_call (ctl, &request, error);
  if (list == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_ARRAY (list))
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_SERVER,
                           "the device list: the hub's answer is not a JSON array");
      return FALSE;
    }
  if (as_json)
    {
      ctl_print_json (list, TRUE);
      return TRUE;
    }

  /* One line per device: id, status and why, aligned. */
  array = json_node_get_array (list);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      const char *id;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      id = json_object_get_string_member_with_default (json_node_get_object (node),
                                                       "deviceId", "");
      width = MAX (width, (guint) strlen (id));
    }
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      JsonObject *device;
      const char *reason;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      device = json_node_get_object (node);
      reason = json_object_get_string_member_with_default (device, "statusReason", NULL);
      printf ("%-*s  %s%s%s\n", (int) width,
              json_object_get_string_member_with_default (device, "deviceId", ""),
              json_object_get_string_member_with_default (device, "status", "?"),
              reason != NULL && reason[0] != '\0' ? "  " : "",
              reason != NULL ? reason : "");
    }
  return TRUE;
}

static gboolean
device_show (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autoptr (JsonNode) device = NULL;

  if (!ctl_parse_options (command, NULL, &argc, &argv, 1, 1, error)
      || !check_device_id (argv[1], error)
      || !ctl_require_service (ctl, "device show", error))
    return FALSE;
  device = ctl_device_get (ctl, argv[1], error);
  if (device == NULL)
    return FALSE;
  ctl_print_json (device, TRUE);
  return TRUE;
}

/* --- device enable / disable ------------------------------------------------------ */

static gboolean
set_status (Ctl *ctl, const char *id, gboolean enabled, const char *reason, GError **error)
{
  g_autoptr (JsonNode) device = NULL;
  g_autoptr (JsonNode) stored = NULL;
  g_autofree char *etag = NULL;
  JsonObject *object;

  device = ctl_device_get (ctl, id, error);
  if (device == NULL)
    return FALSE;

  /* Read, change, write back under the etag: a concurrent change to the
   * device (a key rotation) is not silently undone. */
  object = json_node_get_object (device);
  etag = quoted_etag (object);
  json_object_set_string_member (object, "status", enabled ? "enabled" : "disabled");
  if (reason != NULL)
    json_object_set_string_member (object, "statusReason", reason);
  else if (json_object_has_member (object, "statusReason"))
    json_object_remove_member (object, "statusReason");

  stored = device_put (ctl, id, device, etag, NULL, error);
  if (stored == NULL)
    return FALSE;
  printf ("device '%s' %s\n", id, enabled ? "enabled" : "disabled");
  return TRUE;
}

static gboolean
device_enable (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  if (!ctl_parse_options (command, NULL, &argc, &argv, 1, 1, error)
      || !check_device_id (argv[1], error)
      || !ctl_require_service (ctl, "device enable", error))
    return FALSE;
  return set_status (ctl, argv[1], TRUE, NULL, error);
}

static gboolean
device_disable (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autofree char *reason = NULL;
  const GOptionEntry entries[] = {
    { "reason", 0, 0, G_OPTION_ARG_STRING, &reason, "Why (kept as statusReason)", "TEXT" },
    { NULL }
  };

  if (!ctl_parse_options (command, entries, &argc, &argv, 1, 1, error)
      || !check_device_id (argv[1], error)
      || !ctl_require_service (ctl, "device disable", error))
    return FALSE;
  return set_status (ctl, argv[1], FALSE, reason, error);
}

/* --- device delete ------------------------------------------------------------------ */

static gboolean
device_delete (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autofree char *path = NULL;
  g_autofree char *subject = NULL;
  g_autoptr (JsonNode) answer = NULL;

  if (!ctl_parse_options (command, NULL, &argc, &argv, 1, 1, error)
      || !check_device_id (argv[1], error)
      || !ctl_require_service (ctl, "device delete", error))
    return FALSE;

  path = device_path (argv[1]);
  subject = g_strdup_printf ("device '%s'", argv[1]);
  CtlRequest request = {
    .method = "DELETE", .path = path, .query = API_VERSION, .subject = subject,
  };
  answer = ctl_call (ctl, &request, error);
  if (answer == NULL)
    return FALSE;
  printf ("device '%s' deleted\n", argv[1]);
  return TRUE;
}

/* --- device connection-string ----------------------------------------------------------- */

static gboolean
device_connection_string (Ctl *ctl, const CtlCommand *command, int argc, char **argv,
                          GError **error)
{
  g_autofree char *which = NULL;
  g_autofree char *key = NULL;
  const GOptionEntry entries[] = {
    { "key", 0, 0, G_OPTION_ARG_STRING, &which, "Which key: primary (default) or secondary",
      "primary|secondary" },
    { NULL }
  };

  if (!ctl_parse_options (command, entries, &argc, &argv, 1, 1, error)
      || !check_device_id (argv[1], error)
      || (which != NULL && !check_key_choice (which, error))
      || !ctl_require_service (ctl, "device connection-string", error))
    return FALSE;

  key = ctl_device_key_lookup (ctl, argv[1], which != NULL ? which : "primary", error);
  if (key == NULL)
    return FALSE;
  printf ("HostName=%s;DeviceId=%s;SharedAccessKey=%s\n", ctl->host_name, argv[1], key);
  return TRUE;
}

/* --- token ---------------------------------------------------------------------------- */

static gboolean
token_run (Ctl *ctl, const CtlCommand *command, int argc, char **argv, GError **error)
{
  g_autofree char *resource = NULL;
  g_autofree char *ttl_text = NULL;
  g_autofree char *device_id = NULL;
  g_autofree char *which = NULL;
  g_autofree char *key = NULL;
  g_autofree char *token = NULL;
  g_autofree char *default_resource = NULL;
  gboolean policy = FALSE;
  gint64 ttl = 3600;
  const GOptionEntry entries[] = {
    { "resource", 0, 0, G_OPTION_ARG_STRING, &resource,
      "What the token grants (sr); default {HostName} for the policy, "
      "{HostName}/devices/{ID} for a device", "R" },
    { "ttl", 0, 0, G_OPTION_ARG_STRING, &ttl_text, "Lifetime (default 3600s; s, m, h, d)",
      "DURATION" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_id,
      "A token of this device, signed with its key from the registry", "ID" },
    { "policy", 0, 0, G_OPTION_ARG_NONE, &policy,
      "A token of the connection string's policy (the default)", NULL },
    { "key", 0, 0, G_OPTION_ARG_STRING, &which,
      "With --device: which key, primary (default) or secondary", "primary|secondary" },
    { NULL }
  };

  if (!ctl_parse_options (command, entries, &argc, &argv, 0, 0, error))
    return FALSE;
  if (device_id != NULL && policy)
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "--device and --policy exclude each other");
      return FALSE;
    }
  if ((device_id != NULL && !check_device_id (device_id, error))
      || (which != NULL && !check_key_choice (which, error))
      || (ttl_text != NULL && !ctl_parse_seconds (ttl_text, "--ttl", &ttl, error))
      || !ctl_resolve (ctl, error))
    return FALSE;
  if (resource != NULL && resource[0] == '\0')
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE, "--resource is empty");
      return FALSE;
    }

  /* A device connection string makes device tokens by default. */
  if (device_id == NULL && !policy && ctl->device_id != NULL)
    device_id = g_strdup (ctl->device_id);

  if (device_id != NULL)
    {
      key = ctl_device_key_lookup (ctl, device_id, which != NULL ? which : "primary", error);
      if (key == NULL)
        return FALSE;
      default_resource = g_strdup_printf ("%s/devices/%s", ctl->host_name, device_id);
      token = ctl_make_token (resource != NULL ? resource : default_resource, key, NULL, ttl,
                              error);
    }
  else
    {
      if (which != NULL)
        {
          g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                               "--key goes with --device");
          return FALSE;
        }
      if (!ctl_require_service (ctl, "token --policy", error))
        return FALSE;
      token = ctl_make_token (resource != NULL ? resource : ctl->host_name, ctl->key,
                              ctl->policy_name, ttl, error);
    }
  if (key != NULL)
    memset (key, 0, strlen (key));
  if (token == NULL)
    return FALSE;
  printf ("%s\n", token);
  return TRUE;
}

const CtlCommand ctl_device_commands[] = {
  { "device", "create", "ID", "Create a device (the hub generates keys unless given)",
    "Prints the device as stored, with its keys.", device_create },
  { "device", "list", NULL, "List the devices: id, status, reason", NULL, device_list },
  { "device", "show", "ID", "Print a device's registry entry (JSON)", NULL, device_show },
  { "device", "enable", "ID", "Let a device connect again", NULL, device_enable },
  { "device", "disable", "ID", "Refuse a device; its live sessions are closed",
    "The hub closes the device's open connections within a second.", device_disable },
  { "device", "delete", "ID", "Delete a device", NULL, device_delete },
  { "device", "connection-string", "ID", "Print a device connection string",
    "Prints HostName=..;DeviceId=..;SharedAccessKey=.. for device SDKs.",
    device_connection_string },
  { NULL, "token", NULL, "Print a SAS token (policy, or --device ID)",
    "IoT Hub-style tokens: the key is base64-decoded, sr is {HostName} with the policy "
    "name as skn, or {HostName}/devices/{ID} for a device. A --resource with a URI scheme "
    "(sb://host/stream) is signed Event Hubs style, with the key's text as the HMAC key.",
    token_run },
  { NULL }
};
