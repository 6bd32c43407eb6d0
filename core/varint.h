/* Sluice core — Kafka varints (zigzag LEB128) and big-endian fields.
 *
 * Record batches carry their per-record fields as zigzag varints (as in
 * protobuf's sint32 / sint64). The decoders are written for untrusted input:
 * every read takes the end of the buffer and fails instead of running past
 * it or accepting an encoding longer than the type allows.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <string.h>

/* Longest encodings Kafka accepts: 5 bytes for int32, 10 for int64. */
#define SLUICE_VARINT_MAX_32 5
#define SLUICE_VARINT_MAX_64 10

static inline void
sluice_varint_put_u64 (GByteArray *out, guint64 v)
{
  guint8 buf[SLUICE_VARINT_MAX_64];
  guint n = 0;

  while (v >= 0x80)
    {
      buf[n++] = (guint8) (v | 0x80);
      v >>= 7;
    }
  buf[n++] = (guint8) v;
  g_byte_array_append (out, buf, n);
}

static inline void
sluice_varint_put_i64 (GByteArray *out, gint64 v)
{
  /* Zigzag in unsigned arithmetic: shifting a negative signed value left is
   * undefined behaviour. */
  guint64 u = (guint64) v;

  sluice_varint_put_u64 (out, (u << 1) ^ (v < 0 ? G_MAXUINT64 : 0));
}

static inline void
sluice_varint_put_i32 (GByteArray *out, gint32 v)
{
  guint32 u = (guint32) v;

  sluice_varint_put_u64 (out, (u << 1) ^ (v < 0 ? G_MAXUINT32 : 0));
}

/* Reads an unsigned LEB128 of at most `max_bytes` bytes from [*p, end).
 * Bits beyond 64 (only reachable with 10 bytes) are dropped as Kafka's Java
 * reader drops them. */
static inline gboolean
sluice_varint_get_u64 (const guint8 **p, const guint8 *end, guint max_bytes,
                       guint64 *out)
{
  const guint8 *q = *p;
  guint64 v = 0;
  guint shift = 0;

  for (guint i = 0; i < max_bytes; i++)
    {
      guint8 b;

      if (q >= end)
        return FALSE;
      b = *q++;
      if (shift < 64)
        v |= (guint64) (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) == 0)
        {
          *p = q;
          *out = v;
          return TRUE;
        }
    }
  return FALSE;
}

static inline gboolean
sluice_varint_get_i64 (const guint8 **p, const guint8 *end, gint64 *out)
{
  guint64 u;

  if (!sluice_varint_get_u64 (p, end, SLUICE_VARINT_MAX_64, &u))
    return FALSE;
  *out = (gint64) ((u >> 1) ^ (0 - (u & 1)));
  return TRUE;
}

static inline gboolean
sluice_varint_get_i32 (const guint8 **p, const guint8 *end, gint32 *out)
{
  guint64 u64;
  guint32 u;

  if (!sluice_varint_get_u64 (p, end, SLUICE_VARINT_MAX_32, &u64))
    return FALSE;
  /* A fifth byte may carry more than 32 bits; Java's int shift drops them,
   * so do the same rather than reject what Kafka accepts. */
  u = (guint32) u64;
  *out = (gint32) ((u >> 1) ^ (0 - (u & 1)));
  return TRUE;
}

/* Unaligned big-endian fixed-width fields of the batch header. */
static inline guint16
sluice_be16 (const guint8 *p)
{
  guint16 v;

  memcpy (&v, p, sizeof v);
  return GUINT16_FROM_BE (v);
}

static inline guint32
sluice_be32 (const guint8 *p)
{
  guint32 v;

  memcpy (&v, p, sizeof v);
  return GUINT32_FROM_BE (v);
}

static inline guint64
sluice_be64 (const guint8 *p)
{
  guint64 v;

  memcpy (&v, p, sizeof v);
  return GUINT64_FROM_BE (v);
}

static inline void
sluice_put_be16 (guint8 *p, guint16 v)
{
  v = GUINT16_TO_BE (v);
  memcpy (p, &v, sizeof v);
}

static inline void
sluice_put_be32 (guint8 *p, guint32 v)
{
  v = GUINT32_TO_BE (v);
  memcpy (p, &v, sizeof v);
}

static inline void
sluice_put_be64 (guint8 *p, guint64 v)
{
  v = GUINT64_TO_BE (v);
  memcpy (p, &v, sizeof v);
}
