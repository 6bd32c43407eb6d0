/* sluicectl — what its command files share: the connection, HTTP calls to
 * the hub's service API, option parsing and error reporting.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "config.h"

#include <sluice/sluice.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Exit statuses: 1 when the hub (or the network) said no, 2 when the command
 * line itself is wrong, so scripts can tell a typo from an outage. */
enum
{
  CTL_EXIT_OK = 0,
  CTL_EXIT_FAILURE = 1,
  CTL_EXIT_USAGE = 2,
};

#define CTL_ERROR (ctl_error_quark ())
GQuark ctl_error_quark (void);
typedef enum
{
  CTL_ERROR_USAGE,     /* exit 2 */
  CTL_ERROR_SERVER,    /* the hub answered with an error status; exit 1 */
  CTL_ERROR_NOT_FOUND, /* the hub answered 404; exit 1 */
  CTL_ERROR_NETWORK,   /* no answer: refused, TLS, timeout; exit 1 */
  CTL_ERROR_INPUT,     /* a local file or stdin could not be read; exit 1 */
} CtlError;

/* Where the hub is and who we are. Filled from the global options and the
 * environment, resolved on first use, so `--help` never needs a hub. */
typedef struct
{
  /* As given (option or environment). */
  char *connection_string;
  char *url;
  char *cacert;

  /* Resolved from the connection string. */
  gboolean resolved;
  char *host_name;
  char *policy_name;   /* service connection string; NULL for a device one */
  char *device_id;     /* device connection string; NULL for a service one */
  char *key;           /* base64 */
  char *base_url;      /* scheme://host[:port][/prefix], no trailing '/' */

  char *service_token; /* cached policy token */
  SoupSession *session;
} Ctl;

typedef struct _CtlCommand CtlCommand;
struct _CtlCommand
{
  const char *group;     /* "device", "streams", "offsets" or NULL */
  const char *name;      /* "create"; for a top-level command its name */
  const char *params;    /* "ID", shown after the command in --help */
  const char *summary;   /* one line for the command list */
  const char *description; /* more text for the command's --help, or NULL */
  /* argv[0] is "sluicectl GROUP NAME"; the global options are already
   * consumed. */
  gboolean (*run) (Ctl *ctl, const CtlCommand *command, int argc, char **argv,
                   GError **error);
};

/* The commands, each file's table ends with a {NULL} entry. */
extern const CtlCommand ctl_device_commands[];
extern const CtlCommand ctl_stream_commands[];

/* Parse a command's options (and the global ones, so --help shows them);
 * leaves the positional arguments in argv. Exactly `min_args`..`max_args`
 * positional arguments (max -1: any). */
gboolean ctl_parse_options (const CtlCommand *command, const GOptionEntry *entries,
                            int *argc, char ***argv, int min_args, int max_args,
                            GError **error);

/* The connection string and URL, checked (usage errors). */
gboolean ctl_resolve (Ctl *ctl, GError **error);
/* Like ctl_resolve, and a service (policy) connection string is required for
 * `what` ("device list"). */
gboolean ctl_require_service (Ctl *ctl, const char *what, GError **error);

/* A SAS token, or NULL with a usage error when the key is not base64. A
 * resource with a URI scheme (`sb://`) is signed Event Hubs style. */
char *ctl_make_token (const char *resource, const char *key, const char *skn,
                      gint64 ttl_seconds, GError **error);
/* The policy token of the connection string (IoT Hub style, sr = HostName,
 * one hour). (transfer none) */
const char *ctl_service_token (Ctl *ctl, GError **error);

typedef struct
{
  const char *method;
  const char *path;           /* escaped, starting with '/' */
  const char *query;          /* escaped, without '?', or NULL */
  const char *token;          /* NULL: the service token */
  const char *subject;        /* "device 'x'", for error lines */
  const char *content_type;   /* of `body` */
  GBytes *body;               /* NULL: none */
  const char *if_match;
  const char *if_none_match;
  const char *const *headers; /* NULL-terminated name, value, name, value... */
} CtlRequest;

/* Send the request and wait for the answer. 2xx: the parsed JSON body (a
 * JSON null node when the body is empty). Otherwise NULL and an error line
 * built from the status and the hub's error body. (transfer full) */
JsonNode *ctl_call (Ctl *ctl, const CtlRequest *request, GError **error);

/* An escaped path segment. (transfer full) */
char *ctl_escape (const char *segment);

/* Print `node` on stdout: pretty or one line. */
void ctl_print_json (JsonNode *node, gboolean pretty);

/* Duration `3600`, `90s`, `30m`, `1h`, `7d` in seconds (> 0). */
gboolean ctl_parse_seconds (const char *text, const char *option, gint64 *seconds,
                            GError **error);

/* The device's registry entry (a JSON object node). (transfer full) */
JsonNode *ctl_device_get (Ctl *ctl, const char *device_id, GError **error);
/* The device's `primary` or `secondary` symmetric key. (transfer full) */
char *ctl_device_key (JsonNode *device, const char *device_id, const char *which,
                      GError **error);
/* The key of `device_id`: from a device connection string for that device,
 * else from the registry with the service credentials. (transfer full) */
char *ctl_device_key_lookup (Ctl *ctl, const char *device_id, const char *which,
                             GError **error);

G_END_DECLS
