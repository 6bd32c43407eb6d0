/* Sluice core — SAS tokens and connection strings (WIRE.md, "SAS tokens").
 *
 * Tokens are `SharedAccessSignature sr=..&sig=..&se=..[&skn=..]` with the
 * fields in any order. The signature is checked over `sr` exactly as the
 * client sent it, because clients differ in how they percent-encode it
 * (`%2f` vs `%2F`, `!` vs `%21`); only the scope check looks at the decoded
 * form.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"
#include "sas-private.h"

#include <string.h>

#define SAS_PREFIX "SharedAccessSignature "

G_DEFINE_QUARK (sluice-sas-error-quark, sluice_sas_error)

void
sluice_sas_token_free (SluiceSasToken *token)
{
  if (token == NULL)
    return;
  g_free (token->sr);
  g_free (token->sr_decoded);
  /* The signature is a credential: do not leave it in freed memory. */
  if (token->sig != NULL)
    memset (token->sig, 0, strlen (token->sig));
  g_free (token->sig);
  g_free (token->skn);
  g_free (token);
}

static gboolean
parse_se (const char *text, gint64 *out, GError **error)
{
  guint64 value = 0;

  /* Digits only: no sign, no blanks, no hex, which g_ascii_strtoll would
   * accept. */
  if (text[0] == '\0')
    goto bad;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p))
      goto bad;
  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXINT64, &value, NULL))
    goto bad;

  *out = (gint64) value;
  return TRUE;

bad:
  g_set_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
               "malformed SAS token: 'se' is not a decimal number of seconds (value '%s')",
               text);
  return FALSE;
}

SluiceSasToken *
sluice_sas_token_parse (const char *token, GError **error)
{
  g_autoptr (SluiceSasToken) t = NULL;
  g_auto (GStrv) fields = NULL;
  const char *body;
  const char *se_text = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (token == NULL || !g_str_has_prefix (token, SAS_PREFIX))
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                           "malformed SAS token: it does not start with "
                           "'SharedAccessSignature '");
      return NULL;
    }

  body = token + strlen (SAS_PREFIX);
  while (*body == ' ')
    body++;

  t = g_new0 (SluiceSasToken, 1);
  t->se = -1;
  fields = g_strsplit (body, "&", -1);

  for (gsize i = 0; fields[i] != NULL; i++)
    {
      const char *field = fields[i];
      const char *eq = strchr (field, '=');
      g_autofree char *name = NULL;
      const char *value;
      char **slot = NULL;

      if (field[0] == '\0')
        continue;
      if (eq == NULL)
        {
          g_set_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                       "malformed SAS token: field %" G_GSIZE_FORMAT " has no '='", i + 1);
          return NULL;
        }

      name = g_strndup (field, eq - field);
      value = eq + 1;

      if (strcmp (name, "sr") == 0)
        slot = &t->sr;
      else if (strcmp (name, "sig") == 0)
        slot = &t->sig;
      else if (strcmp (name, "skn") == 0)
        slot = &t->skn;
      else if (strcmp (name, "se") == 0)
        {
          if (se_text != NULL)
            {
              g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                                   "malformed SAS token: 'se' appears twice");
              return NULL;
            }
          se_text = value;
          continue;
        }
      else
        continue;   /* unknown fields are ignored, as the cloud services do */

      /* Two values for one field would let signer and verifier disagree on
       * what was signed. */
      if (*slot != NULL)
        {
          g_set_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                       "malformed SAS token: '%s' appears twice", name);
          return NULL;
        }

      if (slot == &t->sr)
        {
          /* Keep the encoded form: the signature covers it byte for byte. */
          t->sr = g_strdup (value);
          t->sr_decoded = g_uri_unescape_string (value, NULL);
          if (t->sr_decoded == NULL)
            {
              g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                                   "malformed SAS token: 'sr' has a bad %-escape");
              return NULL;
            }
        }
      else
        {
          *slot = g_uri_unescape_string (value, NULL);
          if (*slot == NULL)
            {
              g_set_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                           "malformed SAS token: '%s' has a bad %%-escape", name);
              return NULL;
            }
        }
    }

  if (t->sr == NULL || t->sr[0] == '\0')
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                           "malformed SAS token: no 'sr' field");
      return NULL;
    }
  if (t->sig == NULL || t->sig[0] == '\0')
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                           "malformed SAS token: no 'sig' field");
      return NULL;
    }
  if (se_text == NULL)
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                           "malformed SAS token: no 'se' field");
      return NULL;
    }
  if (!parse_se (se_text, &t->se, error))
    return NULL;
  if (t->skn != NULL && t->skn[0] == '\0')
    g_clear_pointer (&t->skn, g_free);

  return g_steal_pointer (&t);
}

/* encodeURIComponent: everything but A-Z a-z 0-9 - _ . ! ~ * ' ( ) is
 * percent-encoded (upper-case hex), bytes of UTF-8 one by one. */
static char *
uri_encode_component (const char *text)
{
  return g_uri_escape_string (text, "!*'()", FALSE);
}

static gboolean
is_strict_base64 (const char *text)
{
  gsize len = strlen (text);
  gsize pad = 0;

  if (len == 0 || len % 4 != 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (c == '=')
        {
          pad++;
          continue;
        }
      /* Padding only at the end. */
      if (pad > 0)
        return FALSE;
      if (!g_ascii_isalnum (c) && c != '+' && c != '/')
        return FALSE;
    }
  return pad <= 2;
}

/* The HMAC key bytes. (transfer full) */
static GBytes *
sas_key_bytes (const char *key, gboolean key_is_base64, GError **error)
{
  guchar *raw;
  gsize len = 0;

  if (!key_is_base64)
    return g_bytes_new (key, strlen (key));

  if (!is_strict_base64 (key))
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_BAD_KEY,
                           "the key is not valid base64");
      return NULL;
    }
  raw = g_base64_decode (key, &len);
  return g_bytes_new_take (raw, len);
}

/* base64 (HMAC-SHA256 (key, sr "\n" se)). (transfer full) */
static char *
sas_signature (GBytes *key, const char *sr_encoded, gint64 se)
{
  g_autoptr (GHmac) hmac = NULL;
  g_autofree char *se_text = g_strdup_printf ("%" G_GINT64_FORMAT, se);
  gsize key_len = 0;
  const guchar *key_data = g_bytes_get_data (key, &key_len);
  static const guchar empty_key[1] = { 0 };
  guint8 digest[32];
  gsize digest_len = sizeof digest;

  hmac = g_hmac_new (G_CHECKSUM_SHA256, key_data != NULL ? key_data : empty_key, key_len);
  g_hmac_update (hmac, (const guchar *) sr_encoded, strlen (sr_encoded));
  g_hmac_update (hmac, (const guchar *) "\n", 1);
  g_hmac_update (hmac, (const guchar *) se_text, strlen (se_text));
  g_hmac_get_digest (hmac, digest, &digest_len);

  return g_base64_encode (digest, digest_len);
}

char *
sluice_sas_token_make (const char *resource, const char *key, gboolean key_is_base64,
                       const char *skn, gint64 expiry)
{
  g_autoptr (GBytes) key_bytes = NULL;
  g_autofree char *sr = NULL;
  g_autofree char *sig = NULL;
  g_autofree char *sig_encoded = NULL;
  g_autofree char *skn_encoded = NULL;

  g_return_val_if_fail (resource != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  /* No GError here (the SDK signature has none): a bad key gives NULL. */
  key_bytes = sas_key_bytes (key, key_is_base64, NULL);
  if (key_bytes == NULL)
    return NULL;

  sr = uri_encode_component (resource);
  sig = sas_signature (key_bytes, sr, expiry);
  sig_encoded = uri_encode_component (sig);

  if (skn == NULL)
    return g_strdup_printf (SAS_PREFIX "sr=%s&sig=%s&se=%" G_GINT64_FORMAT,
                            sr, sig_encoded, expiry);

  skn_encoded = uri_encode_component (skn);
  return g_strdup_printf (SAS_PREFIX "sr=%s&sig=%s&se=%" G_GINT64_FORMAT "&skn=%s",
                          sr, sig_encoded, expiry, skn_encoded);
}

/* Compare without an early exit, so the time taken does not tell how many
 * leading characters of a forged signature were right. The length is not
 * secret (a SHA-256 signature is always 44 base64 characters). */
static gboolean
constant_time_equal (const char *a, const char *b)
{
  gsize len_a = strlen (a);
  gsize len_b = strlen (b);
  guint8 diff = 0;

  if (len_a != len_b)
    return FALSE;
  for (gsize i = 0; i < len_a; i++)
    diff |= (guint8) a[i] ^ (guint8) b[i];
  return diff == 0;
}

gboolean
sluice_sas_token_verify (const SluiceSasToken *token, const char *key,
                         gboolean key_is_base64, gint64 now, GError **error)
{
  g_autoptr (GBytes) key_bytes = NULL;
  g_autofree char *expected = NULL;
  gboolean equal;

  g_return_val_if_fail (token != NULL && token->sr != NULL && token->sig != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  key_bytes = sas_key_bytes (key, key_is_base64, error);
  if (key_bytes == NULL)
    return FALSE;

  expected = sas_signature (key_bytes, token->sr, token->se);
  equal = constant_time_equal (expected, token->sig);
  memset (expected, 0, strlen (expected));
  if (!equal)
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_SIGNATURE,
                           "signature mismatch (wrong key or altered token)");
      return FALSE;
    }

  /* The expiry is checked only once the token is known to be genuine, so
   * "expired" is never said about a forgery. */
  if (token->se <= now)
    {
      g_autoptr (GDateTime) when = g_date_time_new_from_unix_utc (token->se);
      g_autofree char *iso = when != NULL ? g_date_time_format_iso8601 (when) : NULL;

      g_set_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_EXPIRED,
                   "token expired at %s (se %" G_GINT64_FORMAT ", now %" G_GINT64_FORMAT ")",
                   iso != NULL ? iso : "?", token->se, now);
      return FALSE;
    }

  return TRUE;
}

gboolean
sluice_sas_verify (const SluiceSasToken *t, const char *key, gboolean key_is_base64,
                   gint64 now, GError **error)
{
  return sluice_sas_token_verify (t, key, key_is_base64, now, error);
}

/* Skip `scheme://` when the text starts with one (RFC 3986 scheme chars). */
static const char *
skip_scheme (const char *text)
{
  const char *p = text;

  if (!g_ascii_isalpha (*p))
    return text;
  while (g_ascii_isalnum (*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  if (g_str_has_prefix (p, "://"))
    return p + 3;
  return text;
}

/* Length of `text` without trailing '/'. */
static gsize
trimmed_length (const char *text)
{
  gsize len = strlen (text);

  while (len > 0 && text[len - 1] == '/')
    len--;
  return len;
}

gboolean
sluice_sas_scope_covers (const char *sr_decoded, const char *resource)
{
  const char *sr;
  const char *res;
  gsize sr_len, res_len, sr_host_len, res_host_len;
  const char *slash;

  if (sr_decoded == NULL || resource == NULL)
    return FALSE;

  sr = skip_scheme (sr_decoded);
  res = skip_scheme (resource);
  sr_len = trimmed_length (sr);
  res_len = trimmed_length (res);

  /* A token for nothing grants nothing. */
  if (sr_len == 0 || res_len == 0)
    return FALSE;

  slash = memchr (sr, '/', sr_len);
  sr_host_len = slash != NULL ? (gsize) (slash - sr) : sr_len;
  slash = memchr (res, '/', res_len);
  res_host_len = slash != NULL ? (gsize) (slash - res) : res_len;

  /* Host names are case-insensitive (DNS); paths are not. */
  if (sr_host_len != res_host_len || g_ascii_strncasecmp (sr, res, sr_host_len) != 0)
    return FALSE;

  if (res_len < sr_len)
    return FALSE;
  if (memcmp (sr + sr_host_len, res + sr_host_len, sr_len - sr_host_len) != 0)
    return FALSE;

  /* Segment prefix: `/a/b` covers `/a/b` and `/a/b/c`, not `/a/bc`. */
  return res_len == sr_len || res[sr_len] == '/';
}

GHashTable *
sluice_connection_string_parse (const char *text, GError **error)
{
  g_autoptr (GHashTable) table = NULL;
  g_auto (GStrv) parts = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (text == NULL)
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                           "malformed connection string: empty");
      return NULL;
    }

  table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  parts = g_strsplit (text, ";", -1);

  for (gsize i = 0; parts[i] != NULL; i++)
    {
      const char *part = parts[i];
      const char *eq;
      g_autofree char *name = NULL;

      /* Tools write a trailing `;`, and people paste spaces around items. */
      while (g_ascii_isspace (*part))
        part++;
      if (*part == '\0')
        continue;

      /* Split at the first '=': base64 keys end in '='. */
      eq = strchr (part, '=');
      if (eq == NULL || eq == part)
        {
          /* The item is not shown: it may be a pasted key. */
          g_set_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                       "malformed connection string: item %" G_GSIZE_FORMAT
                       " is not Name=Value", i + 1);
          return NULL;
        }

      name = g_strchomp (g_strndup (part, eq - part));
      if (g_hash_table_contains (table, name))
        {
          g_set_error (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                       "malformed connection string: '%s' appears twice", name);
          return NULL;
        }
      g_hash_table_insert (table, g_steal_pointer (&name),
                           g_strchomp (g_strdup (eq + 1)));
    }

  if (g_hash_table_size (table) == 0)
    {
      g_set_error_literal (error, SLUICE_SAS_ERROR, SLUICE_SAS_ERROR_MALFORMED,
                           "malformed connection string: empty");
      return NULL;
    }

  return g_steal_pointer (&table);
}
