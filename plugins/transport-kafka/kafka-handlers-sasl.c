/* transport-kafka — SASL on a connection: SaslHandshake, then the tokens
 * either in SaslAuthenticate requests (handshake v1) or as bare size-framed
 * tokens (handshake v0, and kafka-python, which sends them bare after v1
 * too). PLAIN logins go to the auth chain as they are mapped by
 * kafka-sasl.c; a SCRAM user (a policy) whose proof checks out against its
 * stored verifier is then authenticated as that policy through the chain.
 * A failed exchange is answered and the connection closed, as Kafka does.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-transport.h"
#include "kafka-sasl.h"

#include <string.h>

typedef enum {
  SASL_MECH_PLAIN,
  SASL_MECH_SCRAM,
} SaslMech;

typedef struct {
  gboolean handshaken;           /* a mechanism was chosen */
  gboolean done;                 /* authenticated */
  gboolean raw;                  /* handshake v0: bare tokens */
  SaslMech mech;
  KafkaScramMechanism scram_mech;
  KafkaScramServer *scram;
} SaslSession;

static const char *const mechanisms[] = {
  KAFKA_SASL_PLAIN, KAFKA_SASL_SCRAM_SHA_256, KAFKA_SASL_SCRAM_SHA_512,
};

void
kafka_sasl_session_free (gpointer data)
{
  SaslSession *session = data;

  g_clear_pointer (&session->scram, kafka_scram_server_free);
  g_free (session);
}

static SaslSession *
session_get (KafkaConn *conn)
{
  gpointer *slot = kafka_conn_sasl_slot (conn);

  if (*slot == NULL)
    *slot = g_new0 (SaslSession, 1);
  return *slot;
}

void
kafka_handle_sasl_handshake (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  SaslSession *session = session_get (conn);
  const char *mech = request->sasl_handshake.mechanism;
  KafkaResponse *response = kafka_response_new (KAFKA_API_SASL_HANDSHAKE,
                                                request->header.api_version,
                                                request->header.correlation_id);
  gboolean known = TRUE;

  response->sasl_handshake.mechanisms = mechanisms;
  response->sasl_handshake.n_mechanisms = G_N_ELEMENTS (mechanisms);
  if (session->handshaken)
    response->sasl_handshake.error_code = KAFKA_ERR_ILLEGAL_SASL_STATE;
  else if (g_strcmp0 (mech, KAFKA_SASL_PLAIN) == 0)
    session->mech = SASL_MECH_PLAIN;
  else if (kafka_scram_mechanism_from_name (mech, &session->scram_mech))
    session->mech = SASL_MECH_SCRAM;
  else
    {
      known = FALSE;
      response->sasl_handshake.error_code = KAFKA_ERR_UNSUPPORTED_SASL_MECHANISM;
    }
  if (response->sasl_handshake.error_code == KAFKA_ERR_NONE)
    {
      session->handshaken = TRUE;
      session->raw = request->header.api_version == 0;
    }
  kafka_request_free (request);
  kafka_pending_complete (pending, response);
  if (!known)
    kafka_conn_fail (conn, "SASL: a mechanism we do not offer");
}

static KafkaScramSecret *
scram_lookup (const char *username, KafkaScramMechanism mechanism, gpointer user_data)
{
  KafkaTransport *transport = user_data;
  g_autofree char *key = g_strdup_printf ("%s/%s", kafka_scram_mechanism_name (mechanism),
                                          username);

  return kafka_transport_scram_secret (transport, key);
}

/* One client token. Sets `*out` (the server's token, may be empty) and
 * returns TRUE to go on; FALSE: refused (`why` set, for the log). */
static gboolean
sasl_step (KafkaConn *conn, SaslSession *session, const guint8 *in, gsize len,
           GBytes **out, char **why)
{
  KafkaTransport *transport = kafka_conn_get_transport (conn);
  g_autoptr (GError) error = NULL;
  SluicePrincipal *principal = NULL;

  *out = NULL;
  if (!session->handshaken || session->done)
    {
      *why = g_strdup ("a SASL token outside an exchange");
      return FALSE;
    }
  if (session->mech == SASL_MECH_PLAIN)
    {
      g_autoptr (KafkaSaslLogin) login = kafka_sasl_plain_parse (in, len,
                                                                 kafka_conn_get_peer (conn),
                                                                 &error);
      if (login == NULL
          || (principal = sluice_host_authenticate (transport->host, &login->credentials,
                                                    &error)) == NULL)
        {
          *why = g_strdup_printf ("SASL PLAIN refused: %s", error->message);
          return FALSE;
        }
      *out = g_bytes_new (NULL, 0);
    }
  else
    {
      KafkaScramStep step;

      if (session->scram == NULL)
        session->scram = kafka_scram_server_new (session->scram_mech, scram_lookup, transport,
                                                 NULL);
      step = kafka_scram_server_step (session->scram, in, len, out, &error);
      if (step == KAFKA_SCRAM_STEP_FAILED)
        {
          *why = g_strdup_printf ("SASL %s refused: %s",
                                  kafka_scram_mechanism_name (session->scram_mech),
                                  error != NULL ? error->message : "failed");
          return FALSE;
        }
      if (step == KAFKA_SCRAM_STEP_CONTINUE)
        {
          if (*out == NULL)
            *out = g_bytes_new (NULL, 0);
          return TRUE;
        }
      else
        {
          const char *user = kafka_scram_server_get_username (session->scram);
          g_autofree char *key = kafka_transport_policy_key (transport, user);
          SluiceCredentials credentials = { 0 };

          /* The proof was checked against the verifier; the principal is
           * what the auth chain makes of the policy. */
          credentials.type = SLUICE_CREDENTIALS_USERNAME_PASSWORD;
          credentials.protocol = "kafka";
          credentials.peer = kafka_conn_get_peer (conn);
          credentials.username = user;
          credentials.password = key;
          if (key == NULL
              || (principal = sluice_host_authenticate (transport->host, &credentials,
                                                        &error)) == NULL)
            {
              g_clear_pointer (out, g_bytes_unref);
              *why = g_strdup_printf ("SASL SCRAM user '%s' is no longer a policy", user);
              return FALSE;
            }
          if (*out == NULL)
            *out = g_bytes_new (NULL, 0);
        }
    }
  session->done = TRUE;
  sluice_info (transport->instance_name, "connection %" G_GUINT64_FORMAT " (%s): "
               "authenticated as %s (SASL %s)", kafka_conn_get_id (conn),
               kafka_conn_get_peer (conn), sluice_principal_get_id (principal),
               session->mech == SASL_MECH_PLAIN ? "PLAIN"
                                                : kafka_scram_mechanism_name (session->scram_mech));
  kafka_conn_set_principal (conn, principal);
  return TRUE;
}

void
kafka_handle_sasl_authenticate (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request)
{
  SaslSession *session = session_get (conn);
  KafkaResponse *response = kafka_response_new (KAFKA_API_SASL_AUTHENTICATE,
                                                request->header.api_version,
                                                request->header.correlation_id);
  g_autoptr (GBytes) out = NULL;
  g_autofree char *why = NULL;
  gboolean ok;

  ok = sasl_step (conn, session, request->sasl_authenticate.auth_bytes,
                  request->sasl_authenticate.auth_bytes_len, &out, &why);
  if (ok)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (kafka_response_keep (response, out), &len);

      response->sasl_authenticate.auth_bytes = data;
      response->sasl_authenticate.auth_bytes_len = len;
    }
  else
    {
      /* The client learns only that it failed; the reason goes to the log. */
      response->sasl_authenticate.error_code = session->handshaken
                                               ? KAFKA_ERR_SASL_AUTHENTICATION_FAILED
                                               : KAFKA_ERR_ILLEGAL_SASL_STATE;
      response->sasl_authenticate.error_message = "Authentication failed";
      if (out != NULL)
        {
          gsize len;
          const guint8 *data = g_bytes_get_data (kafka_response_keep (response, out), &len);

          response->sasl_authenticate.auth_bytes = data;
          response->sasl_authenticate.auth_bytes_len = len;
        }
    }
  kafka_request_free (request);
  kafka_pending_complete (pending, response);
  if (!ok)
    kafka_conn_fail (conn, why);
}

gboolean
kafka_sasl_take_raw_frame (KafkaConn *conn, const guint8 *data, gsize len)
{
  SaslSession *session = *kafka_conn_sasl_slot (conn);
  g_autoptr (GBytes) out = NULL;
  g_autofree char *why = NULL;
  KafkaPending *pending;

  if (session == NULL || !session->handshaken || session->done)
    return FALSE;
  /* After a v1 handshake a SaslAuthenticate request is the norm; anything
   * that is not one is a bare token. */
  if (!session->raw && len >= 4 && data[0] == 0 && data[1] == KAFKA_API_SASL_AUTHENTICATE
      && data[2] == 0 && data[3] <= 2)
    return FALSE;
  pending = kafka_conn_queue_raw (conn);
  if (!sasl_step (conn, session, data, len, &out, &why))
    {
      /* Bare SASL has no failure message: closing says it. */
      kafka_pending_complete (pending, NULL);
      kafka_conn_fail (conn, why);
      return TRUE;
    }
  else
    {
      gsize n;
      const guint8 *token = g_bytes_get_data (out, &n);
      GByteArray *frame = g_byte_array_sized_new (4 + n);
      guint32 size_be = GUINT32_TO_BE ((guint32) n);
      g_autoptr (GBytes) bytes = NULL;

      g_byte_array_append (frame, (const guint8 *) &size_be, 4);
      if (n > 0)
        g_byte_array_append (frame, token, n);
      bytes = g_byte_array_free_to_bytes (frame);
      kafka_pending_complete_bytes (pending, bytes);
    }
  return TRUE;
}
