/* Sluice core — adopted connections: a SluiceConnection whose bytes another
 * transport carries (an upgraded WebSocket of transport-https), so that a
 * byte-stream transport (MQTT) serves it exactly like a socket.
 *
 * The carrier reports input, write progress and the peer's close with the
 * calls below; the core sends, pauses and closes through its
 * SluiceCarrierOps. The rest (input buffer, output queue, congestion, the
 * deferred closed callback) is the socket connection's own code, which
 * branches on `carrier_ops` where it would touch the socket.
 * SPDX-License-Identifier: Apache-2.0 */
#include "connection-internal.h"

SluiceConnection *
sluice_connection_adopt (SluiceIoWorker *worker, SluiceListener *listener,
                         const SluiceCarrierOps *ops, gpointer carrier,
                         const SluiceCarrierInfo *info)
{
  SluiceConnection *conn = sluice_conn_new (worker, listener, -1);

  conn->carrier_ops = ops;
  conn->carrier = carrier;
  conn->carrier_tls = info != NULL && info->tls;
  conn->peer = g_strdup (info != NULL && info->peer != NULL ? info->peer : "unknown");
  conn->local = g_strdup (info != NULL && info->local != NULL ? info->local : listener->address);
  if (info != NULL && info->peer_certs != NULL && info->peer_certs->len > 0)
    conn->peer_certs = g_ptr_array_ref (info->peer_certs);
  conn->state = CONN_OPEN;
  g_debug ("connection %" G_GUINT64_FORMAT " from %s adopted on %s [transport.%s]%s", conn->id,
           conn->peer, conn->local, listener->transport_name, conn->carrier_tls ? " (TLS)" : "");

  sluice_connection_ref (conn);   /* the carrier's */
  sluice_conn_open_transport (conn);
  return conn;
}

void
sluice_connection_carrier_input (SluiceConnection *connection, const guint8 *data, gsize len)
{
  g_return_if_fail (connection != NULL && connection->carrier_ops != NULL);
  if (connection->state != CONN_OPEN || len == 0)
    return;
  sluice_connection_ref (connection);
  sluice_conn_deliver (connection, data, len);
  /* What the transport answered goes out now, as one message. */
  if (connection->pending > 0)
    sluice_conn_flush (connection);
  sluice_connection_unref (connection);
}

void
sluice_connection_carrier_progress (SluiceConnection *connection)
{
  g_return_if_fail (connection != NULL && connection->carrier_ops != NULL);
  /* The drained callback runs from the worker's loop, never from inside
   * the carrier's write. */
  if (connection->congested && !connection->carrier_done
      && (connection->state == CONN_OPEN || connection->state == CONN_FLUSHING))
    sluice_conn_mark_dirty (connection);
}

void
sluice_connection_carrier_closed (SluiceConnection *connection)
{
  g_return_if_fail (connection != NULL && connection->carrier_ops != NULL);
  if (connection->carrier_done || connection->state == CONN_DONE)
    return;
  g_debug ("connection %" G_GUINT64_FORMAT " from %s [transport.%s]: carrier closed",
           connection->id, connection->peer, sluice_conn_transport_name (connection));
  connection->carrier_done = TRUE;
  connection->peer_eof = TRUE;
  /* Nothing can be sent any more: what is queued is dropped. */
  sluice_conn_close_internal (connection, TRUE);
}
