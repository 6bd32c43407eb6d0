/* auth-x509 tests — certificates, keys and CRLs made with GnuTLS (ECDSA
 * P-256, fast to generate), for the unit tests.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define DAY (24 * 3600)
#define CHECK(call) g_assert_cmpint ((call), >=, 0)

typedef struct
{
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  GBytes *der;
  char *pem;
} TestCert;

void test_cert_free (TestCert *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestCert, test_cert_free)

typedef struct
{
  const char *cn;                /* NULL: no CN at all */
  const char *cn2;               /* a second CN */
  gint64 not_before, not_after;  /* relative to now, seconds */
  gboolean is_ca;
  guint serial;
  gboolean server_only;          /* EKU serverAuth only */
} CertSpec;

gint64 now_s (void);
/* A certificate for `spec`, signed by `issuer` (NULL: self-signed). */
TestCert *make_cert (const CertSpec *spec, TestCert *issuer);
/* A client certificate for `cn`. */
TestCert *make_leaf (const char *cn, TestCert *issuer, guint serial);
/* A PEM CRL by `ca` that revokes `revoked` (NULL-terminated). */
char *make_crl (TestCert *ca, TestCert **revoked);
