/* transport-kafka — idempotent producer state: producer ids, epochs and
 * the last batches' sequence numbers per (stream, partition, producer).
 * See kafka-producers.h for the flow.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kafka-producers.h"

#include <sluice/sluice-record.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (kafka-producers-error-quark, kafka_producers_error)

#define SNAPSHOT_MAGIC "KPS\001"

typedef struct {
  gint32 first_seq;
  gint32 last_seq;
  gint64 offset;                 /* -1 while its append is in flight */
  gint64 append_time;
} SeqEntry;

typedef struct {
  char *stream;
  gint32 partition;
  gint64 producer_id;
  gint16 epoch;
  gint32 next_seq;               /* what the next batch must start with */
  gint64 last_time;              /* append time of the newest completed batch */
  SeqEntry entries[KAFKA_PRODUCER_WINDOW];   /* oldest first */
  guint n;
} ProducerState;

struct _KafkaProducers {
  GMutex lock;
  gint64 next_id;
  gint64 ceiling;
  KafkaProducerReserveFunc reserve;
  gpointer reserve_data;
  GHashTable *states;            /* "stream/partition/pid" -> ProducerState* */
  GHashTable *ends;              /* "stream/partition" -> gint64* log end seen */
};

static void
state_free (ProducerState *s)
{
  g_free (s->stream);
  g_free (s);
}

KafkaProducers *
kafka_producers_new (gint64 ceiling, KafkaProducerReserveFunc reserve, gpointer user_data)
{
  KafkaProducers *p = g_new0 (KafkaProducers, 1);

  g_mutex_init (&p->lock);
  p->next_id = MAX (ceiling, 0);
  p->ceiling = p->next_id;
  p->reserve = reserve;
  p->reserve_data = user_data;
  p->states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify) state_free);
  p->ends = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return p;
}

void
kafka_producers_free (KafkaProducers *p)
{
  if (p == NULL)
    return;
  g_hash_table_unref (p->states);
  g_hash_table_unref (p->ends);
  g_mutex_clear (&p->lock);
  g_free (p);
}

gint16
kafka_producers_init_id (KafkaProducers *p, gint64 *producer_id, gint16 *epoch)
{
  gint64 reserved = -1;

  g_mutex_lock (&p->lock);
  if (p->next_id >= p->ceiling)
    {
      p->ceiling = p->next_id + KAFKA_PRODUCER_ID_BLOCK;
      reserved = p->ceiling;
    }
  *producer_id = p->next_id++;
  *epoch = 0;
  g_mutex_unlock (&p->lock);
  if (reserved >= 0 && p->reserve != NULL)
    p->reserve (reserved, p->reserve_data);
  return KAFKA_PRODUCER_ERROR_NONE;
}

/* Big-endian fields at any alignment. */
static guint64
rd (const guint8 *p, guint bytes)
{
  guint64 v = 0;

  for (guint i = 0; i < bytes; i++)
    v = (v << 8) | p[i];
  return v;
}

gboolean
kafka_producer_batch_from_header (const guint8 *data, gsize len, KafkaProducerBatch *batch)
{
  if (len < SLUICE_BATCH_HEADER_SIZE)
    return FALSE;
  batch->producer_id = (gint64) rd (data + SLUICE_BATCH_OFF_PRODUCER_ID, 8);
  batch->epoch = (gint16) rd (data + SLUICE_BATCH_OFF_PRODUCER_EPOCH, 2);
  batch->base_sequence = (gint32) rd (data + SLUICE_BATCH_OFF_BASE_SEQUENCE, 4);
  batch->record_count = (gint32) rd (data + SLUICE_BATCH_OFF_LAST_OFFSET_DELTA, 4);
  /* last offset delta + 1, kept away from overflow for a corrupt header */
  batch->record_count = batch->record_count < G_MAXINT32 ? batch->record_count + 1 : -1;
  return TRUE;
}

/* Sequences wrap from INT32_MAX to 0, as in Kafka. */
static gint32
seq_add (gint32 seq, gint64 n)
{
  return (gint32) (((gint64) seq + n) % ((gint64) G_MAXINT32 + 1));
}

static char *
state_key (const char *stream, gint32 partition, gint64 producer_id)
{
  return g_strdup_printf ("%s/%d/%" G_GINT64_FORMAT, stream, partition, producer_id);
}

static char *
end_key (const char *stream, gint32 partition)
{
  return g_strdup_printf ("%s/%d", stream, partition);
}

static ProducerState *
state_lookup (KafkaProducers *p, const char *stream, gint32 partition, gint64 producer_id,
              gboolean create)
{
  g_autofree char *key = state_key (stream, partition, producer_id);
  ProducerState *s = g_hash_table_lookup (p->states, key);

  if (s != NULL || !create)
    return s;
  s = g_new0 (ProducerState, 1);
  s->stream = g_strdup (stream);
  s->partition = partition;
  s->producer_id = producer_id;
  g_hash_table_insert (p->states, g_steal_pointer (&key), s);
  return s;
}

static void
state_push (ProducerState *s, gint32 first, gint32 last, gint64 offset, gint64 append_time)
{
  if (s->n == KAFKA_PRODUCER_WINDOW)
    {
      memmove (&s->entries[0], &s->entries[1], sizeof s->entries[0] * (KAFKA_PRODUCER_WINDOW - 1));
      s->n--;
    }
  s->entries[s->n].first_seq = first;
  s->entries[s->n].last_seq = last;
  s->entries[s->n].offset = offset;
  s->entries[s->n].append_time = append_time;
  s->n++;
  s->next_seq = seq_add (last, 1);
}

static void
note_end (KafkaProducers *p, const char *stream, gint32 partition, gint64 end)
{
  g_autofree char *key = end_key (stream, partition);
  gint64 *old = g_hash_table_lookup (p->ends, key);

  if (old == NULL)
    {
      old = g_new (gint64, 1);
      *old = end;
      g_hash_table_insert (p->ends, g_steal_pointer (&key), old);
    }
  else if (end > *old)
    *old = end;
}

KafkaSeqVerdict
kafka_producers_check (KafkaProducers *p, const char *stream, gint32 partition,
                       const KafkaProducerBatch *b, gint64 *base_offset, gint64 *append_time,
                       gint16 *error)
{
  ProducerState *s;
  gint32 last;
  KafkaSeqVerdict verdict = KAFKA_SEQ_REJECT;

  *error = KAFKA_PRODUCER_ERROR_NONE;
  if (b->producer_id < 0)
    return KAFKA_SEQ_APPEND;
  if (b->record_count <= 0 || b->base_sequence < 0)
    {
      *error = KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER;
      return KAFKA_SEQ_REJECT;
    }
  last = seq_add (b->base_sequence, b->record_count - 1);

  g_mutex_lock (&p->lock);
  if (b->producer_id >= p->next_id)
    {
      *error = KAFKA_PRODUCER_ERROR_UNKNOWN_PRODUCER_ID;
      goto out;
    }
  s = state_lookup (p, stream, partition, b->producer_id, FALSE);
  if (s != NULL && b->epoch < s->epoch)
    {
      *error = KAFKA_PRODUCER_ERROR_INVALID_PRODUCER_EPOCH;
      goto out;
    }
  if (s == NULL || b->epoch > s->epoch)
    {
      /* A producer's first batch here, or its first of a new epoch. */
      if (b->base_sequence != 0)
        {
          *error = KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER;
          goto out;
        }
      if (s == NULL)
        s = state_lookup (p, stream, partition, b->producer_id, TRUE);
      s->epoch = b->epoch;
      s->n = 0;
      state_push (s, b->base_sequence, last, -1, 0);
      verdict = KAFKA_SEQ_APPEND;
      goto out;
    }
  for (guint i = 0; i < s->n; i++)
    if (s->entries[i].first_seq == b->base_sequence && s->entries[i].last_seq == last)
      {
        if (s->entries[i].offset < 0)
          verdict = KAFKA_SEQ_IN_FLIGHT;
        else
          {
            *base_offset = s->entries[i].offset;
            *append_time = s->entries[i].append_time;
            verdict = KAFKA_SEQ_DUPLICATE;
          }
        goto out;
      }
  if (b->base_sequence != s->next_seq)
    {
      *error = KAFKA_PRODUCER_ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER;
      goto out;
    }
  state_push (s, b->base_sequence, last, -1, 0);
  verdict = KAFKA_SEQ_APPEND;

out:
  g_mutex_unlock (&p->lock);
  return verdict;
}

static gint
find_entry (ProducerState *s, const KafkaProducerBatch *b)
{
  for (guint i = 0; i < s->n; i++)
    if (s->entries[i].first_seq == b->base_sequence)
      return (gint) i;
  return -1;
}

void
kafka_producers_complete (KafkaProducers *p, const char *stream, gint32 partition,
                          const KafkaProducerBatch *b, gint64 base_offset, gint64 append_time)
{
  ProducerState *s;
  gint i;

  if (b->producer_id < 0)
    return;
  g_mutex_lock (&p->lock);
  s = state_lookup (p, stream, partition, b->producer_id, FALSE);
  if (s != NULL && s->epoch == b->epoch && (i = find_entry (s, b)) >= 0)
    {
      s->entries[i].offset = base_offset;
      s->entries[i].append_time = append_time;
      s->last_time = MAX (s->last_time, append_time);
    }
  note_end (p, stream, partition, base_offset + MAX (b->record_count, 1));
  g_mutex_unlock (&p->lock);
}

void
kafka_producers_abort (KafkaProducers *p, const char *stream, gint32 partition,
                       const KafkaProducerBatch *b)
{
  ProducerState *s;
  gint i;

  if (b->producer_id < 0)
    return;
  g_mutex_lock (&p->lock);
  s = state_lookup (p, stream, partition, b->producer_id, FALSE);
  if (s != NULL && s->epoch == b->epoch && (i = find_entry (s, b)) >= 0
      && s->entries[i].offset < 0)
    {
      /* The newest batch failed: its retry is the next one expected. */
      if ((guint) i == s->n - 1)
        s->next_seq = s->entries[i].first_seq;
      memmove (&s->entries[i], &s->entries[i + 1], sizeof s->entries[0] * (s->n - (guint) i - 1));
      s->n--;
    }
  g_mutex_unlock (&p->lock);
}

void
kafka_producers_observe (KafkaProducers *p, const char *stream, gint32 partition,
                         const guint8 *data, gsize len)
{
  KafkaProducerBatch b;
  ProducerState *s;
  gint64 base_offset, max_ts, end;
  g_autofree char *ekey = NULL;
  gint64 *known_end;

  if (!kafka_producer_batch_from_header (data, len, &b) || b.record_count <= 0)
    return;
  base_offset = (gint64) rd (data + SLUICE_BATCH_OFF_BASE_OFFSET, 8);
  max_ts = (gint64) rd (data + SLUICE_BATCH_OFF_MAX_TIMESTAMP, 8);
  end = base_offset + b.record_count;

  g_mutex_lock (&p->lock);
  ekey = end_key (stream, partition);
  known_end = g_hash_table_lookup (p->ends, ekey);
  if (known_end != NULL && base_offset < *known_end)
    goto out;
  note_end (p, stream, partition, end);
  if (b.producer_id < 0 || b.base_sequence < 0)
    goto out;
  /* Ids seen in the log were handed out: never hand them out again. */
  if (b.producer_id >= p->next_id)
    {
      p->next_id = b.producer_id + 1;
      p->ceiling = MAX (p->ceiling, p->next_id);
    }
  s = state_lookup (p, stream, partition, b.producer_id, TRUE);
  if (b.epoch < s->epoch)
    goto out;
  if (b.epoch > s->epoch)
    {
      s->epoch = b.epoch;
      s->n = 0;
    }
  if (find_entry (s, &b) >= 0)
    goto out;
  state_push (s, b.base_sequence, seq_add (b.base_sequence, b.record_count - 1), base_offset,
              max_ts);
  s->last_time = MAX (s->last_time, max_ts);

out:
  g_mutex_unlock (&p->lock);
}

gint64
kafka_producers_resume_offset (KafkaProducers *p, const char *stream, gint32 partition)
{
  g_autofree char *key = end_key (stream, partition);
  gint64 *end;
  gint64 result;

  g_mutex_lock (&p->lock);
  end = g_hash_table_lookup (p->ends, key);
  result = end ? *end : -1;
  g_mutex_unlock (&p->lock);
  return result;
}

static gboolean
key_in_stream (const char *key, const char *stream)
{
  gsize n = strlen (stream);

  return strncmp (key, stream, n) == 0 && key[n] == '/';
}

void
kafka_producers_forget_stream (KafkaProducers *p, const char *stream)
{
  GHashTableIter it;
  gpointer k;

  g_mutex_lock (&p->lock);
  g_hash_table_iter_init (&it, p->states);
  while (g_hash_table_iter_next (&it, &k, NULL))
    if (key_in_stream (k, stream))
      g_hash_table_iter_remove (&it);
  g_hash_table_iter_init (&it, p->ends);
  while (g_hash_table_iter_next (&it, &k, NULL))
    if (key_in_stream (k, stream))
      g_hash_table_iter_remove (&it);
  g_mutex_unlock (&p->lock);
}

void
kafka_producers_expire (KafkaProducers *p, gint64 before_ms)
{
  GHashTableIter it;
  gpointer v;

  g_mutex_lock (&p->lock);
  g_hash_table_iter_init (&it, p->states);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      ProducerState *s = v;
      gboolean in_flight = FALSE;

      for (guint i = 0; i < s->n; i++)
        in_flight |= s->entries[i].offset < 0;
      if (!in_flight && s->last_time < before_ms)
        g_hash_table_iter_remove (&it);
    }
  g_mutex_unlock (&p->lock);
}

/* --- snapshot: big-endian fields, strings as u16 length + bytes --- */

static void
put (GByteArray *a, guint64 v, guint bytes)
{
  guint8 b[8];

  for (guint i = 0; i < bytes; i++)
    b[i] = (guint8) (v >> (8 * (bytes - 1 - i)));
  g_byte_array_append (a, b, bytes);
}

static void
put_str (GByteArray *a, const char *s)
{
  gsize n = strlen (s);

  put (a, n, 2);
  g_byte_array_append (a, (const guint8 *) s, (guint) n);
}

GBytes *
kafka_producers_snapshot (KafkaProducers *p)
{
  GByteArray *a = g_byte_array_new ();
  GHashTableIter it;
  gpointer k, v;

  g_mutex_lock (&p->lock);
  g_byte_array_append (a, (const guint8 *) SNAPSHOT_MAGIC, 4);
  put (a, (guint64) p->next_id, 8);
  put (a, g_hash_table_size (p->ends), 4);
  g_hash_table_iter_init (&it, p->ends);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      const char *slash = strrchr (k, '/');
      g_autofree char *stream = g_strndup (k, (gsize) (slash - (const char *) k));

      put_str (a, stream);
      put (a, (guint32) atoi (slash + 1), 4);
      put (a, (guint64) *(gint64 *) v, 8);
    }
  put (a, g_hash_table_size (p->states), 4);
  g_hash_table_iter_init (&it, p->states);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      ProducerState *s = v;
      guint n = 0;

      for (guint i = 0; i < s->n; i++)
        n += s->entries[i].offset >= 0;
      put_str (a, s->stream);
      put (a, (guint32) s->partition, 4);
      put (a, (guint64) s->producer_id, 8);
      put (a, (guint16) s->epoch, 2);
      put (a, (guint64) s->last_time, 8);
      put (a, n, 1);
      for (guint i = 0; i < s->n; i++)
        {
          if (s->entries[i].offset < 0)
            continue;
          put (a, (guint32) s->entries[i].first_seq, 4);
          put (a, (guint32) s->entries[i].last_seq, 4);
          put (a, (guint64) s->entries[i].offset, 8);
          put (a, (guint64) s->entries[i].append_time, 8);
        }
    }
  g_mutex_unlock (&p->lock);
  return g_byte_array_free_to_bytes (a);
}

typedef struct {
  const guint8 *p;
  const guint8 *end;
} Cursor;

static gboolean
get (Cursor *c, guint bytes, guint64 *v)
{
  if ((gsize) (c->end - c->p) < bytes)
    return FALSE;
  *v = 0;
  for (guint i = 0; i < bytes; i++)
    *v = (*v << 8) | c->p[i];
  c->p += bytes;
  return TRUE;
}

static char *
get_str (Cursor *c)
{
  guint64 n;
  char *s;

  if (!get (c, 2, &n) || (gsize) (c->end - c->p) < n || n == 0)
    return NULL;
  s = g_strndup ((const char *) c->p, (gsize) n);
  if (strlen (s) != n || strchr (s, '/') != NULL)
    {
      g_free (s);
      return NULL;
    }
  c->p += n;
  return s;
}

gboolean
kafka_producers_restore (KafkaProducers *p, GBytes *snapshot, GError **error)
{
  g_autoptr (GHashTable) states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify) state_free);
  g_autoptr (GHashTable) ends = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gsize len;
  const guint8 *data = g_bytes_get_data (snapshot, &len);
  Cursor c = { data, data + len };
  guint64 next_id, n, v;

  if (len < 4 || memcmp (data, SNAPSHOT_MAGIC, 4) != 0)
    goto bad;
  c.p += 4;
  if (!get (&c, 8, &next_id) || !get (&c, 4, &n))
    goto bad;
  for (guint64 i = 0; i < n; i++)
    {
      g_autofree char *stream = get_str (&c);
      guint64 partition, end;
      gint64 *e;

      if (stream == NULL || !get (&c, 4, &partition) || !get (&c, 8, &end))
        goto bad;
      e = g_new (gint64, 1);
      *e = (gint64) end;
      g_hash_table_insert (ends, end_key (stream, (gint32) partition), e);
    }
  if (!get (&c, 4, &n))
    goto bad;
  for (guint64 i = 0; i < n; i++)
    {
      ProducerState *s = g_new0 (ProducerState, 1);
      guint64 partition, pid, epoch, last_time, count;

      s->stream = get_str (&c);
      if (s->stream == NULL || !get (&c, 4, &partition) || !get (&c, 8, &pid)
          || !get (&c, 2, &epoch) || !get (&c, 8, &last_time) || !get (&c, 1, &count)
          || count > KAFKA_PRODUCER_WINDOW || (gint64) pid < 0)
        {
          state_free (s);
          goto bad;
        }
      s->partition = (gint32) partition;
      s->producer_id = (gint64) pid;
      s->epoch = (gint16) epoch;
      s->last_time = (gint64) last_time;
      for (guint64 k = 0; k < count; k++)
        {
          guint64 first, last, offset, time;

          if (!get (&c, 4, &first) || !get (&c, 4, &last) || !get (&c, 8, &offset)
              || !get (&c, 8, &time) || (gint32) first < 0 || (gint32) last < 0)
            {
              state_free (s);
              goto bad;
            }
          state_push (s, (gint32) first, (gint32) last, (gint64) offset, (gint64) time);
        }
      if (s->n == 0)
        s->next_seq = 0;
      g_hash_table_insert (states, state_key (s->stream, s->partition, s->producer_id), s);
    }
  if (c.p != c.end)
    goto bad;

  g_mutex_lock (&p->lock);
  g_hash_table_unref (p->states);
  p->states = g_steal_pointer (&states);
  g_hash_table_unref (p->ends);
  p->ends = g_steal_pointer (&ends);
  v = next_id;
  if ((gint64) v > p->next_id)
    p->next_id = (gint64) v;
  /* Ids up to the ceiling may be out there: start a new block when the
   * snapshot says more were used than the stored ceiling covers. */
  if (p->ceiling < p->next_id)
    p->ceiling = p->next_id;
  g_mutex_unlock (&p->lock);
  return TRUE;

bad:
  g_set_error_literal (error, KAFKA_PRODUCERS_ERROR, KAFKA_PRODUCERS_ERROR_CORRUPT,
                       "idempotent producer snapshot is corrupt");
  return FALSE;
}
