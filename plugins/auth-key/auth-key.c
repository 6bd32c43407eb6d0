/* auth-key — symmetric keys: device SAS tokens, shared access policies,
 * policy keys as passwords (Kafka / AMQP SASL PLAIN) and Event Hubs
 * connection strings (WIRE.md, "SAS tokens", "Kafka wire protocol").
 *
 * authenticate() runs on I/O workers, possibly several at once, while
 * reload() swaps the policy table on the main thread: workers take a
 * reference to the current table under a short lock and then read it
 * without one (tables are immutable once published).
 * SPDX-License-Identifier: Apache-2.0 */
#include <sluice/sluice.h>

#include <string.h>

#include "auth-key-policies.h"

#define SAS_PREFIX "SharedAccessSignature "

typedef struct
{
  gint64 max_token_lifetime_ms;   /* 0: unlimited */
} AuthKeyOptions;

static const SluiceOption auth_key_options[] = {
  { "max-token-lifetime", SLUICE_OPTION_DURATION,
    G_STRUCT_OFFSET (AuthKeyOptions, max_token_lifetime_ms), "0",
    "refuse SAS tokens whose expiry lies further ahead than this; 0: no limit",
    0, 0, NULL, { NULL } },
  SLUICE_OPTION_END
};

static const char *const auth_key_owned_sections[] = { "policy.", NULL };

typedef struct
{
  SluiceHost *host;
  char *name;
  gint64 max_token_lifetime_s;
  GMutex lock;                    /* guards the `policies` pointer only */
  GHashTable *policies;           /* name -> AuthKeyPolicy*, immutable */
} AuthKey;

static GHashTable *
auth_key_get_policies (AuthKey *self)
{
  GHashTable *table;

  g_mutex_lock (&self->lock);
  table = g_hash_table_ref (self->policies);
  g_mutex_unlock (&self->lock);
  return table;
}

static SluiceAuthResult
deny (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Every refusal is SLUICE_ERROR_UNAUTHENTICATED with a message that says
 * why (for the log; the client sees only a generic refusal). */
static SluiceAuthResult
deny (GError **error, const char *format, ...)
{
  va_list ap;
  g_autofree char *message = NULL;

  va_start (ap, format);
  message = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED, message);
  return SLUICE_AUTH_DENY;
}

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

/* `sb://`, `amqps://`, `https://`... : Event Hubs style (WIRE.md). */
static gboolean
has_uri_scheme (const char *text)
{
  const char *p = text;

  if (!g_ascii_isalpha (*p))
    return FALSE;
  while (g_ascii_isalnum (*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  return g_str_has_prefix (p, "://");
}

/* Verify against the primary key, then the secondary one (rotation). The
 * error of the last attempt wins, except that "expired" (the signature
 * matched) beats "signature mismatch". */
static gboolean
verify_with_keys (const SluiceSasToken *t, const char *primary, const char *secondary,
                  gboolean key_is_base64, gint64 now, GError **error)
{
  g_autoptr (GError) first_error = NULL;

  if (primary != NULL && sluice_sas_token_verify (t, primary, key_is_base64, now, &first_error))
    return TRUE;
  if (first_error != NULL && g_error_matches (first_error, SLUICE_SAS_ERROR,
                                              SLUICE_SAS_ERROR_EXPIRED))
    {
      g_propagate_error (error, g_steal_pointer (&first_error));
      return FALSE;
    }
  if (secondary != NULL)
    return sluice_sas_token_verify (t, secondary, key_is_base64, now, error);

  if (first_error != NULL)
    g_propagate_error (error, g_steal_pointer (&first_error));
  else
    g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_SIGNATURE,
                         "signature mismatch (no key to verify with)");
  return FALSE;
}

/* Scope and lifetime checks shared by device and policy tokens. */
static gboolean
check_token_limits (AuthKey *self, const SluiceSasToken *t, const SluiceCredentials *cred,
                    const char *who, gint64 now, GError **error)
{
  if (cred->resource != NULL && !sluice_sas_scope_covers (t->sr_decoded, cred->resource))
    {
      deny (error, "%s: token scope '%s' does not cover '%s'", who, t->sr_decoded,
            cred->resource);
      return FALSE;
    }
  if (self->max_token_lifetime_s > 0 && t->se - now > self->max_token_lifetime_s)
    {
      deny (error, "%s: token expiry %" G_GINT64_FORMAT " is more than max-token-lifetime "
            "(%" G_GINT64_FORMAT " s) ahead", who, t->se, self->max_token_lifetime_s);
      return FALSE;
    }
  return TRUE;
}

static SluiceAuthResult
authenticate_policy_token (AuthKey *self, const SluiceSasToken *t,
                           const SluiceCredentials *cred, SluicePrincipal **principal,
                           GError **error)
{
  g_autoptr (GHashTable) policies = auth_key_get_policies (self);
  g_autoptr (GError) local_error = NULL;
  g_autofree char *who = g_strdup_printf ("policy '%s'", t->skn);
  const AuthKeyPolicy *policy = g_hash_table_lookup (policies, t->skn);
  /* Event Hubs signs with the key text's bytes, IoT Hub with the decoded key. */
  gboolean key_is_base64 = !has_uri_scheme (t->sr_decoded);
  gint64 now = now_seconds ();

  if (policy == NULL)
    return deny (error, "unknown policy '%s'", t->skn);

  if (!verify_with_keys (t, policy->primary_key, policy->secondary_key, key_is_base64, now,
                         &local_error))
    return deny (error, "%s: %s", who, local_error->message);

  if (!check_token_limits (self, t, cred, who, now, error))
    return SLUICE_AUTH_DENY;

  *principal = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, policy->name, policy->rights,
                                     (const char *const *) policy->streams, t->se, "sas");
  return SLUICE_AUTH_ALLOW;
}

/* `{host}/devices/{id}[/modules/{m}...]` → `{id}`, or NULL with the reason. */
static char *
device_id_from_scope (AuthKey *self, const char *sr, GError **error)
{
  const char *hostname = sluice_host_get_hostname (self->host);
  const char *slash = strchr (sr, '/');
  gsize host_len = slash != NULL ? (gsize) (slash - sr) : strlen (sr);
  const char *id;
  const char *end;

  if (hostname == NULL || host_len != strlen (hostname)
      || g_ascii_strncasecmp (sr, hostname, host_len) != 0)
    {
      deny (error, "token scope '%s' is not for this hub '%s'", sr,
            hostname != NULL ? hostname : "");
      return NULL;
    }
  if (slash == NULL || !g_str_has_prefix (slash, "/devices/"))
    {
      deny (error, "token scope '%s' names no device and the token has no skn "
            "(a policy token needs skn)", sr);
      return NULL;
    }
  id = slash + strlen ("/devices/");
  end = strchr (id, '/');
  if (end == id || *id == '\0')
    {
      deny (error, "token scope '%s' names no device", sr);
      return NULL;
    }
  return end != NULL ? g_strndup (id, end - id) : g_strdup (id);
}

static SluiceAuthResult
authenticate_device_token (AuthKey *self, const SluiceSasToken *t,
                           const SluiceCredentials *cred, SluicePrincipal **principal,
                           GError **error)
{
  g_autofree char *device_id = NULL;
  g_autofree char *who = NULL;
  g_autoptr (SluiceDevice) device = NULL;
  g_autoptr (GError) local_error = NULL;
  gint64 now = now_seconds ();

  if (has_uri_scheme (t->sr_decoded))
    return deny (error, "Event Hubs style token for '%s' without skn: a policy name is "
                 "required", t->sr_decoded);

  device_id = device_id_from_scope (self, t->sr_decoded, error);
  if (device_id == NULL)
    return SLUICE_AUTH_DENY;
  who = g_strdup_printf ("device '%s'", device_id);

  device = sluice_host_registry_lookup (self->host, device_id);
  if (device == NULL)
    return deny (error, "unknown device '%s'", device_id);
  if (!device->enabled)
    return deny (error, "device '%s' is disabled", device_id);
  if (device->auth_type != NULL && g_strcmp0 (device->auth_type, "sas") != 0)
    return deny (error, "%s authenticates with '%s', not a SAS token", who,
                 device->auth_type);
  if (device->primary_key == NULL && device->secondary_key == NULL)
    return deny (error, "%s has no symmetric key", who);

  if (!verify_with_keys (t, device->primary_key, device->secondary_key, TRUE, now,
                         &local_error))
    return deny (error, "%s: %s", who, local_error->message);

  if (!check_token_limits (self, t, cred, who, now, error))
    return SLUICE_AUTH_DENY;

  *principal = sluice_principal_new (SLUICE_PRINCIPAL_DEVICE, device_id,
                                     SLUICE_RIGHT_DEVICE_CONNECT, NULL, t->se, "sas");
  return SLUICE_AUTH_ALLOW;
}

static gboolean
is_policy_name (AuthKey *self, const char *name)
{
  g_autoptr (GHashTable) policies = NULL;

  if (name == NULL)
    return FALSE;
  policies = auth_key_get_policies (self);
  return g_hash_table_contains (policies, name);
}

static SluiceAuthResult
authenticate_token (AuthKey *self, const char *token, const SluiceCredentials *cred,
                    SluicePrincipal **principal, GError **error)
{
  g_autoptr (SluiceSasToken) t = NULL;
  g_autoptr (GError) local_error = NULL;

  if (token == NULL)
    return deny (error, "no SAS token given");

  t = sluice_sas_token_parse (token, &local_error);
  if (t == NULL)
    return deny (error, "%s", local_error->message);

  /* MQTT service clients log in with Username = the policy name (WIRE.md);
   * a token of theirs without `skn` is that policy's. */
  if (t->skn == NULL && cred->type == SLUICE_CREDENTIALS_USERNAME_PASSWORD
      && is_policy_name (self, cred->username))
    t->skn = g_strdup (cred->username);

  if (t->skn != NULL)
    return authenticate_policy_token (self, t, cred, principal, error);
  return authenticate_device_token (self, t, cred, principal, error);
}

/* Kafka / AMQP SASL PLAIN: the password is the policy key as written. */
static SluiceAuthResult
authenticate_policy_key (AuthKey *self, const char *policy_name, const char *key,
                         SluicePrincipal **principal, GError **error)
{
  g_autoptr (GHashTable) policies = auth_key_get_policies (self);
  const AuthKeyPolicy *policy = g_hash_table_lookup (policies, policy_name);
  gboolean primary_ok, secondary_ok;

  if (policy == NULL)
    return deny (error, "unknown policy '%s'", policy_name);

  /* Both comparisons always run, so timing does not say which key is in use. */
  primary_ok = auth_key_secret_equal (key, policy->primary_key);
  secondary_ok = policy->secondary_key != NULL
                 && auth_key_secret_equal (key, policy->secondary_key);
  if (!primary_ok && !secondary_ok)
    return deny (error, "policy '%s': wrong key", policy_name);

  *principal = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, policy->name, policy->rights,
                                     (const char *const *) policy->streams, 0, "policy-key");
  return SLUICE_AUTH_ALLOW;
}

/* Event Hubs' Kafka convention: username `$ConnectionString`, password
 * `Endpoint=sb://..;SharedAccessKeyName=..;SharedAccessKey=..[;EntityPath=..]`
 * (or `SharedAccessSignature=<token>` instead of the key pair). */
static SluiceAuthResult
authenticate_connection_string (AuthKey *self, const char *text, const SluiceCredentials *cred,
                                SluicePrincipal **principal, GError **error)
{
  g_autoptr (GHashTable) items = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *key_name, *key, *token;

  if (text == NULL)
    return deny (error, "$ConnectionString login without a connection string");

  items = sluice_connection_string_parse (text, &local_error);
  if (items == NULL)
    return deny (error, "%s", local_error->message);

  token = g_hash_table_lookup (items, "SharedAccessSignature");
  if (token != NULL)
    {
      /* The item holds the whole token, prefix included. */
      return authenticate_token (self, token, cred, principal, error);
    }

  key_name = g_hash_table_lookup (items, "SharedAccessKeyName");
  key = g_hash_table_lookup (items, "SharedAccessKey");
  if (key_name == NULL || key == NULL)
    return deny (error, "connection string without SharedAccessKeyName and "
                 "SharedAccessKey");

  return authenticate_policy_key (self, key_name, key, principal, error);
}

static SluiceAuthResult
auth_key_authenticate (gpointer data, const SluiceCredentials *cred,
                       SluicePrincipal **principal, GError **error)
{
  AuthKey *self = data;

  g_return_val_if_fail (cred != NULL && principal != NULL, SLUICE_AUTH_DEFER);

  switch (cred->type)
    {
    case SLUICE_CREDENTIALS_SAS_TOKEN:
      return authenticate_token (self, cred->token, cred, principal, error);

    case SLUICE_CREDENTIALS_USERNAME_PASSWORD:
      if (cred->password != NULL && g_str_has_prefix (cred->password, SAS_PREFIX))
        return authenticate_token (self, cred->password, cred, principal, error);
      if (g_strcmp0 (cred->username, "$ConnectionString") == 0)
        return authenticate_connection_string (self, cred->password, cred, principal, error);
      if (cred->username == NULL || cred->password == NULL)
        return SLUICE_AUTH_DEFER;
      /* Only a policy name is ours to judge; anything else (an x509 or
       * SCRAM user, an anonymous login) belongs to another link. */
      if (!is_policy_name (self, cred->username))
        return SLUICE_AUTH_DEFER;
      return authenticate_policy_key (self, cred->username, cred->password, principal, error);

    case SLUICE_CREDENTIALS_TLS_PEER:
    default:
      /* Certificates are auth-x509's. */
      return SLUICE_AUTH_DEFER;
    }
}

static gpointer
auth_key_create (SluiceHost *host, const char *instance_name, const void *options,
                 SluiceConfig *config, GError **error)
{
  const AuthKeyOptions *opts = options;
  AuthKey *self;
  GHashTable *policies;

  policies = auth_key_policies_load (config, error);
  if (policies == NULL)
    return NULL;

  self = g_new0 (AuthKey, 1);
  self->host = host;
  self->name = g_strdup (instance_name);
  self->max_token_lifetime_s = opts != NULL ? opts->max_token_lifetime_ms / 1000 : 0;
  g_mutex_init (&self->lock);
  self->policies = policies;

  g_info ("auth.%s: %u shared access %s", instance_name, g_hash_table_size (policies),
          g_hash_table_size (policies) == 1 ? "policy" : "policies");
  return self;
}

static void
auth_key_destroy (gpointer data)
{
  AuthKey *self = data;

  if (self == NULL)
    return;
  g_clear_pointer (&self->policies, g_hash_table_unref);
  g_mutex_clear (&self->lock);
  g_free (self->name);
  g_free (self);
}

static char **
auth_key_reload (gpointer data, SluiceConfig *config, GError **error)
{
  AuthKey *self = data;
  GHashTable *fresh;
  GHashTable *old;
  char **revoked;

  fresh = auth_key_policies_load (config, error);
  if (fresh == NULL)
    return NULL;

  g_mutex_lock (&self->lock);
  old = self->policies;
  self->policies = fresh;
  g_mutex_unlock (&self->lock);

  revoked = auth_key_policies_diff (old, fresh);
  /* Workers may still hold `old`; the last of them frees it. */
  g_hash_table_unref (old);

  g_info ("auth.%s: reloaded %u shared access policies, %u revoked", self->name,
          g_hash_table_size (fresh), g_strv_length (revoked));
  return revoked;
}

static const SluiceAuthVTable auth_key_vtable = {
  .create = auth_key_create,
  .destroy = auth_key_destroy,
  .authenticate = auth_key_authenticate,
  .authorize = NULL,   /* DEFER: the core's rights check is all this plugin asks */
  .reload = auth_key_reload,
};

SLUICE_PLUGIN_DEFINE (auth, key, "0.1.0",
                      "symmetric keys: device SAS tokens, shared access policies, "
                      "policy keys and connection strings",
                      "Apache-2.0", &auth_key_vtable, auth_key_options,
                      sizeof (AuthKeyOptions), auth_key_owned_sections)
