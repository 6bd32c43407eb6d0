/* The storage contract suite — what every backend must do, run unchanged
 * against each storage plugin. The plugin is chosen by name
 * ($SLUICE_STORAGE_PLUGIN, else the program's built-in default) and loaded
 * through the core's plugin loader; its `[storage]` options come from
 * $SLUICE_STORAGE_OPTIONS (`key=value;key=value`, else the built-in
 * default) through the core's config parser, so a backend can make its
 * storage units small enough for the retention tests.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "config-private.h"
#include "plugin-loader-private.h"

G_BEGIN_DECLS

typedef struct {
  char *dir;
  const SluiceStorageVTable *vt;
  gpointer self;
} Store;

/* The loaded backend (set up once by main). */
const SluiceStorageVTable *contract_vtable (void);

void store_setup (Store *s, gconstpointer data);
void store_teardown (Store *s, gconstpointer data);
void store_open (Store *s);
void store_close (Store *s);
void store_reopen (Store *s);

/* The time every test batch is stamped relative to (ms since the epoch). */
#define CONTRACT_T0 G_GINT64_CONSTANT (1700000000000)

/* A stamped batch of `n` records at `base` whose values are a pattern of
 * their offsets (so any batch read back can be checked on its own). */
SluiceBatch *contract_batch (gint64 base, guint n, gint64 append_time);
/* The batch read back is whole, valid, and holds the pattern. */
void contract_check_batch (const SluiceBatch *b);

/* Create `log` (if needed) and append `count` batches of `per` records at
 * its next offset, stamped CONTRACT_T0 + 1000 * base; sync. Returns the
 * appended batches (transfer full). */
GPtrArray *contract_append (Store *s, const SluiceLogId *log, guint count, guint per);
/* log_read into a fresh array; on error the array is empty. */
GPtrArray *contract_read (Store *s, const SluiceLogId *log, gint64 from, gsize max_bytes,
                          GError **error);
void contract_bounds (Store *s, const SluiceLogId *log, gint64 *first, gint64 *next);
gboolean contract_same_bytes (const SluiceBatch *a, const SluiceBatch *b);

void contract_add_log_tests (void);
void contract_add_trim_tests (void);
void contract_add_kv_tests (void);
void contract_add_blob_tests (void);
void contract_add_concurrency_tests (void);

#define CONTRACT_ADD(path, fn) \
  g_test_add ("/storage/contract" path, Store, NULL, store_setup, fn, store_teardown)

G_END_DECLS
