/* Sluice core — a GSource that watches many fds through one epoll fd.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"
#include "epoll-source.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>
#include <gio/gio.h>

/* Events fetched per dispatch: enough to amortize the syscall, small enough
 * that other sources of the context (timeouts, invokes) are not starved. */
#define MAX_EVENTS 256

typedef struct {
  GSource source;
  int epfd;
  gpointer tag;
  struct epoll_event events[MAX_EVENTS];
  int n_events;                 /* fetched in the running dispatch */
  int cursor;                   /* the event being handled */
  gboolean in_dispatch;
  gboolean post_requested;
  void (*post_func) (gpointer user_data);
  gpointer post_data;
} SluiceEpollSource;

void
sluice_epoll_watch_init (SluiceEpollWatch *watch, int fd, SluiceEpollFunc func,
                         gpointer user_data)
{
  memset (watch, 0, sizeof *watch);
  watch->fd = fd;
  watch->func = func;
  watch->user_data = user_data;
}

static gboolean
epoll_source_prepare (GSource *source, gint *timeout)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  *timeout = -1;
  return self->post_requested;
}

static gboolean
epoll_source_check (GSource *source)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  return self->post_requested
         || (g_source_query_unix_fd (source, self->tag) & G_IO_IN) != 0;
}

static gboolean
epoll_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;
  int n = 0;

  self->in_dispatch = TRUE;
  if (g_source_query_unix_fd (source, self->tag) & G_IO_IN)
    {
      do
        n = epoll_wait (self->epfd, self->events, MAX_EVENTS, 0);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        {
          int saved = errno;
          g_warning ("epoll_wait failed: %s", g_strerror (saved));
          n = 0;
        }
    }

  self->n_events = n;
  for (self->cursor = 0; self->cursor < self->n_events; self->cursor++)
    {
      SluiceEpollWatch *watch = self->events[self->cursor].data.ptr;

      /* NULL: removed by an earlier callback of this same batch. */
      if (watch != NULL)
        watch->func (watch->user_data, self->events[self->cursor].events);
    }
  self->n_events = 0;
  self->cursor = 0;

  /* Clear the flag first: the step may request another round (e.g. a
   * drained callback that writes again), which then runs next iteration. */
  if (self->post_requested && self->post_func != NULL)
    {
      self->post_requested = FALSE;
      self->post_func (self->post_data);
    }
  self->in_dispatch = FALSE;
  return G_SOURCE_CONTINUE;
}

static void
epoll_source_finalize (GSource *source)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  if (self->epfd >= 0)
    close (self->epfd);
  self->epfd = -1;
}

static GSourceFuncs epoll_source_funcs = {
  .prepare = epoll_source_prepare,
  .check = epoll_source_check,
  .dispatch = epoll_source_dispatch,
  .finalize = epoll_source_finalize,
};

GSource *
sluice_epoll_source_new (GError **error)
{
  int epfd = epoll_create1 (EPOLL_CLOEXEC);
  GSource *source;
  SluiceEpollSource *self;

  if (epfd < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot create an epoll fd: %s", g_strerror (saved));
      return NULL;
    }
  source = g_source_new (&epoll_source_funcs, sizeof (SluiceEpollSource));
  g_source_set_static_name (source, "sluice-epoll");
  self = (SluiceEpollSource *) source;
  self->epfd = epfd;
  self->tag = g_source_add_unix_fd (source, epfd, G_IO_IN);
  return source;
}

static gboolean
epoll_ctl_checked (SluiceEpollSource *self, int op, SluiceEpollWatch *watch,
                   guint32 events, GError **error)
{
  struct epoll_event ev = { .events = events, .data.ptr = watch };

  if (epoll_ctl (self->epfd, op, watch->fd, &ev) < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot watch fd %d: %s", watch->fd, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

gboolean
sluice_epoll_source_add (GSource *source, SluiceEpollWatch *watch, guint32 events,
                         guint32 flags, GError **error)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  g_return_val_if_fail (watch->events == 0, FALSE);
  watch->flags = flags;
  if (events == 0)
    return TRUE;
  if (!epoll_ctl_checked (self, EPOLL_CTL_ADD, watch, events | flags, error))
    return FALSE;
  watch->events = events;
  return TRUE;
}

/* Events of the running batch that point at `watch` must not be delivered:
 * the watch may be freed (or its interest changed) by now. */
static void
forget_fetched (SluiceEpollSource *self, SluiceEpollWatch *watch)
{
  for (int i = self->cursor + 1; i < self->n_events; i++)
    if (self->events[i].data.ptr == watch)
      self->events[i].data.ptr = NULL;
}

gboolean
sluice_epoll_source_modify (GSource *source, SluiceEpollWatch *watch, guint32 events,
                            GError **error)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  if (events == watch->events)
    return TRUE;
  if (events == 0)
    {
      sluice_epoll_source_remove (source, watch);
      return TRUE;
    }
  if (watch->events == 0)
    {
      if (!epoll_ctl_checked (self, EPOLL_CTL_ADD, watch, events | watch->flags, error))
        return FALSE;
    }
  else if (!epoll_ctl_checked (self, EPOLL_CTL_MOD, watch, events, error))
    return FALSE;
  watch->events = events;
  return TRUE;
}

void
sluice_epoll_source_remove (GSource *source, SluiceEpollWatch *watch)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  if (watch->events != 0)
    {
      /* ENOENT / EBADF only mean it is already gone. */
      (void) epoll_ctl (self->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
      watch->events = 0;
    }
  if (self->in_dispatch)
    forget_fetched (self, watch);
}

void
sluice_epoll_source_set_post_dispatch (GSource *source, void (*func) (gpointer user_data),
                                       gpointer user_data)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  self->post_func = func;
  self->post_data = user_data;
}

void
sluice_epoll_source_request_post_dispatch (GSource *source)
{
  SluiceEpollSource *self = (SluiceEpollSource *) source;

  /* Outside our dispatch we are inside another source's callback on the
   * same thread: the context runs prepare() again before it polls, sees the
   * flag and dispatches us without waiting. */
  self->post_requested = TRUE;
}
