/* auth-key — shared access policies (`[policy.NAME]`).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

G_BEGIN_DECLS

/* One policy as configured. Immutable once in a table, so workers can read
 * it without a lock while the main thread builds the next table. */
typedef struct
{
  char *name;
  char *primary_key;     /* base64 text as written (also the Event Hubs key) */
  char *secondary_key;   /* NULL when not configured */
  guint rights;
  char **streams;        /* NULL: every stream */
} AuthKeyPolicy;

/* Parse every `[policy.*]` section of `config` into a table name ->
 * AuthKeyPolicy*. Errors read `FILE: [policy.x] key: what`. The values of
 * key options are never put in an error. (transfer full) */
GHashTable *auth_key_policies_load (SluiceConfig *config, GError **error);

/* Ids (`policy/NAME`) of policies of `old` that are gone from `new_table`
 * or whose keys, rights or streams differ, sorted. (transfer full) */
char **auth_key_policies_diff (GHashTable *old, GHashTable *new_table);

/* TRUE when `text` is canonical base64 of exactly 32 bytes. */
gboolean auth_key_is_key_text (const char *text);

/* Equal strings, compared without an early exit. */
gboolean auth_key_secret_equal (const char *a, const char *b);

G_END_DECLS
