/* bench-append — stream append throughput through the host API, for each
 * storage backend (file, lmdb), beside the machine's own numbers measured in
 * the same run:
 *
 *   volume   records of 100 bytes (batches of 1,000) and of 10 KB (batches
 *            of 100, about 1 MB), under each durability policy (none,
 *            interval, batch), 32 appends in flight, timed up to and
 *            including the final fsync (a graceful stop);
 *   group    durability `batch`, 64 concurrent appenders of one record each
 *            (100 B and 10 KB): acks/s, fsyncs/s and records per fsync;
 *   dd       `dd bs=1M conv=fdatasync` of the same volume on the same disk;
 *   fsync    the disk's rate of appending 4 KiB writes + fdatasync.
 *
 * Output: one `key=value` line per measurement (keys like
 * `lmdb_10000_interval_mbps`), for tests/bench/run-append.py.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/resource.h>
#include <unistd.h>

#define KEY "YmVuY2gtcG9saWN5LWtleS0wMTIzNDU2Nzg5YWJjZGU="

static SluiceHost *
start_host (const char *dir, const char *backend)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_strdup_printf (
    "[hub]\ndata-dir = %s\nworkers = 1\n[storage]\nplugin = %s\n"
    "[auth]\nchain = key\n[auth.key]\nplugin = key\n"
    "[policy.bench]\nprimary-key = " KEY "\nrights = Send;Listen\n"
    "[stream.none]\npartitions = 1\ndurability = none\nmax-message = 2MiB\n"
    "retention-time = 0\n"
    "[stream.interval]\npartitions = 1\ndurability = interval\ninterval = 200ms\n"
    "max-message = 2MiB\nretention-time = 0\n"
    "[stream.batch]\npartitions = 1\ndurability = batch\nmax-message = 2MiB\n"
    "retention-time = 0\n",
    dir, backend);
  SluiceConfig *config = sluice_config_load_from_data ("bench.conf", text, &error);
  SluiceHost *host;

  if (!config || !(host = sluice_host_new (config, &error)) || !sluice_host_start (host, &error))
    g_error ("cannot start the host: %s", error->message);
  return host;
}

static GBytes *
make_batch (guint records, gsize record_size)
{
  SluiceBatchBuilder *b = sluice_batch_builder_new ((g_get_real_time () / 1000));
  g_autofree guint8 *value = g_malloc (record_size);

  for (gsize i = 0; i < record_size; i++)
    value[i] = 'a' + i % 26;
  for (guint i = 0; i < records; i++)
    sluice_batch_builder_add (b, NULL, 0, value, record_size, NULL, (g_get_real_time () / 1000));
  return sluice_batch_builder_finish (b);
}

typedef struct {
  SluiceHost *host;
  SluicePrincipal *who;
  const char *stream;
  GBytes *batch;
  guint64 to_send;
  guint64 sent;
  guint64 acked;
  guint inflight;
  guint max_inflight;
  gboolean failed;
} Pump;

static void pump_fill (Pump *p);

static void
on_ack (const SluiceAppendResult *r, const GError *error, gpointer data)
{
  Pump *p = data;

  if (error)
    {
      g_printerr ("append failed: %s\n", error->message);
      p->failed = TRUE;
    }
  p->acked++;
  p->inflight--;
  pump_fill (p);
}

static void
pump_fill (Pump *p)
{
  while (p->inflight < p->max_inflight && p->sent < p->to_send)
    {
      gsize len;
      const void *data = g_bytes_get_data (p->batch, &len);
      p->sent++;
      p->inflight++;
      /* The writer stamps batches in place: each append owns its copy, as
       * a transport's decoded batch would be. */
      sluice_host_append (p->host, p->who, p->stream, 0, NULL, 0, g_bytes_new (data, len), 0,
                          on_ack, p);
    }
}

typedef struct {
  SluiceHost *host;
  SluicePrincipal *who;
  const char *stream;
  gint64 next;
  guint64 records;
  guint64 bytes;
  gboolean done;
  gboolean failed;
} Reader;

static void read_next (Reader *r);

static void
on_read (SluiceReadResult *result, const GError *error, gpointer data)
{
  Reader *r = data;

  if (error != NULL)
    {
      g_printerr ("read failed: %s\n", error->message);
      r->failed = r->done = TRUE;
      return;
    }
  for (guint i = 0; i < result->batches->len; i++)
    {
      SluiceBatch *b = result->batches->pdata[i];

      r->records += (guint64) b->record_count;
      r->bytes += g_bytes_get_size (b->data);
      r->next = b->base_offset + b->record_count;
    }
  if (result->batches->len == 0 || r->next >= result->next)
    r->done = TRUE;
  sluice_read_result_free (result);
  if (!r->done)
    read_next (r);
}

static void
read_next (Reader *r)
{
  sluice_host_read (r->host, r->who, r->stream, 0, r->next, 8 << 20, 0, NULL, on_read, r);
}

/* Each run frees its page cache for the next, as dd's unlink does. */
static void
remove_tree (const char *dir)
{
  const char *argv[] = { "rm", "-rf", dir, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                NULL);
}

static double
now_s (void)
{
  return g_get_monotonic_time () / 1e6;
}

static void
run_volume (const char *dir, const char *backend, const char *policy, gsize record_size,
            guint64 volume, gboolean report)
{
  g_autofree char *sub = g_build_filename (dir, backend, NULL);
  g_autofree char *name = g_strdup_printf ("%s_%zu_%s", backend, record_size, policy);
  SluiceHost *host;
  g_autoptr (SluicePrincipal) who = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "bench",
                                                          SLUICE_RIGHT_SEND, NULL, 0, "bench");
  g_autoptr (SluicePrincipal) reader = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "reader",
                                                             SLUICE_RIGHT_LISTEN, NULL, 0,
                                                             "bench");
  SluiceCounter *fsyncs;
  guint records = record_size <= 100 ? 1000 : 100;
  Pump p = { 0 };
  gsize batch_len;
  gint64 syncs;
  double t0, t1;

  g_mkdir_with_parents (sub, 0755);
  host = start_host (sub, backend);
  fsyncs = sluice_host_counter (host, "sluice_fsyncs_total", NULL);
  p.host = host;
  p.who = who;
  p.stream = policy;
  p.batch = make_batch (records, record_size);
  g_bytes_get_data (p.batch, &batch_len);
  p.to_send = MAX (volume / batch_len, 1);
  p.max_inflight = 32;
  t0 = now_s ();
  pump_fill (&p);
  while (p.acked < p.to_send)
    g_main_context_iteration (NULL, TRUE);
  syncs = sluice_counter_get (fsyncs);
  t1 = now_s ();
  /* Read it all back through the host's read API (what a consumer gets:
   * batches as stored, CRC checked by the backend), right after writing
   * (the page cache holds it, as for a consumer that keeps up). */
  {
    Reader r = { host, reader, policy, 0, 0, 0, FALSE, FALSE };
    double r0 = now_s (), r1;

    read_next (&r);
    while (!r.done)
      g_main_context_iteration (NULL, TRUE);
    r1 = now_s ();
    if (r.failed || r.records != p.to_send * records)
      g_error ("read back %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " records", r.records,
               p.to_send * records);
    if (report)
      g_print ("%s_read_mbps=%.1f %s_read_records_per_s=%.0f\n", name,
               r.bytes / (r1 - r0) / 1e6, name, r.records / (r1 - r0));
  }
  /* The final fsync is part of the append time. */
  {
    double s0 = now_s ();
    sluice_host_stop (host);
    t1 += now_s () - s0;
  }
  if (report)
    g_print ("%s_records=%" G_GUINT64_FORMAT " %s_bytes=%" G_GUINT64_FORMAT
           " %s_seconds=%.3f %s_mbps=%.1f %s_records_per_s=%.0f %s_fsyncs=%" G_GINT64_FORMAT
           "\n", name, p.to_send * records, name, p.to_send * batch_len, name, t1 - t0, name,
           p.to_send * batch_len / (t1 - t0) / 1e6, name, p.to_send * records / (t1 - t0),
           name, syncs);
  if (p.failed)
    g_error ("appends failed");
  sluice_host_free (host);
  g_bytes_unref (p.batch);
  remove_tree (sub);
}

static void
run_dd (const char *dir, guint64 volume, gboolean report)
{
  g_autofree char *file = g_build_filename (dir, "dd.out", NULL);
  g_autofree char *of = g_strconcat ("of=", file, NULL);
  g_autofree char *count = g_strdup_printf ("count=%" G_GUINT64_FORMAT, volume >> 20);
  const char *argv[] = { "dd", "if=/dev/zero", of, "bs=1M", count, "conv=fdatasync", NULL };
  g_autoptr (GError) error = NULL;
  int status;
  double t0 = now_s (), t1;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    g_error ("dd failed: %s", error->message);
  t1 = now_s ();
  if (report)
    g_print ("dd_bytes=%" G_GUINT64_FORMAT " dd_seconds=%.3f dd_mbps=%.1f\n",
           (volume >> 20) << 20, t1 - t0, ((volume >> 20) << 20) / (t1 - t0) / 1e6);
  g_unlink (file);
}

static void
run_fsync_rate (const char *dir, double seconds)
{
  g_autofree char *file = g_build_filename (dir, "fsync.out", NULL);
  int fd = open (file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  char buf[4096];
  guint64 n = 0;
  double t0 = now_s (), t;

  memset (buf, 'f', sizeof buf);
  do
    {
      if (write (fd, buf, sizeof buf) != sizeof buf || fdatasync (fd) != 0)
        g_error ("fsync loop: %s", g_strerror (errno));
      n++;
      t = now_s ();
    }
  while (t - t0 < seconds);
  close (fd);
  g_unlink (file);
  g_print ("fdatasync_per_s=%.0f\n", n / (t - t0));
}

static void
run_group (const char *dir, const char *backend, gsize record_size, guint appenders,
           double seconds)
{
  g_autofree char *sub = g_build_filename (dir, "group", NULL);
  g_autofree char *name = g_strdup_printf ("%s_%zu_group", backend, record_size);
  SluiceHost *host;
  g_autoptr (SluicePrincipal) who = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "bench",
                                                          SLUICE_RIGHT_SEND, NULL, 0, "bench");
  g_autoptr (SluicePrincipal) reader = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "reader",
                                                             SLUICE_RIGHT_LISTEN, NULL, 0,
                                                             "bench");
  Pump p = { 0 };
  SluiceCounter *fsyncs;
  gint64 f0;
  double t0, t1;
  guint64 acked0;

  g_mkdir_with_parents (sub, 0755);
  host = start_host (sub, backend);
  fsyncs = sluice_host_counter (host, "sluice_fsyncs_total", NULL);
  p.host = host;
  p.who = who;
  p.stream = "batch";
  p.batch = make_batch (1, record_size);
  p.to_send = G_MAXUINT64;
  p.max_inflight = appenders;
  pump_fill (&p);
  /* warm-up */
  t0 = now_s ();
  while (now_s () - t0 < 0.3)
    g_main_context_iteration (NULL, TRUE);
  acked0 = p.acked;
  f0 = sluice_counter_get (fsyncs);
  t0 = now_s ();
  while ((t1 = now_s ()) - t0 < seconds)
    g_main_context_iteration (NULL, TRUE);
  {
    guint64 acks = p.acked - acked0;
    gint64 syncs = sluice_counter_get (fsyncs) - f0;
    /* One record per append: records per fsync = acks per fsync. */
    g_print ("%s_appenders=%u %s_acks_per_s=%.0f %s_fsyncs_per_s=%.0f "
             "%s_records_per_fsync=%.1f\n", name, appenders, name, acks / (t1 - t0), name,
             syncs / (t1 - t0), name, syncs ? (double) acks / syncs : 0);
  }
  p.to_send = p.sent; /* stop refilling */
  while (p.inflight > 0)
    g_main_context_iteration (NULL, TRUE);
  sluice_host_free (host);
  g_bytes_unref (p.batch);
  remove_tree (sub);
}

int
main (int argc, char **argv)
{
  g_autofree char *dir = NULL;
  g_autofree char *backends_arg = NULL;
  g_autofree char *policies_arg = NULL;
  g_autofree char *only = NULL;
  gint64 volume_mib = 512;
  double seconds = 3;
  GOptionEntry entries[] = {
    { "dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "Scratch directory on the disk to measure", "DIR" },
    { "volume-mib", 0, 0, G_OPTION_ARG_INT64, &volume_mib, "MiB written per volume run", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "Length of timed loops", "S" },
    { "backends", 0, 0, G_OPTION_ARG_STRING, &backends_arg, "Storage plugins (file,lmdb)",
      "LIST" },
    { "policies", 0, 0, G_OPTION_ARG_STRING, &policies_arg,
      "Durability policies of the volume runs (none,interval,batch)", "LIST" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only, "volume|group|dd|fsync", "NAME" },
    { NULL }
  };
  static const gsize sizes[] = { 100, 10000 };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- Sluice append benchmark");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) backends = NULL;
  g_auto (GStrv) policies = NULL;
  struct rusage ru;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    g_error ("%s", error->message);
  sluice_log_setup ("warning");
  if (!dir)
    dir = g_dir_make_tmp ("sluice-bench-XXXXXX", &error);
  g_mkdir_with_parents (dir, 0755);
  backends = g_strsplit (backends_arg ? backends_arg : "file,lmdb", ",", -1);
  policies = g_strsplit (policies_arg ? policies_arg : "none,interval,batch", ",", -1);

  /* On a VM the first pass over fresh page-cache memory is several times
   * slower than the next ones: an unreported warm-up pass makes dd and
   * Sluice meet the same page cache. */
  run_dd (dir, volume_mib << 20, FALSE);
  if (!only || g_str_equal (only, "dd"))
    run_dd (dir, volume_mib << 20, TRUE);
  if (!only || g_str_equal (only, "fsync"))
    run_fsync_rate (dir, seconds);
  for (guint b = 0; backends[b] != NULL; b++)
    for (guint z = 0; z < G_N_ELEMENTS (sizes); z++)
      {
        /* The same warm-up for each backend and size as for dd. */
        if (!only || g_str_equal (only, "volume"))
          run_volume (dir, backends[b], "none", sizes[z], volume_mib << 20, FALSE);
        if (!only || g_str_equal (only, "volume"))
          for (guint k = 0; policies[k] != NULL; k++)
            run_volume (dir, backends[b], policies[k], sizes[z], volume_mib << 20, TRUE);
        if (!only || g_str_equal (only, "group"))
          run_group (dir, backends[b], sizes[z], 64, seconds);
      }
  getrusage (RUSAGE_SELF, &ru);
  g_print ("max_rss_kib=%ld\n", ru.ru_maxrss);
  return 0;
}
