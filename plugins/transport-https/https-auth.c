/* transport-https — the `Authorization` header to a principal.
 *
 * HTTP has no session: every request carries its SAS token, and checking
 * its HMAC each time would cost more than the rest of a telemetry request.
 * So each worker keeps the principals it has verified, keyed by token and
 * resource, and uses one again only while it is still what the auth chain
 * would answer: not expired; for a device, its registry entry unchanged
 * (same etag: not disabled, deleted or re-keyed since); for a policy, for a
 * second at most, after which the chain verifies it again (policies change
 * only by a configuration reload, whose revocations take that long anyway).
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <string.h>

#define SAS_PREFIX "SharedAccessSignature "
#define CACHE_MAX 4096
#define POLICY_RECHECK_US (1 * G_USEC_PER_SEC)

void
https_principal_cache_free (HttpsCachedPrincipal *cached)
{
  if (!cached)
    return;
  sluice_principal_unref (cached->principal);
  g_free (cached->device_etag);
  g_free (cached);
}

static char *
device_etag (SluiceHost *host, const char *device_id)
{
  g_autoptr (SluiceDevice) device = sluice_host_registry_lookup (host, device_id);

  return device ? g_strdup (device->etag) : NULL;
}

static gboolean
cached_still_valid (HttpsServer *server, HttpsCachedPrincipal *cached, gint64 now_us)
{
  SluicePrincipal *p = cached->principal;
  gint64 expires = sluice_principal_get_expires_at (p);

  if (expires > 0 && expires <= g_get_real_time () / G_USEC_PER_SEC)
    return FALSE;
  if (sluice_principal_get_kind (p) == SLUICE_PRINCIPAL_DEVICE)
    {
      g_autoptr (SluiceDevice) device
        = sluice_host_registry_lookup (server->transport->host, sluice_principal_get_name (p));
      return device && device->enabled && g_strcmp0 (device->etag, cached->device_etag) == 0;
    }
  return now_us - cached->checked_at < POLICY_RECHECK_US;
}

static char *
peer_of (SoupServerMessage *msg)
{
  GSocketAddress *addr = soup_server_message_get_remote_address (msg);

  if (G_IS_INET_SOCKET_ADDRESS (addr))
    {
      GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (addr);
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (inet));
      guint16 port = g_inet_socket_address_get_port (inet);

      if (g_inet_socket_address_get_address (inet)
          && g_inet_address_get_family (g_inet_socket_address_get_address (inet))
               == G_SOCKET_FAMILY_IPV6)
        return g_strdup_printf ("[%s]:%u", ip, port);
      return g_strdup_printf ("%s:%u", ip, port);
    }
  return g_strdup ("?");
}

SluicePrincipal *
https_authenticate (HttpsServer *server, SoupServerMessage *msg, const char *resource,
                    GError **error)
{
  SluiceHost *host = server->transport->host;
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");
  g_autofree char *key = NULL;
  g_autofree char *peer = NULL;
  HttpsCachedPrincipal *cached;
  SluiceCredentials creds = { 0 };
  SluicePrincipal *principal;
  gint64 now_us = g_get_monotonic_time ();

  /* No header: anonymous, when [auth] allow-anonymous says so. */
  if (!auth)
    return sluice_host_authenticate (host, NULL, error);
  if (g_ascii_strncasecmp (auth, SAS_PREFIX, strlen (SAS_PREFIX)) != 0)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                           "the Authorization header must be a SharedAccessSignature token");
      return NULL;
    }

  key = g_strconcat (resource, "\n", auth, NULL);
  cached = g_hash_table_lookup (server->principals, key);
  if (cached)
    {
      if (cached_still_valid (server, cached, now_us))
        return sluice_principal_ref (cached->principal);
      g_hash_table_remove (server->principals, key);
    }

  peer = peer_of (msg);
  creds.type = SLUICE_CREDENTIALS_SAS_TOKEN;
  creds.protocol = "https";
  creds.peer = peer;
  creds.token = auth;
  creds.resource = resource;
  principal = sluice_host_authenticate (host, &creds, error);
  if (!principal)
    return NULL;

  if (g_hash_table_size (server->principals) >= CACHE_MAX)
    g_hash_table_remove_all (server->principals);
  cached = g_new0 (HttpsCachedPrincipal, 1);
  cached->principal = sluice_principal_ref (principal);
  cached->checked_at = now_us;
  if (sluice_principal_get_kind (principal) == SLUICE_PRINCIPAL_DEVICE)
    cached->device_etag = device_etag (host, sluice_principal_get_name (principal));
  g_hash_table_replace (server->principals, g_steal_pointer (&key), cached);
  return principal;
}
