/* Sluice core — counters and gauges, rendered in the Prometheus text format.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

struct _SluiceCounter {
  HostMetric m;
};

static void
metric_free (HostMetric *m)
{
  g_free (m->name);
  g_free (m->base);
  g_free (m->help);
  g_free (m);
}

static SluiceCounter *
metric_get (SluiceHost *host, const char *name, const char *help, gboolean gauge)
{
  HostMetric *m;

  g_mutex_lock (&host->metrics_lock);
  m = g_hash_table_lookup (host->metrics, name);
  if (!m)
    {
      const char *brace = strchr (name, '{');
      m = (HostMetric *) g_new0 (SluiceCounter, 1);
      m->name = g_strdup (name);
      m->base = brace ? g_strndup (name, brace - name) : g_strdup (name);
      m->help = g_strdup (help ? help : "");
      m->gauge = gauge;
      g_hash_table_insert (host->metrics, m->name, m);
      g_ptr_array_add (host->metrics_order, m);
    }
  g_mutex_unlock (&host->metrics_lock);
  return (SluiceCounter *) m;
}

SluiceCounter *
sluice_host_counter (SluiceHost *host, const char *name, const char *help)
{
  return metric_get (host, name, help, FALSE);
}

SluiceCounter *
sluice_host_gauge (SluiceHost *host, const char *name, const char *help)
{
  return metric_get (host, name, help, TRUE);
}

void
sluice_counter_add (SluiceCounter *c, gint64 delta)
{
  if (c)
    __atomic_fetch_add (&c->m.value, delta, __ATOMIC_RELAXED);
}

void
sluice_counter_set (SluiceCounter *c, gint64 value)
{
  if (c)
    __atomic_store_n (&c->m.value, value, __ATOMIC_RELAXED);
}

gint64
sluice_counter_get (SluiceCounter *c)
{
  return c ? __atomic_load_n (&c->m.value, __ATOMIC_RELAXED) : 0;
}

static int
compare_metrics (gconstpointer a, gconstpointer b)
{
  const HostMetric *x = *(HostMetric **) a, *y = *(HostMetric **) b;
  int r = strcmp (x->base, y->base);
  return r ? r : strcmp (x->name, y->name);
}

char *
sluice_host_metrics_render (SluiceHost *host)
{
  GString *out = g_string_new (NULL);
  g_autoptr (GPtrArray) all = NULL;
  const char *last = NULL;

  if (host->io)
    sluice_counter_set (sluice_host_gauge (host, "sluice_connections",
                                           "Open connections on the core's listeners"),
                        sluice_io_count_connections (host->io));
  g_mutex_lock (&host->metrics_lock);
  all = g_ptr_array_copy (host->metrics_order, NULL, NULL);
  /* The copy inherits the free function; the metrics belong to the host. */
  g_ptr_array_set_free_func (all, NULL);
  g_mutex_unlock (&host->metrics_lock);
  g_ptr_array_sort (all, compare_metrics);
  for (guint i = 0; i < all->len; i++)
    {
      HostMetric *m = all->pdata[i];
      if (g_strcmp0 (last, m->base) != 0)
        {
          g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", m->base, m->help,
                                  m->base, m->gauge ? "gauge" : "counter");
          last = m->base;
        }
      g_string_append_printf (out, "%s %" G_GINT64_FORMAT "\n", m->name,
                              sluice_counter_get ((SluiceCounter *) m));
    }
  return g_string_free (out, FALSE);
}

void
host_metrics_init (SluiceHost *host)
{
  g_mutex_init (&host->metrics_lock);
  host->metrics = g_hash_table_new (g_str_hash, g_str_equal);
  host->metrics_order = g_ptr_array_new_with_free_func ((GDestroyNotify) metric_free);
  host->m_appends = sluice_host_counter (host, "sluice_appends_total",
                                         "Record batches appended to partition logs");
  host->m_append_records = sluice_host_counter (host, "sluice_append_records_total",
                                                "Records accepted for appending");
  host->m_append_bytes = sluice_host_counter (host, "sluice_append_bytes_total",
                                              "Bytes appended to partition logs");
  host->m_append_errors = sluice_host_counter (host, "sluice_append_errors_total",
                                               "Appends refused or failed (not acknowledged)");
  host->m_fsyncs = sluice_host_counter (host, "sluice_fsyncs_total",
                                        "Storage syncs (group commits)");
  host->m_fsync_appends = sluice_host_counter (host, "sluice_group_commit_appends_total",
                                               "Appends acknowledged after a group commit; "
                                               "divide by sluice_fsyncs_total for the batch size");
  host->m_auth_failures = sluice_host_counter (host, "sluice_auth_failures_total",
                                               "Refused authentications");
  host->m_reads = sluice_host_counter (host, "sluice_reads_total", "Partition reads");
  /* Registered here so that it reads 0 until the reader first counts one. */
  sluice_host_counter (host, "sluice_storage_corrupt_batches_total",
                       "Reads answered with an error because a stored batch failed its CRC");
}

void
host_metrics_clear (SluiceHost *host)
{
  g_hash_table_unref (host->metrics);
  g_ptr_array_unref (host->metrics_order);
  g_mutex_clear (&host->metrics_lock);
}
