/* Sluice core — the auth chain, authorization on every host-service call,
 * and revocation: closing the live sessions of a principal that was
 * disabled, deleted, re-keyed or whose credentials expired.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

/* --- auth chain --- */

SluicePrincipal *
sluice_host_authenticate (SluiceHost *host, const SluiceCredentials *creds, GError **error)
{
  g_autoptr (GError) deny = NULL;
  const char *proto = creds && creds->protocol ? creds->protocol : "?";
  const char *peer = creds && creds->peer ? creds->peer : "?";

  for (guint i = 0; creds && i < host->auths->len; i++)
    {
      HostAuth *a = host->auths->pdata[i];
      SluicePrincipal *principal = NULL;
      SluiceAuthResult r = a->vtable->authenticate (a->self, creds, &principal, &deny);

      if (r == SLUICE_AUTH_ALLOW && principal)
        {
          g_debug ("%s client %s authenticated as %s by [auth.%s]", proto, peer,
                   sluice_principal_get_id (principal), a->name);
          return principal;
        }
      if (principal)
        sluice_principal_unref (principal);
      if (r == SLUICE_AUTH_DENY)
        break;
      g_clear_error (&deny);
    }
  if (!creds && host->config->allow_anonymous)
    return sluice_principal_new (SLUICE_PRINCIPAL_ANONYMOUS, "",
                                 SLUICE_RIGHT_SEND | SLUICE_RIGHT_LISTEN, NULL, 0, "anonymous");

  sluice_counter_add (host->m_auth_failures, 1);
  /* The reason goes to the log; the client only learns it was refused. */
  g_message ("%s client %s refused: %s", proto, peer,
             deny ? deny->message
                  : (creds ? "no auth plugin accepted these credentials"
                           : "no credentials and [auth] allow-anonymous is false"));
  g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED, "unauthorized");
  return NULL;
}

static gboolean
stream_in_scope (const SluicePrincipal *p, const char *stream)
{
  const char *const *streams = sluice_principal_get_streams (p);
  return !streams || !streams[0] || g_strv_contains (streams, stream);
}

/* A device acts only as itself (or its modules); a policy with
 * DeviceConnect may act for any device, as in IoT Hub. */
static gboolean
acts_as_device (const SluicePrincipal *p, const char *device_id)
{
  const char *name = sluice_principal_get_name (p);
  gsize n;

  if (sluice_principal_get_kind (p) == SLUICE_PRINCIPAL_POLICY)
    return (sluice_principal_get_rights (p) & SLUICE_RIGHT_DEVICE_CONNECT) != 0;
  if (sluice_principal_get_kind (p) != SLUICE_PRINCIPAL_DEVICE || !device_id)
    return FALSE;
  n = strlen (device_id);
  return strncmp (name, device_id, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

gboolean
sluice_host_authorize (SluiceHost *host, const SluicePrincipal *p, SluiceAction action,
                       const char *resource, GError **error)
{
  guint rights;
  gboolean ok = FALSE;
  gint64 expires;

  if (!p)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                           "not authenticated");
      return FALSE;
    }
  expires = sluice_principal_get_expires_at (p);
  if (expires > 0 && expires < g_get_real_time () / G_USEC_PER_SEC)
    {
      g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_UNAUTHENTICATED,
                           "credentials expired");
      return FALSE;
    }
  rights = sluice_principal_get_rights (p);
  switch (action)
    {
    case SLUICE_ACTION_SEND:
      ok = ((rights & SLUICE_RIGHT_SEND) && stream_in_scope (p, resource))
           /* device telemetry goes to the built-in stream */
           || (sluice_principal_get_kind (p) == SLUICE_PRINCIPAL_DEVICE
               && g_strcmp0 (resource, "events") == 0);
      break;
    case SLUICE_ACTION_LISTEN:
      ok = (rights & SLUICE_RIGHT_LISTEN) && stream_in_scope (p, resource);
      break;
    case SLUICE_ACTION_MANAGE:
      ok = (rights & SLUICE_RIGHT_MANAGE) && stream_in_scope (p, resource);
      break;
    case SLUICE_ACTION_REGISTRY_READ:
      ok = (rights & (SLUICE_RIGHT_REGISTRY_READ | SLUICE_RIGHT_REGISTRY_WRITE)) != 0;
      break;
    case SLUICE_ACTION_REGISTRY_WRITE:
      ok = (rights & SLUICE_RIGHT_REGISTRY_WRITE) != 0;
      break;
    case SLUICE_ACTION_DEVICE_SEND:
    case SLUICE_ACTION_DEVICE_RECEIVE:
      ok = acts_as_device (p, resource);
      break;
    case SLUICE_ACTION_SERVICE:
      ok = (rights & SLUICE_RIGHT_SERVICE_CONNECT) != 0;
      break;
    }
  for (guint i = 0; ok && i < host->auths->len; i++)
    {
      HostAuth *a = host->auths->pdata[i];
      if (a->vtable->authorize
          && a->vtable->authorize (a->self, p, action, resource) == SLUICE_AUTH_DENY)
        ok = FALSE;
    }
  if (!ok)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FORBIDDEN, "%s may not %s '%s'",
                 sluice_principal_get_id (p),
                 action == SLUICE_ACTION_SEND ? "send to"
                 : action == SLUICE_ACTION_LISTEN ? "listen to"
                 : action == SLUICE_ACTION_MANAGE ? "manage"
                 : action == SLUICE_ACTION_REGISTRY_READ ? "read the registry entry"
                 : action == SLUICE_ACTION_REGISTRY_WRITE ? "write the registry entry"
                 : action == SLUICE_ACTION_SERVICE ? "use the service API for"
                 : "act as device",
                 resource ? resource : "");
  return ok;
}

/* --- revocation --- */

typedef struct {
  guint id;
  char *principal_id;
  gint64 expires_at;
  SluiceRevokedFunc revoked;
  gpointer user_data;
  GMainContext *context;
  char *reason;                        /* set once it is due to fire */
} HostWatch;

static void
host_watch_free (HostWatch *w)
{
  g_free (w->principal_id);
  g_free (w->reason);
  g_main_context_unref (w->context);
  g_free (w);
}

void
host_watches_init (SluiceHost *host)
{
  host->watches = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) host_watch_free);
}

guint
sluice_host_watch_principal (SluiceHost *host, SluicePrincipal *principal,
                             SluiceRevokedFunc revoked, gpointer user_data)
{
  HostWatch *w = g_new0 (HostWatch, 1);

  w->principal_id = g_strdup (sluice_principal_get_id (principal));
  w->expires_at = sluice_principal_get_expires_at (principal);
  w->revoked = revoked;
  w->user_data = user_data;
  w->context = g_main_context_ref_thread_default ();
  g_mutex_lock (&host->watch_lock);
  w->id = ++host->next_watch_id;
  g_hash_table_insert (host->watches, GUINT_TO_POINTER (w->id), w);
  g_mutex_unlock (&host->watch_lock);
  return w->id;
}

/* A due watch stays in the table until it fires on its owner's context, and
 * the source carries only its id: a watch removed in between (its session
 * ended and unwatched: its user_data may be gone) is simply not there any
 * more, so a watch fires at most once and never after it was removed. */
typedef struct {
  SluiceHost *host;
  guint id;
} WatchFire;

static gboolean
watch_fire (gpointer data)
{
  WatchFire *f = data;
  SluiceHost *host = f->host;
  HostWatch *w;

  g_mutex_lock (&host->watch_lock);
  w = g_hash_table_lookup (host->watches, GUINT_TO_POINTER (f->id));
  if (w)
    g_hash_table_steal (host->watches, GUINT_TO_POINTER (f->id));
  g_mutex_unlock (&host->watch_lock);
  if (w)
    {
      w->revoked (w->reason, w->user_data);
      host_watch_free (w);
    }
  return G_SOURCE_REMOVE;
}

void
sluice_host_unwatch_principal (SluiceHost *host, guint watch_id)
{
  HostWatch *w;

  g_mutex_lock (&host->watch_lock);
  w = g_hash_table_lookup (host->watches, GUINT_TO_POINTER (watch_id));
  if (w)
    g_hash_table_steal (host->watches, GUINT_TO_POINTER (watch_id));
  g_mutex_unlock (&host->watch_lock);
  if (w)
    host_watch_free (w);
}

static void
revoke_matching (SluiceHost *host, const char *principal_id, gint64 now_s, const char *reason)
{
  g_autoptr (GPtrArray) fire = g_ptr_array_new ();
  GHashTableIter it;
  gpointer v;

  g_mutex_lock (&host->watch_lock);
  g_hash_table_iter_init (&it, host->watches);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      HostWatch *w = v;
      gboolean hit;
      gsize n = principal_id ? strlen (principal_id) : 0;

      if (w->reason != NULL)
        continue;                      /* already due */
      if (principal_id)
        hit = strncmp (w->principal_id, principal_id, n) == 0
              && (w->principal_id[n] == '\0' || w->principal_id[n] == '/');
      else
        hit = w->expires_at > 0 && w->expires_at < now_s;
      if (hit)
        {
          WatchFire *f = g_new0 (WatchFire, 1);

          w->reason = g_strdup (principal_id ? reason : "credentials expired");
          g_message ("closing sessions of %s: %s", w->principal_id, w->reason);
          f->host = host;
          f->id = w->id;
          g_ptr_array_add (fire, f);
          g_ptr_array_add (fire, g_main_context_ref (w->context));
        }
    }
  g_mutex_unlock (&host->watch_lock);
  for (guint i = 0; i < fire->len; i += 2)
    {
      GMainContext *context = fire->pdata[i + 1];
      GSource *source = g_idle_source_new ();

      /* Freed with the source, also when its loop ends before it ran. */
      g_source_set_callback (source, watch_fire, fire->pdata[i], g_free);
      g_source_set_static_name (source, "sluice-revoke");
      g_source_attach (source, context);
      g_source_unref (source);
      g_main_context_unref (context);
    }
}

void
host_revoke (SluiceHost *host, const char *principal_id, const char *reason)
{
  revoke_matching (host, principal_id, 0, reason);
}

gboolean
host_expiry_tick (gpointer data)
{
  SluiceHost *host = data;
  revoke_matching (host, NULL, g_get_real_time () / G_USEC_PER_SEC, NULL);
  return G_SOURCE_CONTINUE;
}

