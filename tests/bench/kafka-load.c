/* kafka-load: a Kafka producer / consumer load generator on librdkafka for
 * `make bench-kafka` (tests/bench/bench-kafka.py).
 *
 * Producer (`--produce`): `--size`-byte values (100 by default), no keys,
 * no compression, batching as librdkafka tunes it for throughput (linger.ms
 * 5, batch.size 1 MB, batch.num.messages 10000, stated here so the numbers
 * do not move with the library's defaults) and a 64 MiB send buffer, the
 * buffer.memory of Kafka's published single-producer run. Messages go to
 * the partitions in turn so that each request carries a batch for every
 * partition. Either `--count` messages or `--seconds` of load, as fast as
 * the client takes them or at `--rate` messages/s. The latency of each
 * message runs from the moment it was due (rate-limited) or handed to
 * librdkafka (unlimited) to its delivery report, so a stalled broker shows
 * up in p99 instead of merely slowing the sender down.
 *
 * Consumer (`--consume`): assigns every partition of the topic from the
 * beginning (no group rebalance, no commits) and reads what the topic
 * held when it started (its high watermarks), or `--consume-count`. Its
 * local queue limits are raised (see run_consume) and fetch sizes are
 * librdkafka's defaults.
 *
 * Against `--bootstrap HOST:PORT`, or against librdkafka's own mock cluster
 * (`--mock N`: N mock brokers inside this process, records kept in memory,
 * the topic created with `--partitions`) with the very same producer and
 * consumer code: the client's ceiling. The mock brokers listen on loopback
 * sockets, so the client does the same syscalls as against a real broker.
 *
 * Each phase prints one JSON object on stdout; progress and errors go to
 * stderr.
 *
 * SPDX-License-Identifier: Apache-2.0
 */

#include <glib.h>
#include <json-glib/json-glib.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Latency histogram in microseconds: exact below 256 µs, then 128 buckets
 * per power of two (under 0.8 % error), up to 2^40 µs. */
#define HIST_LINEAR 256
#define HIST_SUB 128
#define HIST_BUCKETS (HIST_LINEAR + 32 * HIST_SUB)

typedef struct
{
  guint64 counts[HIST_BUCKETS];
  guint64 total;
} Histogram;

typedef struct
{
  /* options */
  const char *bootstrap;      /* borrowed from main () */
  int mock_brokers;
  const char *topic;
  int partitions;
  char *acks;
  int size;
  gint64 count;
  double seconds;
  double rate;
  int linger_ms;
  int batch_size;
  gint64 consume_count;
  double idle_timeout;
  gboolean produce;
  gboolean consume;
  char **extra;               /* -X key=value */

  /* producer state, touched only by the thread that polls */
  Histogram hist;
  guint64 delivered;
  guint64 failed;
  guint64 delivered_bytes;
  gint64 last_delivery_ns;
  char *first_error;
} Load;

static gint64
now_ns (void)
{
  return g_get_monotonic_time () * 1000;
}

static guint
hist_index (guint64 us)
{
  guint bits, shift;

  if (us < HIST_LINEAR)
    return (guint) us;
  bits = 63 - __builtin_clzll (us);        /* us >= 256 → bits >= 8 */
  shift = bits - 7;                        /* keep the top 8 bits */
  return MIN ((guint) (HIST_LINEAR + (bits - 8) * HIST_SUB + ((us >> shift) - HIST_SUB)),
              HIST_BUCKETS - 1);
}

static double
hist_value_ms (guint idx)
{
  guint bits, sub;

  if (idx < HIST_LINEAR)
    return idx / 1000.0;
  bits = (idx - HIST_LINEAR) / HIST_SUB + 8;
  sub = (idx - HIST_LINEAR) % HIST_SUB + HIST_SUB;
  /* the middle of the bucket */
  return ((double) sub + 0.5) * (double) (G_GUINT64_CONSTANT (1) << (bits - 7)) / 1000.0;
}

static void
hist_add (Histogram *h, gint64 ns)
{
  h->counts[hist_index (ns > 0 ? (guint64) ns / 1000 : 0)]++;
  h->total++;
}

static double
hist_percentile_ms (const Histogram *h, double p)
{
  guint64 rank, seen = 0;

  if (h->total == 0)
    return 0;
  rank = (guint64) (p / 100.0 * (double) h->total + 0.5);
  rank = CLAMP (rank, 1, h->total);
  for (guint i = 0; i < HIST_BUCKETS; i++)
    {
      seen += h->counts[i];
      if (seen >= rank)
        return hist_value_ms (i);
    }
  return hist_value_ms (HIST_BUCKETS - 1);
}

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s = %s: %s", key, value,
                   errstr);
      return FALSE;
    }
  return TRUE;
}

static gboolean
conf_set_extra (rd_kafka_conf_t *conf, char **extra, GError **error)
{
  for (char **kv = extra; kv && *kv; kv++)
    {
      g_auto (GStrv) parts = g_strsplit (*kv, "=", 2);

      if (!parts[0] || !parts[1])
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "-X %s: want key=value", *kv);
          return FALSE;
        }
      if (!conf_set (conf, parts[0], parts[1], error))
        return FALSE;
    }
  return TRUE;
}

static void
json_double (JsonBuilder *b, const char *name, double value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_double_value (b, value);
}

static void
json_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
json_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
print_json (JsonBuilder *b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = NULL;

  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
  fflush (stdout);
}

/* --- producer -------------------------------------------------------------- */

static void
on_delivery (rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
  Load *load = opaque;
  gint64 now = now_ns ();

  if (msg->err)
    {
      load->failed++;
      if (!load->first_error)
        load->first_error = g_strdup (rd_kafka_err2str (msg->err));
      return;
    }
  load->delivered++;
  load->delivered_bytes += msg->len;
  load->last_delivery_ns = now;
  hist_add (&load->hist, now - (gint64) (guintptr) msg->_private);
}

static void
on_error (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  g_printerr ("kafka-load: %s: %s\n", rd_kafka_err2name (err), reason);
}

static gboolean
run_produce (Load *load, const char *bootstrap, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  g_autofree char *payload = g_malloc (load->size);
  g_autofree char *linger = g_strdup_printf ("%d", load->linger_ms);
  g_autofree char *batch = g_strdup_printf ("%d", load->batch_size);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  char errstr[512];
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  gint64 start, deadline, sent = 0, full_waits = 0, elapsed;
  double secs;

  rd_kafka_conf_set_opaque (conf, load);
  rd_kafka_conf_set_dr_msg_cb (conf, on_delivery);
  rd_kafka_conf_set_error_cb (conf, on_error);
  if (!conf_set (conf, "bootstrap.servers", bootstrap, error)
      || !conf_set (conf, "acks", load->acks, error)
      || !conf_set (conf, "linger.ms", linger, error)
      || !conf_set (conf, "batch.size", batch, error)
      || !conf_set (conf, "batch.num.messages", "10000", error)
      || !conf_set (conf, "queue.buffering.max.kbytes", "65536", error)
      || !conf_set (conf, "queue.buffering.max.messages", "1000000", error)
      || !conf_set (conf, "compression.codec", "none", error)
      || !conf_set (conf, "enable.idempotence", "false", error)
      || !conf_set_extra (conf, load->extra, error))
    {
      rd_kafka_conf_destroy (conf);
      return FALSE;
    }
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "rd_kafka_new: %s", errstr);
      return FALSE;
    }
  rkt = rd_kafka_topic_new (rk, load->topic, NULL);

  /* A payload that does not compress to nothing, should a codec be set
   * with -X. */
  for (int i = 0; i < load->size; i++)
    payload[i] = (char) ('a' + (i * 7 + i / 26) % 26);

  /* Metadata first, so that connecting is not part of the measurement. */
  {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata (rk, 0, rkt, &md, 10000);

    if (err)
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "metadata for %s: %s", load->topic,
                     rd_kafka_err2str (err));
        rd_kafka_topic_destroy (rkt);
        rd_kafka_destroy (rk);
        return FALSE;
      }
    if (md->topic_cnt == 1 && md->topics[0].err == 0 && md->topics[0].partition_cnt > 0)
      load->partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy (md);
  }

  start = now_ns ();
  deadline = load->seconds > 0 ? start + (gint64) (load->seconds * 1e9) : G_MAXINT64;
  while ((load->count <= 0 || sent < load->count))
    {
      gint64 now = now_ns (), stamp = now;

      if ((sent & 255) == 0 || load->rate > 0)
        {
          if (now >= deadline)
            break;
          rd_kafka_poll (rk, 0);
        }
      if (load->rate > 0)
        {
          gint64 due = start + (gint64) ((double) sent * 1e9 / load->rate);

          if (due > now)
            {
              /* Serve delivery reports while waiting; the next messages go
               * out in a burst of at most a millisecond. */
              rd_kafka_poll (rk, (int) MAX (1, (due - now) / 1000000));
              continue;
            }
          stamp = due;
        }
      while (rd_kafka_produce (rkt, (int32_t) (sent % load->partitions), RD_KAFKA_MSG_F_COPY,
                               payload, load->size, NULL, 0, (void *) (guintptr) stamp) == -1)
        {
          rd_kafka_resp_err_t err = rd_kafka_last_error ();

          if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "produce: %s",
                           rd_kafka_err2str (err));
              rd_kafka_topic_destroy (rkt);
              rd_kafka_destroy (rk);
              return FALSE;
            }
          full_waits++;
          rd_kafka_poll (rk, 1);
        }
      sent++;
    }
  if (rd_kafka_flush (rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_printerr ("kafka-load: %d messages still unacknowledged after 120 s\n",
                rd_kafka_outq_len (rk));
  elapsed = (load->last_delivery_ns ? load->last_delivery_ns : now_ns ()) - start;
  secs = elapsed / 1e9;

  json_builder_begin_object (b);
  json_string (b, "phase", "produce");
  json_string (b, "target", load->mock_brokers > 0 ? "mock" : bootstrap);
  json_string (b, "topic", load->topic);
  json_int (b, "partitions", load->partitions);
  json_string (b, "acks", load->acks);
  json_int (b, "size", load->size);
  json_int (b, "linger_ms", load->linger_ms);
  json_int (b, "batch_size", load->batch_size);
  json_double (b, "rate_limit", load->rate);
  json_int (b, "sent", sent);
  json_int (b, "delivered", (gint64) load->delivered);
  json_int (b, "failed", (gint64) load->failed);
  json_int (b, "queue_full_waits", full_waits);
  json_double (b, "seconds", secs);
  json_double (b, "records_per_s", secs > 0 ? load->delivered / secs : 0);
  json_double (b, "mib_per_s", secs > 0 ? load->delivered_bytes / secs / 1048576.0 : 0);
  json_double (b, "p50_ms", hist_percentile_ms (&load->hist, 50));
  json_double (b, "p99_ms", hist_percentile_ms (&load->hist, 99));
  json_double (b, "max_ms", hist_percentile_ms (&load->hist, 100));
  json_string (b, "error", load->first_error);
  json_builder_end_object (b);
  print_json (b);

  rd_kafka_topic_destroy (rkt);
  rd_kafka_destroy (rk);
  if (load->failed > 0 || load->delivered < (guint64) sent)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "%" G_GUINT64_FORMAT " of %" G_GINT64_FORMAT " messages not delivered (%s)",
                   (guint64) sent - load->delivered, sent,
                   load->first_error ? load->first_error : "timed out");
      return FALSE;
    }
  return TRUE;
}

/* --- consumer -------------------------------------------------------------- */

static gboolean
run_consume (Load *load, const char *bootstrap, gint64 want, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *group = g_strdup_printf ("kafka-load-%d", (int) getpid ());
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_partition_list_t *parts;
  char errstr[512];
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  rd_kafka_queue_t *queue;
  rd_kafka_message_t *msgs[4096];
  rd_kafka_resp_err_t err;
  gint64 got = 0, bytes = 0, start, first = 0, last = 0, idle_since, available = 0;
  int npart;
  gboolean ok = TRUE;

  rd_kafka_conf_set_error_cb (conf, on_error);
  /* A group id only because librdkafka's consumer wants one; with assign()
   * and no commits the group is never joined. */
  if (!conf_set (conf, "bootstrap.servers", bootstrap, error)
      || !conf_set (conf, "group.id", group, error)
      || !conf_set (conf, "enable.auto.commit", "false", error)
      || !conf_set (conf, "enable.auto.offset.store", "false", error)
      || !conf_set (conf, "auto.offset.reset", "earliest", error)
      /* librdkafka 2.0 stops fetching a partition whose local queue holds
       * queued.min.messages and resumes only at the broker thread's next
       * wake-up, up to a second later (later versions have
       * fetch.queue.backoff.ms); with the defaults (100000 messages) a
       * consumer that reads 2 M records/s idles most of each second and
       * measures that timer, not the broker. The queue stays far below
       * these limits as long as this loop keeps up. */
      || !conf_set (conf, "queued.min.messages", "10000000", error)
      || !conf_set (conf, "queued.max.messages.kbytes", "2097151", error)
      || !conf_set_extra (conf, load->extra, error))
    {
      rd_kafka_conf_destroy (conf);
      return FALSE;
    }
  rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "rd_kafka_new: %s", errstr);
      return FALSE;
    }
  rkt = rd_kafka_topic_new (rk, load->topic, NULL);
  err = rd_kafka_metadata (rk, 0, rkt, &md, 10000);
  if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "metadata for %s: %s", load->topic,
                   rd_kafka_err2str (err ? err : md->topics[0].err));
      if (md)
        rd_kafka_metadata_destroy (md);
      rd_kafka_topic_destroy (rkt);
      rd_kafka_destroy (rk);
      return FALSE;
    }
  npart = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy (md);
  rd_kafka_topic_destroy (rkt);

  /* What is there now, so that the consumer knows when it is done even
   * where older records are gone (the mock cluster keeps about the last
   * 5 MB of each partition). */
  for (int p = 0; p < npart; p++)
    {
      int64_t lo = 0, hi = 0;

      err = rd_kafka_query_watermark_offsets (rk, load->topic, p, &lo, &hi, 10000);
      if (err)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "watermarks of %s [%d]: %s",
                       load->topic, p, rd_kafka_err2str (err));
          rd_kafka_destroy (rk);
          return FALSE;
        }
      available += hi - lo;
    }
  if (want <= 0 || want > available)
    want = available;

  parts = rd_kafka_topic_partition_list_new (npart);
  for (int p = 0; p < npart; p++)
    rd_kafka_topic_partition_list_add (parts, load->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  start = now_ns ();
  err = rd_kafka_assign (rk, parts);
  rd_kafka_topic_partition_list_destroy (parts);
  if (err)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "assign: %s", rd_kafka_err2str (err));
      rd_kafka_destroy (rk);
      return FALSE;
    }

  /* Batches off the consumer queue: one lock round per batch rather than
   * per message, so that the client loop is not what is measured. */
  queue = rd_kafka_queue_get_consumer (rk);
  idle_since = start;
  while (got < want)
    {
      ssize_t n = rd_kafka_consume_batch_queue (queue, 100, msgs, G_N_ELEMENTS (msgs));
      gint64 now = now_ns ();

      if (n <= 0)
        {
          if (now - idle_since > (gint64) (load->idle_timeout * 1e9))
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "no message for %.0f s after %" G_GINT64_FORMAT " of %"
                           G_GINT64_FORMAT, load->idle_timeout, got, want);
              ok = FALSE;
              break;
            }
          continue;
        }
      idle_since = now;
      for (ssize_t i = 0; i < n; i++)
        {
          if (msgs[i]->err)
            {
              if (msgs[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                g_printerr ("kafka-load: consume: %s\n", rd_kafka_message_errstr (msgs[i]));
            }
          else
            {
              if (!first)
                first = now;
              last = now;
              got++;
              bytes += msgs[i]->len;
            }
          rd_kafka_message_destroy (msgs[i]);
        }
    }
  rd_kafka_queue_destroy (queue);

  {
    double secs = last > start ? (last - start) / 1e9 : 0;

    json_builder_begin_object (b);
    json_string (b, "phase", "consume");
    json_string (b, "target", load->mock_brokers > 0 ? "mock" : bootstrap);
    json_string (b, "topic", load->topic);
    json_int (b, "partitions", npart);
    json_int (b, "available", available);
    json_int (b, "wanted", want);
    json_int (b, "consumed", got);
    json_double (b, "seconds", secs);
    json_double (b, "first_message_ms", first ? (first - start) / 1e6 : 0);
    json_double (b, "records_per_s", secs > 0 ? got / secs : 0);
    json_double (b, "mib_per_s", secs > 0 ? bytes / secs / 1048576.0 : 0);
    json_builder_end_object (b);
    print_json (b);
  }
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  return ok;
}

/* --- main ------------------------------------------------------------------ */

int
main (int argc, char **argv)
{
  Load load = {
    .topic = NULL, .partitions = 1, .size = 100, .linger_ms = 5, .batch_size = 1000000,
    .idle_timeout = 30,
  };
  g_autofree char *acks = NULL;
  g_autofree char *bootstrap_opt = NULL;
  g_autofree char *topic = NULL;
  g_auto (GStrv) extra = NULL;
  gboolean serve = FALSE;
  GOptionEntry entries[] = {
    { "bootstrap", 'b', 0, G_OPTION_ARG_STRING, &bootstrap_opt, "broker", "HOST:PORT" },
    { "mock", 0, 0, G_OPTION_ARG_INT, &load.mock_brokers,
      "use librdkafka's mock cluster with N brokers", "N" },
    { "topic", 't', 0, G_OPTION_ARG_STRING, &topic, "topic (stream)", "NAME" },
    { "partitions", 'p', 0, G_OPTION_ARG_INT, &load.partitions,
      "partitions of the mock topic (a real topic's come from its metadata)", "N" },
    { "produce", 0, 0, G_OPTION_ARG_NONE, &load.produce, "run the producer", NULL },
    { "consume", 0, 0, G_OPTION_ARG_NONE, &load.consume,
      "run the consumer (after the producer when both are given)", NULL },
    { "acks", 'a', 0, G_OPTION_ARG_STRING, &acks, "0, 1 or -1 (default 1)", "ACKS" },
    { "size", 's', 0, G_OPTION_ARG_INT, &load.size, "value size (default 100)", "BYTES" },
    { "count", 'n', 0, G_OPTION_ARG_INT64, &load.count, "messages to produce", "N" },
    { "seconds", 'd', 0, G_OPTION_ARG_DOUBLE, &load.seconds, "or produce for this long", "S" },
    { "rate", 'r', 0, G_OPTION_ARG_DOUBLE, &load.rate, "messages/s (default: unlimited)", "R" },
    { "linger-ms", 0, 0, G_OPTION_ARG_INT, &load.linger_ms, "linger.ms (default 5)", "MS" },
    { "batch-size", 0, 0, G_OPTION_ARG_INT, &load.batch_size,
      "batch.size (default 1000000)", "BYTES" },
    { "consume-count", 0, 0, G_OPTION_ARG_INT64, &load.consume_count,
      "messages to consume (default: all the topic holds)", "N" },
    { "idle-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &load.idle_timeout,
      "give up consuming after this long without a message (30)", "S" },
    { "set", 'X', 0, G_OPTION_ARG_STRING_ARRAY, &extra,
      "extra librdkafka property", "KEY=VALUE" },
    { "serve", 0, 0, G_OPTION_ARG_NONE, &serve,
      "with --mock: only run the mock cluster, print its bootstrap address as JSON and "
      "serve until stdin closes (a peer in a process of its own)", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- Kafka load generator");
  g_autoptr (GError) error = NULL;
  rd_kafka_t *mock_rk = NULL;
  rd_kafka_mock_cluster_t *mock = NULL;
  const char *bootstrap;
  int status = 0;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("kafka-load: %s\n", error->message);
      return 2;
    }
  load.acks = acks ? acks : "1";
  load.bootstrap = bootstrap_opt;
  load.topic = topic;
  load.extra = extra;
  if (!load.topic || (!load.bootstrap == (load.mock_brokers <= 0)) || load.partitions < 1
      || load.size < 1 || (!load.produce && !load.consume && !serve)
      || (serve && load.mock_brokers <= 0)
      || (load.produce && load.count <= 0 && load.seconds <= 0))
    {
      g_printerr ("kafka-load: want --topic, one of --bootstrap / --mock, --produce with "
                  "--count or --seconds and/or --consume\n");
      return 2;
    }

  if (load.mock_brokers > 0)
    {
      rd_kafka_conf_t *conf = rd_kafka_conf_new ();
      char errstr[512];

      /* This handle has no brokers of its own to connect to; without this
       * it warns that bootstrap.servers is unset. */
      rd_kafka_conf_set (conf, "log_level", "4", NULL, 0);
      /* The mock cluster runs on a handle of its own, so that the client
       * under test is configured exactly as against a real broker. */
      mock_rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
      if (!mock_rk)
        {
          g_printerr ("kafka-load: rd_kafka_new (mock): %s\n", errstr);
          return 1;
        }
      mock = rd_kafka_mock_cluster_new (mock_rk, load.mock_brokers);
      if (!mock || rd_kafka_mock_topic_create (mock, load.topic, load.partitions, 1))
        {
          g_printerr ("kafka-load: cannot create the mock cluster or its topic\n");
          return 1;
        }
      bootstrap = rd_kafka_mock_cluster_bootstraps (mock);
      if (serve)
        {
          char buf[256];

          g_print ("{\"bootstrap\":\"%s\"}\n", bootstrap);
          fflush (stdout);
          while (fread (buf, 1, sizeof buf, stdin) > 0)
            ;
          rd_kafka_mock_cluster_destroy (mock);
          rd_kafka_destroy (mock_rk);
          return 0;
        }
    }
  else
    bootstrap = load.bootstrap;

  if (load.produce && !run_produce (&load, bootstrap, &error))
    {
      g_printerr ("kafka-load: produce: %s\n", error->message);
      g_clear_error (&error);
      status = 1;
    }
  if (status == 0 && load.consume
      && !run_consume (&load, bootstrap, load.consume_count, &error))
    {
      g_printerr ("kafka-load: consume: %s\n", error->message);
      status = 1;
    }

  if (mock)
    rd_kafka_mock_cluster_destroy (mock);
  if (mock_rk)
    rd_kafka_destroy (mock_rk);
  g_free (load.first_error);
  return status;
}
