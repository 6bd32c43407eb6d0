/* transport-kafka — wire primitives, headers and the API table.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-codec.h"

#include <string.h>

G_DEFINE_QUARK (kafka-codec-error-quark, kafka_codec_error)

/* What the codec reads and writes. The versions are those the clients of
 * WIRE.md use: the non-flexible ranges of kafkajs 2.2 and kafka-python 2.0,
 * and the flexible ApiVersions v3 and InitProducerId v2..4 of librdkafka 2.0.
 * Kept ordered by key. */
static const KafkaApiInfo kafka_apis[] = {
  { KAFKA_API_PRODUCE, "Produce", 3, 7, 9 },
  { KAFKA_API_FETCH, "Fetch", 4, 11, 12 },
  { KAFKA_API_LIST_OFFSETS, "ListOffsets", 1, 5, 6 },
  { KAFKA_API_METADATA, "Metadata", 0, 8, 9 },
  { KAFKA_API_OFFSET_COMMIT, "OffsetCommit", 2, 7, 8 },
  { KAFKA_API_OFFSET_FETCH, "OffsetFetch", 1, 5, 6 },
  { KAFKA_API_FIND_COORDINATOR, "FindCoordinator", 0, 2, 3 },
  { KAFKA_API_JOIN_GROUP, "JoinGroup", 0, 5, 6 },
  { KAFKA_API_HEARTBEAT, "Heartbeat", 0, 3, 4 },
  { KAFKA_API_LEAVE_GROUP, "LeaveGroup", 0, 3, 4 },
  { KAFKA_API_SYNC_GROUP, "SyncGroup", 0, 3, 4 },
  { KAFKA_API_SASL_HANDSHAKE, "SaslHandshake", 0, 1, G_MAXINT16 },
  { KAFKA_API_API_VERSIONS, "ApiVersions", 0, 3, 3 },
  { KAFKA_API_CREATE_TOPICS, "CreateTopics", 0, 4, 5 },
  { KAFKA_API_DELETE_TOPICS, "DeleteTopics", 0, 3, 4 },
  { KAFKA_API_INIT_PRODUCER_ID, "InitProducerId", 0, 4, 2 },
  { KAFKA_API_DESCRIBE_CONFIGS, "DescribeConfigs", 0, 2, 4 },
  { KAFKA_API_SASL_AUTHENTICATE, "SaslAuthenticate", 0, 1, 2 },
};

const KafkaApiInfo *
kafka_api_lookup (gint16 api_key)
{
  for (guint i = 0; i < G_N_ELEMENTS (kafka_apis); i++)
    if (kafka_apis[i].api_key == api_key)
      return &kafka_apis[i];
  return NULL;
}

const KafkaApiInfo *
kafka_api_table (guint *n)
{
  *n = G_N_ELEMENTS (kafka_apis);
  return kafka_apis;
}

const char *
kafka_api_name (gint16 api_key)
{
  const KafkaApiInfo *info = kafka_api_lookup (api_key);
  return info != NULL ? info->name : "unknown";
}

gboolean
kafka_api_is_flexible (gint16 api_key, gint16 api_version)
{
  const KafkaApiInfo *info = kafka_api_lookup (api_key);
  return info != NULL && api_version >= info->first_flexible;
}

guint
kafka_response_header_version (gint16 api_key, gint16 api_version)
{
  if (api_key == KAFKA_API_API_VERSIONS)
    return 0;
  return kafka_api_is_flexible (api_key, api_version) ? 1 : 0;
}

/* --- reading --- */

void
kafka_reader_init (KafkaReader *r, const guint8 *data, gsize len, GPtrArray *arena)
{
  memset (r, 0, sizeof *r);
  r->data = data;
  r->len = len;
  r->arena = arena;
}

gsize
kafka_reader_remaining (const KafkaReader *r)
{
  return r->failed != NULL ? 0 : r->len - r->pos;
}

void
kafka_reader_fail (KafkaReader *r, const char *why)
{
  if (r->failed == NULL)
    r->failed = why;
}

static const guint8 *
reader_take (KafkaReader *r, gsize n)
{
  const guint8 *p;

  if (r->failed != NULL)
    return NULL;
  if (n > r->len - r->pos)
    {
      kafka_reader_fail (r, "truncated");
      return NULL;
    }
  p = r->data + r->pos;
  r->pos += n;
  return p;
}

gpointer
kafka_reader_alloc (KafkaReader *r, gsize n, gsize size)
{
  gpointer p;

  if (r->failed != NULL)
    return NULL;
  if (size != 0 && n > G_MAXSIZE / size)
    {
      kafka_reader_fail (r, "array too large");
      return NULL;
    }
  /* One byte even for n == 0, so that a present empty array is not NULL. */
  p = g_malloc0 (MAX (n * size, 1));
  g_ptr_array_add (r->arena, p);
  return p;
}

gint8
kafka_read_i8 (KafkaReader *r)
{
  const guint8 *p = reader_take (r, 1);
  return p != NULL ? (gint8) p[0] : 0;
}

gint16
kafka_read_i16 (KafkaReader *r)
{
  const guint8 *p = reader_take (r, 2);
  return p != NULL ? (gint16) ((p[0] << 8) | p[1]) : 0;
}

gint32
kafka_read_i32 (KafkaReader *r)
{
  const guint8 *p = reader_take (r, 4);
  return p != NULL ? (gint32) (((guint32) p[0] << 24) | ((guint32) p[1] << 16)
                               | ((guint32) p[2] << 8) | p[3])
                   : 0;
}

gint64
kafka_read_i64 (KafkaReader *r)
{
  const guint8 *p = reader_take (r, 8);
  guint64 v = 0;

  if (p == NULL)
    return 0;
  for (guint i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return (gint64) v;
}

gboolean
kafka_read_bool (KafkaReader *r)
{
  return kafka_read_i8 (r) != 0;
}

static guint64
read_uvarint_bits (KafkaReader *r, guint max_bytes)
{
  guint64 v = 0;

  for (guint i = 0; i < max_bytes; i++)
    {
      const guint8 *p = reader_take (r, 1);
      if (p == NULL)
        return 0;
      v |= (guint64) (p[0] & 0x7f) << (7 * i);
      if ((p[0] & 0x80) == 0)
        return v;
    }
  kafka_reader_fail (r, "varint too long");
  return 0;
}

guint32
kafka_read_uvarint (KafkaReader *r)
{
  guint64 v = read_uvarint_bits (r, 5);

  if (v > G_MAXUINT32)
    {
      kafka_reader_fail (r, "varint out of range");
      return 0;
    }
  return (guint32) v;
}

gint32
kafka_read_varint (KafkaReader *r)
{
  guint32 v = kafka_read_uvarint (r);
  return (gint32) ((v >> 1) ^ -(v & 1));
}

gint64
kafka_read_varlong (KafkaReader *r)
{
  guint64 v = read_uvarint_bits (r, 10);
  return (gint64) ((v >> 1) ^ -(v & 1));
}

/* Length of a string or bytes field: -1 for null. */
static gint64
read_length (KafkaReader *r, gboolean is_string)
{
  if (r->flexible)
    return (gint64) kafka_read_uvarint (r) - 1;
  return is_string ? kafka_read_i16 (r) : kafka_read_i32 (r);
}

static const char *
copy_string (KafkaReader *r, gint64 n)
{
  const guint8 *p;
  char *s;

  if (n < 0)
    {
      if (n != -1)
        kafka_reader_fail (r, "negative string length");
      return NULL;
    }
  p = reader_take (r, (gsize) n);
  if (p == NULL)
    return NULL;
  if (memchr (p, '\0', n) != NULL)
    {
      kafka_reader_fail (r, "NUL byte in a string");
      return NULL;
    }
  s = kafka_reader_alloc (r, (gsize) n + 1, 1);
  if (s != NULL)
    memcpy (s, p, n);
  return s;
}

const char *
kafka_read_string (KafkaReader *r)
{
  gint64 n = read_length (r, TRUE);
  return r->failed != NULL ? NULL : copy_string (r, n);
}

const char *
kafka_read_string_nn (KafkaReader *r)
{
  const char *s = kafka_read_string (r);

  if (s == NULL)
    kafka_reader_fail (r, "null where a string is required");
  return s;
}

const char *
kafka_read_classic_string (KafkaReader *r)
{
  gint16 n = kafka_read_i16 (r);
  return r->failed != NULL ? NULL : copy_string (r, n);
}

gboolean
kafka_read_bytes (KafkaReader *r, const guint8 **data, gsize *len)
{
  gint64 n = read_length (r, FALSE);

  *data = NULL;
  *len = 0;
  if (r->failed != NULL)
    return FALSE;
  if (n < 0)
    {
      if (n != -1)
        kafka_reader_fail (r, "negative bytes length");
      return FALSE;
    }
  *data = reader_take (r, (gsize) n);
  if (*data == NULL)
    return FALSE;
  *len = (gsize) n;
  return TRUE;
}

gint32
kafka_read_array_len (KafkaReader *r)
{
  gint64 n = r->flexible ? (gint64) kafka_read_uvarint (r) - 1 : kafka_read_i32 (r);

  if (r->failed != NULL)
    return 0;
  if (n < -1)
    {
      kafka_reader_fail (r, "negative array length");
      return 0;
    }
  if (n > (gint64) (r->len - r->pos))
    {
      /* Every element takes at least one byte: refuse before allocating. */
      kafka_reader_fail (r, "array longer than the frame");
      return 0;
    }
  return (gint32) n;
}

void
kafka_read_tags (KafkaReader *r)
{
  guint32 n;

  if (!r->flexible)
    return;
  n = kafka_read_uvarint (r);
  for (guint32 i = 0; i < n && r->failed == NULL; i++)
    {
      guint32 size;

      (void) kafka_read_uvarint (r); /* tag: none are meaningful to us */
      size = kafka_read_uvarint (r);
      reader_take (r, size);
    }
}

/* --- writing --- */

void
kafka_writer_init (KafkaWriter *w, gboolean flexible)
{
  w->buf = g_byte_array_sized_new (256);
  w->segments = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  w->flushed = 0;
  w->flexible = flexible;
}

void
kafka_writer_clear (KafkaWriter *w)
{
  g_clear_pointer (&w->buf, g_byte_array_unref);
  g_clear_pointer (&w->segments, g_ptr_array_unref);
  w->flushed = 0;
}

gsize
kafka_writer_length (const KafkaWriter *w)
{
  return w->flushed + w->buf->len;
}

static void
put (KafkaWriter *w, const void *data, gsize len)
{
  g_byte_array_append (w->buf, data, len);
}

void
kafka_write_i8 (KafkaWriter *w, gint8 v)
{
  guint8 b = (guint8) v;
  put (w, &b, 1);
}

void
kafka_write_i16 (KafkaWriter *w, gint16 v)
{
  guint16 be = GUINT16_TO_BE ((guint16) v);
  put (w, &be, 2);
}

void
kafka_write_i32 (KafkaWriter *w, gint32 v)
{
  guint32 be = GUINT32_TO_BE ((guint32) v);
  put (w, &be, 4);
}

void
kafka_write_i64 (KafkaWriter *w, gint64 v)
{
  guint64 be = GUINT64_TO_BE ((guint64) v);
  put (w, &be, 8);
}

void
kafka_write_bool (KafkaWriter *w, gboolean v)
{
  kafka_write_i8 (w, v ? 1 : 0);
}

void
kafka_write_uvarint (KafkaWriter *w, guint32 v)
{
  guint8 b[5];
  guint n = 0;

  while (v >= 0x80)
    {
      b[n++] = (guint8) (v | 0x80);
      v >>= 7;
    }
  b[n++] = (guint8) v;
  put (w, b, n);
}

void
kafka_write_varint (KafkaWriter *w, gint32 v)
{
  kafka_write_uvarint (w, ((guint32) v << 1) ^ (guint32) (v >> 31));
}

static void
write_length (KafkaWriter *w, gint64 n, gboolean is_string)
{
  if (w->flexible)
    kafka_write_uvarint (w, (guint32) (n + 1));
  else if (is_string)
    kafka_write_i16 (w, (gint16) n);
  else
    kafka_write_i32 (w, (gint32) n);
}

void
kafka_write_string (KafkaWriter *w, const char *s)
{
  gsize n;

  if (s == NULL)
    {
      write_length (w, -1, TRUE);
      return;
    }
  /* Longer strings cannot be said in an int16; none of ours are. */
  n = MIN (strlen (s), (gsize) G_MAXINT16);
  write_length (w, (gint64) n, TRUE);
  put (w, s, n);
}

void
kafka_write_bytes (KafkaWriter *w, const guint8 *data, gsize len, gboolean is_null)
{
  if (is_null)
    {
      write_length (w, -1, FALSE);
      return;
    }
  write_length (w, (gint64) len, FALSE);
  if (len > 0)
    put (w, data, len);
}

void
kafka_write_array_len (KafkaWriter *w, gint32 n)
{
  if (w->flexible)
    kafka_write_uvarint (w, (guint32) (n + 1));
  else
    kafka_write_i32 (w, n);
}

void
kafka_write_tags (KafkaWriter *w)
{
  if (w->flexible)
    kafka_write_uvarint (w, 0);
}

static void
writer_flush (KafkaWriter *w)
{
  if (w->buf->len == 0)
    return;
  w->flushed += w->buf->len;
  g_ptr_array_add (w->segments, g_byte_array_free_to_bytes (w->buf));
  w->buf = g_byte_array_sized_new (256);
}

void
kafka_write_bytes_parts (KafkaWriter *w, GBytes *const *parts, guint n, gboolean is_null)
{
  gsize total = 0;

  if (is_null)
    {
      write_length (w, -1, FALSE);
      return;
    }
  for (guint i = 0; i < n; i++)
    total += g_bytes_get_size (parts[i]);
  write_length (w, (gint64) total, FALSE);
  /* Small parts are cheaper copied than queued as their own segment. */
  for (guint i = 0; i < n; i++)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (parts[i], &len);

      if (len < 512)
        put (w, data, len);
      else
        {
          writer_flush (w);
          w->flushed += len;
          g_ptr_array_add (w->segments, g_bytes_ref (parts[i]));
        }
    }
}

GPtrArray *
kafka_writer_finish_frame (KafkaWriter *w)
{
  GPtrArray *segments;
  gsize total = kafka_writer_length (w);
  guint32 size_be = GUINT32_TO_BE ((guint32) (total - 4));

  g_assert (total >= 4);
  if (w->segments->len == 0)
    memcpy (w->buf->data, &size_be, 4);
  else
    {
      /* The size field sits in the first segment, which the writer made
       * itself from its own buffer (the header comes before any referenced
       * part) and nobody else holds yet. */
      guint8 *first = (guint8 *) g_bytes_get_data (w->segments->pdata[0], NULL);
      memcpy (first, &size_be, 4);
    }
  writer_flush (w);
  segments = g_steal_pointer (&w->segments);
  g_clear_pointer (&w->buf, g_byte_array_unref);
  w->flushed = 0;
  return segments;
}

GBytes *
kafka_segments_join (GPtrArray *segments)
{
  GByteArray *all = g_byte_array_new ();

  for (guint i = 0; i < segments->len; i++)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (segments->pdata[i], &len);
      g_byte_array_append (all, data, len);
    }
  return g_byte_array_free_to_bytes (all);
}

void
kafka_write_response_header (KafkaWriter *w, gint32 correlation_id, guint header_version)
{
  gboolean flexible = w->flexible;

  kafka_write_i32 (w, 0); /* size, patched by kafka_writer_finish_frame */
  kafka_write_i32 (w, correlation_id);
  if (header_version >= 1)
    {
      w->flexible = TRUE;
      kafka_write_tags (w);
      w->flexible = flexible;
    }
}

KafkaFrameStatus
kafka_frame_check (const guint8 *data, gsize len, gsize max_size, gsize *size)
{
  guint32 n;

  *size = 0;
  if (len < 4)
    return KAFKA_FRAME_NEED_MORE;
  n = ((guint32) data[0] << 24) | ((guint32) data[1] << 16) | ((guint32) data[2] << 8) | data[3];
  if (n > G_MAXINT32 || n > max_size)
    return KAFKA_FRAME_TOO_LARGE;
  if (n < KAFKA_FRAME_MIN)
    return KAFKA_FRAME_TOO_SMALL;
  *size = n;
  return len - 4 >= n ? KAFKA_FRAME_COMPLETE : KAFKA_FRAME_NEED_MORE;
}
