/* Sluice plugin SDK — credentials, principals, rights and the auth interface.
 *
 * Auth plugins form a chain (`[auth] chain = key;x509`). For each question
 * every link answers ALLOW, DENY or DEFER; the first ALLOW or DENY wins, and a
 * chain that only defers denies. Auth slots run on I/O workers: they must not
 * block (no disk, no network). They read the device registry through the
 * host's in-memory registry (sluice_host_registry_lookup()).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>
#include <sluice/sluice-options.h>

G_BEGIN_DECLS

typedef enum {
  SLUICE_RIGHT_REGISTRY_READ = 1 << 0,
  SLUICE_RIGHT_REGISTRY_WRITE = 1 << 1,
  SLUICE_RIGHT_SERVICE_CONNECT = 1 << 2,
  SLUICE_RIGHT_DEVICE_CONNECT = 1 << 3,
  SLUICE_RIGHT_SEND = 1 << 4,
  SLUICE_RIGHT_LISTEN = 1 << 5,
  SLUICE_RIGHT_MANAGE = 1 << 6,
} SluiceRights;

/* Parse `RegistryRead;Send` style names (case-insensitive). */
SLUICE_API gboolean sluice_rights_parse (const char *const *names, guint *rights,
                                         GError **error);
SLUICE_API char *sluice_rights_to_string (guint rights);

typedef enum {
  SLUICE_PRINCIPAL_ANONYMOUS = 0,
  SLUICE_PRINCIPAL_DEVICE = 1,   /* devices/{id} (or devices/{id}/modules/{m}) */
  SLUICE_PRINCIPAL_POLICY = 2,   /* policy/{name} */
} SluicePrincipalKind;

/* A principal is immutable and refcounted; safe to share across threads. */
SLUICE_API SluicePrincipal *sluice_principal_new (SluicePrincipalKind kind,
                                                  const char *name,
                                                  guint rights,
                                                  const char *const *streams,
                                                  gint64 expires_at,
                                                  const char *auth_method);
SLUICE_API SluicePrincipal *sluice_principal_ref (SluicePrincipal *principal);
SLUICE_API void sluice_principal_unref (SluicePrincipal *principal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluicePrincipal, sluice_principal_unref)
SLUICE_API SluicePrincipalKind sluice_principal_get_kind (const SluicePrincipal *principal);
/* Device id or policy name; "" for anonymous. (transfer none) */
SLUICE_API const char *sluice_principal_get_name (const SluicePrincipal *principal);
/* `devices/{id}`, `policy/{name}` or `anonymous`. (transfer none) */
SLUICE_API const char *sluice_principal_get_id (const SluicePrincipal *principal);
SLUICE_API guint sluice_principal_get_rights (const SluicePrincipal *principal);
/* NULL: every stream. (transfer none) */
SLUICE_API const char *const *sluice_principal_get_streams (const SluicePrincipal *principal);
/* Unix seconds after which the credentials are no longer valid; 0: never. */
SLUICE_API gint64 sluice_principal_get_expires_at (const SluicePrincipal *principal);
/* `sas`, `policy-key`, `x509`, `scram`, ... (transfer none) */
SLUICE_API const char *sluice_principal_get_auth_method (const SluicePrincipal *principal);

typedef enum {
  SLUICE_CREDENTIALS_SAS_TOKEN = 1,       /* `token` */
  SLUICE_CREDENTIALS_USERNAME_PASSWORD,   /* `username`, `password` (e.g. MQTT, SASL PLAIN) */
  SLUICE_CREDENTIALS_TLS_PEER,            /* `peer_certs` */
} SluiceCredentialsType;

typedef struct {
  SluiceCredentialsType type;
  const char *protocol;        /* "mqtt", "https", "lines", ... for logs */
  const char *peer;            /* "127.0.0.1:5555", for logs */
  const char *token;           /* SAS token `SharedAccessSignature sr=...` */
  const char *username;
  const char *password;
  const char *client_id;       /* MQTT client id, AMQP container id, ... */
  /* The resource the client says it is connecting as (`{host}/devices/{id}`),
   * when the protocol tells; tokens must cover it. NULL: not checked here. */
  const char *resource;
  GPtrArray *peer_certs;       /* GBytes* DER, leaf first (transfer none) */
  gpointer reserved[4];
} SluiceCredentials;

typedef enum {
  SLUICE_AUTH_DEFER = 0,
  SLUICE_AUTH_ALLOW = 1,
  SLUICE_AUTH_DENY = 2,
} SluiceAuthResult;

/* Actions checked by the core on every host-service call. */
typedef enum {
  SLUICE_ACTION_SEND = 1,          /* append to stream `resource` */
  SLUICE_ACTION_LISTEN,            /* read stream / commit offsets of `resource` */
  SLUICE_ACTION_MANAGE,            /* create / delete stream `resource` */
  SLUICE_ACTION_REGISTRY_READ,     /* resource: device id */
  SLUICE_ACTION_REGISTRY_WRITE,    /* resource: device id */
  SLUICE_ACTION_DEVICE_SEND,       /* telemetry as device `resource` */
  SLUICE_ACTION_DEVICE_RECEIVE,    /* C2D, twin, methods of device `resource` */
  SLUICE_ACTION_SERVICE,           /* service API (C2D send, twins, methods), resource: device id */
} SluiceAction;

typedef struct {
  /* Create an instance for `[auth.NAME]`. `options` is the plugin's options
   * struct (transfer none; valid until destroy). `config` gives access to
   * owned section families (auth-key: `[policy.*]`). (transfer full) */
  gpointer (*create) (SluiceHost *host, const char *instance_name, const void *options,
                      SluiceConfig *config, GError **error);
  void (*destroy) (gpointer self);
  /* Turn credentials into a principal. ALLOW: `*principal` is set (transfer
   * full). DENY: `error` says why, in words fit for the log (never a secret);
   * the client sees only a generic refusal. DEFER: not mine to judge.
   * Must not block. */
  SluiceAuthResult (*authenticate) (gpointer self, const SluiceCredentials *credentials,
                                    SluicePrincipal **principal, GError **error);
  /* Optional (NULL: DEFER). Called by the core after its own rights check has
   * passed, for finer rules. Must not block. */
  SluiceAuthResult (*authorize) (gpointer self, const SluicePrincipal *principal,
                                 SluiceAction action, const char *resource);
  /* Optional. Reread owned sections after SIGHUP. Runs on the main thread.
   * Returns the ids (`policy/x`) of principals that no longer exist or whose
   * keys changed, so the core can close their sessions (transfer full,
   * NULL-terminated; may be NULL). On error the old state stays. */
  char **(*reload) (gpointer self, SluiceConfig *config, GError **error);
} SluiceAuthVTable;

/* Helpers for SAS tokens and connection strings (WIRE.md), used by auth-key,
 * by sluicectl and by tests. */
typedef struct {
  char *sr;          /* as received (still URL-encoded) */
  char *sr_decoded;
  char *sig;         /* URL-decoded base64 */
  gint64 se;
  char *skn;         /* NULL when absent */
} SluiceSasToken;

SLUICE_API SluiceSasToken *sluice_sas_token_parse (const char *token, GError **error);
SLUICE_API void sluice_sas_token_free (SluiceSasToken *token);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceSasToken, sluice_sas_token_free)
/* Make a token. `key_is_base64`: IoT Hub style (key base64-decoded before
 * HMAC) vs Event Hubs style (UTF-8 key bytes). `resource` unencoded.
 * Returns NULL when `key_is_base64` and `key` is not valid base64. */
SLUICE_API char *sluice_sas_token_make (const char *resource, const char *key,
                                        gboolean key_is_base64, const char *skn,
                                        gint64 expiry);
/* Parse `K=V;K2=V2` into a table (keys as written). (transfer full) */
SLUICE_API GHashTable *sluice_connection_string_parse (const char *text, GError **error);

/* Errors of the SAS helpers, so callers can tell a malformed token from a
 * wrong key from an expired one. */
#define SLUICE_SAS_ERROR (sluice_sas_error_quark ())
SLUICE_API GQuark sluice_sas_error_quark (void);
typedef enum {
  SLUICE_SAS_ERROR_MALFORMED,  /* prefix, fields, `se`, connection-string syntax */
  SLUICE_SAS_ERROR_BAD_KEY,    /* the verifying key is not valid base64 */
  SLUICE_SAS_ERROR_SIGNATURE,  /* signature mismatch: wrong key or tampered token */
  SLUICE_SAS_ERROR_EXPIRED,    /* `se` <= now */
} SluiceSasError;

/* Check the signature (HMAC-SHA256 over `sr` exactly as received + "\n" +
 * `se`, constant-time compare), then the expiry (`se` <= `now` is expired).
 * `key_is_base64` as for sluice_sas_token_make(). Never puts the key or the
 * signature into `error`. */
SLUICE_API gboolean sluice_sas_token_verify (const SluiceSasToken *token, const char *key,
                                             gboolean key_is_base64, gint64 now,
                                             GError **error);
/* TRUE when the decoded `sr` grants `resource` (WIRE.md): `sr` must be a
 * segment prefix of `resource` (`/a/b` covers `/a/b/c`, not `/a/bc`). A URI
 * scheme (`sb://`, `amqps://`, `https://`) and trailing `/` are ignored on
 * both; the host part compares case-insensitively. */
SLUICE_API gboolean sluice_sas_scope_covers (const char *sr_decoded, const char *resource);

G_END_DECLS
