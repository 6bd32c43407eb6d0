/* Helpers the MQTT codec tests share.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

/* Hex to bytes; spaces are skipped, and "LL" as the second byte stands for
 * the remaining length of what follows (one byte). */
static inline GBytes *
hex_bytes (const char *hex)
{
  GByteArray *a = g_byte_array_new ();
  gboolean fill = FALSE;

  for (const char *p = hex; *p != '\0';)
    {
      guint8 b;

      if (*p == ' ')
        {
          p++;
          continue;
        }
      if (p[0] == 'L' && p[1] == 'L' && a->len == 1)
        {
          fill = TRUE;
          g_byte_array_append (a, (const guint8 *) "", 1);
          p += 2;
          continue;
        }
      g_assert_true (g_ascii_isxdigit (p[0]) && g_ascii_isxdigit (p[1]));
      b = (guint8) (g_ascii_xdigit_value (p[0]) << 4 | g_ascii_xdigit_value (p[1]));
      g_byte_array_append (a, &b, 1);
      p += 2;
    }
  if (fill)
    {
      g_assert_cmpuint (a->len - 2, <, 128);
      a->data[1] = (guint8) (a->len - 2);
    }
  return g_byte_array_free_to_bytes (a);
}

static inline char *
to_hex (const guint8 *data, gsize len)
{
  GString *s = g_string_new (NULL);

  for (gsize i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", data[i]);
  return g_string_free (s, FALSE);
}
