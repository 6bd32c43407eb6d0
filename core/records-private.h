/* Sluice core — record batch internals shared with the unit tests.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

G_BEGIN_DECLS

/* The portable slicing-by-8 CRC-32C, whatever the CPU supports; the tests
 * compare it with the dispatching sluice_crc32c(). Same chaining convention
 * as sluice_crc32c(): pass 0 first, then the previous result. */
SLUICE_INTERNAL guint32 sluice_crc32c_table (guint32 crc, const void *data, gsize len);

/* Whether sluice_crc32c() runs on the SSE4.2 crc32 instruction. */
SLUICE_INTERNAL gboolean sluice_crc32c_have_hw (void);

/* The CRC register `raw` (no init, no final xor) after `zeros` more zero
 * bytes, in O(log zeros). Lets a CRC be updated for a few changed bytes
 * without reading the whole message again: for equal-length messages,
 * crc(A) ^ crc(B) = shift(crc(A ^ B over the changed span) ^ crc(0s), tail). */
SLUICE_INTERNAL guint32 sluice_crc32c_shift (guint32 raw, guint64 zeros);

/* Header present, magic 2, length field equal to `len`, a codec that
 * exists: what sluice_batch_validate() and the reader both check first. */
G_GNUC_INTERNAL gboolean sluice_batch_check_frame (const guint8 *data, gsize len,
                                                   GError **error);

G_END_DECLS
