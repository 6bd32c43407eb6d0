/* auth-x509 — `[auth.NAME] policy-map`: certificate subject CNs that stand
 * for a shared access policy (a service or application, not a device).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

G_BEGIN_DECLS

typedef struct
{
  char *name;          /* the policy, `[policy.NAME]` */
  guint rights;
  char **streams;      /* NULL: every stream */
} X509Policy;

/* CN -> policy; immutable once loaded, refcounted. */
typedef struct _X509PolicyMap X509PolicyMap;

/* Parse `CN=>policy` pairs and read each named `[policy.NAME]` section's
 * `rights` and `streams` from `config` (the keys auth-key reads; its
 * `primary-key` / `secondary-key` are not used here). An unknown policy, a
 * CN mapped twice or a pair without `=>` is an error. (transfer full) */
X509PolicyMap *x509_policy_map_load (const char *const *pairs, SluiceConfig *config,
                                     GError **error);
X509PolicyMap *x509_policy_map_ref (X509PolicyMap *map);
void x509_policy_map_unref (X509PolicyMap *map);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509PolicyMap, x509_policy_map_unref)
guint x509_policy_map_size (X509PolicyMap *map);
/* (transfer none) NULL: `cn` is not mapped. */
const X509Policy *x509_policy_map_lookup (X509PolicyMap *map, const char *cn);
/* TRUE when `policy` has the same rights and streams in both maps and every
 * CN that `old` maps to it still maps to it in `fresh`. */
gboolean x509_policy_map_same (X509PolicyMap *old, X509PolicyMap *fresh, const char *policy);

G_END_DECLS
