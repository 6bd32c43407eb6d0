/* sluice-dump — print every record of a stream, straight from storage.
 *
 *   sluice-dump --config FILE [--data-dir DIR] --stream NAME
 *
 * Opens the data directory with the storage plugin the config names (through
 * the core's plugin loader and the storage vtable) and prints one JSON object
 * per record, partitions in order, offsets ascending:
 *   {"partition":P,"offset":O,"key":..,"headers":{..},"body":..,"timestamp":T}
 * key and body are strings when they are valid UTF-8 (null when absent),
 * otherwise base64 with "keyEncoding" / "bodyEncoding" set to "base64".
 * A test tool: run it only while no sluiced uses that data directory.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"
#include "config-private.h"
#include "plugin-loader-private.h"

#include <stdio.h>
#include <string.h>
#include <json-glib/json-glib.h>

#define DUMP_READ_BYTES (1 << 20)

typedef struct {
  const SluiceStorageVTable *vtable;
  gpointer storage;
} Dump;

static void
dump_add_bytes (JsonBuilder *builder, const char *member, const char *encoding_member,
                const guint8 *data, gsize len)
{
  json_builder_set_member_name (builder, member);
  if (data == NULL)
    json_builder_add_null_value (builder);
  else if (g_utf8_validate ((const char *) data, (gssize) len, NULL)
           && memchr (data, '\0', len) == NULL)
    {
      g_autofree char *text = g_strndup ((const char *) data, len);
      json_builder_add_string_value (builder, text);
    }
  else
    {
      g_autofree char *b64 = g_base64_encode (data, len);
      json_builder_add_string_value (builder, b64);
      json_builder_set_member_name (builder, encoding_member);
      json_builder_add_string_value (builder, "base64");
    }
}

static void
dump_print_record (gint32 partition, const SluiceRecordView *record)
{
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "partition");
  json_builder_add_int_value (builder, partition);
  json_builder_set_member_name (builder, "offset");
  json_builder_add_int_value (builder, record->offset);
  dump_add_bytes (builder, "key", "keyEncoding", record->key, record->key_len);
  json_builder_set_member_name (builder, "headers");
  json_builder_begin_object (builder);
  for (guint i = 0; i < record->n_headers; i++)
    {
      const SluiceHeaderView *h = &record->headers[i];
      g_autofree char *name = g_strndup ((const char *) h->name, h->name_len);
      g_autofree char *value = NULL;

      json_builder_set_member_name (builder, name);
      if (h->value == NULL)
        {
          json_builder_add_null_value (builder);
          continue;
        }
      if (g_utf8_validate ((const char *) h->value, (gssize) h->value_len, NULL))
        value = g_strndup ((const char *) h->value, h->value_len);
      else
        value = g_base64_encode (h->value, h->value_len);
      json_builder_add_string_value (builder, value);
    }
  json_builder_end_object (builder);
  dump_add_bytes (builder, "body", "bodyEncoding", record->value, record->value_len);
  json_builder_set_member_name (builder, "timestamp");
  json_builder_add_int_value (builder, record->timestamp);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  text = json_to_string (root, FALSE);
  fputs (text, stdout);
  fputc ('\n', stdout);
}

static gboolean
dump_partition (Dump *dump, const char *stream, gint32 partition, GError **error)
{
  SluiceLogId log = { stream, partition };
  gint64 first = 0, next = 0, offset;

  if (!dump->vtable->log_bounds (dump->storage, &log, &first, &next, error))
    return FALSE;

  offset = first;
  while (offset < next)
    {
      g_autoptr (GPtrArray) batches = g_ptr_array_new_with_free_func ((GDestroyNotify) sluice_batch_free);
      gint64 progress = offset;

      if (!dump->vtable->log_read (dump->storage, &log, offset, DUMP_READ_BYTES, batches, error))
        return FALSE;
      for (guint i = 0; i < batches->len; i++)
        {
          SluiceBatch *batch = g_ptr_array_index (batches, i);
          g_autoptr (SluiceBatchReader) reader = NULL;
          SluiceRecordView record;
          g_autoptr (GError) local_error = NULL;

          reader = sluice_batch_reader_new (batch->data, error);
          if (reader == NULL)
            return FALSE;
          while (sluice_batch_reader_next (reader, &record, &local_error))
            {
              /* The first batch may start before the offset asked for. */
              if (record.offset >= offset)
                dump_print_record (partition, &record);
            }
          if (local_error != NULL)
            {
              g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                          "%s/%d batch at %" G_GINT64_FORMAT ": ", stream,
                                          partition, batch->base_offset);
              return FALSE;
            }
          progress = MAX (progress, batch->base_offset + batch->record_count);
        }
      if (progress <= offset)
        {
          g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_CORRUPT,
                       "%s/%d: no batch at offset %" G_GINT64_FORMAT " below next offset %"
                       G_GINT64_FORMAT, stream, partition, offset, next);
          return FALSE;
        }
      offset = progress;
    }
  return TRUE;
}

static int
compare_gint32 (gconstpointer a, gconstpointer b)
{
  gint32 x = *(const gint32 *) a, y = *(const gint32 *) b;
  return (x > y) - (x < y);
}

static gboolean
dump_stream (Dump *dump, const char *stream, GError **error)
{
  g_autoptr (GPtrArray) streams = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) partitions = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) mine = g_array_new (FALSE, FALSE, sizeof (gint32));

  if (!dump->vtable->log_list (dump->storage, streams, partitions, error))
    return FALSE;
  for (guint i = 0; i < streams->len; i++)
    if (g_strcmp0 (g_ptr_array_index (streams, i), stream) == 0)
      g_array_append_val (mine, g_array_index (partitions, gint32, i));
  if (mine->len == 0)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_NOT_FOUND,
                   "stream '%s' has no partition logs in this data directory", stream);
      return FALSE;
    }
  g_array_sort (mine, compare_gint32);
  for (guint i = 0; i < mine->len; i++)
    if (!dump_partition (dump, stream, g_array_index (mine, gint32, i), error))
      return FALSE;
  return TRUE;
}

static gboolean
run (const char *config_path, const char *data_dir, const char *stream, GError **error)
{
  g_autoptr (SluiceConfig) config = NULL;
  SluicePluginLoader *loader;
  const SluicePlugin *plugin;
  const char *const extra_keys[] = { "plugin", NULL };
  g_autofree guint8 *options = NULL;
  const SluiceOption *table;
  Dump dump = { 0 };
  gboolean ok;

  config = sluice_config_load (config_path, error);
  if (config == NULL)
    return FALSE;
  if (data_dir == NULL)
    data_dir = config->data_dir;
  if (!g_file_test (data_dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no data directory %s", data_dir);
      return FALSE;
    }

  loader = sluice_plugin_loader_new ((const char *const *) config->plugin_path);
  plugin = sluice_plugin_loader_load (loader, SLUICE_PLUGIN_KIND_STORAGE,
                                      config->storage_plugin, error);
  if (plugin == NULL)
    {
      sluice_plugin_loader_free (loader);
      return FALSE;
    }
  dump.vtable = plugin->desc->vtable;
  table = plugin->desc->options;
  options = g_malloc0 (MAX (plugin->desc->options_size, 1));
  if (table != NULL
      && !sluice_config_parse_section (config, "storage", table, extra_keys, options, error))
    {
      sluice_plugin_loader_free (loader);
      return FALSE;
    }

  /* No host: the dump needs nothing of it, and storage must not depend on a
   * running hub to read its own files. */
  dump.storage = dump.vtable->open (NULL, options, data_dir, error);
  ok = dump.storage != NULL && dump_stream (&dump, stream, error);
  if (dump.storage != NULL)
    dump.vtable->close (dump.storage);
  fflush (stdout);
  if (table != NULL)
    sluice_options_clear (table, options);
  sluice_plugin_loader_free (loader);
  return ok;
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *stream = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) context = NULL;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "hub configuration", "FILE" },
    { "data-dir", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir, "data directory (default: the config's)", "DIR" },
    { "stream", 's', 0, G_OPTION_ARG_STRING, &stream, "stream to print", "NAME" },
    G_OPTION_ENTRY_NULL
  };

  /* Records go to stdout; every log line goes to stderr. */
  g_log_writer_default_set_use_stderr (TRUE);

  context = g_option_context_new ("- print every record of a stream as JSON lines");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("sluice-dump: %s\n", error->message);
      return 2;
    }
  if (config_path == NULL || stream == NULL)
    {
      g_printerr ("sluice-dump: --config and --stream are required\n");
      return 2;
    }
  if (!run (config_path, data_dir, stream, &error))
    {
      g_printerr ("sluice-dump: %s\n", error->message);
      return 1;
    }
  return 0;
}
