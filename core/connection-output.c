/* Sluice core — a connection's output queue: GBytes chunks written with one
 * sendmsg (plain), assembled into full TLS records, or handed to a carrier
 * as messages; back-pressure marks.
 * SPDX-License-Identifier: Apache-2.0 */
#include "connection-internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define HIGH_WATER (4 * 1024 * 1024)
#define LOW_WATER (1024 * 1024)
/* Write calls per flush before other sockets get a turn; EPOLLOUT (level)
 * brings us back at once when more can be written. */
#define FLUSH_ROUNDS 8

/* Largest message a flush hands a carrier: small writes (MQTT acks) are
 * coalesced into one WebSocket frame, big ones are not copied. */
#define CARRIER_MESSAGE_MAX (64 * 1024)

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

void
sluice_conn_drop_output (SluiceConnection *conn)
{
  GBytes *bytes;

  while ((bytes = g_queue_pop_head (&conn->output)) != NULL)
    g_bytes_unref (bytes);
  conn->out_offset = 0;
  conn->pending = 0;
  conn->tls_retry_len = 0;
}

static void
conn_consume_output (SluiceConnection *conn, gsize n)
{
  conn->pending -= n;
  while (n > 0)
    {
      GBytes *head = g_queue_peek_head (&conn->output);
      gsize left = g_bytes_get_size (head) - conn->out_offset;

      if (n < left)
        {
          conn->out_offset += n;
          return;
        }
      n -= left;
      conn->out_offset = 0;
      g_bytes_unref (g_queue_pop_head (&conn->output));
    }
}

/* 0, EAGAIN or an errno. */
static int
conn_send_plain (SluiceConnection *conn, gsize *sent)
{
  struct iovec iov[IOV_MAX];
  struct msghdr msg = { 0 };
  gsize offset = conn->out_offset;
  int n = 0;
  ssize_t rc;

  for (GList *l = conn->output.head; l != NULL && n < IOV_MAX; l = l->next)
    {
      gsize size;
      const guint8 *data = g_bytes_get_data (l->data, &size);

      iov[n].iov_base = (void *) (data + offset);
      iov[n].iov_len = size - offset;
      offset = 0;
      n++;
    }
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  do
    rc = sendmsg (conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (rc < 0 && errno == EINTR);
  if (rc < 0)
    return errno == EWOULDBLOCK ? EAGAIN : errno;
  *sent = rc;
  return 0;
}

/* 0, GNUTLS_E_AGAIN or another GnuTLS error. */
static int
conn_send_tls (SluiceConnection *conn, gsize *sent)
{
  /* After GNUTLS_E_AGAIN GnuTLS wants the same data again; the head of the
   * queue has not moved, so the same length gives the same bytes. */
  gsize len = conn->tls_retry_len != 0 ? conn->tls_retry_len
                                       : MIN (conn->pending, SLUICE_IO_TLS_RECORD);
  GBytes *head = g_queue_peek_head (&conn->output);
  gsize head_size;
  const guint8 *head_data = g_bytes_get_data (head, &head_size);
  const guint8 *data;
  ssize_t rc;

  if (head_size - conn->out_offset >= len)
    data = head_data + conn->out_offset;
  else
    {
      /* Small chunks are assembled into one record rather than one record each. */
      gsize copied = 0, offset = conn->out_offset;

      for (GList *l = conn->output.head; l != NULL && copied < len; l = l->next)
        {
          gsize size;
          const guint8 *chunk = g_bytes_get_data (l->data, &size);
          gsize take = MIN (size - offset, len - copied);

          memcpy (conn->worker->tls_out + copied, chunk + offset, take);
          copied += take;
          offset = 0;
        }
      data = conn->worker->tls_out;
    }
  do
    rc = gnutls_record_send (conn->tls, data, len);
  while (rc == GNUTLS_E_INTERRUPTED);
  if (rc == GNUTLS_E_AGAIN)
    {
      conn->tls_retry_len = len;
      return GNUTLS_E_AGAIN;
    }
  if (rc < 0)
    return (int) rc;
  conn->tls_retry_len = 0;
  *sent = rc;
  return 0;
}

gsize
sluice_conn_backlog (SluiceConnection *conn)
{
  if (G_LIKELY (conn->carrier_ops == NULL) || conn->carrier_ops->get_unsent == NULL
      || conn->carrier_done)
    return conn->pending;
  return conn->pending + conn->carrier_ops->get_unsent (conn->carrier);
}

/* Everything queued goes to the carrier, which has its own queue: what it
 * has not sent yet still counts for congestion (sluice_conn_backlog). */
static void
conn_send_carrier (SluiceConnection *conn)
{
  while (conn->pending > 0)
    {
      GBytes *head = g_queue_peek_head (&conn->output);
      gsize head_size = g_bytes_get_size (head);
      g_autoptr(GBytes) message = NULL;

      if (conn->out_offset == 0 && (head_size >= CARRIER_MESSAGE_MAX
                                    || g_queue_get_length (&conn->output) == 1))
        message = g_bytes_ref (head);
      else
        {
          gsize len = MIN (conn->pending, CARRIER_MESSAGE_MAX), copied = 0;
          gsize offset = conn->out_offset;
          guint8 *buf = g_malloc (len);

          for (GList *l = conn->output.head; l != NULL && copied < len; l = l->next)
            {
              gsize size;
              const guint8 *chunk = g_bytes_get_data (l->data, &size);
              gsize take = MIN (size - offset, len - copied);

              memcpy (buf + copied, chunk + offset, take);
              copied += take;
              offset = 0;
            }
          message = g_bytes_new_take (buf, len);
        }
      conn_consume_output (conn, g_bytes_get_size (message));
      conn->carrier_ops->send (conn->carrier, message);
    }
}

void
sluice_conn_flush (SluiceConnection *conn)
{
  if (conn->state != CONN_OPEN && conn->state != CONN_FLUSHING)
    return;

  if (conn->carrier_ops != NULL)
    conn_send_carrier (conn);
  for (int round = 0; conn->pending > 0 && round < FLUSH_ROUNDS; round++)
    {
      gsize sent = 0;
      int rc;

      if (conn->tls != NULL)
        {
          rc = conn_send_tls (conn, &sent);
          if (rc == GNUTLS_E_AGAIN)
            break;
          if (rc < 0)
            {
              sluice_conn_log_io_error (conn, "TLS write failed",
                                 rc == GNUTLS_E_PUSH_ERROR ? EPIPE : 0, gnutls_strerror (rc));
              sluice_conn_close_internal (conn, TRUE);
              return;
            }
        }
      else
        {
          rc = conn_send_plain (conn, &sent);
          if (rc == EAGAIN)
            break;
          if (rc != 0)
            {
              sluice_conn_log_io_error (conn, "write failed", rc, g_strerror (rc));
              sluice_conn_close_internal (conn, TRUE);
              return;
            }
        }
      conn_consume_output (conn, sent);
    }
  /* Either the socket is full or the round budget is spent: both resume on
   * EPOLLOUT. */
  conn->want_write = conn->pending > 0;

  if (conn->congested && sluice_conn_backlog (conn) < LOW_WATER)
    {
      conn->congested = FALSE;
      if (conn->opened && !conn->close_requested
          && conn->listener->vtable->connection_drained != NULL)
        {
          conn->listener->vtable->connection_drained (conn->conn_state, conn);
          /* What it wrote is flushed from the loop (sluice_conn_mark_dirty). */
        }
    }

  if (conn->state == CONN_FLUSHING && conn->pending == 0)
    sluice_conn_shutdown (conn);
  else
    sluice_conn_update_interest (conn);
}

void
sluice_connection_write_bytes (SluiceConnection *connection, GBytes *bytes)
{
  gsize size;

  g_return_if_fail (connection != NULL && bytes != NULL);
  size = g_bytes_get_size (bytes);
  if (connection->close_requested || size == 0)
    return;
  g_queue_push_tail (&connection->output, g_bytes_ref (bytes));
  connection->pending += size;
  if (connection->pending >= HIGH_WATER
      || (connection->carrier_ops != NULL && sluice_conn_backlog (connection) >= HIGH_WATER))
    connection->congested = TRUE;
  sluice_conn_mark_dirty (connection);
}

void
sluice_connection_write (SluiceConnection *connection, const void *data, gsize len)
{
  g_autoptr(GBytes) bytes = NULL;

  g_return_if_fail (connection != NULL);
  if (connection->close_requested || len == 0)
    return;
  bytes = g_bytes_new (data, len);
  sluice_connection_write_bytes (connection, bytes);
}

gsize
sluice_connection_get_pending_output (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, 0);
  return sluice_conn_backlog (connection);
}

gboolean
sluice_connection_is_congested (SluiceConnection *connection)
{
  g_return_val_if_fail (connection != NULL, FALSE);
  return connection->congested && !connection->close_requested;
}

