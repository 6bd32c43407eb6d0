/* transport-https — the pure parts: routes, JSON in and out, header
 * mapping. Bytes and strings in, structs and strings out; no I/O, so unit
 * tests drive them directly.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

G_BEGIN_DECLS

typedef enum {
  HTTPS_ROUTE_NONE = 0,          /* no such path: 404 */
  HTTPS_ROUTE_HEALTHZ,           /* /healthz */
  HTTPS_ROUTE_METRICS,           /* /metrics */
  HTTPS_ROUTE_DEVICE_EVENTS,     /* /devices/{id}/messages/events */
  HTTPS_ROUTE_DEVICE,            /* /devices/{id} */
  HTTPS_ROUTE_DEVICES,           /* /devices */
  HTTPS_ROUTE_STREAM,            /* /{stream} */
  HTTPS_ROUTE_STREAM_SEND,       /* /{stream}/messages */
  HTTPS_ROUTE_STREAM_PARTITION,  /* /{stream}/partitions/{p}/messages */
  HTTPS_ROUTE_GROUP_OFFSETS,     /* /{stream}/consumergroups/{g}/offsets */
  HTTPS_ROUTE_NOT_IMPLEMENTED,   /* IoT Hub paths of later features: 501 */
} HttpsRouteKind;

typedef struct {
  HttpsRouteKind kind;
  gboolean iothub;               /* answer errors in IoT Hub's shape */
  char *device_id;
  char *stream;
  char *group;
  gint32 partition;              /* -1: none in the path */
  const char *feature;           /* NOT_IMPLEMENTED / NONE: what the path is */
  const char *methods;           /* allowed methods, for 405 and `Allow` */
} HttpsRoute;

/* Split a decoded path into a route. Fixed segments match case-insensitively;
 * ids, streams and groups keep their case. */
void https_route_parse (const char *path, HttpsRoute *route);
void https_route_clear (HttpsRoute *route);
/* TRUE when `method` is one of route->methods. */
gboolean https_route_allows (const HttpsRoute *route, const char *method);

/* A consumer group name: 1-255 printable ASCII characters, no `/`. */
gboolean https_group_name_is_valid (const char *name);

/* A decimal integer in [min, max]; nothing else (no sign for min >= 0, no
 * spaces, no suffix). */
gboolean https_parse_int (const char *text, gint64 min, gint64 max, gint64 *out);

/* `2024-05-01T12:00:00.123Z` for milliseconds since the epoch. */
void https_format_time (gint64 ms, char buf[32]);

/* Append `data` as a JSON string literal (quotes included). `len` -1: NUL
 * terminated. Invalid UTF-8 is replaced with U+FFFD. */
void https_json_append_string (GString *out, const char *data, gssize len);
/* Append one record of the read API:
 * {"offset":N,"enqueuedTime":"...","key":...,"properties":{...},"body":...}
 * with `"bodyEncoding":"base64"` (and `keyEncoding`) for bytes that are not
 * UTF-8. */
void https_json_append_record (GString *out, const SluiceRecordView *record);

/* Device telemetry headers (WIRE.md, DESIGN.md "Message ↔ record"): an
 * `iothub-app-X` header is the application property X; the system ones map
 * to fixed record header names. Returns the record header name for
 * `http_name` (case-insensitive) or NULL when the header is not a message
 * property. `*app` is TRUE for application properties. (transfer none: a
 * pointer into `http_name` or a static string) */
const char *https_device_header_name (const char *http_name, gboolean *app);

/* One message of an Event Hubs send. */
typedef struct {
  GBytes *body;
  char *partition_key;           /* NULL: none */
  GPtrArray *headers;            /* char*: name, value, name, value, ... NULL */
} HttpsSendMessage;

HttpsSendMessage *https_send_message_new (void);
void https_send_message_free (HttpsSendMessage *message);
/* Set a record header, replacing one of the same name. */
void https_send_message_set_header (HttpsSendMessage *message, const char *name,
                                    const char *value);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HttpsSendMessage, https_send_message_free)

/* Event Hubs `BrokerProperties` (header or batch member) into a message:
 * PartitionKey, MessageId, CorrelationId, ContentType, To. */
gboolean https_apply_broker_properties (HttpsSendMessage *message, const char *json,
                                        GError **error);
/* Parse an `application/vnd.microsoft.servicebus.json` batch:
 * [{"Body":..,"UserProperties":{..},"BrokerProperties":{..}}, ...].
 * (transfer full: HttpsSendMessage*) SLUICE_ERROR_INVALID on bad input. */
GPtrArray *https_parse_send_batch (const char *json, gsize len, GError **error);

/* Parse a consumer-group commit: [{"partition":P,"offset":O}, ...].
 * (transfer full: GArray of SluiceGroupOffset, metadata NULL) */
GArray *https_parse_offsets (const char *json, gsize len, GError **error);
/* [{"partition":P,"offset":O[,"metadata":".."]}, ...] (transfer full) */
char *https_offsets_to_json (const GArray *offsets);

G_END_DECLS
