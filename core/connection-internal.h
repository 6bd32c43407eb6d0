/* Sluice core — SluiceConnection's state, shared by connection.c (life
 * cycle, input, TLS handshake), connection-output.c (the output queue) and
 * connection-carrier.c (adopted connections).
 *
 * A connection has one of two backends: a socket (fd, epoll, optional
 * GnuTLS), or a carrier (`carrier_ops` set: an upgraded WebSocket another
 * transport owns; fd is -1 and nothing is in epoll). Both share the state
 * machine, the input buffer and the output queue; the few places that
 * touch the socket branch on `carrier_ops`.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "io-internal.h"

G_BEGIN_DECLS

typedef enum {
  CONN_HANDSHAKE,
  CONN_OPEN,
  CONN_FLUSHING,
  CONN_LINGER,
  CONN_DONE,
} ConnState;

struct _SluiceConnection {
  SluiceEpollWatch watch;
  gint ref_count;               /* atomic */
  guint64 id;
  SluiceIoWorker *worker;
  SluiceListener *listener;     /* a ref */
  int fd;
  ConnState state;
  gpointer conn_state;          /* what connection_open returned */
  GList link;                   /* in worker->connections */

  guint opened : 1;             /* connection_open returned a state */
  guint close_requested : 1;    /* what sluice_connection_is_closed says */
  guint closed_notified : 1;
  guint released : 1;          /* uncounted: closed, notified, output flushed */
  guint gone : 1;
  guint dirty : 1;
  guint paused : 1;
  guint want_write : 1;         /* socket full: waiting for EPOLLOUT */
  guint want_read : 1;          /* deferred read / re-delivery of leftover input */
  guint handshake_writes : 1;   /* the handshake waits for EPOLLOUT */
  guint peer_eof : 1;
  guint congested : 1;
  guint in_input : 1;           /* inside connection_input: `input` is lent out */

  GByteArray *input;            /* unconsumed input; NULL while there is none */
  gsize input_peak;
  gsize max_input;
  /* sluice_connection_read_into(): where the next bytes go (the transport's) */
  guint8 *sink;
  gsize sink_len;
  gsize sink_have;
  SluiceInputFilled sink_filled;
  gpointer sink_data;

  GQueue output;                /* GBytes */
  gsize out_offset;             /* bytes of the head chunk already written */
  gsize pending;
  gsize tls_retry_len;          /* a record send to repeat after GNUTLS_E_AGAIN */

  char *peer;
  char *local;
  gnutls_session_t tls;
  GPtrArray *peer_certs;
  GSource *timer;               /* handshake, flush or linger deadline */

  /* Carrier backend (NULL ops: a socket). */
  const SluiceCarrierOps *carrier_ops;
  gpointer carrier;
  guint carrier_tls : 1;
  guint carrier_done : 1;       /* close op made, or the carrier reported closed */
};


G_GNUC_INTERNAL const char *sluice_conn_transport_name (SluiceConnection *conn);
/* Queue deferred work (flush, connection_closed, re-delivery) for the
 * worker's post-dispatch step. */
G_GNUC_INTERNAL void sluice_conn_mark_dirty (SluiceConnection *conn);
G_GNUC_INTERNAL void sluice_conn_update_interest (SluiceConnection *conn);
G_GNUC_INTERNAL void sluice_conn_close_internal (SluiceConnection *conn, gboolean abort);
/* All output written: send our FIN and linger for the peer's. */
G_GNUC_INTERNAL void sluice_conn_shutdown (SluiceConnection *conn);
G_GNUC_INTERNAL void sluice_conn_log_io_error (SluiceConnection *conn, const char *what, int err,
                                               const char *message);

/* Deliver input (`fresh` may be NULL with `n` 0: present leftover input
 * again). */
G_GNUC_INTERNAL void sluice_conn_deliver (SluiceConnection *conn, const guint8 *fresh, gsize n);
/* Close the socket or the carrier; DONE from here. */
G_GNUC_INTERNAL void sluice_conn_finish (SluiceConnection *conn);
/* Hand the opened connection to its transport's connection_open. */
G_GNUC_INTERNAL void sluice_conn_open_transport (SluiceConnection *conn);
/* A fresh connection: ids, counters, on the worker's list. */
G_GNUC_INTERNAL SluiceConnection *sluice_conn_new (SluiceIoWorker *worker,
                                                   SluiceListener *listener, int fd);

/* connection-output.c */
/* Bytes queued in the core plus what the carrier has not sent yet. */
G_GNUC_INTERNAL gsize sluice_conn_backlog (SluiceConnection *conn);
/* Write what the socket takes (bounded rounds), call connection_drained
 * when the queue fell below the low-water mark, shut down when closing. */
G_GNUC_INTERNAL void sluice_conn_flush (SluiceConnection *conn);
G_GNUC_INTERNAL void sluice_conn_drop_output (SluiceConnection *conn);

G_END_DECLS
