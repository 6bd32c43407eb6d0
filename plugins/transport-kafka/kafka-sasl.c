/* transport-kafka — SASL PLAIN logins and the server side of SCRAM
 * (RFC 5802 with the SHA-256 / SHA-512 hashes of RFC 7677 and Kafka).
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-sasl.h"

#include <string.h>
#include <sys/random.h>

G_DEFINE_QUARK (kafka-sasl-error-quark, kafka_sasl_error)

/* Larger than any connection string or SAS token a client would send. */
#define MAX_PLAIN 16384
#define MAX_SCRAM_MESSAGE 4096
#define SAS_PREFIX "SharedAccessSignature "

static void
wipe_free (char *s)
{
  if (s != NULL)
    {
      explicit_bzero (s, strlen (s));
      g_free (s);
    }
}

/* --- PLAIN --- */

void
kafka_sasl_login_free (KafkaSaslLogin *login)
{
  if (login == NULL)
    return;
  g_free (login->authzid);
  g_free (login->username);
  wipe_free (login->password);
  wipe_free (login->token);
  g_free (login->endpoint);
  g_free (login->entity_path);
  g_free (login->peer);
  g_free (login);
}

/* Connection-string items by name, ignoring case (people retype them). */
static const char *
item (GHashTable *items, const char *name)
{
  GHashTableIter it;
  gpointer k, v;

  g_hash_table_iter_init (&it, items);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (g_ascii_strcasecmp (k, name) == 0)
      return v;
  return NULL;
}

static gboolean
map_connection_string (KafkaSaslLogin *login, const char *text, GError **error)
{
  g_autoptr (GHashTable) items = NULL;
  g_autoptr (GError) local = NULL;
  const char *token, *name, *key;

  items = sluice_connection_string_parse (text, &local);
  if (items == NULL)
    {
      /* The parser never quotes the text, which may hold a key. */
      g_set_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED,
                   "PLAIN: $ConnectionString password: %s", local->message);
      return FALSE;
    }
  login->endpoint = g_strdup (item (items, "Endpoint"));
  login->entity_path = g_strdup (item (items, "EntityPath"));
  token = item (items, "SharedAccessSignature");
  if (token != NULL)
    {
      login->token = g_str_has_prefix (token, SAS_PREFIX)
                       ? g_strdup (token) : g_strconcat (SAS_PREFIX, token, NULL);
      login->credentials.type = SLUICE_CREDENTIALS_SAS_TOKEN;
      login->credentials.token = login->token;
      return TRUE;
    }
  name = item (items, "SharedAccessKeyName");
  key = item (items, "SharedAccessKey");
  if (name == NULL || key == NULL || *name == '\0' || *key == '\0')
    {
      g_set_error_literal (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED,
                           "PLAIN: $ConnectionString password without SharedAccessKeyName "
                           "and SharedAccessKey (or SharedAccessSignature)");
      return FALSE;
    }
  g_free (login->username);
  login->username = g_strdup (name);
  login->password = g_strdup (key);
  login->credentials.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
  login->credentials.username = login->username;
  login->credentials.password = login->password;
  return TRUE;
}

KafkaSaslLogin *
kafka_sasl_plain_parse (const guint8 *data, gsize len, const char *peer, GError **error)
{
  g_autoptr (KafkaSaslLogin) login = NULL;
  const guint8 *nul1, *nul2;
  gsize authzid_len, user_len, pass_len;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  if (len > MAX_PLAIN)
    {
      g_set_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED,
                   "PLAIN: message of %" G_GSIZE_FORMAT " bytes (at most %d)", len,
                   MAX_PLAIN);
      return NULL;
    }
  nul1 = len > 0 ? memchr (data, 0, len) : NULL;
  nul2 = nul1 ? memchr (nul1 + 1, 0, len - (gsize) (nul1 + 1 - data)) : NULL;
  if (nul1 == NULL || nul2 == NULL || memchr (nul2 + 1, 0, len - (gsize) (nul2 + 1 - data)))
    {
      g_set_error_literal (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED,
                           "PLAIN: not [authzid] NUL user NUL password");
      return NULL;
    }
  authzid_len = (gsize) (nul1 - data);
  user_len = (gsize) (nul2 - nul1 - 1);
  pass_len = len - (gsize) (nul2 + 1 - data);
  if (user_len == 0 || pass_len == 0)
    {
      g_set_error_literal (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED,
                           "PLAIN: empty user or password");
      return NULL;
    }
  if (!g_utf8_validate_len ((const char *) data, authzid_len, NULL)
      || !g_utf8_validate_len ((const char *) nul1 + 1, user_len, NULL)
      || !g_utf8_validate_len ((const char *) nul2 + 1, pass_len, NULL))
    {
      g_set_error_literal (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED,
                           "PLAIN: not UTF-8");
      return NULL;
    }

  login = g_new0 (KafkaSaslLogin, 1);
  login->authzid = authzid_len ? g_strndup ((const char *) data, authzid_len) : NULL;
  login->username = g_strndup ((const char *) nul1 + 1, user_len);
  login->peer = g_strdup (peer);
  login->credentials.protocol = "kafka";
  login->credentials.peer = login->peer;
  if (login->authzid != NULL && strcmp (login->authzid, login->username) != 0)
    {
      g_set_error (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_UNSUPPORTED,
                   "PLAIN: user '%s' asks to act as '%s'; acting for another identity "
                   "is not supported", login->username, login->authzid);
      return NULL;
    }

  if (strcmp (login->username, "$ConnectionString") == 0)
    {
      g_autofree char *text = g_strndup ((const char *) nul2 + 1, pass_len);
      gboolean ok = map_connection_string (login, text, error);

      explicit_bzero (text, pass_len);
      if (!ok)
        return NULL;
      return g_steal_pointer (&login);
    }

  /* A policy name with its key or a SAS token signed with it: the auth
   * chain tells them apart by the token prefix. */
  login->password = g_strndup ((const char *) nul2 + 1, pass_len);
  if (g_str_has_prefix (login->password, SAS_PREFIX))
    login->token = g_strdup (login->password);
  login->credentials.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
  login->credentials.username = login->username;
  login->credentials.password = login->password;
  login->credentials.token = login->token;
  return g_steal_pointer (&login);
}

/* --- SCRAM primitives --- */

gboolean
kafka_scram_mechanism_from_name (const char *name, KafkaScramMechanism *mechanism)
{
  if (g_strcmp0 (name, KAFKA_SASL_SCRAM_SHA_256) == 0)
    *mechanism = KAFKA_SCRAM_SHA_256;
  else if (g_strcmp0 (name, KAFKA_SASL_SCRAM_SHA_512) == 0)
    *mechanism = KAFKA_SCRAM_SHA_512;
  else
    return FALSE;
  return TRUE;
}

const char *
kafka_scram_mechanism_name (KafkaScramMechanism mechanism)
{
  return mechanism == KAFKA_SCRAM_SHA_512 ? KAFKA_SASL_SCRAM_SHA_512 : KAFKA_SASL_SCRAM_SHA_256;
}

static GChecksumType
checksum_type (KafkaScramMechanism mechanism)
{
  return mechanism == KAFKA_SCRAM_SHA_512 ? G_CHECKSUM_SHA512 : G_CHECKSUM_SHA256;
}

static gsize
hash_len (KafkaScramMechanism mechanism)
{
  return mechanism == KAFKA_SCRAM_SHA_512 ? 64 : 32;
}

static void
hmac (KafkaScramMechanism m, const guint8 *key, gsize key_len, const guint8 *data,
      gsize len, guint8 *out)
{
  GHmac *h = g_hmac_new (checksum_type (m), key, key_len);
  gsize n = hash_len (m);

  g_hmac_update (h, data, (gssize) len);
  g_hmac_get_digest (h, out, &n);
  g_hmac_unref (h);
}

static void
hash (KafkaScramMechanism m, const guint8 *data, gsize len, guint8 *out)
{
  GChecksum *c = g_checksum_new (checksum_type (m));
  gsize n = hash_len (m);

  g_checksum_update (c, data, (gssize) len);
  g_checksum_get_digest (c, out, &n);
  g_checksum_free (c);
}

/* Hi() of RFC 5802 = PBKDF2 with one block. The keyed HMAC is set up once
 * and copied per round, which halves the work. */
static void
hi (KafkaScramMechanism m, const char *password, const guint8 *salt, gsize salt_len,
    guint32 iterations, guint8 *out)
{
  gsize n = hash_len (m);
  GHmac *keyed = g_hmac_new (checksum_type (m), (const guint8 *) password, strlen (password));
  guint8 u[KAFKA_SCRAM_MAX_KEY];
  static const guint8 one[4] = { 0, 0, 0, 1 };
  GHmac *h = g_hmac_copy (keyed);
  gsize got = n;

  g_hmac_update (h, salt, (gssize) salt_len);
  g_hmac_update (h, one, 4);
  g_hmac_get_digest (h, u, &got);
  g_hmac_unref (h);
  memcpy (out, u, n);
  for (guint32 i = 1; i < iterations; i++)
    {
      h = g_hmac_copy (keyed);
      g_hmac_update (h, u, (gssize) n);
      got = n;
      g_hmac_get_digest (h, u, &got);
      g_hmac_unref (h);
      for (gsize k = 0; k < n; k++)
        out[k] ^= u[k];
    }
  g_hmac_unref (keyed);
  explicit_bzero (u, sizeof u);
}

static gboolean
equal_ct (const guint8 *a, const guint8 *b, gsize n)
{
  guint8 d = 0;

  for (gsize i = 0; i < n; i++)
    d |= a[i] ^ b[i];
  return d == 0;
}

KafkaScramSecret *
kafka_scram_secret_derive (KafkaScramMechanism mechanism, const char *password,
                           const guint8 *salt, gsize salt_len, guint32 iterations)
{
  KafkaScramSecret *s;
  guint8 salted[KAFKA_SCRAM_MAX_KEY], client_key[KAFKA_SCRAM_MAX_KEY];
  gsize n = hash_len (mechanism);

  g_return_val_if_fail (password != NULL, NULL);
  g_return_val_if_fail (salt_len > 0 && salt_len <= sizeof s->salt, NULL);
  g_return_val_if_fail (iterations > 0, NULL);

  s = g_new0 (KafkaScramSecret, 1);
  s->mechanism = mechanism;
  s->iterations = iterations;
  memcpy (s->salt, salt, salt_len);
  s->salt_len = salt_len;
  s->key_len = n;
  hi (mechanism, password, salt, salt_len, iterations, salted);
  hmac (mechanism, salted, n, (const guint8 *) "Client Key", 10, client_key);
  hash (mechanism, client_key, n, s->stored_key);
  hmac (mechanism, salted, n, (const guint8 *) "Server Key", 10, s->server_key);
  explicit_bzero (salted, sizeof salted);
  explicit_bzero (client_key, sizeof client_key);
  return s;
}

KafkaScramSecret *
kafka_scram_secret_new (KafkaScramMechanism mechanism, const char *password,
                        guint32 iterations)
{
  guint8 salt[16];

  if (getrandom (salt, sizeof salt, 0) != (ssize_t) sizeof salt)
    g_error ("getrandom failed");
  return kafka_scram_secret_derive (mechanism, password, salt, sizeof salt, iterations);
}

gboolean
kafka_scram_secret_matches (const KafkaScramSecret *secret, const char *password)
{
  g_autoptr (KafkaScramSecret) again = NULL;

  g_return_val_if_fail (secret != NULL && password != NULL, FALSE);
  again = kafka_scram_secret_derive (secret->mechanism, password, secret->salt,
                                     secret->salt_len, secret->iterations);
  return equal_ct (again->stored_key, secret->stored_key, secret->key_len);
}

void
kafka_scram_secret_free (KafkaScramSecret *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero (secret, sizeof *secret);
  g_free (secret);
}

GBytes *
kafka_scram_secret_to_bytes (const KafkaScramSecret *secret)
{
  g_autofree char *salt = g_base64_encode (secret->salt, secret->salt_len);
  g_autofree char *stored = g_base64_encode (secret->stored_key, secret->key_len);
  g_autofree char *server = g_base64_encode (secret->server_key, secret->key_len);
  char *text = g_strdup_printf ("%s;i=%u;s=%s;k=%s;v=%s",
                                kafka_scram_mechanism_name (secret->mechanism),
                                secret->iterations, salt, stored, server);

  return g_bytes_new_take (text, strlen (text));
}

/* Decode base64 into exactly `want` bytes (0: 1..max). */
static gboolean
decode_b64 (const char *text, guint8 *out, gsize max, gsize want, gsize *got)
{
  g_autofree guchar *raw = NULL;
  gsize n = 0;

  if (*text == '\0')
    return FALSE;
  raw = g_base64_decode (text, &n);
  if (n == 0 || n > max || (want != 0 && n != want))
    return FALSE;
  memcpy (out, raw, n);
  if (got)
    *got = n;
  return TRUE;
}

KafkaScramSecret *
kafka_scram_secret_from_bytes (GBytes *bytes, GError **error)
{
  g_autoptr (KafkaScramSecret) s = g_new0 (KafkaScramSecret, 1);
  g_autofree char *text = NULL;
  g_auto (GStrv) parts = NULL;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  guint64 iterations = 0;

  text = g_strndup (data, len);
  parts = g_strsplit (text, ";", -1);
  if (g_strv_length (parts) != 5 || !kafka_scram_mechanism_from_name (parts[0], &s->mechanism)
      || !g_str_has_prefix (parts[1], "i=") || !g_str_has_prefix (parts[2], "s=")
      || !g_str_has_prefix (parts[3], "k=") || !g_str_has_prefix (parts[4], "v="))
    goto bad;
  s->key_len = hash_len (s->mechanism);
  if (!g_ascii_string_to_unsigned (parts[1] + 2, 10, 1, G_MAXUINT32, &iterations, NULL)
      || !decode_b64 (parts[2] + 2, s->salt, sizeof s->salt, 0, &s->salt_len)
      || !decode_b64 (parts[3] + 2, s->stored_key, sizeof s->stored_key, s->key_len, NULL)
      || !decode_b64 (parts[4] + 2, s->server_key, sizeof s->server_key, s->key_len, NULL))
    goto bad;
  s->iterations = (guint32) iterations;
  return g_steal_pointer (&s);

bad:
  g_set_error_literal (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_MALFORMED,
                       "stored SCRAM verifier is malformed");
  return NULL;
}

/* --- the SCRAM server --- */

typedef enum {
  SCRAM_WANT_FIRST,
  SCRAM_WANT_FINAL,
  SCRAM_ENDED,
} ScramState;

struct _KafkaScramServer {
  KafkaScramMechanism mechanism;
  KafkaScramLookupFunc lookup;
  gpointer user_data;
  char *server_nonce;
  ScramState state;
  char *username;
  gboolean known;                /* FALSE: a made-up secret, the proof will fail */
  KafkaScramSecret *secret;
  char *gs2_header;
  char *client_first_bare;
  char *server_first;
  char *nonce;                   /* client + server */
  char *authenticated;
};

KafkaScramServer *
kafka_scram_server_new (KafkaScramMechanism mechanism, KafkaScramLookupFunc lookup,
                        gpointer user_data, const char *nonce)
{
  KafkaScramServer *s = g_new0 (KafkaScramServer, 1);

  s->mechanism = mechanism;
  s->lookup = lookup;
  s->user_data = user_data;
  if (nonce != NULL)
    s->server_nonce = g_strdup (nonce);
  else
    {
      guint8 raw[24];

      if (getrandom (raw, sizeof raw, 0) != (ssize_t) sizeof raw)
        g_error ("getrandom failed");
      s->server_nonce = g_base64_encode (raw, sizeof raw);
    }
  return s;
}

void
kafka_scram_server_free (KafkaScramServer *s)
{
  if (s == NULL)
    return;
  g_free (s->server_nonce);
  g_free (s->username);
  kafka_scram_secret_free (s->secret);
  g_free (s->gs2_header);
  g_free (s->client_first_bare);
  g_free (s->server_first);
  g_free (s->nonce);
  g_free (s->authenticated);
  g_free (s);
}

const char *
kafka_scram_server_get_username (KafkaScramServer *s)
{
  return s->authenticated;
}

static KafkaScramStep
scram_fail (KafkaScramServer *s, GError **error, KafkaSaslError code, const char *what)
{
  s->state = SCRAM_ENDED;
  g_set_error (error, KAFKA_SASL_ERROR, code, "%s: %s",
               kafka_scram_mechanism_name (s->mechanism), what);
  return KAFKA_SCRAM_STEP_FAILED;
}

/* saslname (RFC 5802 5.1): ',' and '=' arrive as "=2C" and "=3D"; any
 * other '=' is an error. */
static char *
decode_saslname (const char *in)
{
  GString *out = g_string_new (NULL);

  for (const char *p = in; *p; p++)
    {
      if (*p == ',')
        goto bad;
      if (*p != '=')
        {
          g_string_append_c (out, *p);
          continue;
        }
      if (strncmp (p, "=2C", 3) == 0)
        g_string_append_c (out, ',');
      else if (strncmp (p, "=3D", 3) == 0)
        g_string_append_c (out, '=');
      else
        goto bad;
      p += 2;
    }
  if (out->len == 0)
    goto bad;
  return g_string_free (out, FALSE);

bad:
  g_string_free (out, TRUE);
  return NULL;
}

/* A secret nobody can match, so an unknown user looks like a wrong
 * password. Its salt is stable per user within this process, so asking
 * twice does not reveal that the user is unknown either. */
static KafkaScramSecret *
fake_secret (KafkaScramMechanism m, const char *username)
{
  static guint8 process_key[32];
  static gsize initialised;
  KafkaScramSecret *s = g_new0 (KafkaScramSecret, 1);
  guint8 digest[KAFKA_SCRAM_MAX_KEY];

  if (g_once_init_enter (&initialised))
    {
      if (getrandom (process_key, sizeof process_key, 0) != (ssize_t) sizeof process_key)
        g_error ("getrandom failed");
      g_once_init_leave (&initialised, 1);
    }
  hmac (KAFKA_SCRAM_SHA_256, process_key, sizeof process_key, (const guint8 *) username,
        strlen (username), digest);
  s->mechanism = m;
  s->iterations = KAFKA_SCRAM_MIN_ITERATIONS;
  memcpy (s->salt, digest, 16);
  s->salt_len = 16;
  s->key_len = hash_len (m);
  if (getrandom (s->stored_key, s->key_len, 0) != (ssize_t) s->key_len
      || getrandom (s->server_key, s->key_len, 0) != (ssize_t) s->key_len)
    g_error ("getrandom failed");
  return s;
}

static KafkaScramStep
step_first (KafkaScramServer *s, const char *msg, GBytes **out, GError **error)
{
  const char *p = msg, *bare, *comma;
  g_auto (GStrv) attrs = NULL;
  g_autofree char *authzid = NULL;
  const char *cnonce = NULL, *user = NULL;
  g_autofree char *salt = NULL;

  /* gs2-header: "n" or "y" (no channel binding), then [a=authzid], ",". */
  if (p[0] == 'p')
    return scram_fail (s, error, KAFKA_SASL_ERROR_UNSUPPORTED, "channel binding is not supported");
  if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',')
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "bad GS2 header");
  p += 2;
  comma = strchr (p, ',');
  if (comma == NULL)
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "bad GS2 header");
  if (comma != p)
    {
      g_autofree char *raw = NULL;

      if (!g_str_has_prefix (p, "a="))
        return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "bad GS2 header");
      raw = g_strndup (p + 2, (gsize) (comma - p - 2));
      authzid = decode_saslname (raw);
      if (authzid == NULL)
        return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "bad authzid");
    }
  bare = comma + 1;
  s->gs2_header = g_strndup (msg, (gsize) (bare - msg));

  attrs = g_strsplit (bare, ",", -1);
  for (guint i = 0; attrs[i]; i++)
    {
      if (i == 0 && g_str_has_prefix (attrs[i], "n="))
        user = attrs[i] + 2;
      else if (i == 1 && g_str_has_prefix (attrs[i], "r="))
        cnonce = attrs[i] + 2;
      else if (i == 0 && g_str_has_prefix (attrs[i], "m="))
        return scram_fail (s, error, KAFKA_SASL_ERROR_UNSUPPORTED,
                           "mandatory extension not supported");
      else if (i < 2)
        return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED,
                           "client-first is not n=user,r=nonce");
      /* Further attributes are extensions (Kafka's tokenauth=true):
       * delegation tokens are not supported, so a token login fails like
       * any unknown user. */
      else if (g_str_has_prefix (attrs[i], "tokenauth="))
        return scram_fail (s, error, KAFKA_SASL_ERROR_UNSUPPORTED,
                           "delegation tokens are not supported");
    }
  if (user == NULL || cnonce == NULL || *cnonce == '\0')
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED,
                       "client-first is not n=user,r=nonce");
  for (const char *c = cnonce; *c; c++)
    if (*c < 0x21 || *c > 0x7e || *c == ',')
      return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "bad client nonce");
  s->username = decode_saslname (user);
  if (s->username == NULL)
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "bad user name");
  if (authzid != NULL && strcmp (authzid, s->username) != 0)
    return scram_fail (s, error, KAFKA_SASL_ERROR_UNSUPPORTED,
                       "acting for another identity is not supported");
  s->client_first_bare = g_strdup (bare);

  s->secret = s->lookup ? s->lookup (s->username, s->mechanism, s->user_data) : NULL;
  s->known = s->secret != NULL && s->secret->mechanism == s->mechanism;
  if (!s->known)
    {
      kafka_scram_secret_free (s->secret);
      s->secret = fake_secret (s->mechanism, s->username);
    }
  s->nonce = g_strconcat (cnonce, s->server_nonce, NULL);
  salt = g_base64_encode (s->secret->salt, s->secret->salt_len);
  s->server_first = g_strdup_printf ("r=%s,s=%s,i=%u", s->nonce, salt, s->secret->iterations);
  *out = g_bytes_new (s->server_first, strlen (s->server_first));
  s->state = SCRAM_WANT_FINAL;
  return KAFKA_SCRAM_STEP_CONTINUE;
}

static KafkaScramStep
step_final (KafkaScramServer *s, const char *msg, GBytes **out, GError **error)
{
  const char *proof_at;
  g_autofree char *without_proof = NULL;
  g_autofree char *expect_c = NULL;
  g_autofree char *auth_message = NULL;
  g_auto (GStrv) attrs = NULL;
  guint8 proof[KAFKA_SCRAM_MAX_KEY], signature[KAFKA_SCRAM_MAX_KEY];
  guint8 client_key[KAFKA_SCRAM_MAX_KEY], stored[KAFKA_SCRAM_MAX_KEY];
  gsize n = s->secret->key_len;
  const char *c = NULL, *r = NULL;
  gboolean ok;

  /* The proof is the last attribute; everything before it is signed. */
  proof_at = g_strrstr (msg, ",p=");
  if (proof_at == NULL)
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "client-final without a proof");
  without_proof = g_strndup (msg, (gsize) (proof_at - msg));
  if (strchr (proof_at + 3, ',') != NULL
      || !decode_b64 (proof_at + 3, proof, sizeof proof, n, NULL))
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "bad proof");

  attrs = g_strsplit (without_proof, ",", -1);
  if (g_strv_length (attrs) < 2 || !g_str_has_prefix (attrs[0], "c=")
      || !g_str_has_prefix (attrs[1], "r="))
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "client-final is not c=..,r=..");
  c = attrs[0] + 2;
  r = attrs[1] + 2;
  expect_c = g_base64_encode ((const guint8 *) s->gs2_header, strlen (s->gs2_header));
  if (strcmp (c, expect_c) != 0)
    return scram_fail (s, error, KAFKA_SASL_ERROR_AUTH_FAILED, "channel binding mismatch");
  /* Kafka's broker accepts a nonce that ends with the server's combined
   * one (librdkafka 2.0 repeats its own nonce in front of it); the proof
   * below covers the message as sent either way. */
  if (!g_str_has_suffix (r, s->nonce))
    return scram_fail (s, error, KAFKA_SASL_ERROR_AUTH_FAILED, "nonce mismatch");

  auth_message = g_strjoin (",", s->client_first_bare, s->server_first, without_proof, NULL);
  hmac (s->mechanism, s->secret->stored_key, n, (const guint8 *) auth_message,
        strlen (auth_message), signature);
  for (gsize i = 0; i < n; i++)
    client_key[i] = proof[i] ^ signature[i];
  hash (s->mechanism, client_key, n, stored);
  ok = equal_ct (stored, s->secret->stored_key, n) && s->known;
  explicit_bzero (client_key, sizeof client_key);
  if (!ok)
    return scram_fail (s, error, KAFKA_SASL_ERROR_AUTH_FAILED,
                       "authentication failed (unknown user or wrong password)");

  hmac (s->mechanism, s->secret->server_key, n, (const guint8 *) auth_message,
        strlen (auth_message), signature);
  {
    g_autofree char *v = g_base64_encode (signature, n);
    char *final = g_strconcat ("v=", v, NULL);

    *out = g_bytes_new_take (final, strlen (final));
  }
  s->authenticated = g_strdup (s->username);
  s->state = SCRAM_ENDED;
  return KAFKA_SCRAM_STEP_DONE;
}

KafkaScramStep
kafka_scram_server_step (KafkaScramServer *s, const guint8 *in, gsize in_len, GBytes **out,
                         GError **error)
{
  g_autofree char *msg = NULL;

  g_return_val_if_fail (s != NULL && out != NULL, KAFKA_SCRAM_STEP_FAILED);
  *out = NULL;

  if (s->state == SCRAM_ENDED)
    {
      g_set_error_literal (error, KAFKA_SASL_ERROR, KAFKA_SASL_ERROR_STATE,
                           "SCRAM exchange already ended");
      return KAFKA_SCRAM_STEP_FAILED;
    }
  if (in_len == 0 || in_len > MAX_SCRAM_MESSAGE || memchr (in, 0, in_len) != NULL
      || !g_utf8_validate ((const char *) in, (gssize) in_len, NULL))
    return scram_fail (s, error, KAFKA_SASL_ERROR_MALFORMED, "malformed message");
  msg = g_strndup ((const char *) in, in_len);
  if (s->state == SCRAM_WANT_FIRST)
    return step_first (s, msg, out, error);
  return step_final (s, msg, out, error);
}
