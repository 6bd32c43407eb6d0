/* Sluice core — the device registry: IoT Hub's device JSON, kept in the
 * storage KV under `devices/{id}` and cached in memory so that auth plugins
 * can look devices up without blocking.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#include <json-glib/json-glib.h>
#include <sys/random.h>

#define DEVICE_KV_PREFIX "devices/"

/* --- names --- */

gboolean
sluice_device_id_is_valid (const char *id)
{
  gsize n;

  if (!id)
    return FALSE;
  n = strlen (id);
  if (n < 1 || n > 128)
    return FALSE;
  for (const char *c = id; *c; c++)
    if (!g_ascii_isalnum (*c) && !strchr ("-.%_*?!(),:=@$'", *c))
      return FALSE;
  return TRUE;
}

gboolean
sluice_stream_name_is_valid (const char *name)
{
  /* One rule, with the reasons, lives beside the config parser. */
  return sluice_config_stream_name_check (name, NULL);
}

/* --- SluiceDevice --- */

SluiceDevice *
sluice_device_new (const char *device_id)
{
  SluiceDevice *d = g_new0 (SluiceDevice, 1);
  d->device_id = g_strdup (device_id);
  d->enabled = TRUE;
  d->auth_type = g_strdup ("sas");
  return d;
}

SluiceDevice *
sluice_device_copy (const SluiceDevice *s)
{
  SluiceDevice *d = g_new0 (SluiceDevice, 1);

  *d = *s;
  d->device_id = g_strdup (s->device_id);
  d->generation_id = g_strdup (s->generation_id);
  d->etag = g_strdup (s->etag);
  d->status_reason = g_strdup (s->status_reason);
  d->auth_type = g_strdup (s->auth_type);
  d->primary_key = g_strdup (s->primary_key);
  d->secondary_key = g_strdup (s->secondary_key);
  d->primary_thumbprint = g_strdup (s->primary_thumbprint);
  d->secondary_thumbprint = g_strdup (s->secondary_thumbprint);
  return d;
}

void
sluice_device_free (SluiceDevice *d)
{
  if (!d)
    return;
  g_free (d->device_id);
  g_free (d->generation_id);
  g_free (d->etag);
  g_free (d->status_reason);
  g_free (d->auth_type);
  g_free (d->primary_key);
  g_free (d->secondary_key);
  g_free (d->primary_thumbprint);
  g_free (d->secondary_thumbprint);
  g_free (d);
}

static char *
iso_time (gint64 ms)
{
  g_autoptr (GDateTime) base = NULL;
  g_autoptr (GDateTime) t = NULL;

  if (ms <= 0)
    return g_strdup ("0001-01-01T00:00:00Z");
  base = g_date_time_new_from_unix_utc (ms / 1000);
  t = g_date_time_add (base, (ms % 1000) * 1000);
  return g_date_time_format (t, "%Y-%m-%dT%H:%M:%S.%fZ");
}

/* The inverse of iso_time(); 0 for IoT Hub's "never" (year 1) or garbage. */
static gint64
parse_iso_time (const char *text)
{
  g_autoptr (GDateTime) t = NULL;

  if (!text || g_str_has_prefix (text, "0001-"))
    return 0;
  t = g_date_time_new_from_iso8601 (text, NULL);
  return t ? g_date_time_to_unix (t) * 1000 + g_date_time_get_microsecond (t) / 1000 : 0;
}

static void
add_nullable (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

char *
sluice_device_to_json (const SluiceDevice *d)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *status_time = iso_time (d->status_updated_time);
  g_autofree char *activity_time = iso_time (d->last_activity_time);

  json_builder_begin_object (b);
  add_nullable (b, "deviceId", d->device_id);
  add_nullable (b, "generationId", d->generation_id);
  add_nullable (b, "etag", d->etag);
  json_builder_set_member_name (b, "connectionState");
  json_builder_add_string_value (b, d->connected ? "Connected" : "Disconnected");
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, d->enabled ? "enabled" : "disabled");
  add_nullable (b, "statusReason", d->status_reason);
  json_builder_set_member_name (b, "connectionStateUpdatedTime");
  json_builder_add_string_value (b, "0001-01-01T00:00:00Z");
  json_builder_set_member_name (b, "statusUpdatedTime");
  json_builder_add_string_value (b, status_time);
  json_builder_set_member_name (b, "lastActivityTime");
  json_builder_add_string_value (b, activity_time);
  json_builder_set_member_name (b, "cloudToDeviceMessageCount");
  json_builder_add_int_value (b, d->cloud_to_device_message_count);
  json_builder_set_member_name (b, "authentication");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "symmetricKey");
  json_builder_begin_object (b);
  add_nullable (b, "primaryKey", d->primary_key);
  add_nullable (b, "secondaryKey", d->secondary_key);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "x509Thumbprint");
  json_builder_begin_object (b);
  add_nullable (b, "primaryThumbprint", d->primary_thumbprint);
  add_nullable (b, "secondaryThumbprint", d->secondary_thumbprint);
  json_builder_end_object (b);
  add_nullable (b, "type", d->auth_type ? d->auth_type : "sas");
  json_builder_end_object (b);
  json_builder_set_member_name (b, "capabilities");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "iotEdge");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static gboolean
get_string (JsonObject *o, const char *name, char **out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);

  if (!n || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "'%s' must be a string", name);
      return FALSE;
    }
  g_free (*out);
  *out = g_strdup (json_node_get_string (n));
  return TRUE;
}

static JsonObject *
get_object (JsonObject *o, const char *name, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);

  if (!n || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "'%s' must be an object", name);
      return NULL;
    }
  return json_node_get_object (n);
}

SluiceDevice *
sluice_device_from_json (const char *json, gssize len, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (SluiceDevice) d = sluice_device_new (NULL);
  g_autofree char *status = NULL;
  g_autoptr (GError) local = NULL;
  JsonObject *o, *auth, *sym, *x509;

  if (!json_parser_load_from_data (parser, json, len, &local))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "malformed JSON: %s",
                   local->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "a device is a JSON object");
      return NULL;
    }
  o = json_node_get_object (json_parser_get_root (parser));
  if (!get_string (o, "deviceId", &d->device_id, error)
      || !get_string (o, "generationId", &d->generation_id, error)
      || !get_string (o, "etag", &d->etag, error)
      || !get_string (o, "status", &status, error)
      || !get_string (o, "statusReason", &d->status_reason, error))
    return NULL;
  if (status)
    {
      if (g_ascii_strcasecmp (status, "enabled") == 0)
        d->enabled = TRUE;
      else if (g_ascii_strcasecmp (status, "disabled") == 0)
        d->enabled = FALSE;
      else
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "status must be 'enabled' or 'disabled' (value '%s')", status);
          return NULL;
        }
    }
  {
    g_autofree char *when = NULL;
    if (!get_string (o, "statusUpdatedTime", &when, error))
      return NULL;
    d->status_updated_time = parse_iso_time (when);
  }
  auth = get_object (o, "authentication", &local);
  if (local)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (auth)
    {
      if (!get_string (auth, "type", &d->auth_type, error))
        return NULL;
      if (!g_strv_contains ((const char *const[]) { "sas", "selfSigned", "certificateAuthority",
                                                    "none", NULL }, d->auth_type))
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "authentication.type must be sas, selfSigned or certificateAuthority "
                       "(value '%s')", d->auth_type);
          return NULL;
        }
      sym = get_object (auth, "symmetricKey", &local);
      if (!local && sym
          && (!get_string (sym, "primaryKey", &d->primary_key, error)
              || !get_string (sym, "secondaryKey", &d->secondary_key, error)))
        return NULL;
      x509 = local ? NULL : get_object (auth, "x509Thumbprint", &local);
      if (!local && x509
          && (!get_string (x509, "primaryThumbprint", &d->primary_thumbprint, error)
              || !get_string (x509, "secondaryThumbprint", &d->secondary_thumbprint, error)))
        return NULL;
      if (local)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
    }
  return g_steal_pointer (&d);
}

/* --- keys --- */

static char *
random_base64 (gsize n)
{
  guint8 buf[64];

  g_assert (n <= sizeof buf);
  if (getrandom (buf, n, 0) != (gssize) n)
    g_error ("getrandom failed: %s", g_strerror (errno));
  return g_base64_encode (buf, n);
}

static gboolean
key_is_valid (const char *key)
{
  gsize len = 0;
  g_autofree guchar *raw = NULL;

  if (!key || !*key)
    return FALSE;
  for (const char *c = key; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '+' && *c != '/' && *c != '=')
      return FALSE;
  raw = g_base64_decode (key, &len);
  return len >= 16 && len <= 64;
}

/* --- the in-memory cache --- */

gboolean
host_registry_load (SluiceHost *host, GError **error)
{
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);

  if (!host->storage->kv_scan (host->storage_self, DEVICE_KV_PREFIX, pairs, error))
    return FALSE;
  g_rw_lock_writer_lock (&host->registry_lock);
  for (guint i = 0; i < pairs->len; i++)
    {
      SluiceKvPair *kv = pairs->pdata[i];
      gsize len;
      const char *json = g_bytes_get_data (kv->value, &len);
      g_autoptr (GError) local = NULL;
      SluiceDevice *d = sluice_device_from_json (json, len, &local);

      if (!d)
        {
          g_warning ("registry entry '%s' is unreadable (%s); ignored", kv->key,
                     local->message);
          continue;
        }
      g_hash_table_replace (host->devices, d->device_id, d);
    }
  g_rw_lock_writer_unlock (&host->registry_lock);
  g_info ("registry: %u devices", g_hash_table_size (host->devices));
  return TRUE;
}

void
host_registry_clear (SluiceHost *host)
{
  g_rw_lock_writer_lock (&host->registry_lock);
  g_hash_table_remove_all (host->devices);
  g_rw_lock_writer_unlock (&host->registry_lock);
}

void
sluice_host_registry_cache_put (SluiceHost *host, const SluiceDevice *device)
{
  SluiceDevice *d = sluice_device_copy (device);

  g_rw_lock_writer_lock (&host->registry_lock);
  g_hash_table_replace (host->devices, d->device_id, d);
  g_rw_lock_writer_unlock (&host->registry_lock);
}

SluiceDevice *
sluice_host_registry_lookup (SluiceHost *host, const char *device_id)
{
  SluiceDevice *d;

  g_rw_lock_reader_lock (&host->registry_lock);
  d = g_hash_table_lookup (host->devices, device_id);
  d = d ? sluice_device_copy (d) : NULL;
  g_rw_lock_reader_unlock (&host->registry_lock);
  return d;
}

static int
compare_devices (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(SluiceDevice **) a)->device_id, (*(SluiceDevice **) b)->device_id);
}

GPtrArray *
sluice_host_registry_list (SluiceHost *host, SluicePrincipal *principal, GError **error)
{
  GPtrArray *out;
  GHashTableIter it;
  gpointer v;

  if (!sluice_host_authorize (host, principal, SLUICE_ACTION_REGISTRY_READ, "", error))
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_device_free);
  g_rw_lock_reader_lock (&host->registry_lock);
  g_hash_table_iter_init (&it, host->devices);
  while (g_hash_table_iter_next (&it, NULL, &v))
    g_ptr_array_add (out, sluice_device_copy (v));
  g_rw_lock_reader_unlock (&host->registry_lock);
  g_ptr_array_sort (out, compare_devices);
  return out;
}

/* --- writes: validated on the caller, committed on the pool --- */

typedef struct {
  SluiceHost *host;
  SluiceDevice *device;                /* put: the new entry */
  char *device_id;
  char *if_match;
  gboolean delete;
  SluiceDeviceFunc done_device;
  SluiceDoneFunc done;
  gpointer user_data;
  GError *error;
  char *revoke_reason;
} RegistryJob;

static void
registry_job_free (RegistryJob *job)
{
  sluice_device_free (job->device);
  g_free (job->device_id);
  g_free (job->if_match);
  g_free (job->revoke_reason);
  g_clear_error (&job->error);
  g_free (job);
}

static gboolean
etag_matches (const char *if_match, const char *etag)
{
  g_autofree char *unquoted = NULL;
  gsize n;

  if (!if_match || g_str_equal (if_match, "*"))
    return TRUE;
  n = strlen (if_match);
  if (n >= 2 && if_match[0] == '"' && if_match[n - 1] == '"')
    unquoted = g_strndup (if_match + 1, n - 2);
  else
    unquoted = g_strdup (if_match);
  return g_strcmp0 (unquoted, etag) == 0;
}

static void
registry_work (gpointer data)
{
  RegistryJob *job = data;
  SluiceHost *host = job->host;
  g_autoptr (SluiceDevice) old = NULL;
  g_autofree char *key = NULL;
  SluiceKvOp op = { 0, NULL, NULL };
  g_autoptr (GBytes) value = NULL;

  g_mutex_lock (&host->registry_write_lock);
  old = sluice_host_registry_lookup (host, job->device_id);
  key = g_strconcat (DEVICE_KV_PREFIX, job->device_id, NULL);

  if (job->delete)
    {
      if (!old)
        {
          job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                                    "device '%s' does not exist", job->device_id);
          goto out;
        }
      if (!etag_matches (job->if_match, old->etag))
        {
          job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_PRECONDITION,
                                    "etag mismatch for device '%s'", job->device_id);
          goto out;
        }
      op.type = SLUICE_KV_DELETE;
      op.key = key;
      if (!host->storage->kv_commit (host->storage_self, &op, 1, &job->error))
        goto out;
      g_rw_lock_writer_lock (&host->registry_lock);
      g_hash_table_remove (host->devices, job->device_id);
      g_rw_lock_writer_unlock (&host->registry_lock);
      job->revoke_reason = g_strdup ("device deleted");
      goto out;
    }

  {
    SluiceDevice *d = job->device;
    g_autofree char *json = NULL;
    gint64 now = host_now_ms ();

    if (job->if_match && !g_str_equal (job->if_match, "*") && !old)
      {
        job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                                  "device '%s' does not exist (If-Match given)",
                                  job->device_id);
        goto out;
      }
    if (old && !etag_matches (job->if_match, old->etag))
      {
        job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_PRECONDITION,
                                  "etag mismatch for device '%s'", job->device_id);
        goto out;
      }
    g_free (d->generation_id);
    d->generation_id = old ? g_strdup (old->generation_id) : NULL;
    if (!d->generation_id)
      {
        guint32 r;
        if (getrandom (&r, sizeof r, 0) != sizeof r)
          r = g_random_int ();
        d->generation_id = g_strdup_printf ("%" G_GINT64_FORMAT "%06u", now, r % 1000000);
      }
    g_free (d->etag);
    d->etag = random_base64 (9);
    if (!old || old->enabled != d->enabled)
      d->status_updated_time = now;
    else
      d->status_updated_time = old->status_updated_time;
    if (old)
      {
        d->last_activity_time = old->last_activity_time;
        d->cloud_to_device_message_count = old->cloud_to_device_message_count;
        d->connected = old->connected;
      }
    json = sluice_device_to_json (d);
    value = g_bytes_new (json, strlen (json));
    op.type = SLUICE_KV_PUT;
    op.key = key;
    op.value = value;
    if (!host->storage->kv_commit (host->storage_self, &op, 1, &job->error))
      goto out;
    sluice_host_registry_cache_put (host, d);
    if (old && old->enabled && !d->enabled)
      job->revoke_reason = g_strdup ("device disabled");
    else if (old && (g_strcmp0 (old->primary_key, d->primary_key) != 0
                     || g_strcmp0 (old->secondary_key, d->secondary_key) != 0
                     || g_strcmp0 (old->primary_thumbprint, d->primary_thumbprint) != 0
                     || g_strcmp0 (old->secondary_thumbprint, d->secondary_thumbprint) != 0))
      job->revoke_reason = g_strdup ("device credentials changed");
  }

out:
  g_mutex_unlock (&host->registry_write_lock);
  if (job->revoke_reason)
    {
      g_autofree char *id = g_strconcat ("devices/", job->device_id, NULL);
      host_revoke (host, id, job->revoke_reason);
    }
}

static void
registry_done (gpointer data)
{
  RegistryJob *job = data;

  if (job->done_device)
    job->done_device (job->error ? NULL : g_steal_pointer (&job->device), job->error,
                      job->user_data);
  else if (job->done)
    job->done (job->error, job->user_data);
  registry_job_free (job);
}

static gboolean
registry_fail_now (gpointer data)
{
  registry_done (data);
  return G_SOURCE_REMOVE;
}

void
sluice_host_registry_put (SluiceHost *host, SluicePrincipal *principal,
                          const SluiceDevice *device, const char *if_match,
                          SluiceDeviceFunc done, gpointer user_data)
{
  RegistryJob *job = g_new0 (RegistryJob, 1);
  SluiceDevice *d;

  job->host = host;
  job->device = d = sluice_device_copy (device);
  job->device_id = g_strdup (device->device_id);
  job->if_match = g_strdup (if_match);
  job->done_device = done;
  job->user_data = user_data;

  if (!sluice_host_authorize (host, principal, SLUICE_ACTION_REGISTRY_WRITE,
                              device->device_id ? device->device_id : "", &job->error))
    ;
  else if (!sluice_device_id_is_valid (device->device_id))
    job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                              "invalid device id '%s': 1-128 characters of "
                              "A-Z a-z 0-9 - . %% _ * ? ! ( ) , : = @ $ '",
                              device->device_id ? device->device_id : "");
  else if (!d->auth_type || g_str_equal (d->auth_type, "sas"))
    {
      g_free (d->auth_type);
      d->auth_type = g_strdup ("sas");
      if (!d->primary_key && !d->secondary_key)
        {
          d->primary_key = random_base64 (32);
          d->secondary_key = random_base64 (32);
        }
      else if (!d->primary_key || !d->secondary_key)
        job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                                  "device '%s': give both symmetric keys or none "
                                  "(none: both are generated)", d->device_id);
      else if (!key_is_valid (d->primary_key) || !key_is_valid (d->secondary_key))
        job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                                  "device '%s': symmetric keys must be base64 of 16 to 64 bytes",
                                  d->device_id);
    }
  else if (g_str_equal (d->auth_type, "selfSigned") && !d->primary_thumbprint)
    job->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                              "device '%s': a selfSigned device needs a primaryThumbprint",
                              d->device_id);

  if (job->error)
    {
      host_invoke (g_main_context_get_thread_default (), registry_fail_now, job);
      return;
    }
  host_job_run (host, registry_work, registry_done, job);
}

void
sluice_host_registry_delete (SluiceHost *host, SluicePrincipal *principal,
                             const char *device_id, const char *if_match, SluiceDoneFunc done,
                             gpointer user_data)
{
  RegistryJob *job = g_new0 (RegistryJob, 1);

  job->host = host;
  job->device_id = g_strdup (device_id);
  job->if_match = g_strdup (if_match);
  job->delete = TRUE;
  job->done = done;
  job->user_data = user_data;
  if (!sluice_host_authorize (host, principal, SLUICE_ACTION_REGISTRY_WRITE, device_id,
                              &job->error))
    {
      host_invoke (g_main_context_get_thread_default (), registry_fail_now, job);
      return;
    }
  host_job_run (host, registry_work, registry_done, job);
}
