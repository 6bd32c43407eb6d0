/* Sluice core — the host: plugin set-up, start-up order, shutdown, and the
 * host services plugins call (auth chain, authorization, appends).
 *
 * Start-up order: load config and plugins, recover storage, load registry
 * and streams, start the writer and workers, create transports, then open
 * listeners — a port that answers means the hub is ready.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"
#include "host-protocols-private.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

static const char *const storage_extra_keys[] = { "plugin", NULL };
static const char *const auth_extra_keys[] = { "plugin", NULL };

gint64
host_now_ms (void)
{
  return g_get_real_time () / 1000;
}

/* --- accessors --- */

const char *
sluice_host_get_hostname (SluiceHost *host)
{
  return host->config->hostname;
}

const char *
sluice_host_get_data_dir (SluiceHost *host)
{
  return host->data_dir;
}

guint
sluice_host_get_worker_count (SluiceHost *host)
{
  return host->io ? sluice_io_get_worker_count (host->io) : 0;
}

GMainContext *
sluice_host_get_worker_context (SluiceHost *host, guint i)
{
  return host->io ? sluice_io_get_context (host->io, i) : NULL;
}

void
sluice_host_run_on_workers (SluiceHost *host, gint priority, SluiceWorkerFunc func,
                            gpointer user_data)
{
  g_return_if_fail (host->io != NULL);
  sluice_io_run_on_workers_indexed (host->io, priority, func, user_data);
}

const char *
sluice_host_get_tls_cert_file (SluiceHost *host)
{
  return host->tls_cert_file;
}

const char *
sluice_host_get_tls_key_file (SluiceHost *host)
{
  return host->tls_key_file;
}

gboolean
sluice_host_is_stopping (SluiceHost *host)
{
  return g_atomic_int_get (&host->stopping);
}

void
sluice_host_report_listening (SluiceHost *host, const char *transport_name, gboolean tls,
                              const char *address)
{
  char *line = g_strdup_printf ("transport.%s %s %s", transport_name, tls ? "tls" : "plain",
                                address);
  g_ptr_array_add (host->listening, line);
  g_print ("listening %s\n", line);
}

/* --- plugin set-up --- */

static gpointer
parse_plugin_options (SluiceHost *host, const SluicePlugin *plugin, const char *section,
                      const char *const *extra, GError **error)
{
  const SluicePluginDescriptor *d = plugin->desc;
  gpointer options = g_malloc0 (MAX (d->options_size, 1));
  static const SluiceOption empty[] = { SLUICE_OPTION_END };

  if (!sluice_config_parse_section (host->config, section, d->options ? d->options : empty,
                                    extra, options, error))
    {
      if (d->options)
        sluice_options_clear (d->options, options);
      g_free (options);
      return NULL;
    }
  return options;
}

static void
free_plugin_options (const SluicePlugin *plugin, gpointer options)
{
  if (!options)
    return;
  if (plugin && plugin->desc->options)
    sluice_options_clear (plugin->desc->options, options);
  g_free (options);
}

static void
host_auth_free (HostAuth *a)
{
  if (a->self)
    a->vtable->destroy (a->self);
  free_plugin_options (a->plugin, a->options);
  g_free (a->name);
  g_free (a);
}

static void
host_transport_free (HostTransport *t)
{
  if (t->self)
    t->vtable->destroy (t->self);
  free_plugin_options (t->plugin, t->options);
  g_free (t);
}

SluiceHost *
sluice_host_new (SluiceConfig *config, GError **error)
{
  g_autoptr (GPtrArray) owned = g_ptr_array_new ();
  SluiceHost *host = g_new0 (SluiceHost, 1);
  const SluicePlugin *plugin;

  host->config = config;
  host->lock_fd = -1;
  host->data_dir = g_strdup (config->data_dir);
  host->auths = g_ptr_array_new_with_free_func ((GDestroyNotify) host_auth_free);
  host->transports = g_ptr_array_new_with_free_func ((GDestroyNotify) host_transport_free);
  host->listening = g_ptr_array_new_with_free_func (g_free);
  host->streams = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) sluice_stream_unref);
  host->devices = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) sluice_device_free);
  host_watches_init (host);
  g_rw_lock_init (&host->streams_lock);
  g_rw_lock_init (&host->registry_lock);
  g_mutex_init (&host->registry_write_lock);
  g_mutex_init (&host->watch_lock);
  host_metrics_init (host);

  host->loader = sluice_plugin_loader_new ((const char *const *) config->plugin_path);

  /* storage */
  plugin = sluice_plugin_loader_load (host->loader, SLUICE_PLUGIN_KIND_STORAGE,
                                      config->storage_plugin, error);
  if (!plugin)
    {
      g_prefix_error (error, "%s: [storage] plugin: ", config->path);
      goto fail;
    }
  host->storage_plugin = plugin;
  host->storage = plugin->desc->vtable;
  host->storage_options = parse_plugin_options (host, plugin, "storage", storage_extra_keys,
                                                error);
  if (!host->storage_options)
    goto fail;
  if (plugin->desc->owned_sections)
    for (const char *const *o = plugin->desc->owned_sections; *o; o++)
      g_ptr_array_add (owned, (gpointer) *o);

  /* auth chain */
  for (guint i = 0; config->auth_chain && config->auth_chain[i]; i++)
    {
      const char *name = config->auth_chain[i];
      const SluiceConfigAuth *ca = NULL;
      g_autofree char *section = g_strconcat ("auth.", name, NULL);
      HostAuth *a;

      for (guint j = 0; j < config->auths->len; j++)
        if (g_str_equal (((SluiceConfigAuth *) config->auths->pdata[j])->name, name))
          ca = config->auths->pdata[j];
      if (!ca)
        {
          g_set_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_MISSING,
                       "%s: [auth] chain: no section [auth.%s] (value '%s')", config->path,
                       name, name);
          goto fail;
        }
      plugin = sluice_plugin_loader_load (host->loader, SLUICE_PLUGIN_KIND_AUTH, ca->plugin,
                                          error);
      if (!plugin)
        {
          g_prefix_error (error, "%s: [%s] plugin: ", config->path, section);
          goto fail;
        }
      a = g_new0 (HostAuth, 1);
      a->name = g_strdup (name);
      a->plugin = plugin;
      a->vtable = plugin->desc->vtable;
      g_ptr_array_add (host->auths, a);
      a->options = parse_plugin_options (host, plugin, section, auth_extra_keys, error);
      if (!a->options)
        goto fail;
      if (plugin->desc->owned_sections)
        for (const char *const *o = plugin->desc->owned_sections; *o; o++)
          g_ptr_array_add (owned, (gpointer) *o);
    }

  /* transports */
  for (guint i = 0; i < config->transports->len; i++)
    {
      SluiceConfigTransport *ct = config->transports->pdata[i];
      g_autofree char *section = g_strconcat ("transport.", ct->name, NULL);
      HostTransport *t;

      plugin = sluice_plugin_loader_load (host->loader, SLUICE_PLUGIN_KIND_TRANSPORT,
                                          ct->plugin, error);
      if (!plugin)
        {
          g_prefix_error (error, "%s: [%s] plugin: ", config->path, section);
          goto fail;
        }
      t = g_new0 (HostTransport, 1);
      t->config = ct;
      t->plugin = plugin;
      t->vtable = plugin->desc->vtable;
      g_ptr_array_add (host->transports, t);
      t->options = parse_plugin_options (host, plugin, section,
                                         sluice_config_transport_core_keys (), error);
      if (!t->options)
        goto fail;
      if (plugin->desc->owned_sections)
        for (const char *const *o = plugin->desc->owned_sections; *o; o++)
          g_ptr_array_add (owned, (gpointer) *o);
      if ((t->vtable->flags & SLUICE_TRANSPORT_OWNS_LISTENERS) == 0
          && !ct->listen && !ct->tls_listen)
        {
          g_set_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_MISSING,
                       "%s: [%s] listen: a transport needs `listen` or `tls-listen`",
                       config->path, section);
          goto fail;
        }
    }

  g_ptr_array_add (owned, NULL);
  if (!sluice_config_check_sections (config, (const char *const *) owned->pdata, error))
    goto fail;
  return host;

fail:
  sluice_host_free (host);
  return NULL;
}

static gboolean
lock_data_dir (SluiceHost *host, GError **error)
{
  g_autofree char *path = g_build_filename (host->data_dir, "LOCK", NULL);

  host->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (host->lock_fd < 0 || flock (host->lock_fd, LOCK_EX | LOCK_NB) < 0)
    {
      int e = errno;
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                   "data directory %s is in use by another sluiced (%s)", host->data_dir,
                   g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

static gboolean
prepare_tls (SluiceHost *host, GError **error)
{
  gboolean need = FALSE;
  g_autofree char *dir = NULL;

  if (host->config->tls_cert || host->config->tls_key)
    {
      if (!host->config->tls_cert || !host->config->tls_key)
        {
          g_set_error (error, SLUICE_CONFIG_ERROR, SLUICE_CONFIG_ERROR_MISSING,
                       "%s: [hub] tls-cert: tls-cert and tls-key go together",
                       host->config->path);
          return FALSE;
        }
      host->tls_cert_file = g_strdup (host->config->tls_cert);
      host->tls_key_file = g_strdup (host->config->tls_key);
      return TRUE;
    }
  for (guint i = 0; i < host->transports->len; i++)
    {
      HostTransport *t = host->transports->pdata[i];
      if (t->config->tls_listen && !t->config->tls_cert)
        need = TRUE;
    }
  dir = g_build_filename (host->data_dir, "tls", NULL);
  host->tls_cert_file = g_build_filename (dir, "dev-cert.pem", NULL);
  host->tls_key_file = g_build_filename (dir, "dev-key.pem", NULL);
  if (!need || (g_file_test (host->tls_cert_file, G_FILE_TEST_EXISTS)
                && g_file_test (host->tls_key_file, G_FILE_TEST_EXISTS)))
    return TRUE;
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "cannot create %s: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }
  if (!sluice_tls_generate_self_signed (host->config->hostname, host->tls_cert_file,
                                        host->tls_key_file, error))
    return FALSE;
  g_message ("generated a self-signed development certificate for '%s' in %s "
             "(set [hub] tls-cert and tls-key for production)",
             host->config->hostname, host->tls_cert_file);
  return TRUE;
}

/* The quickstart's policy key is public (it is printed in the README): a hub
 * that uses it may only listen on loopback. */
#define DEVELOPMENT_KEY "c2x1aWNlLWRldmVsb3BtZW50LW9ubHkta2V5LTAwMDE="

static gboolean
address_is_loopback (const char *address)
{
  g_autofree char *host = NULL;
  const char *colon;

  if (address[0] == '[')
    {
      const char *end = strchr (address, ']');
      host = end ? g_strndup (address + 1, end - address - 1) : g_strdup (address);
    }
  else
    {
      colon = strrchr (address, ':');
      host = colon ? g_strndup (address, colon - address) : g_strdup (address);
    }
  return g_str_has_prefix (host, "127.") || g_str_equal (host, "::1")
         || g_ascii_strcasecmp (host, "localhost") == 0;
}

static gboolean
check_development_key (SluiceHost *host, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (host->config->keyfile, NULL);
  const char *policy = NULL;

  for (guint i = 0; groups[i] && !policy; i++)
    {
      g_autofree char *k1 = NULL, *k2 = NULL;
      if (!g_str_has_prefix (groups[i], "policy."))
        continue;
      k1 = g_key_file_get_string (host->config->keyfile, groups[i], "primary-key", NULL);
      k2 = g_key_file_get_string (host->config->keyfile, groups[i], "secondary-key", NULL);
      if ((k1 && g_str_equal (g_strstrip (k1), DEVELOPMENT_KEY))
          || (k2 && g_str_equal (g_strstrip (k2), DEVELOPMENT_KEY)))
        policy = groups[i];
    }
  if (!policy)
    return TRUE;
  for (guint i = 0; i < host->transports->len; i++)
    {
      SluiceConfigTransport *ct = ((HostTransport *) host->transports->pdata[i])->config;
      for (int tls = 0; tls < 2; tls++)
        for (char **a = tls ? ct->tls_listen : ct->listen; a && *a; a++)
          if (!address_is_loopback (*a))
            {
              g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                           "%s: [%s] uses the public development key, so the hub may only "
                           "listen on loopback, but [transport.%s] listens on %s: set a key of "
                           "your own (32 random bytes, base64)",
                           host->config->path, policy, ct->name, *a);
              return FALSE;
            }
    }
  return TRUE;
}

static gboolean
retention_tick (gpointer data)
{
  host_retention_run (data);
  return G_SOURCE_CONTINUE;
}

gboolean
sluice_host_start (SluiceHost *host, GError **error)
{
  SluiceConfig *config = host->config;

  if (g_mkdir_with_parents (host->data_dir, 0755) < 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_FAILED,
                   "cannot create data directory %s: %s", host->data_dir, g_strerror (errno));
      return FALSE;
    }
  if (!check_development_key (host, error) || !lock_data_dir (host, error))
    return FALSE;

  /* Storage and its recovery come before anything can connect. */
  host->storage_self = host->storage->open (host, host->storage_options, host->data_dir, error);
  if (!host->storage_self)
    {
      g_prefix_error (error, "storage '%s': ", config->storage_plugin);
      return FALSE;
    }
  if (!host_registry_load (host, error) || !host_streams_open (host, error))
    return FALSE;
  host->writer = host_writer_new (host);

  /* auth instances */
  for (guint i = 0; i < host->auths->len; i++)
    {
      HostAuth *a = host->auths->pdata[i];
      a->self = a->vtable->create (host, a->name, a->options, config, error);
      if (!a->self)
        {
          g_prefix_error (error, "[auth.%s]: ", a->name);
          return FALSE;
        }
    }

  if (!prepare_tls (host, error))
    return FALSE;
  host->io = sluice_io_new (config->workers, error);
  if (!host->io)
    return FALSE;

  for (guint i = 0; i < host->transports->len; i++)
    {
      HostTransport *t = host->transports->pdata[i];
      SluiceConfigTransport *ct = t->config;

      t->tc.instance_name = ct->name;
      t->tc.listen = ct->listen;
      t->tc.tls_listen = ct->tls_listen;
      t->tc.tls_cert = ct->tls_cert ? ct->tls_cert : host->tls_cert_file;
      t->tc.tls_key = ct->tls_cert ? ct->tls_key : host->tls_key_file;
      t->tc.tls_ca = ct->tls_ca;
      t->tc.config = host->config;
      t->self = t->vtable->create (host, &t->tc, t->options, error);
      t->tc.config = NULL;
      if (!t->self)
        {
          g_prefix_error (error, "[transport.%s]: ", ct->name);
          return FALSE;
        }
    }

  /* WebSocket subprotocols reach their transports through transport-https. */
  sluice_host_register_builtin_protocols (host);

  /* Listeners last. */
  for (guint i = 0; i < host->transports->len; i++)
    {
      HostTransport *t = host->transports->pdata[i];
      SluiceConfigTransport *ct = t->config;

      if (!(t->vtable->flags & SLUICE_TRANSPORT_OWNS_LISTENERS))
        for (int tls = 0; tls < 2; tls++)
          {
            char **addrs = tls ? ct->tls_listen : ct->listen;
            for (guint j = 0; addrs && addrs[j]; j++)
              {
                SluiceListenSpec spec = { 0 };
                g_autofree char *bound = NULL;

                spec.transport_name = ct->name;
                spec.vtable = t->vtable;
                spec.transport = t->self;
                spec.tls = tls;
                spec.tls_cert = t->tc.tls_cert;
                spec.tls_key = t->tc.tls_key;
                spec.tls_ca = t->tc.tls_ca;
                spec.max_connections = ct->max_connections;
                if (!sluice_io_listen (host->io, addrs[j], &spec, &bound, error))
                  {
                    g_prefix_error (error, "[transport.%s] %s: ", ct->name,
                                    tls ? "tls-listen" : "listen");
                    return FALSE;
                  }
                sluice_host_report_listening (host, ct->name, tls, bound);
              }
          }
      if (!t->vtable->start (t->self, error))
        {
          g_prefix_error (error, "[transport.%s]: ", ct->name);
          return FALSE;
        }
      t->started = TRUE;
    }

  host->expiry_source = g_timeout_add_seconds (1, host_expiry_tick, host);
  host->retention_source = g_timeout_add_seconds (30, retention_tick, host);
  host->started = TRUE;
  return TRUE;
}

void
sluice_host_stop (SluiceHost *host)
{
  if (!g_atomic_int_compare_and_exchange (&host->stopping, FALSE, TRUE))
    return;
  g_clear_handle_id (&host->expiry_source, g_source_remove);
  g_clear_handle_id (&host->retention_source, g_source_remove);

  /* 1. Stop accepting. */
  if (host->io)
    sluice_io_close_listeners (host->io);
  /* 2. Transports drain their own work. */
  for (guint i = 0; i < host->transports->len; i++)
    {
      HostTransport *t = host->transports->pdata[i];
      if (t->started)
        t->vtable->stop (t->self);
      t->started = FALSE;
    }
  /* 3. Every queued append is written and synced, and acknowledged. */
  if (host->writer)
    host_writer_stop (host->writer);
  /* 4. Give the acknowledgements time to reach the clients, then close. */
  if (host->io)
    sluice_io_close_connections (host->io, NULL, 5000);
  if (host->pool)
    {
      g_thread_pool_free (host->pool, FALSE, TRUE);
      host->pool = NULL;
    }
}

void
sluice_host_free (SluiceHost *host)
{
  if (!host)
    return;
  if (host->started)
    sluice_host_stop (host);
  /* No connection may outlive its transport: close them all (a start that
   * failed half-way has no stop), then destroy the transports while the
   * workers still run (their instances may own worker sources), then the
   * workers. */
  if (host->io)
    {
      sluice_io_close_listeners (host->io);
      sluice_io_close_connections (host->io, NULL, 1000);
    }
  g_ptr_array_set_size (host->transports, 0);
  g_clear_pointer (&host->io, sluice_io_free);
  g_clear_pointer (&host->writer, host_writer_free);
  if (host->pool)
    g_thread_pool_free (host->pool, FALSE, TRUE);
  g_ptr_array_set_size (host->auths, 0);
  host_streams_close (host);
  if (host->storage_self)
    host->storage->close (host->storage_self);
  free_plugin_options (host->storage_plugin, host->storage_options);
  host_registry_clear (host);
  g_hash_table_unref (host->streams);
  g_hash_table_unref (host->devices);
  g_hash_table_unref (host->watches);
  g_ptr_array_unref (host->auths);
  g_ptr_array_unref (host->transports);
  g_ptr_array_unref (host->listening);
  host_metrics_clear (host);
  g_rw_lock_clear (&host->streams_lock);
  g_rw_lock_clear (&host->registry_lock);
  g_mutex_clear (&host->registry_write_lock);
  g_mutex_clear (&host->watch_lock);
  if (host->loader)
    sluice_plugin_loader_free (host->loader);
  if (host->lock_fd >= 0)
    close (host->lock_fd);
  g_free (host->tls_cert_file);
  g_free (host->tls_key_file);
  g_free (host->data_dir);
  sluice_config_free (host->config);
  g_free (host);
}

gboolean
sluice_host_reload (SluiceHost *host, GError **error)
{
  g_autoptr (SluiceConfig) fresh = sluice_config_load (host->config->path, error);

  if (!fresh)
    return FALSE;
  for (guint i = 0; i < host->auths->len; i++)
    {
      HostAuth *a = host->auths->pdata[i];
      g_auto (GStrv) revoked = NULL;

      if (!a->vtable->reload)
        continue;
      revoked = a->vtable->reload (a->self, fresh, error);
      if (!revoked && error && *error)
        {
          g_prefix_error (error, "[auth.%s] reload: ", a->name);
          return FALSE;
        }
      for (guint j = 0; revoked && revoked[j]; j++)
        host_revoke (host, revoked[j], "credentials changed by a configuration reload");
    }
  for (guint i = 0; i < host->transports->len; i++)
    {
      HostTransport *t = host->transports->pdata[i];
      g_autoptr (GError) terr = NULL;

      if (t->plugin->desc->vtable_size < G_STRUCT_OFFSET (SluiceTransportVTable, reload)
                                         + sizeof (gpointer)
          || t->vtable->reload == NULL || !t->started)
        continue;
      if (!t->vtable->reload (t->self, fresh, &terr))
        g_warning ("[transport.%s] reload failed, it keeps its previous state: %s",
                   t->tc.instance_name, terr->message);
    }
  g_message ("policies reloaded from %s (other sections take effect at the next start)",
             host->config->path);
  return TRUE;
}

/* --- appends --- */

typedef struct {
  SluiceAppendFunc done;
  gpointer user_data;
  GError *error;
} AppendError;

static gboolean
append_error_deliver (gpointer data)
{
  AppendError *e = data;

  if (e->done)
    e->done (NULL, e->error, e->user_data);
  g_error_free (e->error);
  g_free (e);
  return G_SOURCE_REMOVE;
}

static void
append_fail (SluiceHost *host, SluiceAppendFunc done, gpointer user_data, GError *error)
{
  AppendError *e = g_new0 (AppendError, 1);

  sluice_counter_add (host->m_append_errors, 1);
  e->done = done;
  e->user_data = user_data;
  e->error = error;
  host_invoke (g_main_context_get_thread_default (), append_error_deliver, e);
}

void
sluice_host_append (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                    gint32 partition, const guint8 *key, gsize key_len, GBytes *batch,
                    guint flags, SluiceAppendFunc done, gpointer user_data)
{
  GError *error = NULL;
  SluiceStream *s = NULL;
  SluicePartition *p;
  gint32 records = 0;
  gint64 max_ts = 0;
  gsize len;
  const guint8 *data = g_bytes_get_data (batch, &len);

  if (g_atomic_int_get (&host->stopping) || !host->writer)
    error = g_error_new_literal (SLUICE_ERROR, SLUICE_ERROR_SHUTTING_DOWN,
                                 "the hub is shutting down");
  else if (!sluice_host_authorize (host, principal, SLUICE_ACTION_SEND, stream, &error)
           || !(s = host_stream_lookup (host, stream, &error)))
    {
      /* error set */
    }
  else if (len > s->info.max_message + SLUICE_BATCH_HEADER_SIZE + 64)
    error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_TOO_LARGE,
                         "a batch of %" G_GSIZE_FORMAT " bytes is over stream '%s' "
                         "max-message (%" G_GUINT64_FORMAT " bytes)",
                         len, stream, s->info.max_message);
  else
    sluice_batch_validate (data, len, &records, &max_ts, &error);
  if (error)
    {
      if (s)
        sluice_stream_unref (s);
      g_bytes_unref (batch);
      append_fail (host, done, user_data, error);
      /* A refused last append still ends its run. */
      if (!(flags & SLUICE_APPEND_MORE) && host->writer)
        host_writer_release_held (host->writer);
      return;
    }

  if (partition < 0)
    partition = key ? sluice_partition_for_key (key, key_len, s->n_partitions)
                    : (gint32) ((guint) g_atomic_int_add (&s->round_robin, 1)
                                % (guint) s->n_partitions);
  p = host_stream_partition (s, partition, &error);
  if (!p)
    {
      sluice_stream_unref (s);
      g_bytes_unref (batch);
      append_fail (host, done, user_data, error);
      /* A refused last append still ends its run. */
      if (!(flags & SLUICE_APPEND_MORE) && host->writer)
        host_writer_release_held (host->writer);
      return;
    }
  sluice_counter_add (host->m_append_records, records);
  host_writer_submit_append (host->writer, p, batch, records, flags, done, user_data);
  sluice_stream_unref (s);
}

void
sluice_host_publish (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                     gint32 partition, const char *key, const char *const *headers,
                     GBytes *body, SluiceAppendFunc done, gpointer user_data)
{
  gint64 now = host_now_ms ();
  SluiceBatchBuilder *b = sluice_batch_builder_new (now);
  gsize len = 0;
  const guint8 *data = body ? g_bytes_get_data (body, &len) : NULL;
  GBytes *batch;

  sluice_batch_builder_add (b, (const guint8 *) key, key ? (gssize) strlen (key) : 0,
                            data ? data : (const guint8 *) "", (gssize) len, headers, now);
  batch = sluice_batch_builder_finish (b);
  sluice_host_append (host, principal, stream, partition, (const guint8 *) key,
                      key ? strlen (key) : 0, batch, 0, done, user_data);
}
