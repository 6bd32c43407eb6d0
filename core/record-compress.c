/* Sluice core — the record batch codecs: gzip (zlib), snappy (raw and
 * xerial framing), lz4 (frame format) and zstd.
 *
 * Every decompressor writes into a buffer that grows by doubling up to the
 * caller's bound plus one byte: reaching that extra byte proves the payload
 * is too large without ever holding more than the bound. The compressed
 * bytes come from the network, so no size a codec announces is trusted
 * before it is checked against the bound.
 * SPDX-License-Identifier: Apache-2.0 */
#include "record-compress-private.h"
#include "records-private.h"
#include "varint.h"

#include <string.h>
#include <zlib.h>
#include <snappy-c.h>
#include <lz4frame.h>
#include <zstd.h>

/* Kafka's Java client (snappy-java) writes this header, then blocks of
 * int32 compressed length + raw snappy data. */
static const guint8 xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };
#define XERIAL_HEADER_SIZE 16
#define XERIAL_BLOCK_SIZE (32 * 1024)

static const char *
codec_name (SluiceCompression codec)
{
  switch (codec)
    {
    case SLUICE_COMPRESSION_GZIP:
      return "gzip";
    case SLUICE_COMPRESSION_SNAPPY:
      return "snappy";
    case SLUICE_COMPRESSION_LZ4:
      return "lz4";
    case SLUICE_COMPRESSION_ZSTD:
      return "zstd";
    case SLUICE_COMPRESSION_NONE:
    default:
      return "none";
    }
}

/* A bounded output buffer. `cap` never exceeds `max_out + 1`. */
typedef struct {
  guint8 *data;
  gsize used;
  gsize cap;
  gsize max_out;
} OutBuf;

static void
outbuf_init (OutBuf *b, gsize in_len, gsize max_out)
{
  gsize want = in_len > G_MAXSIZE / 4 ? G_MAXSIZE : MAX (in_len * 4, (gsize) 4096);

  b->max_out = max_out;
  b->cap = MIN (want, max_out + 1);
  b->data = g_malloc (b->cap);
  b->used = 0;
}

/* Make room for more output. FALSE (and the error) when the buffer already
 * holds more than the bound. */
static gboolean
outbuf_grow (OutBuf *b, SluiceCompression codec, GError **error)
{
  if (b->used > b->max_out)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE,
                   "%s records decompress to more than %" G_GSIZE_FORMAT " bytes",
                   codec_name (codec), b->max_out);
      return FALSE;
    }
  if (b->used < b->cap)
    return TRUE;
  b->cap = b->cap > (b->max_out + 1) / 2 ? b->max_out + 1 : b->cap * 2;
  b->data = g_realloc (b->data, b->cap);
  return TRUE;
}

static GBytes *
outbuf_finish (OutBuf *b, SluiceCompression codec, GError **error)
{
  if (b->used > b->max_out)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE,
                   "%s records decompress to more than %" G_GSIZE_FORMAT " bytes",
                   codec_name (codec), b->max_out);
      g_clear_pointer (&b->data, g_free);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&b->data), b->used);
}

static GBytes *
corrupt (OutBuf *b, SluiceCompression codec, const char *what, GError **error)
{
  g_clear_pointer (&b->data, g_free);
  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
               "%s-compressed records are corrupt: %s", codec_name (codec), what);
  return NULL;
}

static GBytes *
gzip_decompress (const guint8 *data, gsize len, gsize max_out, GError **error)
{
  z_stream zs = { 0 };
  OutBuf b;
  int ret;

  if (len > G_MAXUINT)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE, "gzip input too large");
      return NULL;
    }
  /* 15 + 32: any window size, zlib or gzip header detected. */
  if (inflateInit2 (&zs, 15 + 32) != Z_OK)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "zlib: cannot initialise");
      return NULL;
    }
  outbuf_init (&b, len, max_out);
  zs.next_in = (Bytef *) data;
  zs.avail_in = (uInt) len;
  for (;;)
    {
      gsize room;

      if (!outbuf_grow (&b, SLUICE_COMPRESSION_GZIP, error))
        goto fail;
      room = MIN (b.cap - b.used, (gsize) G_MAXUINT);
      zs.next_out = b.data + b.used;
      zs.avail_out = (uInt) room;
      ret = inflate (&zs, Z_NO_FLUSH);
      b.used += room - zs.avail_out;
      if (ret == Z_STREAM_END)
        {
          /* Concatenated gzip members are one payload. */
          if (zs.avail_in == 0)
            break;
          if (inflateReset (&zs) != Z_OK)
            {
              corrupt (&b, SLUICE_COMPRESSION_GZIP, "cannot reset", error);
              goto fail;
            }
          continue;
        }
      if (ret == Z_BUF_ERROR && zs.avail_out != 0)
        {
          corrupt (&b, SLUICE_COMPRESSION_GZIP, "truncated", error);
          goto fail;
        }
      if (ret != Z_OK && ret != Z_BUF_ERROR)
        {
          corrupt (&b, SLUICE_COMPRESSION_GZIP, zs.msg ? zs.msg : "inflate failed", error);
          goto fail;
        }
      if (zs.avail_in == 0 && zs.avail_out != 0 && ret == Z_OK)
        {
          /* All input taken, room left, no end marker: truncated. One more
           * call confirms (zlib may hold back output). */
          room = MIN (b.cap - b.used, (gsize) G_MAXUINT);
          zs.next_out = b.data + b.used;
          zs.avail_out = (uInt) room;
          ret = inflate (&zs, Z_FINISH);
          b.used += room - zs.avail_out;
          if (ret == Z_STREAM_END)
            break;
          if (zs.avail_out != 0)
            {
              corrupt (&b, SLUICE_COMPRESSION_GZIP, "truncated", error);
              goto fail;
            }
        }
    }
  inflateEnd (&zs);
  return outbuf_finish (&b, SLUICE_COMPRESSION_GZIP, error);

fail:
  inflateEnd (&zs);
  g_free (b.data);
  return NULL;
}

/* One raw snappy block appended to `b`. */
static gboolean
snappy_block (OutBuf *b, const guint8 *data, gsize len, GError **error)
{
  size_t n = 0;

  if (snappy_uncompressed_length ((const char *) data, len, &n) != SNAPPY_OK)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "snappy-compressed records are corrupt: bad length header");
      return FALSE;
    }
  if (n > b->max_out - MIN (b->used, b->max_out) || b->used > b->max_out)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE,
                   "snappy records decompress to more than %" G_GSIZE_FORMAT " bytes",
                   b->max_out);
      return FALSE;
    }
  if (b->used + n > b->cap)
    {
      b->cap = MIN (MAX (b->cap * 2, b->used + n), b->max_out + 1);
      b->data = g_realloc (b->data, b->cap);
    }
  if (snappy_uncompress ((const char *) data, len, (char *) b->data + b->used, &n)
      != SNAPPY_OK)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "snappy-compressed records are corrupt");
      return FALSE;
    }
  b->used += n;
  return TRUE;
}

static GBytes *
snappy_decompress (const guint8 *data, gsize len, gsize max_out, GError **error)
{
  OutBuf b;

  outbuf_init (&b, len, max_out);
  if (len >= sizeof xerial_magic && memcmp (data, xerial_magic, sizeof xerial_magic) == 0)
    {
      gsize pos = XERIAL_HEADER_SIZE;

      if (len < XERIAL_HEADER_SIZE)
        return corrupt (&b, SLUICE_COMPRESSION_SNAPPY, "truncated xerial header", error);
      while (pos < len)
        {
          guint32 block;

          if (len - pos < 4)
            return corrupt (&b, SLUICE_COMPRESSION_SNAPPY, "truncated xerial block length",
                            error);
          block = sluice_be32 (data + pos);
          pos += 4;
          if (block > len - pos)
            return corrupt (&b, SLUICE_COMPRESSION_SNAPPY, "xerial block runs past the end",
                            error);
          if (!snappy_block (&b, data + pos, block, error))
            {
              g_free (b.data);
              return NULL;
            }
          pos += block;
        }
    }
  else if (!snappy_block (&b, data, len, error))
    {
      g_free (b.data);
      return NULL;
    }
  return outbuf_finish (&b, SLUICE_COMPRESSION_SNAPPY, error);
}

static GBytes *
lz4_decompress (const guint8 *data, gsize len, gsize max_out, GError **error)
{
  LZ4F_dctx *ctx = NULL;
  OutBuf b;
  gsize pos = 0;
  size_t hint = 1;

  if (LZ4F_isError (LZ4F_createDecompressionContext (&ctx, LZ4F_VERSION)))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "lz4: cannot initialise");
      return NULL;
    }
  outbuf_init (&b, len, max_out);
  while (pos < len || hint != 0)
    {
      size_t dst_size, src_size;

      if (!outbuf_grow (&b, SLUICE_COMPRESSION_LZ4, error))
        goto fail;
      dst_size = b.cap - b.used;
      src_size = len - pos;
      hint = LZ4F_decompress (ctx, b.data + b.used, &dst_size, data + pos, &src_size, NULL);
      if (LZ4F_isError (hint))
        {
          corrupt (&b, SLUICE_COMPRESSION_LZ4, LZ4F_getErrorName (hint), error);
          goto fail;
        }
      b.used += dst_size;
      pos += src_size;
      /* No progress with input left to give: the frame is truncated. */
      if (dst_size == 0 && src_size == 0 && b.used < b.cap)
        {
          corrupt (&b, SLUICE_COMPRESSION_LZ4, "truncated frame", error);
          goto fail;
        }
    }
  LZ4F_freeDecompressionContext (ctx);
  return outbuf_finish (&b, SLUICE_COMPRESSION_LZ4, error);

fail:
  LZ4F_freeDecompressionContext (ctx);
  g_free (b.data);
  return NULL;
}

static GBytes *
zstd_decompress (const guint8 *data, gsize len, gsize max_out, GError **error)
{
  ZSTD_DCtx *ctx = ZSTD_createDCtx ();
  ZSTD_inBuffer in = { data, len, 0 };
  OutBuf b;
  size_t ret = 1;

  if (ctx == NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "zstd: cannot initialise");
      return NULL;
    }
  outbuf_init (&b, len, max_out);
  while (in.pos < in.size || ret != 0)
    {
      ZSTD_outBuffer out;
      gsize before_in = in.pos;

      if (!outbuf_grow (&b, SLUICE_COMPRESSION_ZSTD, error))
        goto fail;
      out.dst = b.data;
      out.size = b.cap;
      out.pos = b.used;
      ret = ZSTD_decompressStream (ctx, &out, &in);
      if (ZSTD_isError (ret))
        {
          corrupt (&b, SLUICE_COMPRESSION_ZSTD, ZSTD_getErrorName (ret), error);
          goto fail;
        }
      if (out.pos == b.used && in.pos == before_in && out.pos < out.size)
        {
          corrupt (&b, SLUICE_COMPRESSION_ZSTD, "truncated frame", error);
          goto fail;
        }
      b.used = out.pos;
    }
  ZSTD_freeDCtx (ctx);
  return outbuf_finish (&b, SLUICE_COMPRESSION_ZSTD, error);

fail:
  ZSTD_freeDCtx (ctx);
  g_free (b.data);
  return NULL;
}

GBytes *
sluice_records_decompress (SluiceCompression codec, const guint8 *data, gsize len,
                           gsize max_out, GError **error)
{
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (len == 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "%s-compressed records are empty", codec_name (codec));
      return NULL;
    }
  switch (codec)
    {
    case SLUICE_COMPRESSION_GZIP:
      return gzip_decompress (data, len, max_out, error);
    case SLUICE_COMPRESSION_SNAPPY:
      return snappy_decompress (data, len, max_out, error);
    case SLUICE_COMPRESSION_LZ4:
      return lz4_decompress (data, len, max_out, error);
    case SLUICE_COMPRESSION_ZSTD:
      return zstd_decompress (data, len, max_out, error);
    case SLUICE_COMPRESSION_NONE:
    default:
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNSUPPORTED,
                   "compression codec %d does not exist", (int) codec);
      return NULL;
    }
}

/* --- compression (tests, tools) --- */

static GBytes *
gzip_compress (const guint8 *data, gsize len, GError **error)
{
  z_stream zs = { 0 };
  gsize cap;
  guint8 *out;
  int ret;

  /* 15 + 16: a gzip header, as Kafka clients write. */
  if (len > G_MAXUINT / 2
      || deflateInit2 (&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                       Z_DEFAULT_STRATEGY) != Z_OK)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "zlib: cannot compress");
      return NULL;
    }
  cap = deflateBound (&zs, (uLong) len);
  out = g_malloc (cap);
  zs.next_in = (Bytef *) data;
  zs.avail_in = (uInt) len;
  zs.next_out = out;
  zs.avail_out = (uInt) cap;
  ret = deflate (&zs, Z_FINISH);
  deflateEnd (&zs);
  if (ret != Z_STREAM_END)
    {
      g_free (out);
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "zlib: deflate failed");
      return NULL;
    }
  return g_bytes_new_take (out, cap - zs.avail_out);
}

static GBytes *
snappy_compress_xerial (const guint8 *data, gsize len)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  guint8 be[4];
  gsize pos = 0;

  g_byte_array_append (out, xerial_magic, sizeof xerial_magic);
  sluice_put_be32 (be, 1); /* version */
  g_byte_array_append (out, be, 4);
  sluice_put_be32 (be, 1); /* compatible version */
  g_byte_array_append (out, be, 4);
  do
    {
      gsize n = MIN (len - pos, (gsize) XERIAL_BLOCK_SIZE);
      size_t clen = snappy_max_compressed_length (n);
      guint at = out->len;

      g_byte_array_set_size (out, at + 4 + clen);
      snappy_compress ((const char *) data + pos, n, (char *) out->data + at + 4, &clen);
      sluice_put_be32 (out->data + at, (guint32) clen);
      g_byte_array_set_size (out, at + 4 + clen);
      pos += n;
    }
  while (pos < len);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static GBytes *
lz4_compress (const guint8 *data, gsize len, GError **error)
{
  size_t cap = LZ4F_compressFrameBound (len, NULL);
  guint8 *out = g_malloc (cap);
  size_t n = LZ4F_compressFrame (out, cap, data, len, NULL);

  if (LZ4F_isError (n))
    {
      g_free (out);
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "lz4: %s", LZ4F_getErrorName (n));
      return NULL;
    }
  return g_bytes_new_take (out, n);
}

static GBytes *
zstd_compress (const guint8 *data, gsize len, GError **error)
{
  size_t cap = ZSTD_compressBound (len);
  guint8 *out = g_malloc (cap);
  size_t n = ZSTD_compress (out, cap, data, len, 3);

  if (ZSTD_isError (n))
    {
      g_free (out);
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "zstd: %s", ZSTD_getErrorName (n));
      return NULL;
    }
  return g_bytes_new_take (out, n);
}

GBytes *
sluice_records_compress (SluiceCompression codec, const guint8 *data, gsize len,
                         GError **error)
{
  switch (codec)
    {
    case SLUICE_COMPRESSION_GZIP:
      return gzip_compress (data, len, error);
    case SLUICE_COMPRESSION_SNAPPY:
      return snappy_compress_xerial (data, len);
    case SLUICE_COMPRESSION_LZ4:
      return lz4_compress (data, len, error);
    case SLUICE_COMPRESSION_ZSTD:
      return zstd_compress (data, len, error);
    case SLUICE_COMPRESSION_NONE:
    default:
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_UNSUPPORTED,
                   "compression codec %d does not exist", (int) codec);
      return NULL;
    }
}

GBytes *
sluice_batch_compress (GBytes *batch, SluiceCompression codec, GError **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (batch, &len);
  g_autoptr (GBytes) packed = NULL;
  guint8 *out;
  gsize packed_len, out_len;
  guint16 attributes;

  if (!sluice_batch_check_frame (data, len, error))
    return NULL;
  if ((sluice_be16 (data + SLUICE_BATCH_OFF_ATTRIBUTES) & SLUICE_BATCH_ATTR_COMPRESSION_MASK)
      != SLUICE_COMPRESSION_NONE)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "batch is already compressed");
      return NULL;
    }
  packed = sluice_records_compress (codec, data + SLUICE_BATCH_HEADER_SIZE,
                                    len - SLUICE_BATCH_HEADER_SIZE, error);
  if (packed == NULL)
    return NULL;
  g_bytes_get_data (packed, &packed_len);
  out_len = SLUICE_BATCH_HEADER_SIZE + packed_len;
  out = g_malloc (out_len);
  memcpy (out, data, SLUICE_BATCH_HEADER_SIZE);
  memcpy (out + SLUICE_BATCH_HEADER_SIZE, g_bytes_get_data (packed, NULL), packed_len);
  sluice_put_be32 (out + SLUICE_BATCH_OFF_LENGTH, (guint32) (out_len - 12));
  attributes = sluice_be16 (out + SLUICE_BATCH_OFF_ATTRIBUTES);
  attributes = (attributes & ~SLUICE_BATCH_ATTR_COMPRESSION_MASK) | (guint16) codec;
  sluice_put_be16 (out + SLUICE_BATCH_OFF_ATTRIBUTES, attributes);
  sluice_put_be32 (out + SLUICE_BATCH_OFF_CRC,
                   sluice_crc32c (0, out + SLUICE_BATCH_OFF_ATTRIBUTES,
                                  out_len - SLUICE_BATCH_OFF_ATTRIBUTES));
  return g_bytes_new_take (out, out_len);
}
