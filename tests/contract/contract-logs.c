/* The storage contract suite — partition logs: append / read, batch
 * boundaries, bounds, reopen, list / delete, and retention.
 * SPDX-License-Identifier: Apache-2.0 */
#include "storage-contract.h"

#include <string.h>

static const SluiceLogId log0 = { "events", 0 };

static void
test_empty (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = NULL;
  SluiceLogId unknown = { "nothing", 0 };
  gint64 first = -1, next = -1;

  /* Unknown logs are NOT_FOUND, not empty. */
  g_assert_false (s->vt->log_bounds (s->self, &unknown, &first, &next, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  out = contract_read (s, &unknown, 0, 4096, &error);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_pointer (&out, g_ptr_array_unref);

  g_assert_true (s->vt->log_create (s->self, &log0, &error));
  g_assert_no_error (error);
  /* Creating again is a no-op. */
  g_assert_true (s->vt->log_create (s->self, &log0, &error));
  g_assert_no_error (error);
  contract_bounds (s, &log0, &first, &next);
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (next, ==, 0);

  /* An empty log reads as nothing, wherever the read starts. */
  out = contract_read (s, &log0, 0, 4096, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 0);
  g_clear_pointer (&out, g_ptr_array_unref);
  out = contract_read (s, &log0, 1000, 4096, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 0);
  g_clear_pointer (&out, g_ptr_array_unref);

  /* Survives a reopen as an empty log. */
  store_reopen (s);
  contract_bounds (s, &log0, &first, &next);
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (next, ==, 0);
}

static void
test_append_read (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = NULL;
  g_autoptr (GPtrArray) many = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
  g_autoptr (SluiceBatch) one = contract_batch (0, 3, CONTRACT_T0);
  gint64 assigned[5] = { -1, -1, -1, -1, -1 };
  gint64 first, next;

  g_assert_true (s->vt->log_create (s->self, &log0, &error));

  /* One batch. */
  g_assert_true (s->vt->log_append (s->self, &log0, &one, 1, assigned, &error));
  g_assert_no_error (error);
  g_assert_cmpint (assigned[0], ==, 0);
  contract_bounds (s, &log0, &first, &next);
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (next, ==, 3);
  out = contract_read (s, &log0, 0, G_MAXSIZE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 1);
  g_assert_true (contract_same_bytes (g_ptr_array_index (out, 0), one));
  contract_check_batch (g_ptr_array_index (out, 0));
  g_ptr_array_unref (g_steal_pointer (&out));

  /* Several in one call (NULL assigned offsets allowed too). */
  for (guint i = 0; i < 5; i++)
    g_ptr_array_add (many, contract_batch (3 + 4 * i, 4, CONTRACT_T0 + i));
  g_assert_true (s->vt->log_append (s->self, &log0, (SluiceBatch *const *) many->pdata, 5,
                                    assigned, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (assigned[i], ==, 3 + 4 * i);
  g_assert_true (s->vt->sync (s->self, &log0, 1, &error));
  g_assert_no_error (error);
  contract_bounds (s, &log0, &first, &next);
  g_assert_cmpint (next, ==, 23);

  out = contract_read (s, &log0, 3, G_MAXSIZE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 5);
  for (guint i = 0; i < 5; i++)
    {
      g_assert_true (contract_same_bytes (g_ptr_array_index (out, i),
                                          g_ptr_array_index (many, i)));
      contract_check_batch (g_ptr_array_index (out, i));
    }
  g_ptr_array_unref (g_steal_pointer (&out));

  /* From the middle of a batch: the batch that holds the offset. */
  out = contract_read (s, &log0, 13, G_MAXSIZE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 3);
  g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, 0))->base_offset, ==, 11);
  g_ptr_array_unref (g_steal_pointer (&out));

  /* A read appends to what the caller's array already holds. */
  out = contract_read (s, &log0, 0, 1, &error);
  g_assert_true (s->vt->log_read (s->self, &log0, 22, 1, out, &error));
  g_assert_cmpuint (out->len, ==, 2);
  g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, 1))->base_offset, ==, 19);
}

static void
test_max_bytes (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) in = contract_append (s, &log0, 10, 2);
  gsize sizes[10];

  for (guint i = 0; i < 10; i++)
    sizes[i] = g_bytes_get_size (((SluiceBatch *) g_ptr_array_index (in, i))->data);

  /* Smaller than one batch: still that one batch. */
  {
    g_autoptr (GPtrArray) out = contract_read (s, &log0, 0, 1, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 1);
  }
  /* Exactly two batches' worth, and one byte less. */
  {
    g_autoptr (GPtrArray) out = contract_read (s, &log0, 0, sizes[0] + sizes[1], &error);
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 2);
  }
  {
    g_autoptr (GPtrArray) out = contract_read (s, &log0, 0, sizes[0] + sizes[1] - 1, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 1);
  }
  /* From the middle: the budget counts from the containing batch. */
  {
    g_autoptr (GPtrArray) out = contract_read (s, &log0, 9,
                                               sizes[4] + sizes[5] + sizes[6], &error);
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 3);
    g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, 0))->base_offset, ==, 8);
    g_assert_cmpint (((SluiceBatch *) g_ptr_array_index (out, 2))->base_offset, ==, 12);
  }
  /* Past the end: nothing, and no error. */
  {
    g_autoptr (GPtrArray) out = contract_read (s, &log0, 20, G_MAXSIZE, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 0);
  }
  {
    g_autoptr (GPtrArray) out = contract_read (s, &log0, 1000000, G_MAXSIZE, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 0);
  }
}

/* Read the whole log in small chunks and compare with what was appended. */
static void
check_whole_log (Store *s, const SluiceLogId *log, GPtrArray *in, gsize chunk)
{
  g_autoptr (GError) error = NULL;
  guint i = 0;
  gint64 cursor = in->len ? ((SluiceBatch *) g_ptr_array_index (in, 0))->base_offset : 0;

  while (i < in->len)
    {
      g_autoptr (GPtrArray) out = contract_read (s, log, cursor, chunk, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (out->len, >, 0);
      for (guint j = 0; j < out->len; j++, i++)
        {
          SluiceBatch *b = g_ptr_array_index (out, j);
          g_assert_cmpuint (i, <, in->len);
          g_assert_true (contract_same_bytes (b, g_ptr_array_index (in, i)));
          cursor = b->base_offset + b->record_count;
        }
    }
}

static void
test_ordering (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
  gint64 next = 0;

  g_assert_true (s->vt->log_create (s->self, &log0, &error));
  /* Batches of 1 to 5 records, sometimes several per call. */
  for (guint i = 0; i < 300;)
    {
      guint n = 1 + i % 3;
      SluiceBatch *group[3];

      for (guint j = 0; j < n; j++)
        {
          guint per = 1 + (i + j) % 5;
          group[j] = contract_batch (next, per, CONTRACT_T0 + 1000 * next);
          g_ptr_array_add (in, group[j]);
          next += per;
        }
      g_assert_true (s->vt->log_append (s->self, &log0, group, n, NULL, &error));
      g_assert_no_error (error);
      i += n;
      if (i % 30 == 0)
        g_assert_true (s->vt->sync (s->self, &log0, 1, &error));
    }
  g_assert_true (s->vt->sync (s->self, &log0, 1, &error));

  check_whole_log (s, &log0, in, 1);
  check_whole_log (s, &log0, in, 1500);
  check_whole_log (s, &log0, in, G_MAXSIZE);
  {
    gint64 first, last;
    contract_bounds (s, &log0, &first, &last);
    g_assert_cmpint (first, ==, 0);
    g_assert_cmpint (last, ==, next);
  }
}

static void
test_boundaries (Store *s, gconstpointer data)
{
  g_autoptr (GPtrArray) in = contract_append (s, &log0, 40, 3);

  /* Every offset: the batch holding it, whole and intact. */
  for (gint64 o = 0; o < 120; o++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) out = contract_read (s, &log0, o, 1, &error);
      SluiceBatch *b;

      g_assert_no_error (error);
      g_assert_cmpuint (out->len, ==, 1);
      b = g_ptr_array_index (out, 0);
      g_assert_cmpint (b->base_offset, ==, o - o % 3);
      g_assert_true (contract_same_bytes (b, g_ptr_array_index (in, o / 3)));
      contract_check_batch (b);
    }
}

static void
test_reopen (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) in = contract_append (s, &log0, 25, 2);
  SluiceLogId log1 = { "events", 1 };
  g_autoptr (GPtrArray) in1 = contract_append (s, &log1, 5, 1);
  gint64 first, next;

  store_reopen (s);
  contract_bounds (s, &log0, &first, &next);
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (next, ==, 50);
  check_whole_log (s, &log0, in, 700);
  check_whole_log (s, &log1, in1, G_MAXSIZE);

  /* Appends continue at the old end. */
  g_ptr_array_extend_and_steal (in, contract_append (s, &log0, 5, 2));
  store_reopen (s);
  contract_bounds (s, &log0, &first, &next);
  g_assert_cmpint (next, ==, 60);
  check_whole_log (s, &log0, in, G_MAXSIZE);
}

static gboolean
listed (GPtrArray *streams, GArray *parts, const char *stream, gint32 partition)
{
  for (guint i = 0; i < streams->len; i++)
    if (strcmp (g_ptr_array_index (streams, i), stream) == 0
        && g_array_index (parts, gint32, i) == partition)
      return TRUE;
  return FALSE;
}

static void
list_logs (Store *s, GPtrArray **streams, GArray **parts)
{
  g_autoptr (GError) error = NULL;

  *streams = g_ptr_array_new_with_free_func (g_free);
  *parts = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (s->vt->log_list (s->self, *streams, *parts, &error));
  g_assert_no_error (error);
  g_assert_cmpuint ((*streams)->len, ==, (*parts)->len);
}

static void
test_list_delete (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) streams = NULL;
  g_autoptr (GArray) parts = NULL;
  static const char *const names[] = { "alpha", "beta", "gamma.x-1_y" };

  list_logs (s, &streams, &parts);
  g_assert_cmpuint (streams->len, ==, 0);
  g_clear_pointer (&streams, g_ptr_array_unref);
  g_clear_pointer (&parts, g_array_unref);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    for (gint32 p = 0; p < 3; p++)
      {
        SluiceLogId id = { names[i], p };
        g_assert_true (s->vt->log_create (s->self, &id, &error));
        g_assert_no_error (error);
        if (p == 1)
          g_ptr_array_unref (contract_append (s, &id, 3, 1));
      }
  list_logs (s, &streams, &parts);
  g_assert_cmpuint (streams->len, ==, 9);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    for (gint32 p = 0; p < 3; p++)
      g_assert_true (listed (streams, parts, names[i], p));
  g_clear_pointer (&streams, g_ptr_array_unref);
  g_clear_pointer (&parts, g_array_unref);

  /* Delete removes every partition of that stream, and only those. */
  g_assert_true (s->vt->log_delete (s->self, "beta", &error));
  g_assert_no_error (error);
  list_logs (s, &streams, &parts);
  g_assert_cmpuint (streams->len, ==, 6);
  g_assert_false (listed (streams, parts, "beta", 0));
  g_assert_false (listed (streams, parts, "beta", 1));
  g_assert_true (listed (streams, parts, "alpha", 1));
  g_clear_pointer (&streams, g_ptr_array_unref);
  g_clear_pointer (&parts, g_array_unref);
  {
    SluiceLogId gone = { "beta", 1 };
    gint64 first, next;
    g_assert_false (s->vt->log_bounds (s->self, &gone, &first, &next, &error));
    g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
    g_clear_error (&error);
  }

  /* The same after a reopen. */
  store_reopen (s);
  list_logs (s, &streams, &parts);
  g_assert_cmpuint (streams->len, ==, 6);
  g_assert_false (listed (streams, parts, "beta", 1));
  g_assert_true (listed (streams, parts, "gamma.x-1_y", 2));
  g_clear_pointer (&streams, g_ptr_array_unref);
  g_clear_pointer (&parts, g_array_unref);
  {
    SluiceLogId kept = { "alpha", 1 };
    gint64 first, next;
    contract_bounds (s, &kept, &first, &next);
    g_assert_cmpint (next, ==, 3);
  }

  /* A stream created again after a delete is a new, empty log. */
  {
    SluiceLogId again = { "beta", 0 };
    gint64 first, next;
    g_assert_true (s->vt->log_create (s->self, &again, &error));
    contract_bounds (s, &again, &first, &next);
    g_assert_cmpint (first, ==, next);
  }
  /* Deleting an unknown stream is not an error. */
  g_assert_true (s->vt->log_delete (s->self, "never-was", &error));
  g_assert_no_error (error);
}

static void
test_sync_many (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  SluiceLogId ids[4] = { { "a", 0 }, { "a", 1 }, { "b", 0 }, { "b", 7 } };
  gint64 next;

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr (SluiceBatch) b = contract_batch (0, 1 + i, CONTRACT_T0);
      g_assert_true (s->vt->log_create (s->self, &ids[i], &error));
      g_assert_true (s->vt->log_append (s->self, &ids[i], &b, 1, NULL, &error));
      g_assert_no_error (error);
    }
  /* One sync for every log the writer touched. */
  g_assert_true (s->vt->sync (s->self, ids, 4, &error));
  g_assert_no_error (error);
  store_reopen (s);
  for (guint i = 0; i < 4; i++)
    {
      contract_bounds (s, &ids[i], NULL, &next);
      g_assert_cmpint (next, ==, 1 + i);
    }
}

void
contract_add_log_tests (void)
{
  CONTRACT_ADD ("/log/empty", test_empty);
  CONTRACT_ADD ("/log/append-read", test_append_read);
  CONTRACT_ADD ("/log/max-bytes", test_max_bytes);
  CONTRACT_ADD ("/log/ordering", test_ordering);
  CONTRACT_ADD ("/log/boundaries", test_boundaries);
  CONTRACT_ADD ("/log/reopen", test_reopen);
  CONTRACT_ADD ("/log/list-delete", test_list_delete);
  CONTRACT_ADD ("/log/sync-many", test_sync_many);
}
