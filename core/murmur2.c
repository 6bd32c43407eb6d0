/* Sluice core — Kafka's murmur2 key partitioner.
 *
 * Keyed data must land on the partition Kafka's Java client would pick
 * (org.apache.kafka.common.utils.Utils.murmur2 and
 * BuiltInPartitioner.partitionForKey), so that a consumer that knows the
 * Kafka rule finds a key where it expects it. Java's int arithmetic wraps;
 * here everything is guint32 so that it wraps the same way without
 * undefined behaviour.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"

#define MURMUR2_SEED 0x9747b28cu
#define MURMUR2_M 0x5bd1e995u
#define MURMUR2_R 24

gint32
sluice_murmur2 (const void *data, gsize len)
{
  const guint8 *p = data;
  /* Java computes seed ^ length with an int length. */
  guint32 h = MURMUR2_SEED ^ (guint32) len;
  gsize blocks = len / 4;
  gsize tail = len & ~(gsize) 3;

  g_return_val_if_fail (data != NULL || len == 0, 0);

  for (gsize i = 0; i < blocks; i++)
    {
      const guint8 *b = p + i * 4;
      guint32 k = (guint32) b[0] | (guint32) b[1] << 8 | (guint32) b[2] << 16
                  | (guint32) b[3] << 24;

      k *= MURMUR2_M;
      k ^= k >> MURMUR2_R;
      k *= MURMUR2_M;
      h *= MURMUR2_M;
      h ^= k;
    }

  switch (len % 4)
    {
    case 3:
      h ^= (guint32) p[tail + 2] << 16;
      G_GNUC_FALLTHROUGH;
    case 2:
      h ^= (guint32) p[tail + 1] << 8;
      G_GNUC_FALLTHROUGH;
    case 1:
      h ^= (guint32) p[tail];
      h *= MURMUR2_M;
      break;
    default:
      break;
    }

  h ^= h >> 13;
  h *= MURMUR2_M;
  h ^= h >> 15;

  return (gint32) h;
}

gint32
sluice_partition_for_key (const void *key, gsize len, gint32 partitions)
{
  g_return_val_if_fail (partitions > 0, 0);

  /* Kafka's toPositive() masks the sign bit rather than taking abs(), so
   * INT_MIN maps to 0 instead of overflowing. */
  return (gint32) (((guint32) sluice_murmur2 (key, len) & 0x7fffffffu)
                   % (guint32) partitions);
}
