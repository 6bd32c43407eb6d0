/* Sluice plugin SDK — common types and error domains.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/* The plugin ABI this SDK speaks. A plugin built against ABI (M, m) loads into a
 * host of ABI (M, n) when n >= m. New vtable slots are only appended (minor
 * bump); removing or reordering anything bumps the major. */
#define SLUICE_ABI_MAJOR 1
/* 1.1: the host KV service, stream create / delete, adopted connections
 * (carrier ops, protocol registration), SluiceTransportConfig.config, the
 * storage slots log_create_at and blob_list. */
/* 1.2: the transport slot reload, the append flags SLUICE_APPEND_MORE and
 * SLUICE_APPEND_IN_PLACE. */
/* 1.3: sluice_connection_read_into. */
#define SLUICE_ABI_MINOR 3

#if defined(_WIN32)
#define SLUICE_API
#else
#define SLUICE_API __attribute__ ((visibility ("default")))
#endif

typedef struct _SluiceHost SluiceHost;
typedef struct _SluiceConfig SluiceConfig;
typedef struct _SluicePrincipal SluicePrincipal;
typedef struct _SluiceConnection SluiceConnection;

/* Generic errors of host services (domain SLUICE_ERROR). Transports map them to
 * their protocol's own error (HTTP status, MQTT reason code, Kafka error code). */
typedef enum {
  SLUICE_ERROR_FAILED,          /* anything else */
  SLUICE_ERROR_INVALID,         /* malformed input (bad batch, bad JSON, bad name) */
  SLUICE_ERROR_NOT_FOUND,       /* unknown stream, partition, device, group */
  SLUICE_ERROR_EXISTS,          /* already exists */
  SLUICE_ERROR_UNAUTHENTICATED, /* credentials missing, wrong, expired */
  SLUICE_ERROR_FORBIDDEN,       /* authenticated, but the right is missing */
  SLUICE_ERROR_TOO_LARGE,       /* over a configured size limit */
  SLUICE_ERROR_PRECONDITION,    /* etag mismatch */
  SLUICE_ERROR_THROTTLED,       /* queue full, try later */
  SLUICE_ERROR_STORAGE,         /* the storage backend failed (disk full, I/O) */
  SLUICE_ERROR_CORRUPT,         /* stored data failed its CRC */
  SLUICE_ERROR_OFFSET_OUT_OF_RANGE,
  SLUICE_ERROR_SHUTTING_DOWN,   /* the host is stopping; nothing was accepted */
  SLUICE_ERROR_UNSUPPORTED,
} SluiceError;

/* Structured log lines from a plugin instance: the plugin is the log domain
 * (define G_LOG_DOMAIN as "sluice-<kind>-<name>"), the instance a field, so
 * `sluiced` prints `... sluice-transport-lines: message INSTANCE=lines`.
 * Never log secrets (keys, tokens, passwords). */
#define sluice_log(level, instance, ...)                                          \
  g_log_structured (G_LOG_DOMAIN, (level), "SLUICE_INSTANCE", (instance) ? (instance) : "-", \
                    "MESSAGE", __VA_ARGS__)
#define sluice_warning(instance, ...) sluice_log (G_LOG_LEVEL_WARNING, instance, __VA_ARGS__)
#define sluice_notice(instance, ...) sluice_log (G_LOG_LEVEL_MESSAGE, instance, __VA_ARGS__)
#define sluice_info(instance, ...) sluice_log (G_LOG_LEVEL_INFO, instance, __VA_ARGS__)
#define sluice_debug(instance, ...) sluice_log (G_LOG_LEVEL_DEBUG, instance, __VA_ARGS__)

#define SLUICE_ERROR (sluice_error_quark ())
SLUICE_API GQuark sluice_error_quark (void);

G_END_DECLS
