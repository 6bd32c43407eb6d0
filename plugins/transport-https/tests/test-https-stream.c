/* transport-https — the connection stream's WebSocket duties: pausing
 * (reads would block, sources wait for the resume), counting what was
 * written (the unsent count of a carried connection) with a progress hook,
 * end of stream reported as such once it carries a WebSocket, and finding
 * it under a wrapping stream.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-stream.h"

#include <gio/gio.h>
#include <sys/socket.h>

typedef struct {
  GSocketConnection *ours;     /* the server side, under the HttpsStream */
  GSocketConnection *peer;     /* the client side */
  GIOStream *stream;
  guint progress;
} Fixture;

static GSocketConnection *
connection_for_fd (int fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new_from_fd (fd, &error);

  g_assert_no_error (error);
  return g_socket_connection_factory_create_connection (socket);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  f->ours = connection_for_fd (fds[0]);
  f->peer = connection_for_fd (fds[1]);
  g_socket_set_blocking (g_socket_connection_get_socket (f->ours), FALSE);
  f->stream = https_stream_new (G_IO_STREAM (f->ours), NULL);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->stream);
  g_clear_object (&f->ours);
  g_io_stream_close (G_IO_STREAM (f->peer), NULL, NULL);
  g_clear_object (&f->peer);
}

static void
peer_send (Fixture *f, const char *text)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (f->peer)),
                                            text, strlen (text), NULL, NULL, &error));
  g_assert_no_error (error);
}

static gssize
read_nonblocking (Fixture *f, char *buf, gsize len, GError **error)
{
  GPollableInputStream *in =
    G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (f->stream));

  return g_pollable_input_stream_read_nonblocking (in, buf, len, NULL, error);
}

static gboolean
fired_cb (GObject *stream, gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_REMOVE;
}

/* Iterate the default context until `*counter` is non-zero or 5 s passed. */
static gboolean
wait_fired (guint *counter, guint ms)
{
  gint64 deadline = g_get_monotonic_time () + ms * 1000;

  while (*counter == 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  return *counter > 0;
}

static void
test_pause (Fixture *f, gconstpointer data)
{
  HttpsStream *stream = HTTPS_STREAM (f->stream);
  GPollableInputStream *in =
    G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (f->stream));
  g_autoptr(GError) error = NULL;
  g_autoptr(GSource) source = NULL;
  guint fired = 0;
  char buf[16] = { 0 };

  peer_send (f, "abc");
  https_stream_set_paused (stream, TRUE);
  g_assert_false (g_pollable_input_stream_is_readable (in));
  g_assert_cmpint (read_nonblocking (f, buf, sizeof buf, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);

  /* A source made while paused does not fire, though bytes are waiting. */
  source = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (fired_cb), &fired, NULL);
  g_source_attach (source, NULL);
  g_assert_false (wait_fired (&fired, 200));

  https_stream_set_paused (stream, FALSE);
  g_assert_true (wait_fired (&fired, 5000));
  g_assert_true (g_pollable_input_stream_is_readable (in));
  g_assert_cmpint (read_nonblocking (f, buf, sizeof buf, &error), ==, 3);
  g_assert_no_error (error);
  g_assert_cmpstr (buf, ==, "abc");
  g_source_destroy (source);
}

static void
on_progress (gpointer data)
{
  ((Fixture *) data)->progress++;
}

static void
test_written (Fixture *f, gconstpointer data)
{
  HttpsStream *stream = HTTPS_STREAM (f->stream);
  GOutputStream *out = g_io_stream_get_output_stream (f->stream);
  g_autoptr(GError) error = NULL;
  gsize n = 0;

  g_assert_true (g_output_stream_write_all (out, "hello", 5, &n, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (https_stream_get_written (stream), ==, 5);
  g_assert_cmpuint (f->progress, ==, 0);

  https_stream_carry (stream, on_progress, f);
  g_assert_cmpint (g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (out),
                                                               "12345678", 8, NULL, &error),
                   ==, 8);
  g_assert_no_error (error);
  g_assert_cmpuint (https_stream_get_written (stream), ==, 13);
  g_assert_cmpuint (f->progress, ==, 1);

  /* The peer got exactly that. */
  {
    char buf[14] = { 0 };
    GInputStream *pin = g_io_stream_get_input_stream (G_IO_STREAM (f->peer));

    g_assert_true (g_input_stream_read_all (pin, buf, 13, &n, NULL, &error));
    g_assert_cmpstr (buf, ==, "hello12345678");
  }
  https_stream_carry (stream, NULL, NULL);
}

static void
test_end_of_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  char buf[4];

  /* Plain HTTP: the first end of stream is one "\n" (see https-stream.c). */
  g_io_stream_close (G_IO_STREAM (f->peer), NULL, NULL);
  g_assert_cmpint (read_nonblocking (f, buf, sizeof buf, &error), ==, 1);
  g_assert_cmpint (buf[0], ==, '\n');
  g_assert_cmpint (read_nonblocking (f, buf, sizeof buf, &error), ==, 0);
  g_assert_no_error (error);
}

static void
test_end_of_stream_carried (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  char buf[4];

  https_stream_carry (HTTPS_STREAM (f->stream), NULL, NULL);
  g_io_stream_close (G_IO_STREAM (f->peer), NULL, NULL);
  g_assert_cmpint (read_nonblocking (f, buf, sizeof buf, &error), ==, 0);
  g_assert_no_error (error);
}

/* A wrapper that shows its base as "base-iostream", as libsoup's does. */
static void
test_find (Fixture *f, gconstpointer data)
{
  g_autoptr(GIOStream) wrapper = NULL;

  g_assert_true (https_stream_find (f->stream) == HTTPS_STREAM (f->stream));
  g_assert_null (https_stream_find (G_IO_STREAM (f->peer)));
  g_assert_null (https_stream_find (NULL));
  /* GSimpleIOStream has no such property: not ours, not found. */
  wrapper = g_simple_io_stream_new (g_io_stream_get_input_stream (f->stream),
                                    g_io_stream_get_output_stream (f->stream));
  g_assert_null (https_stream_find (wrapper));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/transport/https/stream/pause", test_pause);
  ADD ("/transport/https/stream/written", test_written);
  ADD ("/transport/https/stream/end/http", test_end_of_stream);
  ADD ("/transport/https/stream/end/websocket", test_end_of_stream_carried);
  ADD ("/transport/https/stream/find", test_find);
#undef ADD
  return g_test_run ();
}
