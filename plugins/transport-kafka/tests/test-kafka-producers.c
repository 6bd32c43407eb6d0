/* Unit tests: idempotent producer state: id blocks, sequence checks
 * (append, duplicate with the original offset, in flight, out of order),
 * epochs, snapshot / restore, and rebuilding from the log tail.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-producers.h"

#include <sluice/sluice.h>
#include <string.h>

typedef struct {
  guint calls;
  gint64 ceiling;
} Reserve;

static void
on_reserve (gint64 ceiling, gpointer data)
{
  Reserve *r = data;

  r->calls++;
  r->ceiling = ceiling;
}

static KafkaProducerBatch
pb (gint64 pid, gint16 epoch, gint32 seq, gint32 count)
{
  KafkaProducerBatch b = { pid, epoch, seq, count };
  return b;
}

static KafkaSeqVerdict
check (KafkaProducers *p, const char *stream, gint32 partition, KafkaProducerBatch b,
       gint64 *offset, gint16 *error)
{
  gint64 time = 0, off = -7;
  gint16 err = -7;
  KafkaSeqVerdict v = kafka_producers_check (p, stream, partition, &b, &off, &time, &err);

  if (offset)
    *offset = off;
  if (error)
    *error = err;
  return v;
}

static void
test_ids (void)
{
  Reserve r = { 0 };
  g_autoptr (KafkaProducers) p = kafka_producers_new (0, on_reserve, &r);
  g_autoptr (KafkaProducers) q = NULL;
  gint64 id = -1;
  gint16 epoch = -1;

  g_assert_cmpint (kafka_producers_init_id (p, &id, &epoch), ==, 0);
  g_assert_cmpint (id, ==, 0);
  g_assert_cmpint (epoch, ==, 0);
  g_assert_cmpuint (r.calls, ==, 1);
  g_assert_cmpint (r.ceiling, ==, KAFKA_PRODUCER_ID_BLOCK);
  for (int i = 1; i < KAFKA_PRODUCER_ID_BLOCK; i++)
    {
      kafka_producers_init_id (p, &id, &epoch);
      g_assert_cmpint (id, ==, i);
    }
  g_assert_cmpuint (r.calls, ==, 1);
  kafka_producers_init_id (p, &id, &epoch);
  g_assert_cmpint (id, ==, KAFKA_PRODUCER_ID_BLOCK);
  g_assert_cmpuint (r.calls, ==, 2);
  g_assert_cmpint (r.ceiling, ==, 2 * KAFKA_PRODUCER_ID_BLOCK);

  /* After a restart from the stored ceiling no id is handed out twice. */
  q = kafka_producers_new (r.ceiling, on_reserve, &r);
  kafka_producers_init_id (q, &id, &epoch);
  g_assert_cmpint (id, ==, 2 * KAFKA_PRODUCER_ID_BLOCK);
  g_assert_cmpint (r.ceiling, ==, 3 * KAFKA_PRODUCER_ID_BLOCK);
}

static void
test_sequences (void)
{
  g_autoptr (KafkaProducers) p = kafka_producers_new (0, NULL, NULL);
  gint64 pid, off;
  gint16 epoch, err;
  KafkaProducerBatch b;

  kafka_producers_init_id (p, &pid, &epoch);

  /* Not idempotent: always appended, never tracked. */
  g_assert_cmpint (check (p, "s", 0, pb (-1, -1, -1, 3), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  /* An id we never handed out. */
  g_assert_cmpint (check (p, "s", 0, pb (pid + 50, 0, 0, 1), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_UNKNOWN_PRODUCER_ID);
  /* The first batch on a partition starts at 0. */
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 4, 1), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER);

  b = pb (pid, 0, 0, 3);
  g_assert_cmpint (check (p, "s", 0, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);
  /* Its retry while the append runs. */
  g_assert_cmpint (check (p, "s", 0, b, NULL, NULL), ==, KAFKA_SEQ_IN_FLIGHT);
  kafka_producers_complete (p, "s", 0, &b, 100, 1700000000000);
  g_assert_cmpint (check (p, "s", 0, b, &off, NULL), ==, KAFKA_SEQ_DUPLICATE);
  g_assert_cmpint (off, ==, 100);

  /* Pipelined: the next two checked before either completes. */
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 3, 2), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 5, 1), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  b = pb (pid, 0, 3, 2);
  kafka_producers_complete (p, "s", 0, &b, 103, 1700000000001);
  b = pb (pid, 0, 5, 1);
  kafka_producers_complete (p, "s", 0, &b, 105, 1700000000002);
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 3, 2), &off, NULL), ==, KAFKA_SEQ_DUPLICATE);
  g_assert_cmpint (off, ==, 103);

  /* A gap, an overlap that is not a retry: out of order. */
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 9, 1), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 4, 2), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER);

  /* Partitions are separate. */
  g_assert_cmpint (check (p, "s", 1, pb (pid, 0, 0, 1), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  g_assert_cmpint (check (p, "t", 0, pb (pid, 0, 0, 1), NULL, NULL), ==, KAFKA_SEQ_APPEND);

  /* Only the last 5 batches are remembered. */
  for (gint32 seq = 6; seq < 11; seq++)
    {
      b = pb (pid, 0, seq, 1);
      g_assert_cmpint (check (p, "s", 0, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);
      kafka_producers_complete (p, "s", 0, &b, 100 + seq, 1700000000003);
    }
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 6, 1), &off, NULL), ==, KAFKA_SEQ_DUPLICATE);
  g_assert_cmpint (off, ==, 106);
  g_assert_cmpint (check (p, "s", 0, pb (pid, 0, 5, 1), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  g_assert_cmpint (kafka_producers_resume_offset (p, "s", 0), ==, 111);
  g_assert_cmpint (kafka_producers_resume_offset (p, "s", 7), ==, -1);
}

static void
test_epochs_and_abort (void)
{
  g_autoptr (KafkaProducers) p = kafka_producers_new (0, NULL, NULL);
  gint64 pid;
  gint16 epoch, err;
  KafkaProducerBatch b = { 0 };

  kafka_producers_init_id (p, &pid, &epoch);
  b = pb (pid, 3, 0, 2);
  g_assert_cmpint (check (p, "s", 0, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);
  kafka_producers_complete (p, "s", 0, &b, 0, 1);
  g_assert_cmpint (check (p, "s", 0, pb (pid, 2, 2, 1), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_INVALID_PRODUCER_EPOCH);
  g_assert_cmpint (check (p, "s", 0, pb (pid, 4, 2, 1), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  /* A new epoch starts over at 0 and fences the old one. */
  g_assert_cmpint (check (p, "s", 0, pb (pid, 4, 0, 1), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  g_assert_cmpint (check (p, "s", 0, pb (pid, 3, 2, 1), NULL, &err), ==, KAFKA_SEQ_REJECT);
  g_assert_cmpint (err, ==, KAFKA_PRODUCER_ERROR_INVALID_PRODUCER_EPOCH);

  /* A failed append is forgotten: its retry is accepted. */
  b = pb (pid, 4, 1, 5);
  g_assert_cmpint (check (p, "s", 0, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);
  kafka_producers_abort (p, "s", 0, &b);
  g_assert_cmpint (check (p, "s", 0, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);
}

/* A v2 batch as stored: producer fields, base offset, append time. */
static GBytes *
stored_batch (gint64 base_offset, gint64 pid, gint16 epoch, gint32 seq, guint records,
              gint64 append_time)
{
  g_autoptr (SluiceBatchBuilder) builder = sluice_batch_builder_new (append_time - 5);
  g_autoptr (GBytes) plain = NULL;
  gsize len;
  guint8 *d;

  for (guint i = 0; i < records; i++)
    sluice_batch_builder_add (builder, NULL, 0, (const guint8 *) "v", 1, NULL,
                              append_time - 5);
  plain = sluice_batch_builder_finish (g_steal_pointer (&builder));
  d = g_bytes_unref_to_data (g_steal_pointer (&plain), &len);
  for (int i = 0; i < 8; i++)
    d[SLUICE_BATCH_OFF_PRODUCER_ID + i] = (guint8) ((guint64) pid >> (56 - 8 * i));
  d[SLUICE_BATCH_OFF_PRODUCER_EPOCH] = (guint8) ((guint16) epoch >> 8);
  d[SLUICE_BATCH_OFF_PRODUCER_EPOCH + 1] = (guint8) epoch;
  for (int i = 0; i < 4; i++)
    d[SLUICE_BATCH_OFF_BASE_SEQUENCE + i] = (guint8) ((guint32) seq >> (24 - 8 * i));
  sluice_batch_stamp (d, len, base_offset, append_time);
  return g_bytes_new_take (d, len);
}

static void
observe (KafkaProducers *p, const char *stream, gint32 partition, GBytes *batch)
{
  kafka_producers_observe (p, stream, partition, g_bytes_get_data (batch, NULL),
                           g_bytes_get_size (batch));
}

static void
test_header (void)
{
  g_autoptr (GBytes) b = stored_batch (42, 77, 3, 12, 4, 1700000000000);
  KafkaProducerBatch pbatch;

  g_assert_true (kafka_producer_batch_from_header (g_bytes_get_data (b, NULL),
                                                   g_bytes_get_size (b), &pbatch));
  g_assert_cmpint (pbatch.producer_id, ==, 77);
  g_assert_cmpint (pbatch.epoch, ==, 3);
  g_assert_cmpint (pbatch.base_sequence, ==, 12);
  g_assert_cmpint (pbatch.record_count, ==, 4);
  g_assert_false (kafka_producer_batch_from_header (g_bytes_get_data (b, NULL), 60, &pbatch));
}

/* Snapshot, restart, catch up from the log tail: retries of batches from
 * before and after the snapshot are still recognised, ids not reused. */
static void
test_snapshot_and_rebuild (void)
{
  Reserve r = { 0 };
  g_autoptr (KafkaProducers) p = kafka_producers_new (0, on_reserve, &r);
  g_autoptr (KafkaProducers) q = NULL;
  g_autoptr (GBytes) snap = NULL;
  g_autoptr (GBytes) tail1 = NULL;
  g_autoptr (GBytes) tail2 = NULL;
  g_autoptr (GBytes) other = NULL;
  g_autoptr (GError) error = NULL;
  gint64 pid, pid2, off = 0;
  gint16 epoch;
  KafkaProducerBatch b;

  kafka_producers_init_id (p, &pid, &epoch);
  for (gint32 seq = 0; seq < 6; seq += 2)
    {
      b = pb (pid, 0, seq, 2);
      g_assert_cmpint (check (p, "s", 1, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);
      kafka_producers_complete (p, "s", 1, &b, 10 + seq, 1700000000000 + seq);
    }
  /* In flight at snapshot time: not in the snapshot. */
  g_assert_cmpint (check (p, "s", 1, pb (pid, 0, 6, 2), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  snap = kafka_producers_snapshot (p);

  q = kafka_producers_new (r.ceiling, on_reserve, &r);
  g_assert_true (kafka_producers_restore (q, snap, &error));
  g_assert_no_error (error);
  g_assert_cmpint (check (q, "s", 1, pb (pid, 0, 2, 2), &off, NULL), ==, KAFKA_SEQ_DUPLICATE);
  g_assert_cmpint (off, ==, 12);
  g_assert_cmpint (kafka_producers_resume_offset (q, "s", 1), ==, 16);

  /* The in-flight batch did get written (offset 16), and one more: the
   * tail scan brings them back. A batch before the resume offset is
   * ignored. */
  tail1 = stored_batch (16, pid, 0, 6, 2, 1700000000100);
  tail2 = stored_batch (18, pid, 0, 8, 3, 1700000000200);
  other = stored_batch (12, pid, 0, 99, 1, 1700000000000);
  observe (q, "s", 1, other);
  observe (q, "s", 1, tail1);
  observe (q, "s", 1, tail2);
  g_assert_cmpint (check (q, "s", 1, pb (pid, 0, 6, 2), &off, NULL), ==, KAFKA_SEQ_DUPLICATE);
  g_assert_cmpint (off, ==, 16);
  g_assert_cmpint (check (q, "s", 1, pb (pid, 0, 8, 3), &off, NULL), ==, KAFKA_SEQ_DUPLICATE);
  g_assert_cmpint (off, ==, 18);
  g_assert_cmpint (check (q, "s", 1, pb (pid, 0, 11, 1), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  g_assert_cmpint (kafka_producers_resume_offset (q, "s", 1), ==, 21);

  kafka_producers_init_id (q, &pid2, &epoch);
  g_assert_cmpint (pid2, >, pid);
  g_assert_cmpint (pid2, >=, KAFKA_PRODUCER_ID_BLOCK);
}

/* A log written by producers the snapshot never saw (ids past the stored
 * ceiling, sequences about to wrap) rebuilds too. */
static void
test_rebuild_from_scratch (void)
{
  g_autoptr (KafkaProducers) p = kafka_producers_new (0, NULL, NULL);
  g_autoptr (GBytes) b1 = stored_batch (0, 5000, 1, G_MAXINT32 - 1, 2, 1700000000000);
  gint64 pid, off = 0;
  gint16 epoch;

  observe (p, "w", 0, b1);
  g_assert_cmpint (check (p, "w", 0, pb (5000, 1, G_MAXINT32 - 1, 2), &off, NULL), ==,
                   KAFKA_SEQ_DUPLICATE);
  g_assert_cmpint (off, ==, 0);
  /* After INT32_MAX comes 0. */
  g_assert_cmpint (check (p, "w", 0, pb (5000, 1, 0, 1), NULL, NULL), ==, KAFKA_SEQ_APPEND);
  kafka_producers_init_id (p, &pid, &epoch);
  g_assert_cmpint (pid, >, 5000);
}

static void
test_snapshot_corrupt (void)
{
  g_autoptr (KafkaProducers) p = kafka_producers_new (0, NULL, NULL);
  g_autoptr (KafkaProducers) q = kafka_producers_new (0, NULL, NULL);
  g_autoptr (GBytes) snap = NULL;
  gint64 pid;
  gint16 epoch;
  KafkaProducerBatch b;
  gsize len;
  const guint8 *data;

  kafka_producers_init_id (p, &pid, &epoch);
  b = pb (pid, 0, 0, 1);
  check (p, "stream-a", 0, b, NULL, NULL);
  kafka_producers_complete (p, "stream-a", 0, &b, 7, 8);
  snap = kafka_producers_snapshot (p);
  data = g_bytes_get_data (snap, &len);

  /* Every truncation is refused, the state left as it was. */
  for (gsize cut = 0; cut < len; cut++)
    {
      g_autoptr (GBytes) part = g_bytes_new (data, cut);
      g_autoptr (GError) error = NULL;

      g_assert_false (kafka_producers_restore (q, part, &error));
      g_assert_error (error, KAFKA_PRODUCERS_ERROR, KAFKA_PRODUCERS_ERROR_CORRUPT);
    }
  {
    g_autofree guint8 *longer = g_malloc0 (len + 1);
    g_autoptr (GBytes) extra = NULL;
    g_autoptr (GError) error = NULL;

    memcpy (longer, data, len);
    extra = g_bytes_new (longer, len + 1);
    g_assert_false (kafka_producers_restore (q, extra, &error));
  }
  g_assert_cmpint (kafka_producers_resume_offset (q, "stream-a", 0), ==, -1);
}

static void
test_forget_and_expire (void)
{
  g_autoptr (KafkaProducers) p = kafka_producers_new (0, NULL, NULL);
  gint64 pid, off;
  gint16 epoch;
  KafkaProducerBatch b;

  kafka_producers_init_id (p, &pid, &epoch);
  b = pb (pid, 0, 0, 1);
  check (p, "a", 0, b, NULL, NULL);
  kafka_producers_complete (p, "a", 0, &b, 0, 1000);
  check (p, "ab", 0, b, NULL, NULL);
  kafka_producers_complete (p, "ab", 0, &b, 0, 5000);

  kafka_producers_forget_stream (p, "a");
  g_assert_cmpint (kafka_producers_resume_offset (p, "a", 0), ==, -1);
  g_assert_cmpint (kafka_producers_resume_offset (p, "ab", 0), ==, 1);
  g_assert_cmpint (check (p, "ab", 0, b, &off, NULL), ==, KAFKA_SEQ_DUPLICATE);
  /* Deleted and created again: a fresh start at sequence 0. */
  g_assert_cmpint (check (p, "a", 0, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);

  kafka_producers_expire (p, 6000);
  /* "a" has a batch in flight: kept. "ab" expired: its batch 0 is new. */
  g_assert_cmpint (check (p, "a", 0, b, NULL, NULL), ==, KAFKA_SEQ_IN_FLIGHT);
  g_assert_cmpint (check (p, "ab", 0, b, NULL, NULL), ==, KAFKA_SEQ_APPEND);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/transport/kafka/producers/ids", test_ids);
  g_test_add_func ("/transport/kafka/producers/sequences", test_sequences);
  g_test_add_func ("/transport/kafka/producers/epochs-and-abort", test_epochs_and_abort);
  g_test_add_func ("/transport/kafka/producers/header", test_header);
  g_test_add_func ("/transport/kafka/producers/snapshot-and-rebuild", test_snapshot_and_rebuild);
  g_test_add_func ("/transport/kafka/producers/rebuild-from-scratch", test_rebuild_from_scratch);
  g_test_add_func ("/transport/kafka/producers/snapshot-corrupt", test_snapshot_corrupt);
  g_test_add_func ("/transport/kafka/producers/forget-and-expire", test_forget_and_expire);

  return g_test_run ();
}
