/* Sluice core — which byte-stream transport serves a protocol name for
 * connections other transports adopt (WebSockets of transport-https).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "host-internal.h"

G_BEGIN_DECLS

/* After the transports are created, before any listener opens: the first
 * `plugin = mqtt` instance serves "mqtt", the first `plugin = amqp` one
 * "AMQPWSB10". A failure is logged (the socket listeners still work). */
G_GNUC_INTERNAL void sluice_host_register_builtin_protocols (SluiceHost *host);

G_END_DECLS
