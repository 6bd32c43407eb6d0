/* Sluice core — SluiceConnection's state, shared by connection.c (life
 * cycle, input, TLS handshake) and connection-output.c (the output queue).
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

  GQueue output;                /* GBytes */
  gsize out_offset;             /* bytes of the head chunk already written */
  gsize pending;
  gsize tls_retry_len;          /* a record send to repeat after GNUTLS_E_AGAIN */

  char *peer;
  char *local;
  gnutls_session_t tls;
  GPtrArray *peer_certs;
  GSource *timer;               /* handshake, flush or linger deadline */
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

/* connection-output.c */
/* Write what the socket takes (bounded rounds), call connection_drained
 * when the queue fell below the low-water mark, shut down when closing. */
G_GNUC_INTERNAL void sluice_conn_flush (SluiceConnection *conn);
G_GNUC_INTERNAL void sluice_conn_drop_output (SluiceConnection *conn);

G_END_DECLS
