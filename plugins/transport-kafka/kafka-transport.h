/* transport-kafka — the transport instance, the per-connection state
 * (kafka-connection.c) and the request handlers (kafka-handlers*.c).
 * Private to the plugin.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice.h>

#include "kafka-protocol.h"
#include "kafka-groups.h"
#include "kafka-producers.h"
#include "kafka-sasl.h"

G_BEGIN_DECLS

typedef struct {
  guint64 max_request;           /* largest request frame accepted */
  char *advertised;              /* host:port in Metadata; NULL: the address connected to */
  gboolean auto_create_topics;
  gint64 default_partitions;     /* for auto-created topics */
  char *anonymous_policy;        /* loopback connections without SASL act as this policy */
  gint64 node_id;
  gint64 max_wait_cap_ms;        /* longest Fetch long-poll honoured */
} KafkaOptions;

typedef struct {
  SluiceHost *host;
  char *instance_name;
  const KafkaOptions *options;   /* owned by the core until destroy */
  char *cluster_id;
  /* What is derived from the [policy.*] keys, replaced whole by a reload
   * (SIGHUP) under keys_lock; workers read copies (the accessors below). */
  GMutex keys_lock;
  char *anonymous_key;           /* the anonymous policy's key, for the auth chain */
  /* Policy name -> primary key as written ([policy.*]), to authenticate a
   * SCRAM user through the auth chain once its proof is checked. */
  GHashTable *policy_keys;
  /* "MECHANISM/policy" -> KafkaScramSecret*, loaded or derived at start and
   * at each reload. */
  GHashTable *scram_secrets;
  /* The group coordinator (kafka-groups.c) and its timer; see
   * kafka-handlers-groups.c. */
  KafkaGroups *groups;
  GMutex groups_lock;
  GSource *groups_timer;
  gint64 groups_deadline;
  gboolean groups_stopping;
  /* Idempotent producer state (kafka-producers.c, thread-safe) and its
   * snapshots; see kafka-handlers-producers.c. */
  KafkaProducers *producers;
  /* Set (atomically) once the producer state is restored and rebuilt from
   * the logs: the listeners are open before start() runs, so early
   * idempotent requests must wait (they are answered with a retriable
   * error until then). */
  gint producers_ready;
  /* Produce requests that arrived before then, run once it is set. */
  GMutex deferred_lock;
  GPtrArray *deferred;
  GSource *snapshot_timer;
  gint producer_changes;         /* atomic */
  gint producer_changes_saved;
  SluicePrincipal *internal_principal;  /* Listen-only, for the log tail scan */
  SluiceCounter *connections;    /* gauge */
  SluiceCounter *requests;
  SluiceCounter *malformed;
  SluiceCounter *records_in;
  SluiceCounter *batches_out;
} KafkaTransport;

typedef struct _KafkaConn KafkaConn;
typedef struct _KafkaPending KafkaPending;

/* kafka-connection.c: the connection slots of the vtable. */
gpointer kafka_conn_open (KafkaTransport *transport, SluiceConnection *connection);
gsize kafka_conn_input (KafkaConn *conn, const guint8 *data, gsize len);
void kafka_conn_drained (KafkaConn *conn);
void kafka_conn_closed (KafkaConn *conn);

/* Refs for work that outlives the request (acks=0 appends). */
KafkaConn *kafka_conn_ref (KafkaConn *conn);
void kafka_conn_unref (KafkaConn *conn);
/* What the handlers need of a connection. */
KafkaTransport *kafka_conn_get_transport (KafkaConn *conn);
SluicePrincipal *kafka_conn_get_principal (KafkaConn *conn);
/* Replaces the principal (after SASL). (principal: transfer full) */
void kafka_conn_set_principal (KafkaConn *conn, SluicePrincipal *principal);
guint64 kafka_conn_get_id (KafkaConn *conn);
/* The connection's worker context. (transfer none) */
GMainContext *kafka_conn_get_context (KafkaConn *conn);
const char *kafka_conn_get_peer (KafkaConn *conn);
/* This broker as clients must reach it: `advertised`, or the local address
 * of the connection. `host` is transfer none (valid for the connection). */
void kafka_conn_get_broker (KafkaConn *conn, const char **host, gint32 *port);
/* Close after the answers queued before this point are written. */
void kafka_conn_fail (KafkaConn *conn, const char *why);

/* A request being answered. Answers leave in request order whatever order
 * the handlers complete them in. */
KafkaConn *kafka_pending_get_conn (KafkaPending *pending);
/* Cancelled when the connection goes away (for long polls). (transfer none) */
GCancellable *kafka_pending_get_cancellable (KafkaPending *pending);
gboolean kafka_pending_is_cancelled (KafkaPending *pending);
/* Send `response` (transfer full; NULL: nothing is sent, as for acks=0)
 * when every earlier answer is out. Takes over `pending`. */
void kafka_pending_complete (KafkaPending *pending, KafkaResponse *response);

/* kafka-handlers.c: data path and metadata. Each takes over `pending` and
 * `request` and completes `pending` (now or later). */
typedef void (*KafkaHandlerFunc) (KafkaConn *conn, KafkaPending *pending,
                                  KafkaRequest *request);
/* The handler of an API key, NULL when not implemented; `max_version` gets
 * the highest version we answer (<= the codec's). */
KafkaHandlerFunc kafka_handler_lookup (gint16 api_key, gint16 *min_version,
                                       gint16 *max_version);
/* kafka-handlers-sasl.c */
void kafka_handle_sasl_handshake (KafkaConn *conn, KafkaPending *pending,
                                  KafkaRequest *request);
void kafka_handle_sasl_authenticate (KafkaConn *conn, KafkaPending *pending,
                                     KafkaRequest *request);
/* After a SaslHandshake, a frame that is a bare SASL token (handshake v0,
 * or clients such as kafka-python that send tokens unwrapped) is handled
 * here: TRUE when it was. */
gboolean kafka_sasl_take_raw_frame (KafkaConn *conn, const guint8 *data, gsize len);
/* The connection's SASL exchange state (owned by kafka-handlers-sasl.c). */
gpointer *kafka_conn_sasl_slot (KafkaConn *conn);
void kafka_sasl_session_free (gpointer session);
/* Queue an answer that is not a Kafka response (a raw SASL token frame). */
KafkaPending *kafka_conn_queue_raw (KafkaConn *conn);
void kafka_pending_complete_bytes (KafkaPending *pending, GBytes *frame);
/* kafka-transport.c: derive or load the SCRAM verifiers (main thread). */
void kafka_scram_load (KafkaTransport *transport);
/* Copies taken under keys_lock; NULL when unknown. (transfer full) */
char *kafka_transport_policy_key (KafkaTransport *transport, const char *policy);
char *kafka_transport_anonymous_key (KafkaTransport *transport);
KafkaScramSecret *kafka_transport_scram_secret (KafkaTransport *transport, const char *id);

/* kafka-handlers-groups.c */
void kafka_groups_setup (KafkaTransport *transport);
void kafka_groups_teardown (KafkaTransport *transport);
void kafka_handle_find_coordinator (KafkaConn *conn, KafkaPending *pending,
                                    KafkaRequest *request);
void kafka_handle_join_group (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
void kafka_handle_sync_group (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
void kafka_handle_heartbeat (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
void kafka_handle_leave_group (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
void kafka_handle_offset_commit (KafkaConn *conn, KafkaPending *pending,
                                 KafkaRequest *request);
void kafka_handle_offset_fetch (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
/* A JoinGroup / SyncGroup waiting in the coordinator, tracked by its
 * connection so that closing drops it. */
/* Produce requests of the connection waiting to run (on its worker). */
guint kafka_conn_deferred (KafkaConn *conn);
void kafka_conn_deferred_add (KafkaConn *conn, gint delta);
void kafka_conn_track_wait (KafkaConn *conn, gpointer wait);
void kafka_conn_untrack_wait (KafkaConn *conn, gpointer wait);
void kafka_groups_forget_wait (KafkaTransport *transport, gpointer wait);

/* kafka-handlers-producers.c */
void kafka_producers_setup (KafkaTransport *transport);
/* kafka-handlers.c: mark the producer state ready and run the Produce
 * requests that waited for it. Main thread. */
void kafka_produce_run_deferred (KafkaTransport *transport);
void kafka_producers_stop (KafkaTransport *transport);
void kafka_handle_init_producer_id (KafkaConn *conn, KafkaPending *pending,
                                    KafkaRequest *request);
typedef enum {
  KAFKA_SEQ_OUT_APPEND,          /* append it (idempotent or not) */
  KAFKA_SEQ_OUT_DUPLICATE,       /* a retry: answer the original offset */
  KAFKA_SEQ_OUT_REJECT,          /* answer `error` */
} KafkaSeqVerdictOut;
/* The sequence check of one batch before it is appended. */
KafkaSeqVerdictOut kafka_producers_check_batch (KafkaTransport *transport, const char *stream,
                                                gint32 partition, const guint8 *data,
                                                gsize len, KafkaProducerBatch *batch,
                                                gint64 *base_offset, gint64 *append_time,
                                                gint16 *error);
/* Its append finished (`result` NULL: failed). */
void kafka_producers_batch_done (KafkaTransport *transport, const char *stream,
                                 gint32 partition, const KafkaProducerBatch *batch,
                                 const SluiceAppendResult *result);

/* kafka-handlers-admin.c */
void kafka_handle_create_topics (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
void kafka_handle_delete_topics (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
void kafka_handle_describe_configs (KafkaConn *conn, KafkaPending *pending,
                                    KafkaRequest *request);

/* kafka-handlers-fetch.c */
void kafka_handle_fetch (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
void kafka_handle_list_offsets (KafkaConn *conn, KafkaPending *pending, KafkaRequest *request);
/* The SluiceError (or NULL) → Kafka error code for a partition. */
gint16 kafka_error_from_sluice (const GError *error);

G_END_DECLS
