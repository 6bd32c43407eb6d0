/* transport-https — error statuses and bodies, in one place.
 *
 * Host errors (SluiceError) map to HTTP statuses here and nowhere else.
 * Device and registry paths answer in IoT Hub's shape, which the device and
 * service SDKs parse (`{"Message":"ErrorCode:DeviceNotFound;...",
 * "ExceptionMessage":...}` plus an `iothub-errorcode` header); every other
 * path answers `{"Message":...,"ErrorCode":...}`.
 * SPDX-License-Identifier: Apache-2.0 */
#include "https-transport.h"

#include <string.h>

typedef struct {
  gint code;
  guint status;
  const char *iothub;
  const char *plain;
} ErrorMap;

static const ErrorMap error_map[] = {
  { SLUICE_ERROR_FAILED, SOUP_STATUS_INTERNAL_SERVER_ERROR, "ServerError", "InternalServerError" },
  { SLUICE_ERROR_INVALID, SOUP_STATUS_BAD_REQUEST, "ArgumentInvalid", "BadRequest" },
  { SLUICE_ERROR_NOT_FOUND, SOUP_STATUS_NOT_FOUND, "DeviceNotFound", "NotFound" },
  { SLUICE_ERROR_EXISTS, SOUP_STATUS_CONFLICT, "DeviceAlreadyExists", "Conflict" },
  { SLUICE_ERROR_UNAUTHENTICATED, SOUP_STATUS_UNAUTHORIZED, "IotHubUnauthorizedAccess",
    "Unauthorized" },
  { SLUICE_ERROR_FORBIDDEN, SOUP_STATUS_FORBIDDEN, "IotHubUnauthorizedAccess", "Forbidden" },
  { SLUICE_ERROR_TOO_LARGE, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "MessageTooLarge",
    "MessageTooLarge" },
  { SLUICE_ERROR_PRECONDITION, SOUP_STATUS_PRECONDITION_FAILED, "PreconditionFailed",
    "PreconditionFailed" },
  { SLUICE_ERROR_THROTTLED, 429, "ThrottlingException", "ServerBusy" },
  { SLUICE_ERROR_STORAGE, SOUP_STATUS_SERVICE_UNAVAILABLE, "ServerError", "StorageError" },
  { SLUICE_ERROR_CORRUPT, SOUP_STATUS_INTERNAL_SERVER_ERROR, "ServerError", "CorruptData" },
  /* A read outside [first, next]: the client asked for something that is
   * not there (or no longer, after retention). */
  { SLUICE_ERROR_OFFSET_OUT_OF_RANGE, SOUP_STATUS_BAD_REQUEST, "ArgumentInvalid",
    "OffsetOutOfRange" },
  { SLUICE_ERROR_SHUTTING_DOWN, SOUP_STATUS_SERVICE_UNAVAILABLE, "ServiceUnavailable",
    "ServiceUnavailable" },
  { SLUICE_ERROR_UNSUPPORTED, SOUP_STATUS_NOT_IMPLEMENTED, "NotImplemented", "NotImplemented" },
};

guint
https_status_for_error (const GError *error, gboolean iothub, const char **code)
{
  if (error && error->domain == SLUICE_ERROR)
    for (guint i = 0; i < G_N_ELEMENTS (error_map); i++)
      if (error_map[i].code == error->code)
        {
          *code = iothub ? error_map[i].iothub : error_map[i].plain;
          return error_map[i].status;
        }
  if (error && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      *code = "ServiceUnavailable";
      return SOUP_STATUS_SERVICE_UNAVAILABLE;
    }
  *code = iothub ? "ServerError" : "InternalServerError";
  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

void
https_count_status (HttpsTransport *transport, guint status)
{
  SluiceCounter *counter;

  if (status >= G_N_ELEMENTS (transport->status_counters))
    return;
  counter = g_atomic_pointer_get (&transport->status_counters[status]);
  if (!counter)
    {
      g_autofree char *name = g_strdup_printf ("sluice_http_requests_total{status=\"%u\"}",
                                               status);
      /* The host returns the same counter to every thread asking. */
      counter = sluice_host_counter (transport->host, name,
                                     "HTTP requests answered, by status");
      g_atomic_pointer_set (&transport->status_counters[status], counter);
    }
  sluice_counter_add (counter, 1);
}

void
https_reply_json (SoupServerMessage *msg, guint status, char *json)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json; charset=utf-8", SOUP_MEMORY_TAKE,
                                    json, strlen (json));
}

void
https_reply_empty (SoupServerMessage *msg, guint status)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, NULL, SOUP_MEMORY_STATIC, NULL, 0);
}

char *
https_error_body (gboolean iothub, const char *code, const char *text)
{
  GString *body = g_string_new ("{\"Message\":");

  if (iothub)
    {
      g_autofree char *message = g_strdup_printf ("ErrorCode:%s;%s", code, text);

      https_json_append_string (body, message, -1);
      g_string_append (body, ",\"ExceptionMessage\":");
      https_json_append_string (body, text, -1);
    }
  else
    {
      https_json_append_string (body, text, -1);
      g_string_append (body, ",\"ErrorCode\":");
      https_json_append_string (body, code, -1);
    }
  g_string_append_c (body, '}');
  return g_string_free (body, FALSE);
}

static void
reply_error_text (SoupServerMessage *msg, guint status, gboolean iothub, const char *code,
                  const char *text)
{
  if (iothub)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "iothub-errorcode", code);
  https_reply_json (msg, status, https_error_body (iothub, code, text));
}

void
https_reply_error (SoupServerMessage *msg, guint status, gboolean iothub, const char *code,
                   const char *format, ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, format);
  text = g_strdup_vprintf (format, ap);
  va_end (ap);
  reply_error_text (msg, status, iothub, code, text);
}

void
https_reply_gerror (SoupServerMessage *msg, gboolean iothub, const GError *error)
{
  const char *code = NULL;
  guint status = https_status_for_error (error, iothub, &code);

  reply_error_text (msg, status, iothub, code, error ? error->message : "internal error");
}
