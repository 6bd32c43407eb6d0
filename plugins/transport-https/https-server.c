/* transport-https — the plugin: options, one SoupServer per I/O worker,
 * listening sockets (SO_REUSEPORT) and TLS, start and graceful stop.
 *
 * The transport owns its listeners and its TLS (GTlsConnection from
 * glib-networking), unlike the byte-stream transports whose sockets the core
 * owns (DESIGN.md "Sockets and TLS"). Every worker gets its own listening
 * socket on each address, all bound to the same port with SO_REUSEPORT, so
 * the kernel spreads connections over the workers and a connection, its
 * requests and their completions stay on one thread. The worker accepts
 * (https-listen.c) and hands each connection to its SoupServer.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#define STOP_DRAIN_TIMEOUT_US (10 * G_USEC_PER_SEC)

static const SluiceOption https_options[] = {
  { "max-body", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (HttpsOptions, max_body), "256KiB",
    "largest request body; a larger one is answered 413 before it is read",
    1, (gint64) 1 << 30, NULL, { NULL, NULL } },
  { "ops-auth", SLUICE_OPTION_BOOL, G_STRUCT_OFFSET (HttpsOptions, ops_auth), "false",
    "require a token with ServiceConnect for /metrics", 0, 0, NULL, { NULL, NULL } },
  { "read-limit", SLUICE_OPTION_INT, G_STRUCT_OFFSET (HttpsOptions, read_limit), "100",
    "most records one read of the stream read API returns", 1, 100000, NULL, { NULL, NULL } },
  { "max-wait", SLUICE_OPTION_DURATION, G_STRUCT_OFFSET (HttpsOptions, max_wait), "30s",
    "longest long poll (`wait=` is capped to it)", 0, 3600 * 1000, NULL, { NULL, NULL } },
  { "websocket-max-message", SLUICE_OPTION_SIZE, G_STRUCT_OFFSET (HttpsOptions, ws_max_message),
    "1MiB", "largest WebSocket message accepted (MQTT over WebSockets: keep it above the MQTT "
    "max-packet; a packet may also span messages)", 1024, (gint64) 256 << 20, NULL,
    { NULL, NULL } },
  SLUICE_OPTION_END
};

/* --- refcounts --- */

HttpsTransport *
https_transport_ref (HttpsTransport *t)
{
  g_atomic_int_inc (&t->ref_count);
  return t;
}

void
https_transport_unref (HttpsTransport *t)
{
  if (!g_atomic_int_dec_and_test (&t->ref_count))
    return;
  g_free (t->servers);
  g_clear_object (&t->certificate);
  g_strfreev (t->listen);
  g_strfreev (t->tls_listen);
  g_free (t->hostname);
  g_free (t->name);
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->idle_cond);
  g_free (t);
}

HttpsServer *
https_server_ref (HttpsServer *server)
{
  server->ref_count++;   /* worker thread only */
  return server;
}

void
https_server_unref (HttpsServer *server)
{
  if (--server->ref_count > 0)
    return;
  g_hash_table_unref (server->principals);
  g_hash_table_unref (server->batches);
  g_ptr_array_unref (server->listeners);
  g_object_unref (server->cancellable);
  https_transport_unref (server->transport);
  g_free (server);
}

static HttpsServer *
server_new (HttpsTransport *t, guint index, GMainContext *context)
{
  HttpsServer *server = g_new0 (HttpsServer, 1);

  server->ref_count = 1;
  server->transport = https_transport_ref (t);
  server->index = index;
  server->context = context;
  server->principals = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify) https_principal_cache_free);
  server->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) https_listener_free);
  g_queue_init (&server->handshakes);
  server->cancellable = g_cancellable_new ();
  server->batches = g_hash_table_new (NULL, NULL);
  g_queue_init (&server->requests);
  g_queue_init (&server->drains);
  g_queue_init (&server->websockets);
  return server;
}

/* --- running something on every worker --- */

typedef void (*WorkerFunc) (HttpsServer *server, gpointer data);

typedef struct {
  HttpsTransport *t;
  WorkerFunc func;
  gpointer data;
} OnWorker;

static void
on_worker (guint index, gpointer data)
{
  OnWorker *w = data;

  if (index < w->t->n_servers && w->t->servers[index])
    w->func (w->t->servers[index], w->data);
}

/* Run `func` on each worker's server, on that worker's thread, and wait for
 * all of them. `priority` LOW lets work already queued there (answers being
 * written) go first. */
static void
run_on_workers (HttpsTransport *t, WorkerFunc func, gpointer data, gint priority)
{
  OnWorker w = { t, func, data };

  sluice_host_run_on_workers (t->host, priority, on_worker, &w);
}

/* --- addresses and sockets --- */

static GSocketAddress *
parse_address (const char *text, GError **error)
{
  const char *colon = strrchr (text, ':');
  g_autofree char *host = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  gint64 port;

  if (!colon || !https_parse_int (colon + 1, 0, 65535, &port))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "'%s' is not host:port (e.g. 127.0.0.1:8080, [::1]:8443, *:443)", text);
      return NULL;
    }
  host = g_strndup (text, colon - text);
  if (host[0] == '[' && host[strlen (host) - 1] == ']')
    {
      char *inner = g_strndup (host + 1, strlen (host) - 2);
      g_free (host);
      host = inner;
    }
  if (host[0] == '\0' || g_str_equal (host, "*"))
    inet = g_inet_address_new_any (G_SOCKET_FAMILY_IPV4);
  else if (g_ascii_strcasecmp (host, "localhost") == 0)
    inet = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  else
    inet = g_inet_address_new_from_string (host);
  if (!inet)
    {
      /* A name: resolved once, at start, on the main thread. */
      g_autoptr (GResolver) resolver = g_resolver_get_default ();
      GList *list = g_resolver_lookup_by_name (resolver, host, NULL, error);

      if (!list)
        {
          g_prefix_error (error, "cannot resolve '%s': ", host);
          return NULL;
        }
      inet = g_object_ref (list->data);
      g_resolver_free_addresses (list);
    }
  return g_inet_socket_address_new (inet, (guint16) port);
}

static char *
format_address (GSocketAddress *addr)
{
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (addr);
  GInetAddress *ip = g_inet_socket_address_get_address (inet);
  g_autofree char *text = g_inet_address_to_string (ip);

  if (g_inet_address_get_family (ip) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[%s]:%u", text, g_inet_socket_address_get_port (inet));
  return g_strdup_printf ("%s:%u", text, g_inet_socket_address_get_port (inet));
}

/* SO_REUSEPORT would let a second process bind our port without a word.
 * So the port is first taken alone (which fails when anybody holds it, and
 * picks a free one for port 0), then released for the workers' sockets. */
static GSocketAddress *
probe_address (GSocketAddress *addr, GError **error)
{
  g_autoptr (GSocket) probe = g_socket_new (g_socket_address_get_family (addr),
                                            G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  GSocketAddress *bound;

  if (!probe || !g_socket_bind (probe, addr, TRUE, error))
    return NULL;
  bound = g_socket_get_local_address (probe, error);
  g_socket_close (probe, NULL);
  return bound;
}

static GSocket *
bind_socket (GSocketAddress *addr, GError **error)
{
  g_autoptr (GSocket) sock = g_socket_new (g_socket_address_get_family (addr),
                                           G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  struct sockaddr_storage native;
  gsize native_len = g_socket_address_get_native_size (addr);
  int fd;

  if (!sock)
    return NULL;
  fd = g_socket_get_fd (sock);
  /* One socket per worker on the same port; the kernel balances them.
   * bind(2) itself, because g_socket_bind() turns SO_REUSEPORT off again
   * for TCP sockets. */
  if (!g_socket_set_option (sock, SOL_SOCKET, SO_REUSEADDR, 1, error)
      || !g_socket_set_option (sock, SOL_SOCKET, SO_REUSEPORT, 1, error)
      || !g_socket_address_to_native (addr, &native, sizeof native, error))
    return NULL;
  if (bind (fd, (struct sockaddr *) &native, (socklen_t) native_len) < 0)
    {
      int e = errno;
      g_autofree char *text = format_address (addr);

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "cannot bind %s: %s", text,
                   g_strerror (e));
      return NULL;
    }
  g_socket_set_listen_backlog (sock, 1024);
  if (!g_socket_listen (sock, error))
    return NULL;
  return g_steal_pointer (&sock);
}

/* --- per-worker set-up and teardown --- */

/* Per worker index, a GPtrArray of its listening GSocket*s. */
typedef struct {
  GPtrArray *plain;
  GPtrArray *tls;
  GMutex lock;
  GError *error;
} SetupArgs;

static void
setup_on_worker (HttpsServer *server, gpointer data)
{
  SetupArgs *args = data;
  GPtrArray *plain = args->plain->pdata[server->index];
  GPtrArray *tls = args->tls->pdata[server->index];

  g_autoptr (GError) error = NULL;

  /* Created here so that its sources attach to this worker's context. */
  server->soup = soup_server_new ("server-header", NULL, NULL);
  https_server_install_handlers (server);
  https_server_install_websockets (server);
  if (!https_server_add_keepalive_anchor (server, &error))
    {
      g_mutex_lock (&args->lock);
      if (!args->error)
        args->error = g_steal_pointer (&error);
      g_mutex_unlock (&args->lock);
      return;
    }
  for (guint i = 0; i < plain->len; i++)
    https_server_listen (server, plain->pdata[i], FALSE);
  for (guint i = 0; i < tls->len; i++)
    https_server_listen (server, tls->pdata[i], TRUE);
}

static void
close_listeners_on_worker (HttpsServer *server, gpointer data)
{
  for (guint i = 0; i < server->listeners->len; i++)
    https_listener_close (server->listeners->pdata[i]);
}

static void
cancel_waits_on_worker (HttpsServer *server, gpointer data)
{
  g_cancellable_cancel (server->cancellable);
}

static void
disconnect_on_worker (HttpsServer *server, gpointer data)
{
  if (server->soup)
    soup_server_disconnect (server->soup);
}

static void
teardown_on_worker (HttpsServer *server, gpointer data)
{
  close_listeners_on_worker (server, NULL);
  https_batches_flush (server);
  https_server_cancel_handshakes (server);
  g_cancellable_cancel (server->cancellable);
  https_server_close_websockets (server);
  if (server->soup)
    {
      g_signal_handlers_disconnect_by_data (server->soup, server);
      soup_server_disconnect (server->soup);
    }
  https_server_teardown_requests (server);
  g_clear_object (&server->soup);
  g_hash_table_remove_all (server->principals);
}

/* At low priority, so that callbacks of cancelled closings run first. */
static void
release_on_worker (HttpsServer *server, gpointer data)
{
  https_server_unref (server);
}

/* --- vtable --- */

static void https_destroy (gpointer self);

static gpointer
https_create (SluiceHost *host, const SluiceTransportConfig *config, const void *options,
              GError **error)
{
  const HttpsOptions *o = options;
  HttpsTransport *t = g_new0 (HttpsTransport, 1);

  t->ref_count = 1;
  t->host = host;
  t->name = g_strdup (config->instance_name);
  t->hostname = g_strdup (sluice_host_get_hostname (host));
  t->options = *o;
  t->listen = g_strdupv (config->listen);
  t->tls_listen = g_strdupv (config->tls_listen);
  g_mutex_init (&t->lock);
  g_cond_init (&t->idle_cond);

  if ((!t->listen || !t->listen[0]) && (!t->tls_listen || !t->tls_listen[0]))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "listen: the HTTPS transport needs `listen` or `tls-listen`");
      https_transport_unref (t);
      return NULL;
    }
  if (t->tls_listen && t->tls_listen[0])
    {
      g_autoptr (GError) local = NULL;

      if (!config->tls_cert || !config->tls_key)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "tls-listen: no certificate (set tls-cert and tls-key)");
          https_transport_unref (t);
          return NULL;
        }
      t->certificate = g_tls_certificate_new_from_files (config->tls_cert, config->tls_key,
                                                         &local);
      if (!t->certificate)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                       "tls-cert %s / tls-key %s: %s%s", config->tls_cert, config->tls_key,
                       local->message,
                       g_error_matches (local, G_TLS_ERROR, G_TLS_ERROR_UNAVAILABLE)
                         ? " (install the Debian package glib-networking)" : "");
          https_transport_unref (t);
          return NULL;
        }
    }

  t->request_bytes = sluice_host_counter (host, "sluice_http_request_bytes_total",
                                          "bytes of HTTP request bodies received");
  t->connections = sluice_host_gauge (host, "sluice_http_connections",
                                      "open HTTP connections");
  t->websockets = sluice_host_gauge (host, "sluice_http_websockets",
                                     "open WebSocket connections carrying another protocol");
  t->websockets_refused = sluice_host_counter (host, "sluice_http_websockets_refused_total",
                                               "WebSocket upgrades refused (no transport for "
                                               "the subprotocol, limits, shutdown)");
  t->rejected_too_large = sluice_host_counter (host, "sluice_http_rejected_too_large_total",
                                               "requests refused for a body over max-body");
  return t;
}

static gboolean
listen_all (HttpsTransport *t, SetupArgs *args, gboolean tls, GPtrArray *reports,
            GError **error)
{
  char **addrs = tls ? t->tls_listen : t->listen;
  GPtrArray *per_worker = tls ? args->tls : args->plain;

  for (guint a = 0; addrs && addrs[a]; a++)
    {
      g_autoptr (GSocketAddress) want = parse_address (addrs[a], error);
      g_autoptr (GSocketAddress) bound = NULL;

      if (!want || !(bound = probe_address (want, error)))
        goto fail;
      for (guint i = 0; i < t->n_servers; i++)
        {
          GSocket *more = bind_socket (bound, error);
          if (!more)
            goto fail;
          g_ptr_array_add (per_worker->pdata[i], more);
        }
      g_ptr_array_add (reports, format_address (bound));
      continue;
    fail:
      g_prefix_error (error, "%s %s: ", tls ? "tls-listen" : "listen", addrs[a]);
      return FALSE;
    }
  return TRUE;
}

static gboolean
https_start (gpointer self, GError **error)
{
  HttpsTransport *t = self;
  SetupArgs args = { 0 };
  g_autoptr (GPtrArray) plain_reports = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) tls_reports = g_ptr_array_new_with_free_func (g_free);
  gboolean ok;

  t->n_servers = sluice_host_get_worker_count (t->host);
  if (t->n_servers == 0)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "no I/O workers");
      return FALSE;
    }
  t->servers = g_new0 (HttpsServer *, t->n_servers);
  args.plain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  args.tls = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_mutex_init (&args.lock);
  for (guint i = 0; i < t->n_servers; i++)
    {
      g_ptr_array_add (args.plain, g_ptr_array_new_with_free_func (g_object_unref));
      g_ptr_array_add (args.tls, g_ptr_array_new_with_free_func (g_object_unref));
    }

  ok = listen_all (t, &args, FALSE, plain_reports, error)
       && listen_all (t, &args, TRUE, tls_reports, error);
  if (ok)
    {
      for (guint i = 0; i < t->n_servers; i++)
        t->servers[i] = server_new (t, i, sluice_host_get_worker_context (t->host, i));
      run_on_workers (t, setup_on_worker, &args, G_PRIORITY_HIGH);
      if (args.error)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&args.error),
                                      "cannot set up the HTTP server: ");
          ok = FALSE;
        }
    }
  g_ptr_array_unref (args.plain);
  g_ptr_array_unref (args.tls);
  g_mutex_clear (&args.lock);
  if (!ok)
    return FALSE;

  for (guint i = 0; i < plain_reports->len; i++)
    sluice_host_report_listening (t->host, t->name, FALSE, plain_reports->pdata[i]);
  for (guint i = 0; i < tls_reports->len; i++)
    sluice_host_report_listening (t->host, t->name, TRUE, tls_reports->pdata[i]);
  g_info ("[transport.%s] serving HTTP on %u workers", t->name, t->n_servers);
  return TRUE;
}

static void
https_stop (gpointer self)
{
  HttpsTransport *t = self;
  gint64 deadline = g_get_monotonic_time () + STOP_DRAIN_TIMEOUT_US;
  guint left;

  if (!t->servers || g_atomic_int_get (&t->stopping))
    return;
  g_atomic_int_set (&t->stopping, TRUE);
  /* 1. No new connections; new requests on open ones get 503. */
  run_on_workers (t, close_listeners_on_worker, NULL, G_PRIORITY_HIGH);
  /* 2. Long polls answer now; appends, reads and registry calls finish. */
  run_on_workers (t, cancel_waits_on_worker, NULL, G_PRIORITY_HIGH);
  g_mutex_lock (&t->lock);
  while (t->inflight > 0)
    if (!g_cond_wait_until (&t->idle_cond, &t->lock, deadline))
      break;
  left = t->inflight;
  g_mutex_unlock (&t->lock);
  if (left > 0)
    g_message ("[transport.%s] %u requests still waiting after %d s; closing their "
               "connections", t->name, left, (int) (STOP_DRAIN_TIMEOUT_US / G_USEC_PER_SEC));
  /* 3. After the answers queued so far are written, close the connections. */
  run_on_workers (t, disconnect_on_worker, NULL, G_PRIORITY_LOW);
}

static void
https_destroy (gpointer self)
{
  HttpsTransport *t = self;

  if (t->servers)
    {
      run_on_workers (t, teardown_on_worker, NULL, G_PRIORITY_HIGH);
      run_on_workers (t, release_on_worker, NULL, G_PRIORITY_LOW);
      memset (t->servers, 0, t->n_servers * sizeof (HttpsServer *));
    }
  https_transport_unref (t);
}

static const SluiceTransportVTable https_vtable = {
  .flags = SLUICE_TRANSPORT_OWNS_LISTENERS,
  .create = https_create,
  .start = https_start,
  .stop = https_stop,
  .destroy = https_destroy,
};

SLUICE_PLUGIN_DEFINE (transport, https, "0.1.0",
                      "HTTPS: IoT Hub device and registry REST, Event Hubs send, stream reads",
                      "Apache-2.0", &https_vtable, https_options, sizeof (HttpsOptions), NULL)
