/* The storage contract suite — retention (log_trim). A backend drops whole
 * storage units of its own choosing (segments, batches), so the cases check
 * what holds for any unit size: only data the limit allows is dropped, the
 * newest data is always kept, bounds follow, and offsets never go back.
 * The backend's options must make its units small next to the ~30 KiB each
 * case writes (for `file`: segment-size = 4KiB).
 * SPDX-License-Identifier: Apache-2.0 */
#include "storage-contract.h"

static const SluiceLogId log0 = { "events", 3 };

#define N_BATCHES 100
#define PER 2
#define NEXT (N_BATCHES * PER)

static gint64
trim (Store *s, gint64 before, gint64 older_than, guint64 max_bytes)
{
  g_autoptr (GError) error = NULL;
  gint64 new_first = -1, first, next;

  g_assert_true (s->vt->log_trim (s->self, &log0, before, older_than, max_bytes, &new_first,
                                  &error));
  g_assert_no_error (error);
  contract_bounds (s, &log0, &first, &next);
  g_assert_cmpint (first, ==, new_first);
  g_assert_cmpint (next, ==, NEXT);
  return new_first;
}

/* Everything from `new_first` on is still there, unchanged. */
static void
check_kept (Store *s, GPtrArray *in, gint64 new_first)
{
  g_autoptr (GError) error = NULL;
  guint i = (guint) (new_first / PER);
  gint64 cursor = new_first;

  /* Units hold whole batches, so the new first offset starts one. */
  g_assert_cmpint (new_first % PER, ==, 0);
  while (i < in->len)
    {
      g_autoptr (GPtrArray) out = contract_read (s, &log0, cursor, 2000, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (out->len, >, 0);
      for (guint j = 0; j < out->len; j++, i++)
        {
          SluiceBatch *b = g_ptr_array_index (out, j);
          g_assert_true (contract_same_bytes (b, g_ptr_array_index (in, i)));
          cursor = b->base_offset + b->record_count;
        }
    }
}

static void
test_no_limit (Store *s, gconstpointer data)
{
  g_autoptr (GPtrArray) in = contract_append (s, &log0, N_BATCHES, PER);

  g_assert_cmpint (trim (s, G_MAXINT64, 0, 0), ==, 0);
  g_assert_cmpint (trim (s, 0, 0, 0), ==, 0);
  g_assert_cmpint (trim (s, G_MAXINT64, CONTRACT_T0, 0), ==, 0);
  check_kept (s, in, 0);
}

static void
test_by_offset (Store *s, gconstpointer data)
{
  g_autoptr (GPtrArray) in = contract_append (s, &log0, N_BATCHES, PER);
  gint64 new_first = trim (s, NEXT / 2, 0, 0);

  g_assert_cmpint (new_first, >, 0);
  g_assert_cmpint (new_first, <=, NEXT / 2);
  check_kept (s, in, new_first);
  /* Again: nothing more to drop. */
  g_assert_cmpint (trim (s, NEXT / 2, 0, 0), ==, new_first);
  g_assert_cmpint (trim (s, 1, 0, 0), ==, new_first);
}

static void
test_by_time (Store *s, gconstpointer data)
{
  g_autoptr (GPtrArray) in = contract_append (s, &log0, N_BATCHES, PER);
  /* Batches are stamped T0 + 1000 * base: the batch at NEXT / 2 is not
   * older than the limit, so neither is its unit. */
  gint64 new_first = trim (s, G_MAXINT64, CONTRACT_T0 + 1000 * (NEXT / 2), 0);

  g_assert_cmpint (new_first, >, 0);
  g_assert_cmpint (new_first, <=, NEXT / 2);
  check_kept (s, in, new_first);
  g_assert_cmpint (trim (s, G_MAXINT64, CONTRACT_T0, 0), ==, new_first);
}

static void
test_by_size (Store *s, gconstpointer data)
{
  g_autoptr (GPtrArray) in = contract_append (s, &log0, N_BATCHES, PER);
  guint64 total = 0, kept = 0, limit;
  gint64 new_first;

  for (guint i = 0; i < in->len; i++)
    total += g_bytes_get_size (((SluiceBatch *) g_ptr_array_index (in, i))->data);
  limit = total / 3;
  new_first = trim (s, G_MAXINT64, 0, limit);
  g_assert_cmpint (new_first, >, 0);
  for (guint i = (guint) (new_first / PER); i < in->len; i++)
    kept += g_bytes_get_size (((SluiceBatch *) g_ptr_array_index (in, i))->data);
  g_assert_cmpuint (kept, >, 0);
  g_assert_cmpuint (kept, <=, limit);
  check_kept (s, in, new_first);
}

static void
test_keeps_newest (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) in = contract_append (s, &log0, N_BATCHES, PER);
  gint64 new_first;

  /* Every limit says "drop it all": the newest unit stays. */
  new_first = trim (s, NEXT, CONTRACT_T0 + 1000 * 1000 * 1000, 1);
  g_assert_cmpint (new_first, >, 0);
  g_assert_cmpint (new_first, <=, NEXT - PER);
  check_kept (s, in, new_first);

  /* Offsets never go backwards, also across a reopen. */
  store_reopen (s);
  {
    gint64 first, next;
    contract_bounds (s, &log0, &first, &next);
    g_assert_cmpint (first, ==, new_first);
    g_assert_cmpint (next, ==, NEXT);
  }
  check_kept (s, in, new_first);
  g_ptr_array_extend_and_steal (in, contract_append (s, &log0, 3, PER));
  {
    gint64 first, next;
    contract_bounds (s, &log0, &first, &next);
    g_assert_cmpint (first, ==, new_first);
    g_assert_cmpint (next, ==, NEXT + 3 * PER);
  }
  store_reopen (s);
  {
    g_autoptr (GPtrArray) out = contract_read (s, &log0, NEXT, G_MAXSIZE, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (out->len, ==, 3);
    g_assert_true (contract_same_bytes (g_ptr_array_index (out, 2),
                                        g_ptr_array_index (in, N_BATCHES + 2)));
  }
}

static void
test_unknown (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  SluiceLogId unknown = { "nothing", 0 };
  gint64 new_first;

  g_assert_false (s->vt->log_trim (s->self, &unknown, 10, 0, 0, &new_first, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
}

void
contract_add_trim_tests (void)
{
  CONTRACT_ADD ("/trim/no-limit", test_no_limit);
  CONTRACT_ADD ("/trim/by-offset", test_by_offset);
  CONTRACT_ADD ("/trim/by-time", test_by_time);
  CONTRACT_ADD ("/trim/by-size", test_by_size);
  CONTRACT_ADD ("/trim/keeps-newest", test_keeps_newest);
  CONTRACT_ADD ("/trim/unknown-log", test_unknown);
}
