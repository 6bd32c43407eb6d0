/* transport-mqtt — `[mqtt-map.NAME]`: parsing, the in-direction match and
 * the out-direction topics. See mqtt-map.h for the rules.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-map.h"

#include "mqtt-topic.h"

#include <stdarg.h>
#include <string.h>

#define MAP_PREFIX "mqtt-map."

typedef struct {
  MqttMapEntry pub;                 /* first: what callers see */
  char *name;
  char *filter;
  char *topic_prefix;
} MapEntry;

struct _MqttMap {
  GPtrArray *entries;               /* MapEntry*, file order, owning */
  GPtrArray *in;                    /* MapEntry* with the in direction */
  GPtrArray *out;                   /* MapEntry* with the out direction */
  GHashTable *streams;              /* interned stream names (a set) */
};

typedef struct {
  char *filter;
  char *stream;
  int key;                          /* index in key_choices */
  int direction;                    /* index in direction_choices */
  char *topic_prefix;
} MapOptions;

static const char *const key_choices[] = { "topic", "client-id", NULL };
/* Index + 1 is the MqttMapDirection. */
static const char *const direction_choices[] = { "in", "out", "both", NULL };

static const SluiceOption map_options[] = {
  { "filter", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (MapOptions, filter), NULL,
    "MQTT topic filter whose publishes are appended to the stream (in, both)", 0, 0, NULL,
    { NULL } },
  { "stream", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (MapOptions, stream), NULL,
    "the stream", 0, 0, NULL, { NULL } },
  { "key", SLUICE_OPTION_ENUM, G_STRUCT_OFFSET (MapOptions, key), "topic",
    "record key of a publish: the topic or the client id", 0, 0, key_choices, { NULL } },
  { "direction", SLUICE_OPTION_ENUM, G_STRUCT_OFFSET (MapOptions, direction), "in",
    "in: publishes to the stream; out: the stream's records to subscribers; both",
    0, 0, direction_choices, { NULL } },
  { "topic-prefix", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (MapOptions, topic_prefix), NULL,
    "records go out on {topic-prefix}/{key} (out, both)", 0, 0, NULL, { NULL } },
  SLUICE_OPTION_END
};

static void
map_entry_free (gpointer data)
{
  MapEntry *e = data;

  if (e == NULL)
    return;
  g_free (e->name);
  g_free (e->filter);
  g_free (e->topic_prefix);
  g_free (e);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MapEntry, map_entry_free)

void
mqtt_map_free (MqttMap *map)
{
  if (map == NULL)
    return;
  g_clear_pointer (&map->in, g_ptr_array_unref);
  g_clear_pointer (&map->out, g_ptr_array_unref);
  g_clear_pointer (&map->entries, g_ptr_array_unref);
  g_clear_pointer (&map->streams, g_hash_table_unref);
  g_free (map);
}

static void
set_map_error (GError **error, SluiceConfig *config, const char *section,
               const char *key, const char *value, const char *format, ...)
  G_GNUC_PRINTF (6, 7);

static void
set_map_error (GError **error, SluiceConfig *config, const char *section,
               const char *key, const char *value, const char *format, ...)
{
  g_autofree char *what = NULL;
  va_list ap;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (value != NULL)
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s: [%s] %s: %s (value '%s')",
                 sluice_config_get_path (config), section, key, what, value);
  else
    g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID, "%s: [%s] %s: %s",
                 sluice_config_get_path (config), section, key, what);
}

static gboolean
check_filter (SluiceConfig *config, const char *section, const char *filter,
              gboolean wanted, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  MqttTopicFilter parsed;

  if (!wanted)
    {
      if (filter != NULL)
        set_map_error (error, config, section, "filter", filter,
                       "only for direction in or both (out publishes on topic-prefix)");
      return filter == NULL;
    }
  if (filter == NULL)
    {
      set_map_error (error, config, section, "filter", NULL,
                     "missing: direction in or both needs the topic filter to map");
      return FALSE;
    }
  if (!mqtt_topic_filter_parse (filter, strlen (filter), NULL, &parsed, &local_error))
    {
      set_map_error (error, config, section, "filter", filter, "%s", local_error->message);
      return FALSE;
    }
  if (parsed.share_name != NULL)
    {
      set_map_error (error, config, section, "filter", filter,
                     "a shared subscription is not a topic filter to map; give the "
                     "filter itself");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_topic_prefix (SluiceConfig *config, const char *section, const char *prefix,
                    gboolean wanted, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  gsize len;

  if (!wanted)
    {
      if (prefix != NULL)
        set_map_error (error, config, section, "topic-prefix", prefix,
                       "only for direction out or both");
      return prefix == NULL;
    }
  if (prefix == NULL)
    {
      set_map_error (error, config, section, "topic-prefix", NULL,
                     "missing: direction out or both publishes on {topic-prefix}/{key}");
      return FALSE;
    }
  len = strlen (prefix);
  if (!mqtt_topic_name_validate (prefix, len, NULL, &local_error))
    {
      set_map_error (error, config, section, "topic-prefix", prefix, "%s",
                     local_error->message);
      return FALSE;
    }
  if (prefix[len - 1] == '/')
    {
      set_map_error (error, config, section, "topic-prefix", prefix,
                     "must not end with '/': the key follows after one");
      return FALSE;
    }
  /* Nobody can subscribe to such a topic as a plain one. */
  if (strcmp (prefix, "$share") == 0 || g_str_has_prefix (prefix, "$share/"))
    {
      set_map_error (error, config, section, "topic-prefix", prefix,
                     "'$share' starts a shared subscription, not a topic");
      return FALSE;
    }
  return TRUE;
}

static MapEntry *
entry_load (MqttMap *map, SluiceConfig *config, const char *section, GError **error)
{
  MapOptions opts = { NULL };
  g_autoptr (MapEntry) e = NULL;
  const char *name = section + strlen (MAP_PREFIX);
  MqttMapDirection direction;
  gboolean ok;

  if (name[0] == '\0')
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "%s: [%s]: a map needs a name ([mqtt-map.NAME])",
                   sluice_config_get_path (config), section);
      return NULL;
    }
  if (!sluice_config_parse_section (config, section, map_options, NULL, &opts, error))
    return NULL;

  direction = (MqttMapDirection) (opts.direction + 1);
  if (opts.stream == NULL)
    {
      set_map_error (error, config, section, "stream", NULL,
                     "missing: name the stream the topics map to");
      ok = FALSE;
    }
  else if (!sluice_stream_name_is_valid (opts.stream))
    {
      set_map_error (error, config, section, "stream", opts.stream,
                     "not a valid stream name (1-255 characters of A-Z a-z 0-9 . _ -, "
                     "not starting with '$' or '_', not an API path such as 'devices')");
      ok = FALSE;
    }
  else
    ok = check_filter (config, section, opts.filter,
                       (direction & MQTT_MAP_DIRECTION_IN) != 0, error)
      && check_topic_prefix (config, section, opts.topic_prefix,
                             (direction & MQTT_MAP_DIRECTION_OUT) != 0, error);

  if (ok)
    {
      char *stream = g_hash_table_lookup (map->streams, opts.stream);

      if (stream == NULL)
        {
          stream = g_strdup (opts.stream);
          g_hash_table_add (map->streams, stream);
        }
      e = g_new0 (MapEntry, 1);
      e->name = g_strdup (name);
      e->filter = g_steal_pointer (&opts.filter);
      e->topic_prefix = g_steal_pointer (&opts.topic_prefix);
      e->pub.name = e->name;
      e->pub.filter = e->filter;
      e->pub.filter_len = e->filter != NULL ? strlen (e->filter) : 0;
      e->pub.stream = stream;
      e->pub.key = (MqttMapKey) opts.key;
      e->pub.direction = direction;
      e->pub.topic_prefix = e->topic_prefix;
    }
  sluice_options_clear (map_options, &opts);
  return g_steal_pointer (&e);
}

MqttMap *
mqtt_map_load (SluiceConfig *config, GError **error)
{
  g_auto (GStrv) sections = NULL;
  g_autoptr (MqttMap) map = NULL;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  map = g_new0 (MqttMap, 1);
  map->entries = g_ptr_array_new_with_free_func (map_entry_free);
  map->in = g_ptr_array_new ();
  map->out = g_ptr_array_new ();
  map->streams = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  sections = sluice_config_list_sections (config, MAP_PREFIX);
  for (gsize i = 0; sections != NULL && sections[i] != NULL; i++)
    {
      MapEntry *e = entry_load (map, config, sections[i], error);

      if (e == NULL)
        return NULL;
      g_ptr_array_add (map->entries, e);
      if (e->pub.direction & MQTT_MAP_DIRECTION_IN)
        g_ptr_array_add (map->in, e);
      if (e->pub.direction & MQTT_MAP_DIRECTION_OUT)
        g_ptr_array_add (map->out, e);
    }
  return g_steal_pointer (&map);
}

const MqttMapEntry *const *
mqtt_map_get_entries (const MqttMap *map, guint *n_entries)
{
  g_return_val_if_fail (map != NULL && n_entries != NULL, NULL);

  *n_entries = map->entries->len;
  return (const MqttMapEntry *const *) map->entries->pdata;
}

const MqttMapEntry *const *
mqtt_map_get_out (const MqttMap *map, guint *n_entries)
{
  g_return_val_if_fail (map != NULL && n_entries != NULL, NULL);

  *n_entries = map->out->len;
  return (const MqttMapEntry *const *) map->out->pdata;
}

guint
mqtt_map_match (const MqttMap *map, const char *topic, gsize topic_len, GPtrArray *out)
{
  g_return_val_if_fail (map != NULL && topic != NULL && out != NULL, 0);

  g_ptr_array_set_size (out, 0);
  for (guint i = 0; i < map->in->len; i++)
    {
      const MqttMapEntry *e = map->in->pdata[i];
      gboolean seen = FALSE;

      if (!mqtt_topic_matches (e->filter, e->filter_len, topic, topic_len))
        continue;
      /* Streams are interned: one pointer per stream name. */
      for (guint j = 0; j < out->len && !seen; j++)
        seen = ((const MqttMapEntry *) out->pdata[j])->stream == e->stream;
      if (!seen)
        g_ptr_array_add (out, (gpointer) e);
    }
  return out->len;
}

char *
mqtt_map_out_topic (const MqttMapEntry *entry, const char *key, gsize key_len,
                    GError **error)
{
  g_autoptr (GError) local_error = NULL;
  gsize prefix_len;
  char *topic;

  g_return_val_if_fail (entry != NULL && entry->topic_prefix != NULL, NULL);
  g_return_val_if_fail (key != NULL || key_len == 0, NULL);

  prefix_len = strlen (entry->topic_prefix);
  if (key_len > MQTT_TOPIC_MAX_LENGTH)
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "a record key of %" G_GSIZE_FORMAT " bytes cannot be part of an MQTT "
                   "topic", key_len);
      return NULL;
    }
  topic = g_malloc (prefix_len + 1 + key_len + 1);
  memcpy (topic, entry->topic_prefix, prefix_len);
  topic[prefix_len] = '/';
  if (key_len > 0)
    memcpy (topic + prefix_len + 1, key, key_len);
  topic[prefix_len + 1 + key_len] = '\0';
  /* The key itself is not quoted: it is record data, possibly binary. */
  if (!mqtt_topic_name_validate (topic, prefix_len + 1 + key_len, NULL, &local_error))
    {
      g_set_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID,
                   "the record key cannot be part of an MQTT topic on '%s/': %s",
                   entry->topic_prefix, local_error->message);
      g_free (topic);
      return NULL;
    }
  return topic;
}
