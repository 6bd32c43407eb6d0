/* Sluice unit tests — adopted connections: the in-test transport served
 * through sluice_io_adopt() with a fake carrier standing in for a
 * WebSocket. Input, coalesced output, pause / resume, congestion and
 * drained, close both ways, refusal, limits and the errors of adoption.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io-test-transport.h"

#include <string.h>

#define PROTOCOL "test-proto"
#define WORKER 1

typedef struct {
  TestTransport *t;            /* its lock guards the fields below */
  SluiceConnection *conn;      /* the carrier's ref */
  GByteArray *sent;
  guint messages;
  gsize biggest;
  gboolean hold;               /* what is sent stays "unsent" */
  gsize unsent;                /* atomic: read from inside transport callbacks */
  guint pauses, resumes, closes;
  gboolean close_abort;
  guint sent_after_close;
} FakeCarrier;

static void
fake_send (gpointer carrier, GBytes *bytes)
{
  FakeCarrier *f = carrier;
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  g_mutex_lock (&f->t->lock);
  if (f->closes > 0)
    f->sent_after_close++;
  g_byte_array_append (f->sent, data, size);
  f->messages++;
  f->biggest = MAX (f->biggest, size);
  if (f->hold)
    __atomic_add_fetch (&f->unsent, size, __ATOMIC_SEQ_CST);
  g_cond_broadcast (&f->t->cond);
  g_mutex_unlock (&f->t->lock);
}

static gsize
fake_get_unsent (gpointer carrier)
{
  FakeCarrier *f = carrier;

  /* No lock: the test transport calls this with its lock held. */
  return __atomic_load_n (&f->unsent, __ATOMIC_SEQ_CST);
}

static void
fake_pause (gpointer carrier)
{
  FakeCarrier *f = carrier;

  g_mutex_lock (&f->t->lock);
  f->pauses++;
  g_cond_broadcast (&f->t->cond);
  g_mutex_unlock (&f->t->lock);
}

static void
fake_resume (gpointer carrier)
{
  FakeCarrier *f = carrier;

  g_mutex_lock (&f->t->lock);
  f->resumes++;
  g_cond_broadcast (&f->t->cond);
  g_mutex_unlock (&f->t->lock);
}

static void
fake_close (gpointer carrier, gboolean abort)
{
  FakeCarrier *f = carrier;

  g_mutex_lock (&f->t->lock);
  f->closes++;
  f->close_abort = abort;
  g_cond_broadcast (&f->t->cond);
  g_mutex_unlock (&f->t->lock);
}

static const SluiceCarrierOps fake_ops = {
  .send = fake_send,
  .get_unsent = fake_get_unsent,
  .pause = fake_pause,
  .resume = fake_resume,
  .close = fake_close,
};

/* --- running on one worker --- */

typedef struct {
  guint index;
  void (*func) (gpointer data);
  gpointer data;
} OnWorker;

static void
on_worker_cb (guint index, gpointer user_data)
{
  OnWorker *w = user_data;

  if (index == w->index)
    w->func (w->data);
}

static void
run_on_worker (SluiceIo *io, void (*func) (gpointer), gpointer data)
{
  OnWorker w = { WORKER, func, data };

  sluice_io_run_on_workers_indexed (io, G_PRIORITY_DEFAULT, on_worker_cb, &w);
}

typedef struct {
  FakeCarrier *f;
  const char *protocol;
  SluiceCarrierInfo info;
  SluiceConnection *conn;      /* result */
  GError *error;
} Adopt;

static void
adopt_cb (gpointer data)
{
  Adopt *a = data;

  a->conn = sluice_io_adopt (a->f->t->io, a->protocol, &fake_ops, a->f, &a->info, &a->error);
}

typedef struct {
  FakeCarrier *f;
  const char *data;
  gsize len;
} Input;

static void
input_cb (gpointer data)
{
  Input *in = data;

  sluice_connection_carrier_input (in->f->conn, (const guint8 *) in->data, in->len);
}

static void
carrier_input (FakeCarrier *f, const char *data, gsize len)
{
  Input in = { f, data, len };

  run_on_worker (f->t->io, input_cb, &in);
}

static void
progress_cb (gpointer data)
{
  FakeCarrier *f = data;

  g_mutex_lock (&f->t->lock);
  f->hold = FALSE;
  g_mutex_unlock (&f->t->lock);
  __atomic_store_n (&f->unsent, 0, __ATOMIC_SEQ_CST);
  sluice_connection_carrier_progress (f->conn);
}

static void
peer_closed_cb (gpointer data)
{
  FakeCarrier *f = data;

  sluice_connection_carrier_closed (f->conn);
}

static void
register_protocol (TestTransport *t, gint64 max_connections)
{
  g_autoptr(GError) error = NULL;
  SluiceListenSpec spec = { 0 };

  spec.transport_name = "test";
  spec.vtable = &test_transport_vtable;
  spec.transport = t;
  spec.max_connections = max_connections;
  g_assert_true (sluice_io_register_protocol (t->io, PROTOCOL, &spec, &error));
  g_assert_no_error (error);
  g_assert_true (sluice_io_has_protocol (t->io, PROTOCOL));
}

static void
fake_init (FakeCarrier *f, TestTransport *t)
{
  memset (f, 0, sizeof *f);
  f->t = t;
  f->sent = g_byte_array_new ();
}

static void
fake_clear (FakeCarrier *f)
{
  g_clear_pointer (&f->conn, sluice_connection_unref);
  g_byte_array_unref (f->sent);
}

/* Adopt on worker WORKER; asserts success. */
static void
fake_adopt (FakeCarrier *f, gboolean tls)
{
  Adopt a = { f, PROTOCOL, { 0 }, NULL, NULL };

  a.info.peer = "192.0.2.7:4242";
  a.info.local = "127.0.0.1:8080";
  a.info.tls = tls;
  run_on_worker (f->t->io, adopt_cb, &a);
  g_assert_no_error (a.error);
  g_assert_nonnull (a.conn);
  f->conn = a.conn;
}

static gboolean
sent_is (FakeCarrier *f, const char *text)
{
  return f->sent->len == strlen (text) && memcmp (f->sent->data, text, f->sent->len) == 0;
}

/* --- tests --- */

static void
test_echo (void)
{
  TestTransport t;
  FakeCarrier f;
  g_autoptr(GPtrArray) certs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  Adopt a = { &f, PROTOCOL, { 0 }, NULL, NULL };

  test_transport_init (&t, 2, MODE_ECHO);
  register_protocol (&t, 0);
  fake_init (&f, &t);
  g_ptr_array_add (certs, g_bytes_new_static ("DER", 3));
  a.info.peer = "[2001:db8::1]:443";
  a.info.local = "127.0.0.1:8443";
  a.info.tls = TRUE;
  a.info.peer_certs = certs;
  run_on_worker (t.io, adopt_cb, &a);
  g_assert_no_error (a.error);
  f.conn = a.conn;

  TEST_WAIT (&t, t.opened == 1);
  g_mutex_lock (&t.lock);
  g_assert_cmpstr (t.last_peer, ==, "[2001:db8::1]:443");
  g_assert_cmpstr (t.last_local, ==, "127.0.0.1:8443");
  g_assert_true (t.last_tls);
  g_assert_nonnull (t.last_certs);
  g_assert_cmpuint (t.last_certs->len, ==, 1);
  g_assert_cmpuint (t.worker_mask, ==, 1u << WORKER);
  g_mutex_unlock (&t.lock);
  g_assert_true (test_transport_conn (&t, 0) == f.conn);
  g_assert_cmpuint (sluice_connection_get_id (f.conn), >, 0);
  g_assert_true (sluice_connection_get_context (f.conn) == sluice_io_get_context (t.io, WORKER));
  g_assert_cmpuint (sluice_io_count_connections (t.io), ==, 1);

  carrier_input (&f, "hello", 5);
  TEST_WAIT (&t, sent_is (&f, "hello"));
  carrier_input (&f, " world", 6);
  TEST_WAIT (&t, sent_is (&f, "hello world"));
  g_mutex_lock (&t.lock);
  g_assert_cmpuint (f.messages, ==, 2);
  g_assert_cmpuint (t.inputs, ==, 2);
  g_mutex_unlock (&t.lock);

  /* The peer goes: the transport hears of it, the carrier gets no close. */
  run_on_worker (t.io, peer_closed_cb, &f);
  TEST_WAIT (&t, t.closed == 1);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  carrier_input (&f, "late", 4);   /* ignored */
  g_mutex_lock (&t.lock);
  g_assert_cmpuint (f.closes, ==, 0);
  g_assert_cmpuint (t.inputs, ==, 2);
  g_mutex_unlock (&t.lock);
  test_transport_clear (&t);
  fake_clear (&f);
}

/* Frames split over carrier messages are put together again; several
 * answers written in one callback leave as one message. */
static void
test_framing (void)
{
  TestTransport t;
  FakeCarrier f;
  guint8 frames[2][4 + 5];
  GByteArray *expect = g_byte_array_new ();

  for (int k = 0; k < 2; k++)
    {
      frames[k][0] = frames[k][1] = frames[k][2] = 0;
      frames[k][3] = 5;
      for (int i = 0; i < 5; i++)
        frames[k][4 + i] = (guint8) (5 * 7 + i);
      g_byte_array_append (expect, frames[k], sizeof frames[k]);
    }
  test_transport_init (&t, 2, MODE_FRAMING);
  register_protocol (&t, 0);
  fake_init (&f, &t);
  fake_adopt (&f, FALSE);

  carrier_input (&f, (const char *) frames[0], 3);
  carrier_input (&f, (const char *) frames[0] + 3, 4);
  TEST_STAYS_FALSE (&t, f.messages > 0, 100);
  {
    /* The rest of frame 0 and all of frame 1 in one message. */
    g_autoptr(GByteArray) rest = g_byte_array_new ();

    g_byte_array_append (rest, frames[0] + 7, sizeof frames[0] - 7);
    g_byte_array_append (rest, frames[1], sizeof frames[1]);
    carrier_input (&f, (const char *) rest->data, rest->len);
  }
  TEST_WAIT (&t, t.frames == 2);
  TEST_WAIT (&t, f.sent->len == expect->len);
  g_mutex_lock (&t.lock);
  g_assert_cmpmem (f.sent->data, f.sent->len, expect->data, expect->len);
  g_assert_cmpuint (f.messages, ==, 1);
  g_mutex_unlock (&t.lock);

  run_on_worker (t.io, peer_closed_cb, &f);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
  fake_clear (&f);
  g_byte_array_unref (expect);
}

static void
test_pause_resume (void)
{
  TestTransport t;
  FakeCarrier f;

  test_transport_init (&t, 2, MODE_PAUSE);
  register_protocol (&t, 0);
  fake_init (&f, &t);
  fake_adopt (&f, FALSE);

  carrier_input (&f, "ab", 2);
  TEST_WAIT (&t, f.pauses == 1);
  /* A carrier may still deliver a little while paused: it waits in the core. */
  carrier_input (&f, "c", 1);
  TEST_STAYS_FALSE (&t, t.inputs > 1, 100);
  test_transport_resume (f.conn);
  TEST_WAIT (&t, f.resumes == 1);
  TEST_WAIT (&t, sent_is (&f, "abc"));
  carrier_input (&f, "d", 1);
  TEST_WAIT (&t, sent_is (&f, "abcd"));

  run_on_worker (t.io, peer_closed_cb, &f);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
  fake_clear (&f);
}

/* What the carrier holds unsent counts: congested until it progresses. */
static void
test_congestion (void)
{
  TestTransport t;
  FakeCarrier f;
  gsize total = (gsize) TEST_CHUNK * TEST_BLAST_CHUNKS;

  test_transport_init (&t, 2, MODE_BLAST);
  register_protocol (&t, 0);
  fake_init (&f, &t);
  f.hold = TRUE;
  fake_adopt (&f, FALSE);

  TEST_WAIT (&t, t.opened == 1);
  TEST_WAIT (&t, f.sent->len == total);
  g_mutex_lock (&t.lock);
  g_assert_true (t.congested_at_open);
  g_assert_cmpuint (t.pending_at_open, ==, total);
  /* Big writes are not copied into bigger messages. */
  g_assert_cmpuint (f.biggest, ==, TEST_CHUNK);
  g_mutex_unlock (&t.lock);
  g_assert_cmpuint (sluice_connection_get_pending_output (f.conn), ==, total);
  g_assert_true (sluice_connection_is_congested (f.conn));
  TEST_STAYS_FALSE (&t, t.drained > 0, 100);

  run_on_worker (t.io, progress_cb, &f);
  TEST_WAIT (&t, t.drained == 1);
  TEST_WAIT (&t, f.sent->len == total + 3);
  g_mutex_lock (&t.lock);
  g_assert_true (t.drained_uncongested);
  g_assert_cmpuint (t.pending_at_drain, ==, 0);
  g_assert_cmpmem (f.sent->data + total, 3, "END", 3);
  g_mutex_unlock (&t.lock);

  run_on_worker (t.io, peer_closed_cb, &f);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
  fake_clear (&f);
}

static void
test_close_graceful (void)
{
  TestTransport t;
  FakeCarrier f;
  gsize total = (gsize) TEST_CHUNK * TEST_FLUSH_CHUNKS;

  test_transport_init (&t, 2, MODE_CLOSE_FLUSH);
  register_protocol (&t, 0);
  fake_init (&f, &t);
  fake_adopt (&f, FALSE);

  carrier_input (&f, "x", 1);
  TEST_WAIT (&t, f.closes == 1);
  TEST_WAIT (&t, t.closed == 1);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  g_mutex_lock (&t.lock);
  /* Everything queued went to the carrier before its (graceful) close. */
  g_assert_false (f.close_abort);
  g_assert_cmpuint (f.sent->len, ==, total);
  g_assert_cmpuint (f.sent_after_close, ==, 0);
  g_mutex_unlock (&t.lock);
  g_assert_true (sluice_connection_is_closed (f.conn));
  test_transport_clear (&t);
  g_assert_cmpuint (f.closes, ==, 1);
  fake_clear (&f);
}

static void
test_close_abort (void)
{
  TestTransport t;
  FakeCarrier f;

  test_transport_init (&t, 2, MODE_CLOSE_ABORT);
  register_protocol (&t, 0);
  fake_init (&f, &t);
  fake_adopt (&f, FALSE);

  carrier_input (&f, "x", 1);
  TEST_WAIT (&t, f.closes == 1);
  TEST_WAIT (&t, t.closed == 1);
  g_mutex_lock (&t.lock);
  g_assert_true (f.close_abort);
  g_assert_cmpuint (f.sent->len, ==, 0);
  g_assert_true (t.noops_ok);
  g_mutex_unlock (&t.lock);
  test_transport_clear (&t);
  g_assert_cmpuint (f.closes, ==, 1);
  fake_clear (&f);
}

static void
test_max_input (void)
{
  TestTransport t;
  FakeCarrier f;
  g_autofree char *big = g_malloc0 (300);

  test_transport_init (&t, 2, MODE_HOLD);
  t.max_input = 256;
  register_protocol (&t, 0);
  fake_init (&f, &t);
  fake_adopt (&f, FALSE);

  carrier_input (&f, big, 200);
  TEST_STAYS_FALSE (&t, t.closed > 0, 100);
  carrier_input (&f, big, 100);
  TEST_WAIT (&t, t.closed == 1);
  TEST_WAIT (&t, f.closes == 1);
  test_transport_clear (&t);
  fake_clear (&f);
}

static void
test_refused (void)
{
  TestTransport t;
  FakeCarrier f;

  test_transport_init (&t, 2, MODE_ECHO);
  t.refuse = TRUE;
  register_protocol (&t, 0);
  fake_init (&f, &t);
  fake_adopt (&f, FALSE);

  TEST_WAIT (&t, t.opened == 1);
  TEST_WAIT (&t, f.closes == 1);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  g_assert_true (sluice_connection_is_closed (f.conn));
  test_transport_clear (&t);
  fake_clear (&f);
}

static void
test_close_connections (void)
{
  TestTransport t;
  FakeCarrier f;

  test_transport_init (&t, 2, MODE_ECHO);
  register_protocol (&t, 0);
  fake_init (&f, &t);
  fake_adopt (&f, FALSE);
  TEST_WAIT (&t, t.opened == 1);

  sluice_io_close_connections (t.io, &t, 5000);
  g_assert_cmpuint (sluice_io_count_connections (t.io), ==, 0);
  g_mutex_lock (&t.lock);
  g_assert_cmpuint (t.closed, ==, 1);
  g_assert_cmpuint (f.closes, ==, 1);
  g_assert_false (f.close_abort);
  g_mutex_unlock (&t.lock);
  test_transport_clear (&t);
  fake_clear (&f);
}

static void
test_adopt_errors (void)
{
  TestTransport t;
  TestTransport other;
  FakeCarrier f, g;
  Adopt a = { NULL, "nobody", { 0 }, NULL, NULL };
  SluiceListenSpec spec = { 0 };
  g_autoptr(GError) error = NULL;

  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_init (&other, 1, MODE_ECHO);
  register_protocol (&t, 1);
  /* The same instance again is fine; another one is refused. */
  register_protocol (&t, 1);
  spec.transport_name = "other";
  spec.vtable = &test_transport_vtable;
  spec.transport = &other;
  g_assert_false (sluice_io_register_protocol (t.io, PROTOCOL, &spec, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);
  fake_init (&f, &t);
  fake_init (&g, &t);

  a.f = &f;
  run_on_worker (t.io, adopt_cb, &a);
  g_assert_null (a.conn);
  g_assert_error (a.error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND);
  g_clear_error (&a.error);
  g_assert_false (sluice_io_has_protocol (t.io, "nobody"));

  /* Only on a worker. */
  g_assert_null (sluice_io_adopt (t.io, PROTOCOL, &fake_ops, &f, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED);
  g_clear_error (&error);

  /* max-connections 1. */
  fake_adopt (&f, FALSE);
  a.f = &g;
  a.protocol = PROTOCOL;
  run_on_worker (t.io, adopt_cb, &a);
  g_assert_null (a.conn);
  g_assert_error (a.error, SLUICE_ERROR, SLUICE_ERROR_THROTTLED);
  g_clear_error (&a.error);

  /* After the listeners close, no more adoptions. */
  sluice_io_close_listeners (t.io);
  g_assert_false (sluice_io_has_protocol (t.io, PROTOCOL));
  run_on_worker (t.io, adopt_cb, &a);
  g_assert_null (a.conn);
  g_assert_error (a.error, SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN);
  g_clear_error (&a.error);
  /* The one adopted before still works. */
  carrier_input (&f, "still", 5);
  TEST_WAIT (&t, sent_is (&f, "still"));

  test_transport_clear (&t);
  g_assert_cmpuint (f.closes, ==, 1);
  g_assert_cmpuint (g.closes, ==, 0);
  test_transport_clear (&other);
  fake_clear (&f);
  fake_clear (&g);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/io/carrier/echo", test_echo);
  g_test_add_func ("/io/carrier/framing", test_framing);
  g_test_add_func ("/io/carrier/pause-resume", test_pause_resume);
  g_test_add_func ("/io/carrier/congestion", test_congestion);
  g_test_add_func ("/io/carrier/close/graceful", test_close_graceful);
  g_test_add_func ("/io/carrier/close/abort", test_close_abort);
  g_test_add_func ("/io/carrier/close/all", test_close_connections);
  g_test_add_func ("/io/carrier/max-input", test_max_input);
  g_test_add_func ("/io/carrier/refused", test_refused);
  g_test_add_func ("/io/carrier/adopt-errors", test_adopt_errors);
  return g_test_run ();
}
