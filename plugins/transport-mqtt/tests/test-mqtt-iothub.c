/* transport-mqtt — the IoT Hub helpers as pure functions: the telemetry
 * topic, the url-encoded property bag and the device login form.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mqtt-transport.h"

static GPtrArray *
parse_ok (const char *bag)
{
  GPtrArray *headers = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;

  g_assert_true (mqtt_iothub_parse_property_bag (bag, headers, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (headers->len % 2, ==, 0);
  return headers;
}

static void
assert_headers (GPtrArray *headers, const char *const *want)
{
  guint n = g_strv_length ((char **) want);

  g_assert_cmpuint (headers->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpstr (headers->pdata[i], ==, want[i]);
}

static void
test_bag_plain (void)
{
  g_autoptr (GPtrArray) h = parse_ok ("temperature=21.5&unit=C");
  const char *want[] = { "temperature", "21.5", "unit", "C", NULL };

  assert_headers (h, want);
}

static void
test_bag_system (void)
{
  g_autoptr (GPtrArray) h =
    parse_ok ("%24.mid=m1&%24.cid=c1&$.ct=application%2Fjson&$.ce=utf-8&$.to=x&$.exp=1&a=b");
  const char *want[] = { "message-id", "m1", "correlation-id", "c1",
                         "content-type", "application/json", "content-encoding", "utf-8",
                         "a", "b", NULL };

  assert_headers (h, want);
}

static void
test_bag_escapes (void)
{
  g_autoptr (GPtrArray) h = parse_ok ("na%20me=caf%C3%A9%26more&empty=&flag&&x=a=b");
  const char *want[] = { "na me", "caf\u00e9&more", "empty", "", "flag", "", "x", "a=b", NULL };

  assert_headers (h, want);
}

static void
test_bag_empty (void)
{
  g_autoptr (GPtrArray) h = parse_ok ("");
  g_autoptr (GPtrArray) h2 = parse_ok (NULL);

  g_assert_cmpuint (h->len, ==, 0);
  g_assert_cmpuint (h2->len, ==, 0);
}

static void
test_bag_refused (void)
{
  const char *bad[] = { "a=%zz", "%G1=x", "=value", "a=%ff", "a=%00", NULL };

  for (guint i = 0; bad[i] != NULL; i++)
    {
      g_autoptr (GPtrArray) h = g_ptr_array_new_with_free_func (g_free);
      g_autoptr (GError) error = NULL;

      g_assert_false (mqtt_iothub_parse_property_bag (bad[i], h, &error));
      g_assert_error (error, SLUICE_ERROR, SLUICE_ERROR_INVALID);
    }
}

static void
test_events_topic (void)
{
  struct { const char *topic; const char *id; const char *bag; } ok[] = {
    { "devices/dev1/messages/events/", "dev1", "" },
    { "devices/dev1/messages/events", "dev1", "" },
    { "devices/d-2/messages/events/a=b&%24.mid=1", "d-2", "a=b&%24.mid=1" },
  };
  const char *bad[] = { "devices//messages/events/", "devices/dev1/messages/eventsx",
                        "devices/dev1/messages/devicebound/", "sensors/a", "devices/dev1",
                        "$iothub/twin/GET/?$rid=1", NULL };

  for (gsize i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_autofree char *id = NULL;
      const char *bag = NULL;

      g_assert_true (mqtt_iothub_parse_events_topic (ok[i].topic, &id, NULL, &bag));
      g_assert_cmpstr (id, ==, ok[i].id);
      g_assert_cmpstr (bag, ==, ok[i].bag);
    }
  for (guint i = 0; bad[i] != NULL; i++)
    {
      char *id = NULL;
      const char *bag = NULL;

      g_assert_false (mqtt_iothub_parse_events_topic (bad[i], &id, NULL, &bag));
      g_assert_null (id);
    }
}

static void
test_device_login (void)
{
  g_assert_true (mqtt_iothub_is_device_login ("hub.example/dev1/?api-version=2021-04-12",
                                              "dev1"));
  g_assert_true (mqtt_iothub_is_device_login (
    "hub/dev1/?api-version=2021-04-12&DeviceClientType=x", "dev1"));
  g_assert_true (mqtt_iothub_is_device_login ("hub/dev1/", "dev1"));
  g_assert_true (mqtt_iothub_is_device_login ("hub/dev1", "dev1"));
  g_assert_false (mqtt_iothub_is_device_login ("hub/dev10/?api-version=1", "dev1"));
  g_assert_false (mqtt_iothub_is_device_login ("hub/dev2/?api-version=1", "dev1"));
  g_assert_false (mqtt_iothub_is_device_login ("/dev1/", "dev1"));
  g_assert_false (mqtt_iothub_is_device_login ("owner", "dev1"));
  g_assert_false (mqtt_iothub_is_device_login (NULL, "dev1"));
  g_assert_false (mqtt_iothub_is_device_login ("hub//?x", ""));
  /* Modules: ClientId `{id}/{module}`, Username `{host}/{id}/{module}/?...`. */
  g_assert_true (mqtt_iothub_is_device_login ("hub/dev1/mod1/?api-version=2021-04-12",
                                              "dev1/mod1"));
  g_assert_false (mqtt_iothub_is_device_login ("hub/dev1/mod2/?api-version=1", "dev1/mod1"));
  g_assert_false (mqtt_iothub_is_device_login ("hub/dev1/?api-version=1", "dev1/mod1"));
  g_assert_false (mqtt_iothub_is_device_login ("hub/dev1/m/x/", "dev1/m/x"));
  g_assert_false (mqtt_iothub_is_device_login ("hub/dev1//", "dev1/"));
  {
    g_autofree char *id = NULL;
    g_autofree char *module = NULL;
    const char *bag = NULL;

    g_assert_true (mqtt_iothub_parse_events_topic ("devices/d1/modules/m1/messages/events/a=1",
                                                   &id, &module, &bag));
    g_assert_cmpstr (id, ==, "d1");
    g_assert_cmpstr (module, ==, "m1");
    g_assert_cmpstr (bag, ==, "a=1");
    g_clear_pointer (&id, g_free);
    g_assert_false (mqtt_iothub_parse_events_topic ("devices/d1/modules//messages/events/",
                                                    &id, &module, &bag));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/transport/mqtt/iothub/bag/plain", test_bag_plain);
  g_test_add_func ("/transport/mqtt/iothub/bag/system", test_bag_system);
  g_test_add_func ("/transport/mqtt/iothub/bag/escapes", test_bag_escapes);
  g_test_add_func ("/transport/mqtt/iothub/bag/empty", test_bag_empty);
  g_test_add_func ("/transport/mqtt/iothub/bag/refused", test_bag_refused);
  g_test_add_func ("/transport/mqtt/iothub/events-topic", test_events_topic);
  g_test_add_func ("/transport/mqtt/iothub/device-login", test_device_login);
  return g_test_run ();
}
