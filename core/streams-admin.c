/* Sluice core — creating and deleting streams at run time (Kafka
 * CreateTopics / DeleteTopics, service APIs).
 *
 * A created stream is kept in the KV under `streams/NAME` (the record
 * host_streams_open() reads at every start), so it survives restarts. Both
 * operations block on storage, so they run on the job pool; one mutex
 * serialises them, so a create of a name that is being deleted waits until
 * the old logs are gone instead of reusing them half-deleted.
 *
 * Deleting: the stream leaves the table first (new appends and reads get
 * NOT_FOUND), is marked deleted (appends already queued are refused by the
 * writer, appends written but waiting for their sync are not acknowledged,
 * waiting readers are answered), then the writer deletes its logs after
 * everything queued before, and last the KV loses `streams/NAME` and the
 * stream's consumer groups (`groups/NAME/...`) in one commit.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#define STREAM_KV_PREFIX "streams/"
#define MAX_PARTITIONS 10000

/* The hub's defaults for fields left at 0 (CONFIG.md `[stream.*]`). */
#define DEFAULT_PARTITIONS 4

static GMutex admin_lock;

typedef struct {
  SluiceHost *host;
  char *stream;
  SluiceStreamInfo info;
  SluiceDoneFunc done;
  gpointer user_data;
  GError *error;
} AdminJob;

static void
admin_job_free (AdminJob *job)
{
  g_free (job->stream);
  g_clear_error (&job->error);
  g_free (job);
}

static void
admin_done (gpointer data)
{
  AdminJob *job = data;

  if (job->done)
    job->done (job->error, job->user_data);
  admin_job_free (job);
}

static gboolean
admin_fail_deliver (gpointer data)
{
  admin_done (data);
  return G_SOURCE_REMOVE;
}

/* Answer on the caller's context, never from inside the call. */
static void
admin_fail (AdminJob *job)
{
  host_invoke (g_main_context_get_thread_default (), admin_fail_deliver, job);
}

static gboolean
is_configured (SluiceHost *host, const char *stream)
{
  for (guint i = 0; i < host->config->streams->len; i++)
    {
      const SluiceConfigStream *c = host->config->streams->pdata[i];

      if (g_str_equal (c->name, stream))
        return TRUE;
    }
  return FALSE;
}

static AdminJob *
admin_job_new (SluiceHost *host, const char *stream, SluiceDoneFunc done, gpointer user_data)
{
  AdminJob *job = g_new0 (AdminJob, 1);

  job->host = host;
  job->stream = g_strdup (stream);
  job->done = done;
  job->user_data = user_data;
  return job;
}

/* Common refusals, checked on the calling thread. */
static gboolean
admin_precheck (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                GError **error)
{
  if (g_atomic_int_get (&host->stopping) || host->writer == NULL)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN,
                           "the hub is shutting down");
      return FALSE;
    }
  if (stream == NULL || !sluice_stream_name_is_valid (stream))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "'%s' is not a valid stream name (1-255 of [A-Za-z0-9._-], "
                   "not reserved, not starting with '$' or '_')",
                   stream ? stream : "(null)");
      return FALSE;
    }
  return sluice_host_authorize (host, principal, SLUICE_ACTION_MANAGE, stream, error);
}

/* --- create --- */

static void
create_work (gpointer data)
{
  AdminJob *job = data;
  SluiceHost *host = job->host;
  SluiceStream *s = NULL;
  g_autofree char *json = NULL;
  g_autofree char *key = NULL;
  g_autoptr (GBytes) value = NULL;
  SluiceKvOp op = { SLUICE_KV_PUT, NULL, NULL };
  gboolean exists;

  g_mutex_lock (&admin_lock);
  g_rw_lock_reader_lock (&host->streams_lock);
  exists = g_hash_table_contains (host->streams, job->stream);
  g_rw_lock_reader_unlock (&host->streams_lock);
  if (exists)
    {
      g_set_error (&job->error, SLUICE_ERROR, SLUICE_ERROR_EXISTS,
                   "stream '%s' already exists", job->stream);
      goto out;
    }

  s = host_stream_new (job->stream);
  if (job->info.partitions > 0)
    s->n_partitions = job->info.partitions;
  if (job->info.durability != SLUICE_DURABILITY_NONE)
    s->info.durability = job->info.durability;
  if (job->info.retention_time_ms > 0)
    s->info.retention_time_ms = job->info.retention_time_ms;
  if (job->info.retention_size > 0)
    s->info.retention_size = job->info.retention_size;
  if (job->info.max_message > 0)
    s->info.max_message = job->info.max_message;

  /* Logs first, then the record: a crash in between leaves empty logs
   * that nobody names (harmless), never a record without logs. */
  if (!host_stream_open_partitions (host, s, &job->error))
    {
      g_autoptr (GError) cleanup = NULL;

      if (!host->storage->log_delete (host->storage_self, s->name, &cleanup))
        g_warning ("stream '%s': removing the logs of a failed create: %s", s->name,
                   cleanup->message);
      goto out;
    }
  json = host_stream_to_json (s);
  key = g_strconcat (STREAM_KV_PREFIX, s->name, NULL);
  value = g_bytes_new (json, strlen (json));
  op.key = key;
  op.value = value;
  if (!host->storage->kv_commit (host->storage_self, &op, 1, &job->error))
    {
      g_autoptr (GError) cleanup = NULL;

      g_prefix_error (&job->error, "stream '%s': storing its settings: ", s->name);
      if (!host->storage->log_delete (host->storage_self, s->name, &cleanup))
        g_warning ("stream '%s': removing the logs of a failed create: %s", s->name,
                   cleanup->message);
      goto out;
    }

  g_rw_lock_writer_lock (&host->streams_lock);
  /* The table owns the ref; its key is the stream's own name. */
  g_hash_table_insert (host->streams, s->name, s);
  s = NULL;
  g_rw_lock_writer_unlock (&host->streams_lock);
  g_message ("stream '%s' created: %s", job->stream, json);

out:
  g_mutex_unlock (&admin_lock);
  if (s != NULL)
    sluice_stream_unref (s);
}

void
sluice_host_stream_create (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                           const SluiceStreamInfo *info, SluiceDoneFunc done,
                           gpointer user_data)
{
  AdminJob *job = admin_job_new (host, stream, done, user_data);

  g_return_if_fail (info != NULL);

  if (!admin_precheck (host, principal, stream, &job->error))
    {
      admin_fail (job);
      return;
    }
  /* 0 takes the default; a negative count or an absurd one is refused. */
  if (info->partitions < 0 || info->partitions > MAX_PARTITIONS)
    {
      g_set_error (&job->error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "stream '%s': %d partitions; a stream has 1 to %d", stream,
                   info->partitions, MAX_PARTITIONS);
      admin_fail (job);
      return;
    }
  if ((guint) info->durability > SLUICE_DURABILITY_BATCH)
    {
      g_set_error (&job->error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "stream '%s': unknown durability %d", stream, (int) info->durability);
      admin_fail (job);
      return;
    }
  if (info->retention_time_ms < 0)
    {
      g_set_error (&job->error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "stream '%s': negative retention time", stream);
      admin_fail (job);
      return;
    }
  job->info = *info;
  if (job->info.partitions == 0)
    job->info.partitions = DEFAULT_PARTITIONS;
  host_job_run (host, create_work, admin_done, job);
}

/* --- delete --- */

static void
delete_work (gpointer data)
{
  AdminJob *job = data;
  SluiceHost *host = job->host;
  SluiceStream *s;
  g_autofree char *groups_prefix = NULL;
  g_autoptr (GPtrArray) groups = NULL;
  g_autoptr (GArray) ops = NULL;
  g_autofree char *key = NULL;

  g_mutex_lock (&admin_lock);
  g_rw_lock_writer_lock (&host->streams_lock);
  s = g_hash_table_lookup (host->streams, job->stream);
  if (s != NULL)
    {
      sluice_stream_ref (s);
      g_hash_table_remove (host->streams, job->stream);
    }
  g_rw_lock_writer_unlock (&host->streams_lock);
  if (s == NULL)
    {
      g_set_error (&job->error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                   "stream '%s' does not exist", job->stream);
      goto out;
    }

  g_atomic_int_set (&s->deleted, TRUE);
  for (gint32 i = 0; i < s->n_partitions; i++)
    host_partition_drop_waiters (host, s->partitions[i]);

  if (!host_writer_delete_stream (host->writer, s, &job->error))
    {
      /* The stream is out of the table and its logs may be half gone:
       * keeping the record lets the next start open it again. */
      g_warning ("stream '%s': delete failed: %s", job->stream, job->error->message);
      goto out;
    }

  /* The record and the consumer groups go in one commit. */
  groups_prefix = g_strdup_printf ("groups/%s/", job->stream);
  groups = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  if (!host->storage->kv_scan (host->storage_self, groups_prefix, groups, &job->error))
    {
      g_prefix_error (&job->error, "stream '%s': listing its consumer groups: ", job->stream);
      goto out;
    }
  ops = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));
  for (guint i = 0; i < groups->len; i++)
    {
      SluiceKvPair *kv = groups->pdata[i];
      SluiceKvOp op = { SLUICE_KV_DELETE, kv->key, NULL };

      g_array_append_val (ops, op);
    }
  key = g_strconcat (STREAM_KV_PREFIX, job->stream, NULL);
  {
    SluiceKvOp op = { SLUICE_KV_DELETE, key, NULL };
    g_array_append_val (ops, op);
  }
  if (!host->storage->kv_commit (host->storage_self, (SluiceKvOp *) ops->data, ops->len,
                                 &job->error))
    {
      g_prefix_error (&job->error, "stream '%s': removing its record: ", job->stream);
      goto out;
    }
  g_message ("stream '%s' deleted (%u consumer group offsets removed)", job->stream,
             groups->len);

out:
  g_mutex_unlock (&admin_lock);
  if (s != NULL)
    sluice_stream_unref (s);
}

void
sluice_host_stream_delete (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                           SluiceDoneFunc done, gpointer user_data)
{
  AdminJob *job = admin_job_new (host, stream, done, user_data);

  if (!admin_precheck (host, principal, stream, &job->error))
    {
      admin_fail (job);
      return;
    }
  if (is_configured (host, stream))
    {
      g_set_error (&job->error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "stream '%s' is configured in %s ([stream.%s]); it would come back at "
                   "the next start: remove the section instead",
                   stream, host->config->path, stream);
      admin_fail (job);
      return;
    }
  host_job_run (host, delete_work, admin_done, job);
}
