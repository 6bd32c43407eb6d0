/* transport-kafka — SASL: PLAIN logins and the server side of SCRAM.
 *
 * Pure logic: bytes in, bytes and structs out, no I/O, no core calls. The
 * transport feeds SaslAuthenticate payloads in and sends what comes out.
 *
 * SCRAM secrets. SCRAM users are shared access policies (WIRE.md): user =
 * policy name, password = the policy key as written in the config. The key
 * itself is never stored by the transport. What is stored is a verifier per
 * policy and mechanism (RFC 5802 section 3):
 *   salt         = 16 random bytes (getrandom), new whenever the key changes
 *   SaltedPassword = Hi (key, salt, iterations)   (PBKDF2 with HMAC-H)
 *   StoredKey    = H (HMAC (SaltedPassword, "Client Key"))
 *   ServerKey    = HMAC (SaltedPassword, "Server Key")
 * kafka_scram_secret_to_bytes() serialises one verifier; the transport keeps
 * them in its KV namespace (sluice_host_kv_commit, space = the transport
 * instance name) under `scram/{mechanism}/{policy}` and loads them into
 * memory at start, so the synchronous lookup below never blocks. A verifier
 * lets the server check a proof but not impersonate the client; the key
 * cannot be recovered from it without brute force over PBKDF2.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

G_BEGIN_DECLS

#define KAFKA_SASL_ERROR (kafka_sasl_error_quark ())
GQuark kafka_sasl_error_quark (void);

typedef enum {
  KAFKA_SASL_ERROR_MALFORMED,      /* the client message does not parse */
  KAFKA_SASL_ERROR_AUTH_FAILED,    /* unknown user or wrong proof (never says which) */
  KAFKA_SASL_ERROR_STATE,          /* a message after the exchange ended */
  KAFKA_SASL_ERROR_UNSUPPORTED,    /* channel binding, extensions we do not know */
} KafkaSaslError;

/* Mechanism names as SaslHandshake carries them. */
#define KAFKA_SASL_PLAIN "PLAIN"
#define KAFKA_SASL_SCRAM_SHA_256 "SCRAM-SHA-256"
#define KAFKA_SASL_SCRAM_SHA_512 "SCRAM-SHA-512"

/* --- PLAIN (RFC 4616: [authzid] NUL authcid NUL passwd) --- */

/* A PLAIN login mapped to what the auth chain understands. `credentials`
 * points into the strings of this struct: keep the login alive while the
 * credentials are in use. Mapping:
 *  - user `$ConnectionString`, password `Endpoint=sb://..;SharedAccessKeyName=P;
 *    SharedAccessKey=K[;EntityPath=E]`: USERNAME_PASSWORD with username P,
 *    password K (`endpoint` and `entity_path` kept for the log / scope);
 *  - user `$ConnectionString`, password with `SharedAccessSignature=TOKEN`:
 *    SAS_TOKEN with that token;
 *  - anything else: USERNAME_PASSWORD as given: a policy name with its key
 *    as written, or with a SAS token signed with it (then `token` is set
 *    too; auth-key recognises the token by its prefix). */
typedef struct {
  SluiceCredentials credentials;
  char *authzid;          /* NULL when empty */
  char *username;         /* the user as mapped (policy name), NULL for tokens */
  char *password;
  char *token;
  char *endpoint;         /* from a connection string, may be NULL */
  char *entity_path;      /* from a connection string, may be NULL */
  char *peer;
} KafkaSaslLogin;

/* Parse one PLAIN message. An authzid different from the user is refused
 * (we do not act on behalf of others). `peer` (for logs) is copied.
 * (transfer full) */
KafkaSaslLogin *kafka_sasl_plain_parse (const guint8 *data, gsize len, const char *peer,
                                        GError **error);
/* Wipes the secrets before freeing. */
void kafka_sasl_login_free (KafkaSaslLogin *login);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KafkaSaslLogin, kafka_sasl_login_free)

/* --- SCRAM (RFC 5802, RFC 7677) --- */

typedef enum {
  KAFKA_SCRAM_SHA_256 = 0,
  KAFKA_SCRAM_SHA_512 = 1,
} KafkaScramMechanism;

/* FALSE for anything but the two SCRAM names (case-sensitive, as Kafka). */
gboolean kafka_scram_mechanism_from_name (const char *name, KafkaScramMechanism *mechanism);
const char *kafka_scram_mechanism_name (KafkaScramMechanism mechanism);

/* Kafka's minimum (and our default) iteration count. */
#define KAFKA_SCRAM_MIN_ITERATIONS 4096
#define KAFKA_SCRAM_MAX_KEY 64

/* One verifier. Never holds the password. */
typedef struct {
  KafkaScramMechanism mechanism;
  guint32 iterations;
  guint8 salt[32];
  gsize salt_len;
  guint8 stored_key[KAFKA_SCRAM_MAX_KEY];
  guint8 server_key[KAFKA_SCRAM_MAX_KEY];
  gsize key_len;          /* 32 or 64 */
} KafkaScramSecret;

/* Derive a verifier from `password` (the policy key's UTF-8 bytes) with the
 * given salt (1..32 bytes) and iterations. (transfer full) */
KafkaScramSecret *kafka_scram_secret_derive (KafkaScramMechanism mechanism,
                                             const char *password,
                                             const guint8 *salt, gsize salt_len,
                                             guint32 iterations);
/* Same with a fresh random 16-byte salt. (transfer full) */
KafkaScramSecret *kafka_scram_secret_new (KafkaScramMechanism mechanism, const char *password,
                                          guint32 iterations);
/* TRUE when `secret` was derived from `password` (to tell whether a stored
 * verifier is still current after a key rotation). Constant time. */
gboolean kafka_scram_secret_matches (const KafkaScramSecret *secret, const char *password);
/* Text form `SCRAM-SHA-256;i=4096;s=<b64>;k=<b64 StoredKey>;v=<b64 ServerKey>`.
 * (transfer full) */
GBytes *kafka_scram_secret_to_bytes (const KafkaScramSecret *secret);
KafkaScramSecret *kafka_scram_secret_from_bytes (GBytes *bytes, GError **error);
void kafka_scram_secret_free (KafkaScramSecret *secret);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KafkaScramSecret, kafka_scram_secret_free)

/* Find the verifier of `username` (already SASLname-decoded) for the
 * server's mechanism. NULL: unknown user. Must not block. (transfer full) */
typedef KafkaScramSecret *(*KafkaScramLookupFunc) (const char *username,
                                                   KafkaScramMechanism mechanism,
                                                   gpointer user_data);

typedef struct _KafkaScramServer KafkaScramServer;

typedef enum {
  KAFKA_SCRAM_STEP_CONTINUE,   /* send `out`, wait for the next client message */
  KAFKA_SCRAM_STEP_DONE,       /* authenticated: send `out` (server-final) */
  KAFKA_SCRAM_STEP_FAILED,     /* `error` set; `out` may hold `e=...` to send */
} KafkaScramStep;

/* `nonce`: the server's nonce part (printable, no ','), or NULL for 24 random
 * bytes in base64 (tests pass a fixed one to replay RFC 7677). */
KafkaScramServer *kafka_scram_server_new (KafkaScramMechanism mechanism,
                                          KafkaScramLookupFunc lookup, gpointer user_data,
                                          const char *nonce);
/* Feed client-first, then client-final. An unknown user is not revealed at
 * the first step: the exchange continues with a made-up salt and fails at the
 * proof, like a wrong password. (out: transfer full, may be NULL) */
KafkaScramStep kafka_scram_server_step (KafkaScramServer *server,
                                        const guint8 *in, gsize in_len,
                                        GBytes **out, GError **error);
/* The authenticated user (after DONE), else NULL. (transfer none) */
const char *kafka_scram_server_get_username (KafkaScramServer *server);
void kafka_scram_server_free (KafkaScramServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KafkaScramServer, kafka_scram_server_free)

G_END_DECLS
