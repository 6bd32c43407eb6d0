/* Sluice core — the I/O worker pool.
 *
 * Each worker is a thread running its own GMainContext (thread default)
 * whose sockets are all watched by one epoll source. Everything that touches
 * a worker's connections runs on that worker; other threads reach it with
 * g_main_context_invoke.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io-internal.h"

#include <errno.h>
#include <sys/resource.h>

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000

/* Sockets beyond the default soft limit (often 1024) are the point of the
 * epoll design; the hard limit is what the administrator allows. */
static void
raise_nofile_limit (void)
{
  struct rlimit rl;
  rlim_t old;

  if (getrlimit (RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  old = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &rl) < 0)
    {
      int saved = errno;
      g_message ("cannot raise the open file limit from %lu to %lu: %s",
                 (unsigned long) old, (unsigned long) rl.rlim_max, g_strerror (saved));
      return;
    }
  g_debug ("raised the open file limit from %lu to %lu", (unsigned long) old,
           (unsigned long) rl.rlim_max);
}

static gpointer
worker_thread (gpointer data)
{
  SluiceIoWorker *worker = data;

  g_main_context_push_thread_default (worker->context);
  g_main_loop_run (worker->loop);
  g_main_context_pop_thread_default (worker->context);
  return NULL;
}

static void
worker_free (SluiceIoWorker *worker)
{
  SluiceConnection *conn;

  /* Connections deferred after the last dispatch only hold a ref here. */
  while ((conn = g_queue_pop_head (&worker->dirty)) != NULL)
    sluice_connection_unref (conn);
  if (worker->epoll != NULL)
    {
      g_source_destroy (worker->epoll);
      g_source_unref (worker->epoll);
    }
  g_clear_pointer (&worker->loop, g_main_loop_unref);
  g_clear_pointer (&worker->context, g_main_context_unref);
  g_free (worker->scratch);
  g_free (worker->tls_out);
  g_free (worker);
}

static void
abort_all (SluiceIoWorker *worker, gpointer user_data)
{
  sluice_io_worker_close_connections (worker, NULL, TRUE);
}

static void
stop_workers (SluiceIo *io)
{
  for (guint i = 0; i < io->n_workers; i++)
    if (io->workers[i] != NULL && io->workers[i]->thread != NULL)
      g_main_loop_quit (io->workers[i]->loop);
  for (guint i = 0; i < io->n_workers; i++)
    if (io->workers[i] != NULL && io->workers[i]->thread != NULL)
      {
        g_thread_join (io->workers[i]->thread);
        io->workers[i]->thread = NULL;
      }
}

static void
io_destroy (SluiceIo *io)
{
  for (guint i = 0; i < io->n_workers; i++)
    if (io->workers[i] != NULL)
      worker_free (io->workers[i]);
  g_free (io->workers);
  g_clear_pointer (&io->protocols, g_hash_table_unref);
  g_clear_pointer (&io->listeners, g_ptr_array_unref);
  g_mutex_clear (&io->lock);
  g_cond_clear (&io->gone_cond);
  g_free (io);
}

SluiceIo *
sluice_io_new (guint n_workers, GError **error)
{
  SluiceIo *io;

  if (n_workers == 0)
    n_workers = MAX (1, g_get_num_processors ());
  raise_nofile_limit ();

  io = g_new0 (SluiceIo, 1);
  g_mutex_init (&io->lock);
  g_cond_init (&io->gone_cond);
  io->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_listener_unref);
  io->protocols = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  io->handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
  io->n_workers = n_workers;
  io->workers = g_new0 (SluiceIoWorker *, n_workers);

  for (guint i = 0; i < n_workers; i++)
    {
      SluiceIoWorker *worker = g_new0 (SluiceIoWorker, 1);

      io->workers[i] = worker;
      worker->io = io;
      worker->index = i;
      worker->context = g_main_context_new ();
      worker->loop = g_main_loop_new (worker->context, FALSE);
      g_queue_init (&worker->connections);
      g_queue_init (&worker->dirty);
      worker->scratch = g_malloc (SLUICE_IO_READ_BUDGET);
      worker->tls_out = g_malloc (SLUICE_IO_TLS_RECORD);
      worker->epoll = sluice_epoll_source_new (error);
      if (worker->epoll == NULL)
        {
          io_destroy (io);
          return NULL;
        }
      sluice_epoll_source_set_post_dispatch (worker->epoll, sluice_io_worker_post_dispatch,
                                             worker);
      g_source_attach (worker->epoll, worker->context);
    }

  for (guint i = 0; i < n_workers; i++)
    {
      g_autofree char *name = g_strdup_printf ("sluice-io-%u", i);

      io->workers[i]->thread = g_thread_try_new (name, worker_thread, io->workers[i], error);
      if (io->workers[i]->thread == NULL)
        {
          g_prefix_error (error, "cannot start I/O worker %u: ", i);
          stop_workers (io);
          io_destroy (io);
          return NULL;
        }
    }
  g_debug ("started %u I/O workers", n_workers);
  return io;
}

guint
sluice_io_get_worker_count (SluiceIo *io)
{
  return io->n_workers;
}

GMainContext *
sluice_io_get_context (SluiceIo *io, guint i)
{
  g_return_val_if_fail (i < io->n_workers, NULL);
  return io->workers[i]->context;
}

void
sluice_io_set_handshake_timeout (SluiceIo *io, guint timeout_ms)
{
  io->handshake_timeout_ms = timeout_ms;
}

typedef struct {
  SluiceIoWorkerFunc func;
  gpointer user_data;
  GMutex lock;
  GCond cond;
  guint remaining;
} RunAll;

typedef struct {
  RunAll *all;
  SluiceIoWorker *worker;
} RunOne;

static gboolean
run_one (gpointer data)
{
  RunOne *one = data;
  RunAll *all = one->all;

  all->func (one->worker, all->user_data);
  g_mutex_lock (&all->lock);
  all->remaining--;
  g_cond_signal (&all->cond);
  g_mutex_unlock (&all->lock);
  return G_SOURCE_REMOVE;
}

void
sluice_io_run_on_workers (SluiceIo *io, SluiceIoWorkerFunc func, gpointer user_data)
{
  /* High priority: shutdown steps should not queue behind traffic. */
  sluice_io_run_on_workers_full (io, G_PRIORITY_HIGH, func, user_data);
}

void
sluice_io_run_on_workers_full (SluiceIo *io, gint priority, SluiceIoWorkerFunc func,
                               gpointer user_data)
{
  RunAll all = { .func = func, .user_data = user_data, .remaining = io->n_workers };
  g_autofree RunOne *ones = g_new0 (RunOne, io->n_workers);

  g_mutex_init (&all.lock);
  g_cond_init (&all.cond);
  for (guint i = 0; i < io->n_workers; i++)
    {
      ones[i].all = &all;
      ones[i].worker = io->workers[i];
      g_main_context_invoke_full (io->workers[i]->context, priority, run_one, &ones[i], NULL);
    }
  g_mutex_lock (&all.lock);
  while (all.remaining > 0)
    g_cond_wait (&all.cond, &all.lock);
  g_mutex_unlock (&all.lock);
  g_mutex_clear (&all.lock);
  g_cond_clear (&all.cond);
}

void
sluice_io_notify_gone (SluiceIo *io)
{
  g_mutex_lock (&io->lock);
  g_cond_broadcast (&io->gone_cond);
  g_mutex_unlock (&io->lock);
}

typedef struct {
  void (*func) (guint index, gpointer user_data);
  gpointer user_data;
} ByIndex;

static void
run_by_index (SluiceIoWorker *worker, gpointer data)
{
  ByIndex *b = data;
  b->func (worker->index, b->user_data);
}

void
sluice_io_run_on_workers_indexed (SluiceIo *io, gint priority,
                                  void (*func) (guint index, gpointer user_data),
                                  gpointer user_data)
{
  ByIndex b = { func, user_data };
  sluice_io_run_on_workers_full (io, priority, run_by_index, &b);
}

guint
sluice_io_count_connections (SluiceIo *io)
{
  return (guint) g_atomic_int_get (&io->n_connections);
}

/* Called with io->lock held. */
static guint
count_locked (SluiceIo *io, gpointer transport)
{
  guint n = 0;

  if (transport == NULL)
    return (guint) g_atomic_int_get (&io->n_connections);
  for (guint i = 0; i < io->listeners->len; i++)
    {
      SluiceListener *listener = g_ptr_array_index (io->listeners, i);

      if (listener->transport == transport)
        n += (guint) g_atomic_int_get (&listener->n_connections);
    }
  return n;
}

typedef struct {
  gpointer transport;
  gboolean abort;
} CloseArgs;

static void
close_on_worker (SluiceIoWorker *worker, gpointer user_data)
{
  CloseArgs *args = user_data;

  sluice_io_worker_close_connections (worker, args->transport, args->abort);
}

void
sluice_io_close_connections (SluiceIo *io, gpointer transport, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  CloseArgs args = { transport, FALSE };
  guint left;

  sluice_io_run_on_workers (io, close_on_worker, &args);

  g_mutex_lock (&io->lock);
  while ((left = count_locked (io, transport)) > 0)
    if (!g_cond_wait_until (&io->gone_cond, &io->lock, deadline))
      {
        left = count_locked (io, transport);
        break;
      }
  g_mutex_unlock (&io->lock);

  if (left > 0)
    {
      /* Past the deadline the transport must still be able to rely on
       * connection_closed having been called for all of them. */
      g_message ("%u connections still open after %u ms; aborting them", left, timeout_ms);
      args.abort = TRUE;
      sluice_io_run_on_workers (io, close_on_worker, &args);
    }
}

void
sluice_io_free (SluiceIo *io)
{
  if (io == NULL)
    return;
  sluice_io_close_listeners (io);
  sluice_io_run_on_workers (io, abort_all, NULL);
  stop_workers (io);
  io_destroy (io);
}
