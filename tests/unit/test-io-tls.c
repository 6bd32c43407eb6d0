/* Sluice unit tests — TLS termination by the core (GnuTLS on the worker's fd).
 * SPDX-License-Identifier: Apache-2.0 */
#include "io-test-transport.h"
#include "io-test-util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

typedef struct {
  char *dir;
  char *cert;
  char *key;
} Certs;

static void
certs_init (Certs *c)
{
  g_autoptr(GError) error = NULL;

  c->dir = g_dir_make_tmp ("sluice-io-tls-XXXXXX", &error);
  g_assert_no_error (error);
  c->cert = g_build_filename (c->dir, "server.crt", NULL);
  c->key = g_build_filename (c->dir, "server.key", NULL);
  g_assert_true (sluice_tls_generate_self_signed ("sluice-test", c->cert, c->key, &error));
  g_assert_no_error (error);
}

static char *
certs_write (Certs *c, const char *name, const char *contents)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (c->dir, name, NULL);

  g_assert_true (g_file_set_contents (path, contents, -1, &error));
  g_assert_no_error (error);
  return path;
}

static void
certs_clear (Certs *c)
{
  g_autoptr(GDir) dir = g_dir_open (c->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (c->dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (c->dir);
  g_free (c->dir);
  g_free (c->cert);
  g_free (c->key);
}

static void
tls_echo (TestTlsClient *client, const void *data, gsize len)
{
  g_autofree guint8 *back = g_malloc (len);

  test_tls_send_all (client, data, len);
  g_assert_true (test_tls_recv_exact (client, back, len));
  g_assert_cmpmem (back, len, data, len);
}

static void
test_generate (void)
{
  Certs c;
  g_autoptr(GError) error = NULL;
  g_autofree char *pem = NULL;
  gsize len;
  gnutls_x509_crt_t crt;
  gnutls_datum_t d;
  struct stat st;
  guint8 v4[4], v6[16];
  time_t span;

  certs_init (&c);
  g_assert_cmpint (stat (c.key, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  g_assert_true (g_file_get_contents (c.cert, &pem, &len, &error));
  d.data = (unsigned char *) pem;
  d.size = len;
  g_assert_cmpint (gnutls_x509_crt_init (&crt), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_import (crt, &d, GNUTLS_X509_FMT_PEM), ==, 0);
  g_assert_true (gnutls_x509_crt_check_hostname (crt, "sluice-test"));
  g_assert_true (gnutls_x509_crt_check_hostname (crt, "localhost"));
  g_assert_false (gnutls_x509_crt_check_hostname (crt, "example.com"));
  inet_pton (AF_INET, "127.0.0.1", v4);
  inet_pton (AF_INET6, "::1", v6);
  g_assert_true (gnutls_x509_crt_check_ip (crt, v4, 4, 0));
  g_assert_true (gnutls_x509_crt_check_ip (crt, v6, 16, 0));
  span = gnutls_x509_crt_get_expiration_time (crt) - gnutls_x509_crt_get_activation_time (crt);
  g_assert_cmpint (span, >=, 365 * 24 * 3600);
  g_assert_cmpint (span, <=, 366 * 24 * 3600);
  g_assert_cmpint (gnutls_x509_crt_get_pk_algorithm (crt, NULL), ==, GNUTLS_PK_ECDSA);
  gnutls_x509_crt_deinit (crt);

  /* An unwritable place is an error naming the file. */
  g_assert_false (sluice_tls_generate_self_signed ("x", "/nonexistent/dir/c.pem",
                                                   "/nonexistent/dir/k.pem", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "/nonexistent/dir/k.pem"));
  certs_clear (&c);
}

static void
test_bad_files (void)
{
  TestTransport t;
  Certs c, other;
  g_autoptr(GError) error = NULL;
  g_autofree char *empty = NULL;
  SluiceListenSpec spec = { .transport_name = "test", .vtable = &test_transport_vtable,
                            .tls = TRUE };

  certs_init (&c);
  certs_init (&other);
  empty = certs_write (&c, "empty-ca.pem", "not a certificate\n");
  test_transport_init (&t, 1, MODE_ECHO);
  spec.transport = &t;

  spec.tls_cert = "/nonexistent/server.crt";
  spec.tls_key = c.key;
  g_assert_false (sluice_io_listen (t.io, "127.0.0.1:0", &spec, NULL, &error));
  g_assert_nonnull (strstr (error->message, "/nonexistent/server.crt"));
  g_clear_error (&error);

  spec.tls_cert = c.cert;
  spec.tls_key = "/nonexistent/server.key";
  g_assert_false (sluice_io_listen (t.io, "127.0.0.1:0", &spec, NULL, &error));
  g_assert_nonnull (strstr (error->message, "/nonexistent/server.key"));
  g_clear_error (&error);

  /* A key that does not belong to the certificate. */
  spec.tls_key = other.key;
  g_assert_false (sluice_io_listen (t.io, "127.0.0.1:0", &spec, NULL, &error));
  g_assert_nonnull (strstr (error->message, c.cert));
  g_assert_nonnull (strstr (error->message, other.key));
  g_clear_error (&error);

  spec.tls_key = c.key;
  spec.tls_ca = empty;
  g_assert_false (sluice_io_listen (t.io, "127.0.0.1:0", &spec, NULL, &error));
  g_assert_nonnull (strstr (error->message, empty));
  g_clear_error (&error);

  spec.tls_ca = NULL;
  spec.tls_cert = NULL;
  g_assert_false (sluice_io_listen (t.io, "127.0.0.1:0", &spec, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);

  test_transport_clear (&t);
  certs_clear (&c);
  certs_clear (&other);
}

static void
test_round_trip (void)
{
  TestTransport t;
  Certs c;
  TestTlsClient client;
  SluiceListenSpec spec = { .tls = TRUE };
  gsize big_len = 300 * 1024;
  g_autofree guint8 *big = g_malloc (big_len);

  certs_init (&c);
  spec.tls_cert = c.cert;
  spec.tls_key = c.key;
  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", &spec);

  g_assert_cmpint (test_tls_client_open (&client, t.bound, c.cert, NULL, NULL), ==, 0);
  tls_echo (&client, "hello", 5);
  /* Many records each way. */
  for (gsize i = 0; i < big_len; i++)
    big[i] = test_pattern_byte (i);
  tls_echo (&client, big, big_len);

  g_mutex_lock (&t.lock);
  g_assert_true (t.last_tls);
  g_assert_null (t.last_certs);
  g_mutex_unlock (&t.lock);

  gnutls_bye (client.session, GNUTLS_SHUT_RDWR);
  test_tls_client_close (&client);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
  certs_clear (&c);
}

static void
test_congestion (void)
{
  TestTransport t;
  Certs c;
  TestTlsClient client;
  SluiceListenSpec spec = { .tls = TRUE };
  gsize total = (gsize) TEST_CHUNK * TEST_BLAST_CHUNKS;
  g_autofree guint8 *buf = g_malloc (total + 3);

  certs_init (&c);
  spec.tls_cert = c.cert;
  spec.tls_key = c.key;
  test_transport_init (&t, 2, MODE_BLAST);
  test_transport_listen (&t, "127.0.0.1:0", &spec);
  g_assert_cmpint (test_tls_client_open (&client, t.bound, c.cert, NULL, NULL), ==, 0);
  TEST_WAIT (&t, t.opened == 1);
  g_assert_true (t.congested_at_open);
  g_assert_true (test_tls_recv_exact (&client, buf, total + 3));
  for (gsize i = 0; i < total; i++)
    if (buf[i] != test_pattern_byte (i))
      g_error ("byte %" G_GSIZE_FORMAT " differs", i);
  g_assert_cmpmem (buf + total, 3, "END", 3);
  TEST_WAIT (&t, t.drained == 1);
  test_tls_client_close (&client);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
  certs_clear (&c);
}

static void
test_client_cert (void)
{
  TestTransport t;
  Certs c;
  TestTlsClient client;
  SluiceListenSpec spec = { .tls = TRUE };
  gnutls_x509_crt_t ca, leaf;
  gnutls_x509_privkey_t ca_key, leaf_key;
  g_autofree char *ca_pem = NULL, *leaf_pem = NULL, *leaf_key_pem = NULL, *chain = NULL;
  g_autofree char *ca_file = NULL;
  g_autoptr(GBytes) ca_der = NULL, leaf_der = NULL;

  certs_init (&c);
  test_make_cert ("Test CA", TRUE, NULL, NULL, &ca, &ca_key);
  test_make_cert ("device-1", FALSE, ca, ca_key, &leaf, &leaf_key);
  ca_pem = test_crt_pem (ca);
  leaf_pem = test_crt_pem (leaf);
  leaf_key_pem = test_key_pem (leaf_key);
  ca_der = test_crt_der (ca);
  leaf_der = test_crt_der (leaf);
  chain = g_strconcat (leaf_pem, ca_pem, NULL);
  ca_file = certs_write (&c, "ca.pem", ca_pem);

  spec.tls_cert = c.cert;
  spec.tls_key = c.key;
  spec.tls_ca = ca_file;
  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", &spec);

  /* A verified chain reaches the transport, leaf first. */
  g_assert_cmpint (test_tls_client_open (&client, t.bound, c.cert, chain, leaf_key_pem), ==, 0);
  tls_echo (&client, "with cert", 9);
  TEST_WAIT (&t, t.opened == 1);
  g_mutex_lock (&t.lock);
  g_assert_nonnull (t.last_certs);
  g_assert_cmpuint (t.last_certs->len, ==, 2);
  g_assert_true (g_bytes_equal (g_ptr_array_index (t.last_certs, 0), leaf_der));
  g_assert_true (g_bytes_equal (g_ptr_array_index (t.last_certs, 1), ca_der));
  g_mutex_unlock (&t.lock);
  test_tls_client_close (&client);

  /* Without a certificate the client is still let in (auth decides). */
  g_assert_cmpint (test_tls_client_open (&client, t.bound, c.cert, NULL, NULL), ==, 0);
  tls_echo (&client, "no cert", 7);
  TEST_WAIT (&t, t.opened == 2);
  g_mutex_lock (&t.lock);
  g_assert_null (t.last_certs);
  g_mutex_unlock (&t.lock);
  test_tls_client_close (&client);

  /* A listener without tls-ca passes an unverified self-signed chain on. */
  spec.tls_ca = NULL;
  test_transport_listen (&t, "127.0.0.1:0", &spec);
  {
    g_autofree char *self_pem = NULL, *self_key_pem = NULL;
    gnutls_x509_crt_t self;
    gnutls_x509_privkey_t self_key;
    g_autoptr(GBytes) self_der = NULL;

    test_make_cert ("self-signed-device", FALSE, NULL, NULL, &self, &self_key);
    self_pem = test_crt_pem (self);
    self_key_pem = test_key_pem (self_key);
    self_der = test_crt_der (self);
    g_assert_cmpint (test_tls_client_open (&client, t.bound, c.cert, self_pem, self_key_pem),
                     ==, 0);
    tls_echo (&client, "self", 4);
    TEST_WAIT (&t, t.opened == 3);
    g_mutex_lock (&t.lock);
    g_assert_cmpuint (t.last_certs->len, ==, 1);
    g_assert_true (g_bytes_equal (g_ptr_array_index (t.last_certs, 0), self_der));
    g_mutex_unlock (&t.lock);
    test_tls_client_close (&client);
    gnutls_x509_crt_deinit (self);
    gnutls_x509_privkey_deinit (self_key);
  }

  TEST_WAIT (&t, t.closed == 3);
  test_transport_clear (&t);
  gnutls_x509_crt_deinit (ca);
  gnutls_x509_crt_deinit (leaf);
  gnutls_x509_privkey_deinit (ca_key);
  gnutls_x509_privkey_deinit (leaf_key);
  certs_clear (&c);
}

static void
test_client_cert_rejected (void)
{
  TestTransport t;
  Certs c;
  TestTlsClient client;
  SluiceListenSpec spec = { .tls = TRUE };
  gnutls_x509_crt_t ca, impostor, leaf;
  gnutls_x509_privkey_t ca_key, impostor_key, leaf_key;
  g_autofree char *ca_pem = NULL, *ca_file = NULL, *leaf_pem = NULL, *leaf_key_pem = NULL;
  guint8 buf[4];
  int rc;

  certs_init (&c);
  /* Same name as the trusted CA (so the client offers its certificate for
   * the server's CA list), but a different key: the signature fails. */
  test_make_cert ("Test CA", TRUE, NULL, NULL, &ca, &ca_key);
  test_make_cert ("Test CA", TRUE, NULL, NULL, &impostor, &impostor_key);
  test_make_cert ("device-2", FALSE, impostor, impostor_key, &leaf, &leaf_key);
  ca_pem = test_crt_pem (ca);
  ca_file = certs_write (&c, "ca.pem", ca_pem);
  leaf_pem = test_crt_pem (leaf);
  leaf_key_pem = test_key_pem (leaf_key);

  spec.tls_cert = c.cert;
  spec.tls_key = c.key;
  spec.tls_ca = ca_file;
  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", &spec);

  rc = test_tls_client_open (&client, t.bound, c.cert, leaf_pem, leaf_key_pem);
  if (rc == 0)
    {
      /* TLS 1.3: the client finishes first; the server then hangs up. */
      test_tls_send_all (&client, "hi", 2);
      g_assert_false (test_tls_recv_exact (&client, buf, 2));
    }
  test_tls_client_close (&client);
  TEST_STAYS_FALSE (&t, t.opened > 0, 200);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  test_transport_clear (&t);
  gnutls_x509_crt_deinit (ca);
  gnutls_x509_crt_deinit (impostor);
  gnutls_x509_crt_deinit (leaf);
  gnutls_x509_privkey_deinit (ca_key);
  gnutls_x509_privkey_deinit (impostor_key);
  gnutls_x509_privkey_deinit (leaf_key);
  certs_clear (&c);
}

static void
test_plaintext_client (void)
{
  TestTransport t;
  Certs c;
  TestTlsClient client;
  SluiceListenSpec spec = { .tls = TRUE };
  const char *request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  int fd;

  certs_init (&c);
  spec.tls_cert = c.cert;
  spec.tls_key = c.key;
  test_transport_init (&t, 1, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", &spec);
  g_assert_cmpint (test_tls_client_open (&client, t.bound, c.cert, NULL, NULL), ==, 0);
  tls_echo (&client, "before", 6);

  fd = test_client_connect (t.bound, 0);
  test_send_all (fd, request, strlen (request));
  /* Closed (perhaps after an alert), never handed to the transport. */
  (void) test_recv_to_end (fd, NULL);
  close (fd);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 1);

  tls_echo (&client, "after", 5);
  g_assert_cmpuint (t.opened, ==, 1);
  test_tls_client_close (&client);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
  certs_clear (&c);
}

static void
test_handshake_timeout (void)
{
  TestTransport t;
  Certs c;
  SluiceListenSpec spec = { .tls = TRUE };
  gint64 start;
  int fd;

  certs_init (&c);
  spec.tls_cert = c.cert;
  spec.tls_key = c.key;
  test_transport_init (&t, 1, MODE_ECHO);
  sluice_io_set_handshake_timeout (t.io, 200);
  test_transport_listen (&t, "127.0.0.1:0", &spec);

  start = g_get_monotonic_time ();
  fd = test_client_connect (t.bound, 0);
  /* Says nothing: the server gives up after the timeout. */
  g_assert_true (test_recv_to_end (fd, NULL));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  close (fd);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  g_assert_cmpuint (t.opened, ==, 0);
  test_transport_clear (&t);
  certs_clear (&c);
}

/* Interop: OpenSSL's client verifies our certificate, sends a client
 * certificate and its bytes come back. */
static void
test_openssl_client (void)
{
  TestTransport t;
  Certs c, client;
  SluiceListenSpec spec = { .tls = TRUE };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *out = NULL, *err = NULL, *openssl = g_find_program_in_path ("openssl");
  g_autofree char *client_pem = NULL;
  gsize client_len;
  gnutls_datum_t d;
  gnutls_x509_crt_t crt;
  gnutls_datum_t der;

  if (openssl == NULL)
    g_error ("openssl not found: install the Debian package openssl");
  certs_init (&c);
  certs_init (&client);
  spec.tls_cert = c.cert;
  spec.tls_key = c.key;
  test_transport_init (&t, 1, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", &spec);

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                           | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                           openssl, "s_client", "-connect", t.bound, "-servername", "localhost",
                           "-verify_hostname", "localhost", "-CAfile", c.cert,
                           "-verify_return_error", "-cert", client.cert, "-key", client.key,
                           "-quiet", "-no_ign_eof", NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, "ping over openssl\n", NULL, &out, &err,
                                                &error));
  g_assert_no_error (error);
  g_test_message ("openssl: %s", err);
  g_assert_true (g_subprocess_get_successful (proc));
  /* -no_ign_eof: it hangs up at the end of its input, perhaps before the
   * echo came back; the handshake and the certificate are what count. */
  TEST_WAIT (&t, t.opened == 1);
  TEST_WAIT (&t, t.closed == 1);

  g_assert_true (g_file_get_contents (client.cert, &client_pem, &client_len, NULL));
  d.data = (unsigned char *) client_pem;
  d.size = client_len;
  g_assert_cmpint (gnutls_x509_crt_init (&crt), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_import (crt, &d, GNUTLS_X509_FMT_PEM), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_DER, &der), ==, 0);
  g_mutex_lock (&t.lock);
  g_assert_true (t.last_tls);
  g_assert_nonnull (t.last_certs);
  g_assert_cmpuint (t.last_certs->len, ==, 1);
  g_assert_cmpmem (g_bytes_get_data (g_ptr_array_index (t.last_certs, 0), NULL),
                   g_bytes_get_size (g_ptr_array_index (t.last_certs, 0)), der.data, der.size);
  g_mutex_unlock (&t.lock);
  gnutls_free (der.data);
  gnutls_x509_crt_deinit (crt);

  test_transport_clear (&t);
  certs_clear (&c);
  certs_clear (&client);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/io/tls/generate-self-signed", test_generate);
  g_test_add_func ("/io/tls/bad-files", test_bad_files);
  g_test_add_func ("/io/tls/round-trip", test_round_trip);
  g_test_add_func ("/io/tls/congestion", test_congestion);
  g_test_add_func ("/io/tls/client-cert", test_client_cert);
  g_test_add_func ("/io/tls/client-cert-rejected", test_client_cert_rejected);
  g_test_add_func ("/io/tls/plaintext-client", test_plaintext_client);
  g_test_add_func ("/io/tls/handshake-timeout", test_handshake_timeout);
  g_test_add_func ("/io/tls/openssl-client", test_openssl_client);
  return g_test_run ();
}
