/* Sluice core — a GSource that watches many fds through one epoll fd.
 *
 * GLib's own fd watches cost O(fds) per loop iteration (poll()); this source
 * adds one fd (the epoll fd) to its GMainContext, and its dispatch runs
 * epoll_wait with timeout 0 and calls each ready watch's callback, so the cost
 * per event stays flat with 10,000+ sockets. It is level-triggered: a callback
 * that stops early (fairness bound) is called again on the next iteration.
 *
 * It also offers a "post-dispatch" step: a callback run at the end of every
 * dispatch in which it was requested, and which makes the source ready on its
 * own when requested from another source of the same context. The I/O worker
 * uses it to coalesce writes made from anywhere on the worker into one flush.
 *
 * All calls except sluice_epoll_source_add() run on the thread that owns the
 * source's context.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <sys/epoll.h>

G_BEGIN_DECLS

/* `events` is what epoll_wait reported (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP). */
typedef void (*SluiceEpollFunc) (gpointer user_data, guint32 events);

/* Embedded by the caller (it must outlive its registration); fill it with
 * sluice_epoll_watch_init(). */
typedef struct {
  int fd;
  guint32 events;          /* interest currently registered (0: not in epoll) */
  guint32 flags;           /* extra flags given at add (EPOLLEXCLUSIVE) */
  SluiceEpollFunc func;
  gpointer user_data;
} SluiceEpollWatch;

G_GNUC_INTERNAL void sluice_epoll_watch_init (SluiceEpollWatch *watch, int fd,
                                              SluiceEpollFunc func, gpointer user_data);

G_GNUC_INTERNAL GSource *sluice_epoll_source_new (GError **error);

/* Register `watch` with interest `events` plus `flags` (e.g. EPOLLEXCLUSIVE,
 * which can never be changed later). Safe from any thread (epoll_ctl only). */
G_GNUC_INTERNAL gboolean sluice_epoll_source_add (GSource *source, SluiceEpollWatch *watch,
                                                  guint32 events, guint32 flags,
                                                  GError **error);
/* Change the interest; 0 removes the fd from epoll (so a hung-up socket that
 * nobody reads cannot spin the loop) and a later non-zero value adds it back.
 * Fails only when the kernel refuses (ENOMEM, a closed fd). */
G_GNUC_INTERNAL gboolean sluice_epoll_source_modify (GSource *source, SluiceEpollWatch *watch,
                                                     guint32 events, GError **error);
/* Forget `watch`: no callback for it follows, not even for events already
 * fetched in the current dispatch. The fd is not closed. */
G_GNUC_INTERNAL void sluice_epoll_source_remove (GSource *source, SluiceEpollWatch *watch);

G_GNUC_INTERNAL void sluice_epoll_source_set_post_dispatch (GSource *source,
                                                            void (*func) (gpointer user_data),
                                                            gpointer user_data);
/* Run the post-dispatch step at the end of the current dispatch, or soon
 * (the source becomes ready) when called from outside its dispatch. */
G_GNUC_INTERNAL void sluice_epoll_source_request_post_dispatch (GSource *source);

G_END_DECLS
