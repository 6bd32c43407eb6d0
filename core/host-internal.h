/* Sluice core — the host's internal state, shared by host*.c, streams.c,
 * writer.c, reader.c, groups.c, registry.c and metrics.c. Not installed.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "host-private.h"
#include "plugin-loader-private.h"
#include "io-private.h"

G_BEGIN_DECLS

typedef struct _SluiceWriter SluiceWriter;
typedef struct _SluiceWaiter SluiceWaiter;

typedef struct {
  char *name;
  const SluicePlugin *plugin;
  const SluiceAuthVTable *vtable;
  gpointer options;
  gpointer self;
} HostAuth;

typedef struct {
  SluiceConfigTransport *config;       /* borrowed from SluiceConfig */
  const SluicePlugin *plugin;
  const SluiceTransportVTable *vtable;
  gpointer options;
  gpointer self;
  SluiceTransportConfig tc;
  gboolean started;
} HostTransport;

typedef struct _SluiceStream SluiceStream;

typedef struct {
  SluiceStream *stream;
  gint32 id;
  SluiceLogId log;                     /* log.stream points at stream->name */
  GMutex lock;                         /* guards first, visible, waiters */
  gint64 first;                        /* first stored offset */
  gint64 visible;                      /* next offset readers may see */
  GList *waiters;                      /* SluiceWaiter*, reads waiting for data */
  /* writer thread only */
  gint64 next;                         /* next offset to assign */
} SluicePartition;

struct _SluiceStream {
  char *name;
  SluiceStreamInfo info;
  gint64 interval_ms;
  gint32 n_partitions;
  SluicePartition **partitions;
  gint round_robin;                    /* atomic */
  gint refcount;                       /* atomic */
  gboolean deleted;
};

typedef struct {
  gint64 value;                        /* atomic */
  char *name;                          /* with labels */
  char *base;                          /* without labels */
  char *help;
  gboolean gauge;
} HostMetric;

struct _SluiceHost {
  SluiceConfig *config;
  SluicePluginLoader *loader;
  char *data_dir;
  int lock_fd;

  /* storage */
  const SluicePlugin *storage_plugin;
  const SluiceStorageVTable *storage;
  gpointer storage_options;
  gpointer storage_self;

  /* auth chain, transports, I/O */
  GPtrArray *auths;                    /* HostAuth*, chain order */
  GPtrArray *transports;               /* HostTransport* */
  SluiceIo *io;
  char *tls_cert_file;
  char *tls_key_file;
  GPtrArray *listening;                /* char* "transport.NAME tls ADDRESS" */

  /* streams */
  GRWLock streams_lock;
  GHashTable *streams;                 /* name -> SluiceStream* (ref) */
  SluiceWriter *writer;
  GThreadPool *pool;                   /* reads, KV work */

  /* registry */
  GRWLock registry_lock;
  GHashTable *devices;                 /* id -> SluiceDevice* */
  GMutex registry_write_lock;          /* serialises puts / deletes */

  /* principal watches */
  GMutex watch_lock;
  GHashTable *watches;                 /* id -> HostWatch* */
  guint next_watch_id;
  guint expiry_source;
  guint retention_source;

  /* metrics */
  GMutex metrics_lock;
  GHashTable *metrics;                 /* name -> HostMetric* */
  GPtrArray *metrics_order;
  SluiceCounter *m_appends, *m_append_bytes, *m_append_records, *m_fsyncs,
    *m_fsync_appends, *m_append_errors, *m_auth_failures, *m_reads;

  gint stopping;                       /* atomic */
  gboolean started;
};

/* --- streams.c --- */
SluiceStream *sluice_stream_ref (SluiceStream *stream);
void sluice_stream_unref (SluiceStream *stream);
/* (transfer full) NULL + SLUICE_ERROR_NOT_FOUND when unknown. */
SluiceStream *host_stream_lookup (SluiceHost *host, const char *name, GError **error);
SluicePartition *host_stream_partition (SluiceStream *stream, gint32 partition, GError **error);
gboolean host_streams_open (SluiceHost *host, GError **error);
void host_streams_close (SluiceHost *host);
/* Readers see data up to `visible`; wakes waiters. Any thread. */
void host_partition_publish (SluiceHost *host, SluicePartition *partition, gint64 visible);
void host_partition_set_first (SluicePartition *partition, gint64 first);
void host_retention_run (SluiceHost *host);
/* Stream administration (streams-admin.c) builds on these. */
SluiceStream *host_stream_new (const char *name);
char *host_stream_to_json (const SluiceStream *stream);
gboolean host_stream_open_partitions (SluiceHost *host, SluiceStream *stream, GError **error);

/* --- reader.c --- */
/* Answer every read waiting on `partition` with SLUICE_ERROR_NOT_FOUND (its
 * stream was deleted). */
void host_partition_drop_waiters (SluiceHost *host, SluicePartition *partition);

/* --- writer.c --- */
SluiceWriter *host_writer_new (SluiceHost *host);
/* Finish everything queued, sync every log, stop the thread. */
void host_writer_stop (SluiceWriter *writer);
void host_writer_free (SluiceWriter *writer);
typedef struct _HostAppend HostAppend;
/* Hands the appends this thread holds (SLUICE_APPEND_MORE) to the writer. */
void host_writer_release_held (SluiceWriter *writer);
void host_writer_submit_append (SluiceWriter *writer, SluicePartition *partition,
                                GBytes *batch, gint32 records, guint flags,
                                SluiceAppendFunc done, gpointer user_data);
void host_writer_submit_trim (SluiceWriter *writer, SluicePartition *partition,
                              gint64 before_offset, gint64 older_than_ms, guint64 max_bytes);
/* Refuse the stream's queued appends, delete its logs (on the writer
 * thread, after everything queued before), and wait for that. The caller
 * already marked it deleted and removed it from the table. Blocks: call it
 * from a job thread. */
gboolean host_writer_delete_stream (SluiceWriter *writer, SluiceStream *stream,
                                    GError **error);


/* --- host-jobs: run `work` on the pool, then `done` on the caller's context --- */
typedef void (*HostJobFunc) (gpointer data);
void host_job_run (SluiceHost *host, HostJobFunc work, HostJobFunc done, gpointer data);
/* Same, with the completion on `context`. */
void host_job_run_on (SluiceHost *host, GMainContext *context, HostJobFunc work,
                      HostJobFunc done, gpointer data);
/* Call `func(data)` on `context` (never inline); frees nothing. */
void host_invoke (GMainContext *context, GSourceFunc func, gpointer data);
void host_watches_init (SluiceHost *host);

/* --- registry.c --- */
gboolean host_registry_load (SluiceHost *host, GError **error);
void host_registry_clear (SluiceHost *host);

/* --- host.c --- */
void host_revoke (SluiceHost *host, const char *principal_id, const char *reason);
/* --- host-auth.c --- */
/* Every second on the main loop: revoke principals whose credentials expired. */
gboolean host_expiry_tick (gpointer data);
void host_metrics_init (SluiceHost *host);
void host_metrics_clear (SluiceHost *host);
gint64 host_now_ms (void);

/* --- log.c --- */
SLUICE_INTERNAL void sluice_log_setup (const char *level);

G_END_DECLS
