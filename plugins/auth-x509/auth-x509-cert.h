/* auth-x509 — certificate helpers: parsing the peer chain, the subject CN,
 * thumbprints, validity, and the trust store of the configured CAs and CRLs.
 * Pure functions over GnuTLS objects (no I/O except loading the trust
 * store), so the unit tests drive them directly.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

G_BEGIN_DECLS

/* The peer chain as GnuTLS certificates, leaf first. */
typedef struct
{
  gnutls_x509_crt_t *certs;
  guint n;
} X509Chain;

/* Parse `der` (GBytes* DER, leaf first, as in SluiceCredentials.peer_certs).
 * (transfer full) */
X509Chain *x509_chain_parse (GPtrArray *der, GError **error);
void x509_chain_free (X509Chain *chain);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509Chain, x509_chain_free)

/* The one subject common name, or NULL with the reason (none, more than
 * one, an embedded NUL). (transfer full) */
char *x509_cert_common_name (gnutls_x509_crt_t crt, GError **error);

/* Unix seconds; 0 when the certificate gives no usable date (GnuTLS
 * answers -1 for 99991231235959Z, "no well-defined expiration"). */
gint64 x509_cert_not_before (gnutls_x509_crt_t crt);
gint64 x509_cert_not_after (gnutls_x509_crt_t crt);

/* TRUE when `now` lies within the certificate's validity; else FALSE
 * with the reason. */
gboolean x509_cert_check_time (gnutls_x509_crt_t crt, gint64 now, GError **error);

/* TRUE when the hex thumbprint `pinned` (case-insensitive; `:` and
 * spaces ignored) is the SHA-256 of `der`, or its SHA-1 when `pinned` has
 * 40 hex digits (older IoT Hub tooling pins SHA-1). */
gboolean x509_thumbprint_matches (GBytes *der, const char *pinned);

/* Lower-case hex SHA-256 of `der`. (transfer full) */
char *x509_thumbprint_sha256 (GBytes *der);

/* The CAs and CRLs of `[auth.NAME] ca` / `crl`: immutable once loaded,
 * refcounted, shared by every worker. */
typedef struct _X509Trust X509Trust;

/* Load every certificate of the PEM bundles `ca_files` as trust anchors and
 * every CRL of `crl_files` (PEM or DER). The CRL files are trusted as the
 * CA files are (they come from the operator), so a CRL of an intermediate
 * CA that is not itself in `ca` is honoured too. Errors name the file.
 * (transfer full) */
X509Trust *x509_trust_load (const char *const *ca_files, const char *const *crl_files,
                            GError **error);
X509Trust *x509_trust_ref (X509Trust *trust);
void x509_trust_unref (X509Trust *trust);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509Trust, x509_trust_unref)
guint x509_trust_get_n_cas (X509Trust *trust);
guint x509_trust_get_n_crls (X509Trust *trust);

/* Verify `chain` (leaf first; intermediates as the peer sent them) up to one
 * of the trust anchors at the current time, with revocation by the CRLs and
 * the TLS client purpose where the leaf names purposes. FALSE: the error
 * says why in GnuTLS's words (expired, not trusted, revoked, ...). */
gboolean x509_trust_verify (X509Trust *trust, const X509Chain *chain, GError **error);

G_END_DECLS
