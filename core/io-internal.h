/* Sluice core — what the I/O files (workers, listeners, connections, TLS)
 * share with each other. Not used outside core/io-*.c, listener.c,
 * connection*.c and tls.c, except the SLUICE_INTERNAL test hooks at the end.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "io-private.h"
#include "epoll-source.h"

#include <sys/socket.h>
#include <gnutls/gnutls.h>

G_BEGIN_DECLS

typedef struct _SluiceIoWorker SluiceIoWorker;
typedef struct _SluiceListener SluiceListener;
typedef struct _SluiceTlsServer SluiceTlsServer;

/* Bytes read from one connection per dispatch before the worker moves on to
 * the next ready socket (fairness), and the size of the worker's read buffer. */
#define SLUICE_IO_READ_BUDGET (64 * 1024)
/* A TLS record's maximum plaintext. */
#define SLUICE_IO_TLS_RECORD (16 * 1024)

struct _SluiceIo {
  guint n_workers;
  SluiceIoWorker **workers;
  GMutex lock;                  /* listeners; pairs with gone_cond */
  GCond gone_cond;              /* broadcast whenever a connection is gone */
  GPtrArray *listeners;         /* SluiceListener *, every listener opened */
  GHashTable *protocols;        /* protocol name -> SluiceListener * (in `listeners`) */
  gint n_connections;           /* atomic */
  guint handshake_timeout_ms;
};

struct _SluiceIoWorker {
  SluiceIo *io;
  guint index;
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GSource *epoll;
  GQueue connections;           /* SluiceConnection *, a ref each; worker thread only */
  GQueue dirty;                 /* connections with deferred work, a ref each */
  guint8 *scratch;              /* SLUICE_IO_READ_BUDGET bytes, the read buffer */
  guint8 *tls_out;              /* SLUICE_IO_TLS_RECORD bytes, assembles one record */
};

typedef struct {
  SluiceEpollWatch watch;       /* first: the epoll callback gets this struct */
  SluiceListener *listener;
  SluiceIoWorker *worker;
  GSource *retry;               /* re-arm after EMFILE, worker thread only */
} SluiceListenerWatch;

/* A listener with fd -1 and no watches is a protocol's: connections reach
 * it through sluice_io_adopt() rather than accept(). */
struct _SluiceListener {
  gint ref_count;               /* atomic */
  SluiceIo *io;
  int fd;
  char *address;                /* the bound "host:port" */
  char *transport_name;
  const SluiceTransportVTable *vtable;
  gpointer transport;
  SluiceTlsServer *tls;         /* NULL: plain */
  gint64 max_connections;
  gint n_connections;           /* atomic: accepted and not yet gone */
  gboolean closed;              /* under io->lock */
  GMutex log_lock;              /* rate limit of the rejection log lines */
  gint64 last_reject_log_us;
  guint rejects_unlogged;
  SluiceListenerWatch *watches; /* one per worker */
};

/* io-worker.c */
typedef void (*SluiceIoWorkerFunc) (SluiceIoWorker *worker, gpointer user_data);
/* Run `func` on every worker's thread and wait until all have returned. */
G_GNUC_INTERNAL void sluice_io_run_on_workers (SluiceIo *io, SluiceIoWorkerFunc func,
                                               gpointer user_data);
G_GNUC_INTERNAL void sluice_io_run_on_workers_full (SluiceIo *io, gint priority,
                                                    SluiceIoWorkerFunc func, gpointer user_data);
/* Wake whoever waits for connections to be gone. */
G_GNUC_INTERNAL void sluice_io_notify_gone (SluiceIo *io);

/* listener.c */
G_GNUC_INTERNAL SluiceListener *sluice_listener_ref (SluiceListener *listener);
G_GNUC_INTERNAL void sluice_listener_unref (SluiceListener *listener);
/* A rate-limited log line for a connection turned away. */
G_GNUC_INTERNAL void sluice_listener_log_reject (SluiceListener *listener, const char *why);

/* connection.c */
/* Take `fd` (accepted, nonblocking, already counted in the listener's
 * n_connections) into a new connection on `worker`. */
G_GNUC_INTERNAL void sluice_connection_accept (SluiceIoWorker *worker, SluiceListener *listener,
                                               int fd, const struct sockaddr *peer,
                                               socklen_t peer_len);
/* A connection carried by `carrier` (connection-carrier.c); `listener`'s
 * n_connections already counts it. (transfer full: the carrier's ref) */
G_GNUC_INTERNAL SluiceConnection *sluice_connection_adopt (SluiceIoWorker *worker,
                                                           SluiceListener *listener,
                                                           const SluiceCarrierOps *ops,
                                                           gpointer carrier,
                                                           const SluiceCarrierInfo *info);
/* The worker's post-dispatch step: flushes, deferred input, closed callbacks. */
G_GNUC_INTERNAL void sluice_io_worker_post_dispatch (gpointer worker);
/* Close every connection of the worker that belongs to `transport` (NULL:
 * all): flushing, or at once when `abort` (then gone before this returns,
 * connection_closed included). */
G_GNUC_INTERNAL void sluice_io_worker_close_connections (SluiceIoWorker *worker,
                                                         gpointer transport, gboolean abort);
/* Format a socket address as "1.2.3.4:5" or "[::1]:5". */
G_GNUC_INTERNAL char *sluice_io_format_address (const struct sockaddr *sa, socklen_t len);

/* tls.c */
G_GNUC_INTERNAL SluiceTlsServer *sluice_tls_server_new (const char *cert_path,
                                                        const char *key_path,
                                                        const char *ca_path, GError **error);
G_GNUC_INTERNAL void sluice_tls_server_free (SluiceTlsServer *server);
G_GNUC_INTERNAL gnutls_session_t sluice_tls_server_session_new (SluiceTlsServer *server, int fd,
                                                                GError **error);
/* After the handshake: when the server has a CA and the client sent a
 * chain, verify it; FALSE with a readable reason (transfer full) otherwise. */
G_GNUC_INTERNAL gboolean sluice_tls_server_verify_peer (SluiceTlsServer *server,
                                                        gnutls_session_t session,
                                                        char **reason);
/* The client's chain as DER GBytes, leaf first; NULL when none. (transfer full) */
G_GNUC_INTERNAL GPtrArray *sluice_tls_session_get_peer_certs (gnutls_session_t session);

/* Test hooks. */
SLUICE_INTERNAL void sluice_io_set_handshake_timeout (SluiceIo *io, guint timeout_ms);
/* The index of the worker the connection lives on. */
SLUICE_INTERNAL guint sluice_connection_get_worker_index (SluiceConnection *connection);

G_END_DECLS
