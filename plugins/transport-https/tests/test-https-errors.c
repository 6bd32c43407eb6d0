/* transport-https errors: every host error has its HTTP status and code, and
 * error bodies have the two shapes SDKs parse.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <json-glib/json-glib.h>

static void
test_statuses (void)
{
  static const struct {
    SluiceError code;
    guint status;
    const char *plain;
    const char *iothub;
  } want[] = {
    { SLUICE_ERROR_INVALID, 400, "BadRequest", "ArgumentInvalid" },
    { SLUICE_ERROR_UNAUTHENTICATED, 401, "Unauthorized", "IotHubUnauthorizedAccess" },
    { SLUICE_ERROR_FORBIDDEN, 403, "Forbidden", "IotHubUnauthorizedAccess" },
    { SLUICE_ERROR_NOT_FOUND, 404, "NotFound", "DeviceNotFound" },
    { SLUICE_ERROR_EXISTS, 409, "Conflict", "DeviceAlreadyExists" },
    { SLUICE_ERROR_PRECONDITION, 412, "PreconditionFailed", "PreconditionFailed" },
    { SLUICE_ERROR_TOO_LARGE, 413, "MessageTooLarge", "MessageTooLarge" },
    { SLUICE_ERROR_THROTTLED, 429, "ServerBusy", "ThrottlingException" },
    { SLUICE_ERROR_OFFSET_OUT_OF_RANGE, 400, "OffsetOutOfRange", "ArgumentInvalid" },
    { SLUICE_ERROR_UNSUPPORTED, 501, "NotImplemented", "NotImplemented" },
    { SLUICE_ERROR_SHUTTING_DOWN, 503, "ServiceUnavailable", "ServiceUnavailable" },
    { SLUICE_ERROR_STORAGE, 503, "StorageError", "ServerError" },
    { SLUICE_ERROR_CORRUPT, 500, "CorruptData", "ServerError" },
    { SLUICE_ERROR_FAILED, 500, "InternalServerError", "ServerError" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    {
      g_autoptr (GError) e = g_error_new_literal (SLUICE_ERROR, want[i].code, "x");
      const char *code = NULL;

      g_assert_cmpuint (https_status_for_error (e, FALSE, &code), ==, want[i].status);
      g_assert_cmpstr (code, ==, want[i].plain);
      g_assert_cmpuint (https_status_for_error (e, TRUE, &code), ==, want[i].status);
      g_assert_cmpstr (code, ==, want[i].iothub);
    }
  {
    g_autoptr (GError) e = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "x");
    g_autoptr (GError) other = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "x");
    const char *code = NULL;

    g_assert_cmpuint (https_status_for_error (e, FALSE, &code), ==, 503);
    g_assert_cmpuint (https_status_for_error (other, FALSE, &code), ==, 500);
    g_assert_cmpuint (https_status_for_error (NULL, TRUE, &code), ==, 500);
  }
}

static JsonObject *
parse_object (JsonParser *parser, const char *json)
{
  g_assert_true (json_parser_load_from_data (parser, json, -1, NULL));
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_node_get_object (json_parser_get_root (parser));
}

static void
test_bodies (void)
{
  g_autofree char *iothub = https_error_body (TRUE, "DeviceNotFound", "device 'a\"b' does not exist");
  g_autofree char *plain = https_error_body (FALSE, "NotFound", "no such stream: x");
  g_autoptr (JsonParser) p1 = json_parser_new ();
  g_autoptr (JsonParser) p2 = json_parser_new ();
  JsonObject *o;

  o = parse_object (p1, iothub);
  g_assert_cmpstr (json_object_get_string_member (o, "Message"), ==,
                   "ErrorCode:DeviceNotFound;device 'a\"b' does not exist");
  g_assert_cmpstr (json_object_get_string_member (o, "ExceptionMessage"), ==,
                   "device 'a\"b' does not exist");
  g_assert_false (json_object_has_member (o, "ErrorCode"));

  o = parse_object (p2, plain);
  g_assert_cmpstr (json_object_get_string_member (o, "Message"), ==, "no such stream: x");
  g_assert_cmpstr (json_object_get_string_member (o, "ErrorCode"), ==, "NotFound");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/transport/https/errors/statuses", test_statuses);
  g_test_add_func ("/transport/https/errors/bodies", test_bodies);
  return g_test_run ();
}
