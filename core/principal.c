/* Sluice core — principals and rights (sluice-auth.h).
 *
 * A principal is created once by an auth plugin and then shared by every
 * session and worker that acts for it, so it is immutable and its refcount
 * is atomic.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"

struct _SluicePrincipal
{
  gint ref_count;
  SluicePrincipalKind kind;
  char *name;
  char *id;
  guint rights;
  char **streams;              /* NULL: every stream */
  gint64 expires_at;
  char *auth_method;
};

/* Canonical names, in bit order: sluice_rights_to_string() writes them in
 * this order so that its output is stable. */
static const struct
{
  const char *name;
  SluiceRights right;
} rights_names[] = {
  { "RegistryRead", SLUICE_RIGHT_REGISTRY_READ },
  { "RegistryWrite", SLUICE_RIGHT_REGISTRY_WRITE },
  { "ServiceConnect", SLUICE_RIGHT_SERVICE_CONNECT },
  { "DeviceConnect", SLUICE_RIGHT_DEVICE_CONNECT },
  { "Send", SLUICE_RIGHT_SEND },
  { "Listen", SLUICE_RIGHT_LISTEN },
  { "Manage", SLUICE_RIGHT_MANAGE },
};

static gboolean
rights_parse_one (const char *raw, guint *rights, GError **error)
{
  g_autofree char *name = g_strstrip (g_strdup (raw));

  /* `a;;b` and a trailing `;` leave empty items; they name nothing. */
  if (name[0] == '\0')
    return TRUE;

  for (gsize i = 0; i < G_N_ELEMENTS (rights_names); i++)
    {
      if (g_ascii_strcasecmp (name, rights_names[i].name) == 0)
        {
          *rights |= rights_names[i].right;
          return TRUE;
        }
    }

  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
               "unknown right '%s' (known: RegistryRead, RegistryWrite, ServiceConnect, "
               "DeviceConnect, Send, Listen, Manage)", name);
  return FALSE;
}

gboolean
sluice_rights_parse (const char *const *names, guint *rights, GError **error)
{
  guint result = 0;

  g_return_val_if_fail (rights != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (gsize i = 0; names != NULL && names[i] != NULL; i++)
    {
      /* An item may itself be a `;`-list when it did not come through the
       * config's list parser (e.g. a command-line argument). */
      g_auto (GStrv) parts = g_strsplit (names[i], ";", -1);

      for (gsize j = 0; parts[j] != NULL; j++)
        if (!rights_parse_one (parts[j], &result, error))
          return FALSE;
    }

  *rights = result;
  return TRUE;
}

char *
sluice_rights_to_string (guint rights)
{
  g_autoptr (GString) out = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (rights_names); i++)
    {
      if ((rights & rights_names[i].right) == 0)
        continue;
      if (out->len > 0)
        g_string_append_c (out, ';');
      g_string_append (out, rights_names[i].name);
    }

  return g_string_free (g_steal_pointer (&out), FALSE);
}

SluicePrincipal *
sluice_principal_new (SluicePrincipalKind kind, const char *name, guint rights,
                      const char *const *streams, gint64 expires_at,
                      const char *auth_method)
{
  SluicePrincipal *p;

  g_return_val_if_fail (kind == SLUICE_PRINCIPAL_ANONYMOUS
                        || kind == SLUICE_PRINCIPAL_DEVICE
                        || kind == SLUICE_PRINCIPAL_POLICY, NULL);
  g_return_val_if_fail (kind == SLUICE_PRINCIPAL_ANONYMOUS
                        || (name != NULL && name[0] != '\0'), NULL);

  p = g_new0 (SluicePrincipal, 1);
  p->ref_count = 1;
  p->kind = kind;
  p->rights = rights;
  p->expires_at = expires_at;
  p->auth_method = g_strdup (auth_method != NULL ? auth_method : "");

  switch (kind)
    {
    case SLUICE_PRINCIPAL_DEVICE:
      p->name = g_strdup (name);
      p->id = g_strconcat ("devices/", name, NULL);
      break;
    case SLUICE_PRINCIPAL_POLICY:
      p->name = g_strdup (name);
      p->id = g_strconcat ("policy/", name, NULL);
      break;
    case SLUICE_PRINCIPAL_ANONYMOUS:
    default:
      p->name = g_strdup ("");
      p->id = g_strdup ("anonymous");
      break;
    }

  /* An empty list means every stream (CONFIG.md), which the getter reports
   * as NULL, so callers need one test, not two. */
  if (streams != NULL && streams[0] != NULL)
    p->streams = g_strdupv ((char **) streams);

  return p;
}

SluicePrincipal *
sluice_principal_ref (SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, NULL);
  g_atomic_int_inc (&principal->ref_count);
  return principal;
}

void
sluice_principal_unref (SluicePrincipal *principal)
{
  if (principal == NULL)
    return;
  if (!g_atomic_int_dec_and_test (&principal->ref_count))
    return;

  g_free (principal->name);
  g_free (principal->id);
  g_strfreev (principal->streams);
  g_free (principal->auth_method);
  g_free (principal);
}

SluicePrincipalKind
sluice_principal_get_kind (const SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, SLUICE_PRINCIPAL_ANONYMOUS);
  return principal->kind;
}

const char *
sluice_principal_get_name (const SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, NULL);
  return principal->name;
}

const char *
sluice_principal_get_id (const SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, NULL);
  return principal->id;
}

guint
sluice_principal_get_rights (const SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, 0);
  return principal->rights;
}

const char *const *
sluice_principal_get_streams (const SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, NULL);
  return (const char *const *) principal->streams;
}

gint64
sluice_principal_get_expires_at (const SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, 0);
  return principal->expires_at;
}

const char *
sluice_principal_get_auth_method (const SluicePrincipal *principal)
{
  g_return_val_if_fail (principal != NULL, NULL);
  return principal->auth_method;
}
