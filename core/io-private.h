/* Sluice core — I/O workers, listeners, connections and TLS.
 *
 * A fixed pool of worker threads, each with its own GMainContext (pushed as
 * thread default) whose sockets are watched through one epoll fd wrapped in a
 * custom GSource. Listening sockets are shared by every worker (EPOLLEXCLUSIVE)
 * and accepted connections stay on the worker that accepted them.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

G_BEGIN_DECLS

typedef struct _SluiceIo SluiceIo;

/* Start `n_workers` threads (0: number of cores). */
SLUICE_INTERNAL SluiceIo *sluice_io_new (guint n_workers, GError **error);
SLUICE_INTERNAL guint sluice_io_get_worker_count (SluiceIo *io);
SLUICE_INTERNAL GMainContext *sluice_io_get_context (SluiceIo *io, guint i);

typedef struct {
  const char *transport_name;            /* for logs: [transport.NAME] */
  const SluiceTransportVTable *vtable;
  gpointer transport;                    /* the instance create() returned */
  gboolean tls;
  const char *tls_cert;                  /* PEM files (required when tls) */
  const char *tls_key;
  const char *tls_ca;                    /* NULL: request but do not verify client certs */
  gint64 max_connections;                /* 0: no limit */
} SluiceListenSpec;

/* Bind and listen on `address` ("host:port"; port 0 picks a free one) and
 * serve it on every worker. Writes the bound "host:port" to `bound` (transfer
 * full). Errors name the address and the reason (EADDRINUSE, bad cert...). */
SLUICE_INTERNAL gboolean sluice_io_listen (SluiceIo *io, const char *address,
                                           const SluiceListenSpec *spec, char **bound,
                                           GError **error);
/* Stop accepting on every listener (graceful shutdown, first step). */
SLUICE_INTERNAL void sluice_io_close_listeners (SluiceIo *io);
/* Close every connection of `transport` (NULL: all), flushing queued output,
 * and wait up to `timeout_ms` for them to be gone. */
SLUICE_INTERNAL void sluice_io_close_connections (SluiceIo *io, gpointer transport,
                                                  guint timeout_ms);
SLUICE_INTERNAL guint sluice_io_count_connections (SluiceIo *io);
/* Run `func (worker index, data)` on every worker's thread at `priority` and
 * return when all have run. Not from a worker thread. */
SLUICE_INTERNAL void sluice_io_run_on_workers_indexed (SluiceIo *io, gint priority,
                                                       void (*func) (guint index,
                                                                     gpointer user_data),
                                                       gpointer user_data);
/* Adopted connections (SDK: sluice_host_adopt_connection). The
 * connections of `protocol` go to the transport of `spec` (address, tls
 * and cert fields unused); it counts as one more listener of that
 * transport (max-connections, sluice_io_close_connections), and
 * sluice_io_close_listeners() stops adoption too. */
SLUICE_INTERNAL gboolean sluice_io_register_protocol (SluiceIo *io, const char *protocol,
                                                      const SluiceListenSpec *spec,
                                                      GError **error);
SLUICE_INTERNAL gboolean sluice_io_has_protocol (SluiceIo *io, const char *protocol);
/* On a worker thread (its context is the thread default). */
SLUICE_INTERNAL SluiceConnection *sluice_io_adopt (SluiceIo *io, const char *protocol,
                                                   const SluiceCarrierOps *ops, gpointer carrier,
                                                   const SluiceCarrierInfo *info, GError **error);
/* Stop the workers and free everything. */
SLUICE_INTERNAL void sluice_io_free (SluiceIo *io);

/* Write a self-signed certificate for `hostname` (and 127.0.0.1, ::1) with a
 * fresh key to the two PEM files (key mode 0600). */
SLUICE_INTERNAL gboolean sluice_tls_generate_self_signed (const char *hostname,
                                                          const char *cert_path,
                                                          const char *key_path,
                                                          GError **error);

G_END_DECLS
