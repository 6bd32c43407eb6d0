/* Sluice unit tests — blocking socket and GnuTLS clients, certificate
 * helpers, shared by the I/O tests.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sys/socket.h>

G_BEGIN_DECLS

/* A blocking TCP client of "host:port" with 10 s send / receive timeouts
 * (so a broken server fails the test instead of hanging it). `rcvbuf` > 0
 * shrinks the receive buffer before connecting. */
int test_client_connect (const char *address, int rcvbuf);
/* "1.2.3.4:5" / "[::1]:5", as SluiceConnection spells peers. */
char *test_format_address (const struct sockaddr *sa, socklen_t len);
void test_send_all (int fd, const void *data, gsize len);
/* TRUE when `len` bytes arrived. */
gboolean test_recv_exact (int fd, void *buf, gsize len);
/* Reads until EOF or an error; TRUE on a clean EOF. */
gboolean test_recv_to_end (int fd, GByteArray *out);

typedef struct {
  int fd;
  gnutls_session_t session;
  gnutls_certificate_credentials_t creds;
} TestTlsClient;

/* Connect and handshake. `trust_pem` verifies the server (name
 * "localhost"); `chain_pem` / `key_pem` (PEM text, may be NULL) is the
 * client certificate chain. Returns the handshake's GnuTLS code. */
int test_tls_client_open (TestTlsClient *client, const char *address, const char *trust_pem_file,
                          const char *chain_pem, const char *key_pem);
void test_tls_send_all (TestTlsClient *client, const void *data, gsize len);
gboolean test_tls_recv_exact (TestTlsClient *client, void *buf, gsize len);
void test_tls_client_close (TestTlsClient *client);

/* A fresh ECDSA key and a certificate for `cn`, signed by `issuer` /
 * `issuer_key`, or self-signed when they are NULL; `ca` makes it a CA. */
void test_make_cert (const char *cn, gboolean ca, gnutls_x509_crt_t issuer,
                     gnutls_x509_privkey_t issuer_key, gnutls_x509_crt_t *crt,
                     gnutls_x509_privkey_t *key);
char *test_crt_pem (gnutls_x509_crt_t crt);
GBytes *test_crt_der (gnutls_x509_crt_t crt);
char *test_key_pem (gnutls_x509_privkey_t key);

G_END_DECLS
