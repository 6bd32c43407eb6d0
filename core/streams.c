/* Sluice core — streams: partitions, bounds, the stream table and retention.
 *
 * A stream is core-owned: its settings come from `[stream.*]` sections and
 * from streams created at run time (kept in the KV under `streams/NAME`). A
 * section is applied at every start and wins over stored settings; the
 * difference is logged. Partitions can grow, never shrink.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#include <json-glib/json-glib.h>

#define STREAM_KV_PREFIX "streams/"

static SluicePartition *
partition_new (SluiceStream *stream, gint32 id)
{
  SluicePartition *p = g_new0 (SluicePartition, 1);
  p->stream = stream;
  p->id = id;
  p->log.stream = stream->name;
  p->log.partition = id;
  g_mutex_init (&p->lock);
  return p;
}

static void
partition_free (SluicePartition *p)
{
  g_warn_if_fail (p->waiters == NULL);
  g_mutex_clear (&p->lock);
  g_free (p);
}

SluiceStream *
sluice_stream_ref (SluiceStream *stream)
{
  g_atomic_int_inc (&stream->refcount);
  return stream;
}

void
sluice_stream_unref (SluiceStream *stream)
{
  if (!stream || !g_atomic_int_dec_and_test (&stream->refcount))
    return;
  for (gint32 i = 0; stream->partitions && i < stream->n_partitions; i++)
    if (stream->partitions[i])
      partition_free (stream->partitions[i]);
  g_free (stream->partitions);
  g_free (stream->name);
  g_free (stream);
}

SluiceStream *
host_stream_lookup (SluiceHost *host, const char *name, GError **error)
{
  SluiceStream *stream;

  g_rw_lock_reader_lock (&host->streams_lock);
  stream = g_hash_table_lookup (host->streams, name);
  if (stream)
    sluice_stream_ref (stream);
  g_rw_lock_reader_unlock (&host->streams_lock);
  if (!stream)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND, "stream '%s' does not exist",
                 name);
  return stream;
}

SluicePartition *
host_stream_partition (SluiceStream *stream, gint32 partition, GError **error)
{
  if (partition < 0 || partition >= stream->n_partitions)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                   "stream '%s' has no partition %d (it has %d)", stream->name, partition,
                   stream->n_partitions);
      return NULL;
    }
  return stream->partitions[partition];
}

static char *
stream_to_json (const SluiceStream *s)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "partitions");
  json_builder_add_int_value (b, s->n_partitions);
  json_builder_set_member_name (b, "durability");
  json_builder_add_int_value (b, s->info.durability);
  json_builder_set_member_name (b, "retention-time-ms");
  json_builder_add_int_value (b, s->info.retention_time_ms);
  json_builder_set_member_name (b, "retention-size");
  json_builder_add_int_value (b, (gint64) s->info.retention_size);
  json_builder_set_member_name (b, "interval-ms");
  json_builder_add_int_value (b, s->interval_ms);
  json_builder_set_member_name (b, "max-message");
  json_builder_add_int_value (b, (gint64) s->info.max_message);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static gboolean
stream_from_json (SluiceStream *s, GBytes *bytes)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  if (!json_parser_load_from_data (parser, data, len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return FALSE;
  o = json_node_get_object (json_parser_get_root (parser));
  s->n_partitions = json_object_get_int_member_with_default (o, "partitions", 4);
  s->info.durability = json_object_get_int_member_with_default (o, "durability",
                                                                SLUICE_DURABILITY_BATCH);
  s->info.retention_time_ms = json_object_get_int_member_with_default (o, "retention-time-ms", 0);
  s->info.retention_size = json_object_get_int_member_with_default (o, "retention-size", 0);
  s->interval_ms = json_object_get_int_member_with_default (o, "interval-ms", 200);
  s->info.max_message = json_object_get_int_member_with_default (o, "max-message", 1 << 20);
  return s->n_partitions > 0;
}

static SluiceStream *
stream_new (const char *name)
{
  SluiceStream *s = g_new0 (SluiceStream, 1);
  s->name = g_strdup (name);
  s->refcount = 1;
  s->n_partitions = 4;
  s->info.durability = SLUICE_DURABILITY_BATCH;
  s->info.retention_time_ms = 7 * 24 * 3600 * 1000LL;
  s->interval_ms = 200;
  s->info.max_message = 1 << 20;
  return s;
}

static void
stream_apply_config (SluiceStream *s, const SluiceConfigStream *c)
{
  s->n_partitions = c->partitions;
  s->info.durability = c->durability;
  s->info.retention_time_ms = c->retention_time_ms;
  s->info.retention_size = c->retention_size;
  s->interval_ms = c->interval_ms;
  s->info.max_message = c->max_message;
}

/* Create logs, read bounds. Runs at start-up, before any writer exists. */
static gboolean
stream_open_partitions (SluiceHost *host, SluiceStream *s, GError **error)
{
  s->info.partitions = s->n_partitions;
  s->partitions = g_new0 (SluicePartition *, s->n_partitions);
  for (gint32 i = 0; i < s->n_partitions; i++)
    {
      SluicePartition *p = partition_new (s, i);
      gint64 first = 0, next = 0;

      s->partitions[i] = p;
      if (!host->storage->log_create (host->storage_self, &p->log, error)
          || !host->storage->log_bounds (host->storage_self, &p->log, &first, &next, error))
        {
          g_prefix_error (error, "stream '%s' partition %d: ", s->name, i);
          return FALSE;
        }
      p->first = first;
      p->next = next;
      p->visible = next;
    }
  return TRUE;
}

gboolean
host_streams_open (SluiceHost *host, GError **error)
{
  g_autoptr (GPtrArray) stored = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);
  g_autoptr (GHashTable) stored_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) to_store = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) ops = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));
  g_autoptr (GPtrArray) values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  gboolean have_events = FALSE;

  if (!host->storage->kv_scan (host->storage_self, STREAM_KV_PREFIX, stored, error))
    return FALSE;
  for (guint i = 0; i < stored->len; i++)
    {
      SluiceKvPair *kv = stored->pdata[i];
      g_hash_table_insert (stored_by_name, kv->key + strlen (STREAM_KV_PREFIX), kv->value);
    }

  /* Configured streams win over stored settings. */
  for (guint i = 0; i < host->config->streams->len; i++)
    {
      const SluiceConfigStream *c = host->config->streams->pdata[i];
      SluiceStream *s = stream_new (c->name);
      GBytes *old = g_hash_table_lookup (stored_by_name, c->name);

      stream_apply_config (s, c);
      if (old)
        {
          SluiceStream *prev = stream_new (c->name);
          if (stream_from_json (prev, old))
            {
              if (prev->n_partitions > s->n_partitions)
                {
                  g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                               "%s: [stream.%s] partitions: streams can grow, never shrink "
                               "(stored %d, configured %d)",
                               host->config->path, c->name, prev->n_partitions,
                               s->n_partitions);
                  sluice_stream_unref (prev);
                  sluice_stream_unref (s);
                  return FALSE;
                }
              g_autofree char *a = stream_to_json (prev);
              g_autofree char *b = stream_to_json (s);
              if (g_strcmp0 (a, b) != 0)
                g_message ("stream '%s': configuration %s replaces stored settings %s",
                           c->name, b, a);
            }
          sluice_stream_unref (prev);
          g_hash_table_remove (stored_by_name, c->name);
        }
      if (g_str_equal (c->name, "events"))
        have_events = TRUE;
      g_hash_table_insert (host->streams, s->name, s);
      g_ptr_array_add (to_store, g_strdup (s->name));
    }

  /* The built-in device-to-cloud stream exists even when not configured. */
  if (!have_events && !g_hash_table_contains (stored_by_name, "events"))
    {
      SluiceStream *s = stream_new ("events");
      g_hash_table_insert (host->streams, s->name, s);
      g_ptr_array_add (to_store, g_strdup (s->name));
    }

  /* Streams created at run time. */
  {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, stored_by_name);
    while (g_hash_table_iter_next (&it, &k, &v))
      {
        SluiceStream *s = stream_new (k);
        if (!stream_from_json (s, v))
          {
            g_warning ("stream '%s': stored settings are unreadable; using defaults",
                       (char *) k);
            g_ptr_array_add (to_store, g_strdup (s->name));
          }
        g_hash_table_insert (host->streams, s->name, s);
      }
  }

  for (guint i = 0; i < to_store->len; i++)
    {
      SluiceStream *s = g_hash_table_lookup (host->streams, to_store->pdata[i]);
      char *json = stream_to_json (s);
      SluiceKvOp op = { SLUICE_KV_PUT, NULL, NULL };
      GBytes *val = g_bytes_new_take (json, strlen (json));
      char *key = g_strconcat (STREAM_KV_PREFIX, s->name, NULL);
      g_ptr_array_add (values, val);
      g_ptr_array_add (keys, key); /* kept alive until commit */
      op.key = key;
      op.value = val;
      g_array_append_val (ops, op);
    }
  if (ops->len > 0
      && !host->storage->kv_commit (host->storage_self, (SluiceKvOp *) ops->data, ops->len,
                                    error))
    return FALSE;

  {
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init (&it, host->streams);
    while (g_hash_table_iter_next (&it, NULL, &v))
      if (!stream_open_partitions (host, v, error))
        return FALSE;
  }
  return TRUE;
}

SluiceStream *
host_stream_new (const char *name)
{
  return stream_new (name);
}

char *
host_stream_to_json (const SluiceStream *stream)
{
  return stream_to_json (stream);
}

gboolean
host_stream_open_partitions (SluiceHost *host, SluiceStream *stream, GError **error)
{
  return stream_open_partitions (host, stream, error);
}

void
host_streams_close (SluiceHost *host)
{
  g_rw_lock_writer_lock (&host->streams_lock);
  g_hash_table_remove_all (host->streams);
  g_rw_lock_writer_unlock (&host->streams_lock);
}

void
host_partition_set_first (SluicePartition *p, gint64 first)
{
  g_mutex_lock (&p->lock);
  if (first > p->first)
    p->first = first;
  g_mutex_unlock (&p->lock);
}

/* --- SDK: stream information --- */

gboolean
sluice_host_stream_info (SluiceHost *host, const char *name, SluiceStreamInfo *info,
                         GError **error)
{
  g_autoptr (GError) local = NULL;
  SluiceStream *s = host_stream_lookup (host, name, error);

  if (!s)
    return FALSE;
  *info = s->info;
  info->partitions = s->n_partitions;
  sluice_stream_unref (s);
  return TRUE;
}

static int
compare_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char **) a, *(char **) b);
}

char **
sluice_host_list_streams (SluiceHost *host)
{
  GPtrArray *names = g_ptr_array_new ();
  GHashTableIter it;
  gpointer k;

  g_rw_lock_reader_lock (&host->streams_lock);
  g_hash_table_iter_init (&it, host->streams);
  while (g_hash_table_iter_next (&it, &k, NULL))
    g_ptr_array_add (names, g_strdup (k));
  g_rw_lock_reader_unlock (&host->streams_lock);
  g_ptr_array_sort (names, compare_str);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}

gboolean
sluice_host_stream_bounds (SluiceHost *host, const char *stream, gint32 partition,
                           gint64 *first, gint64 *next, GError **error)
{
  SluiceStream *s = host_stream_lookup (host, stream, error);
  SluicePartition *p;

  if (!s)
    return FALSE;
  p = host_stream_partition (s, partition, error);
  if (p)
    {
      g_mutex_lock (&p->lock);
      if (first)
        *first = p->first;
      if (next)
        *next = p->visible;
      g_mutex_unlock (&p->lock);
    }
  sluice_stream_unref (s);
  return p != NULL;
}

/* --- retention: runs on the main thread, trims on the writer thread --- */

void
sluice_host_run_retention (SluiceHost *host)
{
  host_retention_run (host);
}

void
host_retention_run (SluiceHost *host)
{
  g_autoptr (GPtrArray) streams = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_stream_unref);
  GHashTableIter it;
  gpointer v;
  gint64 now = host_now_ms ();

  g_rw_lock_reader_lock (&host->streams_lock);
  g_hash_table_iter_init (&it, host->streams);
  while (g_hash_table_iter_next (&it, NULL, &v))
    g_ptr_array_add (streams, sluice_stream_ref (v));
  g_rw_lock_reader_unlock (&host->streams_lock);

  for (guint i = 0; i < streams->len; i++)
    {
      SluiceStream *s = streams->pdata[i];
      gint64 older_than = s->info.retention_time_ms > 0 ? now - s->info.retention_time_ms : 0;

      if (older_than == 0 && s->info.retention_size == 0)
        continue;
      for (gint32 p = 0; p < s->n_partitions; p++)
        host_writer_submit_trim (host->writer, s->partitions[p], G_MAXINT64, older_than,
                                 s->info.retention_size);
    }
}

void
sluice_kv_pair_free (SluiceKvPair *pair)
{
  if (!pair)
    return;
  g_free (pair->key);
  g_clear_pointer (&pair->value, g_bytes_unref);
  g_free (pair);
}
