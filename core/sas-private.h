/* Sluice core — SAS token checks for core callers (sluiced, sluicectl, tests).
 *
 * The implementations are the SDK's sluice_sas_token_verify() and
 * sluice_sas_scope_covers() (sluice-auth.h), which auth plugins use; this
 * header keeps the core-side name.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

G_BEGIN_DECLS

/* Same as sluice_sas_token_verify(). */
SLUICE_INTERNAL gboolean sluice_sas_verify (const SluiceSasToken *t, const char *key,
                                            gboolean key_is_base64, gint64 now,
                                            GError **error);

G_END_DECLS
