/* Unit tests: SAS tokens (against the SDK-generated vectors), scope rules,
 * connection strings, rights and principals.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"
#include "sas-private.h"

#include <json-glib/json-glib.h>
#include <string.h>

static JsonParser *vectors_parser;
static JsonObject *vectors;       /* transfer none: owned by vectors_parser */
static GHashTable *policy_keys;   /* skn -> key, from the negative cases' `policies` */

static gboolean
key_encoding_is_base64 (JsonObject *c)
{
  const char *enc = json_object_get_string_member (c, "key_encoding");

  if (g_strcmp0 (enc, "base64-decoded") == 0)
    return TRUE;
  g_assert_cmpstr (enc, ==, "raw-utf8");
  return FALSE;
}

static const char *
member_or_null (JsonObject *c, const char *name)
{
  if (!json_object_has_member (c, name) || json_object_get_null_member (c, name))
    return NULL;
  return json_object_get_string_member (c, name);
}

/* --- positive vectors --- */

static void
test_vector_positive (gconstpointer data)
{
  JsonObject *c = (JsonObject *) data;
  const char *token = json_object_get_string_member (c, "token");
  const char *key = json_object_get_string_member (c, "key");
  const char *resource = json_object_get_string_member (c, "resource");
  const char *skn = member_or_null (c, "skn");
  gint64 expiry = json_object_get_int_member (c, "expiry");
  gboolean b64 = key_encoding_is_base64 (c);
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceSasToken) t = NULL;
  g_autoptr (SluiceSasToken) made_t = NULL;
  g_autofree char *made = NULL;
  g_autofree char *expected_sr = NULL;
  const char *nl;

  t = sluice_sas_token_parse (token, &error);
  g_assert_no_error (error);
  g_assert_nonnull (t);

  /* Parsed fields against the recorded ones. */
  nl = strchr (json_object_get_string_member (c, "string_to_sign"), '\n');
  g_assert_nonnull (nl);
  expected_sr = g_strndup (json_object_get_string_member (c, "string_to_sign"),
                           nl - json_object_get_string_member (c, "string_to_sign"));
  g_assert_cmpstr (t->sr, ==, expected_sr);
  g_assert_cmpstr (t->sr_decoded, ==, resource);
  g_assert_cmpstr (t->sig, ==, json_object_get_string_member (c, "signature_base64"));
  g_assert_cmpint (t->se, ==, expiry);
  g_assert_cmpstr (t->skn, ==, skn);

  /* Valid one second before expiry, expired at it. */
  g_assert_true (sluice_sas_token_verify (t, key, b64, expiry - 1, &error));
  g_assert_no_error (error);
  g_assert_true (sluice_sas_verify (t, key, b64, expiry - 1, &error));
  g_assert_no_error (error);
  g_assert_false (sluice_sas_token_verify (t, key, b64, expiry, &error));
  g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_EXPIRED);
  g_clear_error (&error);

  /* The other key encoding must not verify (the Event Hubs key string of
   * the vectors is not even valid base64). */
  g_assert_false (sluice_sas_token_verify (t, key, !b64, expiry - 1, &error));
  g_assert_nonnull (error);
  g_assert_true (g_error_matches (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_SIGNATURE)
                 || (b64 == FALSE
                     && g_error_matches (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_BAD_KEY)));
  g_clear_error (&error);

  /* The token covers its own resource. */
  g_assert_true (sluice_sas_scope_covers (t->sr_decoded, resource));

  made = sluice_sas_token_make (resource, key, b64, skn, expiry);
  g_assert_nonnull (made);

  made_t = sluice_sas_token_parse (made, &error);
  g_assert_no_error (error);

  /* The SDK writes `sr, sig, se[, skn]`; where the recording used that order
   * the whole string must match, otherwise every field must. */
  {
    const char *after_prefix = token + strlen ("SharedAccessSignature ");
    g_auto (GStrv) fields = g_strsplit (after_prefix, "&", -1);
    gboolean sdk_order =
      g_str_has_prefix (fields[0], "sr=") && fields[1] != NULL
      && g_str_has_prefix (fields[1], "sig=") && fields[2] != NULL
      && g_str_has_prefix (fields[2], "se=")
      && (skn == NULL ? fields[3] == NULL
                      : fields[3] != NULL && g_str_has_prefix (fields[3], "skn=")
                        && fields[4] == NULL);

    if (sdk_order)
      g_assert_cmpstr (made, ==, token);
  }
  g_assert_cmpstr (made_t->sr, ==, t->sr);
  g_assert_cmpstr (made_t->sr_decoded, ==, t->sr_decoded);
  g_assert_cmpstr (made_t->sig, ==, t->sig);
  g_assert_cmpint (made_t->se, ==, t->se);
  g_assert_cmpstr (made_t->skn, ==, t->skn);
}

/* --- negative vectors --- */

typedef enum {
  EXPECT_MALFORMED,
  EXPECT_SIGNATURE,
  EXPECT_EXPIRED,
  EXPECT_UNKNOWN_POLICY,
  EXPECT_SCOPE,
} Expectation;

/* The reason is prose; map it to a check. An unrecognised reason fails the
 * test so a new vector cannot pass without a matching check. */
static Expectation
classify_negative (JsonObject *c)
{
  const char *reason = json_object_get_string_member (c, "reason");

  if (strstr (reason, "malformed") != NULL || strstr (reason, "does not start with") != NULL)
    return EXPECT_MALFORMED;
  if (strstr (reason, "no configured policy") != NULL)
    return EXPECT_UNKNOWN_POLICY;
  if (json_object_has_member (c, "connecting_as"))
    return EXPECT_SCOPE;
  if (strstr (reason, "expired") != NULL)
    return EXPECT_EXPIRED;
  if (strstr (reason, "signature") != NULL)
    return EXPECT_SIGNATURE;

  g_error ("negative vector '%s': unrecognised reason '%s'",
           json_object_get_string_member (c, "id"), reason);
  return EXPECT_MALFORMED;
}

static void
test_vector_negative (gconstpointer data)
{
  JsonObject *c = (JsonObject *) data;
  const char *token = json_object_get_string_member (c, "token");
  const char *key = json_object_get_string_member (c, "key");
  gint64 now = json_object_get_int_member (c, "now");
  gboolean b64 = key_encoding_is_base64 (c);
  Expectation expect = classify_negative (c);
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceSasToken) t = NULL;

  t = sluice_sas_token_parse (token, &error);
  if (expect == EXPECT_MALFORMED)
    {
      g_assert_null (t);
      g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED);
      return;
    }
  g_assert_no_error (error);
  g_assert_nonnull (t);

  /* With an skn the key comes from the policy table, as the plugin does it. */
  if (t->skn != NULL && g_hash_table_size (policy_keys) > 0
      && (json_object_has_member (c, "policies") || expect == EXPECT_UNKNOWN_POLICY))
    {
      key = g_hash_table_lookup (policy_keys, t->skn);
      if (expect == EXPECT_UNKNOWN_POLICY)
        {
          g_assert_null (key);
          return;
        }
      g_assert_nonnull (key);
    }
  g_assert_cmpint (expect, !=, EXPECT_UNKNOWN_POLICY);

  switch (expect)
    {
    case EXPECT_SIGNATURE:
      g_assert_false (sluice_sas_token_verify (t, key, b64, now, &error));
      g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_SIGNATURE);
      /* Log-ready, never the signature. */
      g_assert_nonnull (strstr (error->message, "signature mismatch"));
      g_assert_null (strstr (error->message, t->sig));
      break;
    case EXPECT_EXPIRED:
      g_assert_false (sluice_sas_token_verify (t, key, b64, now, &error));
      g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_EXPIRED);
      g_assert_nonnull (strstr (error->message, "expired at "));
      break;
    case EXPECT_SCOPE:
      /* Genuine and current, but for someone else. */
      g_assert_true (sluice_sas_token_verify (t, key, b64, now, &error));
      g_assert_no_error (error);
      g_assert_false (sluice_sas_scope_covers (
        t->sr_decoded, json_object_get_string_member (c, "connecting_as")));
      break;
    case EXPECT_MALFORMED:
    case EXPECT_UNKNOWN_POLICY:
    default:
      g_assert_not_reached ();
    }
}

static void
test_vector_counts (void)
{
  JsonArray *pos = json_object_get_array_member (vectors, "positive");
  JsonArray *neg = json_object_get_array_member (vectors, "negative");

  /* README: 14 positive and 12 negative cases. Fewer means a truncated file. */
  g_assert_cmpuint (json_array_get_length (pos), >=, 14);
  g_assert_cmpuint (json_array_get_length (neg), >=, 12);
  g_assert_cmpuint (g_hash_table_size (policy_keys), >, 0);
}

/* --- parsing --- */

static void
test_parse_order_and_unknown (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceSasToken) t = NULL;

  t = sluice_sas_token_parse ("SharedAccessSignature x=1&se=42&skn=pol%20a&sig=YWJj%3D"
                              "&sr=h%2Fdevices%2Fd&foo=bar", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (t->sr, ==, "h%2Fdevices%2Fd");
  g_assert_cmpstr (t->sr_decoded, ==, "h/devices/d");
  g_assert_cmpstr (t->sig, ==, "YWJj=");
  g_assert_cmpint (t->se, ==, 42);
  g_assert_cmpstr (t->skn, ==, "pol a");
}

static void
test_parse_errors (void)
{
  static const char *const bad[] = {
    NULL,
    "",
    "sharedaccesssignature sr=a&sig=b&se=1",
    "SharedAccessSignature",
    "SharedAccessSignature sig=b&se=1",
    "SharedAccessSignature sr=a&se=1",
    "SharedAccessSignature sr=a&sig=b",
    "SharedAccessSignature sr=a&sig=b&se=",
    "SharedAccessSignature sr=a&sig=b&se=-1",
    "SharedAccessSignature sr=a&sig=b&se=+1",
    "SharedAccessSignature sr=a&sig=b&se=0x10",
    "SharedAccessSignature sr=a&sig=b&se=99999999999999999999",
    "SharedAccessSignature sr=a&sr=c&sig=b&se=1",
    "SharedAccessSignature sr=a&sig=b&se=1&se=2",
    "SharedAccessSignature sr=a%zz&sig=b&se=1",
    "SharedAccessSignature sr=a&sig=b&se=1&bogus",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (SluiceSasToken) t = sluice_sas_token_parse (bad[i], &error);

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, bad[i] ? bad[i] : "(null)");
      g_assert_null (t);
      g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED);
    }
}

/* The HMAC covers `sr` as received: a client that writes `%2f` signs that. */
static void
test_verify_sr_as_received (void)
{
  const char *key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const char *sr = "hub%2fdevices%2fd1";
  g_autoptr (GHmac) hmac = NULL;
  gsize key_len = 0;
  g_autofree guchar *key_raw = g_base64_decode (key, &key_len);
  guint8 digest[32];
  gsize digest_len = sizeof digest;
  g_autofree char *sig = NULL;
  g_autofree char *sig_enc = NULL;
  g_autofree char *token = NULL;
  g_autofree char *upper = NULL;
  g_autoptr (SluiceSasToken) t = NULL;
  g_autoptr (SluiceSasToken) tu = NULL;
  g_autoptr (GError) error = NULL;

  hmac = g_hmac_new (G_CHECKSUM_SHA256, key_raw, key_len);
  g_hmac_update (hmac, (const guchar *) sr, -1);
  g_hmac_update (hmac, (const guchar *) "\n100", -1);
  g_hmac_get_digest (hmac, digest, &digest_len);
  sig = g_base64_encode (digest, digest_len);
  sig_enc = g_uri_escape_string (sig, NULL, FALSE);
  token = g_strdup_printf ("SharedAccessSignature sr=%s&sig=%s&se=100", sr, sig_enc);

  t = sluice_sas_token_parse (token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (t->sr_decoded, ==, "hub/devices/d1");
  g_assert_true (sluice_sas_token_verify (t, key, TRUE, 99, &error));
  g_assert_no_error (error);

  /* Re-encoding `sr` (as a careless verifier would) changes what is signed. */
  upper = g_strdup_printf ("SharedAccessSignature sr=hub%%2Fdevices%%2Fd1&sig=%s&se=100",
                           sig_enc);
  tu = sluice_sas_token_parse (upper, &error);
  g_assert_no_error (error);
  g_assert_false (sluice_sas_token_verify (tu, key, TRUE, 99, &error));
  g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_SIGNATURE);
}

static void
test_make_roundtrip (void)
{
  /* Valid base64 of 32 bytes, so it serves both styles. */
  const char *key = "aW90aHViLXBvbGljeS1rZXktZm9yLXRlc3QtdmVjdG9ycyE=";
  g_autoptr (GError) error = NULL;
  g_autofree char *iot = sluice_sas_token_make ("Hub.Example/devices/a b!*'()~", key,
                                                TRUE, NULL, 1000);
  g_autofree char *eh = sluice_sas_token_make ("sb://ns.example/hub1", key, FALSE,
                                               "Root Key", 1000);
  g_autoptr (SluiceSasToken) ti = sluice_sas_token_parse (iot, &error);
  g_autoptr (SluiceSasToken) te = NULL;

  g_assert_no_error (error);
  /* encodeURIComponent leaves !*'()~ alone and encodes space and '/'. */
  g_assert_cmpstr (ti->sr, ==, "Hub.Example%2Fdevices%2Fa%20b!*'()~");
  g_assert_null (ti->skn);
  g_assert_true (g_str_has_suffix (iot, "&se=1000"));
  g_assert_true (sluice_sas_token_verify (ti, key, TRUE, 999, &error));
  g_assert_no_error (error);

  te = sluice_sas_token_parse (eh, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (eh, "&se=1000&skn=Root%20Key"));
  g_assert_cmpstr (te->sr, ==, "sb%3A%2F%2Fns.example%2Fhub1");
  g_assert_cmpstr (te->skn, ==, "Root Key");
  g_assert_true (sluice_sas_token_verify (te, key, FALSE, 0, &error));
  g_assert_no_error (error);
  g_assert_false (sluice_sas_token_verify (te, key, TRUE, 0, &error));
  g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_SIGNATURE);
  g_clear_error (&error);

  /* A verifying key that is not base64 is a configuration fault, not a
   * forged token. */
  g_assert_false (sluice_sas_token_verify (ti, "not base64!", TRUE, 0, &error));
  g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_BAD_KEY);
  g_assert_null (sluice_sas_token_make ("h", "not base64!", TRUE, NULL, 1));
}

/* --- scope --- */

static void
test_scope_segment_prefix (void)
{
  static const struct
  {
    const char *sr, *resource;
    gboolean covers;
  } cases[] = {
    { "h/a/b", "h/a/b", TRUE },
    { "h/a/b", "h/a/b/c", TRUE },
    { "h/a/b", "h/a/b/c/d", TRUE },
    { "h/a/b", "h/a/bc", FALSE },
    { "h/a/b", "h/a", FALSE },
    { "h/a/b/", "h/a/b/c", TRUE },
    { "h/a/b", "h/a/b/", TRUE },
    { "h", "h/devices/d1", TRUE },
    { "h/", "h/devices/d1", TRUE },
    { "h", "hx/devices/d1", FALSE },
    { "H.Example.NET/devices", "h.example.net/devices/d1", TRUE },
    { "h/Devices", "h/devices/d1", FALSE },
    { "hub/devices/dev-01", "hub/devices/dev-99", FALSE },
    { "hub/devices/dev-01", "hub/devices/dev-01/modules/m", TRUE },
    { "sb://ns.example/hub1", "ns.example/hub1/ConsumerGroups/$default/Partitions/0", TRUE },
    { "sb://ns.example/hub1", "amqps://NS.example/hub1", TRUE },
    { "amqps://ns.example/hub1", "sb://ns.example/hub2", FALSE },
    { "https://ns.example/hub1", "ns.example/hub1", TRUE },
    { "sb://ns.example", "ns.example/anything", TRUE },
    { "", "h/a", FALSE },
    { "h/a", "", FALSE },
    { "sb://", "h/a", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("'%s' covers '%s'?", cases[i].sr, cases[i].resource);
      g_assert_cmpint (sluice_sas_scope_covers (cases[i].sr, cases[i].resource), ==,
                       cases[i].covers);
    }
  g_assert_false (sluice_sas_scope_covers (NULL, "h"));
  g_assert_false (sluice_sas_scope_covers ("h", NULL));
}

/* --- connection strings --- */

static void
test_connection_string (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) dev = NULL;
  g_autoptr (GHashTable) eh = NULL;

  dev = sluice_connection_string_parse (
    "HostName=hub.example;DeviceId=dev 02+x;SharedAccessKey=AAEC/w==", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (dev), ==, 3);
  g_assert_cmpstr (g_hash_table_lookup (dev, "HostName"), ==, "hub.example");
  g_assert_cmpstr (g_hash_table_lookup (dev, "DeviceId"), ==, "dev 02+x");
  /* Split at the first '=': the key keeps its padding. */
  g_assert_cmpstr (g_hash_table_lookup (dev, "SharedAccessKey"), ==, "AAEC/w==");

  eh = sluice_connection_string_parse (
    "Endpoint=sb://ns.example/;SharedAccessKeyName=Root;SharedAccessKey=k=;EntityPath=hub1;",
    &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (eh), ==, 4);
  g_assert_cmpstr (g_hash_table_lookup (eh, "Endpoint"), ==, "sb://ns.example/");
  g_assert_cmpstr (g_hash_table_lookup (eh, "SharedAccessKeyName"), ==, "Root");
  g_assert_cmpstr (g_hash_table_lookup (eh, "SharedAccessKey"), ==, "k=");
  g_assert_cmpstr (g_hash_table_lookup (eh, "EntityPath"), ==, "hub1");
  /* Keys as written: no case folding. */
  g_assert_null (g_hash_table_lookup (eh, "endpoint"));
}

static void
test_connection_string_errors (void)
{
  static const char *const bad[] = {
    NULL, "", ";;", "HostName", "HostName=a;=b", "A=1;A=2", "A=1;secretwithoutequals",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GHashTable) t = sluice_connection_string_parse (bad[i], &error);

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, bad[i] ? bad[i] : "(null)");
      g_assert_null (t);
      g_assert_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED);
      g_assert_null (strstr (error->message, "secretwithoutequals"));
    }
}

/* --- rights and principals --- */

static void
test_rights (void)
{
  const char *const all[] = { "registryread", "REGISTRYWRITE", "ServiceConnect",
                              " DeviceConnect ", "send;listen", "Manage", "", NULL };
  const char *const unknown[] = { "Send", "Publish", NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *none = NULL;
  guint rights = 0xdead;

  g_assert_true (sluice_rights_parse (all, &rights, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (rights, ==, 0x7f);
  text = sluice_rights_to_string (rights);
  g_assert_cmpstr (text, ==,
                   "RegistryRead;RegistryWrite;ServiceConnect;DeviceConnect;Send;Listen;Manage");

  g_assert_true (sluice_rights_parse (NULL, &rights, &error));
  g_assert_cmpuint (rights, ==, 0);
  none = sluice_rights_to_string (0);
  g_assert_cmpstr (none, ==, "");

  rights = 5;
  g_assert_false (sluice_rights_parse (unknown, &rights, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "'Publish'"));
  /* Unchanged on error. */
  g_assert_cmpuint (rights, ==, 5);
}

static void
test_principal (void)
{
  const char *const streams[] = { "events", "audit", NULL };
  const char *const empty[] = { NULL };
  g_autoptr (SluicePrincipal) dev =
    sluice_principal_new (SLUICE_PRINCIPAL_DEVICE, "dev-01", SLUICE_RIGHT_DEVICE_CONNECT,
                          NULL, 2000000000, "sas");
  g_autoptr (SluicePrincipal) pol =
    sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "owner",
                          SLUICE_RIGHT_SEND | SLUICE_RIGHT_LISTEN, streams, 0, "policy-key");
  g_autoptr (SluicePrincipal) pol_all =
    sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "p", 0, empty, 0, NULL);
  g_autoptr (SluicePrincipal) anon =
    sluice_principal_new (SLUICE_PRINCIPAL_ANONYMOUS, NULL, 0, NULL, 0, "anonymous");
  SluicePrincipal *extra;

  g_assert_cmpint (sluice_principal_get_kind (dev), ==, SLUICE_PRINCIPAL_DEVICE);
  g_assert_cmpstr (sluice_principal_get_name (dev), ==, "dev-01");
  g_assert_cmpstr (sluice_principal_get_id (dev), ==, "devices/dev-01");
  g_assert_cmpuint (sluice_principal_get_rights (dev), ==, SLUICE_RIGHT_DEVICE_CONNECT);
  g_assert_null (sluice_principal_get_streams (dev));
  g_assert_cmpint (sluice_principal_get_expires_at (dev), ==, 2000000000);
  g_assert_cmpstr (sluice_principal_get_auth_method (dev), ==, "sas");

  g_assert_cmpstr (sluice_principal_get_id (pol), ==, "policy/owner");
  g_assert_cmpstr (sluice_principal_get_name (pol), ==, "owner");
  g_assert_cmpstrv (sluice_principal_get_streams (pol), streams);
  g_assert_null (sluice_principal_get_streams (pol_all));

  g_assert_cmpstr (sluice_principal_get_id (anon), ==, "anonymous");
  g_assert_cmpstr (sluice_principal_get_name (anon), ==, "");

  extra = sluice_principal_ref (pol);
  g_assert_true (extra == pol);
  sluice_principal_unref (extra);
  g_assert_cmpstr (sluice_principal_get_id (pol), ==, "policy/owner");
}

static gpointer
ref_unref_thread (gpointer data)
{
  for (int i = 0; i < 100000; i++)
    sluice_principal_unref (sluice_principal_ref (data));
  return NULL;
}

/* Sessions on several workers share one principal. */
static void
test_principal_threads (void)
{
  g_autoptr (SluicePrincipal) p =
    sluice_principal_new (SLUICE_PRINCIPAL_DEVICE, "d", 0, NULL, 0, "sas");
  GThread *threads[4];

  for (gsize i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("ref", ref_unref_thread, p);
  for (gsize i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  /* Still alive and intact: the count came back to one. */
  g_assert_cmpstr (sluice_principal_get_id (p), ==, "devices/d");
}

static void
load_vectors (void)
{
  const char *dir = g_getenv ("SLUICE_VECTORS");
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  JsonArray *neg;

  if (dir == NULL)
    g_error ("SLUICE_VECTORS is not set: run through `make check` or set it to the "
             "vectors directory (../shared/vectors beside the source tree)");
  path = g_build_filename (dir, "sas", "sas-vectors.json", NULL);

  vectors_parser = json_parser_new ();
  if (!json_parser_load_from_file (vectors_parser, path, &error))
    g_error ("cannot read the SAS vectors %s: %s", path, error->message);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (vectors_parser)));
  vectors = json_node_get_object (json_parser_get_root (vectors_parser));

  policy_keys = g_hash_table_new (g_str_hash, g_str_equal);
  neg = json_object_get_array_member (vectors, "negative");
  for (guint i = 0; i < json_array_get_length (neg); i++)
    {
      JsonObject *c = json_array_get_object_element (neg, i);
      JsonObject *pol;
      g_autoptr (GList) names = NULL;

      if (!json_object_has_member (c, "policies"))
        continue;
      pol = json_object_get_object_member (c, "policies");
      names = json_object_get_members (pol);
      for (GList *l = names; l != NULL; l = l->next)
        g_hash_table_insert (policy_keys, l->data,
                             (gpointer) json_object_get_string_member (pol, l->data));
    }
}

static void
add_vector_tests (const char *member, GTestDataFunc func)
{
  JsonArray *cases = json_object_get_array_member (vectors, member);

  for (guint i = 0; i < json_array_get_length (cases); i++)
    {
      JsonObject *c = json_array_get_object_element (cases, i);
      g_autofree char *path = g_strdup_printf ("/sas/vectors/%s/%s", member,
                                               json_object_get_string_member (c, "id"));

      g_test_add_data_func (path, c, func);
    }
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  load_vectors ();

  g_test_add_func ("/sas/vectors/counts", test_vector_counts);
  add_vector_tests ("positive", test_vector_positive);
  add_vector_tests ("negative", test_vector_negative);
  g_test_add_func ("/sas/parse/order-and-unknown-fields", test_parse_order_and_unknown);
  g_test_add_func ("/sas/parse/errors", test_parse_errors);
  g_test_add_func ("/sas/verify/sr-as-received", test_verify_sr_as_received);
  g_test_add_func ("/sas/make/roundtrip", test_make_roundtrip);
  g_test_add_func ("/sas/scope/segment-prefix", test_scope_segment_prefix);
  g_test_add_func ("/sas/connection-string/parse", test_connection_string);
  g_test_add_func ("/sas/connection-string/errors", test_connection_string_errors);
  g_test_add_func ("/auth/rights/parse", test_rights);
  g_test_add_func ("/auth/principal/basic", test_principal);
  g_test_add_func ("/auth/principal/threads", test_principal_threads);

  rc = g_test_run ();
  g_clear_pointer (&policy_keys, g_hash_table_unref);
  g_clear_object (&vectors_parser);
  return rc;
}
