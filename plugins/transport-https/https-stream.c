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
 *
 * An upgraded WebSocket carrying another transport's connection (see
 * https-websocket.c) uses the same stream for two more things: pausing
 * (reads would block and sources wait until resumed, so the kernel's
 * window pushes back on the client) and counting the bytes written (what
 * libsoup still queues is what the core counts as unsent output).
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-stream.h"

/* --- the input side --- */

#define HTTPS_TYPE_INPUT (https_input_get_type ())
G_DECLARE_FINAL_TYPE (HttpsInput, https_input, HTTPS, INPUT, GInputStream)

struct _HttpsInput {
  GInputStream parent;
  GInputStream *base;          /* pollable */
  gboolean ended;              /* the "\n" was given (or must never be) */
  gboolean paused;
  GPtrArray *parked;           /* GSource*: sources made while paused */
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

static gboolean
paused_error (HttpsInput *self, GError **error)
{
  if (!self->paused)
    return FALSE;
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "reading is paused");
  return TRUE;
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

  return !self->paused
         && g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

/* The base stream's own source, not one wrapping it: every level of child
 * sources costs GLib 2.74 a wakeup write per dispatch, and libsoup gives
 * its sources a dummy callback, so whose stream the callback would name
 * does not matter. */
static GSource *
https_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  HttpsInput *self = HTTPS_INPUT (stream);

  if (self->paused)
    {
      /* A pollable source (the callback takes the stream) over a child
       * that is ready only once resumed (its ready time is set then). */
      GSource *parked = g_timeout_source_new (G_MAXUINT);
      GSource *source = g_pollable_source_new (G_OBJECT (stream));

      g_source_set_dummy_callback (parked);
      g_source_add_child_source (source, parked);
      if (!self->parked)
        self->parked = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
      g_ptr_array_add (self->parked, parked);
      return source;
    }
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

  if (paused_error (self, error))
    return -1;
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

  g_clear_pointer (&self->parked, g_ptr_array_unref);
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

/* --- the output side: counts what reaches the base stream --- */

#define HTTPS_TYPE_OUTPUT (https_output_get_type ())
G_DECLARE_FINAL_TYPE (HttpsOutput, https_output, HTTPS, OUTPUT, GOutputStream)

struct _HttpsOutput {
  GOutputStream parent;
  GOutputStream *base;         /* pollable */
  guint64 written;
  void (*progress) (gpointer data);
  gpointer progress_data;
};

static void https_output_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE (HttpsOutput, https_output, G_TYPE_OUTPUT_STREAM,
                         G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                https_output_pollable_init))

static gssize
output_count (HttpsOutput *self, gssize n)
{
  if (n > 0)
    {
      self->written += (guint64) n;
      if (self->progress)
        self->progress (self->progress_data);
    }
  return n;
}

static gssize
https_output_write (GOutputStream *stream, const void *buffer, gsize count,
                    GCancellable *cancellable, GError **error)
{
  HttpsOutput *self = HTTPS_OUTPUT (stream);

  return output_count (self, g_output_stream_write (self->base, buffer, count, cancellable,
                                                    error));
}

static gboolean
https_output_flush (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  return g_output_stream_flush (HTTPS_OUTPUT (stream)->base, cancellable, error);
}

static gboolean
https_output_close (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  /* The connection closes the base streams. */
  return TRUE;
}

static gboolean
https_output_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
https_output_is_writable (GPollableOutputStream *stream)
{
  return g_pollable_output_stream_is_writable (
    G_POLLABLE_OUTPUT_STREAM (HTTPS_OUTPUT (stream)->base));
}

/* The base's own source, as for the input side. */
static GSource *
https_output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  return g_pollable_output_stream_create_source (
    G_POLLABLE_OUTPUT_STREAM (HTTPS_OUTPUT (stream)->base), cancellable);
}

static gssize
https_output_write_nonblocking (GPollableOutputStream *stream, const void *buffer, gsize count,
                                GError **error)
{
  HttpsOutput *self = HTTPS_OUTPUT (stream);

  return output_count (self, g_pollable_output_stream_write_nonblocking (
                               G_POLLABLE_OUTPUT_STREAM (self->base), buffer, count, NULL,
                               error));
}

static void
https_output_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = https_output_can_poll;
  iface->is_writable = https_output_is_writable;
  iface->create_source = https_output_create_source;
  iface->write_nonblocking = https_output_write_nonblocking;
}

static void
https_output_finalize (GObject *object)
{
  g_clear_object (&HTTPS_OUTPUT (object)->base);
  G_OBJECT_CLASS (https_output_parent_class)->finalize (object);
}

static void
https_output_class_init (HttpsOutputClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = https_output_finalize;
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = https_output_write;
  G_OUTPUT_STREAM_CLASS (klass)->flush = https_output_flush;
  G_OUTPUT_STREAM_CLASS (klass)->close_fn = https_output_close;
}

static void
https_output_init (HttpsOutput *self)
{
}

/* --- the connection --- */

struct _HttpsStream {
  GIOStream parent;
  GIOStream *base;
  HttpsInput *input;
  HttpsOutput *output;
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
  return G_OUTPUT_STREAM (HTTPS_STREAM (stream)->output);
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
  g_clear_object (&self->output);
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
  self->output = g_object_new (HTTPS_TYPE_OUTPUT, NULL);
  self->output->base = g_object_ref (g_io_stream_get_output_stream (base));
  self->connections = connections;
  sluice_counter_add (connections, 1);
  return G_IO_STREAM (self);
}

GIOStream *
https_stream_get_base (HttpsStream *stream)
{
  return stream->base;
}

HttpsStream *
https_stream_find (GIOStream *stream)
{
  /* libsoup wraps ours in its SoupIOStream, whose base it shows as a
   * property; a few levels at most. */
  for (int depth = 0; stream && depth < 4; depth++)
    {
      GIOStream *base = NULL;

      if (HTTPS_IS_STREAM (stream))
        return HTTPS_STREAM (stream);
      if (!g_object_class_find_property (G_OBJECT_GET_CLASS (stream), "base-iostream"))
        return NULL;
      g_object_get (stream, "base-iostream", &base, NULL);
      /* `stream` keeps its base alive. */
      if (base)
        g_object_unref (base);
      stream = base;
    }
  return NULL;
}

void
https_stream_carry (HttpsStream *stream, void (*progress) (gpointer data), gpointer data)
{
  /* A WebSocket meets end of stream as end of stream: the "\n" is for HTTP. */
  stream->input->ended = TRUE;
  stream->output->progress = progress;
  stream->output->progress_data = data;
}

guint64
https_stream_get_written (HttpsStream *stream)
{
  return stream->output->written;
}

void
https_stream_set_paused (HttpsStream *stream, gboolean paused)
{
  HttpsInput *in = stream->input;

  if (in->paused == paused)
    return;
  in->paused = paused;
  if (!paused && in->parked)
    {
      /* Whoever waits on a parked source reads now. */
      for (guint i = 0; i < in->parked->len; i++)
        g_source_set_ready_time (in->parked->pdata[i], 0);
      g_ptr_array_set_size (in->parked, 0);
    }
}
