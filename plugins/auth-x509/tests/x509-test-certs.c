/* auth-x509 tests — certificates, keys and CRLs made with GnuTLS.
 * SPDX-License-Identifier: Apache-2.0 */
#include "x509-test-certs.h"

#include <string.h>

void
test_cert_free (TestCert *c)
{
  if (c == NULL)
    return;
  gnutls_x509_crt_deinit (c->crt);
  gnutls_x509_privkey_deinit (c->key);
  g_bytes_unref (c->der);
  g_free (c->pem);
  g_free (c);
}

gint64
now_s (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

/* A certificate for `spec`, signed by `issuer` (NULL: self-signed). */
TestCert *
make_cert (const CertSpec *spec, TestCert *issuer)
{
  TestCert *c = g_new0 (TestCert, 1);
  guint8 serial[4];
  guint8 key_id[64];
  size_t key_id_len = sizeof key_id;
  gnutls_datum_t out = { NULL, 0 };
  gint64 now = now_s ();

  CHECK (gnutls_x509_privkey_init (&c->key));
  CHECK (gnutls_x509_privkey_generate (c->key, GNUTLS_PK_ECDSA,
                                       GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0));
  CHECK (gnutls_x509_crt_init (&c->crt));
  CHECK (gnutls_x509_crt_set_version (c->crt, 3));
  serial[0] = 0x10;
  serial[1] = (spec->serial >> 16) & 0xff;
  serial[2] = (spec->serial >> 8) & 0xff;
  serial[3] = spec->serial & 0xff;
  CHECK (gnutls_x509_crt_set_serial (c->crt, serial, sizeof serial));
  CHECK (gnutls_x509_crt_set_activation_time (c->crt, now + (spec->not_before != 0
                                                               ? spec->not_before : -3600)));
  CHECK (gnutls_x509_crt_set_expiration_time (c->crt, now + (spec->not_after != 0
                                                               ? spec->not_after : DAY)));
  if (spec->cn != NULL)
    CHECK (gnutls_x509_crt_set_dn_by_oid (c->crt, GNUTLS_OID_X520_COMMON_NAME, 0, spec->cn,
                                          strlen (spec->cn)));
  else
    CHECK (gnutls_x509_crt_set_dn_by_oid (c->crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0,
                                          "no cn", 5));
  if (spec->cn2 != NULL)
    CHECK (gnutls_x509_crt_set_dn_by_oid (c->crt, GNUTLS_OID_X520_COMMON_NAME, 0, spec->cn2,
                                          strlen (spec->cn2)));
  CHECK (gnutls_x509_crt_set_key (c->crt, c->key));
  CHECK (gnutls_x509_crt_get_key_id (c->crt, 0, key_id, &key_id_len));
  CHECK (gnutls_x509_crt_set_subject_key_id (c->crt, key_id, key_id_len));
  if (spec->is_ca)
    {
      CHECK (gnutls_x509_crt_set_basic_constraints (c->crt, 1, -1));
      CHECK (gnutls_x509_crt_set_key_usage (c->crt, GNUTLS_KEY_KEY_CERT_SIGN
                                                      | GNUTLS_KEY_CRL_SIGN));
    }
  else
    {
      CHECK (gnutls_x509_crt_set_basic_constraints (c->crt, 0, -1));
      CHECK (gnutls_x509_crt_set_key_usage (c->crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
      CHECK (gnutls_x509_crt_set_key_purpose_oid (c->crt, spec->server_only
                                                            ? GNUTLS_KP_TLS_WWW_SERVER
                                                            : GNUTLS_KP_TLS_WWW_CLIENT, 0));
    }
  if (issuer != NULL)
    {
      key_id_len = sizeof key_id;
      CHECK (gnutls_x509_crt_get_subject_key_id (issuer->crt, key_id, &key_id_len, NULL));
      CHECK (gnutls_x509_crt_set_authority_key_id (c->crt, key_id, key_id_len));
    }
  CHECK (gnutls_x509_crt_sign2 (c->crt, issuer != NULL ? issuer->crt : c->crt,
                                issuer != NULL ? issuer->key : c->key, GNUTLS_DIG_SHA256, 0));
  CHECK (gnutls_x509_crt_export2 (c->crt, GNUTLS_X509_FMT_DER, &out));
  c->der = g_bytes_new (out.data, out.size);
  gnutls_free (out.data);
  CHECK (gnutls_x509_crt_export2 (c->crt, GNUTLS_X509_FMT_PEM, &out));
  c->pem = g_strndup ((const char *) out.data, out.size);
  gnutls_free (out.data);
  return c;
}

TestCert *
make_leaf (const char *cn, TestCert *issuer, guint serial)
{
  CertSpec spec = { .cn = cn, .serial = serial };

  return make_cert (&spec, issuer);
}

/* A PEM CRL by `ca` that revokes `revoked` (NULL-terminated). */
char *
make_crl (TestCert *ca, TestCert **revoked)
{
  gnutls_x509_crl_t crl;
  gnutls_datum_t out = { NULL, 0 };
  gint64 now = now_s ();
  char *pem;

  CHECK (gnutls_x509_crl_init (&crl));
  CHECK (gnutls_x509_crl_set_version (crl, 2));
  CHECK (gnutls_x509_crl_set_this_update (crl, now - 60));
  CHECK (gnutls_x509_crl_set_next_update (crl, now + DAY));
  for (gsize i = 0; revoked != NULL && revoked[i] != NULL; i++)
    CHECK (gnutls_x509_crl_set_crt (crl, revoked[i]->crt, now - 60));
  CHECK (gnutls_x509_crl_sign2 (crl, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0));
  CHECK (gnutls_x509_crl_export2 (crl, GNUTLS_X509_FMT_PEM, &out));
  pem = g_strndup ((const char *) out.data, out.size);
  gnutls_free (out.data);
  gnutls_x509_crl_deinit (crl);
  return pem;
}
