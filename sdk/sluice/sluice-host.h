/* Sluice plugin SDK — host services: what a plugin may ask of the core.
 *
 * Threads: calls marked (async) return at once and call back on the
 * thread-default GMainContext of the calling thread (an I/O worker's, or the
 * main one), never re-entrantly from inside the call. Calls marked (memory)
 * read in-memory state and never block. The core checks authorization on
 * every call that takes a principal, so a transport cannot forget it.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>
#include <sluice/sluice-record.h>
#include <sluice/sluice-auth.h>
#include <sluice/sluice-storage.h>

G_BEGIN_DECLS

/* --- hub --- */
SLUICE_API const char *sluice_host_get_hostname (SluiceHost *host);
SLUICE_API const char *sluice_host_get_data_dir (SluiceHost *host);
SLUICE_API guint sluice_host_get_worker_count (SluiceHost *host);
/* Worker i's context, for transports that own listeners. (transfer none) */
SLUICE_API GMainContext *sluice_host_get_worker_context (SluiceHost *host, guint i);
/* Run `func (worker index, user_data)` on every I/O worker's thread and
 * return when all have run: for transports that keep per-worker state
 * (servers, sources) created and destroyed on the worker that owns it.
 * `priority` orders it against work already queued there (G_PRIORITY_LOW
 * lets answers being written go first). Call it from the main thread, never
 * from a worker (it would wait for itself). */
typedef void (*SluiceWorkerFunc) (guint worker, gpointer user_data);
SLUICE_API void sluice_host_run_on_workers (SluiceHost *host, gint priority,
                                            SluiceWorkerFunc func, gpointer user_data);
/* The certificate and key PEM files TLS listeners use when they set none:
 * `[hub] tls-cert` / `tls-key`, or the generated development pair. */
SLUICE_API const char *sluice_host_get_tls_cert_file (SluiceHost *host);
SLUICE_API const char *sluice_host_get_tls_key_file (SluiceHost *host);
/* Transports that own their listeners report each bound address, so that
 * sluiced can print it (`listening transport.NAME tls 127.0.0.1:8443`). */
SLUICE_API void sluice_host_report_listening (SluiceHost *host, const char *transport_name,
                                              gboolean tls, const char *address);
/* TRUE once a graceful shutdown began. */
SLUICE_API gboolean sluice_host_is_stopping (SluiceHost *host);

/* --- auth --- */
/* Run the auth chain. (memory) (transfer full) */
SLUICE_API SluicePrincipal *sluice_host_authenticate (SluiceHost *host,
                                                      const SluiceCredentials *credentials,
                                                      GError **error);
/* Check one action (rights, stream scope, device scope, chain). (memory) */
SLUICE_API gboolean sluice_host_authorize (SluiceHost *host, const SluicePrincipal *principal,
                                           SluiceAction action, const char *resource,
                                           GError **error);
/* Call `revoked` on the calling thread's context when the principal is
 * revoked (device disabled or deleted, keys rotated, policy removed) or its
 * credentials expire. Returns a watch id for sluice_host_unwatch_principal. */
typedef void (*SluiceRevokedFunc) (const char *reason, gpointer user_data);
SLUICE_API guint sluice_host_watch_principal (SluiceHost *host, SluicePrincipal *principal,
                                              SluiceRevokedFunc revoked, gpointer user_data);
SLUICE_API void sluice_host_unwatch_principal (SluiceHost *host, guint watch_id);

/* --- streams --- */
typedef enum {
  SLUICE_DURABILITY_NONE = 0,
  SLUICE_DURABILITY_INTERVAL = 1,
  SLUICE_DURABILITY_BATCH = 2,
} SluiceDurability;

typedef struct {
  gint32 partitions;
  SluiceDurability durability;
  gint64 retention_time_ms;   /* 0: none */
  guint64 retention_size;     /* 0: none */
  guint64 max_message;
} SluiceStreamInfo;

/* (memory) */
SLUICE_API gboolean sluice_host_stream_info (SluiceHost *host, const char *stream,
                                             SluiceStreamInfo *info, GError **error);
/* Names of all streams, sorted. (memory) (transfer full) */
SLUICE_API char **sluice_host_list_streams (SluiceHost *host);
/* First stored and next offset of a partition, as readers see it (only data
 * that met its durability policy is visible). (memory) */
SLUICE_API gboolean sluice_host_stream_bounds (SluiceHost *host, const char *stream,
                                               gint32 partition, gint64 *first,
                                               gint64 *next, GError **error);

typedef struct {
  gint32 partition;
  gint64 base_offset;
  gint32 record_count;
  gint64 append_time;          /* ms since the epoch */
} SluiceAppendResult;

/* `result` is NULL when `error` is set. */
typedef void (*SluiceAppendFunc) (const SluiceAppendResult *result, const GError *error,
                                  gpointer user_data);

typedef enum {
  /* Call back once the batch is in the partition log, before the durability
   * policy is met (Kafka acks=1). Default: after the policy is met. */
  SLUICE_APPEND_ACK_WRITTEN = 1 << 0,
  /* More appends follow from this thread at once (one client request that
   * spans partitions): the writer takes them together with the next append
   * without this flag, in one group and one completion, instead of waking
   * for each. The last append of the run must not carry it. (ABI 1.2) */
  SLUICE_APPEND_MORE = 1 << 1,
  /* The batch's bytes are handed over with it: the host stamps its offset
   * and append time into them in place instead of into a copy (for a batch
   * that is a slice of a larger buffer, such as a Kafka request). The caller
   * must not read those bytes again. (ABI 1.2) */
  SLUICE_APPEND_IN_PLACE = 1 << 2,
} SluiceAppendFlags;

/* Append one record batch (v2 layout, validated here) to `stream`.
 * `partition` >= 0 names the partition; -1 chooses by `key` (murmur2) or
 * round-robin when `key` is NULL. Checks SLUICE_ACTION_SEND. `done` may be
 * NULL (fire and forget). (async) (batch: transfer full) */
SLUICE_API void sluice_host_append (SluiceHost *host, SluicePrincipal *principal,
                                    const char *stream, gint32 partition,
                                    const guint8 *key, gsize key_len, GBytes *batch,
                                    guint flags, SluiceAppendFunc done, gpointer user_data);

/* Convenience for message transports: one record, headers a NULL-terminated
 * name, value list. The key (when set) also chooses the partition. (async) */
SLUICE_API void sluice_host_publish (SluiceHost *host, SluicePrincipal *principal,
                                     const char *stream, gint32 partition,
                                     const char *key, const char *const *headers,
                                     GBytes *body, SluiceAppendFunc done, gpointer user_data);

typedef struct {
  GPtrArray *batches;      /* SluiceBatch*, in offset order */
  gint64 first;            /* first stored offset of the partition */
  gint64 next;             /* next offset to be assigned (visible end) */
} SluiceReadResult;
SLUICE_API void sluice_read_result_free (SluiceReadResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceReadResult, sluice_read_result_free)

/* `result` (transfer full) is NULL when `error` is set. */
typedef void (*SluiceReadFunc) (SluiceReadResult *result, const GError *error,
                                gpointer user_data);

/* Read batches from `from_offset`. When nothing is there yet, wait up to
 * `wait_ms` for an append (woken by it, no polling), then answer (possibly
 * with no batches). Offsets before the first stored one answer
 * SLUICE_ERROR_OFFSET_OUT_OF_RANGE. Checks SLUICE_ACTION_LISTEN. Cancel with
 * `cancellable` (the callback then gets G_IO_ERROR_CANCELLED). (async) */
SLUICE_API void sluice_host_read (SluiceHost *host, SluicePrincipal *principal,
                                  const char *stream, gint32 partition, gint64 from_offset,
                                  gsize max_bytes, guint wait_ms, GCancellable *cancellable,
                                  SluiceReadFunc done, gpointer user_data);

typedef void (*SluiceDoneFunc) (const GError *error, gpointer user_data);

/* --- stream administration (Kafka CreateTopics / DeleteTopics, service APIs) --- */
/* Create `stream` with `info`'s partitions (>= 1), durability, retention and
 * max_message (0 / NONE fields take the hub's defaults: `[hub]` and
 * CONFIG.md). Kept in the KV, so it survives restarts; a `[stream.*]`
 * section of the same name still wins at the next start. SLUICE_ERROR_EXISTS
 * when it exists, SLUICE_ERROR_INVALID for a bad name or partition count.
 * Checks SLUICE_ACTION_MANAGE on `stream`. (async) (info: transfer none) */
SLUICE_API void sluice_host_stream_create (SluiceHost *host, SluicePrincipal *principal,
                                           const char *stream, const SluiceStreamInfo *info,
                                           SluiceDoneFunc done, gpointer user_data);
/* Delete `stream`, its partitions' data and its consumer groups. Appends in
 * flight fail with SLUICE_ERROR_NOT_FOUND; waiting readers are answered.
 * A stream named in a `[stream.*]` section is refused (SLUICE_ERROR_INVALID):
 * it would come back at the next start. Checks SLUICE_ACTION_MANAGE. (async) */
SLUICE_API void sluice_host_stream_delete (SluiceHost *host, SluicePrincipal *principal,
                                           const char *stream, SluiceDoneFunc done,
                                           gpointer user_data);

/* --- key/value store for plugins (sessions, retained messages, producer state) ---
 * Each plugin instance gets its own namespace (`space`, e.g. the transport
 * instance name): keys are stored as `x/{space}/{key}` in the storage KV and
 * no other namespace is reachable. Durable when `done` runs, like every
 * kv_commit. Runs on the core's job threads; callbacks come back on the
 * calling thread's context. */
typedef void (*SluiceKvGetFunc) (GBytes *value /* transfer full, NULL: absent */,
                                 const GError *error, gpointer user_data);
/* `pairs` (SluiceKvPair*, keys without the `x/{space}/` prefix, transfer full)
 * is NULL on error. */
typedef void (*SluiceKvScanFunc) (GPtrArray *pairs, const GError *error, gpointer user_data);
SLUICE_API void sluice_host_kv_get (SluiceHost *host, const char *space, const char *key,
                                    SluiceKvGetFunc done, gpointer user_data);
SLUICE_API void sluice_host_kv_scan (SluiceHost *host, const char *space, const char *prefix,
                                     SluiceKvScanFunc done, gpointer user_data);
/* Apply `ops` (keys relative to the space) atomically. (async) (ops: transfer none) */
SLUICE_API void sluice_host_kv_commit (SluiceHost *host, const char *space,
                                       const SluiceKvOp *ops, guint n, SluiceDoneFunc done,
                                       gpointer user_data);
/* The same scan, blocking: only from the main thread in a plugin's create /
 * start (loading state before serving). (transfer full: SluiceKvPair*) */
SLUICE_API GPtrArray *sluice_host_kv_scan_sync (SluiceHost *host, const char *space,
                                                const char *prefix, GError **error);

/* --- consumer groups (shared by every transport) --- */
typedef struct {
  gint32 partition;
  gint64 offset;           /* next offset to read; -1: none committed */
  char *metadata;          /* may be NULL */
} SluiceGroupOffset;

/* `offsets` (GArray of SluiceGroupOffset, transfer full) is NULL on error. */
typedef void (*SluiceOffsetsFunc) (GArray *offsets, const GError *error, gpointer user_data);

/* Commit offsets of `group` on `stream`; durable when `done` runs.
 * Checks SLUICE_ACTION_LISTEN. (async) */
SLUICE_API void sluice_host_commit_offsets (SluiceHost *host, SluicePrincipal *principal,
                                            const char *stream, const char *group,
                                            const SluiceGroupOffset *offsets, guint n,
                                            SluiceDoneFunc done, gpointer user_data);
/* Committed offsets of every partition (offset -1 where none). (async) */
SLUICE_API void sluice_host_fetch_offsets (SluiceHost *host, SluicePrincipal *principal,
                                           const char *stream, const char *group,
                                           SluiceOffsetsFunc done, gpointer user_data);

/* --- device registry (kept in the storage KV, cached in memory) --- */
typedef struct {
  char *device_id;
  char *generation_id;
  char *etag;
  gboolean enabled;
  char *status_reason;
  char *auth_type;             /* "sas", "selfSigned", "certificateAuthority" */
  char *primary_key;           /* base64, 32 bytes */
  char *secondary_key;
  char *primary_thumbprint;    /* hex SHA-256 */
  char *secondary_thumbprint;
  gint64 status_updated_time;  /* ms since the epoch */
  gint64 last_activity_time;
  gint64 cloud_to_device_message_count;
  gboolean connected;
} SluiceDevice;

SLUICE_API SluiceDevice *sluice_device_new (const char *device_id);
SLUICE_API SluiceDevice *sluice_device_copy (const SluiceDevice *device);
SLUICE_API void sluice_device_free (SluiceDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SluiceDevice, sluice_device_free)
/* IoT Hub's device JSON (`deviceId`, `etag`, `status`, `authentication`, ...). */
SLUICE_API char *sluice_device_to_json (const SluiceDevice *device);
SLUICE_API SluiceDevice *sluice_device_from_json (const char *json, gssize len, GError **error);
/* WIRE.md: 1–128 chars of [A-Za-z0-9-.%_*?!(),:=@$'] */
SLUICE_API gboolean sluice_device_id_is_valid (const char *device_id);
/* WIRE.md: 1–255 chars of [A-Za-z0-9._-], not reserved, not starting $ or _ */
SLUICE_API gboolean sluice_stream_name_is_valid (const char *name);

/* The current entry, or NULL. No authorization (for auth plugins). (memory)
 * (transfer full) */
SLUICE_API SluiceDevice *sluice_host_registry_lookup (SluiceHost *host, const char *device_id);
/* Checks REGISTRY_READ. (memory) (transfer full: SluiceDevice*) */
SLUICE_API GPtrArray *sluice_host_registry_list (SluiceHost *host, SluicePrincipal *principal,
                                                 GError **error);

typedef void (*SluiceDeviceFunc) (SluiceDevice *device /* transfer full */,
                                  const GError *error, gpointer user_data);
/* Create or update (IoT Hub PUT semantics): `if_match` NULL or "*" = any;
 * otherwise must equal the current etag (SLUICE_ERROR_PRECONDITION). Keys of a
 * `sas` device are generated when both are absent; one without the other is
 * SLUICE_ERROR_INVALID. Disabling a device revokes its live sessions.
 * Checks REGISTRY_WRITE. (async) (device: transfer none) */
SLUICE_API void sluice_host_registry_put (SluiceHost *host, SluicePrincipal *principal,
                                          const SluiceDevice *device, const char *if_match,
                                          SluiceDeviceFunc done, gpointer user_data);
SLUICE_API void sluice_host_registry_delete (SluiceHost *host, SluicePrincipal *principal,
                                             const char *device_id, const char *if_match,
                                             SluiceDoneFunc done, gpointer user_data);

/* --- metrics (Prometheus) --- */
typedef struct _SluiceCounter SluiceCounter;
/* Get or create a counter (or gauge) by full name with labels, e.g.
 * `sluice_http_requests_total{status="200"}`. Thread-safe; keep the pointer.
 * (transfer none: lives as long as the host) */
SLUICE_API SluiceCounter *sluice_host_counter (SluiceHost *host, const char *name_with_labels,
                                               const char *help);
SLUICE_API SluiceCounter *sluice_host_gauge (SluiceHost *host, const char *name_with_labels,
                                             const char *help);
SLUICE_API void sluice_counter_add (SluiceCounter *counter, gint64 delta);
SLUICE_API void sluice_counter_set (SluiceCounter *counter, gint64 value);
SLUICE_API gint64 sluice_counter_get (SluiceCounter *counter);
/* All metrics in the Prometheus text format. (transfer full) */
SLUICE_API char *sluice_host_metrics_render (SluiceHost *host);

G_END_DECLS
