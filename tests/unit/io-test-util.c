/* Sluice unit tests — clients and certificates for the I/O tests.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"
#include "io-test-util.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <gnutls/crypto.h>

int
test_client_connect (const char *address, int rcvbuf)
{
  g_autofree char *host = NULL;
  const char *colon = strrchr (address, ':');
  struct addrinfo hints = { 0 }, *res = NULL;
  struct timeval tv = { 10, 0 };
  int fd, one = 1;

  g_assert_nonnull (colon);
  if (address[0] == '[')
    host = g_strndup (address + 1, colon - address - 2);
  else
    host = g_strndup (address, colon - address);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  g_assert_cmpint (getaddrinfo (host, colon + 1, &hints, &res), ==, 0);
  fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (fd, >=, 0);
  if (rcvbuf > 0)
    g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), ==, 0);
  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), ==, 0);
  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), ==, 0);
  g_assert_cmpint (setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), ==, 0);
  if (connect (fd, res->ai_addr, res->ai_addrlen) < 0)
    g_error ("connect to %s: %s", address, g_strerror (errno));
  freeaddrinfo (res);
  return fd;
}

char *
test_format_address (const struct sockaddr *sa, socklen_t len)
{
  char host[INET6_ADDRSTRLEN];

  if (sa->sa_family == AF_INET)
    {
      const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;

      inet_ntop (AF_INET, &sin->sin_addr, host, sizeof host);
      return g_strdup_printf ("%s:%u", host, ntohs (sin->sin_port));
    }
  else
    {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

      inet_ntop (AF_INET6, &sin6->sin6_addr, host, sizeof host);
      return g_strdup_printf ("[%s]:%u", host, ntohs (sin6->sin6_port));
    }
}

void
test_send_all (int fd, const void *data, gsize len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        g_error ("send: %s", g_strerror (errno));
      p += n;
      len -= n;
    }
}

gboolean
test_recv_exact (int fd, void *buf, gsize len)
{
  guint8 *p = buf;

  while (len > 0)
    {
      ssize_t n = recv (fd, p, len, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= n;
    }
  return TRUE;
}

gboolean
test_recv_to_end (int fd, GByteArray *out)
{
  guint8 buf[65536];

  for (;;)
    {
      ssize_t n = recv (fd, buf, sizeof buf, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        return TRUE;
      if (n < 0)
        return FALSE;
      if (out != NULL)
        g_byte_array_append (out, buf, n);
    }
}

int
test_tls_client_open (TestTlsClient *client, const char *address, const char *trust_pem_file,
                      const char *chain_pem, const char *key_pem)
{
  int rc;

  memset (client, 0, sizeof *client);
  client->fd = test_client_connect (address, 0);
  g_assert_cmpint (gnutls_certificate_allocate_credentials (&client->creds), ==, 0);
  if (trust_pem_file != NULL)
    g_assert_cmpint (gnutls_certificate_set_x509_trust_file (client->creds, trust_pem_file,
                                                             GNUTLS_X509_FMT_PEM), >, 0);
  if (chain_pem != NULL)
    {
      gnutls_datum_t c = { (unsigned char *) chain_pem, strlen (chain_pem) };
      gnutls_datum_t k = { (unsigned char *) key_pem, strlen (key_pem) };

      g_assert_cmpint (gnutls_certificate_set_x509_key_mem2 (client->creds, &c, &k,
                                                             GNUTLS_X509_FMT_PEM, NULL, 0),
                       >=, 0);
    }
  g_assert_cmpint (gnutls_init (&client->session, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL), ==, 0);
  g_assert_cmpint (gnutls_set_default_priority (client->session), ==, 0);
  g_assert_cmpint (gnutls_credentials_set (client->session, GNUTLS_CRD_CERTIFICATE,
                                           client->creds), ==, 0);
  gnutls_server_name_set (client->session, GNUTLS_NAME_DNS, "localhost", strlen ("localhost"));
  if (trust_pem_file != NULL)
    gnutls_session_set_verify_cert (client->session, "localhost", 0);
  gnutls_transport_set_int (client->session, client->fd);
  do
    rc = gnutls_handshake (client->session);
  while (rc < 0 && !gnutls_error_is_fatal (rc));
  return rc;
}

void
test_tls_send_all (TestTlsClient *client, const void *data, gsize len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = gnutls_record_send (client->session, p, len);

      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n < 0)
        g_error ("gnutls_record_send: %s", gnutls_strerror (n));
      p += n;
      len -= n;
    }
}

gboolean
test_tls_recv_exact (TestTlsClient *client, void *buf, gsize len)
{
  guint8 *p = buf;

  while (len > 0)
    {
      ssize_t n = gnutls_record_recv (client->session, p, len);

      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= n;
    }
  return TRUE;
}

void
test_tls_client_close (TestTlsClient *client)
{
  if (client->session != NULL)
    gnutls_deinit (client->session);
  if (client->creds != NULL)
    gnutls_certificate_free_credentials (client->creds);
  if (client->fd >= 0)
    close (client->fd);
  memset (client, 0, sizeof *client);
  client->fd = -1;
}

void
test_make_cert (const char *cn, gboolean ca, gnutls_x509_crt_t issuer,
                gnutls_x509_privkey_t issuer_key, gnutls_x509_crt_t *crt_out,
                gnutls_x509_privkey_t *key_out)
{
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  guint8 serial[8];
  time_t now = time (NULL);

  g_assert_cmpint (gnutls_x509_privkey_init (&key), ==, 0);
  g_assert_cmpint (gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                                 GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1),
                                                 0), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_init (&crt), ==, 0);
  g_assert_cmpint (gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial), ==, 0);
  serial[0] = (serial[0] & 0x7f) | 1;
  g_assert_cmpint (gnutls_x509_crt_set_version (crt, 3), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_serial (crt, serial, sizeof serial), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_activation_time (crt, now - 3600), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_expiration_time (crt, now + 24 * 3600), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                  strlen (cn)), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_key (crt, key), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_basic_constraints (crt, ca ? 1 : 0, -1), ==, 0);
  if (ca)
    g_assert_cmpint (gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_KEY_CERT_SIGN
                                                         | GNUTLS_KEY_CRL_SIGN), ==, 0);
  else
    {
      g_assert_cmpint (gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE), ==, 0);
      g_assert_cmpint (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_CLIENT, 0),
                       ==, 0);
    }
  if (issuer != NULL)
    g_assert_cmpint (gnutls_x509_crt_sign2 (crt, issuer, issuer_key, GNUTLS_DIG_SHA256, 0), ==, 0);
  else
    g_assert_cmpint (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0), ==, 0);
  *crt_out = crt;
  *key_out = key;
}

char *
test_crt_pem (gnutls_x509_crt_t crt)
{
  gnutls_datum_t d;
  char *pem;

  g_assert_cmpint (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &d), ==, 0);
  pem = g_strndup ((const char *) d.data, d.size);
  gnutls_free (d.data);
  return pem;
}

GBytes *
test_crt_der (gnutls_x509_crt_t crt)
{
  gnutls_datum_t d;
  GBytes *der;

  g_assert_cmpint (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_DER, &d), ==, 0);
  der = g_bytes_new (d.data, d.size);
  gnutls_free (d.data);
  return der;
}

char *
test_key_pem (gnutls_x509_privkey_t key)
{
  gnutls_datum_t d;
  char *pem;

  g_assert_cmpint (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                      GNUTLS_PKCS_PLAIN, &d), ==, 0);
  pem = g_strndup ((const char *) d.data, d.size);
  gnutls_free (d.data);
  return pem;
}
