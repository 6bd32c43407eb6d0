/* Sluice core — the log writer: one line per event on stderr,
 * `TIME LEVEL domain: message [FIELD=value ...]`, filtered by [hub] log-level.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#include <stdio.h>

static GLogLevelFlags max_level = G_LOG_LEVEL_INFO;
static gsize writer_set;

static const char *
level_name (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "error";
  if (level & G_LOG_LEVEL_CRITICAL)
    return "critical";
  if (level & G_LOG_LEVEL_WARNING)
    return "warning";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "notice";
  if (level & G_LOG_LEVEL_INFO)
    return "info";
  return "debug";
}

static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  const char *domain = NULL, *message = NULL;
  g_autoptr (GString) extra = g_string_new (NULL);
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *ts = NULL;
  GLogLevelFlags lvl = level & G_LOG_LEVEL_MASK;

  if (lvl > max_level && !(lvl & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)))
    return G_LOG_WRITER_HANDLED;
  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
        domain = fields[i].value;
      else if (g_str_equal (fields[i].key, "MESSAGE"))
        message = fields[i].value;
      else if (g_str_has_prefix (fields[i].key, "SLUICE_") && fields[i].length < 0)
        g_string_append_printf (extra, " %s=%s", fields[i].key + 7, (const char *) fields[i].value);
    }
  now = g_date_time_new_now_utc ();
  ts = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
  fprintf (stderr, "%s %s %s: %s%s\n", ts, level_name (lvl), domain ? domain : "sluice",
           message ? message : "", extra->str);
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}

void
sluice_log_setup (const char *level)
{
  if (!level || g_str_equal (level, "info"))
    max_level = G_LOG_LEVEL_INFO;
  else if (g_str_equal (level, "debug"))
    max_level = G_LOG_LEVEL_DEBUG;
  else if (g_str_equal (level, "warning"))
    max_level = G_LOG_LEVEL_WARNING;
  else if (g_str_equal (level, "error"))
    max_level = G_LOG_LEVEL_CRITICAL;
  else if (g_str_equal (level, "notice") || g_str_equal (level, "message"))
    max_level = G_LOG_LEVEL_MESSAGE;
  /* GLib accepts one writer per process; later calls only change the level. */
  if (g_once_init_enter (&writer_set))
    {
      g_log_set_writer_func (log_writer, NULL, NULL);
      g_once_init_leave (&writer_set, 1);
    }
}
