/* transport-mqtt — streams bridged out to MQTT: for every `[mqtt-map.X]`
 * with direction out or both, each partition of the stream is followed with
 * long-polling reads (woken by appends) and every record is published to
 * MQTT subscribers on `{topic-prefix}/{key}` at QoS 1, its headers as v5
 * user properties (`content-type` as the Content Type).
 *
 * Where it resumes: the offsets are committed as the consumer group
 * `mqtt-bridge.{instance}.{map}` once what was read is delivered (and the
 * copies for persistent sessions stored), at most once a second, so a
 * restart goes on where it stopped (at least once); a new bridge starts at
 * the end of the stream. Records this instance appended itself (from an
 * `in` or `both` map) are not sent back out: their subscribers had them
 * live, and a `both` map would otherwise loop.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-conn-private.h"
#include "mqtt-map.h"

#include <string.h>

#define BRIDGE_READ_BYTES (1024 * 1024)
#define BRIDGE_WAIT_MS 10000
#define BRIDGE_COMMIT_US (1 * G_USEC_PER_SEC)
#define BRIDGE_RETRY_MS 1000

typedef struct _MqttBridge MqttBridge;

typedef struct {
  MqttBridge *bridge;
  const MqttMapEntry *entry;
  gint32 partition;
  gint64 next;                   /* next offset to read */
  gint64 committed;              /* last offset committed */
  gint64 last_commit;            /* monotonic µs */
  guint pending_stores;          /* stored-copy commits in flight */
  gboolean reading;
} BridgeReader;

struct _MqttBridge {
  gint ref_count;                /* main thread only: reads, retries, commits */
  MqttTransport *transport;
  GPtrArray *readers;            /* BridgeReader* */
  GCancellable *cancellable;
  SluicePrincipal *principal;
  gboolean stopping;
};

static void reader_read (BridgeReader *r);

static MqttBridge *
bridge_ref (MqttBridge *bridge)
{
  bridge->ref_count++;
  return bridge;
}

static void
bridge_unref (MqttBridge *bridge)
{
  if (--bridge->ref_count > 0)
    return;
  g_ptr_array_unref (bridge->readers);
  g_object_unref (bridge->cancellable);
  sluice_principal_unref (bridge->principal);
  g_free (bridge);
}

static char *
bridge_group (MqttBridge *bridge, const MqttMapEntry *entry)
{
  return g_strdup_printf ("mqtt-bridge.%s.%s", bridge->transport->instance_name, entry->name);
}

static gboolean
retry_read (gpointer data)
{
  BridgeReader *r = data;
  MqttBridge *bridge = r->bridge;

  reader_read (r);
  bridge_unref (bridge);
  return G_SOURCE_REMOVE;
}

static void
reader_commit (BridgeReader *r, gboolean force)
{
  MqttBridge *bridge = r->bridge;
  SluiceGroupOffset off = { r->partition, r->next, NULL };
  g_autofree char *group = NULL;
  gint64 now = g_get_monotonic_time ();

  if (r->next == r->committed || r->pending_stores > 0
      || (!force && now - r->last_commit < BRIDGE_COMMIT_US))
    return;
  group = bridge_group (bridge, r->entry);
  r->committed = r->next;
  r->last_commit = now;
  sluice_host_commit_offsets (bridge->transport->host, bridge->principal, r->entry->stream,
                              group, &off, 1, NULL, NULL);
}

static void
store_done (const GError *error, gpointer data)
{
  BridgeReader *r = data;

  if (error != NULL)
    sluice_warning (r->bridge->transport->instance_name, "bridge of stream '%s': copies "
                    "for persistent sessions were not stored: %s", r->entry->stream,
                    error->message);
  r->pending_stores--;
  bridge_unref (r->bridge);
}

/* Headers → v5 user properties; our own records are recognised by the
 * `mqtt-transport` header. Returns FALSE for a record to skip. */
static gboolean
record_to_props (MqttBridge *bridge, const SluiceRecordView *rec, MqttProperties *props)
{
  for (guint i = 0; i < rec->n_headers; i++)
    {
      const SluiceHeaderView *h = &rec->headers[i];
      g_autofree char *name = g_strndup ((const char *) h->name, h->name_len);
      g_autofree char *value = h->value != NULL
                                 ? g_strndup ((const char *) h->value, h->value_len) : g_strdup ("");

      if (!g_utf8_validate (name, -1, NULL) || !g_utf8_validate (value, -1, NULL)
          || strlen (name) != h->name_len)
        continue;
      if (g_str_equal (name, "mqtt-transport")
          && g_str_equal (value, bridge->transport->instance_name))
        return FALSE;
      if (g_str_equal (name, "content-type"))
        mqtt_props_set_string (props, MQTT_PROP_CONTENT_TYPE, value);
      else
        mqtt_props_add_user (props, name, value);
    }
  return TRUE;
}

static void
deliver_batch (BridgeReader *r, SluiceBatch *batch)
{
  MqttBridge *bridge = r->bridge;
  MqttTransport *transport = bridge->transport;
  g_autoptr (GError) error = NULL;
  g_autoptr (SluiceBatchReader) reader = sluice_batch_reader_new (batch->data, &error);
  SluiceRecordView rec;

  if (reader == NULL)
    {
      sluice_warning (transport->instance_name, "bridge of stream '%s' partition %d: batch "
                      "at %" G_GINT64_FORMAT " unreadable, skipped: %s", r->entry->stream,
                      r->partition, batch->base_offset, error->message);
      return;
    }
  while (sluice_batch_reader_next (reader, &rec, &error))
    {
      g_autoptr (MqttMessage) m = NULL;
      g_autoptr (GError) topic_error = NULL;
      g_autofree char *topic = NULL;
      MqttPublishResult result;

      if (rec.offset < r->next)
        continue;
      topic = mqtt_map_out_topic (r->entry, (const char *) rec.key,
                                  rec.key != NULL ? rec.key_len : 0, &topic_error);
      if (topic == NULL)
        {
          sluice_debug (transport->instance_name, "bridge of stream '%s': record %"
                        G_GINT64_FORMAT " has no usable topic: %s", r->entry->stream,
                        rec.offset, topic_error->message);
          continue;
        }
      m = mqtt_message_new (topic, NULL, 1, FALSE);
      g_bytes_unref (m->payload);
      m->payload = g_bytes_new (rec.value, rec.value != NULL ? rec.value_len : 0);
      m->origin = g_strdup_printf ("stream:%s", r->entry->stream);
      if (!record_to_props (bridge, &rec, &m->props))
        continue;
      mqtt_broker_publish (transport->broker, m, NULL, NULL, &result);
      if (result.stored_keys != NULL)
        {
          g_autoptr (GArray) ops = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));

          for (guint i = 0; i < result.stored_keys->len; i++)
            {
              SluiceKvOp op = { SLUICE_KV_PUT, result.stored_keys->pdata[i],
                                result.stored_values->pdata[i] };
              g_array_append_val (ops, op);
            }
          r->pending_stores++;
          bridge_ref (bridge);
          sluice_host_kv_commit (transport->host, transport->instance_name,
                                 (SluiceKvOp *) ops->data, ops->len, store_done, r);
        }
      sluice_counter_add (transport->bridged_out, 1);
      mqtt_publish_result_clear (&result);
    }
  if (error != NULL)
    sluice_warning (transport->instance_name, "bridge of stream '%s' partition %d: %s",
                    r->entry->stream, r->partition, error->message);
}

static void
read_done (SluiceReadResult *result, const GError *error, gpointer data)
{
  BridgeReader *r = data;
  MqttBridge *bridge = r->bridge;
  g_autoptr (SluiceReadResult) owned = result;

  r->reading = FALSE;
  if (bridge->stopping || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      bridge_unref (bridge);
      return;
    }
  if (error != NULL)
    {
      if (g_error_matches (error, SLUICE_ERROR, SLUICE_ERROR_OFFSET_OUT_OF_RANGE))
        {
          /* Retention went past us: go on from the first stored record. */
          gint64 first = 0, next = 0;

          if (sluice_host_stream_bounds (bridge->transport->host, r->entry->stream,
                                         r->partition, &first, &next, NULL))
            {
              sluice_warning (bridge->transport->instance_name, "bridge of stream '%s' "
                              "partition %d: offsets %" G_GINT64_FORMAT " to %"
                              G_GINT64_FORMAT " were removed by retention before they "
                              "were bridged", r->entry->stream, r->partition, r->next,
                              first - 1);
              r->next = first;
            }
        }
      else
        sluice_warning (bridge->transport->instance_name, "bridge of stream '%s' partition "
                        "%d: %s; retrying", r->entry->stream, r->partition, error->message);
      /* The read's reference goes to the retry. */
      g_timeout_add (BRIDGE_RETRY_MS, retry_read, r);
      return;
    }
  for (guint i = 0; i < result->batches->len; i++)
    {
      SluiceBatch *b = result->batches->pdata[i];

      deliver_batch (r, b);
      r->next = MAX (r->next, b->base_offset + b->record_count);
    }
  reader_commit (r, FALSE);
  reader_read (r);
  bridge_unref (bridge);
}

static void
reader_read (BridgeReader *r)
{
  MqttBridge *bridge = r->bridge;

  if (bridge->stopping || r->reading)
    return;
  r->reading = TRUE;
  bridge_ref (bridge);
  sluice_host_read (bridge->transport->host, bridge->principal, r->entry->stream,
                    r->partition, r->next, BRIDGE_READ_BYTES, BRIDGE_WAIT_MS,
                    bridge->cancellable, read_done, r);
}

typedef struct {
  MqttBridge *bridge;
  const MqttMapEntry *entry;
  gint32 partitions;
} StartCtx;

static void
offsets_fetched (GArray *offsets, const GError *error, gpointer data)
{
  StartCtx *ctx = data;
  MqttBridge *bridge = ctx->bridge;

  for (gint32 p = 0; p < ctx->partitions && !bridge->stopping; p++)
    {
      BridgeReader *r = g_new0 (BridgeReader, 1);
      gint64 first = 0, next = 0;

      r->bridge = bridge;
      r->entry = ctx->entry;
      r->partition = p;
      sluice_host_stream_bounds (bridge->transport->host, ctx->entry->stream, p, &first,
                                 &next, NULL);
      r->next = next;
      for (guint i = 0; offsets != NULL && i < offsets->len; i++)
        {
          SluiceGroupOffset *o = &g_array_index (offsets, SluiceGroupOffset, i);
          if (o->partition == p && o->offset >= 0)
            r->next = MAX (o->offset, first);
        }
      r->committed = r->next;
      g_ptr_array_add (bridge->readers, r);
      reader_read (r);
    }
  if (offsets != NULL)
    g_array_unref (offsets);
  g_free (ctx);
  bridge_unref (bridge);
}

MqttBridge *
mqtt_bridge_start (MqttTransport *transport)
{
  guint n = 0;
  const MqttMapEntry *const *out = mqtt_map_get_out (transport->map, &n);
  MqttBridge *bridge;
  g_autofree char *name = NULL;

  if (n == 0)
    return NULL;
  bridge = g_new0 (MqttBridge, 1);
  bridge->ref_count = 1;
  bridge->transport = transport;
  bridge->readers = g_ptr_array_new_with_free_func (g_free);
  bridge->cancellable = g_cancellable_new ();
  name = g_strdup_printf ("mqtt-bridge:%s", transport->instance_name);
  bridge->principal = sluice_principal_new (SLUICE_PRINCIPAL_POLICY, name,
                                            SLUICE_RIGHT_LISTEN, NULL, 0, "mqtt-map");
  for (guint i = 0; i < n; i++)
    {
      SluiceStreamInfo info;
      g_autoptr (GError) error = NULL;
      g_autofree char *group = NULL;
      StartCtx *ctx;

      if (!sluice_host_stream_info (transport->host, out[i]->stream, &info, &error))
        {
          sluice_warning (transport->instance_name, "[mqtt-map.%s]: stream '%s' is not "
                          "bridged out: %s", out[i]->name, out[i]->stream, error->message);
          continue;
        }
      ctx = g_new0 (StartCtx, 1);
      ctx->bridge = bridge_ref (bridge);
      ctx->entry = out[i];
      ctx->partitions = info.partitions;
      group = bridge_group (bridge, out[i]);
      sluice_host_fetch_offsets (transport->host, bridge->principal, out[i]->stream, group,
                                 offsets_fetched, ctx);
      sluice_info (transport->instance_name, "stream '%s' (%d partitions) is bridged out to "
                   "MQTT topics %s/{key}", out[i]->stream, info.partitions,
                   out[i]->topic_prefix);
    }
  return bridge;
}

void
mqtt_bridge_stop (MqttBridge *bridge)
{
  if (bridge == NULL)
    return;
  bridge->stopping = TRUE;
  g_cancellable_cancel (bridge->cancellable);
  for (guint i = 0; i < bridge->readers->len; i++)
    {
      BridgeReader *r = bridge->readers->pdata[i];
      r->pending_stores = 0;
      reader_commit (r, TRUE);
    }
}

void
mqtt_bridge_free (MqttBridge *bridge)
{
  /* Reads, retries and commits still in flight hold their own references. */
  if (bridge != NULL)
    bridge_unref (bridge);
}
