/* Sluice plugin SDK — records and record batches.
 *
 * The unit of storage and transfer is a record batch in Kafka's v2 layout
 * (magic 2, CRC-32C over attributes..end, varint records with key, value,
 * headers, timestamp and offset deltas). Kafka Produce / Fetch pass batches
 * through untouched; every other transport maps one message to one record
 * (key = partition key, headers = properties) with the builder below.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>

G_BEGIN_DECLS

/* Byte offsets inside a v2 batch header. */
#define SLUICE_BATCH_OFF_BASE_OFFSET 0
#define SLUICE_BATCH_OFF_LENGTH 8
#define SLUICE_BATCH_OFF_LEADER_EPOCH 12
#define SLUICE_BATCH_OFF_MAGIC 16
#define SLUICE_BATCH_OFF_CRC 17
#define SLUICE_BATCH_OFF_ATTRIBUTES 21
#define SLUICE_BATCH_OFF_LAST_OFFSET_DELTA 23
#define SLUICE_BATCH_OFF_BASE_TIMESTAMP 27
#define SLUICE_BATCH_OFF_MAX_TIMESTAMP 35
#define SLUICE_BATCH_OFF_PRODUCER_ID 43
#define SLUICE_BATCH_OFF_PRODUCER_EPOCH 51
#define SLUICE_BATCH_OFF_BASE_SEQUENCE 53
#define SLUICE_BATCH_OFF_RECORD_COUNT 57
#define SLUICE_BATCH_HEADER_SIZE 61

#define SLUICE_BATCH_ATTR_COMPRESSION_MASK 0x07
#define SLUICE_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define SLUICE_BATCH_ATTR_TRANSACTIONAL 0x10
#define SLUICE_BATCH_ATTR_CONTROL 0x20

typedef enum {
  SLUICE_COMPRESSION_NONE = 0,
  SLUICE_COMPRESSION_GZIP = 1,
  SLUICE_COMPRESSION_SNAPPY = 2,
  SLUICE_COMPRESSION_LZ4 = 3,
  SLUICE_COMPRESSION_ZSTD = 4,
} SluiceCompression;

/* A stored batch and its metadata, as the storage interface and readers see
 * it. `data` holds the whole v2 batch (base offset first). */
typedef struct {
  gint64 base_offset;
  gint32 record_count;     /* last offset delta + 1 */
  gint64 max_timestamp;    /* ms since the epoch (the append time once stored) */
  GBytes *data;            /* owned by the struct */
} SluiceBatch;

SLUICE_API SluiceBatch *sluice_batch_new (gint64 base_offset, gint32 record_count,
                                          gint64 max_timestamp, GBytes *data /* transfer none */);
SLUICE_API void sluice_batch_free (SluiceBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceBatch, sluice_batch_free)

/* Structural check of one v2 batch: sizes, magic, CRC-32C. On success fills
 * the metadata (base offset as found in the bytes). */
SLUICE_API gboolean sluice_batch_validate (const guint8 *data, gsize len,
                                           gint32 *record_count, gint64 *max_timestamp,
                                           GError **error);

/* Stamp a batch as the partition writer does: base offset, LogAppendTime
 * attribute, max timestamp = append_time, CRC recomputed. `data` is mutable. */
SLUICE_API void sluice_batch_stamp (guint8 *data, gsize len, gint64 base_offset,
                                    gint64 append_time_ms);

/* --- building batches (one record per message for non-Kafka transports) --- */
typedef struct _SluiceBatchBuilder SluiceBatchBuilder;

SLUICE_API SluiceBatchBuilder *sluice_batch_builder_new (gint64 base_timestamp_ms);
/* Add one record. key / value may be NULL (null key / value); `headers` is a
 * NULL-terminated array alternating name, value (both strings) or NULL. */
SLUICE_API void sluice_batch_builder_add (SluiceBatchBuilder *builder,
                                          const guint8 *key, gssize key_len,
                                          const guint8 *value, gssize value_len,
                                          const char *const *headers,
                                          gint64 timestamp_ms);
/* Add a header with a binary value to the last record added. */
SLUICE_API void sluice_batch_builder_add_header (SluiceBatchBuilder *builder,
                                                 const char *name,
                                                 const guint8 *value, gssize value_len);
SLUICE_API guint sluice_batch_builder_count (SluiceBatchBuilder *builder);
/* Finish (base offset 0, CRC set) and free the builder. (transfer full) */
SLUICE_API GBytes *sluice_batch_builder_finish (SluiceBatchBuilder *builder);
SLUICE_API void sluice_batch_builder_free (SluiceBatchBuilder *builder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceBatchBuilder, sluice_batch_builder_free)

/* --- reading records out of a batch --- */
typedef struct {
  const guint8 *name;
  gsize name_len;
  const guint8 *value;     /* NULL for a null header value */
  gsize value_len;
} SluiceHeaderView;

typedef struct {
  gint64 offset;
  gint64 timestamp;        /* ms; the append time for LogAppendTime batches */
  const guint8 *key;       /* NULL for a null key */
  gsize key_len;
  const guint8 *value;     /* NULL for a null value */
  gsize value_len;
  guint n_headers;
  const SluiceHeaderView *headers;  /* valid until the next call */
} SluiceRecordView;

typedef struct _SluiceBatchReader SluiceBatchReader;

/* Decompresses when needed (codecs the host was built with). (transfer full) */
SLUICE_API SluiceBatchReader *sluice_batch_reader_new (GBytes *batch /* transfer none */,
                                                       GError **error);
/* TRUE and fills `record` (borrowed views into the batch) while records
 * remain; FALSE at the end or on error (then `error` is set). */
SLUICE_API gboolean sluice_batch_reader_next (SluiceBatchReader *reader,
                                              SluiceRecordView *record,
                                              GError **error);
SLUICE_API void sluice_batch_reader_free (SluiceBatchReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceBatchReader, sluice_batch_reader_free)

/* --- hashing --- */
/* CRC-32C (Castagnoli), hardware-accelerated where the CPU has it. */
SLUICE_API guint32 sluice_crc32c (guint32 crc, const void *data, gsize len);
/* Kafka's murmur2 (the Java client's default partitioner). */
SLUICE_API gint32 sluice_murmur2 (const void *data, gsize len);
/* Kafka's partition for a key: toPositive(murmur2(key)) % partitions. */
SLUICE_API gint32 sluice_partition_for_key (const void *key, gsize len, gint32 partitions);

G_END_DECLS
