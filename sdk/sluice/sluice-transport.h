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

  /* --- appended in ABI 1.2: optional (may be NULL); the host checks
   * vtable_size --- */
  /* The configuration was reloaded (SIGHUP), after the auth plugins took
   * theirs: pick up what the transport derives from shared sections (Kafka's
   * SCRAM verifiers from the policies' keys). Runs on the main thread while
   * workers serve: guard what they read. FALSE with `error`: the transport
   * keeps its previous state (logged; the rest of the reload stands). */
  gboolean (*reload) (gpointer self, SluiceConfig *config, GError **error);
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

/* Called when the buffer given to sluice_connection_read_into() is full, on
 * the connection's worker, like connection_input. */
typedef void (*SluiceInputFilled) (SluiceConnection *connection, gpointer user_data);
/* Since ABI 1.3. The next `len` bytes of the stream go straight into `buf`
 * instead of through connection_input: a transport that knows how long its
 * next frame is (a large request whose size field it just read) has the
 * core read the rest of it into the frame's own memory, as much per read as
 * the socket holds, without a copy on plain sockets (TLS records and carried
 * connections are copied in). Bytes connection_input leaves unconsumed go in
 * first. Then `filled` runs, and later bytes go to connection_input again.
 * `buf` belongs to the transport and must stay valid until `filled` or
 * connection_closed, whichever comes first; the core never touches it after
 * the connection closed. These bytes do not count against max_input. Call it
 * from connection_input (or `filled`), with no other read_into pending. */
SLUICE_API void sluice_connection_read_into (SluiceConnection *connection, guint8 *buf,
                                             gsize len, SluiceInputFilled filled,
                                             gpointer user_data);
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

/* --- Adopted connections: a carrier the core does not own (WebSockets) ---
 *
 * A transport that owns its sockets (HTTPS) can hand a byte stream it
 * carries (an upgraded WebSocket) to the byte-stream transport registered
 * for a protocol name, which then sees an ordinary SluiceConnection: every
 * sluice_connection_* call works, and it never knows the difference.
 *
 * The carrier side (the adopting transport) moves bytes: it reports input,
 * write progress and the peer's close with the sluice_connection_carrier_*
 * calls below; the core calls the SluiceCarrierOps to send, to pause and to
 * close. Everything runs on one I/O worker: adopt on a worker thread (inside
 * a callback of the worker's context), and the connection, the ops and the
 * carrier calls stay there. */

typedef struct {
  /* Send `bytes` as one message (a WebSocket binary frame). (transfer
   * none: keep a ref.) The ops run inside the core: none may deliver
   * input or report the carrier closed from inside (defer that to the
   * loop); sluice_connection_carrier_progress() is fine. */
  void (*send) (gpointer carrier, GBytes *bytes);
  /* Bytes given to `send` and not yet handed to the socket: with the core's
   * own queue, what sluice_connection_get_pending_output() reports and what
   * congestion is measured on. May be NULL (always 0). */
  gsize (*get_unsent) (gpointer carrier);
  /* Stop / start reading from the peer (back-pressure). Input that still
   * arrives while paused is buffered by the core. May be NULL. */
  void (*pause) (gpointer carrier);
  void (*resume) (gpointer carrier);
  /* The last call the core makes: close the carrier, after what was sent
   * (`abort` FALSE: a graceful close, e.g. a WebSocket close frame after the
   * queued frames) or at once. Not made when the carrier itself reported
   * sluice_connection_carrier_closed() first. */
  void (*close) (gpointer carrier, gboolean abort);
} SluiceCarrierOps;

typedef struct {
  const char *peer;            /* "1.2.3.4:5" or "[::1]:5" (copied) */
  const char *local;           /* (copied) */
  gboolean tls;                /* the carrier runs over TLS */
  GPtrArray *peer_certs;       /* DER GBytes, leaf first, or NULL (transfer none: a ref is taken) */
  gpointer reserved[4];
} SluiceCarrierInfo;

/* Make the byte-stream transport instance `transport` (what its create
 * returned) the one that serves `protocol` (a WebSocket subprotocol such as
 * "mqtt") for sluice_host_adopt_connection(). Call from start, on the main
 * thread (the instance is not known to the core before create returns).
 * The core registers the built-in transports itself: the
 * first `plugin = mqtt` instance serves "mqtt", the first `plugin = amqp`
 * instance "AMQPWSB10". FALSE with SLUICE_ERROR_INVALID when the name is
 * taken by another instance. */
SLUICE_API gboolean sluice_host_register_protocol (SluiceHost *host, const char *protocol,
                                                   gpointer transport, GError **error);
/* Whether some transport serves `protocol` now (registered, not stopped). */
SLUICE_API gboolean sluice_host_has_protocol (SluiceHost *host, const char *protocol);
/* Create a connection of the transport that serves `protocol` on the
 * calling worker, carried by `carrier` through `ops` (`ops` must outlive
 * it; `carrier` until the close op or sluice_connection_carrier_closed()).
 * The transport's connection_open runs before this returns (it may refuse:
 * then the connection is closing, and close follows from the loop).
 * NULL with SLUICE_ERROR_NOT_FOUND when nobody serves `protocol`,
 * SLUICE_ERROR_SHUTTING_DOWN after the hub stopped accepting,
 * SLUICE_ERROR_THROTTLED at the transport's max-connections,
 * SLUICE_ERROR_FAILED when not called on an I/O worker. (transfer full: the
 * carrier's ref) */
SLUICE_API SluiceConnection *sluice_host_adopt_connection (SluiceHost *host, const char *protocol,
                                                           const SluiceCarrierOps *ops,
                                                           gpointer carrier,
                                                           const SluiceCarrierInfo *info,
                                                           GError **error);
/* The carrier received bytes (one WebSocket message, or any part of the
 * stream: they are delivered like socket reads). */
SLUICE_API void sluice_connection_carrier_input (SluiceConnection *connection,
                                                 const guint8 *data, gsize len);
/* The carrier handed queued bytes to the socket (get_unsent fell): the core
 * may now report connection_drained. Cheap; call after every write. */
SLUICE_API void sluice_connection_carrier_progress (SluiceConnection *connection);
/* The peer closed the carrier or it failed: the connection closes (queued
 * output is dropped) and the core makes no further call to the carrier. */
SLUICE_API void sluice_connection_carrier_closed (SluiceConnection *connection);

G_END_DECLS
