/* auth-x509 — TLS client certificates (DESIGN.md, "Auth model").
 *
 * The device is the leaf certificate's subject CN (IoT Hub's convention).
 * Its registry entry says how the certificate is trusted:
 *   selfSigned            the SHA-256 thumbprint of the leaf's DER is the
 *                         entry's primary or secondary thumbprint;
 *   certificateAuthority  the chain verifies against `[auth.NAME] ca`, with
 *                         validity dates and the CRLs of `crl`.
 * The TLS layer has already checked that the client holds the leaf's
 * private key (CertificateVerify); this plugin decides whose key it is.
 *
 * Credentials it judges: TLS_PEER, and USERNAME_PASSWORD with a peer chain
 * and no password (IoT Hub devices using X.509 over MQTT send the username
 * `{host}/{id}/?api-version=...` and no password). Anything else, and a
 * password of any kind, is DEFERred to the other links.
 *
 * Keys of `[auth.NAME]` (plugin = x509): `ca` (PEM bundles), `crl` (PEM or
 * DER files), `policy-map` (`CN=>policy` pairs: a CA-verified certificate
 * with that CN is the shared access policy `[policy.NAME]`, which auth-key
 * owns, so `key` must be in the chain too). SIGHUP rereads all three.
 *
 * The core asks every TLS client for a certificate without requiring one
 * (core/tls.c, GNUTLS_CERT_REQUEST), so device certificates reach this
 * plugin on any TLS listener. A listener's own `tls-ca` makes the core
 * verify the chain at the handshake and drop what fails, which would shut
 * out selfSigned devices: leave `tls-ca` unset where they connect.
 *
 * authenticate() runs on I/O workers, reload() on the main thread; the
 * trust store is immutable and swapped under a short lock, as auth-key
 * swaps its policies.
 * SPDX-License-Identifier: Apache-2.0 */
#include <sluice/sluice.h>

#include <string.h>

#include "auth-x509-cert.h"
#include "auth-x509-map.h"

typedef struct
{
  char **ca;
  char **crl;
  char **policy_map;
} AuthX509Options;

static const SluiceOption auth_x509_options[] = {
  { "ca", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (AuthX509Options, ca), NULL,
    "PEM bundles of the CAs that sign certificateAuthority devices' certificates",
    0, 0, NULL, { NULL } },
  { "crl", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (AuthX509Options, crl), NULL,
    "CRL files (PEM or DER) checked for every certificate of a CA-verified chain",
    0, 0, NULL, { NULL } },
  { "policy-map", SLUICE_OPTION_STRV, G_STRUCT_OFFSET (AuthX509Options, policy_map), NULL,
    "CN=>policy pairs: a CA-verified certificate with that subject CN is the shared "
    "access policy [policy.NAME] (rights and streams)", 0, 0, NULL, { NULL } },
  SLUICE_OPTION_END
};

static const char *const auth_x509_extra_keys[] = { "plugin", NULL };

/* Sessions verified through a CA, so that a reload that revokes their
 * certificate (a new CRL, a CA removed) can close them: one chain per
 * principal, the latest; a stale entry costs a re-verification and at
 * worst closes a session that then reconnects. */
#define MAX_TRACKED 100000

typedef struct
{
  SluiceHost *host;
  char *name;
  GMutex lock;                    /* guards `trust`, `map` and `verified` */
  X509Trust *trust;               /* immutable once published */
  X509PolicyMap *map;             /* immutable once published */
  GHashTable *verified;           /* principal id -> GPtrArray of GBytes (DER chain) */
} AuthX509;

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

static void
auth_x509_get_state (AuthX509 *self, X509Trust **trust, X509PolicyMap **map)
{
  g_mutex_lock (&self->lock);
  *trust = x509_trust_ref (self->trust);
  *map = x509_policy_map_ref (self->map);
  g_mutex_unlock (&self->lock);
}

static void
auth_x509_track (AuthX509 *self, const char *principal_id, GPtrArray *der)
{
  /* The credentials' array is the connection's (transfer none): keep a
   * copy of it, sharing the immutable GBytes. */
  GPtrArray *copy = g_ptr_array_new_full (der->len, (GDestroyNotify) g_bytes_unref);

  for (guint i = 0; i < der->len; i++)
    g_ptr_array_add (copy, g_bytes_ref (der->pdata[i]));
  g_mutex_lock (&self->lock);
  if (g_hash_table_size (self->verified) < MAX_TRACKED
      || g_hash_table_contains (self->verified, principal_id))
    {
      g_hash_table_insert (self->verified, g_strdup (principal_id), copy);
      copy = NULL;
    }
  g_mutex_unlock (&self->lock);
  if (copy != NULL)
    g_ptr_array_unref (copy);
}

/* Is this ours to judge? */
static gboolean
is_certificate_login (const SluiceCredentials *cred)
{
  if (cred->peer_certs == NULL || cred->peer_certs->len == 0)
    return FALSE;
  if (cred->type == SLUICE_CREDENTIALS_TLS_PEER)
    return TRUE;
  /* An empty password counts as none: some MQTT clients set the flag with
   * nothing behind it. */
  return cred->type == SLUICE_CREDENTIALS_USERNAME_PASSWORD
         && (cred->password == NULL || *cred->password == '\0');
}

/* The device id in `{host}/devices/{id}[/...]`, or NULL. (transfer full) */
static char *
device_from_resource (const char *resource)
{
  const char *p = resource != NULL ? strstr (resource, "/devices/") : NULL;
  const char *end;

  if (p == NULL)
    return NULL;
  p += strlen ("/devices/");
  end = strchr (p, '/');
  return end != NULL ? g_strndup (p, end - p) : g_strdup (p);
}

/* The identity the client claims besides the certificate must be the
 * certificate's: the resource it connects as, and for MQTT the client id
 * (IoT Hub requires client id = device id). */
static gboolean
check_claims (const SluiceCredentials *cred, const char *cn, GError **error)
{
  g_autofree char *claimed = device_from_resource (cred->resource);

  if (claimed != NULL && strcmp (claimed, cn) != 0)
    {
      deny (error, "certificate CN '%s' does not match the device '%s' the client "
            "connects as", cn, claimed);
      return FALSE;
    }
  if (g_strcmp0 (cred->protocol, "mqtt") == 0 && cred->client_id != NULL
      && strcmp (cred->client_id, cn) != 0)
    {
      deny (error, "certificate CN '%s' does not match the MQTT client id '%s'", cn,
            cred->client_id);
      return FALSE;
    }
  return TRUE;
}

static SluiceAuthResult
authenticate_self_signed (const SluiceDevice *device, const X509Chain *chain,
                          GBytes *leaf_der, GError **error)
{
  g_autoptr (GError) local = NULL;

  if (device->primary_thumbprint == NULL && device->secondary_thumbprint == NULL)
    return deny (error, "device '%s' has no thumbprint", device->device_id);
  if (!x509_thumbprint_matches (leaf_der, device->primary_thumbprint)
      && !x509_thumbprint_matches (leaf_der, device->secondary_thumbprint))
    {
      g_autofree char *seen = x509_thumbprint_sha256 (leaf_der);

      return deny (error, "device '%s': certificate thumbprint %s is neither its primary "
                   "nor its secondary thumbprint", device->device_id, seen);
    }
  /* A pinned certificate still has dates; IoT Hub refuses expired ones. */
  if (!x509_cert_check_time (chain->certs[0], g_get_real_time () / G_USEC_PER_SEC, &local))
    return deny (error, "device '%s': %s", device->device_id, local->message);
  return SLUICE_AUTH_ALLOW;
}

static SluiceAuthResult
authenticate_policy (AuthX509 *self, X509Trust *trust, const X509Chain *chain,
                     const X509Policy *policy, const SluiceCredentials *cred,
                     const char *cn, SluicePrincipal **principal, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *id = NULL;

  if (!x509_trust_verify (trust, chain, &local))
    return deny (error, "certificate of '%s' (policy '%s'): %s", cn, policy->name,
                 local->message);
  *principal = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, policy->name, policy->rights,
                                     (const char *const *) policy->streams,
                                     x509_cert_not_after (chain->certs[0]), "x509");
  auth_x509_track (self, sluice_principal_get_id (*principal), cred->peer_certs);
  return SLUICE_AUTH_ALLOW;
}

static SluiceAuthResult
auth_x509_authenticate (gpointer data, const SluiceCredentials *cred,
                        SluicePrincipal **principal, GError **error)
{
  AuthX509 *self = data;
  g_autoptr (X509Trust) trust = NULL;
  g_autoptr (X509PolicyMap) map = NULL;
  g_autoptr (X509Chain) chain = NULL;
  g_autoptr (SluiceDevice) device = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *cn = NULL;
  const X509Policy *policy;
  GBytes *leaf_der;
  SluiceAuthResult r;

  g_return_val_if_fail (cred != NULL && principal != NULL, SLUICE_AUTH_DEFER);

  if (!is_certificate_login (cred))
    return SLUICE_AUTH_DEFER;

  chain = x509_chain_parse (cred->peer_certs, &local);
  if (chain == NULL)
    return deny (error, "%s", local->message);
  leaf_der = cred->peer_certs->pdata[0];
  cn = x509_cert_common_name (chain->certs[0], &local);
  if (cn == NULL)
    return deny (error, "%s", local->message);

  auth_x509_get_state (self, &trust, &map);

  /* A mapped CN is a service or application, not a device. */
  policy = x509_policy_map_lookup (map, cn);
  if (policy != NULL)
    {
      if (cred->resource != NULL && strstr (cred->resource, "/devices/") != NULL)
        return deny (error, "certificate CN '%s' is policy '%s', which cannot connect as "
                     "device '%s'", cn, policy->name, cred->resource);
      return authenticate_policy (self, trust, chain, policy, cred, cn, principal, error);
    }

  if (!check_claims (cred, cn, error))
    return SLUICE_AUTH_DENY;

  device = sluice_host_registry_lookup (self->host, cn);
  if (device == NULL)
    return deny (error, "certificate CN '%s': unknown device", cn);
  if (!device->enabled)
    return deny (error, "device '%s' is disabled", cn);

  if (g_strcmp0 (device->auth_type, "selfSigned") == 0)
    r = authenticate_self_signed (device, chain, leaf_der, error);
  else if (g_strcmp0 (device->auth_type, "certificateAuthority") == 0)
    {
      if (!x509_trust_verify (trust, chain, &local))
        return deny (error, "device '%s': %s", cn, local->message);
      r = SLUICE_AUTH_ALLOW;
    }
  else
    return deny (error, "device '%s' authenticates with '%s', not a certificate", cn,
                 device->auth_type != NULL ? device->auth_type : "sas");
  if (r != SLUICE_AUTH_ALLOW)
    return r;

  *principal = sluice_principal_new (SLUICE_PRINCIPAL_DEVICE, cn, SLUICE_RIGHT_DEVICE_CONNECT,
                                     NULL, x509_cert_not_after (chain->certs[0]), "x509");
  if (g_strcmp0 (device->auth_type, "certificateAuthority") == 0)
    auth_x509_track (self, sluice_principal_get_id (*principal), cred->peer_certs);
  return SLUICE_AUTH_ALLOW;
}

static gboolean
load_state (const AuthX509Options *opts, SluiceConfig *config, X509Trust **trust,
            X509PolicyMap **map, GError **error)
{
  g_autoptr (X509Trust) t = NULL;
  g_autoptr (X509PolicyMap) m = NULL;

  t = x509_trust_load ((const char *const *) opts->ca, (const char *const *) opts->crl, error);
  if (t == NULL)
    return FALSE;
  m = x509_policy_map_load ((const char *const *) opts->policy_map, config, error);
  if (m == NULL)
    return FALSE;
  if (x509_policy_map_size (m) > 0 && x509_trust_get_n_cas (t) == 0)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                           "policy-map needs ca: mapped certificates are verified "
                           "against it");
      return FALSE;
    }
  *trust = g_steal_pointer (&t);
  *map = g_steal_pointer (&m);
  return TRUE;
}

/* `FILE: [auth.NAME] ...` as every config error reads. */
static void
prefix_config_error (GError **error, SluiceConfig *config, const char *instance_name)
{
  g_prefix_error (error, "%s: [auth.%s] ", sluice_config_get_path (config), instance_name);
}

static gpointer
auth_x509_create (SluiceHost *host, const char *instance_name, const void *options,
                  SluiceConfig *config, GError **error)
{
  static const AuthX509Options no_options = { NULL, NULL, NULL };
  const AuthX509Options *opts = options != NULL ? options : &no_options;
  X509Trust *trust = NULL;
  X509PolicyMap *map = NULL;
  AuthX509 *self;

  if (!load_state (opts, config, &trust, &map, error))
    {
      prefix_config_error (error, config, instance_name);
      return NULL;
    }

  self = g_new0 (AuthX509, 1);
  self->host = host;
  self->name = g_strdup (instance_name);
  g_mutex_init (&self->lock);
  self->trust = trust;
  self->map = map;
  self->verified = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) g_ptr_array_unref);

  g_info ("auth.%s: %u CA certificates, %u CRLs, %u mapped policies", instance_name,
          x509_trust_get_n_cas (trust), x509_trust_get_n_crls (trust),
          x509_policy_map_size (map));
  return self;
}

static void
auth_x509_destroy (gpointer data)
{
  AuthX509 *self = data;

  if (self == NULL)
    return;
  g_clear_pointer (&self->verified, g_hash_table_unref);
  g_clear_pointer (&self->trust, x509_trust_unref);
  g_clear_pointer (&self->map, x509_policy_map_unref);
  g_mutex_clear (&self->lock);
  g_free (self->name);
  g_free (self);
}

/* Ids of tracked sessions whose chain no longer verifies or whose policy
 * mapping changed. Takes the entries it returns out of `verified`. */
static char **
collect_revoked (AuthX509 *self, X509Trust *trust, X509PolicyMap *old_map,
                 X509PolicyMap *map)
{
  g_autoptr (GPtrArray) revoked = g_ptr_array_new ();
  g_autoptr (GHashTable) snapshot = NULL;
  GHashTableIter it;
  gpointer key, value;

  /* Verify outside the lock: workers keep authenticating meanwhile. */
  g_mutex_lock (&self->lock);
  snapshot = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify) g_ptr_array_unref);
  g_hash_table_iter_init (&it, self->verified);
  while (g_hash_table_iter_next (&it, &key, &value))
    g_hash_table_insert (snapshot, g_strdup (key), g_ptr_array_ref (value));
  g_mutex_unlock (&self->lock);

  g_hash_table_iter_init (&it, snapshot);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      const char *id = key;
      g_autoptr (X509Chain) chain = x509_chain_parse (value, NULL);
      gboolean gone = chain == NULL || !x509_trust_verify (trust, chain, NULL);

      if (!gone && g_str_has_prefix (id, "policy/"))
        gone = !x509_policy_map_same (old_map, map, id + strlen ("policy/"));
      if (gone)
        g_ptr_array_add (revoked, g_strdup (id));
    }

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < revoked->len; i++)
    g_hash_table_remove (self->verified, revoked->pdata[i]);
  g_mutex_unlock (&self->lock);
  g_ptr_array_add (revoked, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&revoked), FALSE);
}

/* SIGHUP: reread this instance's section and its `ca` / `crl` files (so a
 * new CRL takes effect without a restart), then close the sessions whose
 * certificates no longer pass. */
static char **
auth_x509_reload (gpointer data, SluiceConfig *config, GError **error)
{
  AuthX509 *self = data;
  g_autofree char *section = g_strconcat ("auth.", self->name, NULL);
  AuthX509Options opts = { NULL, NULL, NULL };
  X509Trust *trust = NULL, *old_trust;
  X509PolicyMap *map = NULL, *old_map;
  gboolean ok;
  char **revoked;

  ok = sluice_config_parse_section (config, section, auth_x509_options, auth_x509_extra_keys,
                                    &opts, error)
       && load_state (&opts, config, &trust, &map, error);
  sluice_options_clear (auth_x509_options, &opts);
  if (!ok)
    return NULL;

  g_mutex_lock (&self->lock);
  old_trust = self->trust;
  old_map = self->map;
  self->trust = trust;
  self->map = map;
  g_mutex_unlock (&self->lock);

  revoked = collect_revoked (self, trust, old_map, map);
  /* Workers may still hold the old state; the last of them frees it. */
  x509_trust_unref (old_trust);
  x509_policy_map_unref (old_map);

  g_info ("auth.%s: reloaded %u CA certificates, %u CRLs, %u mapped policies; "
          "%u sessions revoked", self->name, x509_trust_get_n_cas (trust),
          x509_trust_get_n_crls (trust), x509_policy_map_size (map), g_strv_length (revoked));
  return revoked;
}

static const SluiceAuthVTable auth_x509_vtable = {
  .create = auth_x509_create,
  .destroy = auth_x509_destroy,
  .authenticate = auth_x509_authenticate,
  .authorize = NULL,   /* DEFER: the core's rights check is all this plugin asks */
  .reload = auth_x509_reload,
};

SLUICE_PLUGIN_DEFINE (auth, x509, "0.1.0",
                      "TLS client certificates: thumbprint-pinned and CA-signed devices, "
                      "CRLs, certificate-mapped policies",
                      "Apache-2.0", &auth_x509_vtable, auth_x509_options,
                      sizeof (AuthX509Options), NULL)
