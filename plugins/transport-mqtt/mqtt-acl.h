/* transport-mqtt — `[mqtt-acl.NAME]` (CONFIG.md): who may publish to and
 * subscribe to the plain MQTT topics.
 *
 * Each section names one principal and grants it topic filters:
 *
 *   [mqtt-acl.sensors]
 *   principal = device:sensor-*
 *   publish = sensors/%d/#
 *   subscribe = sensors/+/temp;commands/%d
 *
 * `principal` is `device:{pattern}` (`*` stands for any run of characters,
 * nothing else is special), `policy:{name}` (exact; the file must have that
 * `[policy.NAME]`) or `anonymous`. `%d` in a filter is the connected
 * device's id, substituted at check time; a device id that is empty or
 * contains `+`, `#` or `/` never gets anything through a filter with `%d` (it
 * would change the filter's levels), nor does one that would put a `$` at the
 * start of the filter. A `%d` filter only means something for a device
 * principal, so elsewhere it is a config error. There is no escape for a
 * literal `%d`.
 *
 * Nothing is granted by default: a topic no entry grants is refused. The
 * IoT Hub device topics (`devices/{id}/...`, `$iothub/...`) are the caller's
 * business and are decided before the ACL is asked; the ACL answers only from
 * its grants.
 *
 * Threads: an MqttAcl never changes after mqtt_acl_load(), so any thread may
 * ask it at the same time. A config reload builds a new one.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

G_BEGIN_DECLS

typedef struct _MqttAcl MqttAcl;

typedef enum {
  MQTT_ACL_WHO_DEVICE,              /* a device: `name` is its id */
  MQTT_ACL_WHO_POLICY,              /* a shared access policy: `name` is it */
  MQTT_ACL_WHO_ANONYMOUS,           /* no credentials; `name` is ignored */
} MqttAclWhoKind;

/* The authenticated client asking. (the strings: transfer none) */
typedef struct {
  MqttAclWhoKind kind;
  const char *name;
} MqttAclWho;

/* Parse every `[mqtt-acl.*]` section of `config` (none: an ACL that grants
 * nothing). Errors (SLUICE_ERROR_INVALID, or the option parser's own) read
 * `FILE: [section] key: what (value 'x')`. (transfer full) */
MqttAcl *mqtt_acl_load (SluiceConfig *config, GError **error);
void mqtt_acl_free (MqttAcl *acl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttAcl, mqtt_acl_free)

/* Number of entries (sections), for the startup log. */
guint mqtt_acl_count (const MqttAcl *acl);

/* TRUE when some entry for `who` grants a publish filter that matches the
 * topic name `topic` (NUL-terminated, already valid as a topic name). A
 * wildcard at the start of a filter does not reach a `$` topic. No
 * allocation unless a substituted filter is longer than 512 bytes. */
gboolean mqtt_acl_allows_publish (const MqttAcl *acl,
                                  const MqttAclWho *who,
                                  const char *topic);

/* TRUE when the topic filter `filter` (as the SUBSCRIBE carried it) is
 * covered by a subscribe filter some entry for `who` grants: every topic it
 * can match, the granted filter matches too (`sensors/#` covers
 * `sensors/+/temp`, not the other way round). A shared subscription
 * `$share/{group}/{f}` is judged by `f`. An invalid filter is refused. */
gboolean mqtt_acl_allows_subscribe (const MqttAcl *acl,
                                    const MqttAclWho *who,
                                    const char *filter);

/* The device-id pattern rule of `principal = device:{pattern}`: `*` matches
 * any run of characters (none included), every other character itself.
 * Exposed for the tests. */
gboolean mqtt_acl_glob_match (const char *pattern, const char *text);

G_END_DECLS
