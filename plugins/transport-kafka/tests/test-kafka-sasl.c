/* Unit tests: SASL PLAIN parsing and mapping to credentials (policy keys,
 * SAS tokens, Event Hubs' $ConnectionString), and the SCRAM-SHA-256 / 512
 * server against RFC 7677's exchange and an independent client.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-sasl.h"

#include <string.h>

static KafkaSaslLogin *
plain (const char *authzid, const char *user, const char *pass, GError **error)
{
  g_autoptr (GByteArray) m = g_byte_array_new ();

  if (authzid)
    g_byte_array_append (m, (const guint8 *) authzid, strlen (authzid));
  g_byte_array_append (m, (const guint8 *) "", 1);
  g_byte_array_append (m, (const guint8 *) user, strlen (user));
  g_byte_array_append (m, (const guint8 *) "", 1);
  g_byte_array_append (m, (const guint8 *) pass, strlen (pass));
  return kafka_sasl_plain_parse (m->data, m->len, "127.0.0.1:4242", error);
}

static void
test_plain_policy (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KafkaSaslLogin) a = plain (NULL, "owner", "c2VjcmV0LWtleQ==", &error);
  g_autoptr (KafkaSaslLogin) b = NULL;
  g_autoptr (KafkaSaslLogin) c = NULL;

  g_assert_no_error (error);
  g_assert_cmpint (a->credentials.type, ==, SLUICE_CREDENTIALS_USERNAME_PASSWORD);
  g_assert_cmpstr (a->credentials.username, ==, "owner");
  g_assert_cmpstr (a->credentials.password, ==, "c2VjcmV0LWtleQ==");
  g_assert_null (a->credentials.token);
  g_assert_cmpstr (a->credentials.protocol, ==, "kafka");
  g_assert_cmpstr (a->credentials.peer, ==, "127.0.0.1:4242");
  g_assert_null (a->authzid);

  /* The same identity as authzid is fine; another one is refused. */
  b = plain ("owner", "owner", "k", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (b->authzid, ==, "owner");
  g_assert_null (plain ("admin", "owner", "k", &error));
  g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  /* A SAS token as the password stays a username / password login (the
   * user names the policy), with the token also at hand. */
  c = plain (NULL, "owner", "SharedAccessSignature sr=x&sig=y&se=1&skn=owner", &error);
  g_assert_no_error (error);
  g_assert_cmpint (c->credentials.type, ==, SLUICE_CREDENTIALS_USERNAME_PASSWORD);
  g_assert_cmpstr (c->credentials.token, ==, "SharedAccessSignature sr=x&sig=y&se=1&skn=owner");
}

static void
test_plain_connection_string (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (KafkaSaslLogin) a = NULL;
  g_autoptr (KafkaSaslLogin) b = NULL;

  a = plain (NULL, "$ConnectionString",
             "Endpoint=sb://hub.local/;SharedAccessKeyName=owner;"
             "SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=events",
             &error);
  g_assert_no_error (error);
  g_assert_cmpint (a->credentials.type, ==, SLUICE_CREDENTIALS_USERNAME_PASSWORD);
  g_assert_cmpstr (a->credentials.username, ==, "owner");
  g_assert_cmpstr (a->credentials.password, ==, "c2VjcmV0LWtleQ==");
  g_assert_cmpstr (a->endpoint, ==, "sb://hub.local/");
  g_assert_cmpstr (a->entity_path, ==, "events");

  b = plain (NULL, "$ConnectionString",
             "Endpoint=sb://hub.local/;SharedAccessSignature=SharedAccessSignature "
             "sr=sb%3a%2f%2fhub.local%2fevents&sig=abc%3d&se=2000000000&skn=owner",
             &error);
  g_assert_no_error (error);
  g_assert_cmpint (b->credentials.type, ==, SLUICE_CREDENTIALS_SAS_TOKEN);
  g_assert_cmpstr (b->credentials.token, ==,
                   "SharedAccessSignature sr=sb%3a%2f%2fhub.local%2fevents&sig=abc%3d"
                   "&se=2000000000&skn=owner");
  g_assert_null (b->credentials.username);

  g_assert_null (plain (NULL, "$ConnectionString", "Endpoint=sb://hub.local/", &error));
  g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED);
  /* The error never repeats the password. */
  g_assert_null (strstr (error->message, "hub.local"));
  g_clear_error (&error);
  g_assert_null (plain (NULL, "$ConnectionString", "garbage-without-equals", &error));
  g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED);
}

static void
test_plain_malformed (void)
{
  static const struct {
    const char *bytes;
    gsize len;
  } cases[] = {
    { "", 0 },
    { "owner", 5 },
    { "\0owner", 6 },
    { "\0owner\0", 7 },
    { "\0\0pass", 6 },
    { "\0owner\0pa\0ss", 12 },
    { "\0own\xff\0pass", 10 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;

      g_assert_null (kafka_sasl_plain_parse ((const guint8 *) cases[i].bytes, cases[i].len,
                                             NULL, &error));
      g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED);
    }
  {
    g_autoptr (GError) error = NULL;
    g_autofree guint8 *big = g_malloc0 (100000);

    big[1] = 'u';
    g_assert_null (kafka_sasl_plain_parse (big, 100000, NULL, &error));
    g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED);
  }
}

/* --- SCRAM --- */

typedef struct {
  const char *user;
  KafkaScramSecret *secret;
  guint lookups;
} Users;

static KafkaScramSecret *
lookup (const char *username, KafkaScramMechanism mechanism, gpointer data)
{
  Users *u = data;
  KafkaScramSecret *copy;

  u->lookups++;
  if (g_strcmp0 (username, u->user) != 0 || u->secret->mechanism != mechanism)
    return NULL;
  copy = g_new (KafkaScramSecret, 1);
  *copy = *u->secret;
  return copy;
}

static GBytes *
step_ok (KafkaScramServer *s, const char *in, KafkaScramStep expect)
{
  g_autoptr (GError) error = NULL;
  GBytes *out = NULL;
  KafkaScramStep r = kafka_scram_server_step (s, (const guint8 *) in, strlen (in), &out,
                                              &error);

  g_assert_no_error (error);
  g_assert_cmpint (r, ==, expect);
  g_assert_nonnull (out);
  return out;
}

static void
assert_text (GBytes *b, const char *text)
{
  g_assert_cmpmem (g_bytes_get_data (b, NULL), g_bytes_get_size (b), text, strlen (text));
}

/* RFC 7677 section 3: user "user", password "pencil". */
static void
test_scram_rfc7677 (void)
{
  gsize salt_len = 0;
  g_autofree guchar *salt = g_base64_decode ("W22ZaJ0SNY7soEsUEjb6gQ==", &salt_len);
  g_autoptr (KafkaScramSecret) secret = kafka_scram_secret_derive (KAFKA_SCRAM_SHA_256,
                                                                    "pencil", salt, salt_len,
                                                                    4096);
  Users users = { "user", secret, 0 };
  g_autoptr (KafkaScramServer) s = kafka_scram_server_new (KAFKA_SCRAM_SHA_256, lookup, &users,
                                                           "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  g_autoptr (GBytes) first = NULL;
  g_autoptr (GBytes) final = NULL;
  GBytes *late = NULL;
  g_autoptr (GError) error = NULL;

  first = step_ok (s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", KAFKA_SCRAM_STEP_CONTINUE);
  assert_text (first, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  g_assert_null (kafka_scram_server_get_username (s));
  final = step_ok (s, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                   KAFKA_SCRAM_STEP_DONE);
  assert_text (final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  g_assert_cmpstr (kafka_scram_server_get_username (s), ==, "user");
  g_assert_cmpuint (users.lookups, ==, 1);

  g_assert_cmpint (kafka_scram_server_step (s, (const guint8 *) "x", 1, &late, &error), ==,
                   KAFKA_SCRAM_STEP_FAILED);
  g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_STATE);
  g_assert_null (late);
}

/* An independent client: plain PBKDF2 loop, no shared code. */
static void
client_proof (GChecksumType type, gsize n, const char *password, const guint8 *salt,
              gsize salt_len, guint iterations, const char *auth_message, guint8 *proof,
              guint8 *server_signature)
{
  guint8 u[64], salted[64], client_key[64], stored[64], sig[64], server_key[64];
  GHmac *h;
  gsize len;
  GChecksum *c;

  h = g_hmac_new (type, (const guint8 *) password, strlen (password));
  g_hmac_update (h, salt, (gssize) salt_len);
  g_hmac_update (h, (const guint8 *) "\0\0\0\1", 4);
  len = n;
  g_hmac_get_digest (h, u, &len);
  g_hmac_unref (h);
  memcpy (salted, u, n);
  for (guint i = 1; i < iterations; i++)
    {
      h = g_hmac_new (type, (const guint8 *) password, strlen (password));
      g_hmac_update (h, u, (gssize) n);
      len = n;
      g_hmac_get_digest (h, u, &len);
      g_hmac_unref (h);
      for (gsize k = 0; k < n; k++)
        salted[k] ^= u[k];
    }
  h = g_hmac_new (type, salted, n);
  g_hmac_update (h, (const guint8 *) "Client Key", 10);
  len = n;
  g_hmac_get_digest (h, client_key, &len);
  g_hmac_unref (h);
  c = g_checksum_new (type);
  g_checksum_update (c, client_key, (gssize) n);
  len = n;
  g_checksum_get_digest (c, stored, &len);
  g_checksum_free (c);
  h = g_hmac_new (type, stored, n);
  g_hmac_update (h, (const guint8 *) auth_message, (gssize) strlen (auth_message));
  len = n;
  g_hmac_get_digest (h, sig, &len);
  g_hmac_unref (h);
  for (gsize k = 0; k < n; k++)
    proof[k] = client_key[k] ^ sig[k];
  h = g_hmac_new (type, salted, n);
  g_hmac_update (h, (const guint8 *) "Server Key", 10);
  len = n;
  g_hmac_get_digest (h, server_key, &len);
  g_hmac_unref (h);
  h = g_hmac_new (type, server_key, n);
  g_hmac_update (h, (const guint8 *) auth_message, (gssize) strlen (auth_message));
  len = n;
  g_hmac_get_digest (h, server_signature, &len);
  g_hmac_unref (h);
}

/* Run a whole exchange as `user` with `password`; returns the last step. */
static KafkaScramStep
exchange (KafkaScramMechanism m, Users *users, const char *user, const char *password,
          GError **error, char **server_first_out)
{
  GChecksumType type = m == KAFKA_SCRAM_SHA_512 ? G_CHECKSUM_SHA512 : G_CHECKSUM_SHA256;
  gsize n = m == KAFKA_SCRAM_SHA_512 ? 64 : 32;
  g_autoptr (KafkaScramServer) s = kafka_scram_server_new (m, lookup, users, NULL);
  g_autofree char *first = g_strdup_printf ("n,,n=%s,r=fyko+d2lbbFgONRv9qkxdawL", user);
  g_autoptr (GBytes) server_first = NULL;
  g_autofree char *sf = NULL;
  g_autofree char *nonce = NULL;
  g_autofree guchar *salt = NULL;
  g_autofree char *without_proof = NULL;
  g_autofree char *auth_message = NULL;
  g_autofree char *proof64 = NULL;
  g_autofree char *final = NULL;
  g_autoptr (GBytes) server_final = NULL;
  g_auto (GStrv) parts = NULL;
  guint8 proof[64], server_sig[64];
  gsize salt_len = 0;
  guint64 iterations = 0;
  KafkaScramStep r;

  server_first = step_ok (s, first, KAFKA_SCRAM_STEP_CONTINUE);
  sf = g_strndup (g_bytes_get_data (server_first, NULL), g_bytes_get_size (server_first));
  parts = g_strsplit (sf, ",", -1);
  g_assert_cmpuint (g_strv_length (parts), ==, 3);
  g_assert_true (g_str_has_prefix (parts[0], "r=fyko+d2lbbFgONRv9qkxdawL"));
  g_assert_cmpuint (strlen (parts[0]), >, strlen ("r=fyko+d2lbbFgONRv9qkxdawL") + 16);
  nonce = g_strdup (parts[0] + 2);
  salt = g_base64_decode (parts[1] + 2, &salt_len);
  g_assert_true (g_ascii_string_to_unsigned (parts[2] + 2, 10, 4096, 1000000, &iterations,
                                             NULL));

  without_proof = g_strdup_printf ("c=biws,r=%s", nonce);
  auth_message = g_strdup_printf ("%s,%s,%s", first + 3, sf, without_proof);
  client_proof (type, n, password, salt, salt_len, (guint) iterations, auth_message, proof,
                server_sig);
  proof64 = g_base64_encode (proof, n);
  final = g_strdup_printf ("%s,p=%s", without_proof, proof64);
  {
    GBytes *out = NULL;

    r = kafka_scram_server_step (s, (const guint8 *) final, strlen (final), &out, error);
    server_final = out;
  }
  if (r == KAFKA_SCRAM_STEP_DONE)
    {
      g_autofree char *v64 = g_base64_encode (server_sig, n);
      g_autofree char *expect = g_strconcat ("v=", v64, NULL);

      assert_text (server_final, expect);
      g_assert_cmpstr (kafka_scram_server_get_username (s), ==, users->user);
    }
  else
    g_assert_null (kafka_scram_server_get_username (s));
  if (server_first_out)
    *server_first_out = g_strdup (parts[1]);
  return r;
}

static void
test_scram_exchange (void)
{
  for (int m = KAFKA_SCRAM_SHA_256; m <= KAFKA_SCRAM_SHA_512; m++)
    {
      g_autoptr (KafkaScramSecret) secret = kafka_scram_secret_new (m, "policy-key==", 4096);
      Users users = { "owner", secret, 0 };
      g_autoptr (GError) error = NULL;
      g_autofree char *salt_a = NULL;
      g_autofree char *salt_b = NULL;

      g_assert_cmpint (exchange (m, &users, "owner", "policy-key==", &error, NULL), ==,
                       KAFKA_SCRAM_STEP_DONE);
      g_assert_no_error (error);

      g_assert_cmpint (exchange (m, &users, "owner", "wrong-key", &error, NULL), ==,
                       KAFKA_SCRAM_STEP_FAILED);
      g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_AUTH_FAILED);
      g_clear_error (&error);

      /* An unknown user gets a server-first like anyone (a salt that does
       * not change between attempts) and fails only at the proof. */
      g_assert_cmpint (exchange (m, &users, "nobody", "policy-key==", &error, &salt_a), ==,
                       KAFKA_SCRAM_STEP_FAILED);
      g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_AUTH_FAILED);
      g_clear_error (&error);
      g_assert_cmpint (exchange (m, &users, "nobody", "x", &error, &salt_b), ==,
                       KAFKA_SCRAM_STEP_FAILED);
      g_clear_error (&error);
      g_assert_cmpstr (salt_a, ==, salt_b);
    }
}

static void
test_scram_mechanism_mismatch (void)
{
  g_autoptr (KafkaScramSecret) secret = kafka_scram_secret_new (KAFKA_SCRAM_SHA_256, "k",
                                                                4096);
  Users users = { "owner", secret, 0 };
  g_autoptr (GError) error = NULL;

  /* A SHA-256 verifier does not log in over SCRAM-SHA-512. */
  g_assert_cmpint (exchange (KAFKA_SCRAM_SHA_512, &users, "owner", "k", &error, NULL), ==,
                   KAFKA_SCRAM_STEP_FAILED);
  g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_AUTH_FAILED);
}

static void
test_scram_malformed (void)
{
  static const char *firsts[] = {
    "", "n=user,r=abc", "x,,n=user,r=abc", "p=tls-unique,,n=user,r=abc", "n,,r=abc,n=user",
    "n,,n=,r=abc", "n,,n=us=er,r=abc", "n,,n=user", "n,,n=user,r=", "n,,m=ext,n=user,r=abc",
    "n,a=other,n=user,r=abc", "n,,n=user,r=abc,tokenauth=true",
  };
  g_autoptr (KafkaScramSecret) secret = kafka_scram_secret_new (KAFKA_SCRAM_SHA_256, "k",
                                                                4096);
  Users users = { "user", secret, 0 };

  for (gsize i = 0; i < G_N_ELEMENTS (firsts); i++)
    {
      g_autoptr (KafkaScramServer) s = kafka_scram_server_new (KAFKA_SCRAM_SHA_256, lookup,
                                                               &users, NULL);
      g_autoptr (GError) error = NULL;
      GBytes *out = NULL;

      g_assert_cmpint (kafka_scram_server_step (s, (const guint8 *) firsts[i],
                                                strlen (firsts[i]), &out, &error),
                       ==, KAFKA_SCRAM_STEP_FAILED);
      g_assert_nonnull (error);
      g_assert_null (out);
    }

  /* Finals: bad binding, bad nonce, no proof, bad proof. */
  {
    static const char *finals[] = {
      "c=eSws,r=abcSERVER,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,r=abcOTHER,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "c=biws,r=abcSERVER",
      "c=biws,r=abcSERVER,p=!!!",
      "c=biws,r=abcSERVER,p=AAAA",
      "r=abcSERVER,c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    };

    for (gsize i = 0; i < G_N_ELEMENTS (finals); i++)
      {
        g_autoptr (KafkaScramServer) s = kafka_scram_server_new (KAFKA_SCRAM_SHA_256, lookup,
                                                                 &users, "SERVER");
        g_autoptr (GBytes) first = step_ok (s, "n,,n=user,r=abc", KAFKA_SCRAM_STEP_CONTINUE);
        g_autoptr (GError) error = NULL;
        GBytes *out = NULL;

        g_assert_cmpint (kafka_scram_server_step (s, (const guint8 *) finals[i],
                                                  strlen (finals[i]), &out, &error),
                         ==, KAFKA_SCRAM_STEP_FAILED);
        g_assert_nonnull (error);
        g_assert_null (out);
        g_assert_null (kafka_scram_server_get_username (s));
      }
  }
}

/* saslname escapes: "=2C" is ',' and "=3D" is '='. */
static void
test_scram_saslname (void)
{
  g_autoptr (KafkaScramSecret) secret = kafka_scram_secret_new (KAFKA_SCRAM_SHA_256, "k",
                                                                4096);
  Users users = { "a,b=c", secret, 0 };
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (exchange (KAFKA_SCRAM_SHA_256, &users, "a=2Cb=3Dc", "k", &error, NULL), ==,
                   KAFKA_SCRAM_STEP_DONE);
  g_assert_no_error (error);
}

static void
test_secret_storage (void)
{
  g_autoptr (KafkaScramSecret) a = kafka_scram_secret_new (KAFKA_SCRAM_SHA_512,
                                                           "the-policy-key", 8192);
  g_autoptr (KafkaScramSecret) b = kafka_scram_secret_new (KAFKA_SCRAM_SHA_512,
                                                           "the-policy-key", 8192);
  g_autoptr (GBytes) bytes = kafka_scram_secret_to_bytes (a);
  g_autoptr (KafkaScramSecret) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  static const char *bad[] = {
    "", "SCRAM-SHA-512", "SCRAM-SHA-1;i=4096;s=AAAA;k=AAAA;v=AAAA",
    "SCRAM-SHA-256;i=0;s=AAAA;k=AAAA;v=AAAA", "SCRAM-SHA-256;i=4096;s=AAAA;k=AAAA;v=AAAA",
  };

  /* Salted: the same key gives different verifiers; never the key. */
  g_assert_cmpmem (a->stored_key, a->key_len, a->stored_key, a->key_len);
  g_assert_false (memcmp (a->stored_key, b->stored_key, a->key_len) == 0);
  g_assert_null (strstr (text, "the-policy-key"));
  g_assert_true (g_str_has_prefix (text, "SCRAM-SHA-512;i=8192;s="));

  back = kafka_scram_secret_from_bytes (bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->mechanism, ==, KAFKA_SCRAM_SHA_512);
  g_assert_cmpuint (back->iterations, ==, 8192);
  g_assert_cmpmem (back->salt, back->salt_len, a->salt, a->salt_len);
  g_assert_cmpmem (back->stored_key, back->key_len, a->stored_key, a->key_len);
  g_assert_cmpmem (back->server_key, back->key_len, a->server_key, a->key_len);
  g_assert_true (kafka_scram_secret_matches (back, "the-policy-key"));
  g_assert_false (kafka_scram_secret_matches (back, "a-rotated-key"));

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GBytes) bb = g_bytes_new_static (bad[i], strlen (bad[i]));

      g_assert_null (kafka_scram_secret_from_bytes (bb, &error));
      g_assert_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED);
      g_clear_error (&error);
    }
}

static void
test_mechanism_names (void)
{
  KafkaScramMechanism m;

  g_assert_true (kafka_scram_mechanism_from_name ("SCRAM-SHA-256", &m));
  g_assert_cmpint (m, ==, KAFKA_SCRAM_SHA_256);
  g_assert_true (kafka_scram_mechanism_from_name ("SCRAM-SHA-512", &m));
  g_assert_cmpint (m, ==, KAFKA_SCRAM_SHA_512);
  g_assert_false (kafka_scram_mechanism_from_name ("scram-sha-256", &m));
  g_assert_false (kafka_scram_mechanism_from_name ("PLAIN", &m));
  g_assert_cmpstr (kafka_scram_mechanism_name (KAFKA_SCRAM_SHA_512), ==, "SCRAM-SHA-512");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/transport/kafka/sasl/plain/policy", test_plain_policy);
  g_test_add_func ("/transport/kafka/sasl/plain/connection-string",
                   test_plain_connection_string);
  g_test_add_func ("/transport/kafka/sasl/plain/malformed", test_plain_malformed);
  g_test_add_func ("/transport/kafka/sasl/scram/rfc7677", test_scram_rfc7677);
  g_test_add_func ("/transport/kafka/sasl/scram/exchange", test_scram_exchange);
  g_test_add_func ("/transport/kafka/sasl/scram/mechanism-mismatch",
                   test_scram_mechanism_mismatch);
  g_test_add_func ("/transport/kafka/sasl/scram/malformed", test_scram_malformed);
  g_test_add_func ("/transport/kafka/sasl/scram/saslname", test_scram_saslname);
  g_test_add_func ("/transport/kafka/sasl/scram/secret-storage", test_secret_storage);
  g_test_add_func ("/transport/kafka/sasl/mechanism-names", test_mechanism_names);

  return g_test_run ();
}
