/* Sluice core — CRC-32C (Castagnoli), as record batch v2 uses it.
 *
 * Every appended batch has its CRC recomputed when the writer stamps it, so
 * this sits on the hot path: x86 CPUs with SSE4.2 get the crc32 instruction,
 * chosen at run time so that the library itself still runs on any x86-64
 * (only the one function is compiled for SSE4.2, not the whole library).
 * Everything else uses slicing-by-8 tables.
 * SPDX-License-Identifier: Apache-2.0 */
#include "records-private.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define SLUICE_CRC32C_X86 1
#include <nmmintrin.h>
#endif

/* The reflected Castagnoli polynomial 0x1EDC6F41. */
#define CRC32C_POLY 0x82F63B78u

typedef guint32 (*Crc32cFunc) (guint32 crc, const guint8 *p, gsize len);

static guint32 crc32c_tables[8][256];

static void
crc32c_tables_init (void)
{
  static gsize done = 0;

  if (!g_once_init_enter (&done))
    return;

  for (guint i = 0; i < 256; i++)
    {
      guint32 c = i;

      for (guint k = 0; k < 8; k++)
        c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
      crc32c_tables[0][i] = c;
    }
  /* Table t[k][i] is the CRC of byte i followed by k zero bytes, which lets
   * the loop fold eight bytes per step. */
  for (guint i = 0; i < 256; i++)
    for (guint k = 1; k < 8; k++)
      {
        guint32 prev = crc32c_tables[k - 1][i];

        crc32c_tables[k][i] = (prev >> 8) ^ crc32c_tables[0][prev & 0xff];
      }

  g_once_init_leave (&done, 1);
}

/* Operates on the inverted register: callers handle the pre / post xor. */
static guint32
crc32c_sw (guint32 c, const guint8 *p, gsize len)
{
  const guint32 (*t)[256] = (const guint32 (*)[256]) crc32c_tables;

  while (len > 0 && ((guintptr) p & 7) != 0)
    {
      c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
      len--;
    }
  while (len >= 8)
    {
      guint32 lo, hi;

      /* Little-endian loads: the reflected CRC consumes the low byte first. */
      memcpy (&lo, p, 4);
      memcpy (&hi, p + 4, 4);
      lo = GUINT32_FROM_LE (lo) ^ c;
      hi = GUINT32_FROM_LE (hi);
      c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff]
          ^ t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff]
          ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
      p += 8;
      len -= 8;
    }
  while (len > 0)
    {
      c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
      len--;
    }
  return c;
}

#ifdef SLUICE_CRC32C_X86
/* Below three streams of this many bytes, one stream is as fast. */
#define CRC_STREAM_MIN 2048

__attribute__ ((target ("sse4.2"))) static guint32
crc32c_hw (guint32 c, const guint8 *p, gsize len)
{
  while (len > 0 && ((guintptr) p & 7) != 0)
    {
      c = _mm_crc32_u8 (c, *p++);
      len--;
    }
#ifdef __x86_64__
  /* The crc32 instruction has a latency of 3 cycles and a throughput of 1:
   * three independent streams keep it busy, and the shift joins them. */
  while (len >= 3 * CRC_STREAM_MIN)
    {
      gsize n = (len / 3) & ~(gsize) 7;
      const guint8 *p1 = p + n, *p2 = p + 2 * n;
      guint64 a = c, b = 0, d = 0;

      for (gsize i = 0; i < n; i += 8)
        {
          guint64 va, vb, vd;
          memcpy (&va, p + i, 8);
          memcpy (&vb, p1 + i, 8);
          memcpy (&vd, p2 + i, 8);
          a = _mm_crc32_u64 (a, va);
          b = _mm_crc32_u64 (b, vb);
          d = _mm_crc32_u64 (d, vd);
        }
      c = sluice_crc32c_shift (sluice_crc32c_shift ((guint32) a, n) ^ (guint32) b, n)
          ^ (guint32) d;
      p += 3 * n;
      len -= 3 * n;
    }
  {
    guint64 c64 = c;

    while (len >= 8)
      {
        guint64 v;

        memcpy (&v, p, 8);
        c64 = _mm_crc32_u64 (c64, v);
        p += 8;
        len -= 8;
      }
    c = (guint32) c64;
  }
#endif
  while (len >= 4)
    {
      guint32 v;

      memcpy (&v, p, 4);
      c = _mm_crc32_u32 (c, v);
      p += 4;
      len -= 4;
    }
  while (len > 0)
    {
      c = _mm_crc32_u8 (c, *p++);
      len--;
    }
  return c;
}
#endif

static Crc32cFunc
crc32c_impl (void)
{
  /* A gsize because GLib 2.74 has no g_once_init_enter_pointer(). */
  static gsize impl = 0;

  if (g_once_init_enter (&impl))
    {
      Crc32cFunc chosen = crc32c_sw;

      crc32c_tables_init ();
#ifdef SLUICE_CRC32C_X86
      __builtin_cpu_init ();
      if (__builtin_cpu_supports ("sse4.2"))
        chosen = crc32c_hw;
#endif
      g_once_init_leave (&impl, (gsize) chosen);
    }
  return (Crc32cFunc) impl;
}

guint32
sluice_crc32c (guint32 crc, const void *data, gsize len)
{
  if (len == 0)
    return crc;
  g_return_val_if_fail (data != NULL, crc);
  return ~crc32c_impl () (~crc, data, len);
}

guint32
sluice_crc32c_table (guint32 crc, const void *data, gsize len)
{
  if (len == 0)
    return crc;
  g_return_val_if_fail (data != NULL, crc);
  crc32c_tables_init ();
  return ~crc32c_sw (~crc, data, len);
}

gboolean
sluice_crc32c_have_hw (void)
{
#ifdef SLUICE_CRC32C_X86
  return crc32c_impl () == crc32c_hw;
#else
  return FALSE;
#endif
}

/* --- appending zeros in O(log n): the GF(2) operators of zlib's
 * crc32_combine(), for the CRC-32C polynomial. shift_ops[k] feeds 2^k zero
 * bytes through the (unreflected-init, no final xor) CRC register. --- */

static guint32 shift_ops[64][32];

static guint32
gf2_times (const guint32 *mat, guint32 vec)
{
  guint32 sum = 0;

  for (guint i = 0; vec; vec >>= 1, i++)
    if (vec & 1)
      sum ^= mat[i];
  return sum;
}

static void
gf2_square (guint32 *square, const guint32 *mat)
{
  for (guint n = 0; n < 32; n++)
    square[n] = gf2_times (mat, mat[n]);
}

static void
shift_ops_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      guint32 one_bit[32], two[32], four[32];

      one_bit[0] = 0x82f63b78u; /* reflected Castagnoli polynomial */
      for (guint n = 1; n < 32; n++)
        one_bit[n] = 1u << (n - 1);
      gf2_square (two, one_bit);
      gf2_square (four, two);
      gf2_square (shift_ops[0], four); /* one zero byte */
      for (guint k = 1; k < 64; k++)
        gf2_square (shift_ops[k], shift_ops[k - 1]);
      g_once_init_leave (&done, 1);
    }
}

guint32
sluice_crc32c_shift (guint32 raw, guint64 zeros)
{
  shift_ops_init ();
  for (guint k = 0; zeros; zeros >>= 1, k++)
    if (zeros & 1)
      raw = gf2_times (shift_ops[k], raw);
  return raw;
}
