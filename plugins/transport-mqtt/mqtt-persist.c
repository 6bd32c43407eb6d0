/* transport-mqtt — persistent sessions and retained messages in the
 * storage KV (the host's KV service, this transport instance's space):
 *
 *   s/{client}                 (epoch, expiry, subscriptions)
 *   q/{client}/{epoch}/{seq}   a QoS 1 / 2 copy queued to a persistent
 *                              session, stored before the publisher's
 *                              PUBACK, deleted when the subscriber acks it
 *   r/{topic}                  a retained message
 *   i/{client}/{epoch}/{id}    a QoS 2 PUBLISH taken for a persistent
 *                              session, stored before its PUBREC, deleted
 *                              at its PUBREL (exactly once across restarts)
 *
 * A restart restores them before the listeners open. Copies of an older
 * epoch (a session that ended) are garbage and deleted on the way.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-conn-private.h"

#include <stdio.h>
#include <string.h>

#define SESSION_VARIANT_TYPE "(tua(sybbyu))"

/* --- save --- */

static void
add_subscription (const char *filter, const MqttSubOptions *o, gpointer data)
{
  g_variant_builder_add (data, "(sybbyu)", filter, o->qos, o->no_local,
                         o->retain_as_published, o->retain_handling, o->subscription_id);
}

void
mqtt_persist_save_session (MqttTransport *transport, MqttSession *session, guint32 expiry,
                           SluiceDoneFunc done, gpointer user_data)
{
  GVariantBuilder subs;
  g_autoptr (GVariant) v = NULL;
  g_autoptr (GBytes) value = NULL;
  g_autofree char *key = mqtt_kv_session_key (mqtt_session_get_client_id (session));
  SluiceKvOp op = { SLUICE_KV_PUT, NULL, NULL };

  g_variant_builder_init (&subs, G_VARIANT_TYPE ("a(sybbyu)"));
  mqtt_broker_foreach_subscription (transport->broker, session, add_subscription, &subs);
  v = g_variant_ref_sink (g_variant_new (SESSION_VARIANT_TYPE,
                                         mqtt_session_get_epoch (session), expiry, &subs));
  value = g_variant_get_data_as_bytes (v);
  op.key = key;
  op.value = value;
  sluice_host_kv_commit (transport->host, transport->instance_name, &op, 1, done, user_data);
}

/* --- delete --- */

typedef struct {
  MqttTransport *transport;
  char *client_id;
} DeleteJob;

static void
delete_scanned (GPtrArray *pairs, const GError *error, gpointer data)
{
  DeleteJob *job = data;
  g_autoptr (GPtrArray) owned = pairs;

  if (error != NULL)
    sluice_warning (job->transport->instance_name, "the stored copies of ended session "
                    "'%s' could not be listed: %s", job->client_id, error->message);
  else if (pairs->len > 0)
    {
      g_autoptr (GArray) ops = g_array_sized_new (FALSE, TRUE, sizeof (SluiceKvOp), pairs->len);

      for (guint i = 0; i < pairs->len; i++)
        {
          SluiceKvOp op = { SLUICE_KV_DELETE, ((SluiceKvPair *) pairs->pdata[i])->key, NULL };
          g_array_append_val (ops, op);
        }
      sluice_host_kv_commit (job->transport->host, job->transport->instance_name,
                             (SluiceKvOp *) ops->data, ops->len, NULL, NULL);
    }
  g_free (job->client_id);
  g_free (job);
}

void
mqtt_persist_delete_session (MqttTransport *transport, const char *client_id, guint64 epoch)
{
  g_autofree char *key = mqtt_kv_session_key (client_id);
  g_autofree char *prefix = mqtt_kv_queued_prefix (client_id, epoch);
  DeleteJob *job = g_new0 (DeleteJob, 1);

  /* The record: only when no new session of the client id exists (a clean
   * start that made one stores its own record over it). */
  {
    SluiceKvOp op = { SLUICE_KV_DELETE, key, NULL };

    if (!mqtt_broker_has_session (transport->broker, client_id))
      sluice_host_kv_commit (transport->host, transport->instance_name, &op, 1, NULL, NULL);
  }
  job->transport = transport;
  job->client_id = g_strdup (client_id);
  sluice_host_kv_scan (transport->host, transport->instance_name, prefix, delete_scanned, job);
  {
    g_autofree char *ids = mqtt_kv_qos2_prefix (client_id, epoch);
    DeleteJob *job2 = g_new0 (DeleteJob, 1);

    job2->transport = transport;
    job2->client_id = g_strdup (client_id);
    sluice_host_kv_scan (transport->host, transport->instance_name, ids, delete_scanned, job2);
  }
}

/* --- retained --- */

void
mqtt_persist_retain (MqttTransport *transport, MqttMessage *message, SluiceDoneFunc done,
                     gpointer user_data)
{
  g_autofree char *key = mqtt_kv_retained_key (message->topic);
  g_autoptr (GBytes) value = NULL;
  SluiceKvOp op = { SLUICE_KV_DELETE, NULL, NULL };

  op.key = key;
  if (g_bytes_get_size (message->payload) > 0)
    {
      value = mqtt_message_serialize (message, message->qos, NULL);
      op.type = SLUICE_KV_PUT;
      op.value = value;
    }
  sluice_host_kv_commit (transport->host, transport->instance_name, &op, 1, done, user_data);
}

/* --- restore --- */

static char *
unescape_segment (const char *start, gsize len)
{
  g_autofree char *escaped = g_strndup (start, len);
  return g_uri_unescape_string (escaped, NULL);
}

static guint
restore_sessions (MqttTransport *transport, GError **error)
{
  g_autoptr (GPtrArray) pairs = sluice_host_kv_scan_sync (transport->host,
                                                          transport->instance_name, "s/",
                                                          error);
  guint n = 0;

  if (pairs == NULL)
    return G_MAXUINT;
  for (guint i = 0; i < pairs->len; i++)
    {
      SluiceKvPair *pair = pairs->pdata[i];
      g_autofree char *client_id = unescape_segment (pair->key + 2, strlen (pair->key + 2));
      g_autoptr (GVariant) v = NULL;
      g_autoptr (GVariantIter) subs = NULL;
      guint64 epoch;
      guint32 expiry;
      const char *filter;
      MqttSubOptions o = { 0 };
      MqttSession *s;

      v = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (SESSION_VARIANT_TYPE),
                                                        pair->value, FALSE));
      if (client_id == NULL || !g_variant_is_normal_form (v))
        {
          sluice_warning (transport->instance_name, "stored session '%s' is unreadable; "
                          "ignored", pair->key);
          continue;
        }
      g_variant_get (v, SESSION_VARIANT_TYPE, &epoch, &expiry, &subs);
      s = mqtt_broker_restore_session (transport->broker, client_id, expiry, epoch);
      while (g_variant_iter_next (subs, "(&sybbyu)", &filter, &o.qos, &o.no_local,
                                  &o.retain_as_published, &o.retain_handling,
                                  &o.subscription_id))
        {
          g_autoptr (GError) local_error = NULL;
          gboolean existed;

          if (!mqtt_broker_subscribe (transport->broker, s, filter, &o, &existed,
                                      &local_error))
            sluice_warning (transport->instance_name, "stored subscription '%s' of "
                            "session '%s' refused: %s", filter, client_id,
                            local_error->message);
        }
      n++;
    }
  return n;
}

/* The session a `q/` or `i/` key belongs to (NULL: none any more), and in
 * `tail` what follows its client id segment. */
static MqttSession *
session_of_key (MqttTransport *transport, const char *key, const char **tail)
{
  const char *rest = key + 2;
  const char *slash = strchr (rest, '/');
  g_autofree char *client_id = NULL;

  if (slash == NULL)
    return NULL;
  client_id = unescape_segment (rest, slash - rest);
  *tail = slash + 1;
  return client_id != NULL ? mqtt_broker_lookup_session (transport->broker, client_id) : NULL;
}

static guint
restore_queued (MqttTransport *transport, guint *garbage, GError **error)
{
  g_autoptr (GPtrArray) pairs = sluice_host_kv_scan_sync (transport->host,
                                                          transport->instance_name, "q/",
                                                          error);
  g_autoptr (GArray) deletes = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));
  gint64 now = g_get_real_time ();
  guint n = 0;

  if (pairs == NULL)
    return G_MAXUINT;
  for (guint i = 0; i < pairs->len; i++)
    {
      SluiceKvPair *pair = pairs->pdata[i];
      const char *tail = NULL;
      guint64 epoch = 0, seq = 0;
      MqttSession *s = session_of_key (transport, pair->key, &tail);
      MqttQueued *q;
      guint8 qos = 0;
      GArray *sub_ids = NULL;
      MqttMessage *m;

      if (s == NULL
          || sscanf (tail, "%16" G_GINT64_MODIFIER "x/%16" G_GINT64_MODIFIER "x", &epoch,
                     &seq) != 2
          || mqtt_session_get_epoch (s) != epoch
          || (m = mqtt_message_deserialize (pair->value, &qos, &sub_ids)) == NULL)
        {
          SluiceKvOp op = { SLUICE_KV_DELETE, pair->key, NULL };
          g_array_append_val (deletes, op);
          continue;
        }
      if (m->expires_at != 0 && m->expires_at <= now)
        {
          SluiceKvOp op = { SLUICE_KV_DELETE, pair->key, NULL };
          g_array_append_val (deletes, op);
          sluice_counter_add (transport->dropped_expired, 1);
          mqtt_message_unref (m);
          if (sub_ids != NULL)
            g_array_unref (sub_ids);
          continue;
        }
      q = g_new0 (MqttQueued, 1);
      q->message = m;
      q->qos = qos;
      q->sub_ids = sub_ids;
      q->store_seq = seq;
      mqtt_session_lock (s);
      mqtt_session_set_store_seq (s, seq + 1);
      mqtt_session_unlock (s);
      mqtt_broker_enqueue (transport->broker, s, q);
      n++;
    }
  *garbage = deletes->len;
  if (deletes->len > 0)
    sluice_host_kv_commit (transport->host, transport->instance_name,
                           (SluiceKvOp *) deletes->data, deletes->len, NULL, NULL);
  /* The keys in `deletes` belong to `pairs`: the commit copied them. */
  return n;
}

static guint
restore_retained (MqttTransport *transport, GError **error)
{
  g_autoptr (GPtrArray) pairs = sluice_host_kv_scan_sync (transport->host,
                                                          transport->instance_name, "r/",
                                                          error);
  gint64 now = g_get_real_time ();
  guint n = 0;

  if (pairs == NULL)
    return G_MAXUINT;
  for (guint i = 0; i < pairs->len; i++)
    {
      SluiceKvPair *pair = pairs->pdata[i];
      guint8 qos = 0;
      GArray *sub_ids = NULL;
      g_autoptr (MqttMessage) m = mqtt_message_deserialize (pair->value, &qos, &sub_ids);

      if (sub_ids != NULL)
        g_array_unref (sub_ids);
      if (m == NULL || (m->expires_at != 0 && m->expires_at <= now))
        continue;
      mqtt_broker_retain (transport->broker, m);
      n++;
    }
  return n;
}

/* QoS 2 packet ids whose PUBREL had not come: back into their sessions. */
static guint
restore_qos2_ids (MqttTransport *transport, guint *garbage, GError **error)
{
  g_autoptr (GPtrArray) pairs = sluice_host_kv_scan_sync (transport->host,
                                                          transport->instance_name, "i/",
                                                          error);
  g_autoptr (GArray) deletes = g_array_new (FALSE, TRUE, sizeof (SluiceKvOp));
  guint n = 0;

  if (pairs == NULL)
    return G_MAXUINT;
  for (guint i = 0; i < pairs->len; i++)
    {
      SluiceKvPair *pair = pairs->pdata[i];
      const char *tail = NULL;
      guint64 epoch = 0;
      guint id = 0;
      MqttSession *s = session_of_key (transport, pair->key, &tail);

      if (s == NULL || sscanf (tail, "%16" G_GINT64_MODIFIER "x/%4x", &epoch, &id) != 2
          || mqtt_session_get_epoch (s) != epoch || id == 0 || id > G_MAXUINT16)
        {
          SluiceKvOp op = { SLUICE_KV_DELETE, pair->key, NULL };
          g_array_append_val (deletes, op);
          continue;
        }
      mqtt_session_lock (s);
      mqtt_session_qos2_add (s, (guint16) id);
      mqtt_session_unlock (s);
      n++;
    }
  *garbage += deletes->len;
  if (deletes->len > 0)
    sluice_host_kv_commit (transport->host, transport->instance_name,
                           (SluiceKvOp *) deletes->data, deletes->len, NULL, NULL);
  return n;
}

gboolean
mqtt_persist_restore (MqttTransport *transport, GError **error)
{
  guint sessions, queued, retained, garbage = 0;

  sessions = restore_sessions (transport, error);
  if (sessions == G_MAXUINT)
    return FALSE;
  queued = restore_queued (transport, &garbage, error);
  if (queued == G_MAXUINT)
    return FALSE;
  retained = restore_retained (transport, error);
  if (retained == G_MAXUINT)
    return FALSE;
  if (restore_qos2_ids (transport, &garbage, error) == G_MAXUINT)
    return FALSE;
  if (sessions + queued + retained + garbage > 0)
    sluice_info (transport->instance_name, "restored %u persistent sessions, %u queued "
                 "messages and %u retained messages (%u stale copies removed)", sessions,
                 queued, retained, garbage);
  return TRUE;
}
