/* Fixture plugins for the loader tests (tests/unit/test-loader.c).
 *
 * One source, built once per module with FIXTURE_KIND (storage | auth |
 * transport), FIXTURE_NAME and FIXTURE_FAULT set by tests/unit/config.mk.
 * FAULT_NONE modules use SLUICE_PLUGIN_DEFINE; every fault writes its
 * descriptor by hand, because the macro cannot express a broken one. The
 * modules do not link libsluice: the loader only reads their descriptor.
 * SPDX-License-Identifier: Apache-2.0 */
#include <sluice/sluice.h>

#define FAULT_NONE 0
#define FAULT_BAD_MAGIC 1
#define FAULT_NEW_MINOR 2
#define FAULT_OTHER_MAJOR 3
#define FAULT_SMALL_DESCRIPTOR 4
#define FAULT_SMALL_VTABLE 5
#define FAULT_WRONG_KIND 6
#define FAULT_NAME_MISMATCH 7
#define FAULT_KIND_MISMATCH 8
#define FAULT_NULL_SLOT 9
#define FAULT_NO_LICENSE 10
#define FAULT_NO_DESCRIPTION 11
#define FAULT_NO_SYMBOL 12
#define FAULT_BAD_OPTIONS 13
#define FAULT_OWNS_LISTENERS 14 /* not a fault: NULL connection slots allowed */

#ifndef FIXTURE_FAULT
#define FIXTURE_FAULT FAULT_NONE
#endif
#ifndef FIXTURE_VERSION
#define FIXTURE_VERSION "1.0"
#endif

#define FIXTURE_KIND_IS_storage 1
#define FIXTURE_KIND_IS_auth 2
#define FIXTURE_KIND_IS_transport 3
#define KIND_NUMBER_(k) FIXTURE_KIND_IS_##k
#define KIND_NUMBER(k) KIND_NUMBER_ (k)
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_ (x)
#define QUERY_NAME_(k, n) k##_##n##_LTX_sluice_plugin_query
#define QUERY_NAME(k, n) QUERY_NAME_ (k, n)
#define DEFINE_(k, n, ...) SLUICE_PLUGIN_DEFINE (k, n, __VA_ARGS__)

#define FIXTURE_KIND_NUMBER KIND_NUMBER (FIXTURE_KIND)
#define SLOT(fn) (FIXTURE_FAULT == FAULT_NULL_SLOT ? NULL : (fn))

typedef struct {
  char *greeting;
  gint64 count;
} FixtureOptions;

G_GNUC_UNUSED static const SluiceOption fixture_options[] = {
  { "greeting", SLUICE_OPTION_STRING, G_STRUCT_OFFSET (FixtureOptions, greeting), "hello",
    "a string", 0, 0, NULL, { NULL } },
  { "count", SLUICE_OPTION_INT, G_STRUCT_OFFSET (FixtureOptions, count), "1", "a number",
    0, 10, NULL, { NULL } },
  SLUICE_OPTION_END
};

static const char *const fixture_owned[] = { "fixture.", NULL };

#if FIXTURE_KIND_NUMBER == 1
static gpointer
st_open (SluiceHost *h, const void *o, const char *d, GError **e)
{
  return NULL;
}
static void st_close (gpointer s) {}
static gboolean st_log_create (gpointer s, const SluiceLogId *l, GError **e) { return TRUE; }
static gboolean st_log_delete (gpointer s, const char *n, GError **e) { return TRUE; }
static gboolean
st_log_list (gpointer s, GPtrArray *n, GArray *p, GError **e)
{
  return TRUE;
}
static gboolean
st_log_append (gpointer s, const SluiceLogId *l, SluiceBatch *const *b, guint n, gint64 *o,
               GError **e)
{
  return TRUE;
}
static gboolean st_sync (gpointer s, const SluiceLogId *l, guint n, GError **e) { return TRUE; }
static gboolean
st_log_read (gpointer s, const SluiceLogId *l, gint64 f, gsize m, GPtrArray *o, GError **e)
{
  return TRUE;
}
static gboolean
st_log_bounds (gpointer s, const SluiceLogId *l, gint64 *f, gint64 *n, GError **e)
{
  return TRUE;
}
static gboolean
st_log_trim (gpointer s, const SluiceLogId *l, gint64 b, gint64 o, guint64 m, gint64 *n,
             GError **e)
{
  return TRUE;
}
static GBytes *st_kv_get (gpointer s, const char *k, GError **e) { return NULL; }
static gboolean st_kv_scan (gpointer s, const char *p, GPtrArray *o, GError **e) { return TRUE; }
static gboolean
st_kv_commit (gpointer s, const SluiceKvOp *o, guint n, GError **e)
{
  return TRUE;
}
static SluiceBlobWriter *st_blob_open_write (gpointer s, const char *n, GError **e) { return NULL; }
static gboolean
st_blob_write (gpointer s, SluiceBlobWriter *w, const guint8 *d, gsize l, GError **e)
{
  return TRUE;
}
static gboolean st_blob_commit (gpointer s, SluiceBlobWriter *w, GError **e) { return TRUE; }
static void st_blob_abort (gpointer s, SluiceBlobWriter *w) {}
static GBytes *
st_blob_read (gpointer s, const char *n, guint64 o, gsize m, guint64 *t, GError **e)
{
  return NULL;
}
static gboolean st_blob_delete (gpointer s, const char *n, GError **e) { return TRUE; }

static const SluiceStorageVTable fixture_vtable = {
  st_open, st_close, st_log_create, st_log_delete, st_log_list, st_log_append, st_sync,
  st_log_read, st_log_bounds, st_log_trim, st_kv_get, st_kv_scan, st_kv_commit,
  st_blob_open_write, st_blob_write, st_blob_commit, st_blob_abort, st_blob_read,
  SLOT (st_blob_delete),
};

#elif FIXTURE_KIND_NUMBER == 2
static gpointer
au_create (SluiceHost *h, const char *n, const void *o, SluiceConfig *c, GError **e)
{
  return NULL;
}
static void au_destroy (gpointer s) {}
static SluiceAuthResult
au_authenticate (gpointer s, const SluiceCredentials *c, SluicePrincipal **p, GError **e)
{
  return SLUICE_AUTH_DEFER;
}

static const SluiceAuthVTable fixture_vtable = {
  .create = au_create,
  .destroy = au_destroy,
  .authenticate = SLOT (au_authenticate),
};

#elif FIXTURE_KIND_NUMBER == 3
static gpointer
tr_create (SluiceHost *h, const SluiceTransportConfig *c, const void *o, GError **e)
{
  return NULL;
}
static gboolean tr_start (gpointer s, GError **e) { return TRUE; }
static void tr_stop (gpointer s) {}
static void tr_destroy (gpointer s) {}
#if FIXTURE_FAULT != FAULT_OWNS_LISTENERS
static gpointer tr_open (gpointer s, SluiceConnection *c) { return NULL; }
static gsize tr_input (gpointer s, SluiceConnection *c, const guint8 *d, gsize l) { return l; }
static void tr_closed (gpointer s, SluiceConnection *c) {}
#endif

static const SluiceTransportVTable fixture_vtable = {
#if FIXTURE_FAULT == FAULT_OWNS_LISTENERS
  .flags = SLUICE_TRANSPORT_OWNS_LISTENERS,
#else
  .connection_open = tr_open,
  .connection_input = SLOT (tr_input),
  .connection_closed = tr_closed,
#endif
  .create = tr_create,
  .start = tr_start,
  .stop = tr_stop,
  .destroy = tr_destroy,
};

#else
#error "FIXTURE_KIND must be storage, auth or transport"
#endif

#if FIXTURE_FAULT == FAULT_NONE || FIXTURE_FAULT == FAULT_OWNS_LISTENERS
DEFINE_ (FIXTURE_KIND, FIXTURE_NAME, FIXTURE_VERSION,
         "fixture " STRINGIFY (FIXTURE_KIND) "-" STRINGIFY (FIXTURE_NAME), "Apache-2.0",
         &fixture_vtable, fixture_options, sizeof (FixtureOptions), fixture_owned)
#else

#if FIXTURE_FAULT == FAULT_BAD_OPTIONS
/* `count` claims an offset past the end of the struct. */
static const SluiceOption bad_options[] = {
  { "count", SLUICE_OPTION_INT, sizeof (FixtureOptions), "1", "a number", 0, 0, NULL,
    { NULL } },
  SLUICE_OPTION_END
};
#endif

static const SluicePluginDescriptor fixture_descriptor = {
  .magic = FIXTURE_FAULT == FAULT_BAD_MAGIC ? 0xdeadbeefu : SLUICE_PLUGIN_MAGIC,
  .abi_major = FIXTURE_FAULT == FAULT_OTHER_MAJOR ? SLUICE_ABI_MAJOR + 1 : SLUICE_ABI_MAJOR,
  .abi_minor = FIXTURE_FAULT == FAULT_NEW_MINOR ? SLUICE_ABI_MINOR + 1 : SLUICE_ABI_MINOR,
  .struct_size = FIXTURE_FAULT == FAULT_SMALL_DESCRIPTOR ? 24 : sizeof (SluicePluginDescriptor),
  .kind = FIXTURE_FAULT == FAULT_WRONG_KIND ? (SluicePluginKind) 42
          : FIXTURE_FAULT == FAULT_KIND_MISMATCH ? SLUICE_PLUGIN_KIND_AUTH
          : (SluicePluginKind) FIXTURE_KIND_NUMBER,
  .name = FIXTURE_FAULT == FAULT_NAME_MISMATCH ? "other" : STRINGIFY (FIXTURE_NAME),
  .version = FIXTURE_VERSION,
  .description = FIXTURE_FAULT == FAULT_NO_DESCRIPTION ? "" : "a broken fixture",
  .license = FIXTURE_FAULT == FAULT_NO_LICENSE ? NULL : "Apache-2.0",
  .vtable = &fixture_vtable,
  .vtable_size = FIXTURE_FAULT == FAULT_SMALL_VTABLE ? 2 * sizeof (gpointer)
                                                     : sizeof (fixture_vtable),
#if FIXTURE_FAULT == FAULT_BAD_OPTIONS
  .options = bad_options,
#else
  .options = fixture_options,
#endif
  .options_size = sizeof (FixtureOptions),
  .owned_sections = fixture_owned,
};

/* FAULT_NO_SYMBOL exports a query under a name the file does not imply. */
#if FIXTURE_FAULT == FAULT_NO_SYMBOL
#define FIXTURE_QUERY QUERY_NAME (FIXTURE_KIND, other)
#else
#define FIXTURE_QUERY QUERY_NAME (FIXTURE_KIND, FIXTURE_NAME)
#endif

SLUICE_API const SluicePluginDescriptor *FIXTURE_QUERY (void);
SLUICE_API const SluicePluginDescriptor *
FIXTURE_QUERY (void)
{
  return &fixture_descriptor;
}
#endif
