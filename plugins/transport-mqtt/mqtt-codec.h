/* transport-mqtt — the MQTT 3.1.1 / 5.0 packet codec.
 *
 * Pure functions: bytes in, structs out, structs in, bytes out. No I/O, no
 * main loop, no core calls, so unit tests and the fuzzer drive it directly
 * and the connection state machine is built on it.
 *
 * Decoding is validated per the OASIS standards (MQTT 3.1.1, MQTT 5.0): a
 * packet the decoder returns is well-formed for its version, and every
 * refusal is a GError in MQTT_CODEC_ERROR whose code is the MQTT 5 reason
 * code that names the problem (MqttReason). What to send back for it (a
 * CONNACK return code, a v5 DISCONNECT, or just closing) depends on the
 * version and on how far the connection got: MqttDecoder works that out
 * (mqtt_decoder_get_error_reply()).
 *
 * Left to the layers above on purpose: topic filter syntax (mqtt-topic),
 * client identifier policy (3.1.1: an empty one with clean session 0 is
 * CONNACK 0x02), topic alias ranges, Receive Maximum, payload format
 * checks (0x99), and anything else that depends on session state or
 * configuration.
 *
 * Round trips: a decoded packet encodes back to the bytes it came from
 * (property order and the v5 short forms are kept), except where the peer
 * used a longer than minimal Variable Byte Integer.
 *
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The protocol level byte of CONNECT. */
typedef enum {
  MQTT_VERSION_NONE = 0,         /* not known yet (no CONNECT seen) */
  MQTT_VERSION_3_1_1 = 4,
  MQTT_VERSION_5 = 5,
} MqttVersion;

typedef enum {
  MQTT_CONNECT = 1,
  MQTT_CONNACK = 2,
  MQTT_PUBLISH = 3,
  MQTT_PUBACK = 4,
  MQTT_PUBREC = 5,
  MQTT_PUBREL = 6,
  MQTT_PUBCOMP = 7,
  MQTT_SUBSCRIBE = 8,
  MQTT_SUBACK = 9,
  MQTT_UNSUBSCRIBE = 10,
  MQTT_UNSUBACK = 11,
  MQTT_PINGREQ = 12,
  MQTT_PINGRESP = 13,
  MQTT_DISCONNECT = 14,
  MQTT_AUTH = 15,                /* v5 only */
} MqttPacketType;

/* MQTT 5 reason codes (section 2.4). Also the codes of MQTT_CODEC_ERROR. */
typedef enum {
  MQTT_RC_SUCCESS = 0x00,                /* also normal disconnection, QoS 0 granted */
  MQTT_RC_GRANTED_QOS_1 = 0x01,
  MQTT_RC_GRANTED_QOS_2 = 0x02,
  MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
  MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
  MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
  MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
  MQTT_RC_REAUTHENTICATE = 0x19,
  MQTT_RC_UNSPECIFIED_ERROR = 0x80,
  MQTT_RC_MALFORMED_PACKET = 0x81,
  MQTT_RC_PROTOCOL_ERROR = 0x82,
  MQTT_RC_IMPLEMENTATION_SPECIFIC = 0x83,
  MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
  MQTT_RC_CLIENT_ID_NOT_VALID = 0x85,
  MQTT_RC_BAD_USERNAME_OR_PASSWORD = 0x86,
  MQTT_RC_NOT_AUTHORIZED = 0x87,
  MQTT_RC_SERVER_UNAVAILABLE = 0x88,
  MQTT_RC_SERVER_BUSY = 0x89,
  MQTT_RC_BANNED = 0x8A,
  MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
  MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
  MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
  MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
  MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
  MQTT_RC_TOPIC_NAME_INVALID = 0x90,
  MQTT_RC_PACKET_ID_IN_USE = 0x91,
  MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
  MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
  MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
  MQTT_RC_PACKET_TOO_LARGE = 0x95,
  MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
  MQTT_RC_QUOTA_EXCEEDED = 0x97,
  MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
  MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
  MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
  MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
  MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
  MQTT_RC_SERVER_MOVED = 0x9D,
  MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E,
  MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
  MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
  MQTT_RC_SUBSCRIPTION_IDS_NOT_SUPPORTED = 0xA1,
  MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2,
} MqttReason;

/* MQTT 3.1.1 CONNACK return codes (section 3.2.2.3). */
typedef enum {
  MQTT_V3_CONNACK_ACCEPTED = 0x00,
  MQTT_V3_CONNACK_BAD_PROTOCOL_VERSION = 0x01,
  MQTT_V3_CONNACK_IDENTIFIER_REJECTED = 0x02,
  MQTT_V3_CONNACK_SERVER_UNAVAILABLE = 0x03,
  MQTT_V3_CONNACK_BAD_USERNAME_OR_PASSWORD = 0x04,
  MQTT_V3_CONNACK_NOT_AUTHORIZED = 0x05,
} MqttV3ConnackCode;

#define MQTT_CODEC_ERROR (mqtt_codec_error_quark ())
GQuark mqtt_codec_error_quark (void);

/* The largest remaining length the 4-byte encoding can say, and the largest
 * whole packet (fixed header included). */
#define MQTT_MAX_REMAINING_LENGTH 268435455u
#define MQTT_MAX_PACKET_SIZE (MQTT_MAX_REMAINING_LENGTH + 5u)
/* The largest Variable Byte Integer (subscription identifiers). */
#define MQTT_MAX_VARINT 268435455u

/* ------------------------------------------------------------------ */
/* MQTT 5 properties                                                   */

typedef enum {
  MQTT_PROP_PAYLOAD_FORMAT = 0x01,
  MQTT_PROP_MESSAGE_EXPIRY = 0x02,
  MQTT_PROP_CONTENT_TYPE = 0x03,
  MQTT_PROP_RESPONSE_TOPIC = 0x08,
  MQTT_PROP_CORRELATION_DATA = 0x09,
  MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
  MQTT_PROP_SESSION_EXPIRY = 0x11,
  MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
  MQTT_PROP_SERVER_KEEPALIVE = 0x13,
  MQTT_PROP_AUTH_METHOD = 0x15,
  MQTT_PROP_AUTH_DATA = 0x16,
  MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
  MQTT_PROP_WILL_DELAY = 0x18,
  MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
  MQTT_PROP_RESPONSE_INFO = 0x1A,
  MQTT_PROP_SERVER_REFERENCE = 0x1C,
  MQTT_PROP_REASON_STRING = 0x1F,
  MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
  MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
  MQTT_PROP_TOPIC_ALIAS = 0x23,
  MQTT_PROP_MAXIMUM_QOS = 0x24,
  MQTT_PROP_RETAIN_AVAILABLE = 0x25,
  MQTT_PROP_USER_PROPERTY = 0x26,
  MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
  MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
  MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE = 0x29,
  MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
} MqttPropId;

#define MQTT_PROP_BIT(id) (G_GUINT64_CONSTANT (1) << (id))

typedef struct {
  char *name;
  char *value;
} MqttUserProperty;

/* The properties of one packet (or of a CONNECT's will). A field is
 * meaningful only when its bit is set in `present` (user properties and
 * subscription identifiers: when their arrays are non-empty). Strings are
 * NUL-terminated, valid UTF-8 without U+0000; binary data is GBytes. The
 * struct owns everything it points to (mqtt_props_clear()).
 *
 * Set fields with the setters below so that `present` stays right. */
typedef struct {
  guint64 present;               /* MQTT_PROP_BIT (id) for each one present */
  guint8 payload_format;         /* 0 bytes, 1 UTF-8 */
  guint32 message_expiry;        /* seconds */
  char *content_type;
  char *response_topic;
  GBytes *correlation_data;
  GArray *subscription_ids;      /* guint32 (1 .. MQTT_MAX_VARINT); NULL: none */
  guint32 session_expiry;        /* seconds */
  char *assigned_client_id;
  guint16 server_keepalive;
  char *auth_method;
  GBytes *auth_data;
  guint8 request_problem_info;
  guint32 will_delay;
  guint8 request_response_info;
  char *response_info;
  char *server_reference;
  char *reason_string;
  guint16 receive_maximum;
  guint16 topic_alias_maximum;
  guint16 topic_alias;
  guint8 maximum_qos;
  guint8 retain_available;
  GArray *user;                  /* MqttUserProperty, in order; NULL: none */
  guint32 maximum_packet_size;
  guint8 wildcard_sub_available;
  guint8 subscription_id_available;
  guint8 shared_sub_available;
  /* The property identifiers in the order they came on the wire, so that a
   * decoded packet encodes back to the same bytes. NULL for properties built
   * by hand: the encoder then writes them in identifier order. Properties
   * set after decoding are written after the ones listed here. */
  GByteArray *order;
} MqttProperties;

void mqtt_props_clear (MqttProperties *props);
/* A deep copy of `src` into the uninitialised `dest`. */
void mqtt_props_copy (MqttProperties *dest, const MqttProperties *src);
gboolean mqtt_props_has (const MqttProperties *props, MqttPropId id);
/* TRUE when no property is set. */
gboolean mqtt_props_is_empty (const MqttProperties *props);
/* Setters for the integer (byte, two byte, four byte) properties; a value
 * that does not fit the property's type is truncated to it. Setting
 * MQTT_PROP_SUBSCRIPTION_ID appends one identifier. */
void mqtt_props_set_int (MqttProperties *props, MqttPropId id, guint32 value);
/* Setters for string properties (copied; NULL unsets). */
void mqtt_props_set_string (MqttProperties *props, MqttPropId id, const char *value);
/* Setters for binary properties (a ref is taken; NULL unsets). */
void mqtt_props_set_binary (MqttProperties *props, MqttPropId id, GBytes *value);
void mqtt_props_add_user (MqttProperties *props, const char *name, const char *value);
void mqtt_props_unset (MqttProperties *props, MqttPropId id);
/* "Session Expiry Interval"; NULL for an unknown identifier. */
const char *mqtt_prop_name (guint8 id);

/* ------------------------------------------------------------------ */
/* Packets                                                              */

typedef struct {
  char *protocol_name;           /* "MQTT" */
  guint8 protocol_level;         /* MqttVersion */
  gboolean clean_start;          /* v3.1.1: clean session */
  guint16 keepalive;             /* seconds */
  char *client_id;               /* "" when the client sent none */
  gboolean will;
  guint8 will_qos;
  gboolean will_retain;
  MqttProperties will_props;     /* v5 */
  char *will_topic;              /* when `will` */
  GBytes *will_payload;          /* when `will` */
  char *username;                /* NULL: absent */
  GBytes *password;              /* NULL: absent */
} MqttConnect;

typedef struct {
  gboolean session_present;
  /* The return code (v3.1.1) or reason code (v5) is MqttPacket.reason. */
} MqttConnack;

typedef struct {
  gboolean dup;
  guint8 qos;
  gboolean retain;
  char *topic;                   /* may be "" in v5 when a topic alias is set */
  GBytes *payload;               /* never NULL; may be empty */
} MqttPublish;

typedef struct {
  char *filter;
  guint8 qos;                    /* maximum QoS */
  gboolean no_local;             /* v5 */
  gboolean retain_as_published;  /* v5 */
  guint8 retain_handling;        /* v5: 0, 1 or 2 */
} MqttSubscription;

typedef struct {
  GArray *subscriptions;         /* MqttSubscription, at least one */
} MqttSubscribe;

typedef struct {
  GPtrArray *filters;            /* char *, at least one */
} MqttUnsubscribe;

typedef struct {
  /* v3.1.1 SUBACK return codes (0, 1, 2, 0x80), v5 SUBACK and UNSUBACK
   * reason codes; one per filter. Empty for a v3.1.1 UNSUBACK. */
  GByteArray *reasons;
} MqttAckList;

/* One control packet of either version. `packet_id`, `reason` and `props`
 * belong to the packet types that carry them; the union member matching
 * `type` holds the rest (PINGREQ, PINGRESP and the PUBACK family have no
 * member). */
typedef struct {
  MqttPacketType type;
  guint16 packet_id;             /* PUBLISH (QoS > 0), PUBACK..PUBCOMP,
                                    SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK */
  guint8 reason;                 /* CONNACK (both versions); v5 PUBACK..PUBCOMP,
                                    DISCONNECT, AUTH */
  MqttProperties props;          /* v5 */
  /* v5 PUBACK..PUBCOMP, DISCONNECT and AUTH may leave out a success reason
   * code and an empty property list. The decoder records which of them were
   * on the wire so that the packet encodes back to the same bytes; the
   * encoder writes the shortest form otherwise. */
  gboolean reason_on_wire;
  gboolean props_on_wire;
  union {
    MqttConnect connect;
    MqttConnack connack;
    MqttPublish publish;
    MqttSubscribe subscribe;
    MqttUnsubscribe unsubscribe;
    MqttAckList suback;          /* SUBACK */
    MqttAckList unsuback;        /* UNSUBACK */
  };
} MqttPacket;

/* A zeroed packet of `type` (PUBLISH gets an empty payload, SUBSCRIBE and
 * UNSUBSCRIBE empty lists, SUBACK and UNSUBACK empty reason arrays). */
MqttPacket *mqtt_packet_new (MqttPacketType type);
void mqtt_packet_free (MqttPacket *packet);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttPacket, mqtt_packet_free)
/* "PUBLISH"; "reserved" for 0 and anything past AUTH. */
const char *mqtt_packet_type_name (guint type);
/* "Protocol Error" for MQTT_RC_PROTOCOL_ERROR; NULL for a code MQTT 5 does
 * not define. */
const char *mqtt_reason_name (guint8 reason);

/* Convenience setters (copying). */
void mqtt_subscribe_add (MqttPacket *subscribe, const char *filter, guint8 qos,
                         gboolean no_local, gboolean retain_as_published,
                         guint8 retain_handling);
void mqtt_unsubscribe_add (MqttPacket *unsubscribe, const char *filter);

/* ------------------------------------------------------------------ */
/* Decoding                                                             */

/* Which side of the connection decodes: a server decodes what clients send
 * (CONNECT first, then PUBLISH, SUBSCRIBE, ...), a client what servers send
 * (CONNACK first, SUBACK, ...). A packet type the other side may not send is
 * a protocol error. */
typedef enum {
  MQTT_ROLE_SERVER,
  MQTT_ROLE_CLIENT,
} MqttRole;

/* The fixed header at the start of `data`. Returns TRUE with the packet's
 * first byte, its remaining length and the fixed header's size once all of
 * the fixed header is there; FALSE with no error when more bytes are needed;
 * FALSE with MQTT_RC_MALFORMED_PACKET when the remaining length runs past 4
 * bytes. Looks at nothing else (neither type nor flags). */
gboolean mqtt_frame_peek (const guint8 *data, gsize len, guint8 *first_byte,
                          guint32 *remaining_length, guint *header_size,
                          GError **error);

/* Decode exactly one whole packet (`packet` holds its fixed header and its
 * remaining length bytes, nothing more or less). `version` is that of the
 * connection; a CONNECT brings its own. Fields that are binary slice
 * `packet` without copying. Returns NULL with the reason as the error code
 * when the packet is not valid from the given `role`'s peer. This does not
 * know the connection's state: packet order is MqttDecoder's business. */
MqttPacket *mqtt_packet_decode (GBytes *packet, MqttVersion version, MqttRole role,
                                GError **error);

/* What to answer a refused packet with, before closing the connection. */
typedef enum {
  MQTT_REPLY_CLOSE,              /* nothing: just close */
  MQTT_REPLY_CONNACK,            /* CONNACK with `code`, then close */
  MQTT_REPLY_DISCONNECT,         /* v5 DISCONNECT with reason `code`, then close */
} MqttReplyKind;

typedef struct {
  MqttReplyKind kind;
  MqttVersion version;           /* the version to encode the reply in */
  guint8 code;
} MqttErrorReply;

/* The reply to an error with reason `reason` on a connection of `version`
 * (MQTT_VERSION_NONE before a CONNECT was accepted) where the CONNECT /
 * CONNACK exchange `connected` (has) taken place or not:
 *  - an unacceptable protocol level in CONNECT: CONNACK 0x01 in the 3.1.1
 *    format (what mosquitto answers; a 3.1.1 client understands nothing else
 *    and MQTT 5 allows it);
 *  - any other error before the exchange: close (MQTT 5 allows a CONNACK
 *    with the reason; mosquitto closes, and so do we);
 *  - after it: v5 DISCONNECT with the reason, v3.1.1 close. */
void mqtt_error_reply_for (guint8 reason, MqttVersion version, gboolean connected,
                           MqttErrorReply *reply);
/* Append the reply's packet to `out` (nothing for MQTT_REPLY_CLOSE). */
void mqtt_error_reply_encode (const MqttErrorReply *reply, GByteArray *out);

typedef enum {
  MQTT_DECODE_NEED_MORE,         /* no whole packet yet */
  MQTT_DECODE_PACKET,            /* one packet returned */
  MQTT_DECODE_ERROR,             /* refused: see the error and the reply */
} MqttDecodeStatus;

/* An incremental decoder for one connection direction. It follows the
 * connection far enough to check packet order: as a server, the first
 * packet must be CONNECT and a second one is a protocol error; the CONNECT
 * sets the version. As a client, set the version before decoding; the
 * first packet must be CONNACK (or, in v5, AUTH). Errors are sticky: once
 * refused, the decoder refuses everything after. */
typedef struct _MqttDecoder MqttDecoder;

/* `max_packet_size`: the largest whole packet accepted (0: the protocol's
 * limit). A larger one is refused with MQTT_RC_PACKET_TOO_LARGE as soon as
 * its fixed header is there. */
MqttDecoder *mqtt_decoder_new (MqttRole role, gsize max_packet_size);
void mqtt_decoder_free (MqttDecoder *decoder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MqttDecoder, mqtt_decoder_free)
void mqtt_decoder_set_version (MqttDecoder *decoder, MqttVersion version);
MqttVersion mqtt_decoder_get_version (const MqttDecoder *decoder);
void mqtt_decoder_set_max_packet_size (MqttDecoder *decoder, gsize max_packet_size);

/* Decode from a buffer the caller keeps (a transport's connection_input):
 * `data` holds everything not consumed yet. The packet's bytes are copied
 * once; its binary fields and payload are slices of that copy. On
 * MQTT_DECODE_PACKET, `*consumed` is the packet's size and `*packet` the
 * packet (transfer full); otherwise `*consumed` is 0. On MQTT_DECODE_ERROR, `error` says why
 * (code: the reason) and mqtt_decoder_get_error_reply() what to answer. */
MqttDecodeStatus mqtt_decoder_decode (MqttDecoder *decoder, const guint8 *data,
                                      gsize len, gsize *consumed,
                                      MqttPacket **packet, GError **error);

/* Or let the decoder keep the bytes: feed what arrived, then call
 * mqtt_decoder_next() until it stops returning packets. */
void mqtt_decoder_feed (MqttDecoder *decoder, const guint8 *data, gsize len);
MqttDecodeStatus mqtt_decoder_next (MqttDecoder *decoder, MqttPacket **packet,
                                    GError **error);
/* Bytes fed and not yet decoded (a partial packet at end of stream). */
gsize mqtt_decoder_get_buffered (const MqttDecoder *decoder);

/* After MQTT_DECODE_ERROR: what to send before closing. A server in a v5
 * enhanced-authentication exchange (AUTH packets after CONNECT, no CONNACK
 * sent yet) must not send DISCONNECT (MQTT-3.14.0-1): it sends a CONNACK
 * with the same code instead. */
void mqtt_decoder_get_error_reply (const MqttDecoder *decoder, MqttErrorReply *reply);

/* ------------------------------------------------------------------ */
/* Encoding                                                             */

/* Append `packet` encoded for `version` to `out`. Fails (leaving `out` as it
 * was) when a field cannot be encoded: a string or binary field over 65,535
 * bytes, a remaining length over MQTT_MAX_REMAINING_LENGTH, a QoS over 2, a
 * packet type or property the version or packet does not have, a packet
 * identifier 0 where one is needed, an empty SUBSCRIBE / UNSUBSCRIBE / SUBACK
 * (or v5 UNSUBACK). The encoder does not
 * judge anything else; the caller sends what the peer accepts (e.g. its
 * Maximum Packet Size: compare the bytes appended). */
gboolean mqtt_packet_encode (const MqttPacket *packet, MqttVersion version,
                             GByteArray *out, GError **error);

/* The frequent small packets without building an MqttPacket. */
/* PUBACK, PUBREC, PUBREL or PUBCOMP; `reason` is left out in 3.1.1 and when
 * 0 in v5. */
void mqtt_encode_ack (GByteArray *out, MqttVersion version, MqttPacketType type,
                      guint16 packet_id, guint8 reason);
void mqtt_encode_pingresp (GByteArray *out);
void mqtt_encode_pingreq (GByteArray *out);
/* A DISCONNECT with `reason` and no properties (v5), or the bare 3.1.1 one. */
void mqtt_encode_disconnect (GByteArray *out, MqttVersion version, guint8 reason);

/* Variable Byte Integer helpers (remaining length, property lengths,
 * subscription identifiers). */
guint mqtt_varint_size (guint32 value);
void mqtt_varint_append (GByteArray *out, guint32 value);

G_END_DECLS
