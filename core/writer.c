/* Sluice core — the partition writer and group commit.
 *
 * One writer thread owns every log_append and log_trim call. It takes
 * everything queued (from every connection and every worker) in one go,
 * assigns offsets, stamps each batch with its append time and appends per
 * partition. Appends to `batch` streams then go to the sync thread, which
 * syncs once for everything handed to it while its previous sync ran, and
 * only then acknowledges them and makes them visible to readers: one fsync
 * covers every append that arrived while the previous one ran, and the
 * writer never waits for a disk flush. `none` and `interval` streams are
 * acknowledged once written; `interval` ones are synced by the sync thread's
 * timer.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#define GROUP_MAX 8192

typedef enum {
  ITEM_APPEND,
  ITEM_TRIM,
  ITEM_DELETE,
  ITEM_STOP,
} ItemKind;

struct _HostAppend {
  ItemKind kind;
  SluicePartition *partition;          /* holds a stream ref */
  GBytes *batch;
  gint32 records;
  guint flags;
  SluiceAppendFunc done;
  gpointer user_data;
  GMainContext *context;
  SluiceBatch *stored;
  SluiceAppendResult result;
  GError *error;
  gboolean completed;                  /* acknowledged early (written) */
  /* trim */
  gint64 before_offset;
  gint64 older_than_ms;
  guint64 max_bytes;
  /* delete: the stream (ref) and where the deleting thread waits */
  SluiceStream *stream;
  GAsyncQueue *reply;
};

struct _SluiceWriter {
  SluiceHost *host;
  GAsyncQueue *queue;
  GThread *thread;
  GHashTable *touched;                 /* SluicePartition* appended since start (writer) */
  /* the sync thread */
  GAsyncQueue *sync_queue;             /* SyncJob* */
  GThread *sync_thread;
  GHashTable *interval_dirty;          /* SluicePartition* -> end (sync thread) */
  gint64 interval_due;                 /* monotonic µs; 0: none (sync thread) */
  /* `interval` logs written since the sync thread last took them: the writer
   * adds to the set, and wakes the sync thread only to arm (or shorten) its
   * timer, not once per group. */
  GMutex interval_lock;
  GHashTable *interval_pending;        /* SluicePartition* (stream ref held) */
  gint64 interval_armed_ms;            /* 0: the sync thread has no timer for them */
  /* Deletes wait for their answer, so they are queued only while the
   * writer will still drain the queue. */
  GMutex delete_lock;
  gboolean closed;
};

/* What the writer hands the sync thread after one group. */
typedef struct {
  gboolean stop;
  gboolean interval;                   /* parts of `interval` streams: no items */
  gint64 interval_ms;
  GPtrArray *parts;                    /* SluicePartition* (stream refs held) */
  GArray *ends;                        /* gint64: visible end per part */
  GPtrArray *items;                    /* HostAppend* acknowledged after the sync */
  GAsyncQueue *barrier;                /* answered once the sync thread got here */
} SyncJob;

static void
sync_job_free (SyncJob *job)
{
  for (guint i = 0; job->parts && i < job->parts->len; i++)
    sluice_stream_unref (((SluicePartition *) job->parts->pdata[i])->stream);
  g_clear_pointer (&job->parts, g_ptr_array_unref);
  g_clear_pointer (&job->ends, g_array_unref);
  g_clear_pointer (&job->items, g_ptr_array_unref);
  g_clear_pointer (&job->barrier, g_async_queue_unref);
  g_free (job);
}

static SyncJob *
sync_job_new (void)
{
  SyncJob *job = g_new0 (SyncJob, 1);
  job->parts = g_ptr_array_new ();
  job->ends = g_array_new (FALSE, FALSE, sizeof (gint64));
  job->items = g_ptr_array_new ();
  return job;
}

static void
sync_job_add (SyncJob *job, SluicePartition *p, gint64 end)
{
  sluice_stream_ref (p->stream);
  g_ptr_array_add (job->parts, p);
  g_array_append_val (job->ends, end);
}

static void
item_free (HostAppend *item)
{
  if (item->partition)
    sluice_stream_unref (item->partition->stream);
  g_clear_pointer (&item->stream, sluice_stream_unref);
  g_clear_pointer (&item->reply, g_async_queue_unref);
  g_clear_pointer (&item->batch, g_bytes_unref);
  g_clear_pointer (&item->stored, sluice_batch_free);
  g_clear_error (&item->error);
  g_clear_pointer (&item->context, g_main_context_unref);
  g_free (item);
}

/* --- completions, batched per context --- */

typedef struct {
  GPtrArray *items;
} Completion;

static gboolean
completion_dispatch (gpointer data)
{
  Completion *c = data;

  for (guint i = 0; i < c->items->len; i++)
    {
      HostAppend *item = c->items->pdata[i];
      if (item->done)
        item->done (item->error ? NULL : &item->result, item->error, item->user_data);
    }
  g_ptr_array_unref (c->items);
  g_free (c);
  return G_SOURCE_REMOVE;
}

/* Hand items (HostAppend*, owned) to their contexts' loops. */
static void
complete_items (GPtrArray *items)
{
  g_autoptr (GHashTable) by_ctx = g_hash_table_new (NULL, NULL);
  GHashTableIter it;
  gpointer ctx, list;

  for (guint i = 0; i < items->len; i++)
    {
      HostAppend *item = items->pdata[i];
      GPtrArray *l;

      if (!item->done)
        {
          item_free (item);
          continue;
        }
      l = g_hash_table_lookup (by_ctx, item->context);
      if (!l)
        {
          l = g_ptr_array_new_with_free_func ((GDestroyNotify) item_free);
          g_hash_table_insert (by_ctx, item->context, l);
        }
      g_ptr_array_add (l, item);
    }
  g_hash_table_iter_init (&it, by_ctx);
  while (g_hash_table_iter_next (&it, &ctx, &list))
    {
      Completion *c = g_new0 (Completion, 1);
      c->items = list;
      host_invoke (ctx, completion_dispatch, c);
    }
}

/* --- the writer thread --- */

/* `interval` logs just written: into the sync thread's next round. The sync
 * thread is woken only when it has no timer for them yet, or a shorter
 * interval than its timer's came. */
static void
writer_mark_interval (SluiceWriter *w, SyncJob *written)
{
  gboolean arm;

  g_mutex_lock (&w->interval_lock);
  for (guint i = 0; i < written->parts->len; i++)
    {
      SluicePartition *p = written->parts->pdata[i];

      if (g_hash_table_add (w->interval_pending, p))
        sluice_stream_ref (p->stream);
    }
  arm = w->interval_armed_ms == 0 || written->interval_ms < w->interval_armed_ms;
  if (arm)
    w->interval_armed_ms = written->interval_ms;
  g_mutex_unlock (&w->interval_lock);
  if (arm)
    {
      SyncJob *job = sync_job_new ();

      job->interval = TRUE;
      job->interval_ms = written->interval_ms;
      g_async_queue_push (w->sync_queue, job);
    }
}

static gboolean
sync_logs (SluiceWriter *w, GPtrArray *partitions, GError **error)
{
  SluiceHost *host = w->host;
  g_autoptr (GArray) logs = g_array_new (FALSE, FALSE, sizeof (SluiceLogId));

  if (partitions->len == 0)
    return TRUE;
  for (guint i = 0; i < partitions->len; i++)
    {
      SluicePartition *p = partitions->pdata[i];
      g_array_append_val (logs, p->log);
    }
  if (!host->storage->sync (host->storage_self, (SluiceLogId *) logs->data, logs->len, error))
    return FALSE;
  sluice_counter_add (host->m_fsyncs, 1);
  return TRUE;
}

static void
process_appends (SluiceWriter *w, GPtrArray *items, GPtrArray *done_now, SyncJob *batch_job,
                 SyncJob *interval_job)
{
  SluiceHost *host = w->host;
  gint64 now = host_now_ms ();
  /* Partitions in first-seen order, each with its items in queue order. */
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  g_autoptr (GHashTable) groups = g_hash_table_new_full (NULL, NULL, NULL,
                                                         (GDestroyNotify) g_ptr_array_unref);

  for (guint i = 0; i < items->len; i++)
    {
      HostAppend *item = items->pdata[i];
      GPtrArray *g = g_hash_table_lookup (groups, item->partition);
      if (!g)
        {
          g = g_ptr_array_new ();
          g_hash_table_insert (groups, item->partition, g);
          g_ptr_array_add (order, item->partition);
        }
      g_ptr_array_add (g, item);
    }

  for (guint i = 0; i < order->len; i++)
    {
      SluicePartition *p = order->pdata[i];
      SluiceStream *s = p->stream;
      GPtrArray *g = g_hash_table_lookup (groups, p);
      g_autoptr (GPtrArray) batches = g_ptr_array_new ();
      g_autoptr (GError) error = NULL;
      gint64 start_next = p->next;
      guint64 bytes = 0;
      g_autofree gint64 *assigned = NULL;

      /* Deleted while these were queued: nothing of them is written. */
      if (g_atomic_int_get (&s->deleted))
        {
          for (guint j = 0; j < g->len; j++)
            {
              HostAppend *item = g->pdata[j];
              item->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                                         "stream '%s' was deleted", s->name);
              g_ptr_array_add (done_now, item);
            }
          continue;
        }
      assigned = g_new0 (gint64, g->len);

      for (guint j = 0; j < g->len; j++)
        {
          HostAppend *item = g->pdata[j];
          gsize len;
          guint8 *data;
          GBytes *stamped;

          if (item->flags & SLUICE_APPEND_IN_PLACE)
            {
              /* Handed over by the caller: no copy. */
              stamped = g_steal_pointer (&item->batch);
              data = (guint8 *) g_bytes_get_data (stamped, &len);
              sluice_batch_stamp (data, len, p->next, now);
            }
          else
            {
              data = g_bytes_unref_to_data (g_steal_pointer (&item->batch), &len);
              sluice_batch_stamp (data, len, p->next, now);
              stamped = g_bytes_new_take (data, len);
            }
          item->stored = sluice_batch_new (p->next, item->records, now, stamped);
          g_bytes_unref (stamped);
          item->result.partition = p->id;
          item->result.base_offset = p->next;
          item->result.record_count = item->records;
          item->result.append_time = now;
          p->next += item->records;
          bytes += len;
          g_ptr_array_add (batches, item->stored);
        }

      if (!host->storage->log_append (host->storage_self, &p->log,
                                      (SluiceBatch *const *) batches->pdata, batches->len,
                                      assigned, &error))
        {
          gint64 first = 0, next = start_next;
          g_autoptr (GError) e2 = NULL;

          g_warning ("append to stream '%s' partition %d at offset %" G_GINT64_FORMAT
                     " failed (%u batches not acknowledged): %s",
                     s->name, p->id, start_next, g->len, error->message);
          sluice_counter_add (host->m_append_errors, g->len);
          /* The backend may have written part of the group: its bounds say
           * where the log really ends now. */
          if (host->storage->log_bounds (host->storage_self, &p->log, &first, &next, &e2))
            p->next = next;
          else
            p->next = start_next;
          for (guint j = 0; j < g->len; j++)
            {
              HostAppend *item = g->pdata[j];
              if (!item->error)
                item->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                                           "storage failed: %s", error->message);
              g_ptr_array_add (done_now, item);
            }
          continue;
        }

      /* A remote backend may assign its own offsets; adopt them. */
      for (guint j = 0; j < g->len; j++)
        {
          HostAppend *item = g->pdata[j];
          if (assigned[j] != 0 && assigned[j] != item->result.base_offset)
            {
              item->result.base_offset = assigned[j];
              p->next = assigned[j] + item->records;
            }
        }

      sluice_counter_add (host->m_appends, g->len);
      sluice_counter_add (host->m_append_bytes, bytes);
      if (!g_hash_table_contains (w->touched, p))
        {
          sluice_stream_ref (p->stream);
          g_hash_table_add (w->touched, p);
        }

      if (s->info.durability == SLUICE_DURABILITY_BATCH)
        {
          /* Visible and acknowledged once the sync thread synced it. */
          sync_job_add (batch_job, p, p->next);
          for (guint j = 0; j < g->len; j++)
            {
              HostAppend *item = g->pdata[j];
              if (item->flags & SLUICE_APPEND_ACK_WRITTEN)
                g_ptr_array_add (done_now, item);
              else
                g_ptr_array_add (batch_job->items, item);
            }
        }
      else
        {
          host_partition_publish (host, p, p->next);
          if (s->info.durability == SLUICE_DURABILITY_INTERVAL)
            {
              sync_job_add (interval_job, p, p->next);
              interval_job->interval_ms = interval_job->interval_ms
                                              ? MIN (interval_job->interval_ms, s->interval_ms)
                                              : MAX (s->interval_ms, 1);
            }
          for (guint j = 0; j < g->len; j++)
            g_ptr_array_add (done_now, g->pdata[j]);
        }
    }
}

static void
process_trim (SluiceWriter *w, HostAppend *item)
{
  SluiceHost *host = w->host;
  SluicePartition *p = item->partition;
  g_autoptr (GError) error = NULL;
  gint64 first = 0;

  if (!host->storage->log_trim (host->storage_self, &p->log, item->before_offset,
                                item->older_than_ms, item->max_bytes, &first, &error))
    {
      g_warning ("retention of stream '%s' partition %d failed: %s", p->stream->name, p->id,
                 error->message);
      return;
    }
  g_mutex_lock (&p->lock);
  if (first > p->first)
    {
      g_debug ("retention: stream '%s' partition %d now starts at %" G_GINT64_FORMAT,
               p->stream->name, p->id, first);
      p->first = first;
    }
  g_mutex_unlock (&p->lock);
}

/* Runs in queue order, so appends queued before it are done (or refused)
 * first; the deleting thread waits for the answer on `reply`. */
static void
process_delete (SluiceWriter *w, HostAppend *item)
{
  SluiceHost *host = w->host;
  SluiceStream *s = item->stream;
  SyncJob *barrier = sync_job_new ();
  g_autoptr (GAsyncQueue) reply = g_async_queue_new ();

  /* The stream is already marked deleted, so the sync thread skips its
   * logs from its next round on; wait until that round began, so no sync
   * of these logs runs while they are removed. */
  barrier->barrier = g_async_queue_ref (reply);
  g_async_queue_push (w->sync_queue, barrier);
  g_async_queue_pop (reply);

  for (gint32 i = 0; i < s->n_partitions; i++)
    if (g_hash_table_remove (w->touched, s->partitions[i]))
      sluice_stream_unref (s);
  if (!host->storage->log_delete (host->storage_self, s->name, &item->error))
    g_prefix_error (&item->error, "deleting the logs of stream '%s': ", s->name);
  g_async_queue_push (item->reply, item);
}

/* --- the sync thread --- */

static gpointer
sync_thread (gpointer data)
{
  SluiceWriter *w = data;
  SluiceHost *host = w->host;
  gboolean stop = FALSE;

  while (!stop)
    {
      g_autoptr (GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) sync_job_free);
      g_autoptr (GHashTable) ends = g_hash_table_new_full (NULL, NULL, NULL, g_free);
      g_autoptr (GPtrArray) parts = g_ptr_array_new ();
      g_autoptr (GPtrArray) items = g_ptr_array_new ();
      g_autoptr (GError) error = NULL;
      SyncJob *job;
      gboolean interval_now = FALSE;
      gboolean barrier = FALSE;

      if (w->interval_due)
        {
          gint64 wait = w->interval_due - g_get_monotonic_time ();
          job = wait > 0 ? g_async_queue_timeout_pop (w->sync_queue, wait) : NULL;
        }
      else
        job = g_async_queue_pop (w->sync_queue);
      /* Everything handed over while the previous sync ran: one sync. */
      while (job)
        {
          g_ptr_array_add (jobs, job);
          job = g_async_queue_try_pop (w->sync_queue);
        }

      for (guint i = 0; i < jobs->len; i++)
        {
          job = jobs->pdata[i];
          if (job->stop)
            stop = TRUE;
          if (job->barrier)
            barrier = TRUE;
          if (job->interval)
            {
              gint64 due = g_get_monotonic_time () + job->interval_ms * 1000;

              if (w->interval_due == 0 || due < w->interval_due)
                w->interval_due = due;
            }
          for (guint k = 0; k < job->parts->len; k++)
            {
              SluicePartition *p = job->parts->pdata[k];
              gint64 end = g_array_index (job->ends, gint64, k);

              if (!g_hash_table_contains (ends, p))
                g_ptr_array_add (parts, p);
              g_hash_table_insert (ends, p, g_memdup2 (&end, sizeof end));
            }
          g_ptr_array_extend_and_steal (items, g_steal_pointer (&job->items));
          job->items = NULL;
        }

      if (stop || (w->interval_due && g_get_monotonic_time () >= w->interval_due))
        {
          GHashTableIter it;
          gpointer p;

          /* Take what the writer marked; from now on it arms a new timer. */
          g_mutex_lock (&w->interval_lock);
          g_hash_table_iter_init (&it, w->interval_pending);
          while (g_hash_table_iter_next (&it, &p, NULL))
            {
              if (g_hash_table_contains (w->interval_dirty, p))
                sluice_stream_unref (((SluicePartition *) p)->stream);
              else
                g_hash_table_add (w->interval_dirty, p);
            }
          g_hash_table_remove_all (w->interval_pending);
          w->interval_armed_ms = 0;
          g_mutex_unlock (&w->interval_lock);
          interval_now = g_hash_table_size (w->interval_dirty) > 0;
          if (!interval_now)
            w->interval_due = 0;
          g_hash_table_iter_init (&it, w->interval_dirty);
          while (g_hash_table_iter_next (&it, &p, NULL))
            if (!g_hash_table_contains (ends, p))
              g_ptr_array_add (parts, p);
        }

      /* Deletes wait for this point: every flag set before it is seen by
       * the filter below. */
      if (barrier)
        for (guint i = 0; i < jobs->len; i++)
          {
            job = jobs->pdata[i];
            if (job->barrier)
              g_async_queue_push (job->barrier, job);
          }

      /* Logs of a stream deleted since they were written are gone: they
       * are not synced, and their appends waiting for this sync are not
       * acknowledged. */
      for (guint i = parts->len; i > 0; i--)
        {
          SluicePartition *p = parts->pdata[i - 1];

          if (g_atomic_int_get (&p->stream->deleted))
            {
              g_hash_table_remove (ends, p);
              g_ptr_array_remove_index (parts, i - 1);
            }
        }
      for (guint i = 0; i < items->len; i++)
        {
          HostAppend *a = items->pdata[i];

          if (a->error == NULL && g_atomic_int_get (&a->partition->stream->deleted))
            a->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                                    "stream '%s' was deleted", a->partition->stream->name);
        }

      if (parts->len > 0 && !sync_logs (w, parts, &error))
        {
          g_warning ("sync of %u logs failed; %u appends are not acknowledged: %s",
                     parts->len, items->len, error->message);
          sluice_counter_add (host->m_append_errors, items->len);
          for (guint i = 0; i < items->len; i++)
            {
              HostAppend *a = items->pdata[i];
              if (a->error)
                continue;
              a->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                                      "storage sync failed: %s", error->message);
            }
        }
      else if (parts->len > 0)
        {
          GHashTableIter it;
          gpointer p, end;

          sluice_counter_add (host->m_fsync_appends, items->len);
          g_hash_table_iter_init (&it, ends);
          while (g_hash_table_iter_next (&it, &p, &end))
            host_partition_publish (host, p, *(gint64 *) end);
        }
      if (interval_now && !error)
        {
          GHashTableIter it;
          gpointer p;

          g_hash_table_iter_init (&it, w->interval_dirty);
          while (g_hash_table_iter_next (&it, &p, NULL))
            sluice_stream_unref (((SluicePartition *) p)->stream);
          g_hash_table_remove_all (w->interval_dirty);
          w->interval_due = 0;
        }
      else if (interval_now)
        /* Try again a little later; nothing was lost from the set. */
        w->interval_due = g_get_monotonic_time () + 100 * 1000;
      complete_items (items);
      g_ptr_array_set_size (items, 0);
    }
  return NULL;
}

/* --- the writer thread --- */

static gpointer
writer_thread (gpointer data)
{
  SluiceWriter *w = data;
  gboolean stop = FALSE;

  while (!stop)
    {
      g_autoptr (GPtrArray) group = g_ptr_array_new ();
      g_autoptr (GPtrArray) appends = g_ptr_array_new ();
      g_autoptr (GPtrArray) done_now = g_ptr_array_new ();
      SyncJob *batch_job = sync_job_new ();
      SyncJob *interval_job = sync_job_new ();
      HostAppend *item;

      item = g_async_queue_pop (w->queue);
      g_ptr_array_add (group, item);
      while (group->len < GROUP_MAX && (item = g_async_queue_try_pop (w->queue)))
        g_ptr_array_add (group, item);

      for (guint i = 0; i < group->len; i++)
        {
          item = group->pdata[i];
          switch (item->kind)
            {
            case ITEM_APPEND:
              g_ptr_array_add (appends, item);
              break;
            case ITEM_TRIM:
              /* Appends queued before the trim go first. */
              process_appends (w, appends, done_now, batch_job, interval_job);
              g_ptr_array_set_size (appends, 0);
              process_trim (w, item);
              item_free (item);
              break;
            case ITEM_DELETE:
              process_appends (w, appends, done_now, batch_job, interval_job);
              g_ptr_array_set_size (appends, 0);
              process_delete (w, item);
              break;
            case ITEM_STOP:
              stop = TRUE;
              item_free (item);
              break;
            }
        }
      process_appends (w, appends, done_now, batch_job, interval_job);

      /* Written and not waiting for a sync: acknowledge now. */
      complete_items (done_now);
      if (batch_job->parts->len > 0 || batch_job->items->len > 0)
        g_async_queue_push (w->sync_queue, batch_job);
      else
        sync_job_free (batch_job);
      if (interval_job->parts->len > 0)
        writer_mark_interval (w, interval_job);
      sync_job_free (interval_job);
    }

  /* The last job syncs every log written since start, whatever its policy:
   * a graceful stop keeps everything that was written. */
  {
    SyncJob *last = sync_job_new ();
    GHashTableIter it;
    gpointer p;

    last->stop = TRUE;
    g_hash_table_iter_init (&it, w->touched);
    while (g_hash_table_iter_next (&it, &p, NULL))
      sync_job_add (last, p, ((SluicePartition *) p)->next);
    g_async_queue_push (w->sync_queue, last);
  }

  /* Anything queued after the stop marker is refused, never dropped silently. */
  g_mutex_lock (&w->delete_lock);
  w->closed = TRUE;
  g_mutex_unlock (&w->delete_lock);
  {
    g_autoptr (GPtrArray) late = g_ptr_array_new ();
    HostAppend *item;
    while ((item = g_async_queue_try_pop (w->queue)))
      {
        if (item->kind == ITEM_APPEND)
          {
            item->error = g_error_new_literal (SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN,
                                               "the hub is shutting down");
            g_ptr_array_add (late, item);
          }
        else if (item->kind == ITEM_DELETE)
          {
            item->error = g_error_new_literal (SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN,
                                               "the hub is shutting down");
            g_async_queue_push (item->reply, item);
          }
        else
          item_free (item);
      }
    complete_items (late);
  }
  return NULL;
}

SluiceWriter *
host_writer_new (SluiceHost *host)
{
  SluiceWriter *w = g_new0 (SluiceWriter, 1);

  w->host = host;
  w->queue = g_async_queue_new ();
  w->sync_queue = g_async_queue_new ();
  w->touched = g_hash_table_new (NULL, NULL);
  w->interval_dirty = g_hash_table_new (NULL, NULL);
  w->interval_pending = g_hash_table_new (NULL, NULL);
  g_mutex_init (&w->interval_lock);
  g_mutex_init (&w->delete_lock);
  w->sync_thread = g_thread_new ("sluice-sync", sync_thread, w);
  w->thread = g_thread_new ("sluice-writer", writer_thread, w);
  return w;
}

void
host_writer_stop (SluiceWriter *w)
{
  HostAppend *item;

  if (!w->thread)
    return;
  item = g_new0 (HostAppend, 1);
  item->kind = ITEM_STOP;
  g_async_queue_push (w->queue, item);
  g_thread_join (w->thread);
  w->thread = NULL;
  /* The writer's last job told the sync thread to stop after it. */
  g_thread_join (w->sync_thread);
  w->sync_thread = NULL;
}

void
host_writer_free (SluiceWriter *w)
{
  if (!w)
    return;
  host_writer_stop (w);
  g_async_queue_unref (w->queue);
  g_async_queue_unref (w->sync_queue);
  {
    GHashTableIter it;
    gpointer p;
    g_hash_table_iter_init (&it, w->touched);
    while (g_hash_table_iter_next (&it, &p, NULL))
      sluice_stream_unref (((SluicePartition *) p)->stream);
  }
  g_hash_table_unref (w->touched);
  {
    GHashTableIter it;
    gpointer p;
    g_hash_table_iter_init (&it, w->interval_dirty);
    while (g_hash_table_iter_next (&it, &p, NULL))
      sluice_stream_unref (((SluicePartition *) p)->stream);
  }
  g_hash_table_unref (w->interval_dirty);
  {
    GHashTableIter it;
    gpointer p;
    g_hash_table_iter_init (&it, w->interval_pending);
    while (g_hash_table_iter_next (&it, &p, NULL))
      sluice_stream_unref (((SluicePartition *) p)->stream);
  }
  g_hash_table_unref (w->interval_pending);
  g_mutex_clear (&w->interval_lock);
  g_mutex_clear (&w->delete_lock);
  g_free (w);
}

/* Appends flagged SLUICE_APPEND_MORE wait here, per thread, for the end of
 * their run. */
static GPrivate held_appends = G_PRIVATE_INIT ((GDestroyNotify) g_ptr_array_unref);

void
host_writer_release_held (SluiceWriter *w)
{
  GPtrArray *held = g_private_get (&held_appends);

  if (held == NULL || held->len == 0)
    return;
  g_async_queue_lock (w->queue);
  for (guint i = 0; i < held->len; i++)
    g_async_queue_push_unlocked (w->queue, held->pdata[i]);
  g_async_queue_unlock (w->queue);
  g_ptr_array_set_size (held, 0);
}

void
host_writer_submit_append (SluiceWriter *w, SluicePartition *partition, GBytes *batch,
                           gint32 records, guint flags, SluiceAppendFunc done,
                           gpointer user_data)
{
  HostAppend *item = g_new0 (HostAppend, 1);

  item->kind = ITEM_APPEND;
  item->partition = partition;
  sluice_stream_ref (partition->stream);
  item->batch = batch;
  item->records = records;
  item->flags = flags;
  item->done = done;
  item->user_data = user_data;
  item->context = g_main_context_ref_thread_default ();
  {
    GPtrArray *held = g_private_get (&held_appends);

    if (held == NULL)
      {
        held = g_ptr_array_new ();
        g_private_set (&held_appends, held);
      }
    /* The run goes to the writer at once, under one lock: one wake-up,
     * one group. */
    g_ptr_array_add (held, item);
    if (!(flags & SLUICE_APPEND_MORE))
      host_writer_release_held (w);
  }
}

void
host_writer_submit_trim (SluiceWriter *w, SluicePartition *partition, gint64 before_offset,
                         gint64 older_than_ms, guint64 max_bytes)
{
  HostAppend *item = g_new0 (HostAppend, 1);

  item->kind = ITEM_TRIM;
  item->partition = partition;
  sluice_stream_ref (partition->stream);
  item->before_offset = before_offset;
  item->older_than_ms = older_than_ms;
  item->max_bytes = max_bytes;
  g_async_queue_push (w->queue, item);
}

gboolean
host_writer_delete_stream (SluiceWriter *w, SluiceStream *stream, GError **error)
{
  g_autoptr (GAsyncQueue) reply = g_async_queue_new ();
  HostAppend *item;
  gboolean ok;

  /* Once the writer drained its queue for the last time nobody would
   * answer: refuse instead of waiting forever. */
  g_mutex_lock (&w->delete_lock);
  if (w->closed)
    {
      g_mutex_unlock (&w->delete_lock);
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN,
                           "the hub is shutting down");
      return FALSE;
    }
  item = g_new0 (HostAppend, 1);
  item->kind = ITEM_DELETE;
  item->stream = sluice_stream_ref (stream);
  item->reply = g_async_queue_ref (reply);
  g_async_queue_push (w->queue, item);
  g_mutex_unlock (&w->delete_lock);
  item = g_async_queue_pop (reply);
  ok = item->error == NULL;
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&item->error));
  item_free (item);
  return ok;
}
