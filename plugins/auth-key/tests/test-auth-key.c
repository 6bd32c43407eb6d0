/* auth-key unit tests: the plugin driven through its vtable, against a real
 * host (config, plugin loader, in-memory registry) from libsluice.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config-private.h"
#include "host-private.h"

#include <string.h>

const SluicePluginDescriptor *auth_key_LTX_sluice_plugin_query (void);

#define HOST "hub.test"
/* Base64 of 32 bytes each. */
#define OWNER_KEY "b3duZXItcG9saWN5LWtleS1mb3ItdGhlLXRlc3RzISE="
#define OWNER_KEY2 "b3duZXItc2Vjb25kYXJ5LWtleS1mb3ItdGVzdHMhISE="
#define SERVICE_KEY "c2VydmljZS1wb2xpY3kta2V5LWZvci10aGUtdGVzdCE="
#define DEVICE_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define DEVICE_KEY2 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define OTHER_KEY "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA="

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
  "%s"
  "[policy.iothubowner]\n"
  "primary-key = " OWNER_KEY "\n"
  "secondary-key = " OWNER_KEY2 "\n"
  "rights = RegistryRead;RegistryWrite;ServiceConnect;DeviceConnect;Send;Listen;Manage\n"
  "[policy.service]\n"
  "primary-key = " SERVICE_KEY "\n"
  "rights = ServiceConnect;send\n"
  "streams = events;audit\n";

typedef struct
{
  SluiceHost *host;
  SluiceConfig *config;          /* transfer none: owned by the host */
  const SluicePluginDescriptor *desc;
  const SluiceAuthVTable *vtable;
  gpointer options;
  gpointer self;
} Fixture;

static char *
config_text (const char *auth_extra, const char *policies_override)
{
  g_autofree char *data_dir = g_build_filename (g_get_user_data_dir (), "sluice", NULL);
  g_autofree char *text = g_strdup_printf (base_config, data_dir, auth_extra);

  if (policies_override == NULL)
    return g_steal_pointer (&text);
  /* Replace every [policy.*] section with the given ones. */
  *strstr (text, "[policy.") = '\0';
  return g_strconcat (text, policies_override, NULL);
}

/* Host and plugin options; the plugin instance is created by the caller so
 * tests can see create() fail. */
static gboolean
fixture_init_host (Fixture *f, const char *text, GError **error)
{
  static const char *const extra_keys[] = { "plugin", NULL };
  SluiceConfig *config;

  config = sluice_config_load_from_data ("test.conf", text, error);
  if (config == NULL)
    return FALSE;
  f->config = config;
  f->host = sluice_host_new (config, error);
  if (f->host == NULL)
    return FALSE;

  f->desc = auth_key_LTX_sluice_plugin_query ();
  f->vtable = f->desc->vtable;
  f->options = g_malloc0 (f->desc->options_size);
  return sluice_config_parse_section (f->config, "auth.key", f->desc->options, extra_keys,
                                      f->options, error);
}

static void
put_device (Fixture *f, const char *id, const char *primary, const char *secondary,
            gboolean enabled)
{
  g_autoptr (SluiceDevice) d = sluice_device_new (id);

  d->enabled = enabled;
  d->primary_key = g_strdup (primary);
  d->secondary_key = g_strdup (secondary);
  sluice_host_registry_cache_put (f->host, d);
}

static void
fixture_setup_with (Fixture *f, const char *auth_extra)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = config_text (auth_extra, NULL);

  g_assert_true (fixture_init_host (f, text, &error));
  g_assert_no_error (error);
  f->self = f->vtable->create (f->host, "key", f->options, f->config, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->self);

  put_device (f, "dev-01", DEVICE_KEY, DEVICE_KEY2, TRUE);
  put_device (f, "dev-off", DEVICE_KEY, NULL, FALSE);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  fixture_setup_with (f, "");
}

static void
fixture_setup_lifetime (Fixture *f, gconstpointer data)
{
  fixture_setup_with (f, "max-token-lifetime = 1h\n");
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
}

static gint64
now_s (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static SluiceAuthResult
run_token (Fixture *f, const char *token, const char *resource,
           SluicePrincipal **principal, GError **error)
{
  SluiceCredentials cred = { 0 };

  cred.type = SLUICE_CREDENTIALS_SAS_TOKEN;
  cred.protocol = "test";
  cred.peer = "127.0.0.1:1";
  cred.token = token;
  cred.resource = resource;
  return f->vtable->authenticate (f->self, &cred, principal, error);
}

static SluiceAuthResult
run_password (Fixture *f, const char *username, const char *password,
              SluicePrincipal **principal, GError **error)
{
  SluiceCredentials cred = { 0 };

  cred.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
  cred.protocol = "test";
  cred.username = username;
  cred.password = password;
  return f->vtable->authenticate (f->self, &cred, principal, error);
}

/* A DENY with SLUICE_ERROR_UNAUTHENTICATED whose message says `why`, and
 * that leaks no key. */
static void
assert_denied (SluiceAuthResult r, SluicePrincipal *principal, GError *error, const char *why)
{
  static const char *const secrets[] = { OWNER_KEY, OWNER_KEY2, SERVICE_KEY, DEVICE_KEY,
                                         DEVICE_KEY2, OTHER_KEY, NULL };

  g_assert_cmpint (r, ==, SLUICE_AUTH_DENY);
  g_assert_null (principal);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED);
  g_test_message ("refused: %s", error->message);
  if (strstr (error->message, why) == NULL)
    g_error ("expected '%s' in '%s'", why, error->message);
  for (gsize i = 0; secrets[i] != NULL; i++)
    g_assert_null (strstr (error->message, secrets[i]));
}

/* --- tests --- */

static void
test_descriptor (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (f->desc->kind, ==, SLUICE_PLUGIN_KIND_AUTH);
  g_assert_cmpstr (f->desc->name, ==, "key");
  g_assert_nonnull (f->desc->owned_sections);
  g_assert_cmpstr (f->desc->owned_sections[0], ==, "policy.");
  g_assert_null (f->desc->owned_sections[1]);
  g_assert_nonnull (f->vtable->create);
  g_assert_nonnull (f->vtable->authenticate);
  g_assert_nonnull (f->vtable->reload);
}

static void
test_device_token_ok (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 3600;
  g_autofree char *token = sluice_sas_token_make (HOST "/devices/dev-01", DEVICE_KEY, TRUE,
                                                  NULL, se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (run_token (f, token, HOST "/devices/dev-01", &p, &error), ==,
                   SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpint (sluice_principal_get_kind (p), ==, SLUICE_PRINCIPAL_DEVICE);
  g_assert_cmpstr (sluice_principal_get_name (p), ==, "dev-01");
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "devices/dev-01");
  g_assert_cmpuint (sluice_principal_get_rights (p), ==, SLUICE_RIGHT_DEVICE_CONNECT);
  g_assert_cmpint (sluice_principal_get_expires_at (p), ==, se);
  g_assert_cmpstr (sluice_principal_get_auth_method (p), ==, "sas");
}

static void
test_device_token_variants (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 3600;
  /* Host name case differs from the config; a module path below the device. */
  g_autofree char *module = sluice_sas_token_make ("HUB.Test/devices/dev-01/modules/m1",
                                                   DEVICE_KEY, TRUE, NULL, se);
  g_autofree char *secondary = sluice_sas_token_make (HOST "/devices/dev-01", DEVICE_KEY2,
                                                      TRUE, NULL, se);
  g_autoptr (SluicePrincipal) p1 = NULL;
  g_autoptr (SluicePrincipal) p2 = NULL;
  g_autoptr (SluicePrincipal) p3 = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (run_token (f, module, HOST "/devices/dev-01/modules/m1", &p1, &error), ==,
                   SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_name (p1), ==, "dev-01");

  /* The secondary key works as well (key rotation). */
  g_assert_cmpint (run_token (f, secondary, NULL, &p2, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_id (p2), ==, "devices/dev-01");

  /* The token may also come as the MQTT / AMQP password. */
  g_assert_cmpint (run_password (f, HOST "/dev-01/?api-version=2021-04-12", secondary,
                                 &p3, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_id (p3), ==, "devices/dev-01");
}

static void
test_policy_token_iothub (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 600;
  g_autofree char *token = sluice_sas_token_make (HOST, OWNER_KEY, TRUE, "iothubowner", se);
  g_autofree char *token2 = sluice_sas_token_make (HOST "/devices", OWNER_KEY2, TRUE,
                                                   "iothubowner", se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (SluicePrincipal) p2 = NULL;
  g_autoptr (GError) error = NULL;

  /* A hub-wide token covers any device path. */
  g_assert_cmpint (run_token (f, token, HOST "/devices/dev-01", &p, &error), ==,
                   SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpint (sluice_principal_get_kind (p), ==, SLUICE_PRINCIPAL_POLICY);
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "policy/iothubowner");
  g_assert_cmpuint (sluice_principal_get_rights (p), ==, 0x7f);
  g_assert_null (sluice_principal_get_streams (p));
  g_assert_cmpint (sluice_principal_get_expires_at (p), ==, se);

  /* Secondary policy key. */
  g_assert_cmpint (run_token (f, token2, NULL, &p2, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_name (p2), ==, "iothubowner");
}

static void
test_policy_token_eventhubs (Fixture *f, gconstpointer data)
{
  const char *const streams[] = { "events", "audit", NULL };
  gint64 se = now_s () + 600;
  /* Event Hubs signs with the key text's bytes. */
  g_autofree char *token = sluice_sas_token_make ("sb://" HOST "/events", SERVICE_KEY, FALSE,
                                                  "service", se);
  g_autofree char *decoded_key = sluice_sas_token_make ("sb://" HOST "/events", SERVICE_KEY,
                                                        TRUE, "service", se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (SluicePrincipal) p2 = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  g_assert_cmpint (run_token (f, token, "amqps://" HOST "/events/ConsumerGroups/$default",
                              &p, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "policy/service");
  g_assert_cmpuint (sluice_principal_get_rights (p), ==,
                    SLUICE_RIGHT_SERVICE_CONNECT | SLUICE_RIGHT_SEND);
  g_assert_cmpstrv (sluice_principal_get_streams (p), streams);

  /* The same token signed IoT Hub style (decoded key) does not verify. */
  r = run_token (f, decoded_key, NULL, &p2, &error);
  assert_denied (r, p2, error, "signature mismatch");
}

static void
test_expired (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () - 5;
  g_autofree char *device = sluice_sas_token_make (HOST "/devices/dev-01", DEVICE_KEY, TRUE,
                                                   NULL, se);
  g_autofree char *policy = sluice_sas_token_make ("sb://" HOST "/events", SERVICE_KEY, FALSE,
                                                   "service", se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  r = run_token (f, device, NULL, &p, &error);
  assert_denied (r, p, error, "expired at ");
  g_assert_nonnull (strstr (error->message, "device 'dev-01'"));
  g_clear_error (&error);

  r = run_token (f, policy, NULL, &p, &error);
  assert_denied (r, p, error, "expired at ");
  g_assert_nonnull (strstr (error->message, "policy 'service'"));
}

static void
test_wrong_key (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 600;
  g_autofree char *device = sluice_sas_token_make (HOST "/devices/dev-01", OTHER_KEY, TRUE,
                                                   NULL, se);
  g_autofree char *policy = sluice_sas_token_make (HOST, OTHER_KEY, TRUE, "iothubowner", se);
  g_autofree char *tampered = sluice_sas_token_make (HOST "/devices/dev-01", DEVICE_KEY,
                                                     TRUE, NULL, se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  r = run_token (f, device, NULL, &p, &error);
  assert_denied (r, p, error, "signature mismatch");
  g_clear_error (&error);

  r = run_token (f, policy, NULL, &p, &error);
  assert_denied (r, p, error, "signature mismatch");
  g_clear_error (&error);

  /* A later expiry than was signed. */
  tampered[strlen (tampered) - 1] = tampered[strlen (tampered) - 1] == '9' ? '8' : '9';
  r = run_token (f, tampered, NULL, &p, &error);
  assert_denied (r, p, error, "signature mismatch");
}

static void
test_wrong_scope (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 600;
  g_autofree char *device = sluice_sas_token_make (HOST "/devices/dev-01", DEVICE_KEY, TRUE,
                                                   NULL, se);
  g_autofree char *prefix = sluice_sas_token_make ("sb://" HOST "/events", SERVICE_KEY, FALSE,
                                                   "service", se);
  g_autofree char *other_hub = sluice_sas_token_make ("other.test/devices/dev-01", DEVICE_KEY,
                                                      TRUE, NULL, se);
  g_autofree char *no_device = sluice_sas_token_make (HOST "/twins/dev-01", DEVICE_KEY, TRUE,
                                                      NULL, se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  r = run_token (f, device, HOST "/devices/dev-99", &p, &error);
  assert_denied (r, p, error, "does not cover");
  g_assert_nonnull (strstr (error->message, "'" HOST "/devices/dev-01'"));
  g_clear_error (&error);

  /* Segment prefix: `/events` does not cover `/events2`. */
  r = run_token (f, prefix, "sb://" HOST "/events2", &p, &error);
  assert_denied (r, p, error, "does not cover");
  g_clear_error (&error);

  r = run_token (f, other_hub, NULL, &p, &error);
  assert_denied (r, p, error, "not for this hub");
  g_clear_error (&error);

  r = run_token (f, no_device, NULL, &p, &error);
  assert_denied (r, p, error, "names no device");
}

static void
test_unknown_policy (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 600;
  g_autofree char *token = sluice_sas_token_make (HOST, OWNER_KEY, TRUE, "nosuch", se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  r = run_token (f, token, NULL, &p, &error);
  assert_denied (r, p, error, "unknown policy 'nosuch'");
}

static void
test_unknown_device (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 600;
  g_autofree char *token = sluice_sas_token_make (HOST "/devices/ghost", DEVICE_KEY, TRUE,
                                                  NULL, se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  r = run_token (f, token, NULL, &p, &error);
  assert_denied (r, p, error, "unknown device 'ghost'");
}

static void
test_disabled_device (Fixture *f, gconstpointer data)
{
  gint64 se = now_s () + 600;
  g_autofree char *token = sluice_sas_token_make (HOST "/devices/dev-off", DEVICE_KEY, TRUE,
                                                  NULL, se);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  r = run_token (f, token, NULL, &p, &error);
  assert_denied (r, p, error, "device 'dev-off' is disabled");
  g_clear_error (&error);

  /* Re-enabled in the registry: accepted at once, nothing cached here. */
  put_device (f, "dev-off", DEVICE_KEY, NULL, TRUE);
  g_assert_cmpint (run_token (f, token, NULL, &p, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "devices/dev-off");
}

static void
test_malformed (Fixture *f, gconstpointer data)
{
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  r = run_token (f, "SharedAccessSignature sr=" HOST "&sig=abc", NULL, &p, &error);
  assert_denied (r, p, error, "no 'se' field");
  g_clear_error (&error);

  r = run_token (f, "Bearer abc", NULL, &p, &error);
  assert_denied (r, p, error, "malformed SAS token");
  g_clear_error (&error);

  r = run_token (f, NULL, NULL, &p, &error);
  assert_denied (r, p, error, "no SAS token");
}

static void
test_policy_key_password (Fixture *f, gconstpointer data)
{
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (SluicePrincipal) p2 = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  g_assert_cmpint (run_password (f, "service", SERVICE_KEY, &p, &error), ==,
                   SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "policy/service");
  g_assert_cmpstr (sluice_principal_get_auth_method (p), ==, "policy-key");
  g_assert_cmpint (sluice_principal_get_expires_at (p), ==, 0);
  g_clear_pointer (&p, sluice_principal_unref);

  g_assert_cmpint (run_password (f, "iothubowner", OWNER_KEY2, &p2, &error), ==,
                   SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);

  r = run_password (f, "service", OWNER_KEY, &p, &error);
  assert_denied (r, p, error, "policy 'service': wrong key");
  g_clear_error (&error);

  /* MQTT service login: Username = policy, Password = a token without skn
   * signed with that policy's key. */
  {
    g_autofree char *token = sluice_sas_token_make (HOST, SERVICE_KEY, TRUE, NULL,
                                                    now_s () + 600);

    g_assert_cmpint (run_password (f, "service", token, &p, &error), ==, SLUICE_AUTH_ALLOW);
    g_assert_no_error (error);
    g_assert_cmpstr (sluice_principal_get_id (p), ==, "policy/service");
    g_assert_cmpstr (sluice_principal_get_auth_method (p), ==, "sas");
    g_clear_pointer (&p, sluice_principal_unref);

    /* The same token as a bare SAS credential names no device: refused. */
    r = run_token (f, token, NULL, &p, &error);
    assert_denied (r, p, error, "names no device");
    g_clear_error (&error);
  }

  /* Not a policy name: another link may know the user. */
  g_assert_cmpint (run_password (f, "alice", "s3cret-pw", &p, &error), ==, SLUICE_AUTH_DEFER);
  g_assert_no_error (error);
  g_assert_null (p);
}

static void
test_connection_string_password (Fixture *f, gconstpointer data)
{
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;
  gint64 se = now_s () + 600;
  g_autofree char *token = sluice_sas_token_make ("sb://" HOST "/events", SERVICE_KEY, FALSE,
                                                  "service", se);
  g_autofree char *with_token = g_strdup_printf ("Endpoint=sb://" HOST "/;"
                                                 "SharedAccessSignature=%s;EntityPath=events",
                                                 token);

  g_assert_cmpint (run_password (f, "$ConnectionString",
                                 "Endpoint=sb://" HOST "/;SharedAccessKeyName=service;"
                                 "SharedAccessKey=" SERVICE_KEY ";EntityPath=events",
                                 &p, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "policy/service");
  g_clear_pointer (&p, sluice_principal_unref);

  g_assert_cmpint (run_password (f, "$ConnectionString", with_token, &p, &error), ==,
                   SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "policy/service");
  g_assert_cmpstr (sluice_principal_get_auth_method (p), ==, "sas");
  g_clear_pointer (&p, sluice_principal_unref);

  r = run_password (f, "$ConnectionString",
                    "Endpoint=sb://" HOST "/;SharedAccessKeyName=service;"
                    "SharedAccessKey=" OTHER_KEY, &p, &error);
  assert_denied (r, p, error, "wrong key");
  g_clear_error (&error);

  r = run_password (f, "$ConnectionString",
                    "Endpoint=sb://" HOST "/;SharedAccessKeyName=nosuch;"
                    "SharedAccessKey=" SERVICE_KEY, &p, &error);
  assert_denied (r, p, error, "unknown policy 'nosuch'");
  g_clear_error (&error);

  r = run_password (f, "$ConnectionString", "Endpoint=sb://" HOST "/", &p, &error);
  assert_denied (r, p, error, "without SharedAccessKeyName");
  g_clear_error (&error);

  r = run_password (f, "$ConnectionString", "garbage", &p, &error);
  assert_denied (r, p, error, "malformed connection string");
}

static void
test_tls_peer_defers (Fixture *f, gconstpointer data)
{
  g_autoptr (GPtrArray) certs = g_ptr_array_new ();
  SluiceCredentials cred = { 0 };
  SluicePrincipal *p = NULL;
  g_autoptr (GError) error = NULL;

  cred.type = SLUICE_CREDENTIALS_TLS_PEER;
  cred.peer_certs = certs;
  g_assert_cmpint (f->vtable->authenticate (f->self, &cred, &p, &error), ==,
                   SLUICE_AUTH_DEFER);
  g_assert_no_error (error);
  g_assert_null (p);
}

static void
test_max_token_lifetime (Fixture *f, gconstpointer data)
{
  gint64 now = now_s ();
  g_autofree char *ok = sluice_sas_token_make (HOST "/devices/dev-01", DEVICE_KEY, TRUE, NULL,
                                               now + 1800);
  g_autofree char *too_long = sluice_sas_token_make (HOST "/devices/dev-01", DEVICE_KEY, TRUE,
                                                     NULL, now + 7200);
  g_autoptr (SluicePrincipal) p = NULL;
  g_autoptr (GError) error = NULL;
  SluiceAuthResult r;

  g_assert_cmpint (run_token (f, ok, NULL, &p, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_clear_pointer (&p, sluice_principal_unref);

  r = run_token (f, too_long, NULL, &p, &error);
  assert_denied (r, p, error, "max-token-lifetime");
}

static SluiceConfig *
load_policies (const char *policies)
{
  g_autofree char *text = config_text ("", policies);
  g_autoptr (GError) error = NULL;
  SluiceConfig *config = sluice_config_load_from_data ("test.conf", text, &error);

  g_assert_no_error (error);
  return config;
}

static void
test_reload (Fixture *f, gconstpointer data)
{
  g_autoptr (SluiceConfig) same = NULL;
  g_autoptr (SluiceConfig) changed = NULL;
  g_autoptr (SluiceConfig) bad = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) none = NULL;
  g_auto (GStrv) revoked = NULL;
  g_autoptr (SluicePrincipal) p = NULL;
  SluiceAuthResult r;

  /* Same policies: nobody is revoked. */
  same = load_policies ("[policy.iothubowner]\n"
                        "primary-key = " OWNER_KEY "\n"
                        "secondary-key = " OWNER_KEY2 "\n"
                        "rights = RegistryRead;RegistryWrite;ServiceConnect;DeviceConnect;"
                        "Send;Listen;Manage\n"
                        "[policy.service]\n"
                        "primary-key = " SERVICE_KEY "\n"
                        "rights = ServiceConnect;Send\n"
                        "streams = events;audit\n");
  none = f->vtable->reload (f->self, same, &error);
  g_assert_no_error (error);
  g_assert_nonnull (none);
  g_assert_cmpuint (g_strv_length (none), ==, 0);

  /* `service` removed, `iothubowner` rotated (secondary promoted), `new` added. */
  changed = load_policies ("[policy.iothubowner]\n"
                           "primary-key = " OWNER_KEY2 "\n"
                           "rights = RegistryRead\n"
                           "[policy.new]\n"
                           "primary-key = " OTHER_KEY "\n");
  revoked = f->vtable->reload (f->self, changed, &error);
  g_assert_no_error (error);
  g_assert_nonnull (revoked);
  g_assert_cmpuint (g_strv_length (revoked), ==, 2);
  g_assert_cmpstr (revoked[0], ==, "policy/iothubowner");
  g_assert_cmpstr (revoked[1], ==, "policy/service");

  /* The new table is in force. */
  r = run_password (f, "service", SERVICE_KEY, &p, &error);
  g_assert_cmpint (r, ==, SLUICE_AUTH_DEFER);
  g_assert_no_error (error);
  r = run_password (f, "iothubowner", OWNER_KEY, &p, &error);
  assert_denied (r, p, error, "wrong key");
  g_clear_error (&error);
  g_assert_cmpint (run_password (f, "new", OTHER_KEY, &p, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
  g_assert_cmpuint (sluice_principal_get_rights (p), ==, 0);
  g_clear_pointer (&p, sluice_principal_unref);

  /* A bad file keeps the old state. */
  bad = load_policies ("[policy.new]\nprimary-key = short\n");
  g_assert_null (f->vtable->reload (f->self, bad, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_cmpint (run_password (f, "new", OTHER_KEY, &p, &error), ==, SLUICE_AUTH_ALLOW);
  g_assert_no_error (error);
}

typedef struct
{
  Fixture *f;
  gint *stop;
  gint allowed;
  gint other;
} Hammer;

static gpointer
hammer_thread (gpointer data)
{
  Hammer *h = data;

  while (!g_atomic_int_get (h->stop))
    {
      SluicePrincipal *p = NULL;
      GError *error = NULL;

      if (run_password (h->f, "iothubowner", OWNER_KEY, &p, &error) == SLUICE_AUTH_ALLOW
          && p != NULL && error == NULL)
        g_atomic_int_inc (&h->allowed);
      else
        g_atomic_int_inc (&h->other);
      g_clear_pointer (&p, sluice_principal_unref);
      g_clear_error (&error);
    }
  return NULL;
}

/* Workers authenticate while the main thread swaps the policy table. */
static void
test_reload_concurrent (Fixture *f, gconstpointer data)
{
  g_autoptr (SluiceConfig) a = load_policies ("[policy.iothubowner]\n"
                                              "primary-key = " OWNER_KEY "\n"
                                              "[policy.service]\n"
                                              "primary-key = " SERVICE_KEY "\n");
  g_autoptr (SluiceConfig) b = load_policies ("[policy.iothubowner]\n"
                                              "primary-key = " OWNER_KEY "\n");
  Hammer hammers[4];
  GThread *threads[G_N_ELEMENTS (hammers)];
  gint stop = 0;
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  gboolean all_ran = FALSE;

  for (gsize i = 0; i < G_N_ELEMENTS (hammers); i++)
    {
      hammers[i] = (Hammer) { f, &stop, 0, 0 };
      threads[i] = g_thread_new ("auth", hammer_thread, &hammers[i]);
    }
  /* At least 400 swaps, and on until every worker has been through a few
   * authentications (threads may start late on a loaded machine). */
  for (int i = 0; i < 400 || !all_ran; i++)
    {
      g_autoptr (GError) error = NULL;
      g_auto (GStrv) revoked = f->vtable->reload (f->self, i % 2 ? a : b, &error);
      guint expected;

      g_assert_no_error (error);
      g_assert_nonnull (revoked);
      /* The first swap changes both fixture policies; then even swaps
       * drop `service` and odd ones bring it back. */
      expected = i == 0 ? 2 : (i % 2 ? 0 : 1);
      g_assert_cmpuint (g_strv_length (revoked), ==, expected);
      all_ran = TRUE;
      for (gsize j = 0; j < G_N_ELEMENTS (hammers); j++)
        all_ran = all_ran && g_atomic_int_get (&hammers[j].allowed) >= 10;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  g_atomic_int_set (&stop, 1);
  for (gsize i = 0; i < G_N_ELEMENTS (hammers); i++)
    {
      g_thread_join (threads[i]);
      /* iothubowner never changed, so every attempt was allowed. */
      g_assert_cmpint (hammers[i].other, ==, 0);
      g_assert_cmpint (hammers[i].allowed, >=, 10);
    }
}

/* Each bad [policy.x] stops create() with a message naming section and key,
 * never echoing a key. */
static void
test_config_errors (void)
{
  static const struct
  {
    const char *policies;
    const char *expect;
  } cases[] = {
    { "[policy.a]\nrights = Send\n", "[policy.a] primary-key: missing" },
    { "[policy.a]\nprimary-key = c2hvcnQ=\n", "[policy.a] primary-key: not a key" },
    { "[policy.a]\nprimary-key = " OWNER_KEY "\nsecondary-key = " OWNER_KEY "x\n",
      "[policy.a] secondary-key: not a key" },
    { "[policy.a]\nprimary-key = " OWNER_KEY "\nrights = Send;Publish\n",
      "[policy.a] rights: unknown right 'Publish'" },
    { "[policy.a]\nprimary-key = " OWNER_KEY "\nstreams = events;$bad\n",
      "[policy.a] streams: not a valid stream name" },
    { "[policy.a]\nprimary-key = " OWNER_KEY "\ncolour = blue\n", "colour" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Fixture f = { NULL };
      g_autofree char *text = config_text ("", cases[i].policies);
      g_autoptr (GError) error = NULL;

      g_test_message ("case %" G_GSIZE_FORMAT ": expect '%s'", i, cases[i].expect);
      g_assert_true (fixture_init_host (&f, text, &error));
      g_assert_no_error (error);
      f.self = f.vtable->create (f.host, "key", f.options, f.config, &error);
      g_assert_null (f.self);
      g_assert_nonnull (error);
      g_test_message ("error: %s", error->message);
      if (strstr (error->message, cases[i].expect) == NULL)
        g_error ("expected '%s' in '%s'", cases[i].expect, error->message);
      g_assert_null (strstr (error->message, OWNER_KEY));
      fixture_teardown (&f, NULL);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  if (g_getenv ("SLUICE_PLUGIN_PATH") == NULL)
    g_error ("SLUICE_PLUGIN_PATH is not set: run through `make check` (the host loads "
             "storage-file from the build tree)");

#define ADD(path, func) \
  g_test_add ("/auth/key/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("descriptor", test_descriptor);
  ADD ("device-token/ok", test_device_token_ok);
  ADD ("device-token/variants", test_device_token_variants);
  ADD ("policy-token/iothub", test_policy_token_iothub);
  ADD ("policy-token/eventhubs", test_policy_token_eventhubs);
  ADD ("token/expired", test_expired);
  ADD ("token/wrong-key", test_wrong_key);
  ADD ("token/wrong-scope", test_wrong_scope);
  ADD ("token/unknown-policy", test_unknown_policy);
  ADD ("token/unknown-device", test_unknown_device);
  ADD ("token/disabled-device", test_disabled_device);
  ADD ("token/malformed", test_malformed);
  ADD ("password/policy-key", test_policy_key_password);
  ADD ("password/connection-string", test_connection_string_password);
  ADD ("tls-peer/defers", test_tls_peer_defers);
  ADD ("reload", test_reload);
  ADD ("reload/concurrent", test_reload_concurrent);
#undef ADD
  g_test_add ("/auth/key/max-token-lifetime", Fixture, NULL, fixture_setup_lifetime,
              test_max_token_lifetime, fixture_teardown);
  g_test_add_func ("/auth/key/config-errors", test_config_errors);

  return g_test_run ();
}
