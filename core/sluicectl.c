/* sluicectl — the admin tool of a Sluice hub. It speaks only the hub's
 * HTTPS service API (WIRE.md, "HTTPS"), with the credentials of a service
 * connection string, so it works against any hub it can reach.
 *
 * This file: the command line and the connection (credentials, URL, TLS).
 * HTTP calls are in sluicectl-http.c, the commands in sluicectl-device.c
 * and sluicectl-stream.c.
 * SPDX-License-Identifier: Apache-2.0 */
#include "sluicectl-private.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

G_DEFINE_QUARK (sluicectl-error-quark, ctl_error)

#define SERVICE_TOKEN_TTL 3600
/* Long polls wait up to 30 s on the hub; the session must outwait them. */
#define HTTP_TIMEOUT_SECONDS 90

#define CONNECTION_HELP \
  "Connection (every command):\n" \
  "  --connection-string CS   service connection string\n" \
  "                           HostName=..;SharedAccessKeyName=..;SharedAccessKey=..\n" \
  "                           (or $SLUICE_CONNECTION_STRING)\n" \
  "  --url URL                where the hub listens, e.g. http://127.0.0.1:8080\n" \
  "                           (or $SLUICE_URL; default https://{HostName})\n" \
  "  --cacert FILE            PEM certificate(s) to trust for https, e.g. the\n" \
  "                           development certificate {data-dir}/tls/dev-cert.pem\n" \
  "                           (or $SLUICE_CACERT)\n"

static char *opt_connection_string;
static char *opt_url;
static char *opt_cacert;
static gboolean opt_version;

static const GOptionEntry global_entries[] = {
  { "connection-string", 0, 0, G_OPTION_ARG_STRING, &opt_connection_string,
    "Service connection string (or $SLUICE_CONNECTION_STRING)", "CS" },
  { "url", 0, 0, G_OPTION_ARG_STRING, &opt_url,
    "Where the hub listens (or $SLUICE_URL; default https://{HostName})", "URL" },
  { "cacert", 0, 0, G_OPTION_ARG_FILENAME, &opt_cacert,
    "PEM certificate(s) to trust for https (or $SLUICE_CACERT)", "FILE" },
  { NULL }
};

/* --- option parsing ------------------------------------------------------- */

static GOptionGroup *
global_group (void)
{
  GOptionGroup *group = g_option_group_new ("connection", "Connection options:",
                                            "Show the connection options", NULL, NULL);

  g_option_group_add_entries (group, global_entries);
  return group;
}

gboolean
ctl_parse_options (const CtlCommand *command, const GOptionEntry *entries, int *argc,
                   char ***argv, int min_args, int max_args, GError **error)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autofree char *prgname = NULL;
  g_autofree char *description = NULL;
  const char *words;
  int positional;

  /* --help prints "Usage: sluicectl device create [OPTION…] ID". */
  prgname = command->group != NULL
    ? g_strdup_printf ("sluicectl %s %s", command->group, command->name)
    : g_strdup_printf ("sluicectl %s", command->name);
  g_set_prgname (prgname);
  words = prgname + strlen ("sluicectl ");

  context = g_option_context_new (command->params);
  g_option_context_set_summary (context, command->summary);
  description = g_strconcat (command->description != NULL ? command->description : "",
                             command->description != NULL ? "\n\n" : "",
                             CONNECTION_HELP, NULL);
  g_option_context_set_description (context, description);
  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, global_group ());

  if (!g_option_context_parse (context, argc, argv, error))
    {
      g_prefix_error (error, "%s: ", words);
      return FALSE;
    }

  /* GLib leaves a `--` in place; it only served to end the options. */
  for (int i = 1; i < *argc; i++)
    if (strcmp ((*argv)[i], "--") == 0)
      {
        /* Not freed: the caller owns the strings (g_option_context_parse
         * never frees what it is given). */
        memmove (&(*argv)[i], &(*argv)[i + 1], (*argc - i) * sizeof (char *));
        (*argc)--;
        break;
      }

  positional = *argc - 1;
  if (positional < min_args || (max_args >= 0 && positional > max_args))
    {
      if (positional < min_args)
        g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE, "%s: missing %s (see '%s --help')",
                     words, command->params != NULL ? command->params : "arguments", prgname);
      else
        g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                     "%s: unexpected argument '%s' (see '%s --help')", words,
                     (*argv)[1 + (max_args >= 0 ? max_args : 0)], prgname);
      return FALSE;
    }
  return TRUE;
}

gboolean
ctl_parse_seconds (const char *text, const char *option, gint64 *seconds, GError **error)
{
  guint64 value = 0;
  g_autofree char *digits = NULL;
  gsize len = strlen (text);
  guint64 unit = 1;

  if (len > 0 && !g_ascii_isdigit (text[len - 1]))
    {
      switch (text[len - 1])
        {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: goto bad;
        }
      len--;
    }
  digits = g_strndup (text, len);
  if (digits[0] == '\0' || !g_ascii_isdigit (digits[0])
      || !g_ascii_string_to_unsigned (digits, 10, 1, G_MAXINT64 / 86400, &value, NULL))
    goto bad;

  *seconds = (gint64) (value * unit);
  return TRUE;

bad:
  g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
               "%s takes a duration such as 3600, 90s, 30m, 1h or 7d (value '%s')",
               option, text);
  return FALSE;
}

/* --- the connection --------------------------------------------------------- */

static const char *
env_or (const char *option_value, const char *variable)
{
  const char *value = option_value;

  if (value == NULL || value[0] == '\0')
    value = g_getenv (variable);
  return value != NULL && value[0] != '\0' ? value : NULL;
}

static gboolean
resolve_url (Ctl *ctl, GError **error)
{
  const char *given = env_or (opt_url, "SLUICE_URL");
  g_autofree char *url = NULL;
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) local = NULL;
  const char *scheme;
  gsize len;

  url = given != NULL ? g_strdup (given) : g_strconcat ("https://", ctl->host_name, NULL);
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &local);
  if (uri == NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE, "bad URL '%s': %s (set --url or SLUICE_URL)",
                   url, local->message);
      return FALSE;
    }
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   "bad URL '%s': the scheme must be http or https", url);
      return FALSE;
    }
  if (g_uri_get_host (uri) == NULL || g_uri_get_host (uri)[0] == '\0'
      || g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   "bad URL '%s': give scheme://host[:port], without query or fragment", url);
      return FALSE;
    }

  /* Paths are appended to it; a reverse proxy's prefix is kept. */
  len = strlen (url);
  while (len > 0 && url[len - 1] == '/')
    url[--len] = '\0';
  ctl->base_url = g_steal_pointer (&url);
  return TRUE;
}

static gboolean
make_session (Ctl *ctl, GError **error)
{
  const char *cacert = env_or (opt_cacert, "SLUICE_CACERT");

  ctl->session = soup_session_new_with_options ("user-agent", "sluicectl/" PACKAGE_VERSION,
                                                "timeout", HTTP_TIMEOUT_SECONDS, NULL);
  if (cacert != NULL)
    {
      g_autoptr (GError) local = NULL;
      g_autoptr (GTlsDatabase) database = NULL;
      g_autofree char *path = NULL;
      GList *certificates;

      if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
        {
          g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                               "TLS is not available: install the Debian package glib-networking");
          return FALSE;
        }
      /* Trust exactly this file: the hub's self-signed development
       * certificate is its own CA. Host names are still checked. */
      /* GTlsFileDatabase wants an absolute path, and takes a file without
       * any certificate in it as an empty (useless) trust list. */
      path = g_canonicalize_filename (cacert, NULL);
      certificates = g_tls_certificate_list_new_from_file (path, &local);
      if (certificates == NULL)
        {
          g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                       "cannot use '%s' as CA certificate (--cacert / SLUICE_CACERT): %s",
                       cacert, local != NULL ? local->message : "it holds no PEM certificate");
          return FALSE;
        }
      g_list_free_full (certificates, g_object_unref);
      database = g_tls_file_database_new (path, &local);
      if (database == NULL)
        {
          g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                       "cannot use '%s' as CA certificate (--cacert / SLUICE_CACERT): %s",
                       cacert, local->message);
          return FALSE;
        }
      soup_session_set_tls_database (ctl->session, database);
    }
  return TRUE;
}

gboolean
ctl_resolve (Ctl *ctl, GError **error)
{
  const char *text;
  g_autoptr (GHashTable) table = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *probe = NULL;
  const char *host_name, *key, *key_name, *device_id;

  if (ctl->resolved)
    return TRUE;

  text = env_or (opt_connection_string, "SLUICE_CONNECTION_STRING");
  if (text == NULL)
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "no connection string: pass --connection-string "
                           "'HostName=..;SharedAccessKeyName=..;SharedAccessKey=..' "
                           "or set SLUICE_CONNECTION_STRING");
      return FALSE;
    }

  /* The text may hold a key: error lines never repeat it. */
  table = sluice_connection_string_parse (text, &local);
  if (table == NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE, "%s (%s)", local->message,
                   opt_connection_string != NULL ? "--connection-string"
                                                 : "SLUICE_CONNECTION_STRING");
      return FALSE;
    }

  host_name = g_hash_table_lookup (table, "HostName");
  key = g_hash_table_lookup (table, "SharedAccessKey");
  key_name = g_hash_table_lookup (table, "SharedAccessKeyName");
  device_id = g_hash_table_lookup (table, "DeviceId");

  if (host_name == NULL && g_hash_table_contains (table, "Endpoint"))
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "bad connection string: an Event Hubs one (Endpoint=..) does not "
                           "reach the service API; use 'HostName=..;SharedAccessKeyName=..;"
                           "SharedAccessKey=..'");
      return FALSE;
    }
  if (host_name == NULL || host_name[0] == '\0')
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "bad connection string: no HostName (want "
                           "'HostName=..;SharedAccessKeyName=..;SharedAccessKey=..')");
      return FALSE;
    }
  if (key == NULL || key[0] == '\0')
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "bad connection string: no SharedAccessKey");
      return FALSE;
    }
  if ((key_name == NULL || key_name[0] == '\0') == (device_id == NULL || device_id[0] == '\0'))
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "bad connection string: it needs SharedAccessKeyName (a service "
                           "policy) or DeviceId (a device), not both");
      return FALSE;
    }
  probe = sluice_sas_token_make (host_name, key, TRUE, NULL, 0);
  if (probe == NULL)
    {
      g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                           "bad connection string: SharedAccessKey is not valid base64");
      return FALSE;
    }

  ctl->host_name = g_strdup (host_name);
  ctl->key = g_strdup (key);
  ctl->policy_name = key_name != NULL && key_name[0] != '\0' ? g_strdup (key_name) : NULL;
  ctl->device_id = device_id != NULL && device_id[0] != '\0' ? g_strdup (device_id) : NULL;

  if (!resolve_url (ctl, error) || !make_session (ctl, error))
    return FALSE;

  ctl->resolved = TRUE;
  return TRUE;
}

gboolean
ctl_require_service (Ctl *ctl, const char *what, GError **error)
{
  if (!ctl_resolve (ctl, error))
    return FALSE;
  if (ctl->policy_name == NULL)
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   "%s needs a service connection string "
                   "(HostName=..;SharedAccessKeyName=..;SharedAccessKey=..), not a device one",
                   what);
      return FALSE;
    }
  return TRUE;
}

/* `sb://`, `https://`, ... (WIRE.md: such a resource is signed with the raw
 * key bytes, Event Hubs style). */
static gboolean
has_uri_scheme (const char *resource)
{
  const char *p = resource;

  if (!g_ascii_isalpha (*p))
    return FALSE;
  while (g_ascii_isalnum (*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  return g_str_has_prefix (p, "://");
}

char *
ctl_make_token (const char *resource, const char *key, const char *skn, gint64 ttl_seconds,
                GError **error)
{
  gboolean key_is_base64 = !has_uri_scheme (resource);
  char *token = sluice_sas_token_make (resource, key, key_is_base64, skn,
                                       g_get_real_time () / G_USEC_PER_SEC + ttl_seconds);

  if (token == NULL)
    g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE, "the key is not valid base64");
  return token;
}

const char *
ctl_service_token (Ctl *ctl, GError **error)
{
  if (!ctl_resolve (ctl, error))
    return NULL;
  if (ctl->service_token == NULL)
    {
      if (ctl->policy_name == NULL)
        {
          g_set_error_literal (error, CTL_ERROR, CTL_ERROR_USAGE,
                               "this needs a service connection string "
                               "(HostName=..;SharedAccessKeyName=..;SharedAccessKey=..), "
                               "not a device one");
          return NULL;
        }
      ctl->service_token = ctl_make_token (ctl->host_name, ctl->key, ctl->policy_name,
                                           SERVICE_TOKEN_TTL, error);
    }
  return ctl->service_token;
}

/* --- main --------------------------------------------------------------------- */

static const CtlCommand *const command_tables[] = {
  ctl_device_commands,
  ctl_stream_commands,
};

static void
print_command_line (FILE *out, const char *left, const char *summary)
{
  if (strlen (left) > 32)
    fprintf (out, "  %s\n  %-32s %s\n", left, "", summary);
  else
    fprintf (out, "  %-32s %s\n", left, summary);
}

static void
print_overview (FILE *out)
{
  fputs ("Usage:\n"
         "  sluicectl COMMAND [ARGS…] [OPTION…]\n"
         "\n"
         "The admin tool of a Sluice hub: devices, tokens, telemetry, stream reads\n"
         "and consumer-group offsets, over the hub's HTTPS service API.\n"
         "\n"
         "Commands:\n", out);
  for (gsize t = 0; t < G_N_ELEMENTS (command_tables); t++)
    for (const CtlCommand *c = command_tables[t]; c->name != NULL; c++)
      {
        g_autofree char *left = g_strdup_printf ("%s%s%s %s", c->group != NULL ? c->group : "",
                                                 c->group != NULL ? " " : "", c->name,
                                                 c->params != NULL ? c->params : "");

        print_command_line (out, g_strstrip (left), c->summary);
      }
  fputs ("\n" CONNECTION_HELP
         "\n"
         "Run 'sluicectl COMMAND --help' for a command's options.\n"
         "Exit status: 0 done, 1 the hub refused or could not be reached, 2 usage error.\n",
         out);
}

static const CtlCommand *
find_command (const char *group, const char *name)
{
  for (gsize t = 0; t < G_N_ELEMENTS (command_tables); t++)
    for (const CtlCommand *c = command_tables[t]; c->name != NULL; c++)
      if (g_strcmp0 (c->group, group) == 0 && g_strcmp0 (c->name, name) == 0)
        return c;
  return NULL;
}

static gboolean
is_group (const char *word)
{
  for (gsize t = 0; t < G_N_ELEMENTS (command_tables); t++)
    for (const CtlCommand *c = command_tables[t]; c->name != NULL; c++)
      if (g_strcmp0 (c->group, word) == 0)
        return TRUE;
  return FALSE;
}

static void
print_group (FILE *out, const char *group)
{
  fprintf (out, "Usage:\n  sluicectl %s COMMAND [ARGS…] [OPTION…]\n\nCommands:\n", group);
  for (gsize t = 0; t < G_N_ELEMENTS (command_tables); t++)
    for (const CtlCommand *c = command_tables[t]; c->name != NULL; c++)
      if (g_strcmp0 (c->group, group) == 0)
        {
          g_autofree char *left = g_strdup_printf ("%s %s %s", group, c->name,
                                                   c->params != NULL ? c->params : "");

          print_command_line (out, g_strstrip (left), c->summary);
        }
  fprintf (out, "\nRun 'sluicectl %s COMMAND --help' for a command's options.\n", group);
}

static int
fail (GError *error)
{
  int status = CTL_EXIT_FAILURE;

  if (error->domain == G_OPTION_ERROR
      || (error->domain == CTL_ERROR && error->code == CTL_ERROR_USAGE))
    status = CTL_EXIT_USAGE;
  fprintf (stderr, "sluicectl: %s\n", error->message);
  return status;
}

static gboolean
is_help (const char *word)
{
  return g_str_equal (word, "--help") || g_str_equal (word, "-h") || g_str_equal (word, "-?")
         || g_str_equal (word, "help");
}

static void
ctl_clear (Ctl *ctl)
{
  g_clear_object (&ctl->session);
  g_free (ctl->host_name);
  g_free (ctl->policy_name);
  g_free (ctl->device_id);
  if (ctl->key != NULL)
    memset (ctl->key, 0, strlen (ctl->key));
  g_free (ctl->key);
  g_free (ctl->base_url);
  g_free (ctl->service_token);
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) args = NULL;
  const CtlCommand *command;
  Ctl ctl = { 0 };
  int skip;
  int status;
  gboolean ok;
  GOptionEntry version_entry[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, NULL, NULL },
    { NULL }
  };

  setlocale (LC_ALL, "");
  g_set_prgname ("sluicectl");
  args = g_strdupv (argv);

  /* The connection options may come anywhere, before or after the command,
   * so they are taken out first; the command parses the rest. */
  context = g_option_context_new (NULL);
  g_option_context_add_main_entries (context, global_entries, NULL);
  g_option_context_add_main_entries (context, version_entry, NULL);
  g_option_context_set_ignore_unknown_options (context, TRUE);
  g_option_context_set_help_enabled (context, FALSE);
  if (!g_option_context_parse_strv (context, &args, &error))
    return fail (error);
  argc = g_strv_length (args);

  if (opt_version)
    {
      printf ("sluicectl %s\n", PACKAGE_VERSION);
      return CTL_EXIT_OK;
    }
  if (argc < 2 || is_help (args[1]))
    {
      print_overview (argc < 2 ? stderr : stdout);
      return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }

  if (is_group (args[1]))
    {
      if (argc < 3 || is_help (args[2]))
        {
          print_group (argc < 3 ? stderr : stdout, args[1]);
          return argc < 3 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
        }
      command = find_command (args[1], args[2]);
      skip = 2;
    }
  else
    {
      command = find_command (NULL, args[1]);
      skip = 1;
    }
  if (command == NULL)
    {
      g_set_error (&error, CTL_ERROR, CTL_ERROR_USAGE,
                   "unknown command '%s%s%s' (see 'sluicectl --help')", args[1],
                   skip == 2 ? " " : "", skip == 2 ? args[2] : "");
      return fail (error);
    }

  /* argv[0] for the command is its own name; the words before it go. */
  g_free (args[skip]);
  args[skip] = g_strdup (args[0]);
  {
    int sub_argc = argc - skip;
    char **sub_argv = g_new0 (char *, sub_argc + 1);

    memcpy (sub_argv, args + skip, sub_argc * sizeof (char *));
    /* GOption frees what it removes from the array it is given: hand it a
     * shallow copy and let `args` own the strings that stay. */
    ok = command->run (&ctl, command, sub_argc, sub_argv, &error);
    g_free (sub_argv);
  }

  status = ok ? CTL_EXIT_OK : fail (error);
  ctl_clear (&ctl);
  g_free (opt_connection_string);
  g_free (opt_url);
  g_free (opt_cacert);
  return status;
}
