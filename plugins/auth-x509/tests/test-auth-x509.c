/* auth-x509 unit tests: the plugin driven through its vtable against a real
 * host (config, in-memory registry) from libsluice; every certificate, key
 * and CRL is made here with GnuTLS (ECDSA P-256, fast to generate).
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"
#include "host-private.h"

#include <glib/gstdio.h>
#include <string.h>

#include "auth-x509-cert.h"
#include "x509-test-certs.h"

const SluicePluginDescriptor *auth_x509_LTX_sluice_plugin_query (void);

#define HOST "hub.test"

/* --- the fixture: a host, CAs and the plugin --- */

typedef struct
{
  SluiceHost *host;
  SluiceConfig *config;          /* transfer none: owned by the host */
  const SluicePluginDescriptor *desc;
  const SluiceAuthVTable *vtable;
  gpointer options;
  gpointer self;
  char *dir;
  char *ca_path;                 /* root only */
  char *crl_path;                /* root's CRL, empty at first */
  TestCert *root;
  TestCert *intermediate;        /* signed by root */
  TestCert *other_ca;            /* trusted by nobody */
} Fixture;

static const char base_config[] =
  "[hub]\n"
  "hostname = " HOST "\n"
  "data-dir = %s\n"
  "[storage]\n"
  "plugin = file\n"
  "[auth]\n"
  "chain = key\n"
  "[auth.key]\n"
  "plugin = key\n"
  "[auth.x509]\n"
  "plugin = x509\n"
  "%s"
  "[policy.iothubowner]\n"
  "primary-key = b3duZXItcG9saWN5LWtleS1mb3ItdGhlLXRlc3RzISE=\n"
  "rights = RegistryRead;ServiceConnect;Send\n"
  "streams = events;audit\n";

static char *
write_file (Fixture *f, const char *name, const char *text)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (f->dir, name, NULL);

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

static gboolean
fixture_load (Fixture *f, const char *x509_keys, GError **error)
{
  static const char *const extra_keys[] = { "plugin", NULL };
  g_autofree char *data_dir = g_build_filename (f->dir, "data", NULL);
  g_autofree char *text = g_strdup_printf (base_config, data_dir, x509_keys);

  f->config = sluice_config_load_from_data ("test.conf", text, error);
  if (f->config == NULL)
    return FALSE;
  f->host = sluice_host_new (f->config, error);
  if (f->host == NULL)
    {
      f->config = NULL;   /* freed by sluice_host_new on failure */
      return FALSE;
    }
  f->desc = auth_x509_LTX_sluice_plugin_query ();
  f->vtable = f->desc->vtable;
  f->options = g_malloc0 (f->desc->options_size);
  if (!sluice_config_parse_section (f->config, "auth.x509", f->desc->options, extra_keys,
                                    f->options, error))
    return FALSE;
  f->self = f->vtable->create (f->host, "x509", f->options, f->config, error);
  return f->self != NULL;
}

static void
fixture_setup_cas (Fixture *f)
{
  CertSpec root = { .cn = "Test Root CA", .is_ca = TRUE, .serial = 1, .not_after = 30 * DAY };
  CertSpec other = { .cn = "Other CA", .is_ca = TRUE, .serial = 2, .not_after = 30 * DAY };
  CertSpec inter = { .cn = "Test Intermediate CA", .is_ca = TRUE, .serial = 3,
                     .not_after = 30 * DAY };
  g_autoptr (GError) error = NULL;
  g_autofree char *crl = NULL;

  f->dir = g_dir_make_tmp ("auth-x509-XXXXXX", &error);
  g_assert_no_error (error);
  f->root = make_cert (&root, NULL);
  f->other_ca = make_cert (&other, NULL);
  f->intermediate = make_cert (&inter, f->root);
  f->ca_path = write_file (f, "ca.pem", f->root->pem);
  crl = make_crl (f->root, NULL);
  f->crl_path = write_file (f, "crl.pem", crl);
}

static void
put_device (Fixture *f, const char *id, const char *auth_type, const char *primary,
            const char *secondary, gboolean enabled)
{
  g_autoptr (SluiceDevice) d = sluice_device_new (id);

  d->enabled = enabled;
  g_free (d->auth_type);
  d->auth_type = g_strdup (auth_type);
  d->primary_thumbprint = g_strdup (primary);
  d->secondary_thumbprint = g_strdup (secondary);
  sluice_host_registry_cache_put (f->host, d);
}

static void
fixture_setup_with (Fixture *f, const char *extra)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *keys = NULL;

  fixture_setup_cas (f);
  keys = g_strdup_printf ("ca = %s\ncrl = %s\n%s", f->ca_path, f->crl_path, extra);
  g_assert_true (fixture_load (f, keys, &error));
  g_assert_no_error (error);
  put_device (f, "ca-dev", "certificateAuthority", NULL, NULL, TRUE);
  put_device (f, "ca-off", "certificateAuthority", NULL, NULL, FALSE);
  put_device (f, "sas-dev", "sas", NULL, NULL, TRUE);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  fixture_setup_with (f, "");
}

static void
fixture_setup_map (Fixture *f, gconstpointer data)
{
  fixture_setup_with (f, "policy-map = analytics-app=>iothubowner\n");
}

/* Only the certificates: for tests of create() and of the helpers. */
static void
fixture_setup_bare (Fixture *f, gconstpointer data)
{
  fixture_setup_cas (f);
}

static void
remove_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        remove_dir (path);
      else
        g_remove (path);
    }
  g_rmdir (dir);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->self != NULL)
    f->vtable->destroy (f->self);
  if (f->options != NULL)
    {
      sluice_options_clear (f->desc->options, f->options);
      g_free (f->options);
    }
  if (f->host != NULL)
    sluice_host_free (f->host);   /* frees the config too */
  else if (f->config != NULL)
    sluice_config_free (f->config);
  test_cert_free (f->root);
  test_cert_free (f->intermediate);
  test_cert_free (f->other_ca);
  if (f->dir != NULL)
    remove_dir (f->dir);
  g_free (f->dir);
  g_free (f->ca_path);
  g_free (f->crl_path);
}

/* --- driving the plugin --- */

static GPtrArray *
chain_of (TestCert *leaf, ...)
{
  GPtrArray *chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  va_list ap;
  TestCert *c;

  g_ptr_array_add (chain, g_bytes_ref (leaf->der));
  va_start (ap, leaf);
  while ((c = va_arg (ap, TestCert *)) != NULL)
    g_ptr_array_add (chain, g_bytes_ref (c->der));
  va_end (ap);
  return chain;
}

static SluiceAuthResult
run_peer (Fixture *f, GPtrArray *chain, SluicePrincipal **principal, GError **error)
{
  SluiceCredentials cred = { 0 };

  cred.type = SLUICE_CREDENTIALS_TLS_PEER;
  cred.protocol = "test";
  cred.peer = "127.0.0.1:1";
  cred.peer_certs = chain;
  return f->vtable->authenticate (f->self, &cred, principal, error);
}

/* An IoT Hub MQTT device login with a certificate: username, no password,
 * client id = device id, resource = the device. */
static SluiceAuthResult
run_mqtt (Fixture *f, GPtrArray *chain, const char *device_id, const char *password,
          SluicePrincipal **principal, GError **error)
{
  SluiceCredentials cred = { 0 };
  g_autofree char *username = g_strdup_printf (HOST "/%s/?api-version=2021-04-12", device_id);
  g_autofree char *resource = g_strdup_printf (HOST "/devices/%s", device_id);

  cred.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
  cred.protocol = "mqtt";
  cred.peer = "127.0.0.1:2";
  cred.username = username;
  cred.password = password;
  cred.client_id = device_id;
  cred.resource = resource;
  cred.peer_certs = chain;
  return f->vtable->authenticate (f->self, &cred, principal, error);
}

static void
assert_denied (SluiceAuthResult r, SluicePrincipal *principal, GError *error, const char *why)
{
  g_assert_cmpint (r, ==, SLUICE_AUTH_DENY);
  g_assert_null (principal);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED);
  g_test_message ("refused: %s", error->message);
  if (strstr (error->message, why) == NULL)
    g_error ("expected '%s' in '%s'", why, error->message);
}

static void
assert_device (SluiceAuthResult r, SluicePrincipal *p, GError *error, const char *id,
               TestCert *leaf)
{
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, SLUICE_AUTH_ALLOW);
  g_assert_nonnull (p);
  g_assert_cmpint (sluice_principal_get_kind (p), ==, SLUICE_PRINCIPAL_DEVICE);
  g_assert_cmpstr (sluice_principal_get_name (p), ==, id);
  g_assert_cmpuint (sluice_principal_get_rights (p), ==, SLUICE_RIGHT_DEVICE_CONNECT);
  g_assert_cmpstr (sluice_principal_get_auth_method (p), ==, "x509");
  g_assert_cmpint (sluice_principal_get_expires_at (p), ==,
                   (gint64) gnutls_x509_crt_get_expiration_time (leaf->crt));
}

/* --- tests --- */

static void
test_descriptor (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (f->desc->kind, ==, SLUICE_PLUGIN_KIND_AUTH);
  g_assert_cmpstr (f->desc->name, ==, "x509");
  g_assert_nonnull (f->vtable->authenticate);
  g_assert_nonnull (f->vtable->reload);
}

static void
test_defer (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->root, 100);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) empty = g_ptr_array_new ();
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceCredentials cred = { 0 };

  /* A SAS token, even over a TLS connection with a certificate. */
  cred.type = SLUICE_CREDENTIALS_SAS_TOKEN;
  cred.token = "SharedAccessSignature sr=x&sig=y&se=1";
  cred.peer_certs = chain;
  g_assert_cmpint (f->vtable->authenticate (f->self, &cred, &p, &error), ==, SLUICE_AUTH_DEFER);
  /* A password means another method, certificate or not. */
  g_assert_cmpint (run_mqtt (f, chain, "ca-dev", "secret", &p, &error), ==, SLUICE_AUTH_DEFER);
  /* No certificate. */
  g_assert_cmpint (run_peer (f, NULL, &p, &error), ==, SLUICE_AUTH_DEFER);
  g_assert_cmpint (run_peer (f, empty, &p, &error), ==, SLUICE_AUTH_DEFER);
  g_assert_cmpint (run_mqtt (f, NULL, "ca-dev", NULL, &p, &error), ==, SLUICE_AUTH_DEFER);
  g_assert_null (p);
  g_assert_no_error (error);
}

static void
test_self_signed (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ss-dev", NULL, 200);
  g_autoptr (TestCert) other = make_leaf ("ss-dev", NULL, 201);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) other_chain = chain_of (other, NULL);
  g_autofree char *thumb = x509_thumbprint_sha256 (leaf->der);
  g_autofree char *upper = g_ascii_strup (thumb, -1);
  g_autofree char *sha1 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA1, leaf->der);
  g_autoptr (GString) colons = g_string_new (NULL);
  const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000";
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  for (const char *c = upper; *c != '\0'; c += 2)
    g_string_append_printf (colons, "%s%.2s", colons->len > 0 ? ":" : "", c);

  /* Primary, upper case. */
  put_device (f, "ss-dev", "selfSigned", upper, NULL, TRUE);
  r = run_peer (f, chain, &p, &error);
  assert_device (r, p, error, "ss-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);

  /* Secondary, with colons; over MQTT's username-without-password shape. */
  put_device (f, "ss-dev", "selfSigned", zeros, colons->str, TRUE);
  r = run_mqtt (f, chain, "ss-dev", NULL, &p, &error);
  assert_device (r, p, error, "ss-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);
  /* An empty password counts as none. */
  r = run_mqtt (f, chain, "ss-dev", "", &p, &error);
  assert_device (r, p, error, "ss-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);

  /* A SHA-1 pin (older IoT Hub tooling). */
  put_device (f, "ss-dev", "selfSigned", sha1, NULL, TRUE);
  r = run_peer (f, chain, &p, &error);
  assert_device (r, p, error, "ss-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);

  /* Another certificate with the same CN: its thumbprint differs. */
  put_device (f, "ss-dev", "selfSigned", thumb, zeros, TRUE);
  r = run_peer (f, other_chain, &p, &error);
  assert_denied (r, p, error, "neither its primary nor its secondary thumbprint");
  g_clear_error (&error);

  /* A pinned certificate is still refused once expired. */
  {
    CertSpec spec = { .cn = "ss-old", .serial = 202, .not_before = -10 * DAY,
                      .not_after = -DAY };
    g_autoptr (TestCert) old = make_cert (&spec, NULL);
    g_autoptr (GPtrArray) old_chain = chain_of (old, NULL);
    g_autofree char *old_thumb = x509_thumbprint_sha256 (old->der);

    put_device (f, "ss-old", "selfSigned", old_thumb, NULL, TRUE);
    r = run_peer (f, old_chain, &p, &error);
    assert_denied (r, p, error, "expired at");
    g_clear_error (&error);
  }

  /* A selfSigned device whose CA-signed certificate is not pinned. */
  {
    g_autoptr (TestCert) signed_leaf = make_leaf ("ss-dev", f->root, 203);
    g_autoptr (GPtrArray) signed_chain = chain_of (signed_leaf, NULL);

    r = run_peer (f, signed_chain, &p, &error);
    assert_denied (r, p, error, "thumbprint");
    g_clear_error (&error);
  }
}

static void
test_ca_good (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->root, 300);
  g_autoptr (TestCert) via_inter = make_leaf ("ca-dev", f->intermediate, 301);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) chain_with_root = chain_of (leaf, f->root, NULL);
  g_autoptr (GPtrArray) long_chain = chain_of (via_inter, f->intermediate, NULL);
  g_autoptr (GPtrArray) short_chain = chain_of (via_inter, NULL);
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  r = run_peer (f, chain, &p, &error);
  assert_device (r, p, error, "ca-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);

  r = run_mqtt (f, chain_with_root, "ca-dev", NULL, &p, &error);
  assert_device (r, p, error, "ca-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);

  /* Through an intermediate the client sends along. */
  r = run_peer (f, long_chain, &p, &error);
  assert_device (r, p, error, "ca-dev", via_inter);
  g_clear_pointer (&p, sluice_principal_unref);

  /* ... but not without it. */
  r = run_peer (f, short_chain, &p, &error);
  assert_denied (r, p, error, "does not verify");
  g_clear_error (&error);
}

static void
test_ca_expired (Fixture *f, gconstpointer data)
{
  CertSpec old = { .cn = "ca-dev", .serial = 400, .not_before = -10 * DAY, .not_after = -DAY };
  CertSpec future = { .cn = "ca-dev", .serial = 401, .not_before = DAY, .not_after = 2 * DAY };
  g_autoptr (TestCert) expired = make_cert (&old, f->root);
  g_autoptr (TestCert) early = make_cert (&future, f->root);
  g_autoptr (GPtrArray) chain = chain_of (expired, NULL);
  g_autoptr (GPtrArray) early_chain = chain_of (early, NULL);
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "expired");
  g_clear_error (&error);

  r = run_peer (f, early_chain, &p, &error);
  assert_denied (r, p, error, "not yet valid");
  g_clear_error (&error);
}

static void
test_ca_wrong (Fixture *f, gconstpointer data)
{
  CertSpec server = { .cn = "ca-dev", .serial = 502, .server_only = TRUE };
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->other_ca, 500);
  g_autoptr (TestCert) self_signed = make_leaf ("ca-dev", NULL, 501);
  g_autoptr (TestCert) server_leaf = make_cert (&server, f->root);
  g_autoptr (GPtrArray) chain = chain_of (leaf, f->other_ca, NULL);
  g_autoptr (GPtrArray) ss_chain = chain_of (self_signed, NULL);
  g_autoptr (GPtrArray) server_chain = chain_of (server_leaf, NULL);
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  /* Signed by a CA that is not configured, even with that CA sent along. */
  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "issuer is unknown");
  g_clear_error (&error);

  r = run_peer (f, ss_chain, &p, &error);
  assert_denied (r, p, error, "does not verify");
  g_clear_error (&error);

  /* A server certificate is not a client certificate. */
  r = run_peer (f, server_chain, &p, &error);
  assert_denied (r, p, error, "does not verify");
  g_clear_error (&error);
}

static void
test_ca_revoked (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->root, 600);
  g_autoptr (TestCert) kept = make_leaf ("ca-dev", f->root, 601);
  g_autoptr (TestCert) via_inter = make_leaf ("ca-dev", f->intermediate, 602);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) kept_chain = chain_of (kept, NULL);
  g_autoptr (GPtrArray) inter_chain = chain_of (via_inter, f->intermediate, NULL);
  TestCert *revoked[] = { leaf, f->intermediate, NULL };
  g_autofree char *crl = make_crl (f->root, revoked);
  g_autofree char *keys = NULL;
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  /* Fresh instance on a CRL that revokes `leaf` and the intermediate CA. */
  f->vtable->destroy (f->self);
  f->self = NULL;
  g_file_set_contents (f->crl_path, crl, -1, &error);
  g_assert_no_error (error);
  {
    g_autoptr (GError) local = NULL;

    f->self = f->vtable->create (f->host, "x509", f->options, f->config, &local);
    g_assert_no_error (local);
  }

  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "revoked");
  g_clear_error (&error);

  /* Everything under a revoked intermediate is refused too. */
  r = run_peer (f, inter_chain, &p, &error);
  assert_denied (r, p, error, "revoked");
  g_clear_error (&error);

  r = run_peer (f, kept_chain, &p, &error);
  assert_device (r, p, error, "ca-dev", kept);
  g_clear_pointer (&p, sluice_principal_unref);
}

static void
test_cn_claims (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->root, 700);
  g_autoptr (TestCert) unknown = make_leaf ("nobody", f->root, 701);
  g_autoptr (TestCert) sas = make_leaf ("sas-dev", f->root, 702);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) unknown_chain = chain_of (unknown, NULL);
  g_autoptr (GPtrArray) sas_chain = chain_of (sas, NULL);
  SluiceCredentials cred = { 0 };
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  /* Connecting as another device than the certificate names. */
  put_device (f, "dev-b", "certificateAuthority", NULL, NULL, TRUE);
  r = run_mqtt (f, chain, "dev-b", NULL, &p, &error);
  assert_denied (r, p, error, "does not match the device 'dev-b'");
  g_clear_error (&error);

  /* A plain MQTT client id that is not the CN. */
  cred.type = SLUICE_CREDENTIALS_TLS_PEER;
  cred.protocol = "mqtt";
  cred.client_id = "some-client";
  cred.peer_certs = chain;
  r = f->vtable->authenticate (f->self, &cred, &p, &error);
  assert_denied (r, p, error, "does not match the MQTT client id 'some-client'");
  g_clear_error (&error);

  /* Elsewhere the client id is the protocol's own business (AMQP). */
  cred.protocol = "amqp";
  r = f->vtable->authenticate (f->self, &cred, &p, &error);
  assert_device (r, p, error, "ca-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);

  r = run_peer (f, unknown_chain, &p, &error);
  assert_denied (r, p, error, "'nobody': unknown device");
  g_clear_error (&error);

  r = run_peer (f, sas_chain, &p, &error);
  assert_denied (r, p, error, "authenticates with 'sas'");
  g_clear_error (&error);
}

static void
test_disabled (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-off", f->root, 800);
  g_autoptr (TestCert) ss = make_leaf ("ss-off", NULL, 801);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) ss_chain = chain_of (ss, NULL);
  g_autofree char *thumb = x509_thumbprint_sha256 (ss->der);
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "device 'ca-off' is disabled");
  g_clear_error (&error);

  put_device (f, "ss-off", "selfSigned", thumb, NULL, FALSE);
  r = run_peer (f, ss_chain, &p, &error);
  assert_denied (r, p, error, "device 'ss-off' is disabled");
  g_clear_error (&error);

  /* Enabled again: accepted. */
  put_device (f, "ss-off", "selfSigned", thumb, NULL, TRUE);
  r = run_peer (f, ss_chain, &p, &error);
  assert_device (r, p, error, "ss-off", ss);
  g_clear_pointer (&p, sluice_principal_unref);
}

static void
test_subject (Fixture *f, gconstpointer data)
{
  CertSpec no_cn = { .cn = NULL, .serial = 900 };
  CertSpec two_cn = { .cn = "ca-dev", .cn2 = "dev-b", .serial = 901 };
  g_autoptr (TestCert) a = make_cert (&no_cn, f->root);
  g_autoptr (TestCert) b = make_cert (&two_cn, f->root);
  g_autoptr (GPtrArray) chain_a = chain_of (a, NULL);
  g_autoptr (GPtrArray) chain_b = chain_of (b, NULL);
  g_autoptr (GPtrArray) garbage = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  r = run_peer (f, chain_a, &p, &error);
  assert_denied (r, p, error, "no CN");
  g_clear_error (&error);

  r = run_peer (f, chain_b, &p, &error);
  assert_denied (r, p, error, "more than one CN");
  g_clear_error (&error);

  g_ptr_array_add (garbage, g_bytes_new_static ("\x30\x03\x02\x01\x01", 5));
  r = run_peer (f, garbage, &p, &error);
  assert_denied (r, p, error, "does not parse");
  g_clear_error (&error);
}

static void
test_policy_map (Fixture *f, gconstpointer data)
{
  const char *const streams[] = { "events", "audit", NULL };
  g_autoptr (TestCert) app = make_leaf ("analytics-app", f->root, 1000);
  g_autoptr (TestCert) rogue = make_leaf ("analytics-app", f->other_ca, 1001);
  g_autoptr (GPtrArray) chain = chain_of (app, NULL);
  g_autoptr (GPtrArray) rogue_chain = chain_of (rogue, NULL);
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  r = run_peer (f, chain, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, SLUICE_AUTH_ALLOW);
  g_assert_cmpint (sluice_principal_get_kind (p), ==, SLUICE_PRINCIPAL_POLICY);
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "policy/iothubowner");
  g_assert_cmpuint (sluice_principal_get_rights (p), ==, SLUICE_RIGHT_REGISTRY_READ
                    | SLUICE_RIGHT_SERVICE_CONNECT | SLUICE_RIGHT_SEND);
  g_assert_cmpstrv (sluice_principal_get_streams (p), streams);
  g_assert_cmpstr (sluice_principal_get_auth_method (p), ==, "x509");
  g_clear_pointer (&p, sluice_principal_unref);

  /* A mapped CN needs a CA-verified chain. */
  r = run_peer (f, rogue_chain, &p, &error);
  assert_denied (r, p, error, "policy 'iothubowner'");
  g_clear_error (&error);

  /* ... and cannot pose as a device. */
  r = run_mqtt (f, chain, "analytics-app", NULL, &p, &error);
  assert_denied (r, p, error, "cannot connect as device");
  g_clear_error (&error);
}

/* A reload that unmaps a CN or changes the policy closes its sessions. */
static void
test_policy_map_reload (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) app = make_leaf ("analytics-app", f->root, 1400);
  g_autoptr (GPtrArray) chain = chain_of (app, NULL);
  g_autofree char *data_dir = g_build_filename (f->dir, "data", NULL);
  g_autofree char *same_keys = g_strdup_printf ("ca = %s\npolicy-map = analytics-app=>"
                                                "iothubowner;other=>iothubowner\n",
                                                f->ca_path);
  g_autofree char *same_text = g_strdup_printf (base_config, data_dir, same_keys);
  g_autofree char *unmapped_keys = g_strdup_printf ("ca = %s\n", f->ca_path);
  g_autofree char *unmapped_text = g_strdup_printf (base_config, data_dir, unmapped_keys);
  g_autoptr (SluiceConfig) same = NULL;
  g_autoptr (SluiceConfig) unmapped = NULL;
  g_auto (GStrv) gone = NULL;
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  r = run_peer (f, chain, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r, ==, SLUICE_AUTH_ALLOW);
  g_clear_pointer (&p, sluice_principal_unref);

  /* Another CN mapped besides: analytics-app keeps its session. */
  same = sluice_config_load_from_data ("same.conf", same_text, &error);
  g_assert_no_error (error);
  gone = f->vtable->reload (f->self, same, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (gone), ==, 0);
  g_clear_pointer (&gone, g_strfreev);

  unmapped = sluice_config_load_from_data ("unmapped.conf", unmapped_text, &error);
  g_assert_no_error (error);
  gone = f->vtable->reload (f->self, unmapped, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (gone, ((const char *const[]) { "policy/iothubowner", NULL }));

  /* Now analytics-app is a device name like any other (and no device). */
  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "unknown device");
  g_clear_error (&error);
}

static void
test_reload (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->root, 1100);
  g_autoptr (TestCert) other = make_leaf ("dev-b", f->root, 1101);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) other_chain = chain_of (other, NULL);
  TestCert *revoked[] = { leaf, NULL };
  g_autofree char *crl = make_crl (f->root, revoked);
  g_autofree char *bad_keys = NULL;
  g_autoptr (SluiceConfig) bad = NULL;
  g_auto (GStrv) gone = NULL;
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  put_device (f, "dev-b", "certificateAuthority", NULL, NULL, TRUE);
  r = run_peer (f, chain, &p, &error);
  assert_device (r, p, error, "ca-dev", leaf);
  g_clear_pointer (&p, sluice_principal_unref);
  r = run_peer (f, other_chain, &p, &error);
  assert_device (r, p, error, "dev-b", other);
  g_clear_pointer (&p, sluice_principal_unref);

  /* Nothing changed: nothing revoked. */
  gone = f->vtable->reload (f->self, f->config, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gone);
  g_assert_cmpuint (g_strv_length (gone), ==, 0);
  g_clear_pointer (&gone, g_strfreev);

  /* A new CRL: ca-dev's session is to be closed, dev-b's is not. */
  g_file_set_contents (f->crl_path, crl, -1, &error);
  g_assert_no_error (error);
  gone = f->vtable->reload (f->self, f->config, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (gone, ((const char *const[]) { "devices/ca-dev", NULL }));
  g_clear_pointer (&gone, g_strfreev);
  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "revoked");
  g_clear_error (&error);

  /* A reload that fails keeps the old state. */
  {
    g_autofree char *data_dir = g_build_filename (f->dir, "data", NULL);
    g_autofree char *text = g_strdup_printf (base_config, data_dir,
                                             "ca = /nonexistent/ca.pem\n");

    bad = sluice_config_load_from_data ("bad.conf", text, &error);
    g_assert_no_error (error);
  }
  gone = f->vtable->reload (f->self, bad, &error);
  g_assert_null (gone);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "/nonexistent/ca.pem"));
  g_clear_error (&error);
  r = run_peer (f, other_chain, &p, &error);
  assert_device (r, p, error, "dev-b", other);
  g_clear_pointer (&p, sluice_principal_unref);
}

static void
test_config_errors (Fixture *f, gconstpointer data)
{
  struct
  {
    const char *keys;
    const char *why;
  } cases[] = {
    { "ca = /nonexistent/ca.pem\n", "(value '/nonexistent/ca.pem')" },
    { "ca = @DIR@/crl.pem\n", "ca: no PEM certificate in it (value '" },
    { "ca = @DIR@/ca.pem\ncrl = @DIR@/ca.pem\n", "crl: no PEM CRL in it (value '" },
    { "ca = @DIR@/ca.pem\npolicy-map = app\n", "expected CN=>policy (value 'app')" },
    { "ca = @DIR@/ca.pem\npolicy-map = app=>nosuch\n", "no section [policy.nosuch]" },
    { "ca = @DIR@/ca.pem\npolicy-map = app=>iothubowner;app=>iothubowner\n", "mapped twice" },
    { "policy-map = app=>iothubowner\n", "policy-map needs ca" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_auto (GStrv) parts = g_strsplit (cases[i].keys, "@DIR@", -1);
      g_autofree char *keys = g_strjoinv (f->dir, parts);

      if (f->self != NULL)
        f->vtable->destroy (f->self);
      f->self = NULL;
      if (f->options != NULL)
        {
          sluice_options_clear (f->desc->options, f->options);
          g_clear_pointer (&f->options, g_free);
        }
      g_clear_pointer (&f->host, sluice_host_free);
      f->config = NULL;

      g_assert_false (fixture_load (f, keys, &error));
      g_assert_nonnull (error);
      g_test_message ("%s", error->message);
      if (strstr (error->message, cases[i].why) == NULL)
        g_error ("case %" G_GSIZE_FORMAT ": expected '%s' in '%s'", i, cases[i].why,
                 error->message);
      g_assert_nonnull (strstr (error->message, "test.conf: [auth.x509]"));
    }
}

/* Without `ca`, CA-verified devices cannot pass, pinned ones still can. */
static void
test_ca_none (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->root, 1200);
  g_autoptr (TestCert) ss = make_leaf ("ss-dev", NULL, 1201);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  g_autoptr (GPtrArray) ss_chain = chain_of (ss, NULL);
  g_autofree char *thumb = x509_thumbprint_sha256 (ss->der);
  g_autoptr (GError) load_error = NULL;
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  g_assert_true (fixture_load (f, "", &load_error));
  g_assert_no_error (load_error);
  put_device (f, "ca-dev", "certificateAuthority", NULL, NULL, TRUE);
  put_device (f, "ss-dev", "selfSigned", thumb, NULL, TRUE);

  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "no CA is configured");
  g_clear_error (&error);

  r = run_peer (f, ss_chain, &p, &error);
  assert_device (r, p, error, "ss-dev", ss);
  g_clear_pointer (&p, sluice_principal_unref);
}

/* A DER CRL file works as a PEM one does. */
static void
test_crl_der (Fixture *f, gconstpointer data)
{
  g_autoptr (TestCert) leaf = make_leaf ("ca-dev", f->root, 1300);
  g_autoptr (GPtrArray) chain = chain_of (leaf, NULL);
  TestCert *revoked[] = { leaf, NULL };
  g_autofree char *pem = make_crl (f->root, revoked);
  g_autofree char *der_path = g_build_filename (f->dir, "crl.der", NULL);
  g_autofree char *keys = NULL;
  g_autoptr (GError) load_error = NULL;
  gnutls_datum_t in = { (unsigned char *) pem, (unsigned int) strlen (pem) };
  gnutls_datum_t out = { NULL, 0 };
  gnutls_x509_crl_t crl;
  SluicePrincipal *p = NULL;
  GError *error = NULL;
  SluiceAuthResult r;

  CHECK (gnutls_x509_crl_init (&crl));
  CHECK (gnutls_x509_crl_import (crl, &in, GNUTLS_X509_FMT_PEM));
  CHECK (gnutls_x509_crl_export2 (crl, GNUTLS_X509_FMT_DER, &out));
  g_file_set_contents (der_path, (const char *) out.data, out.size, &error);
  g_assert_no_error (error);
  gnutls_free (out.data);
  gnutls_x509_crl_deinit (crl);

  keys = g_strdup_printf ("ca = %s\ncrl = %s\n", f->ca_path, der_path);
  g_assert_true (fixture_load (f, keys, &load_error));
  g_assert_no_error (load_error);
  put_device (f, "ca-dev", "certificateAuthority", NULL, NULL, TRUE);

  r = run_peer (f, chain, &p, &error);
  assert_denied (r, p, error, "revoked");
  g_clear_error (&error);
}

static void
test_thumbprint (Fixture *f, gconstpointer data)
{
  g_autofree char *thumb = x509_thumbprint_sha256 (f->root->der);
  g_autofree char *sha1 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA1, f->root->der);
  g_autofree char *truncated = g_strndup (thumb, 62);
  g_autofree char *junk = g_strdup (thumb);

  g_assert_cmpuint (strlen (thumb), ==, 64);
  g_assert_true (x509_thumbprint_matches (f->root->der, thumb));
  g_assert_true (x509_thumbprint_matches (f->root->der, sha1));
  g_assert_false (x509_thumbprint_matches (f->other_ca->der, thumb));
  g_assert_false (x509_thumbprint_matches (f->root->der, truncated));
  g_assert_false (x509_thumbprint_matches (f->root->der, ""));
  g_assert_false (x509_thumbprint_matches (f->root->der, NULL));
  junk[10] = 'g';
  g_assert_false (x509_thumbprint_matches (f->root->der, junk));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  if (g_getenv ("SLUICE_PLUGIN_PATH") == NULL)
    g_error ("SLUICE_PLUGIN_PATH is not set: run through `make check` (the host loads "
             "storage-file and auth-key from the build tree)");

#define ADD(path, setup, func) \
  g_test_add ("/auth/x509/" path, Fixture, NULL, setup, func, fixture_teardown)
  ADD ("descriptor", fixture_setup, test_descriptor);
  ADD ("defer", fixture_setup, test_defer);
  ADD ("self-signed", fixture_setup, test_self_signed);
  ADD ("ca/good", fixture_setup, test_ca_good);
  ADD ("ca/expired", fixture_setup, test_ca_expired);
  ADD ("ca/wrong-ca", fixture_setup, test_ca_wrong);
  ADD ("ca/revoked", fixture_setup, test_ca_revoked);
  ADD ("ca/none", fixture_setup_bare, test_ca_none);
  ADD ("ca/crl-der", fixture_setup_bare, test_crl_der);
  ADD ("cn-claims", fixture_setup, test_cn_claims);
  ADD ("disabled", fixture_setup, test_disabled);
  ADD ("subject", fixture_setup, test_subject);
  ADD ("policy-map", fixture_setup_map, test_policy_map);
  ADD ("policy-map/reload", fixture_setup_map, test_policy_map_reload);
  ADD ("reload", fixture_setup, test_reload);
  ADD ("config-errors", fixture_setup_bare, test_config_errors);
  ADD ("thumbprint", fixture_setup_bare, test_thumbprint);
#undef ADD

  return g_test_run ();
}
