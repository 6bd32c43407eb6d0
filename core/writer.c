/* Sluice core — the partition writer and group commit.
 *
 * One writer thread owns every log_append, sync and log_trim call. It takes
 * everything queued (from every connection and every worker) in one go,
 * assigns offsets, stamps each batch with its append time, appends per
 * partition, then syncs once for all `batch` partitions it touched. While
 * that fsync runs, new appends queue up and become the next group: one fsync
 * covers every append that arrived while the previous one ran. Acks for
 * `batch` streams are sent only after the sync returned; `none` and
 * `interval` streams are acknowledged once written (`interval` is synced by
 * a timer on this thread).
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#define GROUP_MAX 8192

typedef enum {
  ITEM_APPEND,
  ITEM_TRIM,
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
};

struct _SluiceWriter {
  SluiceHost *host;
  GAsyncQueue *queue;
  GThread *thread;
  GHashTable *interval_dirty;          /* SluicePartition* set */
  gint64 interval_due;                 /* monotonic µs; 0: none */
};

static void
item_free (HostAppend *item)
{
  if (item->partition)
    sluice_stream_unref (item->partition->stream);
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
  for (guint i = 0; i < partitions->len; i++)
    ((SluicePartition *) partitions->pdata[i])->unsynced = FALSE;
  return TRUE;
}

static void
interval_sync (SluiceWriter *w)
{
  g_autoptr (GPtrArray) parts = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  GHashTableIter it;
  gpointer p;

  g_hash_table_iter_init (&it, w->interval_dirty);
  while (g_hash_table_iter_next (&it, &p, NULL))
    g_ptr_array_add (parts, p);
  if (!sync_logs (w, parts, &error))
    g_warning ("interval sync of %u logs failed: %s", parts->len, error->message);
  g_hash_table_remove_all (w->interval_dirty);
  w->interval_due = 0;
}

static void
process_appends (SluiceWriter *w, GPtrArray *items, GPtrArray *done_now,
                 GPtrArray *need_sync_parts, GPtrArray *after_sync)
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
      g_autofree gint64 *assigned = g_new0 (gint64, g->len);

      for (guint j = 0; j < g->len; j++)
        {
          HostAppend *item = g->pdata[j];
          gsize len;
          guint8 *data = g_bytes_unref_to_data (g_steal_pointer (&item->batch), &len);

          GBytes *stamped;

          sluice_batch_stamp (data, len, p->next, now);
          stamped = g_bytes_new_take (data, len);
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
      p->unsynced = TRUE;
      p->pending_visible = p->next;

      if (s->info.durability == SLUICE_DURABILITY_BATCH)
        {
          g_ptr_array_add (need_sync_parts, p);
          for (guint j = 0; j < g->len; j++)
            {
              HostAppend *item = g->pdata[j];
              if (item->flags & SLUICE_APPEND_ACK_WRITTEN)
                {
                  /* Acknowledge now, keep a copy of the result for nothing
                   * else: the item is done. */
                  g_ptr_array_add (done_now, item);
                }
              else
                g_ptr_array_add (after_sync, item);
            }
        }
      else
        {
          host_partition_publish (host, p, p->next);
          if (s->info.durability == SLUICE_DURABILITY_INTERVAL)
            {
              g_hash_table_add (w->interval_dirty, p);
              if (w->interval_due == 0)
                w->interval_due = g_get_monotonic_time () + MAX (s->interval_ms, 1) * 1000;
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

static void
sync_all_unsynced (SluiceWriter *w)
{
  SluiceHost *host = w->host;
  g_autoptr (GPtrArray) parts = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  GHashTableIter it;
  gpointer v;

  g_rw_lock_reader_lock (&host->streams_lock);
  g_hash_table_iter_init (&it, host->streams);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      SluiceStream *s = v;
      for (gint32 i = 0; i < s->n_partitions; i++)
        if (s->partitions[i]->unsynced)
          g_ptr_array_add (parts, s->partitions[i]);
    }
  g_rw_lock_reader_unlock (&host->streams_lock);
  if (!sync_logs (w, parts, &error))
    g_warning ("final sync of %u logs failed: %s", parts->len, error->message);
  for (guint i = 0; i < parts->len; i++)
    {
      SluicePartition *p = parts->pdata[i];
      host_partition_publish (host, p, p->pending_visible);
    }
  g_hash_table_remove_all (w->interval_dirty);
}

static gpointer
writer_thread (gpointer data)
{
  SluiceWriter *w = data;
  SluiceHost *host = w->host;
  gboolean stop = FALSE;

  while (!stop)
    {
      g_autoptr (GPtrArray) group = g_ptr_array_new ();
      g_autoptr (GPtrArray) appends = g_ptr_array_new ();
      g_autoptr (GPtrArray) done_now = g_ptr_array_new ();
      g_autoptr (GPtrArray) after_sync = g_ptr_array_new ();
      g_autoptr (GPtrArray) sync_parts = g_ptr_array_new ();
      HostAppend *item;

      if (w->interval_due)
        {
          gint64 wait = w->interval_due - g_get_monotonic_time ();
          item = wait > 0 ? g_async_queue_timeout_pop (w->queue, wait) : NULL;
          if (!item)
            {
              interval_sync (w);
              continue;
            }
        }
      else
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
              process_appends (w, appends, done_now, sync_parts, after_sync);
              g_ptr_array_set_size (appends, 0);
              process_trim (w, item);
              item_free (item);
              break;
            case ITEM_STOP:
              stop = TRUE;
              item_free (item);
              break;
            }
        }
      process_appends (w, appends, done_now, sync_parts, after_sync);

      /* Written and not waiting for a sync: acknowledge before the fsync. */
      complete_items (done_now);
      g_ptr_array_set_size (done_now, 0);

      if (sync_parts->len > 0)
        {
          g_autoptr (GError) error = NULL;

          if (sync_logs (w, sync_parts, &error))
            {
              sluice_counter_add (host->m_fsync_appends, after_sync->len);
              for (guint i = 0; i < sync_parts->len; i++)
                {
                  SluicePartition *p = sync_parts->pdata[i];
                  host_partition_publish (host, p, p->pending_visible);
                }
            }
          else
            {
              g_warning ("sync of %u logs failed; %u appends are not acknowledged: %s",
                         sync_parts->len, after_sync->len, error->message);
              sluice_counter_add (host->m_append_errors, after_sync->len);
              for (guint i = 0; i < after_sync->len; i++)
                {
                  HostAppend *a = after_sync->pdata[i];
                  a->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_STORAGE,
                                          "storage sync failed: %s", error->message);
                }
            }
          complete_items (after_sync);
          g_ptr_array_set_size (after_sync, 0);
        }
    }

  sync_all_unsynced (w);

  /* Anything queued after the stop marker is refused, never dropped silently. */
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
  w->interval_dirty = g_hash_table_new (NULL, NULL);
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
}

void
host_writer_free (SluiceWriter *w)
{
  if (!w)
    return;
  host_writer_stop (w);
  g_async_queue_unref (w->queue);
  g_hash_table_unref (w->interval_dirty);
  g_free (w);
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
  g_async_queue_push (w->queue, item);
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
