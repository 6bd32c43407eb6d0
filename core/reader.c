/* Sluice core — reading partitions: storage reads on the pool, long polls
 * woken by appends (no polling), jobs and cross-thread completions.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

/* --- generic jobs: work on the pool, completion on the caller's context --- */

typedef struct {
  HostJobFunc work;
  HostJobFunc done;
  gpointer data;
  GMainContext *context;
} HostJob;

static gboolean
job_done (gpointer data)
{
  HostJob *job = data;

  if (job->done)
    job->done (job->data);
  g_main_context_unref (job->context);
  g_free (job);
  return G_SOURCE_REMOVE;
}

static void
pool_run (gpointer data, gpointer user_data)
{
  HostJob *job = data;

  job->work (job->data);
  host_invoke (job->context, job_done, job);
}

void
host_job_run (SluiceHost *host, HostJobFunc work, HostJobFunc done, gpointer data)
{
  g_autoptr (GMainContext) context = g_main_context_ref_thread_default ();
  host_job_run_on (host, context, work, done, data);
}

void
host_job_run_on (SluiceHost *host, GMainContext *context, HostJobFunc work, HostJobFunc done,
                 gpointer data)
{
  HostJob *job = g_new0 (HostJob, 1);

  job->work = work;
  job->done = done;
  job->data = data;
  job->context = g_main_context_ref (context);
  if (!host->pool)
    host->pool = g_thread_pool_new (pool_run, NULL, 4, FALSE, NULL);
  g_thread_pool_push (host->pool, job, NULL);
}

void
host_invoke (GMainContext *context, GSourceFunc func, gpointer data)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, "sluice-invoke");
  g_source_attach (source, context);
  g_source_unref (source);
}

/* --- reads --- */

enum { WAITING = 0, FIRED = 1 };

struct _SluiceWaiter {
  gint refcount;
  gint state;                          /* WAITING, FIRED (atomic) */
  SluiceHost *host;
  SluicePartition *partition;          /* holds a stream ref */
  gint64 from;
  gsize max_bytes;
  SluiceReadFunc done;
  gpointer user_data;
  GMainContext *context;
  GCancellable *cancellable;
  gulong cancel_id;
  GSource *timer;
  /* result */
  SluiceReadResult *result;
  GError *error;
};

static SluiceWaiter *
waiter_ref (SluiceWaiter *w)
{
  g_atomic_int_inc (&w->refcount);
  return w;
}

static void
waiter_unref (SluiceWaiter *w)
{
  if (!g_atomic_int_dec_and_test (&w->refcount))
    return;
  g_warn_if_fail (w->timer == NULL);
  sluice_stream_unref (w->partition->stream);
  g_clear_object (&w->cancellable);
  g_main_context_unref (w->context);
  if (w->result)
    sluice_read_result_free (w->result);
  g_clear_error (&w->error);
  g_free (w);
}

void
sluice_read_result_free (SluiceReadResult *result)
{
  if (!result)
    return;
  g_ptr_array_unref (result->batches);
  g_free (result);
}

static SluiceReadResult *
read_result_new (void)
{
  SluiceReadResult *r = g_new0 (SluiceReadResult, 1);
  r->batches = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
  return r;
}

static gboolean
waiter_deliver (gpointer data)
{
  SluiceWaiter *w = data;

  /* The cancellable must be disconnected outside its own handler. */
  if (w->cancel_id)
    {
      g_cancellable_disconnect (w->cancellable, w->cancel_id);
      w->cancel_id = 0;
    }
  if (w->timer)
    {
      /* Drops the timer's ref; the flow's ref is released below. */
      GSource *timer = g_steal_pointer (&w->timer);
      g_source_destroy (timer);
      g_source_unref (timer);
    }
  if (w->error)
    w->done (NULL, w->error, w->user_data);
  else
    w->done (g_steal_pointer (&w->result), NULL, w->user_data);
  waiter_unref (w);
  return G_SOURCE_REMOVE;
}

static void
read_work (gpointer data)
{
  SluiceWaiter *w = data;
  SluiceHost *host = w->host;
  SluicePartition *p = w->partition;
  g_autoptr (GPtrArray) batches = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
  gint64 first, visible;

  g_mutex_lock (&p->lock);
  first = p->first;
  visible = p->visible;
  g_mutex_unlock (&p->lock);

  w->result = read_result_new ();
  w->result->first = first;
  w->result->next = visible;
  if (w->from >= visible)
    return;
  if (!host->storage->log_read (host->storage_self, &p->log, w->from, w->max_bytes, batches,
                                &w->error))
    {
      g_clear_pointer (&w->result, sluice_read_result_free);
      if (w->error->domain == SLUICE_ERROR && w->error->code == SLUICE_ERROR_CORRUPT)
        {
          g_warning ("read of stream '%s' partition %d at offset %" G_GINT64_FORMAT ": %s",
                     p->stream->name, p->id, w->from, w->error->message);
          sluice_counter_add (sluice_host_counter (host, "sluice_storage_corrupt_batches_total",
                                                   NULL), 1);
        }
      return;
    }
  sluice_counter_add (host->m_reads, 1);
  /* Only what met its durability policy is visible. */
  for (guint i = 0; i < batches->len; i++)
    {
      SluiceBatch *b = batches->pdata[i];
      if (b->base_offset >= visible)
        break;
      g_ptr_array_add (w->result->batches, g_steal_pointer (&batches->pdata[i]));
    }
}

static void
read_done (gpointer data)
{
  waiter_deliver (data);
}

/* Called with the waiter already FIRED by whoever won the race, which may
 * be the writer or sync thread: the answer goes to the reader's context. */
static void
waiter_start_read (SluiceWaiter *w)
{
  host_job_run_on (w->host, w->context, read_work, read_done, w);
}

static void
waiter_remove (SluiceWaiter *w)
{
  SluicePartition *p = w->partition;
  GList *link;

  g_mutex_lock (&p->lock);
  link = g_list_find (p->waiters, w);
  if (link)
    {
      p->waiters = g_list_delete_link (p->waiters, link);
      waiter_unref (w);
    }
  g_mutex_unlock (&p->lock);
}

static gboolean
waiter_timeout (gpointer data)
{
  SluiceWaiter *w = data;

  if (g_atomic_int_compare_and_exchange (&w->state, WAITING, FIRED))
    {
      waiter_remove (w);
      /* Nothing arrived: answer with what there is (nothing, usually). */
      waiter_start_read (w);
    }
  return G_SOURCE_REMOVE;
}

static void
waiter_cancelled (GCancellable *cancellable, gpointer data)
{
  SluiceWaiter *w = data;

  if (g_atomic_int_compare_and_exchange (&w->state, WAITING, FIRED))
    {
      waiter_remove (w);
      w->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "read cancelled");
      host_invoke (w->context, waiter_deliver, w);
    }
}

void
host_partition_publish (SluiceHost *host, SluicePartition *p, gint64 visible)
{
  GList *waiters = NULL;

  g_mutex_lock (&p->lock);
  if (visible > p->visible)
    {
      p->visible = visible;
      waiters = g_steal_pointer (&p->waiters);
    }
  g_mutex_unlock (&p->lock);

  for (GList *l = waiters; l; l = l->next)
    {
      SluiceWaiter *w = l->data;
      if (g_atomic_int_compare_and_exchange (&w->state, WAITING, FIRED))
        waiter_start_read (w);
      waiter_unref (w); /* the list's ref */
    }
  g_list_free (waiters);
}

void
host_partition_drop_waiters (SluiceHost *host, SluicePartition *p)
{
  GList *waiters;

  g_mutex_lock (&p->lock);
  waiters = g_steal_pointer (&p->waiters);
  g_mutex_unlock (&p->lock);

  for (GList *l = waiters; l; l = l->next)
    {
      SluiceWaiter *w = l->data;
      if (g_atomic_int_compare_and_exchange (&w->state, WAITING, FIRED))
        {
          w->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                                  "stream '%s' was deleted", p->stream->name);
          host_invoke (w->context, waiter_deliver, w);
        }
      waiter_unref (w); /* the list's ref */
    }
  g_list_free (waiters);
}

typedef struct {
  SluiceReadFunc done;
  gpointer user_data;
  GError *error;
} ReadError;

static gboolean
read_error_deliver (gpointer data)
{
  ReadError *e = data;

  e->done (NULL, e->error, e->user_data);
  g_error_free (e->error);
  g_free (e);
  return G_SOURCE_REMOVE;
}

void
sluice_host_read (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                  gint32 partition, gint64 from_offset, gsize max_bytes, guint wait_ms,
                  GCancellable *cancellable, SluiceReadFunc done, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  SluiceStream *s = NULL;
  SluicePartition *p = NULL;
  SluiceWaiter *w;
  gboolean wait = FALSE;

  g_return_if_fail (done != NULL);

  if (!sluice_host_authorize (host, principal, SLUICE_ACTION_LISTEN, stream, &error)
      || !(s = host_stream_lookup (host, stream, &error))
      || !(p = host_stream_partition (s, partition, &error)))
    {
      ReadError *e = g_new0 (ReadError, 1);
      e->done = done;
      e->user_data = user_data;
      e->error = g_steal_pointer (&error);
      if (s)
        sluice_stream_unref (s);
      host_invoke (g_main_context_get_thread_default (), read_error_deliver, e);
      return;
    }

  w = g_new0 (SluiceWaiter, 1);
  w->refcount = 1;
  w->host = host;
  w->partition = p; /* the stream ref from the lookup moves here */
  w->from = from_offset;
  w->max_bytes = max_bytes ? max_bytes : 1 << 20;
  w->done = done;
  w->user_data = user_data;
  w->context = g_main_context_ref_thread_default ();
  if (cancellable)
    w->cancellable = g_object_ref (cancellable);

  g_mutex_lock (&p->lock);
  /* Checked under the partition lock: a delete drops the waiters under it
   * after setting the flag, so no read can wait on a deleted stream. */
  if (g_atomic_int_get (&s->deleted))
    w->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                            "stream '%s' was deleted", stream);
  else if (from_offset < p->first || from_offset > p->visible)
    {
      w->error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_OFFSET_OUT_OF_RANGE,
                              "offset %" G_GINT64_FORMAT " is out of range for stream '%s' "
                              "partition %d (first %" G_GINT64_FORMAT ", next %" G_GINT64_FORMAT ")",
                              from_offset, stream, partition, p->first, p->visible);
    }
  else if (from_offset == p->visible && wait_ms > 0)
    {
      wait = TRUE;
      p->waiters = g_list_prepend (p->waiters, waiter_ref (w));
    }
  g_mutex_unlock (&p->lock);

  if (w->error)
    {
      w->state = FIRED;
      host_invoke (w->context, waiter_deliver, w);
      return;
    }
  if (!wait)
    {
      w->state = FIRED;
      waiter_start_read (w);
      return;
    }
  w->timer = g_timeout_source_new (wait_ms);
  g_source_set_callback (w->timer, waiter_timeout, waiter_ref (w), (GDestroyNotify) waiter_unref);
  g_source_attach (w->timer, w->context);
  if (w->cancellable)
    w->cancel_id = g_cancellable_connect (w->cancellable, G_CALLBACK (waiter_cancelled), w,
                                          NULL);
}
