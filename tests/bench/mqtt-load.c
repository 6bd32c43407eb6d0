/* mqtt-load: an MQTT load generator on libmosquitto for `make bench-mqtt`.
 *
 * Load mode: P publishers and S subscribers, one thread each, all in this
 * process. Publishers are libmosquitto clients sending `--size`-byte
 * payloads that carry a CLOCK_MONOTONIC timestamp, their index and a
 * sequence number, as fast as the broker takes them (QoS 0: while the
 * client's output queue is empty, i.e. TCP back-pressure; QoS 1: up to
 * `--window` messages without PUBACK). Subscribers measure publish →
 * receive latency from the timestamp and count what arrived per publisher,
 * so losses and duplicates show up; they read with a buffered parser of
 * their own by default (see "MQTT on a plain socket") or with libmosquitto.
 *
 * Idle mode (`--idle N`): N CONNECTs, each costing this process one
 * descriptor, then one JSON line on stdout; the connections stay open until
 * stdin has a line or is closed, so that the caller can measure the
 * broker's memory meanwhile.
 *
 * The result is one JSON object on stdout (one per phase in idle mode).
 *
 * SPDX-License-Identifier: Apache-2.0
 */

#include <glib.h>
#include <json-glib/json-glib.h>
#include <mosquitto.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Payload layout: monotonic ns (8), publisher index (4), sequence (8). */
#define HEADER_SIZE 20

/* Latency histogram in microseconds: exact below 128 µs, then 64 buckets
 * per power of two (under 1.6 % error), up to about 2^40 µs. */
#define HIST_BUCKETS (36 * 64 + 128)

enum
{
  PHASE_CONNECTING,
  PHASE_RUNNING,
  PHASE_STOPPING,
  PHASE_FINISHED,
};

typedef struct
{
  guint index;
  gboolean publisher;
  char *client_id;
  char *username;
  char *password;
  char *topic;
  struct mosquitto *mosq;
  GThread *thread;

  /* Set by this client's thread, read by the main thread. */
  atomic_int state;           /* 0 connecting, 1 ready, -1 failed */
  char *error;
  atomic_uint_fast64_t completed;  /* QoS 0: written; QoS 1: PUBACKed */
  guint64 published;               /* handed to libmosquitto */
  gint64 flushed_ns;
  atomic_int flushed;

  /* Subscriber */
  atomic_uint_fast64_t received;
  guint64 duplicates;
  guint64 *next_seq;          /* per publisher */
  guint64 *got;               /* per publisher */
  guint64 hist[HIST_BUCKETS];
  atomic_int_fast64_t last_rx_ns;
  gboolean suback_failed;
  gboolean subscribed;
  int connack;                /* -1 until CONNACK */
} Client;

static char *opt_host = "127.0.0.1";
static int opt_port = 1883;
static char *opt_username;
static char *opt_password;
static char *opt_id_prefix = "bench";
static char *opt_topic = "bench/load";
static char *opt_sub_topic;
static char *opt_auth_file;
static int opt_qos;
static int opt_publishers = 1;
static int opt_subscribers = 1;
static gint64 opt_count;
static double opt_seconds = 10;
static int opt_size = 100;
static int opt_window = 100;
static int opt_protocol = 311;
static int opt_keepalive = 60;
static double opt_drain = 5;
static int opt_idle;
static gboolean opt_nodelay;
static char *opt_reader = "buffered";

static GOptionEntry entries[] = {
  { "host", 0, 0, G_OPTION_ARG_STRING, &opt_host, "Broker host (127.0.0.1)", "HOST" },
  { "port", 'p', 0, G_OPTION_ARG_INT, &opt_port, "Broker port (1883)", "PORT" },
  { "username", 'u', 0, G_OPTION_ARG_STRING, &opt_username, "Username for every client", "NAME" },
  { "password", 'P', 0, G_OPTION_ARG_STRING, &opt_password,
    "Password for every client ($MQTT_LOAD_PASSWORD)", "PW" },
  { "id-prefix", 'i', 0, G_OPTION_ARG_STRING, &opt_id_prefix,
    "Client id prefix (bench): PREFIX-pub-N, PREFIX-sub-N, PREFIX-idle-N", "PREFIX" },
  { "auth-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_auth_file,
    "One 'client-id TAB username TAB password' line per client (publishers, then "
    "subscribers; or the idle connections), overriding the three options above", "FILE" },
  { "topic", 't', 0, G_OPTION_ARG_STRING, &opt_topic,
    "Publish topic (bench/load); {id} is the client id", "TOPIC" },
  { "sub-topic", 0, 0, G_OPTION_ARG_STRING, &opt_sub_topic,
    "Subscription filter (the publish topic)", "FILTER" },
  { "qos", 'q', 0, G_OPTION_ARG_INT, &opt_qos, "QoS of publishes and subscriptions (0)", "0|1" },
  { "publishers", 0, 0, G_OPTION_ARG_INT, &opt_publishers, "Publishers (1)", "N" },
  { "subscribers", 0, 0, G_OPTION_ARG_INT, &opt_subscribers, "Subscribers (1)", "N" },
  { "count", 'n', 0, G_OPTION_ARG_INT64, &opt_count,
    "Messages per publisher (0: publish for --seconds)", "N" },
  { "seconds", 'd', 0, G_OPTION_ARG_DOUBLE, &opt_seconds, "Publishing time (10)", "S" },
  { "size", 's', 0, G_OPTION_ARG_INT, &opt_size, "Payload bytes (100, at least 20)", "BYTES" },
  { "window", 'w', 0, G_OPTION_ARG_INT, &opt_window,
    "QoS 1 messages in flight per publisher (100)", "N" },
  { "protocol", 'V', 0, G_OPTION_ARG_INT, &opt_protocol, "MQTT version: 311 or 5 (311)", "V" },
  { "keepalive", 'k', 0, G_OPTION_ARG_INT, &opt_keepalive, "Keepalive seconds (60)", "S" },
  { "drain", 0, 0, G_OPTION_ARG_DOUBLE, &opt_drain,
    "After publishing, wait this long without progress for the rest (5)", "S" },
  { "idle", 0, 0, G_OPTION_ARG_INT, &opt_idle, "Idle mode: open N connections and hold them", "N" },
  { "reader", 0, 0, G_OPTION_ARG_STRING, &opt_reader,
    "Subscribers read with: buffered (whole socket reads) or libmosquitto", "HOW" },
  { "nodelay", 0, 0, G_OPTION_ARG_NONE, &opt_nodelay, "TCP_NODELAY on the clients", NULL },
  { NULL }
};

static atomic_int phase = PHASE_CONNECTING;
static GMutex lock;
static GCond changed;

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static void
notify (void)
{
  g_mutex_lock (&lock);
  g_cond_broadcast (&changed);
  g_mutex_unlock (&lock);
}

/* --- latency histogram --- */

static guint
hist_index (guint64 us)
{
  int msb;

  if (us < 128)
    return (guint) us;
  msb = 63 - __builtin_clzll (us);
  return MIN ((guint) (msb - 6) * 64 + (guint) (us >> (msb - 6)), HIST_BUCKETS - 1);
}

static double
hist_value_ms (guint idx)
{
  guint shift;
  guint64 m;

  if (idx < 128)
    return idx / 1000.0;
  shift = idx / 64 - 1;
  m = idx % 64 + 64;
  /* The middle of the bucket. */
  return (double) ((m << shift) + (G_GUINT64_CONSTANT (1) << shift) / 2) / 1000.0;
}

static double
hist_percentile_ms (const guint64 *hist, double p)
{
  guint64 total = 0, seen = 0, want;

  for (guint i = 0; i < HIST_BUCKETS; i++)
    total += hist[i];
  if (total == 0)
    return -1;
  want = (guint64) (p / 100.0 * total + 0.5);
  want = CLAMP (want, 1, total);
  for (guint i = 0; i < HIST_BUCKETS; i++)
    {
      seen += hist[i];
      if (seen >= want)
        return hist_value_ms (i);
    }
  return hist_value_ms (HIST_BUCKETS - 1);
}

/* --- libmosquitto callbacks (all on the client's own thread) --- */

static void
on_connect (struct mosquitto *mosq, void *data, int rc)
{
  Client *c = data;

  c->connack = rc;
}

static void
on_subscribe (struct mosquitto *mosq, void *data, int mid, int n, const int *granted)
{
  Client *c = data;

  c->subscribed = TRUE;
  for (int i = 0; i < n; i++)
    if (granted[i] >= 0x80)
      c->suback_failed = TRUE;
}

static void
on_publish (struct mosquitto *mosq, void *data, int mid)
{
  Client *c = data;

  atomic_fetch_add_explicit (&c->completed, 1, memory_order_relaxed);
}

/* One received payload: latency, order and count per publisher. */
static void
record_payload (Client *c, const guint8 *p, gsize len)
{
  gint64 now = now_ns (), sent;
  guint32 pub;
  guint64 seq;

  if (len < HEADER_SIZE)
    return;
  memcpy (&sent, p, 8);
  memcpy (&pub, p + 8, 4);
  memcpy (&seq, p + 12, 8);
  if (pub < (guint32) opt_publishers)
    {
      if (seq < c->next_seq[pub])
        c->duplicates++;
      else
        c->next_seq[pub] = seq + 1;
      c->got[pub]++;
    }
  if (now > sent)
    c->hist[hist_index ((guint64) (now - sent) / 1000)]++;
  atomic_store_explicit (&c->last_rx_ns, now, memory_order_relaxed);
  atomic_fetch_add_explicit (&c->received, 1, memory_order_relaxed);
}

static void
on_message (struct mosquitto *mosq, void *data, const struct mosquitto_message *msg)
{
  record_payload (data, msg->payload, msg->payloadlen);
}

static void
client_fail (Client *c, char *error)
{
  /* A publisher's rate counts until its connection failed. */
  if (c->flushed_ns == 0)
    c->flushed_ns = now_ns ();
  g_free (c->error);
  c->error = error;
  atomic_store (&c->state, -1);
  notify ();
}

/* --- MQTT on a plain socket ---
 *
 * libmosquitto 2.0 reads each packet with three or more recv() calls (a
 * byte for the type, a byte per length byte, then the rest) after a
 * select(); a subscriber at a few hundred thousand messages per second
 * then measures its own system calls rather than the broker. The
 * buffered reader below parses whole socket reads instead (--reader). The
 * idle connections use the same CONNECT so that each costs one descriptor.
 */

static void
put_varint (GByteArray *b, gsize len)
{
  do
    {
      guint8 byte = len % 128;

      len /= 128;
      if (len > 0)
        byte |= 0x80;
      g_byte_array_append (b, &byte, 1);
    }
  while (len > 0);
}

static void
put_string (GByteArray *b, const char *s)
{
  guint8 len[2] = { (guint8) (strlen (s) >> 8), (guint8) (strlen (s) & 0xff) };

  g_byte_array_append (b, len, 2);
  g_byte_array_append (b, (const guint8 *) s, strlen (s));
}

static GByteArray *
frame (guint8 first, GByteArray *body)
{
  GByteArray *packet = g_byte_array_new ();

  g_byte_array_append (packet, &first, 1);
  put_varint (packet, body->len);
  g_byte_array_append (packet, body->data, body->len);
  return packet;
}

/* CONNECT with a clean session, in --protocol's version. */
static GByteArray *
connect_packet (const char *id, const char *user, const char *password)
{
  g_autoptr (GByteArray) body = g_byte_array_new ();
  guint8 head[] = { 0, 4, 'M', 'Q', 'T', 'T', opt_protocol == 5 ? 5 : 4, 0x02,
                    (guint8) (opt_keepalive >> 8), (guint8) (opt_keepalive & 0xff) };

  if (user != NULL)
    head[7] |= 0x80;
  if (password != NULL)
    head[7] |= 0x40;
  g_byte_array_append (body, head, sizeof head);
  if (opt_protocol == 5)
    put_varint (body, 0);     /* no properties */
  put_string (body, id);
  if (user != NULL)
    put_string (body, user);
  if (password != NULL)
    put_string (body, password);
  return frame (0x10, body);
}

typedef struct
{
  int fd;
  guint8 *buf;
  gsize cap, len;
  GByteArray *out;            /* PUBACKs of this read, sent together */
} RawConn;

static gboolean
raw_send (RawConn *r, const guint8 *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = send (r->fd, data, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= n;
    }
  return TRUE;
}

/* The next whole packet in the buffer: its first byte, body and size in
 * the buffer; FALSE when more bytes are needed. */
static gboolean
raw_next_packet (RawConn *r, gsize at, guint8 *first, const guint8 **body, gsize *body_len,
                 gsize *total)
{
  gsize len = 0, i = at + 1;
  guint shift = 0;

  if (r->len - at < 2)
    return FALSE;
  for (;;)
    {
      if (i >= r->len)
        return FALSE;
      len |= (gsize) (r->buf[i] & 0x7f) << shift;
      shift += 7;
      if (!(r->buf[i++] & 0x80))
        break;
    }
  if (r->len - i < len)
    return FALSE;
  *first = r->buf[at];
  *body = r->buf + i;
  *body_len = len;
  *total = i + len - at;
  return TRUE;
}

/* Reads until a packet of type `want` arrives (CONNACK, SUBACK); FALSE on
 * EOF, error, a packet too large for the buffer or `deadline`. */
static gboolean
raw_wait_for (RawConn *r, guint8 want, guint8 *rc, gint64 deadline)
{
  for (;;)
    {
      guint8 first;
      const guint8 *body;
      gsize body_len, total;
      struct pollfd pfd = { r->fd, POLLIN, 0 };
      ssize_t n;

      if (raw_next_packet (r, 0, &first, &body, &body_len, &total))
        {
          gboolean found = (first >> 4) == want;

          /* CONNACK: flags, return code; SUBACK: packet id, [properties,]
           * one return code per filter (we send one). */
          if (found)
            *rc = want == 2 ? (body_len >= 2 ? body[1] : 0xff)
                            : (body_len >= 3 ? body[body_len - 1] : 0xff);
          memmove (r->buf, r->buf + total, r->len - total);
          r->len -= total;
          if (found)
            return TRUE;
          continue;
        }
      if (r->len == r->cap || now_ns () > deadline)
        return FALSE;
      if (poll (&pfd, 1, 100) < 0 && errno != EINTR)
        return FALSE;
      n = recv (r->fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return FALSE;
      if (n > 0)
        r->len += n;
    }
}

static int
raw_connect_socket (void)
{
  g_autofree char *port = g_strdup_printf ("%d", opt_port);
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
  int fd = -1;

  if (getaddrinfo (opt_host, port, &hints, &ai) != 0)
    return -1;
  fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, ai->ai_addr, ai->ai_addrlen) < 0)
    {
      close (fd);
      fd = -1;
    }
  freeaddrinfo (ai);
  return fd;
}

/* Handles the PUBLISH packets in the buffer; PUBACKs go to r->out. */
static gboolean
raw_consume (Client *c, RawConn *r)
{
  gsize at = 0;
  guint8 first;
  const guint8 *body;
  gsize body_len, total;

  while (raw_next_packet (r, at, &first, &body, &body_len, &total))
    {
      at += total;
      if ((first >> 4) == 3 && body_len >= 2)
        {
          guint qos = (first >> 1) & 3;
          gsize off = 2 + ((gsize) body[0] << 8 | body[1]);
          guint8 ack[4] = { 0x40, 2, 0, 0 };

          if (qos > 0 && off + 2 <= body_len)
            {
              memcpy (ack + 2, body + off, 2);
              g_byte_array_append (r->out, ack, 4);
              off += 2;
            }
          if (opt_protocol == 5)
            {
              gsize props = 0;
              guint shift = 0;

              while (off < body_len)
                {
                  props |= (gsize) (body[off] & 0x7f) << shift;
                  shift += 7;
                  if (!(body[off++] & 0x80))
                    break;
                }
              off += props;
            }
          if (off <= body_len)
            record_payload (c, body + off, body_len - off);
        }
    }
  memmove (r->buf, r->buf + at, r->len - at);
  r->len -= at;
  if (r->len == r->cap)
    return FALSE;             /* a packet larger than the whole buffer */
  return TRUE;
}

static void
raw_subscriber (Client *c)
{
  RawConn r = { .cap = 1 << 18 };
  gint64 deadline = now_ns () + 30 * G_GINT64_CONSTANT (1000000000), last_send;
  g_autoptr (GByteArray) connect = connect_packet (c->client_id, c->username, c->password);
  g_autoptr (GByteArray) sub_body = g_byte_array_new ();
  g_autoptr (GByteArray) subscribe = NULL;
  guint8 pid[2] = { 0, 1 }, options = (guint8) opt_qos, rc = 0xff;
  const char *failure = NULL;

  r.buf = g_malloc (r.cap);
  r.out = g_byte_array_new ();
  g_byte_array_append (sub_body, pid, 2);
  if (opt_protocol == 5)
    put_varint (sub_body, 0);
  put_string (sub_body, opt_sub_topic);
  g_byte_array_append (sub_body, &options, 1);
  subscribe = frame (0x82, sub_body);

  r.fd = raw_connect_socket ();
  if (r.fd < 0)
    failure = "connect failed";
  else if (!raw_send (&r, connect->data, connect->len) || !raw_wait_for (&r, 2, &rc, deadline))
    failure = "no CONNACK";
  else if (rc != 0)
    failure = "CONNACK refused";
  else if (!raw_send (&r, subscribe->data, subscribe->len)
           || !raw_wait_for (&r, 9, &rc, deadline))
    failure = "no SUBACK";
  else if (rc >= 0x80)
    failure = "SUBACK refused the filter";
  if (failure != NULL)
    {
      client_fail (c, g_strdup_printf ("%s: %s (%s, return code 0x%02x)", c->client_id,
                                       failure, r.fd < 0 ? g_strerror (errno) : opt_sub_topic,
                                       rc));
      goto out;
    }
  atomic_store (&c->state, 1);
  notify ();

  last_send = now_ns ();
  while (atomic_load (&phase) < PHASE_FINISHED)
    {
      struct pollfd pfd = { r.fd, POLLIN, 0 };
      ssize_t n;

      if (poll (&pfd, 1, 10) < 0 && errno != EINTR)
        break;
      n = recv (r.fd, r.buf + r.len, r.cap - r.len, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        {
          client_fail (c, g_strdup_printf ("%s: connection lost", c->client_id));
          goto out;
        }
      if (n > 0)
        {
          r.len += n;
          if (!raw_consume (c, &r))
            {
              client_fail (c, g_strdup_printf ("%s: oversize packet", c->client_id));
              goto out;
            }
        }
      if (r.out->len == 0 && now_ns () - last_send > opt_keepalive * G_GINT64_CONSTANT (500000000))
        {
          static const guint8 ping[2] = { 0xc0, 0 };

          g_byte_array_append (r.out, ping, 2);
        }
      if (r.out->len > 0)
        {
          if (!raw_send (&r, r.out->data, r.out->len))
            {
              client_fail (c, g_strdup_printf ("%s: send failed", c->client_id));
              goto out;
            }
          g_byte_array_set_size (r.out, 0);
          last_send = now_ns ();
        }
    }
  {
    static const guint8 disconnect[2] = { 0xe0, 0 };

    raw_send (&r, disconnect, 2);
  }
out:
  if (r.fd >= 0)
    close (r.fd);
  g_free (r.buf);
  g_byte_array_unref (r.out);
}

/* --- client threads --- */

/* Runs the client's loop until `done` says so or `deadline` (monotonic ns)
 * passes; FALSE when the connection failed (the error is recorded). */
static gboolean
client_loop_until (Client *c, gboolean (*done) (Client *), gint64 deadline, const char *what)
{
  while (!done (c))
    {
      int rc;

      if (deadline > 0 && now_ns () > deadline)
        {
          client_fail (c, g_strdup_printf ("%s: timed out %s", c->client_id, what));
          return FALSE;
        }
      rc = mosquitto_loop (c->mosq, 10, 1);
      if (rc != MOSQ_ERR_SUCCESS)
        {
          client_fail (c, g_strdup_printf ("%s: connection lost %s: %s", c->client_id, what,
                                           mosquitto_strerror (rc)));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
got_connack (Client *c)
{
  return c->connack >= 0;
}

static gboolean
got_suback (Client *c)
{
  return c->subscribed;
}

static gboolean
all_flushed (Client *c)
{
  return !mosquitto_want_write (c->mosq)
         && atomic_load (&c->completed) >= c->published;
}

static gboolean
finished (Client *c)
{
  return atomic_load (&phase) >= PHASE_FINISHED;
}

static void
fill_payload (guint8 *payload, guint32 index, guint64 seq)
{
  gint64 t = now_ns ();

  memcpy (payload, &t, 8);
  memcpy (payload + 8, &index, 4);
  memcpy (payload + 12, &seq, 8);
}

static void
publish_loop (Client *c)
{
  g_autofree guint8 *payload = g_malloc0 (opt_size);
  int rc;

  memset (payload + HEADER_SIZE, 'x', opt_size - HEADER_SIZE);
  while (atomic_load (&phase) == PHASE_RUNNING
         && (opt_count == 0 || c->published < (guint64) opt_count))
    {
      /* A batch per loop turn, each write going straight to the socket
       * (libmosquitto writes at once outside its own thread). */
      for (int i = 0; i < 64; i++)
        {
          if (opt_count > 0 && c->published >= (guint64) opt_count)
            break;
          if (opt_qos == 0 ? mosquitto_want_write (c->mosq)
                           : c->published - atomic_load (&c->completed) >= (guint64) opt_window)
            break;
          fill_payload (payload, c->index, c->published);
          rc = mosquitto_publish (c->mosq, NULL, c->topic, opt_size, payload, opt_qos, false);
          if (rc != MOSQ_ERR_SUCCESS)
            {
              client_fail (c, g_strdup_printf ("%s: publish: %s", c->client_id,
                                               mosquitto_strerror (rc)));
              return;
            }
          c->published++;
        }
      rc = mosquitto_loop (c->mosq, 10, 1);
      if (rc != MOSQ_ERR_SUCCESS)
        {
          client_fail (c, g_strdup_printf ("%s: connection lost while publishing: %s",
                                           c->client_id, mosquitto_strerror (rc)));
          return;
        }
    }
  /* Everything handed over is written (QoS 0) or acknowledged (QoS 1), or
   * 60 s pass. */
  if (!client_loop_until (c, all_flushed, now_ns () + 60 * G_GINT64_CONSTANT (1000000000),
                          "flushing the last publishes"))
    return;
  c->flushed_ns = now_ns ();
  atomic_store (&c->flushed, 1);
  notify ();
}

static gpointer
client_thread (gpointer data)
{
  Client *c = data;
  gint64 deadline = now_ns () + 30 * G_GINT64_CONSTANT (1000000000);
  int rc;

  if (c->mosq == NULL)
    {
      raw_subscriber (c);
      return NULL;
    }
  rc = mosquitto_connect (c->mosq, opt_host, opt_port, opt_keepalive);
  if (rc != MOSQ_ERR_SUCCESS)
    {
      client_fail (c, g_strdup_printf ("%s: connect: %s", c->client_id,
                                       rc == MOSQ_ERR_ERRNO ? g_strerror (errno)
                                                            : mosquitto_strerror (rc)));
      return NULL;
    }
  if (!client_loop_until (c, got_connack, deadline, "waiting for CONNACK"))
    return NULL;
  if (c->connack != 0)
    {
      client_fail (c, g_strdup_printf ("%s: CONNACK %d (%s)", c->client_id, c->connack,
                                       mosquitto_connack_string (c->connack)));
      return NULL;
    }
  if (!c->publisher)
    {
      rc = mosquitto_subscribe (c->mosq, NULL, opt_sub_topic, opt_qos);
      if (rc != MOSQ_ERR_SUCCESS
          || !client_loop_until (c, got_suback, deadline, "waiting for SUBACK"))
        {
          if (rc != MOSQ_ERR_SUCCESS)
            client_fail (c, g_strdup_printf ("%s: subscribe: %s", c->client_id,
                                             mosquitto_strerror (rc)));
          return NULL;
        }
      if (c->suback_failed)
        {
          client_fail (c, g_strdup_printf ("%s: SUBACK refused %s", c->client_id,
                                           opt_sub_topic));
          return NULL;
        }
    }
  atomic_store (&c->state, 1);
  notify ();

  /* Keep the connection serviced while the others connect. */
  while (atomic_load (&phase) == PHASE_CONNECTING)
    if (mosquitto_loop (c->mosq, 10, 1) != MOSQ_ERR_SUCCESS)
      {
        client_fail (c, g_strdup_printf ("%s: connection lost before the start", c->client_id));
        return NULL;
      }
  if (c->publisher)
    publish_loop (c);
  if (atomic_load (&c->state) >= 0)
    client_loop_until (c, finished, 0, "before the end");
  mosquitto_disconnect (c->mosq);
  return NULL;
}

/* --- auth file --- */

static gboolean
read_auth_file (GPtrArray **out, GError **error)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GPtrArray) entries_ = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);

  if (!g_file_get_contents (opt_auth_file, &text, NULL, error))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char **fields;

      if (lines[i][0] == '\0')
        continue;
      fields = g_strsplit (lines[i], "\t", 3);
      if (g_strv_length (fields) != 3)
        {
          g_strfreev (fields);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "%s:%u: want client-id TAB username TAB password", opt_auth_file, i + 1);
          return FALSE;
        }
      g_ptr_array_add (entries_, fields);
    }
  *out = g_steal_pointer (&entries_);
  return TRUE;
}

/* Client i's id, username and password: the auth file's line i or the
 * options. FALSE when the file has too few lines. */
static gboolean
credentials_for (GPtrArray *auth, guint i, const char *role, guint n, char **id, char **user,
                 char **password, GError **error)
{
  if (auth != NULL)
    {
      char **f;

      if (i >= auth->len)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "%s has %u lines, %u clients need one each", opt_auth_file, auth->len,
                       i + 1);
          return FALSE;
        }
      f = g_ptr_array_index (auth, i);
      *id = g_strdup (f[0]);
      *user = f[1][0] != '\0' ? g_strdup (f[1]) : NULL;
      *password = f[2][0] != '\0' ? g_strdup (f[2]) : NULL;
      return TRUE;
    }
  *id = g_strdup_printf ("%s-%s-%u", opt_id_prefix, role, n);
  *user = g_strdup (opt_username);
  *password = g_strdup (opt_password);
  return TRUE;
}

static void
raise_fd_limit (void)
{
  struct rlimit rl;

  /* 10,000 idle connections need more than the usual 1,024 descriptors. */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

static void
json_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
json_double (JsonBuilder *b, const char *name, double value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_double_value (b, value);
}

static void
json_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
print_json (JsonBuilder *b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = NULL;

  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
  fflush (stdout);
}

static int
fail_json (const char *mode, const char *message)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_string (b, "mode", mode);
  json_string (b, "error", message);
  json_builder_end_object (b);
  print_json (b);
  g_printerr ("mqtt-load: %s\n", message);
  return 1;
}

/* --- idle mode --- */

/* One connection after the other: on loopback a handshake takes tens of
 * microseconds, and a broker is never asked to take a burst of them. */
static int
idle_main (GPtrArray *auth)
{
  g_autofree int *fds = g_new (int, opt_idle);
  g_autofree struct pollfd *pfds = g_new0 (struct pollfd, opt_idle);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonBuilder) end = json_builder_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *first_error = NULL;
  guint8 buf[64];
  guint connected = 0, closed = 0;
  gint64 t0 = now_ns ();
  char line[64];

  for (guint i = 0; i < (guint) opt_idle; i++)
    {
      g_autofree char *id = NULL, *user = NULL, *password = NULL;
      g_autoptr (GByteArray) connect = NULL;
      RawConn r = { .buf = buf, .cap = sizeof buf };
      guint8 rc = 0xff;

      if (!credentials_for (auth, i, "idle", i, &id, &user, &password, &error))
        return fail_json ("idle", error->message);
      connect = connect_packet (id, user, password);
      r.fd = raw_connect_socket ();
      if (r.fd >= 0 && raw_send (&r, connect->data, connect->len)
          && raw_wait_for (&r, 2, &rc, now_ns () + 10 * G_GINT64_CONSTANT (1000000000))
          && rc == 0)
        {
          fds[connected++] = r.fd;
          continue;
        }
      if (first_error == NULL)
        first_error = r.fd < 0 ? g_strdup_printf ("connection %u: connect: %s", i,
                                                  g_strerror (errno))
                               : g_strdup_printf ("connection %u: no CONNACK or refused "
                                                  "(return code 0x%02x)", i, rc);
      if (r.fd >= 0)
        close (r.fd);
    }

  json_builder_begin_object (b);
  json_string (b, "mode", "idle");
  json_int (b, "requested", opt_idle);
  json_int (b, "connected", connected);
  json_int (b, "failed", opt_idle - connected);
  json_double (b, "connect_seconds", (now_ns () - t0) / 1e9);
  if (first_error != NULL)
    json_string (b, "error", first_error);
  json_builder_end_object (b);
  print_json (b);

  /* Hold them until told to let go. */
  if (fgets (line, sizeof line, stdin) == NULL)
    line[0] = '\0';

  /* Which of them the broker closed meanwhile (EOF or reset). */
  for (guint i = 0; i < connected; i++)
    {
      pfds[i].fd = fds[i];
      pfds[i].events = POLLIN;
    }
  if (connected > 0 && poll (pfds, connected, 0) > 0)
    for (guint i = 0; i < connected; i++)
      if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
        closed++;
  for (guint i = 0; i < connected; i++)
    close (fds[i]);
  json_builder_begin_object (end);
  json_string (end, "mode", "idle-end");
  json_int (end, "closed_by_broker", closed);
  json_builder_end_object (end);
  print_json (end);
  return connected == (guint) opt_idle && closed == 0 ? 0 : 1;
}

/* --- load mode --- */

/* Until every live publisher has flushed, or `until` (monotonic µs). */
static void
wait_publishers (Client *clients, gint64 until)
{
  g_mutex_lock (&lock);
  while (g_get_monotonic_time () < until)
    {
      gboolean all = TRUE;

      for (guint i = 0; i < (guint) opt_publishers; i++)
        if (!atomic_load (&clients[i].flushed) && atomic_load (&clients[i].state) >= 0)
          all = FALSE;
      if (all)
        break;
      g_cond_wait_until (&changed, &lock,
                         MIN (until, g_get_monotonic_time () + G_TIME_SPAN_SECOND / 10));
    }
  g_mutex_unlock (&lock);
}

/* Until each subscriber has all `published` messages, or none arrived for
 * --drain seconds. Polled: the subscribers do not signal each message. */
static void
wait_subscribers (Client *clients, guint64 published)
{
  guint64 last_total = G_MAXUINT64;
  gint64 last_progress = now_ns ();

  for (;;)
    {
      guint64 total = 0;
      gboolean complete = TRUE;

      for (guint i = opt_publishers; i < (guint) (opt_publishers + opt_subscribers); i++)
        {
          guint64 r = atomic_load (&clients[i].received);

          total += r;
          if (r < published && atomic_load (&clients[i].state) >= 0)
            complete = FALSE;
        }
      if (complete)
        return;
      if (total != last_total)
        {
          last_total = total;
          last_progress = now_ns ();
        }
      else if (now_ns () - last_progress > (gint64) (opt_drain * 1e9))
        return;
      g_usleep (20000);
    }
}

static int
load_main (GPtrArray *auth)
{
  guint n = opt_publishers + opt_subscribers;
  g_autofree Client *clients = g_new0 (Client, n);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GError) error = NULL;
  guint64 hist[HIST_BUCKETS] = { 0 };
  guint64 published = 0, received = 0, duplicates = 0, lost = 0, unacked = 0, expected;
  gint64 t0, t_pub = 0, t_rx = 0;
  struct rusage usage;
  const char *failure = NULL;
  gboolean ready;

  for (guint i = 0; i < n; i++)
    {
      Client *c = &clients[i];
      gboolean pub = i < (guint) opt_publishers;
      guint role_index = pub ? i : i - opt_publishers;
      g_autoptr (GString) topic = g_string_new (opt_topic);

      c->index = role_index;
      c->publisher = pub;
      c->connack = -1;
      if (!credentials_for (auth, i, pub ? "pub" : "sub", role_index, &c->client_id,
                            &c->username, &c->password, &error))
        return fail_json ("load", error->message);
      g_string_replace (topic, "{id}", c->client_id, 0);
      c->topic = g_string_free (g_steal_pointer (&topic), FALSE);
      c->next_seq = g_new0 (guint64, opt_publishers);
      c->got = g_new0 (guint64, opt_publishers);
      if (!pub && g_strcmp0 (opt_reader, "buffered") == 0)
        continue;
      c->mosq = mosquitto_new (c->client_id, true, c);
      if (c->mosq == NULL)
        return fail_json ("load", "mosquitto_new failed");
      mosquitto_int_option (c->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                            opt_protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
      if (opt_nodelay)
        mosquitto_int_option (c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
      mosquitto_max_inflight_messages_set (c->mosq, opt_window);
      if (c->username != NULL || c->password != NULL)
        mosquitto_username_pw_set (c->mosq, c->username, c->password);
      mosquitto_connect_callback_set (c->mosq, on_connect);
      mosquitto_subscribe_callback_set (c->mosq, on_subscribe);
      mosquitto_publish_callback_set (c->mosq, on_publish);
      mosquitto_message_callback_set (c->mosq, on_message);
    }
  /* Subscribers first, so that all are in place when publishing starts. */
  for (guint i = n; i-- > 0;)
    clients[i].thread = g_thread_new ("client", client_thread, &clients[i]);

  g_mutex_lock (&lock);
  for (;;)
    {
      ready = TRUE;
      for (guint i = 0; i < n && failure == NULL; i++)
        {
          int s = atomic_load (&clients[i].state);

          if (s < 0)
            failure = clients[i].error;
          else if (s == 0)
            ready = FALSE;
        }
      if (ready || failure != NULL)
        break;
      g_cond_wait_until (&changed, &lock, g_get_monotonic_time () + G_TIME_SPAN_SECOND);
    }
  g_mutex_unlock (&lock);

  t0 = now_ns ();
  atomic_store (&phase, failure != NULL ? PHASE_FINISHED : PHASE_RUNNING);
  if (failure == NULL)
    {
      /* The measurement window: a fixed time, or until every publisher has
       * sent its count (publish_loop leaves on its own then). */
      wait_publishers (clients, opt_count > 0 ? G_MAXINT64 : g_get_monotonic_time ()
                                  + (gint64) (opt_seconds * G_TIME_SPAN_SECOND));
      atomic_store (&phase, PHASE_STOPPING);
      /* Their last writes / PUBACKs (publish_loop gives up after 60 s). */
      wait_publishers (clients, G_MAXINT64);

      for (guint i = 0; i < (guint) opt_publishers; i++)
        {
          published += atomic_load (&clients[i].completed);
          t_pub = MAX (t_pub, clients[i].flushed_ns);
        }

      wait_subscribers (clients, published);
    }
  atomic_store (&phase, PHASE_FINISHED);
  for (guint i = 0; i < n; i++)
    g_thread_join (clients[i].thread);

  for (guint i = 0; i < n && failure == NULL; i++)
    if (atomic_load (&clients[i].state) < 0)
      failure = clients[i].error;

  expected = published * opt_subscribers;
  for (guint i = 0; i < (guint) opt_publishers; i++)
    unacked += clients[i].published - MIN (clients[i].published,
                                           atomic_load (&clients[i].completed));
  for (guint i = opt_publishers; i < n; i++)
    {
      Client *c = &clients[i];

      received += atomic_load (&c->received);
      duplicates += c->duplicates;
      t_rx = MAX (t_rx, atomic_load (&c->last_rx_ns));
      for (guint k = 0; k < HIST_BUCKETS; k++)
        hist[k] += c->hist[k];
      for (guint p = 0; p < (guint) opt_publishers; p++)
        {
          guint64 sent = atomic_load (&clients[p].completed);
          guint64 unique = c->got[p] > sent ? sent : c->got[p];

          lost += sent - unique;
        }
    }

  json_builder_begin_object (b);
  json_string (b, "mode", "load");
  json_int (b, "qos", opt_qos);
  json_int (b, "publishers", opt_publishers);
  json_int (b, "subscribers", opt_subscribers);
  json_int (b, "size", opt_size);
  json_int (b, "published", published);
  json_int (b, "received", received);
  json_int (b, "expected", expected);
  json_int (b, "lost", lost);
  json_int (b, "duplicates", duplicates);
  json_int (b, "unacked", unacked);
  json_double (b, "publish_seconds", t_pub > t0 ? (t_pub - t0) / 1e9 : 0);
  json_double (b, "published_per_s", t_pub > t0 ? published / ((t_pub - t0) / 1e9) : 0);
  json_double (b, "receive_seconds", t_rx > t0 ? (t_rx - t0) / 1e9 : 0);
  json_double (b, "received_per_s", t_rx > t0 ? received / ((t_rx - t0) / 1e9) : 0);
  json_double (b, "p50_ms", hist_percentile_ms (hist, 50));
  json_double (b, "p99_ms", hist_percentile_ms (hist, 99));
  json_double (b, "max_ms", hist_percentile_ms (hist, 100));
  /* The generator's own CPU, to tell when it rather than the broker was
   * the limit. */
  getrusage (RUSAGE_SELF, &usage);
  json_double (b, "load_cpu_seconds", usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
                                        + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6);
  if (failure != NULL)
    json_string (b, "error", failure);
  json_builder_end_object (b);
  print_json (b);
  if (failure != NULL)
    g_printerr ("mqtt-load: %s\n", failure);

  for (guint i = 0; i < n; i++)
    {
      mosquitto_destroy (clients[i].mosq);
      g_free (clients[i].client_id);
      g_free (clients[i].username);
      g_free (clients[i].password);
      g_free (clients[i].topic);
      g_free (clients[i].next_seq);
      g_free (clients[i].got);
      g_free (clients[i].error);
    }
  return failure != NULL ? 1 : 0;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- MQTT load generator");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) auth = NULL;
  int status;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx, "Prints one JSON object of results on stdout.");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("mqtt-load: %s\n", error->message);
      return 2;
    }
  if (opt_size < HEADER_SIZE || opt_qos < 0 || opt_qos > 1 || opt_publishers < 0
      || opt_subscribers < 0 || opt_publishers + opt_subscribers == 0 || opt_window < 1
      || (opt_protocol != 311 && opt_protocol != 5) || opt_idle < 0
      || (g_strcmp0 (opt_reader, "buffered") != 0 && g_strcmp0 (opt_reader, "libmosquitto") != 0))
    {
      g_printerr ("mqtt-load: want --size >= %d, --qos 0 or 1, --protocol 311 or 5, "
                  "at least one client, --window >= 1 and --reader buffered or libmosquitto\n",
                  HEADER_SIZE);
      return 2;
    }
  if (opt_sub_topic == NULL)
    opt_sub_topic = opt_topic;
  /* Kept off the command line, where `ps` shows it. */
  if (opt_password == NULL && g_getenv ("MQTT_LOAD_PASSWORD") != NULL)
    opt_password = (char *) g_getenv ("MQTT_LOAD_PASSWORD");
  raise_fd_limit ();
  if (opt_auth_file != NULL && !read_auth_file (&auth, &error))
    return fail_json (opt_idle > 0 ? "idle" : "load", error->message);

  mosquitto_lib_init ();
  status = opt_idle > 0 ? idle_main (auth) : load_main (auth);
  mosquitto_lib_cleanup ();
  return status;
}
