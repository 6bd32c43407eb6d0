/* transport-kafka — the Kafka wire primitives: big-endian integers,
 * varints, classic and compact (flexible) strings, bytes and arrays, tagged
 * fields, the request header (v0 / v1 / v2) and the response header (v0 /
 * v1), the API key table and the protocol's error codes.
 *
 * Pure functions: bytes in, values out; values in, bytes out. No I/O, so
 * unit tests and the fuzzer drive them directly. Written from the Apache
 * Kafka protocol guide and its message schemas.
 *
 * The reader is sticky: after the first underflow or bad value every read
 * returns zero / NULL and kafka_reader_failed() says why, so decoders read a
 * whole structure and check once. Everything a reader allocates lives in its
 * arena and is freed with it.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  KAFKA_API_PRODUCE = 0,
  KAFKA_API_FETCH = 1,
  KAFKA_API_LIST_OFFSETS = 2,
  KAFKA_API_METADATA = 3,
  KAFKA_API_OFFSET_COMMIT = 8,
  KAFKA_API_OFFSET_FETCH = 9,
  KAFKA_API_FIND_COORDINATOR = 10,
  KAFKA_API_JOIN_GROUP = 11,
  KAFKA_API_HEARTBEAT = 12,
  KAFKA_API_LEAVE_GROUP = 13,
  KAFKA_API_SYNC_GROUP = 14,
  KAFKA_API_SASL_HANDSHAKE = 17,
  KAFKA_API_API_VERSIONS = 18,
  KAFKA_API_CREATE_TOPICS = 19,
  KAFKA_API_DELETE_TOPICS = 20,
  KAFKA_API_INIT_PRODUCER_ID = 22,
  KAFKA_API_DESCRIBE_CONFIGS = 32,
  KAFKA_API_SASL_AUTHENTICATE = 36,
} KafkaApiKey;

/* The protocol's error codes that Sluice answers with. */
typedef enum {
  KAFKA_ERR_UNKNOWN_SERVER_ERROR = -1,
  KAFKA_ERR_NONE = 0,
  KAFKA_ERR_OFFSET_OUT_OF_RANGE = 1,
  KAFKA_ERR_CORRUPT_MESSAGE = 2,
  KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
  KAFKA_ERR_INVALID_FETCH_SIZE = 4,
  KAFKA_ERR_LEADER_NOT_AVAILABLE = 5,
  KAFKA_ERR_NOT_LEADER_OR_FOLLOWER = 6,
  KAFKA_ERR_REQUEST_TIMED_OUT = 7,
  KAFKA_ERR_MESSAGE_TOO_LARGE = 10,
  KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
  KAFKA_ERR_COORDINATOR_NOT_AVAILABLE = 15,
  KAFKA_ERR_NOT_COORDINATOR = 16,
  KAFKA_ERR_INVALID_TOPIC_EXCEPTION = 17,
  KAFKA_ERR_RECORD_LIST_TOO_LARGE = 18,
  KAFKA_ERR_INVALID_REQUIRED_ACKS = 21,
  KAFKA_ERR_ILLEGAL_GENERATION = 22,
  KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL = 23,
  KAFKA_ERR_INVALID_GROUP_ID = 24,
  KAFKA_ERR_UNKNOWN_MEMBER_ID = 25,
  KAFKA_ERR_INVALID_SESSION_TIMEOUT = 26,
  KAFKA_ERR_REBALANCE_IN_PROGRESS = 27,
  KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED = 29,
  KAFKA_ERR_GROUP_AUTHORIZATION_FAILED = 30,
  KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED = 31,
  KAFKA_ERR_UNSUPPORTED_SASL_MECHANISM = 33,
  KAFKA_ERR_ILLEGAL_SASL_STATE = 34,
  KAFKA_ERR_UNSUPPORTED_VERSION = 35,
  KAFKA_ERR_TOPIC_ALREADY_EXISTS = 36,
  KAFKA_ERR_INVALID_PARTITIONS = 37,
  KAFKA_ERR_INVALID_REPLICATION_FACTOR = 38,
  KAFKA_ERR_INVALID_CONFIG = 40,
  KAFKA_ERR_INVALID_REQUEST = 42,
  KAFKA_ERR_POLICY_VIOLATION = 44,
  KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
  KAFKA_ERR_DUPLICATE_SEQUENCE_NUMBER = 46,
  KAFKA_ERR_INVALID_PRODUCER_EPOCH = 47,
  KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
  KAFKA_ERR_KAFKA_STORAGE_ERROR = 56,
  KAFKA_ERR_SASL_AUTHENTICATION_FAILED = 58,
  KAFKA_ERR_UNKNOWN_PRODUCER_ID = 59,
  KAFKA_ERR_NON_EMPTY_GROUP = 68,
  KAFKA_ERR_GROUP_ID_NOT_FOUND = 69,
  KAFKA_ERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
  KAFKA_ERR_MEMBER_ID_REQUIRED = 79,
  KAFKA_ERR_INVALID_RECORD = 87,
} KafkaErrorCode;

/* What the codec can read and write for one API key. */
typedef struct {
  gint16 api_key;
  const char *name;
  gint16 min_version;
  gint16 max_version;
  gint16 first_flexible;   /* first version with request header v2 / tagged fields */
} KafkaApiInfo;

/* NULL for an API key the codec does not know. */
const KafkaApiInfo *kafka_api_lookup (gint16 api_key);
/* Every API the codec knows, ordered by key; `n` receives the count. */
const KafkaApiInfo *kafka_api_table (guint *n);
const char *kafka_api_name (gint16 api_key);
gboolean kafka_api_is_flexible (gint16 api_key, gint16 api_version);
/* Response header version: 1 for flexible versions, except ApiVersions
 * (always 0, so that a client can read the answer to any version). */
guint kafka_response_header_version (gint16 api_key, gint16 api_version);

#define KAFKA_CODEC_ERROR (kafka_codec_error_quark ())
GQuark kafka_codec_error_quark (void);
typedef enum {
  KAFKA_CODEC_ERROR_MALFORMED,          /* truncated, bad length, bad varint */
  KAFKA_CODEC_ERROR_UNKNOWN_API,        /* API key not implemented */
  KAFKA_CODEC_ERROR_UNSUPPORTED_VERSION,/* known API, version out of range */
} KafkaCodecError;

/* --- reading --- */
typedef struct {
  const guint8 *data;
  gsize len;
  gsize pos;
  gboolean flexible;       /* compact strings / arrays, tagged fields */
  const char *failed;      /* first failure (static text), NULL while fine */
  GPtrArray *arena;        /* g_free'd allocations; not owned */
} KafkaReader;

void kafka_reader_init (KafkaReader *r, const guint8 *data, gsize len, GPtrArray *arena);
static inline gboolean
kafka_reader_failed (const KafkaReader *r)
{
  return r->failed != NULL;
}
gsize kafka_reader_remaining (const KafkaReader *r);
void kafka_reader_fail (KafkaReader *r, const char *why);
/* Zeroed memory owned by the arena. Fails (NULL) on overflow. */
gpointer kafka_reader_alloc (KafkaReader *r, gsize n, gsize size);

gint8 kafka_read_i8 (KafkaReader *r);
gint16 kafka_read_i16 (KafkaReader *r);
gint32 kafka_read_i32 (KafkaReader *r);
gint64 kafka_read_i64 (KafkaReader *r);
gboolean kafka_read_bool (KafkaReader *r);
guint32 kafka_read_uvarint (KafkaReader *r);
gint32 kafka_read_varint (KafkaReader *r);
gint64 kafka_read_varlong (KafkaReader *r);
/* A (nullable) string, compact when the reader is flexible. NUL-terminated
 * copy in the arena; NULL for a null string. A NUL byte inside fails. */
const char *kafka_read_string (KafkaReader *r);
/* The same for a field that must not be null (fails on null). */
const char *kafka_read_string_nn (KafkaReader *r);
/* The classic (int16 length) nullable string, whatever the reader's mode:
 * request header v1 / v2 client id. */
const char *kafka_read_classic_string (KafkaReader *r);
/* (Nullable) bytes, compact when flexible: a view into the input. Returns
 * FALSE for null (or on failure). */
gboolean kafka_read_bytes (KafkaReader *r, const guint8 **data, gsize *len);
/* Array element count: -1 for null, else 0..remaining bytes (an element
 * takes at least one byte, so a larger count is malformed). */
gint32 kafka_read_array_len (KafkaReader *r);
/* Skip the tagged fields of a flexible structure (nothing otherwise). */
void kafka_read_tags (KafkaReader *r);

/* --- writing --- */
/* A response under construction: scalar bytes in `buf`, large payloads
 * (stored record batches) referenced as GBytes segments without copying. */
typedef struct {
  GByteArray *buf;
  GPtrArray *segments;     /* GBytes*, in order; `buf` follows them */
  gsize flushed;           /* bytes in `segments` */
  gboolean flexible;
} KafkaWriter;

void kafka_writer_init (KafkaWriter *w, gboolean flexible);
void kafka_writer_clear (KafkaWriter *w);
gsize kafka_writer_length (const KafkaWriter *w);
void kafka_write_i8 (KafkaWriter *w, gint8 v);
void kafka_write_i16 (KafkaWriter *w, gint16 v);
void kafka_write_i32 (KafkaWriter *w, gint32 v);
void kafka_write_i64 (KafkaWriter *w, gint64 v);
void kafka_write_bool (KafkaWriter *w, gboolean v);
void kafka_write_uvarint (KafkaWriter *w, guint32 v);
void kafka_write_varint (KafkaWriter *w, gint32 v);
/* Nullable string, compact when flexible. */
void kafka_write_string (KafkaWriter *w, const char *s);
void kafka_write_bytes (KafkaWriter *w, const guint8 *data, gsize len, gboolean is_null);
/* Array count (-1: null). */
void kafka_write_array_len (KafkaWriter *w, gint32 n);
/* An empty tagged-field section when flexible. */
void kafka_write_tags (KafkaWriter *w);
/* Bytes length prefix (as kafka_write_bytes) followed by `parts` referenced
 * (not copied). `parts` NULL: a null value. */
void kafka_write_bytes_parts (KafkaWriter *w, GBytes *const *parts, guint n, gboolean is_null);
/* Finish a frame whose first bytes are its own size field (4 bytes written
 * as a placeholder by the caller): patch the size and return the segments
 * (transfer full, GBytes*). The writer is cleared. */
GPtrArray *kafka_writer_finish_frame (KafkaWriter *w);
/* All segments joined (tests, small answers). */
GBytes *kafka_segments_join (GPtrArray *segments);

/* --- headers --- */
typedef struct {
  gint16 api_key;
  gint16 api_version;
  gint32 correlation_id;
  const char *client_id;   /* NULL: null */
  guint header_version;    /* 1 or 2 (v0 is only used by controlled shutdown) */
} KafkaRequestHeader;

/* Start a response: size placeholder, correlation id, header tags (v1). */
void kafka_write_response_header (KafkaWriter *w, gint32 correlation_id,
                                  guint header_version);

/* --- framing: int32 size, then that many bytes --- */
#define KAFKA_FRAME_MIN 8  /* api key, version, correlation id */

typedef enum {
  KAFKA_FRAME_NEED_MORE,   /* not all of the frame is there yet */
  KAFKA_FRAME_COMPLETE,    /* `*size` bytes follow the 4-byte size field */
  KAFKA_FRAME_TOO_LARGE,   /* over `max_size` (or negative) */
  KAFKA_FRAME_TOO_SMALL,   /* shorter than any request header */
} KafkaFrameStatus;

/* Look at the start of `data`: is a whole frame there? The size is checked
 * as soon as its 4 bytes arrive, before the body is buffered. */
KafkaFrameStatus kafka_frame_check (const guint8 *data, gsize len, gsize max_size,
                                    gsize *size);

G_END_DECLS
