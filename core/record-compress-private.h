/* Sluice core — the record batch codecs (gzip, snappy, lz4, zstd).
 *
 * Kafka producers compress the records section of a batch (everything after
 * the 61-byte header); Sluice stores it as it came and decompresses only to
 * read records. Output is always bounded: a payload that would expand past
 * the bound is an error (SLUICE_ERROR_TOO_LARGE), never an allocation of
 * that size, so a small "decompression bomb" cannot exhaust memory.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

G_BEGIN_DECLS

/* The default bound on one batch's decompressed records: far above any
 * stream's max-message (1 MiB by default) times the batching clients do,
 * far below what would hurt a host. */
#define SLUICE_RECORDS_MAX_DECOMPRESSED (64u * 1024 * 1024)

/* Decompress `len` bytes of `codec` (not NONE) into at most `max_out`
 * bytes. Snappy accepts both the raw format and the xerial framing Kafka's
 * Java client writes; lz4 is the LZ4 frame format; gzip accepts
 * concatenated members. Errors: SLUICE_ERROR_INVALID (corrupt data),
 * SLUICE_ERROR_TOO_LARGE (over `max_out`), SLUICE_ERROR_UNSUPPORTED.
 * (transfer full) */
SLUICE_INTERNAL GBytes *sluice_records_decompress (SluiceCompression codec,
                                                   const guint8 *data, gsize len,
                                                   gsize max_out, GError **error);

/* Compress `len` bytes with `codec` (tests and tools; producers compress on
 * their side). Snappy is written with the xerial framing. (transfer full) */
SLUICE_INTERNAL GBytes *sluice_records_compress (SluiceCompression codec,
                                                 const guint8 *data, gsize len,
                                                 GError **error);

/* Build a whole v2 batch around compressed records: copy `batch`'s header,
 * set the codec bits, replace the records by their compressed form, fix the
 * length and the CRC. For tests that need compressed batches with known
 * content. (transfer full) */
SLUICE_INTERNAL GBytes *sluice_batch_compress (GBytes *batch, SluiceCompression codec,
                                               GError **error);

/* Decode every record of a whole batch (decompressing within
 * `max_decompressed`): the structure check sluice_batch_validate() runs on
 * compressed batches. `n_records` may be NULL. */
G_GNUC_INTERNAL gboolean sluice_batch_check_records (const guint8 *data, gsize len,
                                                     gsize max_decompressed,
                                                     guint *n_records, GError **error);

G_END_DECLS
