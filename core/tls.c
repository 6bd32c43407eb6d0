/* Sluice core — TLS server credentials, sessions and self-signed certificates
 * (GnuTLS, on the worker's own fd).
 * SPDX-License-Identifier: Apache-2.0 */
#include "io-internal.h"

#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

struct _SluiceTlsServer {
  gnutls_certificate_credentials_t creds;
  gboolean verify;
};

static gboolean
read_file (const char *path, const char *what, char **contents, gsize *len, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (!g_file_get_contents (path, contents, len, &local))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "cannot read TLS %s %s: %s",
                   what, path, local->message);
      return FALSE;
    }
  return TRUE;
}

static void
wipe_free (char *data, gsize len)
{
  if (data != NULL)
    {
      memset (data, 0, len);
      g_free (data);
    }
}

SluiceTlsServer *
sluice_tls_server_new (const char *cert_path, const char *key_path, const char *ca_path,
                       GError **error)
{
  g_autofree char *cert = NULL;
  g_autofree char *ca = NULL;
  char *key = NULL;
  gsize cert_len, key_len = 0, ca_len;
  gnutls_datum_t cert_d, key_d;
  SluiceTlsServer *server;
  int rc;

  if (!read_file (cert_path, "certificate", &cert, &cert_len, error)
      || !read_file (key_path, "key", &key, &key_len, error))
    {
      wipe_free (key, key_len);
      return NULL;
    }

  server = g_new0 (SluiceTlsServer, 1);
  rc = gnutls_certificate_allocate_credentials (&server->creds);
  if (rc < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "cannot allocate TLS credentials: %s",
                   gnutls_strerror (rc));
      g_free (server);
      wipe_free (key, key_len);
      return NULL;
    }
  cert_d.data = (unsigned char *) cert;
  cert_d.size = cert_len;
  key_d.data = (unsigned char *) key;
  key_d.size = key_len;
  rc = gnutls_certificate_set_x509_key_mem2 (server->creds, &cert_d, &key_d, GNUTLS_X509_FMT_PEM,
                                             NULL, 0);
  wipe_free (key, key_len);
  if (rc < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "cannot use TLS certificate %s with key %s: %s", cert_path, key_path,
                   gnutls_strerror (rc));
      sluice_tls_server_free (server);
      return NULL;
    }

  if (ca_path != NULL)
    {
      gnutls_datum_t ca_d;

      if (!read_file (ca_path, "CA file", &ca, &ca_len, error))
        {
          sluice_tls_server_free (server);
          return NULL;
        }
      ca_d.data = (unsigned char *) ca;
      ca_d.size = ca_len;
      rc = gnutls_certificate_set_x509_trust_mem (server->creds, &ca_d, GNUTLS_X509_FMT_PEM);
      if (rc <= 0)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "cannot use TLS CA file %s: %s", ca_path,
                       rc < 0 ? gnutls_strerror (rc) : "no PEM certificate in it");
          sluice_tls_server_free (server);
          return NULL;
        }
      server->verify = TRUE;
    }
  return server;
}

void
sluice_tls_server_free (SluiceTlsServer *server)
{
  if (server == NULL)
    return;
  gnutls_certificate_free_credentials (server->creds);
  g_free (server);
}

gnutls_session_t
sluice_tls_server_session_new (SluiceTlsServer *server, int fd, GError **error)
{
  gnutls_session_t session = NULL;
  int rc;

  /* NO_SIGNAL: GnuTLS's own writes use MSG_NOSIGNAL, so a peer that went
   * away is an EPIPE error, not a SIGPIPE for the whole process. */
  rc = gnutls_init (&session, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
  if (rc >= 0)
    rc = gnutls_set_default_priority (session);
  if (rc >= 0)
    rc = gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, server->creds);
  if (rc < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "cannot start a TLS session: %s",
                   gnutls_strerror (rc));
      if (session != NULL)
        gnutls_deinit (session);
      return NULL;
    }
  /* Ask for a client certificate but do not require one: a client without
   * one may still authenticate otherwise (SAS token, SASL, password). */
  gnutls_certificate_server_set_request (session, GNUTLS_CERT_REQUEST);
  gnutls_transport_set_int (session, fd);
  return session;
}

gboolean
sluice_tls_server_verify_peer (SluiceTlsServer *server, gnutls_session_t session, char **reason)
{
  unsigned int n = 0, status = 0;
  gnutls_datum_t out = { NULL, 0 };
  int rc;

  if (!server->verify || gnutls_certificate_get_peers (session, &n) == NULL || n == 0)
    return TRUE;
  rc = gnutls_certificate_verify_peers2 (session, &status);
  if (rc < 0)
    {
      *reason = g_strdup (gnutls_strerror (rc));
      return FALSE;
    }
  if (status == 0)
    return TRUE;
  if (gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509, &out, 0) >= 0)
    {
      *reason = g_strstrip (g_strndup ((const char *) out.data, out.size));
      gnutls_free (out.data);
    }
  else
    *reason = g_strdup_printf ("verification status 0x%x", status);
  return FALSE;
}

GPtrArray *
sluice_tls_session_get_peer_certs (gnutls_session_t session)
{
  unsigned int n = 0;
  const gnutls_datum_t *list = gnutls_certificate_get_peers (session, &n);
  GPtrArray *certs;

  if (list == NULL || n == 0)
    return NULL;
  certs = g_ptr_array_new_full (n, (GDestroyNotify) g_bytes_unref);
  for (unsigned int i = 0; i < n; i++)
    g_ptr_array_add (certs, g_bytes_new (list[i].data, list[i].size));
  return certs;
}

/* --- self-signed certificate for development --- */

static gboolean
gnutls_check (int rc, const char *what, GError **error)
{
  if (rc >= 0)
    return TRUE;
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "cannot %s: %s", what,
               gnutls_strerror (rc));
  return FALSE;
}

static int
add_dns_name (gnutls_x509_crt_t crt, const char *name)
{
  return gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, name, strlen (name),
                                               GNUTLS_FSAN_APPEND);
}

static int
add_ip (gnutls_x509_crt_t crt, int family, const char *text)
{
  guint8 addr[16];

  if (inet_pton (family, text, addr) != 1)
    return GNUTLS_E_INVALID_REQUEST;
  return gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_IPADDRESS, addr,
                                               family == AF_INET ? 4 : 16, GNUTLS_FSAN_APPEND);
}

gboolean
sluice_tls_generate_self_signed (const char *hostname, const char *cert_path,
                                 const char *key_path, GError **error)
{
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_datum_t key_pem = { NULL, 0 }, cert_pem = { NULL, 0 };
  guint8 serial[16], key_id[64];
  size_t key_id_len = sizeof key_id;
  time_t now = time (NULL);
  gboolean ok = FALSE;

  if (hostname == NULL || *hostname == '\0')
    hostname = "localhost";

  if (!gnutls_check (gnutls_x509_privkey_init (&key), "allocate a key", error)
      || !gnutls_check (gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                                      GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1),
                                                      0),
                        "generate an ECDSA P-256 key", error)
      || !gnutls_check (gnutls_x509_crt_init (&crt), "allocate a certificate", error))
    goto out;

  if (!gnutls_check (gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial), "draw a serial", error))
    goto out;
  serial[0] &= 0x7f;   /* a positive INTEGER */
  serial[0] |= 0x01;   /* and no leading zero byte */

  if (!gnutls_check (gnutls_x509_crt_set_version (crt, 3), "set the certificate version", error)
      || !gnutls_check (gnutls_x509_crt_set_serial (crt, serial, sizeof serial),
                        "set the serial", error)
      /* An hour of slack for clocks a little behind ours. */
      || !gnutls_check (gnutls_x509_crt_set_activation_time (crt, now - 3600),
                        "set the start of validity", error)
      || !gnutls_check (gnutls_x509_crt_set_expiration_time (crt, now + 365 * 24 * 3600),
                        "set the end of validity", error)
      || !gnutls_check (gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                                       hostname, strlen (hostname)),
                        "set the common name", error)
      || !gnutls_check (gnutls_x509_crt_set_key (crt, key), "set the certificate key", error)
      || !gnutls_check (add_dns_name (crt, hostname), "add the host name", error)
      || (g_ascii_strcasecmp (hostname, "localhost") != 0
          && !gnutls_check (add_dns_name (crt, "localhost"), "add localhost", error))
      || !gnutls_check (add_ip (crt, AF_INET, "127.0.0.1"), "add 127.0.0.1", error)
      || !gnutls_check (add_ip (crt, AF_INET6, "::1"), "add ::1", error)
      || !gnutls_check (gnutls_x509_crt_set_basic_constraints (crt, 0, -1),
                        "set the basic constraints", error)
      || !gnutls_check (gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE),
                        "set the key usage", error)
      || !gnutls_check (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0),
                        "set the key purpose", error)
      || !gnutls_check (gnutls_x509_crt_get_key_id (crt, 0, key_id, &key_id_len),
                        "compute the key id", error)
      || !gnutls_check (gnutls_x509_crt_set_subject_key_id (crt, key_id, key_id_len),
                        "set the subject key id", error)
      || !gnutls_check (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0),
                        "sign the certificate", error)
      || !gnutls_check (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &cert_pem),
                        "encode the certificate", error)
      || !gnutls_check (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                           GNUTLS_PKCS_PLAIN, &key_pem),
                        "encode the key", error))
    goto out;

  /* The key is written first and only ever with mode 0600 (the temporary
   * file included), so it is never readable by others, not even briefly. */
  if (!g_file_set_contents_full (key_path, (const char *) key_pem.data, key_pem.size,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    {
      g_prefix_error (error, "cannot write TLS key %s: ", key_path);
      goto out;
    }
  if (!g_file_set_contents_full (cert_path, (const char *) cert_pem.data, cert_pem.size,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0644, error))
    {
      g_prefix_error (error, "cannot write TLS certificate %s: ", cert_path);
      goto out;
    }
  ok = TRUE;

out:
  if (key_pem.data != NULL)
    {
      memset (key_pem.data, 0, key_pem.size);
      gnutls_free (key_pem.data);
    }
  gnutls_free (cert_pem.data);
  if (crt != NULL)
    gnutls_x509_crt_deinit (crt);
  if (key != NULL)
    gnutls_x509_privkey_deinit (key);
  return ok;
}
