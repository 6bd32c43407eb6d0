/* Sluice core — the sluiced command line (CONFIG.md "Command line").
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"
#include "daemon-private.h"

#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>

typedef struct {
  SluiceHost *host;
  GMainLoop *loop;
  int signal;
} Daemon;

static gboolean
on_stop_signal (gpointer data)
{
  Daemon *d = data;

  g_message ("stopping (signal received); in-flight appends finish first");
  g_main_loop_quit (d->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_hup (gpointer data)
{
  Daemon *d = data;
  g_autoptr (GError) error = NULL;

  if (!sluice_host_reload (d->host, &error))
    g_warning ("reload failed, the previous configuration stays: %s", error->message);
  return G_SOURCE_CONTINUE;
}

static int
list_plugins (const char *config_path)
{
  g_autoptr (SluiceConfig) config = NULL;
  g_autoptr (GError) error = NULL;
  SluicePluginLoader *loader;
  g_auto (GStrv) lines = NULL;

  if (config_path && !(config = sluice_config_load (config_path, &error)))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  loader = sluice_plugin_loader_new (config ? (const char *const *) config->plugin_path : NULL);
  lines = sluice_plugin_loader_list_all (loader);
  for (guint i = 0; lines && lines[i]; i++)
    g_print ("%s\n", lines[i]);
  sluice_plugin_loader_free (loader);
  return 0;
}

static int
check_config (const char *path)
{
  g_autoptr (GError) error = NULL;
  SluiceConfig *config = sluice_config_load (path, &error);
  SluiceHost *host;

  if (!config)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  host = sluice_host_new (config, &error);
  if (!host)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  sluice_host_free (host);
  return 0;
}

int
sluice_daemon_main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *check = NULL;
  gboolean list = FALSE, version = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "Configuration file", "FILE" },
    { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir,
      "Data directory (overrides [hub] data-dir; created when missing)", "DIR" },
    { "check-config", 0, 0, G_OPTION_ARG_FILENAME, &check,
      "Validate FILE, print nothing but errors, exit 0 or 1", "FILE" },
    { "list-plugins", 0, 0, G_OPTION_ARG_NONE, &list,
      "List the plugins on the search path and exit", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- the Sluice message hub");
  g_autoptr (GError) error = NULL;
  SluiceConfig *config;
  Daemon d = { 0 };
  guint sig_term, sig_int, sig_hup;

  setlocale (LC_ALL, "");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx, "Serves MQTT, AMQP, HTTPS and Kafka clients from durable, "
                                     "partitioned streams.");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("sluiced: %s (try --help)\n", error->message);
      return 2;
    }
  if (version)
    {
      g_print ("sluiced %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, SLUICE_ABI_MAJOR,
               SLUICE_ABI_MINOR);
      return 0;
    }
  sluice_log_setup (g_getenv ("SLUICE_LOG_LEVEL"));
  if (check)
    {
      /* Nothing but errors. */
      sluice_log_setup ("warning");
      return check_config (check);
    }
  if (list)
    return list_plugins (config_path);
  if (!config_path)
    {
      g_printerr ("sluiced: --config FILE is required (try --help)\n");
      return 2;
    }

  config = sluice_config_load (config_path, &error);
  if (!config)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  if (data_dir)
    {
      g_free (config->data_dir);
      config->data_dir = g_steal_pointer (&data_dir);
    }
  sluice_log_setup (g_getenv ("SLUICE_LOG_LEVEL") ? g_getenv ("SLUICE_LOG_LEVEL")
                                                   : config->log_level);
  d.host = sluice_host_new (config, &error);
  if (!d.host)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  d.loop = g_main_loop_new (NULL, FALSE);
  sig_term = g_unix_signal_add (SIGTERM, on_stop_signal, &d);
  sig_int = g_unix_signal_add (SIGINT, on_stop_signal, &d);
  sig_hup = g_unix_signal_add (SIGHUP, on_hup, &d);

  if (!sluice_host_start (d.host, &error))
    {
      g_printerr ("sluiced: %s\n", error->message);
      sluice_host_free (d.host);
      g_main_loop_unref (d.loop);
      return 1;
    }
  g_print ("ready\n");
  fflush (stdout);
  g_message ("sluiced %s ready (data in %s)", PACKAGE_VERSION, sluice_host_get_data_dir (d.host));

  g_main_loop_run (d.loop);

  sluice_host_stop (d.host);
  sluice_host_free (d.host);
  g_source_remove (sig_term);
  g_source_remove (sig_int);
  g_source_remove (sig_hup);
  g_main_loop_unref (d.loop);
  g_message ("stopped");
  return 0;
}
