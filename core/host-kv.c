/* Sluice core — the key/value service for plugins.
 *
 * Each plugin instance names its own space; keys live under `x/{space}/` in
 * the storage KV, beside the core's own prefixes (`streams/`, `groups/`,
 * `devices/`), which no plugin can reach through here. Storage may block,
 * so the work runs on the core's job threads and the answer comes back on
 * the caller's context.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#include <string.h>

#define KV_SPACE_PREFIX "x/"

typedef struct {
  SluiceHost *host;
  char *prefix;                 /* `x/{space}/` */
  char *key;                    /* get: relative key; scan: relative prefix */
  GArray *ops;                  /* commit: SluiceKvOp with owned keys and values */
  GBytes *value;
  GPtrArray *pairs;
  SluiceKvGetFunc got;
  SluiceKvScanFunc scanned;
  SluiceDoneFunc done;
  gpointer user_data;
  GError *error;
} KvJob;

/* A space is one path segment: no `/`, not empty, printable. */
static gboolean
kv_space_valid (const char *space, GError **error)
{
  if (space == NULL || *space == '\0' || strchr (space, '/') != NULL
      || !g_utf8_validate (space, -1, NULL))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "KV space '%s' is not one non-empty path segment",
                   space != NULL ? space : "(null)");
      return FALSE;
    }
  return TRUE;
}

static KvJob *
kv_job_new (SluiceHost *host, const char *space)
{
  KvJob *job = g_new0 (KvJob, 1);

  job->host = host;
  job->prefix = g_strconcat (KV_SPACE_PREFIX, space, "/", NULL);
  return job;
}

static void
kv_job_free (KvJob *job)
{
  if (job->ops != NULL)
    {
      for (guint i = 0; i < job->ops->len; i++)
        {
          SluiceKvOp *op = &g_array_index (job->ops, SluiceKvOp, i);
          g_free ((char *) op->key);
          g_clear_pointer (&op->value, g_bytes_unref);
        }
      g_array_unref (job->ops);
    }
  g_clear_pointer (&job->value, g_bytes_unref);
  g_clear_pointer (&job->pairs, g_ptr_array_unref);
  g_free (job->prefix);
  g_free (job->key);
  g_clear_error (&job->error);
  g_free (job);
}

/* Strip the space prefix from every pair's key, in place. */
static void
kv_strip_prefix (GPtrArray *pairs, gsize prefix_len)
{
  for (guint i = 0; i < pairs->len; i++)
    {
      SluiceKvPair *pair = pairs->pdata[i];
      memmove (pair->key, pair->key + prefix_len, strlen (pair->key + prefix_len) + 1);
    }
}

/* --- get --- */

static void
kv_get_work (gpointer data)
{
  KvJob *job = data;
  g_autofree char *full = g_strconcat (job->prefix, job->key, NULL);

  job->value = job->host->storage->kv_get (job->host->storage_self, full, &job->error);
}

static void
kv_get_done (gpointer data)
{
  KvJob *job = data;

  if (job->got != NULL)
    job->got (job->error != NULL ? NULL : g_steal_pointer (&job->value), job->error,
              job->user_data);
  kv_job_free (job);
}

static void
kv_fail_work (gpointer data)
{
}

void
sluice_host_kv_get (SluiceHost *host, const char *space, const char *key,
                    SluiceKvGetFunc done, gpointer user_data)
{
  KvJob *job = kv_job_new (host, space != NULL ? space : "");

  job->got = done;
  job->user_data = user_data;
  job->key = g_strdup (key);
  if (!kv_space_valid (space, &job->error))
    host_job_run (host, kv_fail_work, kv_get_done, job);
  else
    host_job_run (host, kv_get_work, kv_get_done, job);
}

/* --- scan --- */

static void
kv_scan_work (gpointer data)
{
  KvJob *job = data;
  g_autofree char *full = g_strconcat (job->prefix, job->key, NULL);

  job->pairs = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  if (!job->host->storage->kv_scan (job->host->storage_self, full, job->pairs, &job->error))
    g_clear_pointer (&job->pairs, g_ptr_array_unref);
  else
    kv_strip_prefix (job->pairs, strlen (job->prefix));
}

static void
kv_scan_done (gpointer data)
{
  KvJob *job = data;

  if (job->scanned != NULL)
    job->scanned (job->error != NULL ? NULL : g_steal_pointer (&job->pairs), job->error,
                  job->user_data);
  kv_job_free (job);
}

void
sluice_host_kv_scan (SluiceHost *host, const char *space, const char *prefix,
                     SluiceKvScanFunc done, gpointer user_data)
{
  KvJob *job = kv_job_new (host, space != NULL ? space : "");

  job->scanned = done;
  job->user_data = user_data;
  job->key = g_strdup (prefix != NULL ? prefix : "");
  if (!kv_space_valid (space, &job->error))
    host_job_run (host, kv_fail_work, kv_scan_done, job);
  else
    host_job_run (host, kv_scan_work, kv_scan_done, job);
}

GPtrArray *
sluice_host_kv_scan_sync (SluiceHost *host, const char *space, const char *prefix,
                          GError **error)
{
  g_autofree char *full = NULL;
  g_autoptr (GPtrArray) pairs = NULL;
  g_autofree char *space_prefix = NULL;

  if (!kv_space_valid (space, error))
    return NULL;
  space_prefix = g_strconcat (KV_SPACE_PREFIX, space, "/", NULL);
  full = g_strconcat (space_prefix, prefix != NULL ? prefix : "", NULL);
  pairs = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  if (!host->storage->kv_scan (host->storage_self, full, pairs, error))
    return NULL;
  kv_strip_prefix (pairs, strlen (space_prefix));
  return g_steal_pointer (&pairs);
}

/* --- commit --- */

static void
kv_commit_work (gpointer data)
{
  KvJob *job = data;

  job->host->storage->kv_commit (job->host->storage_self, (SluiceKvOp *) job->ops->data,
                                 job->ops->len, &job->error);
}

static void
kv_commit_done (gpointer data)
{
  KvJob *job = data;

  if (job->done != NULL)
    job->done (job->error, job->user_data);
  kv_job_free (job);
}

void
sluice_host_kv_commit (SluiceHost *host, const char *space, const SluiceKvOp *ops, guint n,
                       SluiceDoneFunc done, gpointer user_data)
{
  KvJob *job = kv_job_new (host, space != NULL ? space : "");

  job->done = done;
  job->user_data = user_data;
  job->ops = g_array_sized_new (FALSE, TRUE, sizeof (SluiceKvOp), n);
  for (guint i = 0; i < n; i++)
    {
      SluiceKvOp op = { ops[i].type, NULL, NULL };

      op.key = g_strconcat (job->prefix, ops[i].key, NULL);
      if (ops[i].type == SLUICE_KV_PUT)
        op.value = ops[i].value != NULL ? g_bytes_ref (ops[i].value) : g_bytes_new (NULL, 0);
      g_array_append_val (job->ops, op);
    }
  if (!kv_space_valid (space, &job->error))
    host_job_run (host, kv_fail_work, kv_commit_done, job);
  else if (n == 0)
    host_job_run (host, kv_fail_work, kv_commit_done, job);
  else
    host_job_run (host, kv_commit_work, kv_commit_done, job);
}
