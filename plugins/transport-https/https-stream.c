/* transport-https — the stream each accepted connection is given to libsoup
 * as: a pass-through to the socket (or TLS) stream that counts the
 * connection and ends an idle connection properly.
 *
 * Why: libsoup 3.2 (Debian 12's) forgets a keep-alive connection whose
 * client closes it between requests — the next request's reader meets end
 * of stream before its first byte, and nobody is told to disconnect, so the
 * connection, its socket and its fd stay in the server until the server
 * goes (fixed upstream in 3.3). A reader that meets end of stream or an
 * error for the first time gets one "\n" instead: to libsoup that is the
 * start of a request (so it now owns a completion), which then ends early,
 * and libsoup disconnects as for any broken request. Inside a request the
 * extra byte only turns a truncated request into a malformed one, which
 * fails the same way; with a libsoup that has the fix nothing changes.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-stream.h"

/* --- the input side --- */

#define HTTPS_TYPE_INPUT (https_input_get_type ())
G_DECLARE_FINAL_TYPE (HttpsInput, https_input, HTTPS, INPUT, GInputStream)

struct _HttpsInput {
  GInputStream parent;
  GInputStream *base;          /* pollable */
  gboolean ended;              /* the "\n" was given */
};

static void https_input_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE (HttpsInput, https_input, G_TYPE_INPUT_STREAM,
                         G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                https_input_pollable_init))

/* End of stream or a failure, the first time: one "\n" instead. */
static gssize
fix_end (HttpsInput *self, gssize n, void *buffer, gsize count, GError **error)
{
  if (n > 0 || self->ended || count == 0)
    return n;
  if (n < 0 && error && *error
      && (g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)
          || g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
    return n;
  if (error)
    g_clear_error (error);
  self->ended = TRUE;
  ((char *) buffer)[0] = '\n';
  return 1;
}

static gssize
https_input_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                  GError **error)
{
  HttpsInput *self = HTTPS_INPUT (stream);
  GError *local = NULL;
  gssize n;

  if (self->ended)
    return g_input_stream_read (self->base, buffer, count, cancellable, error);
  n = g_input_stream_read (self->base, buffer, count, cancellable, &local);
  n = fix_end (self, n, buffer, count, &local);
  if (local)
    g_propagate_error (error, local);
  return n;
}

static gboolean
https_input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  /* The connection closes the base streams. */
  return TRUE;
}

static gboolean
https_input_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
https_input_is_readable (GPollableInputStream *stream)
{
  HttpsInput *self = HTTPS_INPUT (stream);

  return g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

/* The base stream's own source, not one wrapping it: every level of child
 * sources costs GLib 2.74 a wakeup write per dispatch, and libsoup gives
 * its sources a dummy callback, so whose stream the callback would name
 * does not matter. */
static GSource *
https_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  HttpsInput *self = HTTPS_INPUT (stream);

  return g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->base),
                                                cancellable);
}

static gssize
https_input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
                              GError **error)
{
  HttpsInput *self = HTTPS_INPUT (stream);
  GError *local = NULL;
  gssize n;

  if (self->ended)
    return g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base),
                                                     buffer, count, NULL, error);
  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base), buffer,
                                                count, NULL, &local);
  n = fix_end (self, n, buffer, count, &local);
  if (local)
    g_propagate_error (error, local);
  return n;
}

static void
https_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = https_input_can_poll;
  iface->is_readable = https_input_is_readable;
  iface->create_source = https_input_create_source;
  iface->read_nonblocking = https_input_read_nonblocking;
}

static void
https_input_finalize (GObject *object)
{
  HttpsInput *self = HTTPS_INPUT (object);

  g_clear_object (&self->base);
  G_OBJECT_CLASS (https_input_parent_class)->finalize (object);
}

static void
https_input_class_init (HttpsInputClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = https_input_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = https_input_read;
  G_INPUT_STREAM_CLASS (klass)->close_fn = https_input_close;
}

static void
https_input_init (HttpsInput *self)
{
}

/* --- the connection --- */

struct _HttpsStream {
  GIOStream parent;
  GIOStream *base;
  HttpsInput *input;
  SluiceCounter *connections;  /* the gauge; lives as long as the host */
};

G_DEFINE_TYPE (HttpsStream, https_stream, G_TYPE_IO_STREAM)

static GInputStream *
https_stream_get_input (GIOStream *stream)
{
  return G_INPUT_STREAM (HTTPS_STREAM (stream)->input);
}

static GOutputStream *
https_stream_get_output (GIOStream *stream)
{
  return g_io_stream_get_output_stream (HTTPS_STREAM (stream)->base);
}

static gboolean
https_stream_close (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  return g_io_stream_close (HTTPS_STREAM (stream)->base, cancellable, error);
}

static void
base_closed (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GTask) task = data;
  GError *error = NULL;

  if (g_io_stream_close_finish (G_IO_STREAM (source), res, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/* GIOStream's default would close the base from another thread. */
static void
https_stream_close_async (GIOStream *stream, int priority, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer data)
{
  GTask *task = g_task_new (stream, cancellable, callback, data);

  g_io_stream_close_async (HTTPS_STREAM (stream)->base, priority, cancellable, base_closed,
                           task);
}

static gboolean
https_stream_close_finish (GIOStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
https_stream_finalize (GObject *object)
{
  HttpsStream *self = HTTPS_STREAM (object);

  if (!g_io_stream_is_closed (self->base))
    g_io_stream_close (self->base, NULL, NULL);
  g_clear_object (&self->input);
  g_clear_object (&self->base);
  sluice_counter_add (self->connections, -1);
  G_OBJECT_CLASS (https_stream_parent_class)->finalize (object);
}

static void
https_stream_class_init (HttpsStreamClass *klass)
{
  GIOStreamClass *io = G_IO_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = https_stream_finalize;
  io->get_input_stream = https_stream_get_input;
  io->get_output_stream = https_stream_get_output;
  io->close_fn = https_stream_close;
  io->close_async = https_stream_close_async;
  io->close_finish = https_stream_close_finish;
}

static void
https_stream_init (HttpsStream *self)
{
}

GIOStream *
https_stream_new (GIOStream *base, SluiceCounter *connections)
{
  HttpsStream *self = g_object_new (HTTPS_TYPE_STREAM, NULL);

  self->base = g_object_ref (base);
  self->input = g_object_new (HTTPS_TYPE_INPUT, NULL);
  self->input->base = g_object_ref (g_io_stream_get_input_stream (base));
  self->connections = connections;
  sluice_counter_add (connections, 1);
  return G_IO_STREAM (self);
}

GIOStream *
https_stream_get_base (HttpsStream *stream)
{
  return stream->base;
}
