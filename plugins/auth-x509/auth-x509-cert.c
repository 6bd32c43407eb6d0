/* auth-x509 — certificate helpers (see auth-x509-cert.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "auth-x509-cert.h"

#include <string.h>

static gboolean
gnutls_fail (int rc, GError **error, const char *format, ...) G_GNUC_PRINTF (3, 4);

/* SLUICE_ERROR_UNAUTHENTICATED: every failure here is about what a peer
 * sent, except loading, whose callers set their own errors. */
static gboolean
gnutls_fail (int rc, GError **error, const char *format, ...)
{
  va_list ap;
  g_autofree char *what = NULL;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED, "%s: %s", what,
               gnutls_strerror (rc));
  return FALSE;
}

/* --- the peer chain --- */

X509Chain *
x509_chain_parse (GPtrArray *der, GError **error)
{
  g_autoptr (X509Chain) chain = NULL;

  if (der == NULL || der->len == 0)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                           "no client certificate");
      return NULL;
    }
  chain = g_new0 (X509Chain, 1);
  chain->certs = g_new0 (gnutls_x509_crt_t, der->len);
  for (guint i = 0; i < der->len; i++)
    {
      gsize size = 0;
      const guint8 *data = g_bytes_get_data (der->pdata[i], &size);
      gnutls_datum_t d = { (unsigned char *) data, (unsigned int) size };
      int rc = gnutls_x509_crt_init (&chain->certs[i]);

      if (rc < 0)
        {
          gnutls_fail (rc, error, "cannot allocate a certificate");
          return NULL;
        }
      chain->n = i + 1;
      rc = gnutls_x509_crt_import (chain->certs[i], &d, GNUTLS_X509_FMT_DER);
      if (rc < 0)
        {
          gnutls_fail (rc, error, "client certificate %u of %u does not parse", i + 1,
                       der->len);
          return NULL;
        }
    }
  return g_steal_pointer (&chain);
}

void
x509_chain_free (X509Chain *chain)
{
  if (chain == NULL)
    return;
  for (guint i = 0; i < chain->n; i++)
    gnutls_x509_crt_deinit (chain->certs[i]);
  g_free (chain->certs);
  g_free (chain);
}

/* --- fields --- */

static char *
get_cn (gnutls_x509_crt_t crt, unsigned int index, int *rc)
{
  size_t size = 0;
  char *buf;

  *rc = gnutls_x509_crt_get_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, index, 0, NULL, &size);
  if (*rc != GNUTLS_E_SHORT_MEMORY_BUFFER)
    return NULL;
  /* One byte more than asked: GnuTLS counts the terminating NUL in some
   * versions and not in others. */
  size += 1;
  buf = g_malloc0 (size);
  *rc = gnutls_x509_crt_get_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, index, 0, buf, &size);
  if (*rc < 0)
    {
      g_free (buf);
      return NULL;
    }
  if (strlen (buf) != size)
    {
      /* An embedded NUL would let `dev1\0.evil` pass as `dev1`. */
      *rc = GNUTLS_E_ASN1_DER_ERROR;
      g_free (buf);
      return NULL;
    }
  return buf;
}

char *
x509_cert_common_name (gnutls_x509_crt_t crt, GError **error)
{
  g_autofree char *cn = NULL;
  g_autofree char *second = NULL;
  int rc;

  cn = get_cn (crt, 0, &rc);
  if (cn == NULL)
    {
      if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE || rc == 0)
        g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                             "the client certificate's subject has no CN");
      else
        gnutls_fail (rc, error, "cannot read the client certificate's subject CN");
      return NULL;
    }
  if (*cn == '\0')
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                           "the client certificate's subject CN is empty");
      return NULL;
    }
  second = get_cn (crt, 1, &rc);
  if (second != NULL || rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
    {
      /* Which CN would be the device? Refuse rather than guess. */
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                           "the client certificate's subject has more than one CN "
                           "(or one that does not parse)");
      return NULL;
    }
  return g_steal_pointer (&cn);
}

gint64
x509_cert_not_before (gnutls_x509_crt_t crt)
{
  time_t t = gnutls_x509_crt_get_activation_time (crt);

  return t == (time_t) -1 ? 0 : (gint64) t;
}

gint64
x509_cert_not_after (gnutls_x509_crt_t crt)
{
  time_t t = gnutls_x509_crt_get_expiration_time (crt);

  return t == (time_t) -1 ? 0 : (gint64) t;
}

gboolean
x509_cert_check_time (gnutls_x509_crt_t crt, gint64 now, GError **error)
{
  gint64 not_before = x509_cert_not_before (crt);
  gint64 not_after = x509_cert_not_after (crt);

  if (not_before > 0 && now < not_before)
    {
      g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (not_before);
      g_autofree char *text = t != NULL ? g_date_time_format_iso8601 (t) : NULL;

      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                   "the client certificate is not valid before %s",
                   text != NULL ? text : "?");
      return FALSE;
    }
  if (not_after > 0 && now > not_after)
    {
      g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (not_after);
      g_autofree char *text = t != NULL ? g_date_time_format_iso8601 (t) : NULL;

      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                   "the client certificate expired at %s", text != NULL ? text : "?");
      return FALSE;
    }
  return TRUE;
}

/* --- thumbprints --- */

char *
x509_thumbprint_sha256 (GBytes *der)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, der);
}

gboolean
x509_thumbprint_matches (GBytes *der, const char *pinned)
{
  g_autoptr (GString) hex = NULL;
  g_autofree char *digest = NULL;

  if (pinned == NULL || der == NULL)
    return FALSE;
  hex = g_string_new (NULL);
  for (const char *p = pinned; *p != '\0'; p++)
    {
      if (*p == ':' || *p == ' ')
        continue;
      if (!g_ascii_isxdigit (*p))
        return FALSE;
      g_string_append_c (hex, g_ascii_tolower (*p));
    }
  if (hex->len == 64)
    digest = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, der);
  else if (hex->len == 40)
    digest = g_compute_checksum_for_bytes (G_CHECKSUM_SHA1, der);
  else
    return FALSE;
  /* Thumbprints are not secrets (they are hashes of what the peer sent),
   * so a plain comparison is fine. */
  return strcmp (digest, hex->str) == 0;
}

/* --- the trust store --- */

struct _X509Trust
{
  gatomicrefcount ref;
  gnutls_x509_trust_list_t list;
  guint n_cas;
  guint n_crls;
};

/* `ca: what is wrong (value 'FILE')`, as config errors read (CONFIG.md);
 * the caller prefixes the file and section. */
static gboolean
load_error (GError **error, const char *key, const char *path, const char *why)
{
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s: %s (value '%s')", key, why,
               path);
  return FALSE;
}

static gboolean
trust_add_cas (X509Trust *trust, const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;
  gsize len = 0;
  gnutls_datum_t d;
  int rc;

  if (!g_file_get_contents (path, &text, &len, &local))
    return load_error (error, "ca", path, local->message);
  if (strstr (text, "-----BEGIN") == NULL)
    return load_error (error, "ca", path, "no PEM certificate in it");
  d.data = (unsigned char *) text;
  d.size = (unsigned int) len;
  rc = gnutls_x509_trust_list_add_trust_mem (trust->list, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
  if (rc < 0)
    return load_error (error, "ca", path,
                       rc == GNUTLS_E_NO_CERTIFICATE_FOUND ? "no PEM certificate in it"
                                                            : gnutls_strerror (rc));
  if (rc == 0)
    return load_error (error, "ca", path, "no PEM certificate in it");
  trust->n_cas += (guint) rc;
  return TRUE;
}

static gboolean
trust_add_crls (X509Trust *trust, const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;
  gnutls_x509_crl_t *crls = NULL;
  unsigned int n = 0;
  gboolean is_pem;
  gsize len = 0;
  gnutls_datum_t d;
  int rc;

  if (!g_file_get_contents (path, &text, &len, &local))
    return load_error (error, "crl", path, local->message);
  is_pem = g_strstr_len (text, len, "-----BEGIN") != NULL;
  if (is_pem && g_strstr_len (text, len, "-----BEGIN X509 CRL-----") == NULL)
    return load_error (error, "crl", path, "no PEM CRL in it");
  d.data = (unsigned char *) text;
  d.size = (unsigned int) len;
  rc = gnutls_x509_crl_list_import2 (&crls, &n, &d,
                                     is_pem ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER, 0);
  if (rc < 0)
    return load_error (error, "crl", path, gnutls_strerror (rc));
  if (n == 0)
    {
      gnutls_free (crls);
      return load_error (error, "crl", path, "no CRL in it");
    }
  /* No GNUTLS_TL_VERIFY_CRL: the file is the operator's, as trusted as the
   * CA files, and verifying would drop the CRLs of intermediate CAs the
   * peers send but `ca` does not hold. The list owns the CRLs now. */
  rc = gnutls_x509_trust_list_add_crls (trust->list, crls, n, 0, 0);
  gnutls_free (crls);
  if (rc < 0)
    return load_error (error, "crl", path, gnutls_strerror (rc));
  trust->n_crls += n;
  return TRUE;
}

X509Trust *
x509_trust_load (const char *const *ca_files, const char *const *crl_files, GError **error)
{
  g_autoptr (X509Trust) trust = g_new0 (X509Trust, 1);
  int rc;

  g_atomic_ref_count_init (&trust->ref);
  rc = gnutls_x509_trust_list_init (&trust->list, 0);
  if (rc < 0)
    {
      trust->list = NULL;
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "cannot allocate a trust list: %s",
                   gnutls_strerror (rc));
      return NULL;
    }
  for (gsize i = 0; ca_files != NULL && ca_files[i] != NULL; i++)
    if (!trust_add_cas (trust, ca_files[i], error))
      return NULL;
  for (gsize i = 0; crl_files != NULL && crl_files[i] != NULL; i++)
    if (!trust_add_crls (trust, crl_files[i], error))
      return NULL;
  return g_steal_pointer (&trust);
}

X509Trust *
x509_trust_ref (X509Trust *trust)
{
  g_atomic_ref_count_inc (&trust->ref);
  return trust;
}

void
x509_trust_unref (X509Trust *trust)
{
  if (trust == NULL || !g_atomic_ref_count_dec (&trust->ref))
    return;
  if (trust->list != NULL)
    gnutls_x509_trust_list_deinit (trust->list, 1);
  g_free (trust);
}

guint
x509_trust_get_n_cas (X509Trust *trust)
{
  return trust->n_cas;
}

guint
x509_trust_get_n_crls (X509Trust *trust)
{
  return trust->n_crls;
}

gboolean
x509_trust_verify (X509Trust *trust, const X509Chain *chain, GError **error)
{
  gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
                                    (unsigned char *) GNUTLS_KP_TLS_WWW_CLIENT, 0 };
  gnutls_datum_t out = { NULL, 0 };
  unsigned int status = 0;
  int rc;

  if (trust->n_cas == 0)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                           "no CA is configured to verify the client certificate with "
                           "(set ca)");
      return FALSE;
    }
  rc = gnutls_x509_trust_list_verify_crt2 (trust->list, chain->certs, chain->n, &purpose, 1, 0,
                                           &status, NULL);
  if (rc < 0)
    return gnutls_fail (rc, error, "cannot verify the client certificate chain");
  if (status == 0)
    return TRUE;
  if (gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509, &out, 0) >= 0)
    {
      g_autofree char *why = g_strstrip (g_strndup ((const char *) out.data, out.size));

      gnutls_free (out.data);
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                   "the client certificate chain does not verify: %s", why);
    }
  else
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                 "the client certificate chain does not verify (status 0x%x)", status);
  return FALSE;
}
