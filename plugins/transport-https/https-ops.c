/* transport-https — /healthz and /metrics (Prometheus text format).
 *
 * Both answer without credentials unless `ops-auth = true`, in which case
 * /metrics wants a token with ServiceConnect. /healthz never does: a load
 * balancer's probe carries no token.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <string.h>

void
https_handle_healthz (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route)
{
  /* Listeners open only once the host has started: answering is ready. */
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_STATIC,
                                    "ok\n", 3);
}

void
https_handle_metrics (HttpsServer *server, SoupServerMessage *msg, HttpsRoute *route)
{
  HttpsTransport *t = server->transport;
  char *text;

  if (t->options.ops_auth)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (SluicePrincipal) principal = https_authenticate (server, msg, t->hostname,
                                                                  &error);

      if (!principal
          || !sluice_host_authorize (t->host, principal, SLUICE_ACTION_SERVICE, "", &error))
        {
          https_reply_gerror (msg, FALSE, error);
          return;
        }
    }
  text = sluice_host_metrics_render (t->host);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain; version=0.0.4; charset=utf-8",
                                    SOUP_MEMORY_TAKE, text, strlen (text));
}
