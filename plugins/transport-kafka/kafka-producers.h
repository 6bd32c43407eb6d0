/* transport-kafka — idempotent producer state.
 *
 * InitProducerId hands out producer ids; Produce batches of an idempotent
 * producer carry (producer id, epoch, base sequence) in the batch header, and
 * per (stream, partition, producer) we keep the last 5 batches (Kafka's
 * max.in.flight limit for idempotence) so a retried batch is answered with
 * its original offset instead of being appended twice.
 *
 * Flow in the transport, per batch of Produce:
 *   kafka_producers_check()  -> APPEND: sluice_host_append(), then
 *        kafka_producers_complete() with the offset (or _abort() on failure);
 *                            -> DUPLICATE: answer success with the old offset;
 *                            -> IN_FLIGHT: the same batch is being appended
 *        (answer DUPLICATE_SEQUENCE_NUMBER, which clients take as success,
 *        or wait for the first append and answer its offset);
 *                            -> REJECT: answer `error`.
 *
 * Persistence (DESIGN.md: producer state survives restart):
 *  - ids are reserved in blocks: when a block is used up the `reserve`
 *    callback gets the new ceiling; the transport stores it in its KV (key
 *    `producers/id-ceiling`, decimal) and answers InitProducerId after that
 *    commit is done, so no id is ever handed out twice;
 *  - kafka_producers_snapshot() serialises the sequence state (the transport
 *    stores it with sluice_host_kv_commit under `producers/snapshot`, e.g.
 *    every few seconds and at stop); at start _restore() it, then feed each
 *    partition's batches from kafka_producers_resume_offset() to the end
 *    through kafka_producers_observe() to catch up with appends made after
 *    the snapshot.
 *
 * Thread-safe (one internal mutex): Produce arrives on every I/O worker.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  KAFKA_PRODUCER_ERROR_NONE = 0,
  KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
  KAFKA_PRODUCER_ERROR_DUPLICATE_SEQUENCE_NUMBER = 46,
  KAFKA_PRODUCER_ERROR_INVALID_PRODUCER_EPOCH = 47,
  KAFKA_PRODUCER_ERROR_UNKNOWN_PRODUCER_ID = 59,
} KafkaProducerError;

/* How many batches per producer and partition are remembered. */
#define KAFKA_PRODUCER_WINDOW 5
/* Ids reserved per `reserve` call. */
#define KAFKA_PRODUCER_ID_BLOCK 1000

#define KAFKA_PRODUCERS_ERROR (kafka_producers_error_quark ())
GQuark kafka_producers_error_quark (void);
typedef enum {
  KAFKA_PRODUCERS_ERROR_CORRUPT,       /* a snapshot that does not parse */
} KafkaProducersErrorCode;

typedef struct _KafkaProducers KafkaProducers;

/* A new block of ids was taken: persist `ceiling` (every id below it may have
 * been handed out) before answering the InitProducerId that caused it.
 * Called inside kafka_producers_init_id(), with no lock held. */
typedef void (*KafkaProducerReserveFunc) (gint64 ceiling, gpointer user_data);

/* `ceiling`: the stored value (0 at first start); ids start there. */
KafkaProducers *kafka_producers_new (gint64 ceiling, KafkaProducerReserveFunc reserve,
                                     gpointer user_data);
void kafka_producers_free (KafkaProducers *producers);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KafkaProducers, kafka_producers_free)

/* InitProducerId without a transactional id: a fresh producer id, epoch 0
 * (also for a producer that passes its old id and epoch to recover, as
 * Kafka does for idempotent producers). Returns a KafkaProducerError. */
gint16 kafka_producers_init_id (KafkaProducers *producers, gint64 *producer_id,
                                gint16 *epoch);

/* The idempotence fields of a batch (from its v2 header). */
typedef struct {
  gint64 producer_id;       /* -1: not idempotent */
  gint16 epoch;
  gint32 base_sequence;
  gint32 record_count;      /* last offset delta + 1 */
} KafkaProducerBatch;

/* Read them from a v2 batch header; FALSE when too short. */
gboolean kafka_producer_batch_from_header (const guint8 *data, gsize len,
                                          KafkaProducerBatch *batch);

typedef enum {
  KAFKA_SEQ_APPEND,
  KAFKA_SEQ_DUPLICATE,
  KAFKA_SEQ_IN_FLIGHT,
  KAFKA_SEQ_REJECT,
} KafkaSeqVerdict;

/* Check one batch and, for APPEND, remember it as in flight. DUPLICATE sets
 * `*base_offset` and `*append_time` of the original; REJECT sets `*error`
 * (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
 * UNKNOWN_PRODUCER_ID). Batches without a producer id always APPEND. */
KafkaSeqVerdict kafka_producers_check (KafkaProducers *producers, const char *stream,
                                       gint32 partition, const KafkaProducerBatch *batch,
                                       gint64 *base_offset, gint64 *append_time,
                                       gint16 *error);
/* The append of a checked batch succeeded at `base_offset`. */
void kafka_producers_complete (KafkaProducers *producers, const char *stream,
                               gint32 partition, const KafkaProducerBatch *batch,
                               gint64 base_offset, gint64 append_time);
/* The append failed: forget the in-flight batch so a retry is accepted. */
void kafka_producers_abort (KafkaProducers *producers, const char *stream, gint32 partition,
                            const KafkaProducerBatch *batch);

/* Rebuild: a stored batch (as read back, its base offset and append time in
 * its header) seen in the log. Older or already known batches are ignored. */
void kafka_producers_observe (KafkaProducers *producers, const char *stream,
                              gint32 partition, const guint8 *data, gsize len);
/* Where the log tail scan of a partition should start: the end of the last
 * batch the state knows there, or -1 when it knows nothing of it (the
 * transport then scans a bounded tail). */
gint64 kafka_producers_resume_offset (KafkaProducers *producers, const char *stream,
                                      gint32 partition);

/* The stream was deleted. */
void kafka_producers_forget_stream (KafkaProducers *producers, const char *stream);
/* Drop producers whose last batch is older than `before_ms` (append time). */
void kafka_producers_expire (KafkaProducers *producers, gint64 before_ms);

/* Completed state only (in-flight batches are not in it). (transfer full) */
GBytes *kafka_producers_snapshot (KafkaProducers *producers);
/* Replace the state with a snapshot's; the id ceiling only grows. */
gboolean kafka_producers_restore (KafkaProducers *producers, GBytes *snapshot,
                                  GError **error);

G_END_DECLS
