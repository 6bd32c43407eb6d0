/* transport-https — state shared by the files of the plugin.
 *
 * One HttpsTransport per `[transport.NAME]`; one HttpsServer (a SoupServer
 * and everything it touches) per I/O worker, living only on that worker's
 * thread. A request that waits for the core (append, read, registry,
 * offsets) is an HttpsRequest: its message is paused until the host's
 * callback answers it on the same worker.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>
#include <libsoup/soup.h>

#include "https-codec.h"

G_BEGIN_DECLS

typedef struct {
  guint64 max_body;
  gboolean ops_auth;
  gint64 read_limit;
  gint64 max_wait;   /* ms */
  guint64 ws_max_message;
} HttpsOptions;

typedef struct _HttpsTransport HttpsTransport;
typedef struct _HttpsServer HttpsServer;
typedef struct _HttpsRequest HttpsRequest;
typedef struct _HttpsListener HttpsListener;
typedef struct _HttpsBatch HttpsBatch;
typedef struct _HttpsWebsocket HttpsWebsocket;

struct _HttpsTransport {
  gint ref_count;
  SluiceHost *host;
  char *name;                  /* NAME of [transport.NAME] */
  char *hostname;              /* the hub's name, the scope of SAS tokens */
  HttpsOptions options;        /* copied: requests may outlive destroy */
  char **listen;
  char **tls_listen;
  GTlsCertificate *certificate;
  HttpsServer **servers;       /* one per I/O worker */
  guint n_servers;
  gboolean stopping;           /* atomic */

  /* In-flight requests across every worker, for a graceful stop. */
  GMutex lock;
  GCond idle_cond;
  guint inflight;

  SluiceCounter *status_counters[600];  /* atomic pointers, filled lazily */
  SluiceCounter *request_bytes;
  SluiceCounter *connections;
  SluiceCounter *rejected_too_large;
  SluiceCounter *websockets;   /* open WebSockets carrying a connection */
  SluiceCounter *websockets_refused;
};

/* A principal the worker has seen for one (token, resource) pair. */
typedef struct {
  SluicePrincipal *principal;
  char *device_etag;           /* device principals: the registry entry's etag */
  gint64 checked_at;           /* monotonic us: policy principals are re-checked */
} HttpsCachedPrincipal;

struct _HttpsServer {
  gint ref_count;
  HttpsTransport *transport;   /* a ref */
  guint index;
  GMainContext *context;       /* the worker's (transfer none) */
  SoupServer *soup;
  GHashTable *principals;      /* "resource\ntoken" -> HttpsCachedPrincipal* */
  GQueue requests;             /* HttpsRequest* waiting for the core */
  GCancellable *cancellable;   /* cancelled at stop: long polls, drains */
  GPtrArray *listeners;        /* HttpsListener*, closed at stop */
  GQueue handshakes;           /* TLS handshakes before libsoup sees a connection */
  GQueue drains;               /* HttpsDrain*: rejected connections closing */
  GHashTable *batches;         /* partition + 1 -> HttpsBatch*: telemetry to append */
  GSource *flush_source;       /* appends the batches after this loop turn */
  GQueue websockets;           /* HttpsWebsocket*: upgraded, carrying a connection */
};

struct _HttpsRequest {
  HttpsServer *server;         /* a ref */
  SoupServerMessage *msg;      /* a ref */
  GList link;                  /* in server->requests */
  gulong disconnected_id;
  gboolean gone;               /* the client's connection is gone */
  HttpsRoute route;
  SluicePrincipal *principal;

  /* per operation */
  gint64 from;
  gint64 limit;
  guint wait_ms;
  guint pending;               /* stream batch send: appends still running */
  GError *error;               /* stream batch send: the first failure */
};

/* --- https-server.c --- */
HttpsTransport *https_transport_ref (HttpsTransport *transport);
void https_transport_unref (HttpsTransport *transport);
HttpsServer *https_server_ref (HttpsServer *server);
void https_server_unref (HttpsServer *server);

/* --- https-listen.c (on the server's worker) --- */
/* Accept on `socket` (bound and listening) and serve it with server->soup. */
void https_server_listen (HttpsServer *server, GSocket *socket, gboolean tls);
/* Stop accepting and close the socket. */
void https_listener_close (HttpsListener *listener);
void https_listener_free (HttpsListener *listener);
void https_server_cancel_handshakes (HttpsServer *server);
/* Give server->soup an unreachable listener of its own (keep-alive). */
gboolean https_server_add_keepalive_anchor (HttpsServer *server, GError **error);

/* --- https-requests.c --- */
/* Route every request of `server->soup`; count connections and statuses. */
void https_server_install_handlers (HttpsServer *server);
/* At teardown, on the worker: give up on refused connections still closing. */
void https_server_teardown_requests (HttpsServer *server);
/* Pause `msg` and keep it until https_request_finish(). Takes the route's
 * strings (`route` is left empty). */
HttpsRequest *https_request_new (HttpsServer *server, SoupServerMessage *msg,
                                 HttpsRoute *route, SluicePrincipal *principal);
/* Resume the message (its response is set) unless the client went away,
 * and free the request. */
void https_request_finish (HttpsRequest *request);

/* --- https-websocket.c (on the server's worker) --- */
/* Upgrades on /mqtt, /$iothub/websocket and /$servicebus/websocket, handed
 * to the transport that serves the subprotocol. */
void https_server_install_websockets (HttpsServer *server);
/* At teardown: close every WebSocket still open. */
void https_server_close_websockets (HttpsServer *server);

/* --- https-errors.c --- */
/* The HTTP status and error code for a host error; IoT Hub's code names for
 * device and registry paths. */
guint https_status_for_error (const GError *error, gboolean iothub, const char **code);
/* Set an error response: IoT Hub's `{"Message":"ErrorCode:X;...",
 * "ExceptionMessage":...}` on device and registry paths, otherwise
 * `{"Message":...,"ErrorCode":X}`. */
/* The JSON body of an error in either shape. (transfer full) */
char *https_error_body (gboolean iothub, const char *code, const char *text);
void https_reply_error (SoupServerMessage *msg, guint status, gboolean iothub,
                        const char *code, const char *format, ...) G_GNUC_PRINTF (5, 6);
void https_reply_gerror (SoupServerMessage *msg, gboolean iothub, const GError *error);
/* Set a JSON (transfer full: `json` is taken) or empty response. */
void https_reply_json (SoupServerMessage *msg, guint status, char *json);
void https_reply_empty (SoupServerMessage *msg, guint status);
/* Count one answered request by status (sluice_http_requests_total). */
void https_count_status (HttpsTransport *transport, guint status);

/* --- https-auth.c --- */
/* The principal for the request's `Authorization` header, checked against
 * `resource` (`{hostname}/devices/{id}`, `{hostname}/{stream}`...). Cached
 * per worker: a cached device principal is dropped as soon as its registry
 * entry changes; a cached policy one is verified again after a second (a
 * policy changes only with a configuration reload). NULL with
 * SLUICE_ERROR_UNAUTHENTICATED. (transfer full) */
SluicePrincipal *https_authenticate (HttpsServer *server, SoupServerMessage *msg,
                                     const char *resource, GError **error);
void https_principal_cache_free (HttpsCachedPrincipal *cached);

/* --- https-batch.c (on the server's worker) --- */
/* Queue one record for `stream` on behalf of `request` (already paused):
 * checks Send and max-message, then gathers it with the other records of
 * its partition in this turn of the loop; the request is answered (204 or
 * the append's error) and finished when the batch is appended. FALSE with
 * `error` set when refused at once (the caller answers). Strings and body
 * are copied. */
gboolean https_batch_add (HttpsServer *server, HttpsRequest *request, const char *stream,
                          const char *key, const char *const *headers, GBytes *body,
                          GError **error);
/* Append whatever is gathered now (teardown). */
void https_batches_flush (HttpsServer *server);

/* --- https-device.c --- */
void https_handle_device_events (HttpsServer *server, SoupServerMessage *msg,
                                 HttpsRoute *route);
void https_handle_registry (HttpsServer *server, SoupServerMessage *msg,
                            HttpsRoute *route);
void https_handle_registry_list (HttpsServer *server, SoupServerMessage *msg,
                                 HttpsRoute *route, GHashTable *query);

/* --- https-streams.c --- */
void https_handle_stream_info (HttpsServer *server, SoupServerMessage *msg,
                               HttpsRoute *route);
void https_handle_stream_send (HttpsServer *server, SoupServerMessage *msg,
                               HttpsRoute *route);
void https_handle_stream_read (HttpsServer *server, SoupServerMessage *msg,
                               HttpsRoute *route, GHashTable *query);
void https_handle_group_offsets (HttpsServer *server, SoupServerMessage *msg,
                                 HttpsRoute *route);

/* --- https-ops.c --- */
void https_handle_healthz (HttpsServer *server, SoupServerMessage *msg,
                           HttpsRoute *route);
void https_handle_metrics (HttpsServer *server, SoupServerMessage *msg,
                           HttpsRoute *route);

G_END_DECLS
