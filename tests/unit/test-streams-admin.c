/* Unit tests: creating and deleting streams at run time
 * (sluice_host_stream_create / _delete) on a real host over storage-file:
 * defaults, refusals, survival across restarts, and what a delete does to
 * appends in flight, waiting readers and consumer groups.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#include <glib/gstdio.h>

#define POLICY_KEY "c2x1aWNlLXRlc3QtcG9saWN5LWtleS0wMTIzNDU2Nzg="

typedef struct {
  char *dir;
  SluiceHost *host;
  SluicePrincipal *owner;
} Fixture;

static SluiceHost *
start_host_with (const char *dir, const char *extra)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_strdup_printf (
    "[hub]\nhostname = test.local\ndata-dir = %s\nworkers = 1\n"
    "[storage]\nplugin = file\nsegment-size = 4KiB\n"
    "[auth]\nchain = key\n[auth.key]\nplugin = key\n"
    "[policy.owner]\nprimary-key = %s\nrights = Send;Listen;Manage\n"
    "[stream.fixed]\npartitions = 2\ndurability = none\n%s",
    dir, POLICY_KEY, extra ? extra : "");
  SluiceConfig *config = sluice_config_load_from_data ("test.conf", text, &error);
  SluiceHost *host;

  g_assert_no_error (error);
  host = sluice_host_new (config, &error);
  g_assert_no_error (error);
  g_assert_true (sluice_host_start (host, &error));
  g_assert_no_error (error);
  return host;
}

static SluiceHost *
start_host (const char *dir)
{
  return start_host_with (dir, NULL);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("sluice-admin-XXXXXX", &error);
  g_assert_no_error (error);
  f->host = start_host (f->dir);
  f->owner = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "owner",
                                   SLUICE_RIGHT_SEND | SLUICE_RIGHT_LISTEN | SLUICE_RIGHT_MANAGE,
                                   NULL, 0, "test");
}

static void
rm_rf (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->host)
    sluice_host_free (f->host);
  sluice_principal_unref (f->owner);
  rm_rf (f->dir);
  g_free (f->dir);
}

static void
restart (Fixture *f)
{
  sluice_host_free (f->host);
  f->host = start_host (f->dir);
}

/* Iterate the default context until *flag or 10 s pass. */
static void
wait_for (gboolean *flag)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (!*flag && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (*flag);
}

typedef struct {
  gboolean done;
  GError *error;
} DoneWait;

static void
on_done (const GError *error, gpointer data)
{
  DoneWait *w = data;

  w->error = error ? g_error_copy (error) : NULL;
  w->done = TRUE;
}

/* Create and wait; returns the error (or NULL). */
static GError *
create_sync (Fixture *f, SluicePrincipal *who, const char *name, gint32 partitions,
             SluiceDurability durability, gint64 retention_ms)
{
  SluiceStreamInfo info = { 0 };
  DoneWait w = { 0 };

  info.partitions = partitions;
  info.durability = durability;
  info.retention_time_ms = retention_ms;
  sluice_host_stream_create (f->host, who, name, &info, on_done, &w);
  /* Never answered from inside the call. */
  g_assert_false (w.done);
  wait_for (&w.done);
  return w.error;
}

static GError *
delete_sync (Fixture *f, SluicePrincipal *who, const char *name)
{
  DoneWait w = { 0 };

  sluice_host_stream_delete (f->host, who, name, on_done, &w);
  g_assert_false (w.done);
  wait_for (&w.done);
  return w.error;
}

typedef struct {
  gboolean done;
  SluiceAppendResult result;
  GError *error;
  guint *counter;
} AppendWait;

static void
on_append (const SluiceAppendResult *result, const GError *error, gpointer data)
{
  AppendWait *w = data;

  if (result)
    w->result = *result;
  if (error)
    w->error = g_error_copy (error);
  w->done = TRUE;
  if (w->counter)
    (*w->counter)++;
}

static GError *
publish_sync (Fixture *f, const char *stream, gint32 partition, const char *body)
{
  AppendWait w = { 0 };
  g_autoptr (GBytes) b = g_bytes_new (body, strlen (body));

  sluice_host_publish (f->host, f->owner, stream, partition, NULL, NULL, b, on_append, &w);
  wait_for (&w.done);
  return w.error;
}

typedef struct {
  gboolean done;
  SluiceReadResult *result;
  GError *error;
} ReadWait;

static void
on_read (SluiceReadResult *result, const GError *error, gpointer data)
{
  ReadWait *w = data;

  w->result = result;
  w->error = error ? g_error_copy (error) : NULL;
  w->done = TRUE;
}

static void
test_create (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) names = NULL;
  SluiceStreamInfo info;
  gint64 first = -1, next = -1;

  error = create_sync (f, f->owner, "orders", 3, SLUICE_DURABILITY_NONE, 0);
  g_assert_no_error (error);
  g_assert_true (sluice_host_stream_info (f->host, "orders", &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.partitions, ==, 3);
  /* NONE and 0 take the hub's defaults (CONFIG.md). */
  g_assert_cmpint (info.durability, ==, SLUICE_DURABILITY_BATCH);
  g_assert_cmpint (info.retention_time_ms, ==, 7 * 24 * 3600 * 1000LL);
  g_assert_cmpuint (info.max_message, ==, 1 << 20);
  names = sluice_host_list_streams (f->host);
  g_assert_true (g_strv_contains ((const char *const *) names, "orders"));

  /* It works like any stream. */
  error = publish_sync (f, "orders", 2, "hello");
  g_assert_no_error (error);
  g_assert_true (sluice_host_stream_bounds (f->host, "orders", 2, &first, &next, &error));
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (next, ==, 1);

  /* Defaults for partitions too. */
  error = create_sync (f, f->owner, "defaults", 0, SLUICE_DURABILITY_INTERVAL, 60000);
  g_assert_no_error (error);
  g_assert_true (sluice_host_stream_info (f->host, "defaults", &info, &error));
  g_assert_cmpint (info.partitions, ==, 4);
  g_assert_cmpint (info.durability, ==, SLUICE_DURABILITY_INTERVAL);
  g_assert_cmpint (info.retention_time_ms, ==, 60000);
}

static void
test_refusals (Fixture *f, gconstpointer data)
{
  static const char *bad[] = { "", "$internal", "_x", "devices", "has space", "a/b" };
  g_autoptr (SluicePrincipal) sender = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, "sender",
                                                             SLUICE_RIGHT_SEND, NULL, 0,
                                                             "test");
  GError *error;

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      error = create_sync (f, f->owner, bad[i], 1, SLUICE_DURABILITY_NONE, 0);
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
      g_clear_error (&error);
      error = delete_sync (f, f->owner, bad[i]);
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
      g_clear_error (&error);
    }
  error = create_sync (f, f->owner, "neg", -1, SLUICE_DURABILITY_NONE, 0);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);
  error = create_sync (f, f->owner, "huge", 1000000, SLUICE_DURABILITY_NONE, 0);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);

  /* Existing: configured, built in, created. */
  error = create_sync (f, f->owner, "fixed", 1, SLUICE_DURABILITY_NONE, 0);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS);
  g_clear_error (&error);
  error = create_sync (f, f->owner, "events", 1, SLUICE_DURABILITY_NONE, 0);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS);
  g_clear_error (&error);
  error = create_sync (f, f->owner, "twice", 1, SLUICE_DURABILITY_NONE, 0);
  g_assert_no_error (error);
  error = create_sync (f, f->owner, "twice", 5, SLUICE_DURABILITY_NONE, 0);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS);
  g_clear_error (&error);

  /* Manage is needed for both. */
  error = create_sync (f, sender, "mine", 1, SLUICE_DURABILITY_NONE, 0);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_FORBIDDEN);
  g_clear_error (&error);
  error = delete_sync (f, sender, "twice");
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_FORBIDDEN);
  g_clear_error (&error);

  /* A configured stream would come back at the next start. */
  error = delete_sync (f, f->owner, "fixed");
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "[stream.fixed]"));
  g_clear_error (&error);
  error = delete_sync (f, f->owner, "nosuch");
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);
}

static void
test_restart (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  SluiceStreamInfo info;
  gint64 first = -1, next = -1;

  error = create_sync (f, f->owner, "kept", 6, SLUICE_DURABILITY_INTERVAL, 3600000);
  g_assert_no_error (error);
  error = publish_sync (f, "kept", 5, "one");
  g_assert_no_error (error);
  error = publish_sync (f, "kept", 5, "two");
  g_assert_no_error (error);

  restart (f);
  g_assert_true (sluice_host_stream_info (f->host, "kept", &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.partitions, ==, 6);
  g_assert_cmpint (info.durability, ==, SLUICE_DURABILITY_INTERVAL);
  g_assert_cmpint (info.retention_time_ms, ==, 3600000);
  g_assert_true (sluice_host_stream_bounds (f->host, "kept", 5, &first, &next, &error));
  g_assert_cmpint (next, ==, 2);
  error = create_sync (f, f->owner, "kept", 1, SLUICE_DURABILITY_NONE, 0);
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_EXISTS);
}

/* A `[stream.*]` section named like a created stream wins at the next
 * start (it may grow the partitions, never shrink them), and the stream
 * keeps its data. */
static void
test_config_wins (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  SluiceStreamInfo info;
  gint64 first = -1, next = -1;

  error = create_sync (f, f->owner, "later", 2, SLUICE_DURABILITY_BATCH, 0);
  g_assert_no_error (error);
  error = publish_sync (f, "later", 1, "kept");
  g_assert_no_error (error);

  sluice_host_free (f->host);
  f->host = start_host_with (f->dir, "[stream.later]\npartitions = 3\ndurability = none\n");
  g_assert_true (sluice_host_stream_info (f->host, "later", &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.partitions, ==, 3);
  g_assert_cmpint (info.durability, ==, SLUICE_DURABILITY_NONE);
  g_assert_true (sluice_host_stream_bounds (f->host, "later", 1, &first, &next, &error));
  g_assert_cmpint (next, ==, 1);
  /* Now configured: a delete is refused. */
  error = delete_sync (f, f->owner, "later");
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
}

typedef struct {
  gboolean done;
  GArray *offsets;
  GError *error;
} OffsetsWait;

static void
on_offsets (GArray *offsets, const GError *error, gpointer data)
{
  OffsetsWait *w = data;

  w->offsets = offsets;
  w->error = error ? g_error_copy (error) : NULL;
  w->done = TRUE;
}

static void
test_delete (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  SluiceGroupOffset commit = { 0, 1, NULL };
  DoneWait cw = { 0 };
  OffsetsWait ow = { 0 };
  SluiceStreamInfo info;
  gint64 first = -1, next = -1;

  error = create_sync (f, f->owner, "gone", 2, SLUICE_DURABILITY_BATCH, 0);
  g_assert_no_error (error);
  error = publish_sync (f, "gone", 0, "data");
  g_assert_no_error (error);
  sluice_host_commit_offsets (f->host, f->owner, "gone", "g1", &commit, 1, on_done, &cw);
  wait_for (&cw.done);
  g_assert_no_error (cw.error);

  error = delete_sync (f, f->owner, "gone");
  g_assert_no_error (error);
  g_assert_false (sluice_host_stream_info (f->host, "gone", &info, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  error = publish_sync (f, "gone", 0, "late");
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  error = delete_sync (f, f->owner, "gone");
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Still gone after a restart; a new stream of the same name starts
   * empty, without the old consumer group. */
  restart (f);
  g_assert_false (sluice_host_stream_info (f->host, "gone", &info, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  error = create_sync (f, f->owner, "gone", 1, SLUICE_DURABILITY_NONE, 0);
  g_assert_no_error (error);
  g_assert_true (sluice_host_stream_bounds (f->host, "gone", 0, &first, &next, &error));
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (next, ==, 0);
  sluice_host_fetch_offsets (f->host, f->owner, "gone", "g1", on_offsets, &ow);
  wait_for (&ow.done);
  g_assert_no_error (ow.error);
  g_assert_cmpuint (ow.offsets->len, ==, 1);
  g_assert_cmpint (g_array_index (ow.offsets, SluiceGroupOffset, 0).offset, ==, -1);
  g_array_unref (ow.offsets);
}

/* A long poll on the stream is answered by the delete, not by its timeout. */
static void
test_delete_wakes_readers (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  ReadWait r = { 0 };
  gint64 start;

  error = create_sync (f, f->owner, "polled", 1, SLUICE_DURABILITY_NONE, 0);
  g_assert_no_error (error);
  sluice_host_read (f->host, f->owner, "polled", 0, 0, 4096, 60000, NULL, on_read, &r);
  /* Let the read register as a waiter. */
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (r.done);

  start = g_get_monotonic_time ();
  error = delete_sync (f, f->owner, "polled");
  g_assert_no_error (error);
  wait_for (&r.done);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  g_assert_null (r.result);
  g_assert_error (r.error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&r.error);
}

/* Appends racing a delete: each is answered, either appended (before the
 * delete) or NOT_FOUND, never lost or left hanging, and the writer goes on
 * serving other streams. */
static void
test_delete_in_flight (Fixture *f, gconstpointer data)
{
  enum { N = 300 };
  g_autoptr (GError) error = NULL;
  AppendWait *w = g_new0 (AppendWait, N);
  guint answered = 0, ok = 0, not_found = 0;
  gboolean all = FALSE;
  DoneWait dw = { 0 };

  error = create_sync (f, f->owner, "busy", 2, SLUICE_DURABILITY_BATCH, 0);
  g_assert_no_error (error);
  for (guint i = 0; i < N; i++)
    {
      g_autoptr (GBytes) b = g_bytes_new_static ("payload", 7);

      w[i].counter = &answered;
      sluice_host_publish (f->host, f->owner, "busy", (gint32) (i % 2), NULL, NULL, b,
                           on_append, &w[i]);
      if (i == N / 2)
        sluice_host_stream_delete (f->host, f->owner, "busy", on_done, &dw);
    }
  wait_for (&dw.done);
  g_assert_no_error (dw.error);
  {
    gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
    while (answered < N && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
    all = answered == N;
  }
  g_assert_true (all);
  for (guint i = 0; i < N; i++)
    {
      if (w[i].error == NULL)
        ok++;
      else
        {
          g_assert_error (w[i].error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
          not_found++;
          g_clear_error (&w[i].error);
        }
    }
  g_test_message ("%u appended before the delete, %u refused", ok, not_found);
  g_assert_cmpuint (ok + not_found, ==, N);
  g_free (w);

  error = publish_sync (f, "fixed", 0, "still serving");
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/streams/admin/create", test_create);
  ADD ("/streams/admin/refusals", test_refusals);
  ADD ("/streams/admin/restart", test_restart);
  ADD ("/streams/admin/config-wins", test_config_wins);
  ADD ("/streams/admin/delete", test_delete);
  ADD ("/streams/admin/delete-wakes-readers", test_delete_wakes_readers);
  ADD ("/streams/admin/delete-in-flight", test_delete_in_flight);
#undef ADD

  return g_test_run ();
}
