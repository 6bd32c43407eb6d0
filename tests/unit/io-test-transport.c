/* Sluice unit tests — the in-test transport.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io-test-transport.h"

#include <string.h>

typedef struct {
  TestTransport *t;
  SluiceConnection *conn;
  gboolean in_input;
  guint calls;
  GByteArray *leftover;   /* what we left unconsumed last time */
  guint8 *frame;          /* MODE_SINK: header + payload of a frame being read into */
  guint32 frame_len;
  guint sinks;            /* MODE_SINK: large frames seen (alternates how they start) */
} ConnState;

static void
record_error (TestTransport *t, const char *what)
{
  g_test_message ("transport contract violated: %s", what);
  g_mutex_lock (&t->lock);
  t->errors++;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
}

static gpointer
t_create (SluiceHost *host, const SluiceTransportConfig *config, const void *options,
          GError **error)
{
  g_assert_not_reached ();
  return NULL;
}

static gpointer
t_open (gpointer self, SluiceConnection *conn)
{
  TestTransport *t = self;
  ConnState *st = NULL;
  GPtrArray *certs = sluice_connection_get_peer_certs (conn);
  gboolean congested = FALSE;
  gsize pending = 0;

  if (sluice_connection_get_transport (conn) != t)
    record_error (t, "get_transport");
  if (t->max_input > 0)
    sluice_connection_set_max_input (conn, t->max_input);

  if (!t->refuse)
    {
      st = g_new0 (ConnState, 1);
      st->t = t;
      st->conn = conn;
      st->leftover = g_byte_array_new ();
      if (t->mode == MODE_BLAST)
        {
          for (int i = 0; i < TEST_BLAST_CHUNKS; i++)
            sluice_connection_write_bytes (conn, t->chunk);
          congested = sluice_connection_is_congested (conn);
          pending = sluice_connection_get_pending_output (conn);
        }
    }

  /* Recorded last, so a test that saw `opened` also sees the rest. */
  g_mutex_lock (&t->lock);
  t->congested_at_open = congested;
  t->pending_at_open = pending;
  t->worker_mask |= 1u << sluice_connection_get_worker_index (conn);
  g_ptr_array_add (t->conns, sluice_connection_ref (conn));
  g_free (t->last_peer);
  t->last_peer = g_strdup (sluice_connection_get_peer (conn));
  g_free (t->last_local);
  t->last_local = g_strdup (sluice_connection_get_local (conn));
  t->last_tls = sluice_connection_is_tls (conn);
  g_clear_pointer (&t->last_certs, g_ptr_array_unref);
  if (certs != NULL)
    t->last_certs = g_ptr_array_ref (certs);
  t->opened++;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
  return st;
}

/* Payload byte i of a test frame of length n is n*7+i. */
static gboolean
frame_payload_ok (const guint8 *payload, guint32 flen)
{
  for (guint32 i = 0; i < flen; i++)
    if (payload[i] != (guint8) (flen * 7 + i))
      return FALSE;
  return TRUE;
}

static gsize
framing_input (ConnState *st, SluiceConnection *conn, const guint8 *data, gsize len)
{
  TestTransport *t = st->t;
  gsize off = 0;
  guint frames = 0;

  while (len - off >= 4)
    {
      guint32 flen = ((guint32) data[off] << 24) | ((guint32) data[off + 1] << 16)
                     | ((guint32) data[off + 2] << 8) | data[off + 3];

      if (len - off - 4 < flen)
        break;
      if (!frame_payload_ok (data + off + 4, flen))
        record_error (t, "frame payload corrupted");
      sluice_connection_write (conn, data + off, 4 + flen);
      off += 4 + flen;
      frames++;
    }
  g_mutex_lock (&t->lock);
  t->frames += frames;
  g_mutex_unlock (&t->lock);
  return off;
}

static void
sink_filled (SluiceConnection *conn, gpointer user_data)
{
  ConnState *st = user_data;
  TestTransport *t = st->t;

  if (g_main_context_get_thread_default () != sluice_connection_get_context (conn))
    record_error (t, "read_into filled not on the connection's worker context");
  if (st->frame == NULL)
    {
      record_error (t, "read_into filled twice");
      return;
    }
  if (!frame_payload_ok (st->frame + 4, st->frame_len))
    record_error (t, "frame read into corrupted");
  sluice_connection_write (conn, st->frame, 4 + st->frame_len);
  g_clear_pointer (&st->frame, g_free);
  g_mutex_lock (&t->lock);
  t->frames++;
  t->sink_fills++;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
}

/* Like framing_input; a large frame not all here is read into its own
 * buffer: every other one after taking what is here, the others after
 * consuming only its header (the core moves the rest in). */
static gsize
sink_input (ConnState *st, SluiceConnection *conn, const guint8 *data, gsize len)
{
  TestTransport *t = st->t;
  gsize off = 0;
  guint frames = 0;

  if (st->frame != NULL)
    record_error (t, "connection_input while a read_into buffer is pending");
  while (len - off >= 4)
    {
      guint32 flen = ((guint32) data[off] << 24) | ((guint32) data[off + 1] << 16)
                     | ((guint32) data[off + 2] << 8) | data[off + 3];

      if (len - off - 4 < flen)
        {
          if (flen >= TEST_SINK_MIN)
            {
              gsize have = (st->sinks++ % 2 == 0) ? len - off - 4 : 0;

              st->frame = g_malloc (4 + flen);
              st->frame_len = flen;
              memcpy (st->frame, data + off, 4 + have);
              off += 4 + have;
              sluice_connection_read_into (conn, st->frame + 4 + have, flen - have,
                                           sink_filled, st);
            }
          break;
        }
      if (!frame_payload_ok (data + off + 4, flen))
        record_error (t, "frame payload corrupted");
      sluice_connection_write (conn, data + off, 4 + flen);
      off += 4 + flen;
      frames++;
    }
  g_mutex_lock (&t->lock);
  t->frames += frames;
  g_mutex_unlock (&t->lock);
  return off;
}

typedef struct {
  SluiceConnection *conn;
  GBytes *bytes;
} Deferred;

static void
deferred_free (gpointer data)
{
  Deferred *d = data;

  sluice_connection_unref (d->conn);
  g_bytes_unref (d->bytes);
  g_free (d);
}

static gboolean
deferred_cb (gpointer data)
{
  Deferred *d = data;

  /* On the worker thread, outside any connection callback: the core must
   * flush this from its post-dispatch step. */
  sluice_connection_write_bytes (d->conn, d->bytes);
  return G_SOURCE_REMOVE;
}

static void
defer_write (SluiceConnection *conn, GBytes *bytes)
{
  Deferred *d = g_new0 (Deferred, 1);
  GSource *idle = g_idle_source_new ();

  d->conn = sluice_connection_ref (conn);
  d->bytes = g_bytes_ref (bytes);
  g_source_set_callback (idle, deferred_cb, d, deferred_free);
  g_source_attach (idle, sluice_connection_get_context (conn));
  g_source_unref (idle);
}

static gsize
t_input (gpointer conn_state, SluiceConnection *conn, const guint8 *data, gsize len)
{
  ConnState *st = conn_state;
  TestTransport *t = st->t;
  gsize consumed = len;

  /* The consumed-prefix contract: what we left last time comes first. */
  if (len < st->leftover->len
      || (st->leftover->len > 0 && memcmp (data, st->leftover->data, st->leftover->len) != 0))
    record_error (t, "leftover not presented again first");
  if (g_main_context_get_thread_default () != sluice_connection_get_context (conn))
    record_error (t, "input not on the connection's worker context");
  if (sluice_connection_is_closed (conn))
    record_error (t, "input after close");

  g_mutex_lock (&t->lock);
  t->inputs++;
  t->bytes_seen += len - st->leftover->len;
  t->max_new = MAX (t->max_new, len - st->leftover->len);
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);

  st->in_input = TRUE;
  st->calls++;
  switch (t->mode)
    {
    case MODE_ECHO:
    case MODE_BLAST:
      sluice_connection_write (conn, data, len);
      break;
    case MODE_FRAMING:
      consumed = framing_input (st, conn, data, len);
      break;
    case MODE_SINK:
      consumed = sink_input (st, conn, data, len);
      break;
    case MODE_HOLD:
      consumed = 0;
      break;
    case MODE_PAUSE:
      if (st->calls == 1)
        {
          sluice_connection_pause (conn);
          consumed = 0;
        }
      else
        sluice_connection_write (conn, data, len);
      break;
    case MODE_CLOSE_FLUSH:
      for (int i = 0; i < TEST_FLUSH_CHUNKS; i++)
        sluice_connection_write (conn, g_bytes_get_data (t->chunk, NULL), TEST_CHUNK);
      sluice_connection_close (conn, FALSE);
      if (!sluice_connection_is_closed (conn))
        record_error (t, "is_closed after close");
      break;
    case MODE_CLOSE_ABORT:
      {
        gboolean ok;

        for (int i = 0; i < TEST_ABORT_CHUNKS; i++)
          sluice_connection_write_bytes (conn, t->chunk);
        sluice_connection_close (conn, TRUE);
        /* Everything on a closed connection is a harmless no-op. */
        sluice_connection_write (conn, "zzz", 3);
        sluice_connection_pause (conn);
        sluice_connection_resume (conn);
        sluice_connection_close (conn, FALSE);
        ok = sluice_connection_is_closed (conn) && sluice_connection_get_pending_output (conn) == 0
             && !sluice_connection_is_congested (conn);
        g_mutex_lock (&t->lock);
        t->noops_ok = ok;
        g_mutex_unlock (&t->lock);
      }
      break;
    case MODE_DEFERRED:
      {
        g_autoptr(GBytes) head = g_bytes_new_static ("A:", 2);
        g_autoptr(GBytes) body = g_bytes_new (data, len);
        g_autoptr(GBytes) tail = g_bytes_new_static (":B", 2);

        defer_write (conn, head);
        defer_write (conn, body);
        defer_write (conn, tail);
      }
      break;
    }
  st->in_input = FALSE;

  g_byte_array_set_size (st->leftover, 0);
  /* (bytes left while a read_into buffer is pending go into that buffer) */
  if (consumed < len && !sluice_connection_is_closed (conn) && st->frame == NULL)
    g_byte_array_append (st->leftover, data + consumed, len - consumed);
  return consumed;
}

static void
t_drained (gpointer conn_state, SluiceConnection *conn)
{
  ConnState *st = conn_state;
  TestTransport *t = st->t;

  if (st->in_input)
    record_error (t, "drained inside input");
  g_mutex_lock (&t->lock);
  t->drained++;
  t->drained_uncongested = !sluice_connection_is_congested (conn);
  t->pending_at_drain = sluice_connection_get_pending_output (conn);
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
  if (t->mode == MODE_BLAST)
    sluice_connection_write (conn, "END", 3);
}

static void
t_closed (gpointer conn_state, SluiceConnection *conn)
{
  ConnState *st = conn_state;
  TestTransport *t = st->t;
  gboolean twice;

  if (st->in_input)
    record_error (t, "connection_closed called from inside connection_input");
  if (!sluice_connection_is_closed (conn))
    record_error (t, "closed but is_closed is FALSE");
  g_mutex_lock (&t->lock);
  twice = !g_hash_table_add (t->closed_set, conn);
  t->closed++;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
  if (twice)
    record_error (t, "connection_closed called twice");
  g_byte_array_unref (st->leftover);
  g_free (st->frame);
  g_free (st);
}

const SluiceTransportVTable test_transport_vtable = {
  .create = t_create,
  .connection_open = t_open,
  .connection_input = t_input,
  .connection_drained = t_drained,
  .connection_closed = t_closed,
};

void
test_transport_init (TestTransport *t, guint n_workers, TestMode mode)
{
  g_autoptr(GError) error = NULL;
  guint8 *chunk = g_malloc (TEST_CHUNK);

  memset (t, 0, sizeof *t);
  g_mutex_init (&t->lock);
  g_cond_init (&t->cond);
  t->mode = mode;
  for (gsize i = 0; i < TEST_CHUNK; i++)
    chunk[i] = test_pattern_byte (i);
  t->chunk = g_bytes_new_take (chunk, TEST_CHUNK);
  t->conns = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_connection_unref);
  t->closed_set = g_hash_table_new (NULL, NULL);
  t->io = sluice_io_new (n_workers, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (sluice_io_get_worker_count (t->io), ==, n_workers);
}

void
test_transport_listen (TestTransport *t, const char *address, const SluiceListenSpec *tls)
{
  g_autoptr(GError) error = NULL;
  SluiceListenSpec spec = { 0 };

  if (tls != NULL)
    spec = *tls;
  spec.transport_name = "test";
  spec.vtable = &test_transport_vtable;
  spec.transport = t;
  g_clear_pointer (&t->bound, g_free);
  g_assert_true (sluice_io_listen (t->io, address, &spec, &t->bound, &error));
  g_assert_no_error (error);
}

void
test_transport_clear (TestTransport *t)
{
  g_clear_pointer (&t->io, sluice_io_free);
  /* Every connection opened was closed exactly once by now. */
  g_assert_cmpuint (t->closed, ==, t->refuse ? 0 : t->opened);
  g_assert_cmpuint (t->errors, ==, 0);
  g_ptr_array_unref (t->conns);
  g_hash_table_unref (t->closed_set);
  g_clear_pointer (&t->last_certs, g_ptr_array_unref);
  g_bytes_unref (t->chunk);
  g_free (t->bound);
  g_free (t->last_peer);
  g_free (t->last_local);
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->cond);
}

SluiceConnection *
test_transport_conn (TestTransport *t, guint idx)
{
  SluiceConnection *conn;

  g_mutex_lock (&t->lock);
  g_assert_cmpuint (idx, <, t->conns->len);
  conn = g_ptr_array_index (t->conns, idx);
  g_mutex_unlock (&t->lock);
  return conn;
}

static gboolean
resume_cb (gpointer data)
{
  sluice_connection_resume (data);
  return G_SOURCE_REMOVE;
}

void
test_transport_resume (SluiceConnection *conn)
{
  g_main_context_invoke_full (sluice_connection_get_context (conn), G_PRIORITY_DEFAULT, resume_cb,
                              sluice_connection_ref (conn),
                              (GDestroyNotify) sluice_connection_unref);
}
