/* transport-mqtt — the broker: sessions, the subscription index, retained
 * messages and delivery between I/O workers (see mqtt-broker.h for the
 * threading and back-pressure rules).
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-broker.h"

#include <string.h>

struct _MqttBroker {
  GMutex lock;                   /* subs, retained, sessions */
  MqttSubs *subs;                /* subscriber: MqttSession* */
  MqttRetained *retained;        /* value: MqttMessage* */
  GHashTable *sessions;          /* client id → MqttSession* (ref) */
  MqttBrokerHooks hooks;
  guint high_water;
  guint low_water;
};

struct _MqttSession {
  gint ref_count;
  MqttBroker *broker;
  char *client_id;
  GMutex lock;
  /* Guarded by `lock`. */
  MqttConnHandle *handle;        /* attached connection, NULL: none */
  gboolean wake_pending;
  gboolean ended;                /* removed from the broker */
  GQueue queue;                  /* MqttQueued*, not yet sent */
  GHashTable *inflight;          /* packet id → MqttQueued* */
  GQueue inflight_order;         /* MqttQueued*, in the order sent */
  guint16 next_packet_id;
  GHashTable *qos2_in;           /* packet ids awaiting PUBREL */
  GPtrArray *waiters;            /* MqttConnHandle*: publishers held back */
  guint32 expiry;                /* seconds after detaching; G_MAXUINT32: never */
  gint64 detached_at;            /* monotonic µs; 0: attached */
  guint64 next_store_seq;
  guint64 epoch;                 /* the session's KV generation */
  GPtrArray *dead_keys;          /* KV keys of stored copies dropped */
};

/* --- messages --- */

MqttMessage *
mqtt_message_new (const char *topic, GBytes *payload, guint8 qos, gboolean retain)
{
  MqttMessage *m = g_new0 (MqttMessage, 1);

  m->ref_count = 1;
  m->topic = g_strdup (topic);
  m->payload = payload != NULL ? g_bytes_ref (payload) : g_bytes_new (NULL, 0);
  m->qos = qos;
  m->retain = retain;
  return m;
}

MqttMessage *
mqtt_message_ref (MqttMessage *m)
{
  g_atomic_int_inc (&m->ref_count);
  return m;
}

void
mqtt_message_unref (MqttMessage *m)
{
  if (m == NULL || !g_atomic_int_dec_and_test (&m->ref_count))
    return;
  g_free (m->topic);
  g_bytes_unref (m->payload);
  mqtt_props_clear (&m->props);
  g_free (m->origin);
  g_free (m);
}

/* (topic, qos, retain, expires_at, payload, payload_format, content type,
 * response topic, correlation data, user properties, subscription ids) */
#define MESSAGE_VARIANT_TYPE "(sybxayymsmsmaya(ss)au)"
/* The same, as a format string: the byte arrays as GVariant values. */
#define MESSAGE_VARIANT_FORMAT "(sybx@ayymsmsm@aya(ss)au)"
#define MESSAGE_VARIANT_GET "(&sybx@ayym&sm&sm@aya(ss)au)"

GBytes *
mqtt_message_serialize (const MqttMessage *m, guint8 qos, const GArray *sub_ids)
{
  GVariantBuilder user, ids;
  GVariant *corr = NULL;
  g_autoptr (GVariant) v = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (m->payload, &len);

  g_variant_builder_init (&user, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; m->props.user != NULL && i < m->props.user->len; i++)
    {
      MqttUserProperty *u = &g_array_index (m->props.user, MqttUserProperty, i);
      g_variant_builder_add (&user, "(ss)", u->name, u->value);
    }
  g_variant_builder_init (&ids, G_VARIANT_TYPE ("au"));
  for (guint i = 0; sub_ids != NULL && i < sub_ids->len; i++)
    g_variant_builder_add (&ids, "u", g_array_index (sub_ids, guint32, i));
  if (m->props.correlation_data != NULL)
    {
      gsize clen;
      const guint8 *cdata = g_bytes_get_data (m->props.correlation_data, &clen);
      corr = g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, cdata, clen, 1);
    }
  v = g_variant_ref_sink (g_variant_new (MESSAGE_VARIANT_FORMAT, m->topic, qos, m->retain,
                                         m->expires_at,
                                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                    data, len, 1),
                                         mqtt_props_has (&m->props,
                                                         MQTT_PROP_PAYLOAD_FORMAT)
                                           ? m->props.payload_format : 0xff,
                                         m->props.content_type, m->props.response_topic,
                                         corr, &user, &ids));
  return g_variant_get_data_as_bytes (v);
}

MqttMessage *
mqtt_message_deserialize (GBytes *bytes, guint8 *qos, GArray **sub_ids)
{
  g_autoptr (GVariant) v = NULL;
  g_autoptr (GVariant) payload = NULL;
  g_autoptr (GVariant) corr = NULL;
  g_autoptr (GVariantIter) user = NULL;
  g_autoptr (GVariantIter) ids = NULL;
  const char *topic;
  const char *content_type, *response_topic;
  gboolean retain;
  gint64 expires_at;
  guint8 format;
  gsize len;
  const guint8 *data;
  MqttMessage *m;
  const char *name, *value;
  guint32 id;

  v = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (MESSAGE_VARIANT_TYPE),
                                                    bytes, FALSE));
  if (!g_variant_is_normal_form (v))
    return NULL;
  g_variant_get (v, MESSAGE_VARIANT_GET, &topic, qos, &retain, &expires_at, &payload,
                 &format, &content_type, &response_topic, &corr, &user, &ids);
  data = g_variant_get_fixed_array (payload, &len, 1);
  m = mqtt_message_new (topic, NULL, *qos, retain);
  g_bytes_unref (m->payload);
  m->payload = g_bytes_new (data, len);
  m->expires_at = expires_at;
  if (format != 0xff)
    mqtt_props_set_int (&m->props, MQTT_PROP_PAYLOAD_FORMAT, format);
  mqtt_props_set_string (&m->props, MQTT_PROP_CONTENT_TYPE, content_type);
  mqtt_props_set_string (&m->props, MQTT_PROP_RESPONSE_TOPIC, response_topic);
  if (corr != NULL)
    {
      gsize clen;
      const guint8 *cdata = g_variant_get_fixed_array (corr, &clen, 1);
      g_autoptr (GBytes) c = g_bytes_new (cdata, clen);
      mqtt_props_set_binary (&m->props, MQTT_PROP_CORRELATION_DATA, c);
    }
  while (g_variant_iter_next (user, "(&s&s)", &name, &value))
    mqtt_props_add_user (&m->props, name, value);
  *sub_ids = NULL;
  while (g_variant_iter_next (ids, "u", &id))
    {
      if (*sub_ids == NULL)
        *sub_ids = g_array_new (FALSE, FALSE, sizeof (guint32));
      g_array_append_val (*sub_ids, id);
    }
  return m;
}

void
mqtt_queued_free (MqttQueued *q)
{
  if (q == NULL)
    return;
  mqtt_message_unref (q->message);
  if (q->sub_ids != NULL)
    g_array_unref (q->sub_ids);
  g_free (q);
}

/* --- handles --- */

MqttConnHandle *
mqtt_conn_handle_new (GMainContext *context, gpointer conn)
{
  MqttConnHandle *h = g_new0 (MqttConnHandle, 1);

  h->ref_count = 1;
  h->context = g_main_context_ref (context);
  h->conn = conn;
  return h;
}

MqttConnHandle *
mqtt_conn_handle_ref (MqttConnHandle *h)
{
  g_atomic_int_inc (&h->ref_count);
  return h;
}

void
mqtt_conn_handle_unref (MqttConnHandle *h)
{
  if (h == NULL || !g_atomic_int_dec_and_test (&h->ref_count))
    return;
  g_main_context_unref (h->context);
  g_free (h);
}

typedef struct {
  MqttConnHandle *handle;
  MqttHandleFunc func;
} HandleCall;

static gboolean
handle_call_run (gpointer data)
{
  HandleCall *call = data;

  if (call->handle->conn != NULL)
    call->func (call->handle, call->handle->conn);
  return G_SOURCE_REMOVE;
}

static void
handle_call_free (gpointer data)
{
  HandleCall *call = data;

  mqtt_conn_handle_unref (call->handle);
  g_free (call);
}

/* Run `func` on the handle's worker, later (never inline: the caller may
 * hold locks). */
static void
handle_invoke (MqttConnHandle *handle, MqttHandleFunc func)
{
  HandleCall *call = g_new0 (HandleCall, 1);
  GSource *source = g_idle_source_new ();

  call->handle = mqtt_conn_handle_ref (handle);
  call->func = func;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, handle_call_run, call, handle_call_free);
  g_source_attach (source, handle->context);
  g_source_unref (source);
}

/* --- broker --- */

static void
retained_value_free (gpointer value)
{
  mqtt_message_unref (value);
}

MqttBroker *
mqtt_broker_new (const MqttBrokerHooks *hooks, guint queue_high_water)
{
  MqttBroker *broker = g_new0 (MqttBroker, 1);

  g_mutex_init (&broker->lock);
  broker->subs = mqtt_subs_new (NULL);
  broker->retained = mqtt_retained_new (retained_value_free);
  broker->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify) mqtt_session_unref);
  broker->hooks = *hooks;
  broker->high_water = MAX (queue_high_water, 2);
  broker->low_water = broker->high_water / 2;
  return broker;
}

void
mqtt_broker_free (MqttBroker *broker)
{
  GHashTableIter it;
  gpointer value;

  if (broker == NULL)
    return;
  g_hash_table_iter_init (&it, broker->sessions);
  while (g_hash_table_iter_next (&it, NULL, &value))
    ((MqttSession *) value)->ended = TRUE;
  g_hash_table_unref (broker->sessions);
  mqtt_subs_free (broker->subs);
  mqtt_retained_free (broker->retained);
  g_mutex_clear (&broker->lock);
  g_free (broker);
}

/* --- sessions --- */

static void
queued_list_free (GQueue *queue)
{
  MqttQueued *q;

  while ((q = g_queue_pop_head (queue)) != NULL)
    mqtt_queued_free (q);
}

static MqttSession *
session_new (MqttBroker *broker, const char *client_id)
{
  MqttSession *s = g_new0 (MqttSession, 1);

  s->ref_count = 1;
  s->broker = broker;
  s->client_id = g_strdup (client_id);
  g_mutex_init (&s->lock);
  g_queue_init (&s->queue);
  g_queue_init (&s->inflight_order);
  /* inflight, qos2_in, waiters and dead_keys are made when first needed:
   * most sessions never use them. */
  s->next_packet_id = 1;
  s->next_store_seq = 1;
  s->epoch = (guint64) g_get_real_time ();
  return s;
}

MqttSession *
mqtt_session_ref (MqttSession *s)
{
  g_atomic_int_inc (&s->ref_count);
  return s;
}

void
mqtt_session_unref (MqttSession *s)
{
  if (s == NULL || !g_atomic_int_dec_and_test (&s->ref_count))
    return;
  queued_list_free (&s->queue);
  /* The in-flight copies are in both the table and the order queue. */
  g_clear_pointer (&s->inflight, g_hash_table_unref);
  queued_list_free (&s->inflight_order);
  g_clear_pointer (&s->qos2_in, g_hash_table_unref);
  g_clear_pointer (&s->waiters, g_ptr_array_unref);
  g_clear_pointer (&s->dead_keys, g_ptr_array_unref);
  mqtt_conn_handle_unref (s->handle);
  g_mutex_clear (&s->lock);
  g_free (s->client_id);
  g_free (s);
}

const char *
mqtt_session_get_client_id (MqttSession *s)
{
  return s->client_id;
}

gboolean
mqtt_session_is_persistent (MqttSession *s)
{
  return s->expiry > 0;
}

guint
mqtt_broker_session_count (MqttBroker *broker)
{
  guint n;

  g_mutex_lock (&broker->lock);
  n = g_hash_table_size (broker->sessions);
  g_mutex_unlock (&broker->lock);
  return n;
}

/* (broker locked) Wake the publishers the session held back: it is gone. */
static void
session_end_locked (MqttBroker *broker, MqttSession *s)
{
  g_autoptr (GPtrArray) waiters = NULL;

  mqtt_subs_remove_subscriber (broker->subs, s);
  g_mutex_lock (&s->lock);
  s->ended = TRUE;
  waiters = g_steal_pointer (&s->waiters);
  g_mutex_unlock (&s->lock);
  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    handle_invoke (waiters->pdata[i], broker->hooks.resume);
  g_hash_table_remove (broker->sessions, s->client_id);
  sluice_counter_set (broker->hooks.sessions, g_hash_table_size (broker->sessions));
}

MqttSession *
mqtt_broker_attach (MqttBroker *broker, const char *client_id, gboolean clean,
                    guint32 expiry, MqttConnHandle *handle, gboolean *present,
                    guint64 *ended_epoch)
{
  MqttSession *s;
  MqttConnHandle *old = NULL;

  *ended_epoch = 0;
  g_mutex_lock (&broker->lock);
  s = g_hash_table_lookup (broker->sessions, client_id);
  if (s != NULL)
    {
      g_mutex_lock (&s->lock);
      old = g_steal_pointer (&s->handle);
      g_mutex_unlock (&s->lock);
      if (old != NULL)
        {
          handle_invoke (old, broker->hooks.taken_over);
          mqtt_conn_handle_unref (old);
        }
      if (clean)
        {
          if (s->expiry > 0)
            *ended_epoch = s->epoch;
          session_end_locked (broker, s);
          s = NULL;
        }
    }
  *present = s != NULL;
  if (s == NULL)
    {
      s = session_new (broker, client_id);
      g_hash_table_insert (broker->sessions, s->client_id, s);
      sluice_counter_set (broker->hooks.sessions, g_hash_table_size (broker->sessions));
    }
  g_mutex_lock (&s->lock);
  s->handle = mqtt_conn_handle_ref (handle);
  s->expiry = expiry;
  s->detached_at = 0;
  s->wake_pending = FALSE;
  g_mutex_unlock (&s->lock);
  mqtt_session_ref (s);
  g_mutex_unlock (&broker->lock);
  return s;
}

gboolean
mqtt_broker_detach (MqttBroker *broker, MqttSession *s, MqttConnHandle *handle,
                    guint32 expiry)
{
  gboolean ended = FALSE;

  g_mutex_lock (&broker->lock);
  g_mutex_lock (&s->lock);
  if (s->handle != handle || s->ended)
    {
      /* Taken over, or already gone: not ours to end. */
      g_mutex_unlock (&s->lock);
      g_mutex_unlock (&broker->lock);
      return FALSE;
    }
  g_clear_pointer (&s->handle, mqtt_conn_handle_unref);
  s->expiry = expiry;
  s->detached_at = g_get_monotonic_time ();
  s->wake_pending = FALSE;
  g_mutex_unlock (&s->lock);
  if (expiry == 0)
    {
      session_end_locked (broker, s);
      ended = TRUE;
    }
  g_mutex_unlock (&broker->lock);
  return ended;
}

GPtrArray *
mqtt_broker_expire_sessions (MqttBroker *broker)
{
  GPtrArray *ended = g_ptr_array_new_with_free_func ((GDestroyNotify) mqtt_ended_session_free);
  g_autoptr (GPtrArray) victims = g_ptr_array_new ();
  gint64 now = g_get_monotonic_time ();
  GHashTableIter it;
  gpointer value;

  g_mutex_lock (&broker->lock);
  g_hash_table_iter_init (&it, broker->sessions);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MqttSession *s = value;
      gboolean expired;

      g_mutex_lock (&s->lock);
      expired = s->handle == NULL && s->expiry != G_MAXUINT32 && s->detached_at != 0
                && now - s->detached_at >= (gint64) s->expiry * G_USEC_PER_SEC;
      g_mutex_unlock (&s->lock);
      if (expired)
        g_ptr_array_add (victims, s);
    }
  for (guint i = 0; i < victims->len; i++)
    {
      MqttSession *s = victims->pdata[i];
      MqttEndedSession *e = g_new0 (MqttEndedSession, 1);

      e->client_id = g_strdup (s->client_id);
      e->epoch = s->epoch;
      g_ptr_array_add (ended, e);
      sluice_counter_add (broker->hooks.dropped_session_expired,
                          g_queue_get_length (&s->queue) + g_queue_get_length (&s->inflight_order));
      session_end_locked (broker, s);
    }
  g_mutex_unlock (&broker->lock);
  return ended;
}

void
mqtt_ended_session_free (MqttEndedSession *e)
{
  g_free (e->client_id);
  g_free (e);
}

void
mqtt_session_lock (MqttSession *s)
{
  g_mutex_lock (&s->lock);
}

void
mqtt_session_unlock (MqttSession *s)
{
  g_mutex_unlock (&s->lock);
}

void
mqtt_session_woken (MqttSession *s)
{
  s->wake_pending = FALSE;
}

guint
mqtt_session_queue_length (MqttSession *s)
{
  return g_queue_get_length (&s->queue);
}

MqttQueued *
mqtt_session_pop (MqttSession *s)
{
  MqttQueued *q;
  gint64 now = 0;

  while ((q = g_queue_pop_head (&s->queue)) != NULL)
    {
      if (q->message->expires_at == 0)
        return q;
      if (now == 0)
        now = g_get_real_time ();
      if (q->message->expires_at > now)
        return q;
      /* MQTT-3.3.2-5: an expired message is not sent; its stored copy
       * goes with it. */
      sluice_counter_add (s->broker->hooks.dropped_expired, 1);
      if (q->store_seq != 0 && s->dead_keys == NULL)
        s->dead_keys = g_ptr_array_new_with_free_func (g_free);
      if (q->store_seq != 0)
        g_ptr_array_add (s->dead_keys, mqtt_kv_queued_key (s->client_id, s->epoch, q->store_seq));
      mqtt_queued_free (q);
    }
  return NULL;
}

GPtrArray *
mqtt_session_take_dead_keys (MqttSession *s)
{
  return g_steal_pointer (&s->dead_keys);
}

void
mqtt_session_push_front (MqttSession *s, MqttQueued *q)
{
  g_queue_push_head (&s->queue, q);
}

guint16
mqtt_session_send_inflight (MqttSession *s, MqttQueued *q)
{
  /* At most 65,535 in flight; the receive maximum keeps it far lower. */
  if (s->inflight == NULL)
    s->inflight = g_hash_table_new (g_direct_hash, g_direct_equal);
  while (s->next_packet_id == 0
         || g_hash_table_contains (s->inflight, GUINT_TO_POINTER (s->next_packet_id)))
    s->next_packet_id++;
  q->packet_id = s->next_packet_id++;
  g_hash_table_insert (s->inflight, GUINT_TO_POINTER (q->packet_id), q);
  g_queue_push_tail (&s->inflight_order, q);
  return q->packet_id;
}

MqttQueued *
mqtt_session_inflight_lookup (MqttSession *s, guint16 packet_id)
{
  if (s->inflight == NULL)
    return NULL;
  return g_hash_table_lookup (s->inflight, GUINT_TO_POINTER (packet_id));
}

MqttQueued *
mqtt_session_inflight_remove (MqttSession *s, guint16 packet_id)
{
  MqttQueued *q = mqtt_session_inflight_lookup (s, packet_id);

  if (q == NULL)
    return NULL;
  g_hash_table_remove (s->inflight, GUINT_TO_POINTER (packet_id));
  g_queue_remove (&s->inflight_order, q);
  return q;
}

guint
mqtt_session_inflight_count (MqttSession *s)
{
  return s->inflight != NULL ? g_hash_table_size (s->inflight) : 0;
}

GList *
mqtt_session_inflight_list (MqttSession *s)
{
  return s->inflight_order.head;
}

GPtrArray *
mqtt_session_take_waiters_if_drained (MqttSession *s)
{
  GPtrArray *waiters;

  if (s->waiters == NULL || g_queue_get_length (&s->queue) > s->broker->low_water)
    return NULL;
  waiters = g_steal_pointer (&s->waiters);
  return waiters;
}

gboolean
mqtt_session_qos2_received (MqttSession *s, guint16 packet_id)
{
  if (s->qos2_in == NULL)
    return FALSE;
  return g_hash_table_contains (s->qos2_in, GUINT_TO_POINTER (packet_id));
}

void
mqtt_session_qos2_add (MqttSession *s, guint16 packet_id)
{
  if (s->qos2_in == NULL)
    s->qos2_in = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_hash_table_add (s->qos2_in, GUINT_TO_POINTER (packet_id));
}

gboolean
mqtt_session_qos2_release (MqttSession *s, guint16 packet_id)
{
  if (s->qos2_in == NULL)
    return FALSE;
  return g_hash_table_remove (s->qos2_in, GUINT_TO_POINTER (packet_id));
}

guint64
mqtt_session_next_store_seq (MqttSession *s)
{
  return s->next_store_seq++;
}

void
mqtt_session_set_store_seq (MqttSession *s, guint64 next)
{
  if (next > s->next_store_seq)
    s->next_store_seq = next;
}

/* --- subscriptions --- */

gboolean
mqtt_broker_subscribe (MqttBroker *broker, MqttSession *s, const char *filter,
                       const MqttSubOptions *options, gboolean *existed, GError **error)
{
  gboolean ok;

  g_mutex_lock (&broker->lock);
  ok = !s->ended
       && mqtt_subs_subscribe (broker->subs, s, filter, strlen (filter), options, existed,
                               error);
  if (s->ended && error != NULL && *error == NULL)
    g_set_error_literal (error, SLUICE_ERROR, SLUICE_ERROR_FAILED, "the session ended");
  g_mutex_unlock (&broker->lock);
  return ok;
}

gboolean
mqtt_broker_unsubscribe (MqttBroker *broker, MqttSession *s, const char *filter)
{
  gboolean ok;

  g_mutex_lock (&broker->lock);
  ok = mqtt_subs_unsubscribe (broker->subs, s, filter, strlen (filter));
  g_mutex_unlock (&broker->lock);
  return ok;
}

void
mqtt_broker_foreach_subscription (MqttBroker *broker, MqttSession *s,
                                  MqttSubsForeachFunc func, gpointer user_data)
{
  g_mutex_lock (&broker->lock);
  mqtt_subs_foreach_of (broker->subs, s, func, user_data);
  g_mutex_unlock (&broker->lock);
}

/* --- publishing --- */

void
mqtt_publish_result_clear (MqttPublishResult *result)
{
  g_clear_pointer (&result->stored_keys, g_ptr_array_unref);
  g_clear_pointer (&result->stored_values, g_ptr_array_unref);
}

/* (session locked) Queue a copy and wake the connection once per batch. */
static void
session_enqueue_locked (MqttSession *s, MqttQueued *q)
{
  g_queue_push_tail (&s->queue, q);
  if (s->handle != NULL && !s->wake_pending)
    {
      s->wake_pending = TRUE;
      handle_invoke (s->handle, s->broker->hooks.pump);
    }
}

void
mqtt_broker_enqueue (MqttBroker *broker, MqttSession *s, MqttQueued *q)
{
  g_mutex_lock (&s->lock);
  session_enqueue_locked (s, q);
  g_mutex_unlock (&s->lock);
}

/* A shared group's member is busy when its queue is over the high-water
 * mark or it has no connection: another member gets the message. */
static gboolean
session_can_take (gpointer subscriber, guint8 qos, gpointer user_data)
{
  MqttSession *s = subscriber;
  MqttBroker *broker = user_data;
  gboolean ok;

  g_mutex_lock (&s->lock);
  ok = s->handle != NULL && g_queue_get_length (&s->queue) < broker->high_water;
  g_mutex_unlock (&s->lock);
  return ok;
}

void
mqtt_broker_publish (MqttBroker *broker, MqttMessage *message, MqttSession *publisher,
                     MqttConnHandle *waiter, MqttPublishResult *result)
{
  MqttSubsMatch match;

  memset (result, 0, sizeof *result);
  mqtt_subs_match_init (&match);
  g_mutex_lock (&broker->lock);
  mqtt_subs_match (broker->subs, message->topic, strlen (message->topic), publisher,
                   session_can_take, broker, &match);
  for (guint i = 0; i < match.deliveries->len; i++)
    {
      MqttSubsDelivery *d = &g_array_index (match.deliveries, MqttSubsDelivery, i);
      MqttSession *s = d->subscriber;
      MqttQueued *q;
      guint8 qos = MIN (d->qos, message->qos);

      if (d->no_local && s == publisher)
        continue;
      g_mutex_lock (&s->lock);
      if (s->handle == NULL && qos == 0)
        {
          /* MQTT-3.1.2-5 lets a server keep QoS 0 for an absent client; we
           * do not (bounded memory), and say so in the metrics. */
          g_mutex_unlock (&s->lock);
          sluice_counter_add (broker->hooks.dropped_qos0_offline, 1);
          continue;
        }
      q = g_new0 (MqttQueued, 1);
      q->message = mqtt_message_ref (message);
      q->qos = qos;
      /* MQTT-3.3.1-12 / -13: a forwarded copy carries RETAIN 0 unless the
       * subscription asked for retain-as-published. */
      q->retain = d->retain_as_published && message->retain;
      if (d->n_ids > 0)
        {
          q->sub_ids = g_array_sized_new (FALSE, FALSE, sizeof (guint32), d->n_ids);
          g_array_append_vals (q->sub_ids, mqtt_subs_delivery_ids (&match, d), d->n_ids);
        }
      if (s->expiry > 0 && qos > 0)
        {
          if (result->stored_keys == NULL)
            {
              result->stored_keys = g_ptr_array_new_with_free_func (g_free);
              result->stored_values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
            }
          q->store_seq = s->next_store_seq++;
          g_ptr_array_add (result->stored_keys, mqtt_kv_queued_key (s->client_id, s->epoch, q->store_seq));
          g_ptr_array_add (result->stored_values,
                           mqtt_message_serialize (message, qos, q->sub_ids));
        }
      session_enqueue_locked (s, q);
      result->matched++;
      if (waiter != NULL && g_queue_get_length (&s->queue) >= broker->high_water)
        {
          gboolean known = FALSE;

          if (s->waiters == NULL)
            s->waiters = g_ptr_array_new_with_free_func ((GDestroyNotify) mqtt_conn_handle_unref);
          for (guint j = 0; j < s->waiters->len && !known; j++)
            known = s->waiters->pdata[j] == waiter;
          if (!known)
            g_ptr_array_add (s->waiters, mqtt_conn_handle_ref (waiter));
          result->blocked = TRUE;
        }
      g_mutex_unlock (&s->lock);
    }
  g_mutex_unlock (&broker->lock);
  mqtt_subs_match_clear (&match);
  if (result->blocked)
    sluice_counter_add (broker->hooks.backpressure, 1);
}

/* --- retained --- */

void
mqtt_broker_retain (MqttBroker *broker, MqttMessage *message)
{
  g_mutex_lock (&broker->lock);
  mqtt_retained_set (broker->retained, message->topic, strlen (message->topic),
                     g_bytes_get_size (message->payload) > 0 ? mqtt_message_ref (message)
                                                             : NULL);
  sluice_counter_set (broker->hooks.retained, mqtt_retained_count (broker->retained));
  g_mutex_unlock (&broker->lock);
}

static gboolean
collect_retained (const char *topic, gsize topic_len, gpointer value, gpointer user_data)
{
  MqttMessage *m = value;
  GPtrArray *out = user_data;

  if (m->expires_at != 0 && m->expires_at <= g_get_real_time ())
    return FALSE;
  g_ptr_array_add (out, mqtt_message_ref (m));
  return TRUE;
}

GPtrArray *
mqtt_broker_retained_matching (MqttBroker *broker, const char *filter)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) mqtt_message_unref);

  g_mutex_lock (&broker->lock);
  mqtt_retained_match (broker->retained, filter, strlen (filter), collect_retained, out,
                       NULL);
  sluice_counter_set (broker->hooks.retained, mqtt_retained_count (broker->retained));
  g_mutex_unlock (&broker->lock);
  return out;
}

guint
mqtt_broker_retained_count (MqttBroker *broker)
{
  guint n;

  g_mutex_lock (&broker->lock);
  n = mqtt_retained_count (broker->retained);
  g_mutex_unlock (&broker->lock);
  return n;
}

/* --- KV keys: client ids and topics may hold any character, so they are
 * escaped into one key segment. --- */

char *
mqtt_kv_session_key (const char *client_id)
{
  g_autofree char *e = g_uri_escape_string (client_id, NULL, FALSE);
  return g_strconcat ("s/", e, NULL);
}

char *
mqtt_kv_queued_prefix (const char *client_id, guint64 epoch)
{
  g_autofree char *e = g_uri_escape_string (client_id, NULL, FALSE);
  if (epoch == 0)
    return g_strconcat ("q/", e, "/", NULL);
  return g_strdup_printf ("q/%s/%016" G_GINT64_MODIFIER "x/", e, epoch);
}

char *
mqtt_kv_qos2_prefix (const char *client_id, guint64 epoch)
{
  g_autofree char *e = g_uri_escape_string (client_id, NULL, FALSE);
  return g_strdup_printf ("i/%s/%016" G_GINT64_MODIFIER "x/", e, epoch);
}

char *
mqtt_kv_qos2_key (const char *client_id, guint64 epoch, guint16 packet_id)
{
  g_autofree char *e = g_uri_escape_string (client_id, NULL, FALSE);
  return g_strdup_printf ("i/%s/%016" G_GINT64_MODIFIER "x/%04x", e, epoch, packet_id);
}

char *
mqtt_kv_queued_key (const char *client_id, guint64 epoch, guint64 seq)
{
  g_autofree char *e = g_uri_escape_string (client_id, NULL, FALSE);
  return g_strdup_printf ("q/%s/%016" G_GINT64_MODIFIER "x/%016" G_GINT64_MODIFIER "x", e,
                          epoch, seq);
}

guint64
mqtt_session_get_epoch (MqttSession *s)
{
  return s->epoch;
}

void
mqtt_session_set_epoch (MqttSession *s, guint64 epoch)
{
  s->epoch = epoch;
}

char *
mqtt_kv_retained_key (const char *topic)
{
  g_autofree char *e = g_uri_escape_string (topic, NULL, FALSE);
  return g_strconcat ("r/", e, NULL);
}

void
mqtt_broker_resume_waiters (MqttBroker *broker, GPtrArray *waiters)
{
  for (guint i = 0; i < waiters->len; i++)
    handle_invoke (waiters->pdata[i], broker->hooks.resume);
}

void
mqtt_broker_wake (MqttBroker *broker, MqttSession *s)
{
  g_mutex_lock (&s->lock);
  if (s->handle != NULL && !s->wake_pending)
    {
      s->wake_pending = TRUE;
      handle_invoke (s->handle, broker->hooks.pump);
    }
  g_mutex_unlock (&s->lock);
}

gboolean
mqtt_broker_session_is_attached (MqttBroker *broker, const char *client_id,
                                 MqttSession *session)
{
  MqttSession *s;
  gboolean attached = FALSE;

  g_mutex_lock (&broker->lock);
  s = g_hash_table_lookup (broker->sessions, client_id);
  if (s != NULL && s == session)
    {
      g_mutex_lock (&s->lock);
      attached = s->handle != NULL;
      g_mutex_unlock (&s->lock);
    }
  g_mutex_unlock (&broker->lock);
  return attached;
}

MqttSession *
mqtt_broker_restore_session (MqttBroker *broker, const char *client_id, guint32 expiry,
                             guint64 epoch)
{
  MqttSession *s;

  g_mutex_lock (&broker->lock);
  s = g_hash_table_lookup (broker->sessions, client_id);
  if (s == NULL)
    {
      s = session_new (broker, client_id);
      g_hash_table_insert (broker->sessions, s->client_id, s);
      sluice_counter_set (broker->hooks.sessions, g_hash_table_size (broker->sessions));
    }
  s->expiry = expiry;
  s->epoch = epoch;
  s->detached_at = g_get_monotonic_time ();
  g_mutex_unlock (&broker->lock);
  return s;
}

gboolean
mqtt_broker_has_session (MqttBroker *broker, const char *client_id)
{
  gboolean has;

  g_mutex_lock (&broker->lock);
  has = g_hash_table_contains (broker->sessions, client_id);
  g_mutex_unlock (&broker->lock);
  return has;
}

MqttSession *
mqtt_broker_lookup_session (MqttBroker *broker, const char *client_id)
{
  MqttSession *s;

  g_mutex_lock (&broker->lock);
  s = g_hash_table_lookup (broker->sessions, client_id);
  g_mutex_unlock (&broker->lock);
  return s;
}
