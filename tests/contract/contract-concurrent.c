/* The storage contract suite — concurrency: appenders on several
 * partitions with readers alongside, and readers racing an appender on the
 * same partition. Readers must only ever see whole, valid batches that were
 * appended, at the offsets they were appended at.
 * SPDX-License-Identifier: Apache-2.0 */
#include "storage-contract.h"

#define N_PARTITIONS 4

typedef struct {
  Store *s;
  const char *stream;
  guint n_logs;
  GPtrArray *planned[N_PARTITIONS];   /* every batch each log will get, in order */
  GHashTable *by_base[N_PARTITIONS];  /* base offset -> SluiceBatch* */
  gint writers_left;
  gint reads;
  gint batches_seen;
} Race;

typedef struct {
  Race *race;
  guint index;
} Worker;

static void
race_plan (Race *r, guint log, guint count, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  gint64 next = 0;

  r->planned[log] = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
  r->by_base[log] = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (guint i = 0; i < count; i++)
    {
      guint per = (guint) g_rand_int_range (rand, 1, 6);
      SluiceBatch *b = contract_batch (next, per, CONTRACT_T0 + next);
      g_ptr_array_add (r->planned[log], b);
      g_hash_table_insert (r->by_base[log], &b->base_offset, b);
      next += per;
    }
}

static void
race_clear (Race *r)
{
  for (guint i = 0; i < r->n_logs; i++)
    {
      g_hash_table_unref (r->by_base[i]);
      g_ptr_array_unref (r->planned[i]);
    }
}

static gpointer
appender (gpointer data)
{
  Worker *w = data;
  Race *r = w->race;
  GPtrArray *plan = r->planned[w->index];
  SluiceLogId id = { r->stream, (gint32) w->index };
  g_autoptr (GRand) rand = g_rand_new_with_seed (w->index + 1);

  for (guint i = 0; i < plan->len;)
    {
      g_autoptr (GError) error = NULL;
      /* Sometimes several batches in one call. */
      guint n = MIN ((guint) g_rand_int_range (rand, 1, 4), plan->len - i);

      g_assert_true (r->s->vt->log_append (r->s->self, &id,
                                           (SluiceBatch *const *) plan->pdata + i, n, NULL,
                                           &error));
      g_assert_no_error (error);
      i += n;
      if (g_rand_int_range (rand, 0, 4) == 0)
        {
          g_assert_true (r->s->vt->sync (r->s->self, &id, 1, &error));
          g_assert_no_error (error);
        }
    }
  g_atomic_int_add (&r->writers_left, -1);
  return NULL;
}

/* One random read, checked against the plan. */
static void
random_read (Race *r, GRand *rand, guint log)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = NULL;
  SluiceLogId id = { r->stream, (gint32) log };
  gint64 first, next, from;
  gsize max_bytes;

  g_assert_true (r->s->vt->log_bounds (r->s->self, &id, &first, &next, &error));
  g_assert_no_error (error);
  g_assert_cmpint (first, <=, next);
  /* Sometimes at or past the end, where data is arriving. */
  from = g_rand_int_range (rand, 0, 8) == 0 ? next
                                            : (gint64) g_rand_double_range (rand, 0, next + 1);
  max_bytes = (gsize) g_rand_int_range (rand, 1, 8000);
  out = contract_read (r->s, &id, from, max_bytes, &error);
  g_assert_no_error (error);
  if (from < next)
    g_assert_cmpuint (out->len, >, 0);

  for (guint i = 0; i < out->len; i++)
    {
      SluiceBatch *b = g_ptr_array_index (out, i);
      SluiceBatch *planned = g_hash_table_lookup (r->by_base[log], &b->base_offset);

      /* An appended batch, whole and at its own offset. */
      g_assert_nonnull (planned);
      g_assert_true (contract_same_bytes (b, planned));
      if (i == 0)
        {
          g_assert_cmpint (b->base_offset, <=, from);
          g_assert_cmpint (b->base_offset + b->record_count, >, from);
        }
      else
        {
          SluiceBatch *prev = g_ptr_array_index (out, i - 1);
          g_assert_cmpint (b->base_offset, ==, prev->base_offset + prev->record_count);
        }
    }
  if (out->len > 1)
    {
      gsize total = 0;
      for (guint i = 0; i < out->len; i++)
        total += g_bytes_get_size (((SluiceBatch *) g_ptr_array_index (out, i))->data);
      g_assert_cmpuint (total, <=, max_bytes);
    }
  g_atomic_int_inc (&r->reads);
  g_atomic_int_add (&r->batches_seen, (gint) out->len);
}

static gpointer
reader (gpointer data)
{
  Worker *w = data;
  Race *r = w->race;
  g_autoptr (GRand) rand = g_rand_new_with_seed (100 + w->index);

  /* Keep reading while anyone writes, and a little after. */
  while (g_atomic_int_get (&r->writers_left) > 0)
    random_read (r, rand, (guint) g_rand_int_range (rand, 0, (gint32) r->n_logs));
  for (guint i = 0; i < 20; i++)
    random_read (r, rand, (guint) g_rand_int_range (rand, 0, (gint32) r->n_logs));
  return NULL;
}

/* A reader that follows the log from 0, as a consumer would. */
static gpointer
follower (gpointer data)
{
  Worker *w = data;
  Race *r = w->race;
  GPtrArray *plan = r->planned[0];
  SluiceLogId id = { r->stream, 0 };
  guint i = 0;
  gint64 cursor = 0;

  while (i < plan->len)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) out = contract_read (r->s, &id, cursor, 3000, &error);

      g_assert_no_error (error);
      if (out->len == 0)
        {
          /* Caught up with the writer: it must still be writing. */
          if (g_atomic_int_get (&r->writers_left) == 0)
            {
              g_autoptr (GPtrArray) last = contract_read (r->s, &id, cursor, 3000, &error);
              g_assert_cmpuint (last->len, >, 0);
            }
          g_thread_yield ();
          continue;
        }
      for (guint j = 0; j < out->len; j++, i++)
        {
          SluiceBatch *b = g_ptr_array_index (out, j);
          g_assert_cmpuint (i, <, plan->len);
          g_assert_true (contract_same_bytes (b, g_ptr_array_index (plan, i)));
          cursor = b->base_offset + b->record_count;
        }
    }
  return NULL;
}

static void
check_final (Race *r)
{
  for (guint log = 0; log < r->n_logs; log++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) out = NULL;
      GPtrArray *plan = r->planned[log];
      SluiceLogId id = { r->stream, (gint32) log };
      SluiceBatch *last = g_ptr_array_index (plan, plan->len - 1);
      gint64 first, next;

      contract_bounds (r->s, &id, &first, &next);
      g_assert_cmpint (next, ==, last->base_offset + last->record_count);
      out = contract_read (r->s, &id, 0, G_MAXSIZE, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (out->len, ==, plan->len);
      for (guint i = 0; i < out->len; i++)
        g_assert_true (contract_same_bytes (g_ptr_array_index (out, i),
                                            g_ptr_array_index (plan, i)));
    }
}

static void
test_appenders (Store *s, gconstpointer data)
{
  Race race = { s, "busy", N_PARTITIONS, { NULL }, { NULL }, N_PARTITIONS, 0, 0 };
  Worker workers[N_PARTITIONS + 2];
  GThread *threads[N_PARTITIONS + 2];

  for (guint i = 0; i < N_PARTITIONS; i++)
    {
      g_autoptr (GError) error = NULL;
      SluiceLogId id = { race.stream, (gint32) i };
      g_assert_true (s->vt->log_create (s->self, &id, &error));
      g_assert_no_error (error);
      race_plan (&race, i, 150, 7 + i);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      workers[i].race = &race;
      workers[i].index = i < N_PARTITIONS ? i : i - N_PARTITIONS;
      threads[i] = g_thread_new (i < N_PARTITIONS ? "appender" : "reader",
                                 i < N_PARTITIONS ? appender : reader, &workers[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  g_assert_cmpint (race.reads, >, 0);
  g_test_message ("%d reads saw %d batches", race.reads, race.batches_seen);
  check_final (&race);
  {
    SluiceLogId ids[N_PARTITIONS];
    g_autoptr (GError) error = NULL;
    for (guint i = 0; i < N_PARTITIONS; i++)
      ids[i] = (SluiceLogId) { race.stream, (gint32) i };
    g_assert_true (s->vt->sync (s->self, ids, N_PARTITIONS, &error));
    g_assert_no_error (error);
  }
  store_reopen (s);
  check_final (&race);
  race_clear (&race);
}

static void
test_same_partition (Store *s, gconstpointer data)
{
  Race race = { s, "hot", 1, { NULL }, { NULL }, 1, 0, 0 };
  Worker workers[5];
  GThread *threads[5];
  g_autoptr (GError) error = NULL;
  SluiceLogId id = { race.stream, 0 };

  g_assert_true (s->vt->log_create (s->self, &id, &error));
  race_plan (&race, 0, 400, 42);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      workers[i].race = &race;
      workers[i].index = i == 0 ? 0 : i;
      threads[i] = g_thread_new (i == 0 ? "appender" : "reader",
                                 i == 0 ? appender : i == 1 ? follower : reader, &workers[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  g_assert_cmpint (race.reads, >, 0);
  g_test_message ("%d reads saw %d batches", race.reads, race.batches_seen);
  g_assert_true (s->vt->sync (s->self, &id, 1, &error));
  check_final (&race);
  race_clear (&race);
}

void
contract_add_concurrency_tests (void)
{
  CONTRACT_ADD ("/concurrent/appenders", test_appenders);
  CONTRACT_ADD ("/concurrent/same-partition", test_same_partition);
}
