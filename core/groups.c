/* Sluice core — consumer-group offsets, shared by every transport.
 *
 * Kept in the storage KV as `groups/{stream}/{escaped group}/{partition}` →
 * `{"offset":N,"metadata":"..."}`, so a group committed over Kafka is the same
 * group over HTTPS and AMQP. Commits are durable when acknowledged.
 * SPDX-License-Identifier: Apache-2.0 */
#include "host-internal.h"

#include <json-glib/json-glib.h>

static char *
group_prefix (const char *stream, const char *group)
{
  g_autofree char *escaped = g_uri_escape_string (group, NULL, FALSE);
  return g_strdup_printf ("groups/%s/%s/", stream, escaped);
}

typedef struct {
  SluiceHost *host;
  char *stream;
  char *group;
  GArray *offsets;                     /* SluiceGroupOffset */
  gint32 partitions;
  SluiceDoneFunc done;
  SluiceOffsetsFunc fetched;
  gpointer user_data;
  GError *error;
} GroupJob;

static void
clear_offset (gpointer data)
{
  SluiceGroupOffset *o = data;
  g_free (o->metadata);
}

static void
group_job_free (GroupJob *job)
{
  g_free (job->stream);
  g_free (job->group);
  if (job->offsets)
    g_array_unref (job->offsets);
  g_clear_error (&job->error);
  g_free (job);
}

static void
commit_work (gpointer data)
{
  GroupJob *job = data;
  SluiceHost *host = job->host;
  g_autofree char *prefix = group_prefix (job->stream, job->group);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr (GArray) ops = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));

  for (guint i = 0; i < job->offsets->len; i++)
    {
      SluiceGroupOffset *o = &g_array_index (job->offsets, SluiceGroupOffset, i);
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      g_autoptr (JsonNode) root = NULL;
      char *json;
      SluiceKvOp op = { SLUICE_KV_PUT, NULL, NULL };

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "offset");
      json_builder_add_int_value (b, o->offset);
      if (o->metadata)
        {
          json_builder_set_member_name (b, "metadata");
          json_builder_add_string_value (b, o->metadata);
        }
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      json_generator_set_root (gen, root);
      json = json_generator_to_data (gen, NULL);
      op.key = g_strdup_printf ("%s%d", prefix, o->partition);
      op.value = g_bytes_new_take (json, strlen (json));
      g_ptr_array_add (keys, (char *) op.key);
      g_ptr_array_add (values, op.value);
      g_array_append_val (ops, op);
    }
  host->storage->kv_commit (host->storage_self, (SluiceKvOp *) ops->data, ops->len,
                            &job->error);
}

static void
commit_done (gpointer data)
{
  GroupJob *job = data;

  if (job->done)
    job->done (job->error, job->user_data);
  group_job_free (job);
}

typedef struct {
  SluiceDoneFunc done;
  gpointer user_data;
  GError *error;
} DoneError;

static gboolean
done_error_deliver (gpointer data)
{
  DoneError *e = data;

  if (e->done)
    e->done (e->error, e->user_data);
  g_error_free (e->error);
  g_free (e);
  return G_SOURCE_REMOVE;
}

static void
fail_later (SluiceDoneFunc done, gpointer user_data, GError *error)
{
  DoneError *e = g_new0 (DoneError, 1);
  e->done = done;
  e->user_data = user_data;
  e->error = error;
  host_invoke (g_main_context_get_thread_default (), done_error_deliver, e);
}

void
sluice_host_commit_offsets (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                            const char *group, const SluiceGroupOffset *offsets, guint n,
                            SluiceDoneFunc done, gpointer user_data)
{
  GError *error = NULL;
  SluiceStream *s;
  GroupJob *job;

  if (!sluice_host_authorize (host, principal, SLUICE_ACTION_LISTEN, stream, &error)
      || !(s = host_stream_lookup (host, stream, &error)))
    {
      fail_later (done, user_data, error);
      return;
    }
  if (!group || !*group || strlen (group) > 255)
    {
      sluice_stream_unref (s);
      fail_later (done, user_data,
                  g_error_new_literal (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                                       "a consumer group name is 1 to 255 characters"));
      return;
    }
  for (guint i = 0; i < n; i++)
    if (offsets[i].partition < 0 || offsets[i].partition >= s->n_partitions
        || offsets[i].offset < 0)
      {
        error = g_error_new (SLUICE_ERROR, SLUICE_ERROR_INVALID,
                             "bad commit for stream '%s': partition %d offset %" G_GINT64_FORMAT,
                             stream, offsets[i].partition, offsets[i].offset);
        sluice_stream_unref (s);
        fail_later (done, user_data, error);
        return;
      }
  sluice_stream_unref (s);

  job = g_new0 (GroupJob, 1);
  job->host = host;
  job->stream = g_strdup (stream);
  job->group = g_strdup (group);
  job->offsets = g_array_sized_new (FALSE, TRUE, sizeof (SluiceGroupOffset), n);
  g_array_set_clear_func (job->offsets, clear_offset);
  for (guint i = 0; i < n; i++)
    {
      SluiceGroupOffset o = offsets[i];
      o.metadata = g_strdup (offsets[i].metadata);
      g_array_append_val (job->offsets, o);
    }
  job->done = done;
  job->user_data = user_data;
  host_job_run (host, commit_work, commit_done, job);
}

static void
fetch_work (gpointer data)
{
  GroupJob *job = data;
  SluiceHost *host = job->host;
  g_autofree char *prefix = group_prefix (job->stream, job->group);
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_kv_pair_free);

  job->offsets = g_array_new (FALSE, TRUE, sizeof (SluiceGroupOffset));
  g_array_set_clear_func (job->offsets, clear_offset);
  for (gint32 i = 0; i < job->partitions; i++)
    {
      SluiceGroupOffset o = { i, -1, NULL };
      g_array_append_val (job->offsets, o);
    }
  if (!host->storage->kv_scan (host->storage_self, prefix, pairs, &job->error))
    return;
  for (guint i = 0; i < pairs->len; i++)
    {
      SluiceKvPair *kv = pairs->pdata[i];
      const char *tail = kv->key + strlen (prefix);
      char *end = NULL;
      gint64 part = g_ascii_strtoll (tail, &end, 10);
      g_autoptr (JsonParser) parser = json_parser_new ();
      gsize len;
      const char *json = g_bytes_get_data (kv->value, &len);
      JsonObject *obj;
      SluiceGroupOffset *o;

      if (!end || *end || part < 0 || part >= job->partitions)
        continue;
      if (!json_parser_load_from_data (parser, json, len, NULL)
          || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          g_warning ("consumer group key '%s' holds unreadable data; ignored", kv->key);
          continue;
        }
      obj = json_node_get_object (json_parser_get_root (parser));
      o = &g_array_index (job->offsets, SluiceGroupOffset, part);
      o->offset = json_object_get_int_member_with_default (obj, "offset", -1);
      if (json_object_has_member (obj, "metadata"))
        o->metadata = g_strdup (json_object_get_string_member (obj, "metadata"));
    }
}

static void
fetch_done (gpointer data)
{
  GroupJob *job = data;

  if (job->error)
    job->fetched (NULL, job->error, job->user_data);
  else
    job->fetched (g_steal_pointer (&job->offsets), NULL, job->user_data);
  group_job_free (job);
}

typedef struct {
  SluiceOffsetsFunc done;
  gpointer user_data;
  GError *error;
} FetchError;

static gboolean
fetch_error_deliver (gpointer data)
{
  FetchError *e = data;

  e->done (NULL, e->error, e->user_data);
  g_error_free (e->error);
  g_free (e);
  return G_SOURCE_REMOVE;
}

void
sluice_host_fetch_offsets (SluiceHost *host, SluicePrincipal *principal, const char *stream,
                           const char *group, SluiceOffsetsFunc done, gpointer user_data)
{
  GError *error = NULL;
  SluiceStream *s;
  GroupJob *job;

  if (!sluice_host_authorize (host, principal, SLUICE_ACTION_LISTEN, stream, &error)
      || !(s = host_stream_lookup (host, stream, &error)))
    {
      FetchError *e = g_new0 (FetchError, 1);
      e->done = done;
      e->user_data = user_data;
      e->error = error;
      host_invoke (g_main_context_get_thread_default (), fetch_error_deliver, e);
      return;
    }
  job = g_new0 (GroupJob, 1);
  job->host = host;
  job->stream = g_strdup (stream);
  job->group = g_strdup (group ? group : "");
  job->partitions = s->n_partitions;
  job->fetched = done;
  job->user_data = user_data;
  sluice_stream_unref (s);
  host_job_run (host, fetch_work, fetch_done, job);
}
