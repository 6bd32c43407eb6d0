/* Sluice plugin SDK — transports and connections.
 *
 * Byte-stream transports (MQTT, AMQP, Kafka, out-of-tree ones) let the core
 * own listeners, accept, terminate TLS and place each connection on one I/O
 * worker for its life. The transport sees a SluiceConnection: bytes arrive in
 * `connection_input` on that worker; writes are queued and flushed by the
 * core with writev; close and pause / resume of reading are calls. Every
 * connection slot runs on the connection's worker thread and must not block.
 *
 * Transports that own their listeners (HTTPS with libsoup) set
 * SLUICE_TRANSPORT_OWNS_LISTENERS and leave the connection slots NULL.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>
#include <sluice/sluice-options.h>

G_BEGIN_DECLS

typedef enum {
  SLUICE_TRANSPORT_OWNS_LISTENERS = 1 << 0,
} SluiceTransportFlags;

/* The keys every `[transport.NAME]` section has; the core parses them. */
typedef struct {
  const char *instance_name;   /* NAME of `[transport.NAME]` */
  char **listen;               /* host:port list, plain */
  char **tls_listen;           /* host:port list, TLS */
  const char *tls_cert;        /* PEM files; the hub's (or generated) when unset */
  const char *tls_key;
  const char *tls_ca;          /* client CA bundle; NULL: client certs not verified by TLS */
  /* The whole configuration, for the section families the plugin owns
   * (transport-mqtt: `[mqtt-map.*]`, `[mqtt-acl.*]`). Valid during create
   * only. (ABI 1.0 addition: was reserved[0]) */
  SluiceConfig *config;
  gpointer reserved[7];
} SluiceTransportConfig;

typedef struct {
  guint32 flags;               /* SluiceTransportFlags */
  /* Create the instance. `options` (the plugin's struct) and `config` stay
   * valid until destroy. Runs on the main thread, before workers start.
   * (transfer full) */
  gpointer (*create) (SluiceHost *host, const SluiceTransportConfig *config,
                      const void *options, GError **error);
  /* Start serving (OWNS_LISTENERS: bind and listen now; the core's listeners
   * for the others are already open). Runs on the main thread. */
  gboolean (*start) (gpointer self, GError **error);
  /* Graceful stop: stop accepting, let in-flight work finish, close.
   * Runs on the main thread; may iterate the main context. */
  void (*stop) (gpointer self);
  void (*destroy) (gpointer self);

  /* --- per connection (byte-stream transports), on the connection's worker --- */
  /* A connection was accepted (TLS handshake done). Returns the transport's
   * per-connection state, or NULL to refuse (the core closes it). */
  gpointer (*connection_open) (gpointer self, SluiceConnection *connection);
  /* Bytes arrived. `data` holds everything not yet consumed (earlier leftover
   * plus the new bytes). Return how many bytes were consumed; the rest is
   * presented again with the next bytes. The buffer is bounded by
   * sluice_connection_set_max_input(); past it the connection is closed. */
  gsize (*connection_input) (gpointer conn_state, SluiceConnection *connection,
                             const guint8 *data, gsize len);
  /* The output queue drained below its low-water mark (after a write made it
   * exceed the high-water mark). Optional. */
  void (*connection_drained) (gpointer conn_state, SluiceConnection *connection);
  /* The connection is gone (peer closed, error, or sluice_connection_close()).
   * Free `conn_state` here; `connection` stays valid only for refs taken. */
  void (*connection_closed) (gpointer conn_state, SluiceConnection *connection);
} SluiceTransportVTable;

/* --- SluiceConnection: call only on the connection's worker thread, except
 * ref / unref which are thread-safe. --- */
SLUICE_API SluiceConnection *sluice_connection_ref (SluiceConnection *connection);
SLUICE_API void sluice_connection_unref (SluiceConnection *connection);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceConnection, sluice_connection_unref)
/* Queue bytes (copied). Flushed when the current callback returns. */
SLUICE_API void sluice_connection_write (SluiceConnection *connection, const void *data,
                                         gsize len);
/* Queue bytes without copying. (transfer none: a ref is taken) */
SLUICE_API void sluice_connection_write_bytes (SluiceConnection *connection, GBytes *bytes);
/* Bytes queued and not yet written to the socket. */
SLUICE_API gsize sluice_connection_get_pending_output (SluiceConnection *connection);
/* Over this many queued bytes the connection is `congested`; the transport
 * should stop producing output and wait for connection_drained. */
SLUICE_API gboolean sluice_connection_is_congested (SluiceConnection *connection);
/* Close after the queued output is flushed (or at once when `abort`).
 * connection_closed follows from the worker's loop, never re-entrantly. */
SLUICE_API void sluice_connection_close (SluiceConnection *connection, gboolean abort);
SLUICE_API gboolean sluice_connection_is_closed (SluiceConnection *connection);
/* Stop / start reading from the socket (back-pressure). */
SLUICE_API void sluice_connection_pause (SluiceConnection *connection);
SLUICE_API void sluice_connection_resume (SluiceConnection *connection);
SLUICE_API void sluice_connection_set_max_input (SluiceConnection *connection, gsize max);
/* "127.0.0.1:5555". (transfer none) */
SLUICE_API const char *sluice_connection_get_peer (SluiceConnection *connection);
SLUICE_API const char *sluice_connection_get_local (SluiceConnection *connection);
SLUICE_API gboolean sluice_connection_is_tls (SluiceConnection *connection);
/* The client's certificate chain as DER GBytes, leaf first; NULL without TLS
 * or client certificate. (transfer none) */
SLUICE_API GPtrArray *sluice_connection_get_peer_certs (SluiceConnection *connection);
/* The worker's context (thread-default on that worker). (transfer none) */
SLUICE_API GMainContext *sluice_connection_get_context (SluiceConnection *connection);
/* A number unique per connection for the process's life, for logs. */
SLUICE_API guint64 sluice_connection_get_id (SluiceConnection *connection);
/* The transport instance's state as returned by create. */
SLUICE_API gpointer sluice_connection_get_transport (SluiceConnection *connection);

G_END_DECLS
