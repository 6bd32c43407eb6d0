/* Sluice unit tests — the epoll GSource (compiled in, it is core-internal).
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"
#include "epoll-source.h"

#include <unistd.h>

typedef struct {
  int pipes[2][2];
  SluiceEpollWatch watches[2];
  GSource *source;
  guint calls[2];
  gboolean remove_other;
  guint posts;
} Fixture;

static Fixture *current;

static void
on_ready_counting (gpointer user_data, guint32 events)
{
  Fixture *f = current;
  int idx = GPOINTER_TO_INT (user_data);
  char c;

  g_assert_true (events & EPOLLIN);
  g_assert_cmpint (read (f->pipes[idx][0], &c, 1), ==, 1);
  f->calls[idx]++;
  if (f->remove_other)
    sluice_epoll_source_remove (f->source, &f->watches[1 - idx]);
}

static void
on_post (gpointer user_data)
{
  Fixture *f = user_data;

  f->posts++;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  current = f;
  for (int i = 0; i < 2; i++)
    {
      g_assert_cmpint (pipe (f->pipes[i]), ==, 0);
      sluice_epoll_watch_init (&f->watches[i], f->pipes[i][0], on_ready_counting,
                               GINT_TO_POINTER (i));
    }
  f->source = sluice_epoll_source_new (&error);
  g_assert_no_error (error);
  sluice_epoll_source_set_post_dispatch (f->source, on_post, f);
  g_source_attach (f->source, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_source_destroy (f->source);
  g_source_unref (f->source);
  for (int i = 0; i < 2; i++)
    {
      close (f->pipes[i][0]);
      close (f->pipes[i][1]);
    }
}

/* Iterate the default context until `cond` or a 5 s deadline. */
#define ITERATE_UNTIL(cond)                                               \
  G_STMT_START                                                            \
  {                                                                       \
    gint64 _deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;      \
    while (!(cond) && g_get_monotonic_time () < _deadline)                \
      g_main_context_iteration (NULL, FALSE);                             \
    g_assert_true (cond);                                                 \
  }                                                                       \
  G_STMT_END

static void
drain_iterations (void)
{
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
}

static void
test_dispatch (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (sluice_epoll_source_add (f->source, &f->watches[0], EPOLLIN, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (write (f->pipes[0][1], "x", 1), ==, 1);
  ITERATE_UNTIL (f->calls[0] == 1);
  drain_iterations ();
  g_assert_cmpuint (f->calls[0], ==, 1);   /* level-triggered, but drained */
  g_assert_cmpint (write (f->pipes[0][1], "yz", 2), ==, 2);
  ITERATE_UNTIL (f->calls[0] == 3);        /* one byte per callback: called again */
}

static void
test_remove_in_batch (Fixture *f, gconstpointer data)
{
  f->remove_other = TRUE;
  for (int i = 0; i < 2; i++)
    {
      g_assert_true (sluice_epoll_source_add (f->source, &f->watches[i], EPOLLIN, 0, NULL));
      g_assert_cmpint (write (f->pipes[i][1], "x", 1), ==, 1);
    }
  ITERATE_UNTIL (f->calls[0] + f->calls[1] >= 1);
  drain_iterations ();
  /* Both were ready in one batch; the one removed first is never called. */
  g_assert_cmpuint (f->calls[0] + f->calls[1], ==, 1);
}

static void
test_modify_zero (Fixture *f, gconstpointer data)
{
  g_assert_true (sluice_epoll_source_add (f->source, &f->watches[0], EPOLLIN, 0, NULL));
  g_assert_true (sluice_epoll_source_modify (f->source, &f->watches[0], 0, NULL));
  g_assert_cmpuint (f->watches[0].events, ==, 0);
  g_assert_cmpint (write (f->pipes[0][1], "x", 1), ==, 1);
  drain_iterations ();
  g_assert_cmpuint (f->calls[0], ==, 0);
  g_assert_true (sluice_epoll_source_modify (f->source, &f->watches[0], EPOLLIN, NULL));
  ITERATE_UNTIL (f->calls[0] == 1);
}

static gboolean
request_post (gpointer data)
{
  Fixture *f = data;

  sluice_epoll_source_request_post_dispatch (f->source);
  return G_SOURCE_REMOVE;
}

static void
test_post_dispatch (Fixture *f, gconstpointer data)
{
  drain_iterations ();
  g_assert_cmpuint (f->posts, ==, 0);
  g_idle_add (request_post, f);
  ITERATE_UNTIL (f->posts == 1);
  drain_iterations ();
  g_assert_cmpuint (f->posts, ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/io/epoll/dispatch", Fixture, NULL, fixture_setup, test_dispatch,
              fixture_teardown);
  g_test_add ("/io/epoll/remove-in-batch", Fixture, NULL, fixture_setup, test_remove_in_batch,
              fixture_teardown);
  g_test_add ("/io/epoll/modify-zero", Fixture, NULL, fixture_setup, test_modify_zero,
              fixture_teardown);
  g_test_add ("/io/epoll/post-dispatch", Fixture, NULL, fixture_setup, test_post_dispatch,
              fixture_teardown);
  return g_test_run ();
}
