/* The storage contract suite — the key/value store and blobs.
 * SPDX-License-Identifier: Apache-2.0 */
#include "storage-contract.h"

#include <string.h>

/* ---------------------------------------------------------------------- */
/* KV */

static GBytes *
bytes (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

static void
put (Store *s, const char *key, const char *value)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) v = bytes (value);
  SluiceKvOp op = { SLUICE_KV_PUT, key, v };

  g_assert_true (s->vt->kv_commit (s->self, &op, 1, &error));
  g_assert_no_error (error);
}

static void
del (Store *s, const char *key)
{
  g_autoptr (GError) error = NULL;
  SluiceKvOp op = { SLUICE_KV_DELETE, key, NULL };

  g_assert_true (s->vt->kv_commit (s->self, &op, 1, &error));
  g_assert_no_error (error);
}

/* The value of `key` as a string, or NULL when absent. */
static char *
get (Store *s, const char *key)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) v = s->vt->kv_get (s->self, key, &error);

  g_assert_no_error (error);
  if (v == NULL)
    return NULL;
  /* An empty GBytes may have NULL data. */
  return g_strndup (g_bytes_get_size (v) ? g_bytes_get_data (v, NULL) : "",
                    g_bytes_get_size (v));
}

#define assert_get(s, key, expected) \
  G_STMT_START { \
    g_autofree char *v_ = get (s, key); \
    g_assert_cmpstr (v_, ==, expected); \
  } G_STMT_END

/* "k1=v1,k2=v2" of a prefix scan, in the order returned. */
static char *
scan (Store *s, const char *prefix)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  g_autoptr (GString) text = g_string_new (NULL);

  g_assert_true (s->vt->kv_scan (s->self, prefix, out, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < out->len; i++)
    {
      SluiceKvPair *p = g_ptr_array_index (out, i);
      g_string_append_printf (text, "%s%s=%.*s", i ? "," : "", p->key,
                              (int) g_bytes_get_size (p->value),
                              (const char *) g_bytes_get_data (p->value, NULL));
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

#define assert_scan(s, prefix, expected) \
  G_STMT_START { \
    g_autofree char *v_ = scan (s, prefix); \
    g_assert_cmpstr (v_, ==, expected); \
  } G_STMT_END

static void
test_kv_basic (Store *s, gconstpointer data)
{
  assert_get (s, "devices/a", NULL);
  put (s, "devices/a", "1");
  assert_get (s, "devices/a", "1");
  put (s, "devices/a", "2");
  assert_get (s, "devices/a", "2");
  del (s, "devices/a");
  assert_get (s, "devices/a", NULL);
  /* Deleting what is absent is fine. */
  del (s, "devices/a");
  del (s, "never");

  /* Empty and binary values round-trip exactly. */
  put (s, "empty", "");
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) v = s->vt->kv_get (s->self, "empty", &error);
    g_assert_nonnull (v);
    g_assert_cmpuint (g_bytes_get_size (v), ==, 0);
  }
  {
    static const guint8 bin[] = { 0, 1, 2, 0, 255, 0 };
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) v = g_bytes_new_static (bin, sizeof bin);
    g_autoptr (GBytes) back = NULL;
    SluiceKvOp op = { SLUICE_KV_PUT, "binary", v };

    g_assert_true (s->vt->kv_commit (s->self, &op, 1, &error));
    back = s->vt->kv_get (s->self, "binary", &error);
    g_assert_true (back != NULL && g_bytes_equal (back, v));
  }

  store_reopen (s);
  assert_get (s, "devices/a", NULL);
  assert_get (s, "empty", "");
}

static void
test_kv_scan (Store *s, gconstpointer data)
{
  /* Inserted out of order; scans come back in key (byte) order. */
  put (s, "devices/b", "2");
  put (s, "devices/ab", "3");
  put (s, "devices/a", "1");
  put (s, "devicesX", "x");
  put (s, "device", "d");
  put (s, "twins/a", "t");
  put (s, "devices/B", "upper");

  assert_scan (s, "devices/", "devices/B=upper,devices/a=1,devices/ab=3,devices/b=2");
  assert_scan (s, "devices/a", "devices/a=1,devices/ab=3");
  assert_scan (s, "devices", "devices/B=upper,devices/a=1,devices/ab=3,devices/b=2,devicesX=x");
  assert_scan (s, "nothing/", "");
  assert_scan (s, "", "device=d,devices/B=upper,devices/a=1,devices/ab=3,devices/b=2,"
                      "devicesX=x,twins/a=t");
  del (s, "devices/ab");
  assert_scan (s, "devices/a", "devices/a=1");
  store_reopen (s);
  assert_scan (s, "devices/", "devices/B=upper,devices/a=1,devices/b=2");
}

static void
test_kv_atomic (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) one = bytes ("1");
  g_autoptr (GBytes) two = bytes ("2");

  put (s, "acct/a", "100");
  put (s, "acct/gone", "x");
  {
    /* Several puts and deletes, one commit; a later op on the same key
     * wins. */
    SluiceKvOp ops[] = {
      { SLUICE_KV_PUT, "acct/a", one },
      { SLUICE_KV_PUT, "acct/b", two },
      { SLUICE_KV_DELETE, "acct/gone", NULL },
      { SLUICE_KV_PUT, "acct/c", one },
      { SLUICE_KV_DELETE, "acct/c", NULL },
      { SLUICE_KV_PUT, "acct/d", one },
      { SLUICE_KV_PUT, "acct/d", two },
    };
    g_assert_true (s->vt->kv_commit (s->self, ops, G_N_ELEMENTS (ops), &error));
    g_assert_no_error (error);
  }
  assert_scan (s, "acct/", "acct/a=1,acct/b=2,acct/d=2");

  {
    /* A commit with a bad op applies nothing. */
    SluiceKvOp ops[] = {
      { SLUICE_KV_PUT, "acct/a", two },
      { SLUICE_KV_DELETE, "acct/b", NULL },
      { SLUICE_KV_PUT, NULL, one },
    };
    g_assert_false (s->vt->kv_commit (s->self, ops, G_N_ELEMENTS (ops), &error));
    g_assert_nonnull (error);
    g_clear_error (&error);
  }
  assert_scan (s, "acct/", "acct/a=1,acct/b=2,acct/d=2");

  store_reopen (s);
  assert_scan (s, "acct/", "acct/a=1,acct/b=2,acct/d=2");
}

typedef struct {
  Store *s;
  gint stop;
  gint checks;
} KvRace;

static gpointer
kv_reader (gpointer data)
{
  KvRace *r = data;

  /* A multi-key commit is seen whole or not at all. */
  while (!g_atomic_int_get (&r->stop))
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);

      g_assert_true (r->s->vt->kv_scan (r->s->self, "pair/", out, &error));
      g_assert_cmpuint (out->len, ==, 3);
      g_assert_true (g_bytes_equal (((SluiceKvPair *) g_ptr_array_index (out, 0))->value,
                                    ((SluiceKvPair *) g_ptr_array_index (out, 1))->value));
      g_assert_true (g_bytes_equal (((SluiceKvPair *) g_ptr_array_index (out, 1))->value,
                                    ((SluiceKvPair *) g_ptr_array_index (out, 2))->value));
      g_atomic_int_inc (&r->checks);
    }
  return NULL;
}

static void
test_kv_concurrent (Store *s, gconstpointer data)
{
  KvRace race = { s, 0, 0 };
  GThread *readers[3];
  gint64 deadline;
  guint i = 0;

  put (s, "pair/a", "0");
  put (s, "pair/b", "0");
  put (s, "pair/c", "0");
  for (guint t = 0; t < G_N_ELEMENTS (readers); t++)
    readers[t] = g_thread_new ("kv-reader", kv_reader, &race);

  /* Commit until the readers have looked often enough (or enough time has
   * passed on a slow machine). */
  deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while ((i < 200 || g_atomic_int_get (&race.checks) < 500)
         && g_get_monotonic_time () < deadline)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text = g_strdup_printf ("%u", ++i);
      g_autoptr (GBytes) v = bytes (text);
      SluiceKvOp ops[] = { { SLUICE_KV_PUT, "pair/a", v }, { SLUICE_KV_PUT, "pair/b", v },
                           { SLUICE_KV_PUT, "pair/c", v } };
      g_assert_true (s->vt->kv_commit (s->self, ops, 3, &error));
      g_assert_no_error (error);
    }
  g_atomic_int_set (&race.stop, 1);
  for (guint t = 0; t < G_N_ELEMENTS (readers); t++)
    g_thread_join (readers[t]);
  g_assert_cmpint (g_atomic_int_get (&race.checks), >, 0);
  {
    g_autofree char *expected = g_strdup_printf ("%u", i);
    assert_get (s, "pair/c", expected);
  }
}

void
contract_add_kv_tests (void)
{
  CONTRACT_ADD ("/kv/basic", test_kv_basic);
  CONTRACT_ADD ("/kv/scan", test_kv_scan);
  CONTRACT_ADD ("/kv/atomic", test_kv_atomic);
  CONTRACT_ADD ("/kv/concurrent", test_kv_concurrent);
}

/* ---------------------------------------------------------------------- */
/* blobs */

static void
write_blob (Store *s, const char *name, const char *content, gsize piece)
{
  g_autoptr (GError) error = NULL;
  SluiceBlobWriter *w = s->vt->blob_open_write (s->self, name, &error);
  gsize len = strlen (content);

  g_assert_no_error (error);
  g_assert_nonnull (w);
  for (gsize at = 0; at < len; at += piece)
    {
      g_assert_true (s->vt->blob_write (s->self, w, (const guint8 *) content + at,
                                        MIN (piece, len - at), &error));
      g_assert_no_error (error);
    }
  g_assert_true (s->vt->blob_commit (s->self, w, &error));
  g_assert_no_error (error);
}

/* Whole content of a blob, or NULL with `error` set. */
static char *
read_blob (Store *s, const char *name, guint64 offset, gsize max, guint64 *total,
           GError **error)
{
  g_autoptr (GBytes) v = s->vt->blob_read (s->self, name, offset, max, total, error);

  if (v == NULL)
    return NULL;
  return g_strndup (g_bytes_get_size (v) ? g_bytes_get_data (v, NULL) : "",
                    g_bytes_get_size (v));
}

static void
assert_no_blob (Store *s, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *v = read_blob (s, name, 0, 100, NULL, &error);

  g_assert_null (v);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
}

static void
test_blob_roundtrip (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *big = NULL;
  guint64 total = 0;

  write_blob (s, "dev1/photo.jpg", "hello, blob world", 4);
  {
    g_autofree char *v = read_blob (s, "dev1/photo.jpg", 0, 1000, &total, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (v, ==, "hello, blob world");
    g_assert_cmpuint (total, ==, 17);
  }
  {
    /* A window, and the end. */
    g_autofree char *v = read_blob (s, "dev1/photo.jpg", 7, 4, &total, &error);
    g_assert_cmpstr (v, ==, "blob");
    g_clear_pointer (&v, g_free);
    v = read_blob (s, "dev1/photo.jpg", 12, 1000, NULL, &error);
    g_assert_cmpstr (v, ==, "world");
    g_clear_pointer (&v, g_free);
    v = read_blob (s, "dev1/photo.jpg", 17, 1000, &total, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (v, ==, "");
    g_assert_cmpuint (total, ==, 17);
    g_clear_pointer (&v, g_free);
    v = read_blob (s, "dev1/photo.jpg", 100, 1000, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (v, ==, "");
  }

  /* Larger than any one write, deeper names. */
  big = g_strnfill (300000, 'z');
  big[123456] = 'A';
  write_blob (s, "a/b/c/d/big.bin", big, 65536);
  store_reopen (s);
  {
    g_autofree char *v = read_blob (s, "a/b/c/d/big.bin", 0, G_MAXSIZE, &total, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (total, ==, 300000);
    g_assert_cmpstr (v, ==, big);
    g_clear_pointer (&v, g_free);
    v = read_blob (s, "a/b/c/d/big.bin", 123456, 1, NULL, &error);
    g_assert_cmpstr (v, ==, "A");
    g_clear_pointer (&v, g_free);
    v = read_blob (s, "dev1/photo.jpg", 0, 1000, NULL, &error);
    g_assert_cmpstr (v, ==, "hello, blob world");
  }
}

static void
test_blob_abort_replace_delete (Store *s, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  SluiceBlobWriter *w;

  /* Not visible until committed; gone when aborted. */
  w = s->vt->blob_open_write (s->self, "up/file.txt", &error);
  g_assert_nonnull (w);
  g_assert_true (s->vt->blob_write (s->self, w, (const guint8 *) "partial", 7, &error));
  assert_no_blob (s, "up/file.txt");
  s->vt->blob_abort (s->self, w);
  assert_no_blob (s, "up/file.txt");

  /* Replace: readers see the old blob until the new one commits. */
  write_blob (s, "up/file.txt", "first version", 100);
  w = s->vt->blob_open_write (s->self, "up/file.txt", &error);
  g_assert_true (s->vt->blob_write (s->self, w, (const guint8 *) "second", 6, &error));
  {
    g_autofree char *v = read_blob (s, "up/file.txt", 0, 100, NULL, &error);
    g_assert_cmpstr (v, ==, "first version");
  }
  g_assert_true (s->vt->blob_commit (s->self, w, &error));
  g_assert_no_error (error);
  {
    guint64 total;
    g_autofree char *v = read_blob (s, "up/file.txt", 0, 100, &total, &error);
    g_assert_cmpstr (v, ==, "second");
    g_assert_cmpuint (total, ==, 6);
  }
  /* An aborted replacement leaves the committed blob alone. */
  w = s->vt->blob_open_write (s->self, "up/file.txt", &error);
  g_assert_true (s->vt->blob_write (s->self, w, (const guint8 *) "third", 5, &error));
  s->vt->blob_abort (s->self, w);
  {
    g_autofree char *v = read_blob (s, "up/file.txt", 0, 100, NULL, &error);
    g_assert_cmpstr (v, ==, "second");
  }

  /* Delete. */
  g_assert_true (s->vt->blob_delete (s->self, "up/file.txt", &error));
  g_assert_no_error (error);
  assert_no_blob (s, "up/file.txt");
  g_assert_false (s->vt->blob_delete (s->self, "up/file.txt", &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  assert_no_blob (s, "never/was");

  /* Abort, delete and replace hold across a reopen. */
  write_blob (s, "keep", "kept", 2);
  store_reopen (s);
  assert_no_blob (s, "up/file.txt");
  {
    g_autofree char *v = read_blob (s, "keep", 0, 100, NULL, &error);
    g_assert_cmpstr (v, ==, "kept");
  }
}

static void
test_blob_bad_names (Store *s, gconstpointer data)
{
  static const char *const bad[] = { "", "../etc/passwd", "a/../../b", "/abs", "a//b",
                                     "a/./b", "..", "trailing/" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      SluiceBlobWriter *w = s->vt->blob_open_write (s->self, bad[i], &error);

      if (w != NULL)
        g_error ("blob name '%s' was accepted", bad[i]);
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    }
}

void
contract_add_blob_tests (void)
{
  CONTRACT_ADD ("/blob/roundtrip", test_blob_roundtrip);
  CONTRACT_ADD ("/blob/abort-replace-delete", test_blob_abort_replace_delete);
  CONTRACT_ADD ("/blob/bad-names", test_blob_bad_names);
}
