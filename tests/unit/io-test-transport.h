/* Sluice unit tests — a small in-test transport driving the core's I/O
 * directly (io-private.h): echo, framing, and modes that exercise
 * back-pressure and closing. It records what it saw under a lock so the
 * test thread can wait for it.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "io-internal.h"

G_BEGIN_DECLS

typedef enum {
  MODE_ECHO,          /* write back everything */
  MODE_FRAMING,       /* 4-byte big-endian length + payload; echo whole frames only */
  MODE_HOLD,          /* never consume */
  MODE_BLAST,         /* at open: queue 16 MiB; at drained: "END" */
  MODE_CLOSE_FLUSH,   /* at the first input: queue 4 MiB, close gracefully */
  MODE_CLOSE_ABORT,   /* at the first input: queue 1 MiB, abort */
  MODE_PAUSE,         /* first input: pause, consume nothing; then echo */
  MODE_DEFERRED,      /* answer from two idle sources on the worker */
  MODE_SINK,          /* MODE_FRAMING, but frames of TEST_SINK_MIN bytes or more are
                       * read with sluice_connection_read_into */
} TestMode;

#define TEST_SINK_MIN 1024

#define TEST_CHUNK (256 * 1024)
#define TEST_BLAST_CHUNKS 64
#define TEST_FLUSH_CHUNKS 16
#define TEST_ABORT_CHUNKS 4

typedef struct {
  GMutex lock;
  GCond cond;
  TestMode mode;
  gsize max_input;             /* 0: default */
  gboolean refuse;             /* connection_open returns NULL */
  SluiceIo *io;
  char *bound;
  GBytes *chunk;               /* TEST_CHUNK bytes of test_pattern_byte() */

  /* what the callbacks saw, under `lock` */
  guint opened;
  guint closed;
  guint inputs;
  guint drained;
  guint errors;                /* contract violations seen by the callbacks */
  guint frames;
  guint sink_fills;            /* MODE_SINK: read_into buffers filled */
  guint worker_mask;
  gsize bytes_seen;            /* new bytes presented to connection_input */
  gsize max_new;               /* most new bytes in one connection_input */
  gboolean congested_at_open;
  gsize pending_at_open;
  gboolean drained_uncongested;
  gsize pending_at_drain;
  gboolean noops_ok;
  gboolean last_tls;
  char *last_peer;
  char *last_local;
  GPtrArray *last_certs;
  GPtrArray *conns;            /* a ref on every connection opened */
  GHashTable *closed_set;
} TestTransport;

extern const SluiceTransportVTable test_transport_vtable;

static inline guint8
test_pattern_byte (gsize i)
{
  return (guint8) (i * 31 + 7);
}

void test_transport_init (TestTransport *t, guint n_workers, TestMode mode);
/* Listen on `address` (plain unless `tls` is given) and store the bound address. */
void test_transport_listen (TestTransport *t, const char *address, const SluiceListenSpec *tls);
/* Frees the I/O first (which closes what is left), then the records. */
void test_transport_clear (TestTransport *t);
/* The idx-th opened connection (a ref is held by `t`). */
SluiceConnection *test_transport_conn (TestTransport *t, guint idx);
/* Run sluice_connection_resume on the connection's worker. */
void test_transport_resume (SluiceConnection *conn);

/* Wait (up to 20 s) for `expr`, evaluated under t->lock. */
#define TEST_WAIT(t, expr)                                                      \
  G_STMT_START                                                                  \
  {                                                                             \
    gint64 _deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;           \
    gboolean _ok;                                                               \
    g_mutex_lock (&(t)->lock);                                                  \
    while (!(_ok = (expr)) && g_get_monotonic_time () < _deadline)              \
      g_cond_wait_until (&(t)->cond, &(t)->lock,                                \
                         MIN (_deadline, g_get_monotonic_time () + 5000));      \
    g_mutex_unlock (&(t)->lock);                                                \
    if (!_ok)                                                                   \
      g_test_message ("timed out waiting for %s", #expr);                       \
    g_assert_true (_ok);                                                        \
  }                                                                             \
  G_STMT_END

/* Assert that `expr` stays false for `ms` milliseconds. */
#define TEST_STAYS_FALSE(t, expr, ms)                                           \
  G_STMT_START                                                                  \
  {                                                                             \
    gint64 _deadline = g_get_monotonic_time () + (ms) * 1000;                   \
    gboolean _hit;                                                              \
    g_mutex_lock (&(t)->lock);                                                  \
    while (!(_hit = (expr)) && g_get_monotonic_time () < _deadline)             \
      g_cond_wait_until (&(t)->cond, &(t)->lock, _deadline);                    \
    g_mutex_unlock (&(t)->lock);                                                \
    if (_hit)                                                                   \
      g_test_message ("unexpectedly true: %s", #expr);                          \
    g_assert_false (_hit);                                                      \
  }                                                                             \
  G_STMT_END

G_END_DECLS
