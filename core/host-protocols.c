/* Sluice core — the host services for adopted connections: which transport
 * serves a protocol, and adopting a carried connection for it (SDK:
 * sluice-transport.h). The I/O side is in listener.c and
 * connection-carrier.c.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-protocols-private.h"

/* Plugin name → the WebSocket subprotocol its transport serves. */
static const struct {
  const char *plugin;
  const char *protocol;
} builtin_protocols[] = {
  { "mqtt", "mqtt" },
  { "amqp", "AMQPWSB10" },
};

static HostTransport *
find_transport (SluiceHost *host, gpointer transport)
{
  for (guint i = 0; i < host->transports->len; i++)
    {
      HostTransport *t = host->transports->pdata[i];

      if (t->self != NULL && t->self == transport)
        return t;
    }
  return NULL;
}

static gboolean
register_transport (SluiceHost *host, HostTransport *t, const char *protocol, GError **error)
{
  SluiceListenSpec spec = { 0 };

  if (host->io == NULL)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                   "protocol '%s': the hub's I/O workers are not running", protocol);
      return FALSE;
    }
  spec.transport_name = t->config->name;
  spec.vtable = t->vtable;
  spec.transport = t->self;
  spec.max_connections = t->config->max_connections;
  return sluice_io_register_protocol (host->io, protocol, &spec, error);
}

gboolean
sluice_host_register_protocol (SluiceHost *host, const char *protocol, gpointer transport,
                               GError **error)
{
  HostTransport *t;

  g_return_val_if_fail (host != NULL && protocol != NULL, FALSE);
  t = find_transport (host, transport);
  if (t == NULL || (t->vtable->flags & SLUICE_TRANSPORT_OWNS_LISTENERS))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "protocol '%s': only a created byte-stream transport instance can serve "
                   "it", protocol);
      return FALSE;
    }
  return register_transport (host, t, protocol, error);
}

void
sluice_host_register_builtin_protocols (SluiceHost *host)
{
  for (guint p = 0; p < G_N_ELEMENTS (builtin_protocols); p++)
    for (guint i = 0; i < host->transports->len; i++)
      {
        HostTransport *t = host->transports->pdata[i];
        g_autoptr (GError) error = NULL;

        if (t->self == NULL || !g_str_equal (t->plugin->desc->name, builtin_protocols[p].plugin))
          continue;
        if (!register_transport (host, t, builtin_protocols[p].protocol, &error))
          g_warning ("[transport.%s]: WebSocket subprotocol %s not served: %s",
                     t->config->name, builtin_protocols[p].protocol, error->message);
        /* The first instance serves it; others keep their own listeners. */
        break;
      }
}

gboolean
sluice_host_has_protocol (SluiceHost *host, const char *protocol)
{
  g_return_val_if_fail (host != NULL && protocol != NULL, FALSE);
  return host->io != NULL && !g_atomic_int_get (&host->stopping)
         && sluice_io_has_protocol (host->io, protocol);
}

SluiceConnection *
sluice_host_adopt_connection (SluiceHost *host, const char *protocol,
                              const SluiceCarrierOps *ops, gpointer carrier,
                              const SluiceCarrierInfo *info, GError **error)
{
  g_return_val_if_fail (host != NULL && protocol != NULL && ops != NULL, NULL);
  if (host->io == NULL || g_atomic_int_get (&host->stopping))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN,
                   "the hub is shutting down");
      return NULL;
    }
  return sluice_io_adopt (host->io, protocol, ops, carrier, info, error);
}
