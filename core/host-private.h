/* Sluice core — the host: storage, streams, registry, auth chain, transports.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"
#include "config-private.h"

G_BEGIN_DECLS

/* Load the plugins the config names and check every plugin section. Opens
 * nothing yet (sluiced --check-config stops here). */
SLUICE_INTERNAL SluiceHost *sluice_host_new (SluiceConfig *config /* transfer full */,
                                             GError **error);
/* Open storage and recover, load the registry and streams, start workers,
 * create and start transports, then open listeners. */
SLUICE_INTERNAL gboolean sluice_host_start (SluiceHost *host, GError **error);
/* Graceful: stop listeners, drain transports, finish in-flight appends,
 * sync, close storage. */
SLUICE_INTERNAL void sluice_host_stop (SluiceHost *host);
SLUICE_INTERNAL void sluice_host_free (SluiceHost *host);
/* SIGHUP: reread policies (auth plugins' reload). */
SLUICE_INTERNAL gboolean sluice_host_reload (SluiceHost *host, GError **error);

/* Run retention now (normally every 30 s); the trims run on the writer. */
SLUICE_INTERNAL void sluice_host_run_retention (SluiceHost *host);

/* Tests: put a device into the in-memory registry only (no storage). */
SLUICE_INTERNAL void sluice_host_registry_cache_put (SluiceHost *host, const SluiceDevice *device);

G_END_DECLS
