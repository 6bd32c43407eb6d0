/* transport-mqtt tests — random topic names and filters for the
 * cross-checks of the subscription and retained indexes against the
 * brute-force matcher. A small alphabet with an empty level, a `$` first
 * level and wildcards, so that matches, near misses and the `$` rule all
 * come up often.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

static const char *const alphabet[] = { "a", "b", "c", "" };

static char *
random_path (gboolean filter)
{
  guint n = g_test_rand_int_range (1, 5);
  GString *out = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    {
      guint pick = g_test_rand_int_range (0, filter ? 7 : 5);

      if (i > 0)
        g_string_append_c (out, '/');
      if (pick < 4)
        g_string_append (out, alphabet[pick]);
      else if (pick == 4)
        g_string_append (out, i == 0 ? "$s" : "d");
      else if (pick == 5)
        g_string_append_c (out, '+');
      else
        {
          g_string_append_c (out, '#');
          break;
        }
    }
  /* A lone empty level is not a topic; nor a filter. */
  if (out->len == 0)
    g_string_append (out, "a");
  return g_string_free (out, FALSE);
}
