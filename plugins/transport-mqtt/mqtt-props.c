/* transport-mqtt — MQTT 5 properties (section 2.2.2): which packet may carry
 * which property, their types and value ranges, decoding with duplicate and
 * placement checks, and encoding in wire order.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include "mqtt-codec-private.h"

#include <string.h>

typedef enum {
  PROP_BYTE,
  PROP_U16,
  PROP_U32,
  PROP_VARINT,
  PROP_STRING,
  PROP_BINARY,
  PROP_PAIR,
} PropType;

typedef struct {
  const char *name;
  PropType type;
  guint32 packets;               /* bit per MqttPacketType; bit 0: will */
} PropInfo;

#define P(t) (1u << (t))
#define P_WILL P (MQTT_PROPS_WILL)
#define P_ACKS (P (MQTT_PUBACK) | P (MQTT_PUBREC) | P (MQTT_PUBREL) | P (MQTT_PUBCOMP))

/* Table 2-4 of MQTT 5.0, indexed by identifier. */
static const PropInfo prop_table[MQTT_PROP_SHARED_SUB_AVAILABLE + 1] = {
  [MQTT_PROP_PAYLOAD_FORMAT] = { "Payload Format Indicator", PROP_BYTE,
                                 P (MQTT_PUBLISH) | P_WILL },
  [MQTT_PROP_MESSAGE_EXPIRY] = { "Message Expiry Interval", PROP_U32,
                                 P (MQTT_PUBLISH) | P_WILL },
  [MQTT_PROP_CONTENT_TYPE] = { "Content Type", PROP_STRING, P (MQTT_PUBLISH) | P_WILL },
  [MQTT_PROP_RESPONSE_TOPIC] = { "Response Topic", PROP_STRING,
                                 P (MQTT_PUBLISH) | P_WILL },
  [MQTT_PROP_CORRELATION_DATA] = { "Correlation Data", PROP_BINARY,
                                   P (MQTT_PUBLISH) | P_WILL },
  [MQTT_PROP_SUBSCRIPTION_ID] = { "Subscription Identifier", PROP_VARINT,
                                  P (MQTT_PUBLISH) | P (MQTT_SUBSCRIBE) },
  [MQTT_PROP_SESSION_EXPIRY] = { "Session Expiry Interval", PROP_U32,
                                 P (MQTT_CONNECT) | P (MQTT_CONNACK) | P (MQTT_DISCONNECT) },
  [MQTT_PROP_ASSIGNED_CLIENT_ID] = { "Assigned Client Identifier", PROP_STRING,
                                     P (MQTT_CONNACK) },
  [MQTT_PROP_SERVER_KEEPALIVE] = { "Server Keep Alive", PROP_U16, P (MQTT_CONNACK) },
  [MQTT_PROP_AUTH_METHOD] = { "Authentication Method", PROP_STRING,
                              P (MQTT_CONNECT) | P (MQTT_CONNACK) | P (MQTT_AUTH) },
  [MQTT_PROP_AUTH_DATA] = { "Authentication Data", PROP_BINARY,
                            P (MQTT_CONNECT) | P (MQTT_CONNACK) | P (MQTT_AUTH) },
  [MQTT_PROP_REQUEST_PROBLEM_INFO] = { "Request Problem Information", PROP_BYTE,
                                       P (MQTT_CONNECT) },
  [MQTT_PROP_WILL_DELAY] = { "Will Delay Interval", PROP_U32, P_WILL },
  [MQTT_PROP_REQUEST_RESPONSE_INFO] = { "Request Response Information", PROP_BYTE,
                                        P (MQTT_CONNECT) },
  [MQTT_PROP_RESPONSE_INFO] = { "Response Information", PROP_STRING, P (MQTT_CONNACK) },
  [MQTT_PROP_SERVER_REFERENCE] = { "Server Reference", PROP_STRING,
                                   P (MQTT_CONNACK) | P (MQTT_DISCONNECT) },
  [MQTT_PROP_REASON_STRING] = { "Reason String", PROP_STRING,
                                P (MQTT_CONNACK) | P_ACKS | P (MQTT_SUBACK)
                                | P (MQTT_UNSUBACK) | P (MQTT_DISCONNECT) | P (MQTT_AUTH) },
  [MQTT_PROP_RECEIVE_MAXIMUM] = { "Receive Maximum", PROP_U16,
                                  P (MQTT_CONNECT) | P (MQTT_CONNACK) },
  [MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = { "Topic Alias Maximum", PROP_U16,
                                      P (MQTT_CONNECT) | P (MQTT_CONNACK) },
  [MQTT_PROP_TOPIC_ALIAS] = { "Topic Alias", PROP_U16, P (MQTT_PUBLISH) },
  [MQTT_PROP_MAXIMUM_QOS] = { "Maximum QoS", PROP_BYTE, P (MQTT_CONNACK) },
  [MQTT_PROP_RETAIN_AVAILABLE] = { "Retain Available", PROP_BYTE, P (MQTT_CONNACK) },
  [MQTT_PROP_USER_PROPERTY] = { "User Property", PROP_PAIR,
                                P (MQTT_CONNECT) | P (MQTT_CONNACK) | P (MQTT_PUBLISH)
                                | P_WILL | P_ACKS | P (MQTT_SUBSCRIBE) | P (MQTT_SUBACK)
                                | P (MQTT_UNSUBSCRIBE) | P (MQTT_UNSUBACK)
                                | P (MQTT_DISCONNECT) | P (MQTT_AUTH) },
  [MQTT_PROP_MAXIMUM_PACKET_SIZE] = { "Maximum Packet Size", PROP_U32,
                                      P (MQTT_CONNECT) | P (MQTT_CONNACK) },
  [MQTT_PROP_WILDCARD_SUB_AVAILABLE] = { "Wildcard Subscription Available", PROP_BYTE,
                                         P (MQTT_CONNACK) },
  [MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE] = { "Subscription Identifier Available",
                                            PROP_BYTE, P (MQTT_CONNACK) },
  [MQTT_PROP_SHARED_SUB_AVAILABLE] = { "Shared Subscription Available", PROP_BYTE,
                                       P (MQTT_CONNACK) },
};

static const PropInfo *
prop_info (guint32 id)
{
  if (id >= G_N_ELEMENTS (prop_table) || prop_table[id].name == NULL)
    return NULL;
  return &prop_table[id];
}

const char *
mqtt_prop_name (guint8 id)
{
  const PropInfo *info = prop_info (id);

  return info != NULL ? info->name : NULL;
}

static const char *
packet_label (guint packet_type)
{
  return packet_type == MQTT_PROPS_WILL ? "will" : mqtt_packet_type_name (packet_type);
}

/* ------------------------------------------------------------------ */
/* Field access by identifier                                          */

static guint32
get_int (const MqttProperties *p, guint8 id)
{
  switch (id)
    {
    case MQTT_PROP_PAYLOAD_FORMAT: return p->payload_format;
    case MQTT_PROP_MESSAGE_EXPIRY: return p->message_expiry;
    case MQTT_PROP_SESSION_EXPIRY: return p->session_expiry;
    case MQTT_PROP_SERVER_KEEPALIVE: return p->server_keepalive;
    case MQTT_PROP_REQUEST_PROBLEM_INFO: return p->request_problem_info;
    case MQTT_PROP_WILL_DELAY: return p->will_delay;
    case MQTT_PROP_REQUEST_RESPONSE_INFO: return p->request_response_info;
    case MQTT_PROP_RECEIVE_MAXIMUM: return p->receive_maximum;
    case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: return p->topic_alias_maximum;
    case MQTT_PROP_TOPIC_ALIAS: return p->topic_alias;
    case MQTT_PROP_MAXIMUM_QOS: return p->maximum_qos;
    case MQTT_PROP_RETAIN_AVAILABLE: return p->retain_available;
    case MQTT_PROP_MAXIMUM_PACKET_SIZE: return p->maximum_packet_size;
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE: return p->wildcard_sub_available;
    case MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE: return p->subscription_id_available;
    case MQTT_PROP_SHARED_SUB_AVAILABLE: return p->shared_sub_available;
    default: g_assert_not_reached ();
    }
}

static void
put_int (MqttProperties *p, guint8 id, guint32 v)
{
  switch (id)
    {
    case MQTT_PROP_PAYLOAD_FORMAT: p->payload_format = (guint8) v; break;
    case MQTT_PROP_MESSAGE_EXPIRY: p->message_expiry = v; break;
    case MQTT_PROP_SESSION_EXPIRY: p->session_expiry = v; break;
    case MQTT_PROP_SERVER_KEEPALIVE: p->server_keepalive = (guint16) v; break;
    case MQTT_PROP_REQUEST_PROBLEM_INFO: p->request_problem_info = (guint8) v; break;
    case MQTT_PROP_WILL_DELAY: p->will_delay = v; break;
    case MQTT_PROP_REQUEST_RESPONSE_INFO: p->request_response_info = (guint8) v; break;
    case MQTT_PROP_RECEIVE_MAXIMUM: p->receive_maximum = (guint16) v; break;
    case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: p->topic_alias_maximum = (guint16) v; break;
    case MQTT_PROP_TOPIC_ALIAS: p->topic_alias = (guint16) v; break;
    case MQTT_PROP_MAXIMUM_QOS: p->maximum_qos = (guint8) v; break;
    case MQTT_PROP_RETAIN_AVAILABLE: p->retain_available = (guint8) v; break;
    case MQTT_PROP_MAXIMUM_PACKET_SIZE: p->maximum_packet_size = v; break;
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE: p->wildcard_sub_available = (guint8) v; break;
    case MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE:
      p->subscription_id_available = (guint8) v;
      break;
    case MQTT_PROP_SHARED_SUB_AVAILABLE: p->shared_sub_available = (guint8) v; break;
    default: g_assert_not_reached ();
    }
}

static char **
string_field (MqttProperties *p, guint8 id)
{
  switch (id)
    {
    case MQTT_PROP_CONTENT_TYPE: return &p->content_type;
    case MQTT_PROP_RESPONSE_TOPIC: return &p->response_topic;
    case MQTT_PROP_ASSIGNED_CLIENT_ID: return &p->assigned_client_id;
    case MQTT_PROP_AUTH_METHOD: return &p->auth_method;
    case MQTT_PROP_RESPONSE_INFO: return &p->response_info;
    case MQTT_PROP_SERVER_REFERENCE: return &p->server_reference;
    case MQTT_PROP_REASON_STRING: return &p->reason_string;
    default: g_assert_not_reached ();
    }
}

static GBytes **
binary_field (MqttProperties *p, guint8 id)
{
  switch (id)
    {
    case MQTT_PROP_CORRELATION_DATA: return &p->correlation_data;
    case MQTT_PROP_AUTH_DATA: return &p->auth_data;
    default: g_assert_not_reached ();
    }
}

static void
user_property_clear (gpointer data)
{
  MqttUserProperty *u = data;

  g_free (u->name);
  g_free (u->value);
}

static GArray *
ensure_user (MqttProperties *p)
{
  if (p->user == NULL)
    {
      p->user = g_array_new (FALSE, TRUE, sizeof (MqttUserProperty));
      g_array_set_clear_func (p->user, user_property_clear);
    }
  return p->user;
}

static GArray *
ensure_subscription_ids (MqttProperties *p)
{
  if (p->subscription_ids == NULL)
    p->subscription_ids = g_array_new (FALSE, TRUE, sizeof (guint32));
  return p->subscription_ids;
}

/* ------------------------------------------------------------------ */
/* Public helpers                                                      */

void
mqtt_props_clear (MqttProperties *props)
{
  g_free (props->content_type);
  g_free (props->response_topic);
  g_clear_pointer (&props->correlation_data, g_bytes_unref);
  g_clear_pointer (&props->subscription_ids, g_array_unref);
  g_free (props->assigned_client_id);
  g_free (props->auth_method);
  g_clear_pointer (&props->auth_data, g_bytes_unref);
  g_free (props->response_info);
  g_free (props->server_reference);
  g_free (props->reason_string);
  g_clear_pointer (&props->user, g_array_unref);
  g_clear_pointer (&props->order, g_byte_array_unref);
  memset (props, 0, sizeof *props);
}

void
mqtt_props_copy (MqttProperties *dest, const MqttProperties *src)
{
  *dest = *src;
  dest->content_type = g_strdup (src->content_type);
  dest->response_topic = g_strdup (src->response_topic);
  dest->assigned_client_id = g_strdup (src->assigned_client_id);
  dest->auth_method = g_strdup (src->auth_method);
  dest->response_info = g_strdup (src->response_info);
  dest->server_reference = g_strdup (src->server_reference);
  dest->reason_string = g_strdup (src->reason_string);
  if (src->correlation_data != NULL)
    g_bytes_ref (src->correlation_data);
  if (src->auth_data != NULL)
    g_bytes_ref (src->auth_data);
  dest->subscription_ids = NULL;
  if (src->subscription_ids != NULL)
    g_array_append_vals (ensure_subscription_ids (dest), src->subscription_ids->data,
                         src->subscription_ids->len);
  dest->user = NULL;
  for (guint i = 0; src->user != NULL && i < src->user->len; i++)
    {
      const MqttUserProperty *u = &g_array_index (src->user, MqttUserProperty, i);

      mqtt_props_add_user (dest, u->name, u->value);
    }
  dest->order = NULL;
  if (src->order != NULL)
    {
      dest->order = g_byte_array_new ();
      g_byte_array_append (dest->order, src->order->data, src->order->len);
    }
}

gboolean
mqtt_props_has (const MqttProperties *props, MqttPropId id)
{
  if (id == MQTT_PROP_USER_PROPERTY)
    return props->user != NULL && props->user->len > 0;
  if (id == MQTT_PROP_SUBSCRIPTION_ID)
    return props->subscription_ids != NULL && props->subscription_ids->len > 0;
  return id < 64 && (props->present & MQTT_PROP_BIT (id)) != 0;
}

gboolean
mqtt_props_is_empty (const MqttProperties *props)
{
  return props->present == 0 && !mqtt_props_has (props, MQTT_PROP_USER_PROPERTY)
         && !mqtt_props_has (props, MQTT_PROP_SUBSCRIPTION_ID);
}

void
mqtt_props_set_int (MqttProperties *props, MqttPropId id, guint32 value)
{
  const PropInfo *info = prop_info (id);

  g_return_if_fail (info != NULL);
  if (id == MQTT_PROP_SUBSCRIPTION_ID)
    {
      g_array_append_val (ensure_subscription_ids (props), value);
      return;
    }
  g_return_if_fail (info->type == PROP_BYTE || info->type == PROP_U16
                    || info->type == PROP_U32);
  put_int (props, id, value);
  props->present |= MQTT_PROP_BIT (id);
}

void
mqtt_props_set_string (MqttProperties *props, MqttPropId id, const char *value)
{
  const PropInfo *info = prop_info (id);
  char **field;

  g_return_if_fail (info != NULL && info->type == PROP_STRING);
  field = string_field (props, id);
  g_free (*field);
  *field = g_strdup (value);
  if (value != NULL)
    props->present |= MQTT_PROP_BIT (id);
  else
    props->present &= ~MQTT_PROP_BIT (id);
}

void
mqtt_props_set_binary (MqttProperties *props, MqttPropId id, GBytes *value)
{
  const PropInfo *info = prop_info (id);
  GBytes **field;

  g_return_if_fail (info != NULL && info->type == PROP_BINARY);
  field = binary_field (props, id);
  g_clear_pointer (field, g_bytes_unref);
  if (value != NULL)
    {
      *field = g_bytes_ref (value);
      props->present |= MQTT_PROP_BIT (id);
    }
  else
    {
      props->present &= ~MQTT_PROP_BIT (id);
    }
}

void
mqtt_props_add_user (MqttProperties *props, const char *name, const char *value)
{
  MqttUserProperty u = { g_strdup (name), g_strdup (value) };

  g_return_if_fail (name != NULL && value != NULL);
  g_array_append_val (ensure_user (props), u);
}

void
mqtt_props_unset (MqttProperties *props, MqttPropId id)
{
  const PropInfo *info = prop_info (id);

  g_return_if_fail (info != NULL);
  switch (info->type)
    {
    case PROP_PAIR:
      g_clear_pointer (&props->user, g_array_unref);
      break;
    case PROP_VARINT:
      g_clear_pointer (&props->subscription_ids, g_array_unref);
      break;
    case PROP_STRING:
      mqtt_props_set_string (props, id, NULL);
      break;
    case PROP_BINARY:
      mqtt_props_set_binary (props, id, NULL);
      break;
    default:
      put_int (props, id, 0);
      props->present &= ~MQTT_PROP_BIT (id);
      break;
    }
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */

/* Value ranges the standard calls a Protocol Error (sections 3.1.2.11,
 * 3.2.2.3, 3.3.2.3). */
static gboolean
check_int (guint8 id, guint32 v, guint packet_type, GError **error)
{
  const char *name = prop_table[id].name;

  switch (id)
    {
    case MQTT_PROP_PAYLOAD_FORMAT:
    case MQTT_PROP_REQUEST_PROBLEM_INFO:
    case MQTT_PROP_REQUEST_RESPONSE_INFO:
    case MQTT_PROP_MAXIMUM_QOS:
    case MQTT_PROP_RETAIN_AVAILABLE:
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
    case MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE:
    case MQTT_PROP_SHARED_SUB_AVAILABLE:
      if (v > 1)
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s %u is neither 0 nor 1",
                          name, v);
          return FALSE;
        }
      break;
    case MQTT_PROP_RECEIVE_MAXIMUM:
    case MQTT_PROP_MAXIMUM_PACKET_SIZE:
    case MQTT_PROP_SUBSCRIPTION_ID:
      if (v == 0)
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s 0 in %s", name,
                          packet_label (packet_type));
          return FALSE;
        }
      break;
    case MQTT_PROP_TOPIC_ALIAS:
      if (v == 0)
        {
          mqtt_set_error (error, MQTT_RC_TOPIC_ALIAS_INVALID, "Topic Alias 0");
          return FALSE;
        }
      break;
    default:
      break;
    }
  return TRUE;
}

static gboolean
decode_one (MqttReader *r, guint8 id, const PropInfo *info, guint packet_type,
            MqttProperties *props, GError **error)
{
  const char *name = info->name;

  switch (info->type)
    {
    case PROP_BYTE:
    case PROP_U16:
    case PROP_U32:
    case PROP_VARINT:
      {
        guint32 v = 0;
        guint8 v8;
        guint16 v16;

        if (info->type == PROP_BYTE)
          {
            if (!mqtt_read_u8 (r, &v8, name, error))
              return FALSE;
            v = v8;
          }
        else if (info->type == PROP_U16)
          {
            if (!mqtt_read_u16 (r, &v16, name, error))
              return FALSE;
            v = v16;
          }
        else if (info->type == PROP_U32)
          {
            if (!mqtt_read_u32 (r, &v, name, error))
              return FALSE;
          }
        else if (!mqtt_read_varint (r, &v, name, error))
          {
            return FALSE;
          }
        if (!check_int (id, v, packet_type, error))
          return FALSE;
        if (id == MQTT_PROP_SUBSCRIPTION_ID)
          g_array_append_val (ensure_subscription_ids (props), v);
        else
          put_int (props, id, v);
        return TRUE;
      }
    case PROP_STRING:
      {
        char *s = mqtt_read_string (r, name, error);

        if (s == NULL)
          return FALSE;
        *string_field (props, id) = s;
        /* A response topic is a topic name: no wildcards (MQTT-3.3.2-14). */
        if (id == MQTT_PROP_RESPONSE_TOPIC && !mqtt_topic_name_has_no_wildcards (s))
          {
            mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                            "Response Topic '%s' has a wildcard", s);
            return FALSE;
          }
        return TRUE;
      }
    case PROP_BINARY:
      {
        GBytes *b = mqtt_read_binary (r, name, error);

        if (b == NULL)
          return FALSE;
        *binary_field (props, id) = b;
        return TRUE;
      }
    case PROP_PAIR:
      {
        MqttUserProperty u = { NULL, NULL };

        u.name = mqtt_read_string (r, "User Property name", error);
        if (u.name == NULL)
          return FALSE;
        u.value = mqtt_read_string (r, "User Property value", error);
        if (u.value == NULL)
          {
            g_free (u.name);
            return FALSE;
          }
        g_array_append_val (ensure_user (props), u);
        return TRUE;
      }
    default:
      g_assert_not_reached ();
    }
}

gboolean
mqtt_props_decode (MqttReader *r, guint packet_type, MqttRole role,
                   MqttProperties *props, GError **error)
{
  MqttReader sub;
  guint32 len;
  guint64 seen = 0;

  if (!mqtt_read_varint (r, &len, "property length", error))
    return FALSE;
  if (len > mqtt_reader_left (r))
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET,
                      "property length %u runs past the packet (%" G_GSIZE_FORMAT
                      " bytes left)", len, mqtt_reader_left (r));
      return FALSE;
    }
  sub = *r;
  sub.end = r->pos + len;
  r->pos += len;

  while (sub.pos < sub.end)
    {
      const PropInfo *info;
      guint32 id;
      guint8 id8;

      /* The identifier is a Variable Byte Integer (section 2.2.2.2). */
      if (!mqtt_read_varint (&sub, &id, "property identifier", error))
        return FALSE;
      info = prop_info (id);
      if (info == NULL)
        {
          mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "unknown property 0x%02x", id);
          return FALSE;
        }
      if ((info->packets & P (packet_type)) == 0)
        {
          mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "%s (0x%02x) is not allowed in %s",
                          info->name, id, packet_label (packet_type));
          return FALSE;
        }
      /* Only User Property, and Subscription Identifier in a PUBLISH, may
       * come more than once. */
      if ((seen & MQTT_PROP_BIT (id)) != 0 && id != MQTT_PROP_USER_PROPERTY
          && !(id == MQTT_PROP_SUBSCRIPTION_ID && packet_type == MQTT_PUBLISH))
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR, "%s (0x%02x) more than once",
                          info->name, id);
          return FALSE;
        }
      /* MQTT-3.3.4-6: a client's PUBLISH carries no subscription identifier. */
      if (id == MQTT_PROP_SUBSCRIPTION_ID && packet_type == MQTT_PUBLISH
          && role == MQTT_ROLE_SERVER)
        {
          mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                          "a client's PUBLISH carries a Subscription Identifier");
          return FALSE;
        }
      seen |= MQTT_PROP_BIT (id);
      if (!decode_one (&sub, (guint8) id, info, packet_type, props, error))
        return FALSE;
      if (id != MQTT_PROP_USER_PROPERTY && id != MQTT_PROP_SUBSCRIPTION_ID)
        props->present |= MQTT_PROP_BIT (id);
      id8 = (guint8) id;
      if (props->order == NULL)
        props->order = g_byte_array_sized_new (8);
      g_byte_array_append (props->order, &id8, 1);
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

static void
write_one (MqttWriter *w, MqttProperties *p, guint8 id)
{
  const PropInfo *info = &prop_table[id];

  mqtt_write_varint (w, id);
  switch (info->type)
    {
    case PROP_BYTE:
      mqtt_write_u8 (w, (guint8) get_int (p, id));
      break;
    case PROP_U16:
      mqtt_write_u16 (w, (guint16) get_int (p, id));
      break;
    case PROP_U32:
      mqtt_write_u32 (w, get_int (p, id));
      break;
    case PROP_STRING:
      mqtt_write_string (w, *string_field (p, id));
      break;
    case PROP_BINARY:
      mqtt_write_binary (w, *binary_field (p, id));
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
write_user (MqttWriter *w, const MqttProperties *p, guint i)
{
  const MqttUserProperty *u = &g_array_index (p->user, MqttUserProperty, i);

  mqtt_write_varint (w, MQTT_PROP_USER_PROPERTY);
  mqtt_write_string (w, u->name);
  mqtt_write_string (w, u->value);
}

static void
write_subscription_id (MqttWriter *w, const MqttProperties *p, guint i)
{
  mqtt_write_varint (w, MQTT_PROP_SUBSCRIPTION_ID);
  mqtt_write_varint (w, g_array_index (p->subscription_ids, guint32, i));
}

/* Wire order first (a decoded packet's), then whatever is left in
 * identifier order. */
static void
write_all (MqttWriter *w, const MqttProperties *props)
{
  /* The field accessors take a non-const struct; nothing is changed. */
  MqttProperties *p = (MqttProperties *) props;
  guint n_user = p->user != NULL ? p->user->len : 0;
  guint n_sid = p->subscription_ids != NULL ? p->subscription_ids->len : 0;
  guint next_user = 0, next_sid = 0;
  guint64 done = 0;

  for (guint i = 0; p->order != NULL && i < p->order->len; i++)
    {
      guint8 id = p->order->data[i];

      if (id == MQTT_PROP_USER_PROPERTY)
        {
          if (next_user < n_user)
            write_user (w, p, next_user++);
        }
      else if (id == MQTT_PROP_SUBSCRIPTION_ID)
        {
          if (next_sid < n_sid)
            write_subscription_id (w, p, next_sid++);
        }
      else if (prop_info (id) != NULL && (p->present & MQTT_PROP_BIT (id)) != 0
               && (done & MQTT_PROP_BIT (id)) == 0)
        {
          write_one (w, p, id);
          done |= MQTT_PROP_BIT (id);
        }
    }
  for (guint id = 1; id < G_N_ELEMENTS (prop_table); id++)
    {
      if (prop_table[id].name == NULL)
        continue;
      if (id == MQTT_PROP_USER_PROPERTY)
        {
          while (next_user < n_user)
            write_user (w, p, next_user++);
        }
      else if (id == MQTT_PROP_SUBSCRIPTION_ID)
        {
          while (next_sid < n_sid)
            write_subscription_id (w, p, next_sid++);
        }
      else if ((p->present & MQTT_PROP_BIT (id)) != 0 && (done & MQTT_PROP_BIT (id)) == 0)
        {
          write_one (w, p, (guint8) id);
        }
    }
}

static gboolean
check_allowed (guint8 id, guint packet_type, GError **error)
{
  if ((prop_table[id].packets & P (packet_type)) == 0)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "%s is not allowed in %s",
                      prop_table[id].name, packet_label (packet_type));
      return FALSE;
    }
  return TRUE;
}

gboolean
mqtt_props_size (const MqttProperties *props, guint packet_type, gsize *size,
                 GError **error)
{
  MqttProperties *p = (MqttProperties *) props;
  MqttWriter counter = { NULL, 0 };

  if ((props->present & ~G_GUINT64_CONSTANT (0x7FFFFFFFFFE)) != 0)
    {
      mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "unknown property bit set");
      return FALSE;
    }
  for (guint id = 1; id < G_N_ELEMENTS (prop_table); id++)
    {
      const PropInfo *info = prop_info (id);

      if (info == NULL)
        {
          if ((props->present & MQTT_PROP_BIT (id)) != 0)
            {
              mqtt_set_error (error, MQTT_RC_MALFORMED_PACKET, "unknown property 0x%02x", id);
              return FALSE;
            }
          continue;
        }
      if (!mqtt_props_has (props, id))
        continue;
      if (!check_allowed ((guint8) id, packet_type, error))
        return FALSE;
      if (info->type == PROP_STRING)
        {
          const char *s = *string_field (p, (guint8) id);

          if (!mqtt_check_length (strlen (s), info->name, error))
            return FALSE;
        }
      else if (info->type == PROP_BINARY)
        {
          if (!mqtt_check_length (g_bytes_get_size (*binary_field (p, (guint8) id)),
                                  info->name, error))
            return FALSE;
        }
      else if (info->type == PROP_PAIR)
        {
          for (guint i = 0; i < props->user->len; i++)
            {
              const MqttUserProperty *u = &g_array_index (props->user, MqttUserProperty, i);

              if (!mqtt_check_length (strlen (u->name), "User Property name", error)
                  || !mqtt_check_length (strlen (u->value), "User Property value", error))
                return FALSE;
            }
        }
      else if (info->type == PROP_VARINT)
        {
          if (packet_type != MQTT_PUBLISH && props->subscription_ids->len > 1)
            {
              mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                              "more than one Subscription Identifier in %s",
                              packet_label (packet_type));
              return FALSE;
            }
          for (guint i = 0; i < props->subscription_ids->len; i++)
            {
              guint32 v = g_array_index (props->subscription_ids, guint32, i);

              if (v == 0 || v > MQTT_MAX_VARINT)
                {
                  mqtt_set_error (error, MQTT_RC_PROTOCOL_ERROR,
                                  "Subscription Identifier %u out of range", v);
                  return FALSE;
                }
            }
        }
    }
  write_all (&counter, props);
  if (counter.len > MQTT_MAX_VARINT)
    {
      mqtt_set_error (error, MQTT_RC_PACKET_TOO_LARGE, "properties too large");
      return FALSE;
    }
  *size = counter.len;
  return TRUE;
}

void
mqtt_props_write (MqttWriter *w, const MqttProperties *props, gsize size)
{
  gsize start;

  mqtt_write_varint (w, (guint32) size);
  start = w->len;
  write_all (w, props);
  g_assert (w->len - start == size);
}
