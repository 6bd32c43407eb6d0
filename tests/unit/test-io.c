/* Sluice unit tests — I/O workers, listeners and connections (plain TCP).
 * SPDX-License-Identifier: Apache-2.0 */
#include "io-test-transport.h"
#include "io-test-util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

static char *
client_local_address (int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &ss, &len), ==, 0);
  return test_format_address ((struct sockaddr *) &ss, len);
}

static void
echo_once (int fd, const char *text)
{
  gsize len = strlen (text);
  g_autofree char *buf = g_malloc0 (len + 1);

  test_send_all (fd, text, len);
  g_assert_true (test_recv_exact (fd, buf, len));
  g_assert_cmpstr (buf, ==, text);
}

static void
test_listen_bound (void)
{
  TestTransport t;
  g_autoptr(GError) error = NULL;
  SluiceListenSpec spec = { .transport_name = "test", .vtable = &test_transport_vtable };
  g_autofree char *bound = NULL;
  g_autofree char *in_use = NULL;
  guint64 port;
  int fd;

  test_transport_init (&t, 2, MODE_ECHO);
  spec.transport = &t;
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  g_assert_true (g_str_has_prefix (t.bound, "127.0.0.1:"));
  g_assert_true (g_ascii_string_to_unsigned (t.bound + strlen ("127.0.0.1:"), 10, 1, 65535,
                                             &port, NULL));

  fd = test_client_connect (t.bound, 0);
  echo_once (fd, "hello");
  close (fd);

  /* localhost is the IPv4 loopback. */
  g_assert_true (sluice_io_listen (t.io, "localhost:0", &spec, &bound, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (bound, "127.0.0.1:"));
  g_clear_pointer (&bound, g_free);

  /* IPv6 in brackets, where the machine has it. */
  if (sluice_io_listen (t.io, "[::1]:0", &spec, &bound, &error))
    {
      g_assert_true (g_str_has_prefix (bound, "[::1]:"));
      fd = test_client_connect (bound, 0);
      echo_once (fd, "over v6");
      close (fd);
      g_clear_pointer (&bound, g_free);
    }
  else
    {
      g_test_message ("no IPv6 loopback here: %s", error->message);
      g_clear_error (&error);
    }

  /* The port in use is an error naming the address. */
  g_assert_false (sluice_io_listen (t.io, t.bound, &spec, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_nonnull (strstr (error->message, t.bound));
  g_clear_error (&error);

  g_assert_false (sluice_io_listen (t.io, "no-port-here", &spec, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "no-port-here"));
  g_clear_error (&error);
  g_assert_false (sluice_io_listen (t.io, "127.0.0.1:65536", &spec, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (sluice_io_listen (t.io, "::1:80", &spec, NULL, &error));
  g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
  g_clear_error (&error);

  /* After close_listeners nobody accepts any more. */
  in_use = g_strdup (t.bound);
  sluice_io_close_listeners (t.io);
  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  {
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons ((guint16) port) };

    sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    g_assert_cmpint (connect (fd, (struct sockaddr *) &sin, sizeof sin), <, 0);
    g_assert_cmpint (errno, ==, ECONNREFUSED);
  }
  close (fd);
  test_transport_clear (&t);
}

static void
test_echo_round_trip (void)
{
  TestTransport t;
  g_autofree char *client_addr = NULL;
  int fd;

  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  echo_once (fd, "hello");
  echo_once (fd, "world, a little longer this time");

  client_addr = client_local_address (fd);
  TEST_WAIT (&t, t.opened == 1);
  g_mutex_lock (&t.lock);
  g_assert_cmpstr (t.last_peer, ==, client_addr);
  g_assert_cmpstr (t.last_local, ==, t.bound);
  g_assert_false (t.last_tls);
  g_assert_null (t.last_certs);
  g_mutex_unlock (&t.lock);
  g_assert_cmpuint (sluice_io_count_connections (t.io), ==, 1);
  g_assert_cmpuint (sluice_connection_get_id (test_transport_conn (&t, 0)), >, 0);

  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  test_transport_clear (&t);
}

/* SLUICE_TEST_IO_MANY raises the count for a manual scale run (the fd
 * limit must allow twice as many descriptors). */
static void
test_echo_many (void)
{
  TestTransport t;
  const char *env = g_getenv ("SLUICE_TEST_IO_MANY");
  guint n = env != NULL ? (guint) g_ascii_strtoull (env, NULL, 10) : 500;
  g_autofree int *fds = g_new0 (int, n);

  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  for (guint i = 0; i < n; i++)
    fds[i] = test_client_connect (t.bound, 0);
  for (guint i = 0; i < n; i++)
    {
      char msg[32];

      g_snprintf (msg, sizeof msg, "message %06u", i);
      test_send_all (fds[i], msg, strlen (msg));
    }
  for (guint i = 0; i < n; i++)
    {
      char msg[32], buf[32] = { 0 };

      g_snprintf (msg, sizeof msg, "message %06u", i);
      g_assert_true (test_recv_exact (fds[i], buf, strlen (msg)));
      g_assert_cmpstr (buf, ==, msg);
    }
  TEST_WAIT (&t, t.opened == n);
  g_assert_cmpuint (sluice_io_count_connections (t.io), ==, n);
  g_test_message ("workers used: mask 0x%x", t.worker_mask);
  g_assert_cmpuint (t.worker_mask & ~3u, ==, 0);

  for (guint i = 0; i < n; i++)
    close (fds[i]);
  TEST_WAIT (&t, t.closed == n);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  test_transport_clear (&t);
}

/* sluice_connection_read_into: large frames go straight into the
 * transport's buffer, both when the transport copied what it had and when it
 * left those bytes to the core; small frames around them still go through
 * connection_input, and nothing is lost or reordered. */
static void
test_read_into (void)
{
  static const guint32 sizes[] = { 10, 5000, 3, 300000, 2000, 0, 1024, 70000, 17, 1500000, 4 };
  TestTransport t;
  g_autoptr(GByteArray) stream = g_byte_array_new ();
  g_autofree guint8 *back = NULL;
  guint n_large = 0;
  gsize sent = 0, step = 1;
  int fd;

  for (gsize k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      guint32 flen = sizes[k];
      guint8 hdr[4] = { flen >> 24, flen >> 16, flen >> 8, flen };
      gsize at;

      g_byte_array_append (stream, hdr, 4);
      at = stream->len;
      g_byte_array_set_size (stream, at + flen);
      for (guint32 i = 0; i < flen; i++)
        stream->data[at + i] = (guint8) (flen * 7 + i);
      n_large += flen >= TEST_SINK_MIN;
    }

  test_transport_init (&t, 1, MODE_SINK);
  t.max_input = 8192;   /* frames far larger than max_input still arrive */
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  /* Twice: in growing pieces (a frame's header alone, then parts of its
   * payload), and all at once. */
  while (sent < stream->len)
    {
      gsize n = MIN (step, stream->len - sent);

      test_send_all (fd, stream->data + sent, n);
      sent += n;
      step = step * 3 + 1;
      g_usleep (2000);
    }
  back = g_malloc (stream->len);
  g_assert_true (test_recv_exact (fd, back, stream->len));
  g_assert_cmpmem (back, stream->len, stream->data, stream->len);
  test_send_all (fd, stream->data, stream->len);
  g_assert_true (test_recv_exact (fd, back, stream->len));
  g_assert_cmpmem (back, stream->len, stream->data, stream->len);

  TEST_WAIT (&t, t.frames == 2 * G_N_ELEMENTS (sizes));
  g_mutex_lock (&t.lock);
  /* Every large frame that did not arrive whole went through a buffer; all
   * do in the slow pass. */
  g_assert_cmpuint (t.sink_fills, >=, n_large);
  g_assert_cmpuint (t.sink_fills, <=, 2 * n_large);
  g_assert_cmpuint (t.errors, ==, 0);
  g_mutex_unlock (&t.lock);

  /* A peer gone in the middle of a frame: closed, the buffer freed. */
  test_send_all (fd, stream->data, 4 + 10 + 4 + 5000 + 4 + 3 + 4 + 1000);
  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  g_mutex_lock (&t.lock);
  g_assert_cmpuint (t.errors, ==, 0);
  g_mutex_unlock (&t.lock);
  test_transport_clear (&t);
}

static void
test_partial_input (void)
{
  TestTransport t;
  g_autoptr(GByteArray) stream = g_byte_array_new ();
  g_autofree guint8 *back = NULL;
  guint n_frames = 0;
  int fd;

  /* Frames of varied sizes (payload byte i of a frame of length n is n*7+i). */
  for (guint32 flen = 0; flen < 200; flen += 13, n_frames++)
    {
      guint8 hdr[4] = { flen >> 24, flen >> 16, flen >> 8, flen };

      g_byte_array_append (stream, hdr, 4);
      for (guint32 i = 0; i < flen; i++)
        {
          guint8 b = (guint8) (flen * 7 + i);
          g_byte_array_append (stream, &b, 1);
        }
    }

  test_transport_init (&t, 2, MODE_FRAMING);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  /* One byte at a time, each seen by the server before the next is sent,
   * so every frame arrives in pieces. */
  for (guint i = 0; i < stream->len; i++)
    {
      test_send_all (fd, stream->data + i, 1);
      TEST_WAIT (&t, t.bytes_seen >= i + 1);
    }
  back = g_malloc (stream->len);
  g_assert_true (test_recv_exact (fd, back, stream->len));
  g_assert_cmpmem (back, stream->len, stream->data, stream->len);

  TEST_WAIT (&t, t.frames == n_frames);
  g_mutex_lock (&t.lock);
  g_assert_cmpuint (t.bytes_seen, ==, stream->len);
  g_assert_cmpuint (t.inputs, ==, stream->len);
  g_assert_cmpuint (t.errors, ==, 0);
  g_mutex_unlock (&t.lock);

  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
}

/* One busy sender cannot monopolize its worker: input is handed over in
 * slices of at most 64 KiB per dispatch. */
static void
test_read_budget (void)
{
  TestTransport t;
  gsize total = 4 * 1024 * 1024;
  g_autofree guint8 *data = g_malloc (total);
  g_autofree guint8 *back = g_malloc (total);
  int fd;

  for (gsize i = 0; i < total; i++)
    data[i] = test_pattern_byte (i);
  test_transport_init (&t, 1, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  test_send_all (fd, data, total);
  g_assert_true (test_recv_exact (fd, back, total));
  g_assert_cmpmem (back, total, data, total);
  g_mutex_lock (&t.lock);
  g_assert_cmpuint (t.bytes_seen, ==, total);
  g_assert_cmpuint (t.max_new, <=, SLUICE_IO_READ_BUDGET);
  g_assert_cmpuint (t.inputs, >=, total / SLUICE_IO_READ_BUDGET);
  g_mutex_unlock (&t.lock);
  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
}

static void
check_pattern (const guint8 *data, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (data[i] != test_pattern_byte (i))
      g_error ("byte %" G_GSIZE_FORMAT " is 0x%02x, expected 0x%02x", i, data[i],
               test_pattern_byte (i));
}

static void
test_congestion (void)
{
  TestTransport t;
  gsize total = (gsize) TEST_CHUNK * TEST_BLAST_CHUNKS;
  g_autofree guint8 *buf = g_malloc (total + 3);
  int fd;

  test_transport_init (&t, 2, MODE_BLAST);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  /* A small receive window, so the server's queue stays full until we read. */
  fd = test_client_connect (t.bound, 16 * 1024);
  TEST_WAIT (&t, t.opened == 1);
  g_mutex_lock (&t.lock);
  g_assert_true (t.congested_at_open);
  g_assert_cmpuint (t.pending_at_open, ==, total);
  g_mutex_unlock (&t.lock);
  /* Nobody reads: still congested, no drained. */
  TEST_STAYS_FALSE (&t, t.drained > 0, 200);

  g_assert_true (test_recv_exact (fd, buf, total + 3));
  check_pattern (buf, total);
  g_assert_cmpmem (buf + total, 3, "END", 3);
  TEST_WAIT (&t, t.drained == 1);
  g_mutex_lock (&t.lock);
  g_assert_true (t.drained_uncongested);
  g_assert_cmpuint (t.pending_at_drain, <, 1024 * 1024);
  g_mutex_unlock (&t.lock);

  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
}

static void
test_pause_resume (void)
{
  TestTransport t;
  char buf[8] = { 0 };
  int fd;

  test_transport_init (&t, 2, MODE_PAUSE);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  test_send_all (fd, "ab", 2);
  TEST_WAIT (&t, t.inputs == 1);
  /* Paused with "ab" unconsumed: more bytes are not read. */
  test_send_all (fd, "c", 1);
  TEST_STAYS_FALSE (&t, t.inputs > 1, 200);

  /* Resuming presents the leftover again, with what arrived meanwhile. */
  test_transport_resume (test_transport_conn (&t, 0));
  g_assert_true (test_recv_exact (fd, buf, 3));
  g_assert_cmpstr (buf, ==, "abc");
  echo_once (fd, "d");

  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
}

static void
test_close_flush (void)
{
  TestTransport t;
  g_autoptr(GByteArray) got = g_byte_array_new ();
  gsize total = (gsize) TEST_CHUNK * TEST_FLUSH_CHUNKS;
  int fd;

  test_transport_init (&t, 2, MODE_CLOSE_FLUSH);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 16 * 1024);
  test_send_all (fd, "x", 1);
  TEST_WAIT (&t, t.closed == 1);
  /* Sent after the server stopped reading: must not turn its close into a
   * reset that loses the queued tail. */
  test_send_all (fd, "unread", 6);

  g_assert_true (test_recv_to_end (fd, got));
  g_assert_cmpuint (got->len, ==, total);
  for (gsize off = 0; off < total; off += TEST_CHUNK)
    check_pattern (got->data + off, TEST_CHUNK);
  close (fd);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  test_transport_clear (&t);
}

static void
test_close_abort (void)
{
  TestTransport t;
  g_autoptr(GByteArray) got = g_byte_array_new ();
  int fd;

  test_transport_init (&t, 2, MODE_CLOSE_ABORT);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  test_send_all (fd, "x", 1);
  TEST_WAIT (&t, t.closed == 1);
  /* The queued megabyte was dropped. */
  (void) test_recv_to_end (fd, got);
  g_assert_cmpuint (got->len, ==, 0);
  g_mutex_lock (&t.lock);
  g_assert_true (t.noops_ok);
  g_mutex_unlock (&t.lock);
  TEST_STAYS_FALSE (&t, t.closed > 1, 100);
  close (fd);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  test_transport_clear (&t);
}

static void
test_peer_close (void)
{
  TestTransport t;
  SluiceConnection *conn;
  int fd;

  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  echo_once (fd, "hi");
  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  TEST_STAYS_FALSE (&t, t.closed > 1, 100);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  /* Our ref keeps the struct valid after the close. */
  conn = test_transport_conn (&t, 0);
  g_assert_true (sluice_connection_is_closed (conn));
  g_assert_cmpuint (sluice_connection_get_pending_output (conn), ==, 0);
  g_assert_nonnull (sluice_connection_get_peer (conn));
  test_transport_clear (&t);
}

static void
test_max_connections (void)
{
  TestTransport t;
  SluiceListenSpec spec = { .max_connections = 2 };
  g_autoptr(GByteArray) got = g_byte_array_new ();
  int a, b, c, d;

  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", &spec);
  a = test_client_connect (t.bound, 0);
  b = test_client_connect (t.bound, 0);
  echo_once (a, "a");
  echo_once (b, "b");
  /* The third is accepted and closed at once, without reaching the transport. */
  c = test_client_connect (t.bound, 0);
  (void) test_recv_to_end (c, got);
  g_assert_cmpuint (got->len, ==, 0);
  close (c);
  g_assert_cmpuint (t.opened, ==, 2);

  close (a);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 1);
  d = test_client_connect (t.bound, 0);
  echo_once (d, "d");
  g_assert_cmpuint (t.opened, ==, 3);
  close (b);
  close (d);
  TEST_WAIT (&t, t.closed == 3);
  test_transport_clear (&t);
}

static void
test_max_input (void)
{
  TestTransport t;
  g_autofree guint8 *junk = g_malloc0 (5000);

  test_transport_init (&t, 2, MODE_HOLD);
  t.max_input = 1000;
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  {
    int fd = test_client_connect (t.bound, 0);

    test_send_all (fd, junk, 5000);
    g_assert_true (test_recv_to_end (fd, NULL));
    close (fd);
  }
  TEST_WAIT (&t, t.closed == 1);
  g_assert_cmpuint (t.bytes_seen, >, 1000);
  test_transport_clear (&t);
}

static void
test_refuse (void)
{
  TestTransport t;
  int fd;

  test_transport_init (&t, 1, MODE_ECHO);
  t.refuse = TRUE;
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  g_assert_true (test_recv_to_end (fd, NULL));
  close (fd);
  TEST_WAIT (&t, t.opened == 1);
  TEST_WAIT (&t, sluice_io_count_connections (t.io) == 0);
  /* No connection_closed for a refused connection (checked in clear). */
  test_transport_clear (&t);
}

static void
test_deferred_writes (void)
{
  TestTransport t;
  char buf[16] = { 0 };
  int fd;

  test_transport_init (&t, 2, MODE_DEFERRED);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  test_send_all (fd, "ping", 4);
  g_assert_true (test_recv_exact (fd, buf, 8));
  g_assert_cmpstr (buf, ==, "A:ping:B");
  close (fd);
  TEST_WAIT (&t, t.closed == 1);
  test_transport_clear (&t);
}

#define N_CLOSE 10

static void
test_close_connections (void)
{
  TestTransport t;
  int fds[N_CLOSE];
  gint64 start;

  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  for (int i = 0; i < N_CLOSE; i++)
    {
      fds[i] = test_client_connect (t.bound, 0);
      echo_once (fds[i], "x");
    }
  g_assert_cmpuint (sluice_io_count_connections (t.io), ==, N_CLOSE);
  sluice_io_close_listeners (t.io);

  /* Another transport's connections are not touched. */
  sluice_io_close_connections (t.io, &start, 1000);
  g_assert_cmpuint (sluice_io_count_connections (t.io), ==, N_CLOSE);

  start = g_get_monotonic_time ();
  sluice_io_close_connections (t.io, &t, 5000);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 4 * G_USEC_PER_SEC);
  g_assert_cmpuint (sluice_io_count_connections (t.io), ==, 0);
  g_assert_cmpuint (t.closed, ==, N_CLOSE);
  for (int i = 0; i < N_CLOSE; i++)
    {
      g_assert_true (test_recv_to_end (fds[i], NULL));
      close (fds[i]);
    }
  test_transport_clear (&t);
}

static void
test_free_with_open_connections (void)
{
  TestTransport t;
  int fd;

  test_transport_init (&t, 2, MODE_ECHO);
  test_transport_listen (&t, "127.0.0.1:0", NULL);
  fd = test_client_connect (t.bound, 0);
  echo_once (fd, "still here");
  /* sluice_io_free aborts it and still calls connection_closed (clear
   * checks opened == closed). */
  test_transport_clear (&t);
  (void) test_recv_to_end (fd, NULL);
  close (fd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/io/listen/bound", test_listen_bound);
  g_test_add_func ("/io/echo/round-trip", test_echo_round_trip);
  g_test_add_func ("/io/echo/many", test_echo_many);
  g_test_add_func ("/io/input/partial", test_partial_input);
  g_test_add_func ("/io/input/read-into", test_read_into);
  g_test_add_func ("/io/input/max-exceeded", test_max_input);
  g_test_add_func ("/io/input/read-budget", test_read_budget);
  g_test_add_func ("/io/output/congestion", test_congestion);
  g_test_add_func ("/io/output/deferred-writes", test_deferred_writes);
  g_test_add_func ("/io/connection/pause-resume", test_pause_resume);
  g_test_add_func ("/io/connection/refused", test_refuse);
  g_test_add_func ("/io/close/flush", test_close_flush);
  g_test_add_func ("/io/close/abort", test_close_abort);
  g_test_add_func ("/io/close/peer", test_peer_close);
  g_test_add_func ("/io/close/all", test_close_connections);
  g_test_add_func ("/io/close/free", test_free_with_open_connections);
  g_test_add_func ("/io/listen/max-connections", test_max_connections);
  return g_test_run ();
}
