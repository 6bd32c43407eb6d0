/* transport-mqtt — the broker without sockets: messages round-trip through
 * their KV form, publishing queues copies to matching sessions with the
 * right QoS / RETAIN / subscription ids, a full session holds the
 * publisher back and lets it go once drained, sessions are taken over,
 * expire, and keep their QoS 2 state; retained messages follow their rules.
 * The connections are stand-ins: handles on a test main context whose
 * callbacks record what the broker asked of them.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-broker.h"

#include <string.h>

typedef struct {
  guint pumps;
  guint resumes;
  guint takeovers;
} Calls;

static Calls calls;

static void
on_pump (MqttConnHandle *handle, gpointer conn)
{
  calls.pumps++;
}

static void
on_resume (MqttConnHandle *handle, gpointer conn)
{
  calls.resumes++;
}

static void
on_taken_over (MqttConnHandle *handle, gpointer conn)
{
  calls.takeovers++;
}

static void
iterate (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static MqttBroker *
broker_new (guint high_water)
{
  MqttBrokerHooks hooks = { 0 };

  hooks.pump = on_pump;
  hooks.resume = on_resume;
  hooks.taken_over = on_taken_over;
  memset (&calls, 0, sizeof calls);
  return mqtt_broker_new (&hooks, high_water);
}

static MqttMessage *
message (const char *topic, const char *payload, guint8 qos, gboolean retain)
{
  g_autoptr (GBytes) b = g_bytes_new (payload, strlen (payload));
  return mqtt_message_new (topic, b, qos, retain);
}

static void
test_serialize (void)
{
  g_autoptr (MqttMessage) m = message ("a/b", "payload", 2, TRUE);
  g_autoptr (MqttMessage) back = NULL;
  g_autoptr (GBytes) corr = g_bytes_new ("\x00\x01", 2);
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GBytes) bytes = NULL;
  GArray *ids_back = NULL;
  guint8 qos = 0;
  guint32 id = 7;

  m->expires_at = 123456789;
  mqtt_props_set_string (&m->props, MQTT_PROP_CONTENT_TYPE, "text/plain");
  mqtt_props_set_string (&m->props, MQTT_PROP_RESPONSE_TOPIC, "r/t");
  mqtt_props_set_binary (&m->props, MQTT_PROP_CORRELATION_DATA, corr);
  mqtt_props_set_int (&m->props, MQTT_PROP_PAYLOAD_FORMAT, 1);
  mqtt_props_add_user (&m->props, "k", "v");
  g_array_append_val (ids, id);
  bytes = mqtt_message_serialize (m, 1, ids);
  back = mqtt_message_deserialize (bytes, &qos, &ids_back);
  g_assert_nonnull (back);
  g_assert_cmpstr (back->topic, ==, "a/b");
  g_assert_true (g_bytes_equal (back->payload, m->payload));
  g_assert_cmpuint (qos, ==, 1);
  g_assert_true (back->retain);
  g_assert_cmpint (back->expires_at, ==, 123456789);
  g_assert_cmpstr (back->props.content_type, ==, "text/plain");
  g_assert_cmpstr (back->props.response_topic, ==, "r/t");
  g_assert_true (g_bytes_equal (back->props.correlation_data, corr));
  g_assert_cmpuint (back->props.payload_format, ==, 1);
  g_assert_cmpuint (back->props.user->len, ==, 1);
  g_assert_nonnull (ids_back);
  g_assert_cmpuint (g_array_index (ids_back, guint32, 0), ==, 7);
  g_array_unref (ids_back);

  /* Anything else is refused, not misread. */
  {
    g_autoptr (GBytes) junk = g_bytes_new ("garbage", 7);
    g_assert_null (mqtt_message_deserialize (junk, &qos, &ids_back));
  }
}

static void
test_publish (void)
{
  MqttBroker *broker = broker_new (100);
  g_autoptr (MqttConnHandle) ha = mqtt_conn_handle_new (g_main_context_default (), &calls);
  g_autoptr (MqttConnHandle) hb = mqtt_conn_handle_new (g_main_context_default (), &calls);
  gboolean present;
  guint64 ended;
  g_autoptr (MqttSession) a = mqtt_broker_attach (broker, "a", TRUE, 0, ha, &present, &ended);
  g_autoptr (MqttSession) b = mqtt_broker_attach (broker, "b", TRUE, 3600, hb, &present, &ended);
  MqttSubOptions o1 = { 1, FALSE, FALSE, 0, 5 };
  MqttSubOptions o2 = { 2, TRUE, TRUE, 0, 0 };
  MqttPublishResult r;
  g_autoptr (MqttMessage) m = message ("s/1", "x", 2, TRUE);
  gboolean existed;
  MqttQueued *q;

  g_assert_true (mqtt_broker_subscribe (broker, a, "s/+", &o1, &existed, NULL));
  g_assert_true (mqtt_broker_subscribe (broker, b, "s/#", &o2, &existed, NULL));
  mqtt_broker_publish (broker, m, b, NULL, &r);
  /* b has no-local: only a gets it, at min (2, 1) = 1, RETAIN cleared,
   * with its subscription id; a is not persistent: nothing to store. */
  g_assert_cmpuint (r.matched, ==, 1);
  g_assert_null (r.stored_keys);
  mqtt_publish_result_clear (&r);
  iterate ();
  g_assert_cmpuint (calls.pumps, ==, 1);
  mqtt_session_lock (a);
  q = mqtt_session_pop (a);
  mqtt_session_unlock (a);
  g_assert_nonnull (q);
  g_assert_cmpuint (q->qos, ==, 1);
  g_assert_false (q->retain);
  g_assert_cmpuint (g_array_index (q->sub_ids, guint32, 0), ==, 5);
  mqtt_queued_free (q);

  /* From someone else: b (persistent, QoS 2 granted, retain-as-published)
   * gets a stored copy with RETAIN kept. */
  mqtt_broker_publish (broker, m, NULL, NULL, &r);
  g_assert_cmpuint (r.matched, ==, 2);
  g_assert_nonnull (r.stored_keys);
  g_assert_cmpuint (r.stored_keys->len, ==, 1);
  g_assert_true (g_str_has_prefix (r.stored_keys->pdata[0], "q/b/"));
  mqtt_publish_result_clear (&r);
  mqtt_session_lock (b);
  q = mqtt_session_pop (b);
  mqtt_session_unlock (b);
  g_assert_cmpuint (q->qos, ==, 2);
  g_assert_true (q->retain);
  g_assert_cmpuint (q->store_seq, >, 0);
  mqtt_queued_free (q);

  /* `$` topics are not matched by a leading wildcard. */
  {
    g_autoptr (MqttMessage) d = message ("$SYS/x", "y", 1, FALSE);
    MqttSubOptions o = { 1, FALSE, FALSE, 0, 0 };

    g_assert_true (mqtt_broker_subscribe (broker, a, "#", &o, &existed, NULL));
    mqtt_broker_publish (broker, d, NULL, NULL, &r);
    g_assert_cmpuint (r.matched, ==, 0);
    mqtt_publish_result_clear (&r);
  }
  iterate ();
  mqtt_broker_detach (broker, a, ha, 0);
  mqtt_broker_detach (broker, b, hb, 0);
  mqtt_broker_free (broker);
}

static void
test_backpressure (void)
{
  MqttBroker *broker = broker_new (10);
  g_autoptr (MqttConnHandle) hs = mqtt_conn_handle_new (g_main_context_default (), &calls);
  g_autoptr (MqttConnHandle) hp = mqtt_conn_handle_new (g_main_context_default (), &calls);
  gboolean present, existed;
  guint64 ended;
  g_autoptr (MqttSession) s = mqtt_broker_attach (broker, "slow", TRUE, 0, hs, &present, &ended);
  MqttSubOptions o = { 1, FALSE, FALSE, 0, 0 };
  MqttPublishResult r;
  guint blocked_at = 0;
  g_autoptr (GPtrArray) waiters = NULL;

  g_assert_true (mqtt_broker_subscribe (broker, s, "t", &o, &existed, NULL));
  for (guint i = 1; i <= 20 && blocked_at == 0; i++)
    {
      g_autoptr (MqttMessage) m = message ("t", "x", 1, FALSE);

      mqtt_broker_publish (broker, m, NULL, hp, &r);
      if (r.blocked)
        blocked_at = i;
      mqtt_publish_result_clear (&r);
    }
  /* Held back at the high-water mark; nothing was dropped. */
  g_assert_cmpuint (blocked_at, ==, 10);
  mqtt_session_lock (s);
  g_assert_cmpuint (mqtt_session_queue_length (s), ==, 10);
  g_assert_null (mqtt_session_take_waiters_if_drained (s));
  for (guint i = 0; i < 5; i++)
    mqtt_queued_free (mqtt_session_pop (s));
  /* At the low-water mark (half) the publisher may read again. */
  waiters = mqtt_session_take_waiters_if_drained (s);
  mqtt_session_unlock (s);
  g_assert_nonnull (waiters);
  g_assert_cmpuint (waiters->len, ==, 1);
  g_assert_true (waiters->pdata[0] == hp);
  mqtt_broker_resume_waiters (broker, waiters);
  iterate ();
  g_assert_cmpuint (calls.resumes, ==, 1);
  mqtt_broker_detach (broker, s, hs, 0);
  mqtt_broker_free (broker);
}

static void
test_sessions (void)
{
  MqttBroker *broker = broker_new (100);
  g_autoptr (MqttConnHandle) h1 = mqtt_conn_handle_new (g_main_context_default (), &calls);
  g_autoptr (MqttConnHandle) h2 = mqtt_conn_handle_new (g_main_context_default (), &calls);
  gboolean present;
  guint64 ended;
  g_autoptr (MqttSession) s1 = mqtt_broker_attach (broker, "c", FALSE, 1, h1, &present, &ended);
  g_autoptr (MqttSession) s2 = NULL;
  g_autoptr (GPtrArray) expired = NULL;
  MqttSubOptions o = { 1, FALSE, FALSE, 0, 0 };
  gboolean existed;

  g_assert_false (present);
  g_assert_true (mqtt_broker_subscribe (broker, s1, "x", &o, &existed, NULL));
  mqtt_session_lock (s1);
  mqtt_session_qos2_add (s1, 9);
  mqtt_session_unlock (s1);

  /* A second connection takes it over; the first is told. */
  s2 = mqtt_broker_attach (broker, "c", FALSE, 1, h2, &present, &ended);
  g_assert_true (present);
  g_assert_true (s1 == s2);
  iterate ();
  g_assert_cmpuint (calls.takeovers, ==, 1);
  /* The old connection's detach does nothing to it now. */
  g_assert_false (mqtt_broker_detach (broker, s1, h1, 1));
  mqtt_session_lock (s2);
  g_assert_true (mqtt_session_qos2_received (s2, 9));
  g_assert_true (mqtt_session_qos2_release (s2, 9));
  g_assert_false (mqtt_session_qos2_received (s2, 9));
  mqtt_session_unlock (s2);

  /* Detached, it lives until its expiry (1 s here). */
  g_assert_false (mqtt_broker_detach (broker, s2, h2, 1));
  g_assert_cmpuint (mqtt_broker_session_count (broker), ==, 1);
  expired = mqtt_broker_expire_sessions (broker);
  g_assert_cmpuint (expired->len, ==, 0);
  g_clear_pointer (&expired, g_ptr_array_unref);
  g_usleep (1100 * 1000);
  expired = mqtt_broker_expire_sessions (broker);
  g_assert_cmpuint (expired->len, ==, 1);
  g_assert_cmpuint (mqtt_broker_session_count (broker), ==, 0);

  /* A clean start discards a persistent session and says which epoch. */
  {
    g_autoptr (MqttSession) p = mqtt_broker_attach (broker, "p", FALSE, 60, h1, &present,
                                                    &ended);
    g_autoptr (MqttSession) q = NULL;
    guint64 epoch = mqtt_session_get_epoch (p);

    mqtt_broker_detach (broker, p, h1, 60);
    q = mqtt_broker_attach (broker, "p", TRUE, 0, h2, &present, &ended);
    g_assert_false (present);
    g_assert_cmpuint (ended, ==, epoch);
    g_assert_true (p != q);
    g_assert_true (mqtt_broker_detach (broker, q, h2, 0));
  }
  iterate ();
  mqtt_broker_free (broker);
}

static void
test_retained (void)
{
  MqttBroker *broker = broker_new (100);
  g_autoptr (MqttMessage) r1 = message ("r/a", "1", 1, TRUE);
  g_autoptr (MqttMessage) r2 = message ("r/b", "2", 0, TRUE);
  g_autoptr (MqttMessage) gone = message ("r/a", "", 0, TRUE);
  g_autoptr (MqttMessage) old = message ("r/c", "3", 0, TRUE);
  g_autoptr (GPtrArray) found = NULL;

  mqtt_broker_retain (broker, r1);
  mqtt_broker_retain (broker, r2);
  old->expires_at = g_get_real_time () - 1;
  mqtt_broker_retain (broker, old);
  found = mqtt_broker_retained_matching (broker, "r/+");
  /* The expired one is not sent (and goes). */
  g_assert_cmpuint (found->len, ==, 2);
  g_assert_cmpuint (mqtt_broker_retained_count (broker), ==, 2);
  g_clear_pointer (&found, g_ptr_array_unref);
  /* An empty retained payload deletes. */
  mqtt_broker_retain (broker, gone);
  found = mqtt_broker_retained_matching (broker, "#");
  g_assert_cmpuint (found->len, ==, 1);
  g_assert_cmpstr (((MqttMessage *) found->pdata[0])->topic, ==, "r/b");
  mqtt_broker_free (broker);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/mqtt/broker/serialize", test_serialize);
  g_test_add_func ("/mqtt/broker/publish", test_publish);
  g_test_add_func ("/mqtt/broker/backpressure", test_backpressure);
  g_test_add_func ("/mqtt/broker/sessions", test_sessions);
  g_test_add_func ("/mqtt/broker/retained", test_retained);
  return g_test_run ();
}
