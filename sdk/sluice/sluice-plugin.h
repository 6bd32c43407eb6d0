/* Sluice plugin SDK — the plugin descriptor and its one exported symbol.
 *
 * A plugin is a libtool module `<kind>-<name>.la` that exports exactly one
 * symbol, emitted by SLUICE_PLUGIN_DEFINE() as
 * `<kind>_<name>_LTX_sluice_plugin_query`. The host checks, in order: magic;
 * same ABI major and minor <= the host's; sizes >= the ABI minimum; kind known;
 * kind and name match the file; name not already loaded; required slots
 * present; license and description set.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>
#include <sluice/sluice-options.h>

G_BEGIN_DECLS

#define SLUICE_PLUGIN_MAGIC 0x534c4331u /* "SLC1" */

typedef enum {
  SLUICE_PLUGIN_KIND_STORAGE = 1,
  SLUICE_PLUGIN_KIND_AUTH = 2,
  SLUICE_PLUGIN_KIND_TRANSPORT = 3,
} SluicePluginKind;

typedef struct {
  guint32 magic;                 /* SLUICE_PLUGIN_MAGIC */
  guint16 abi_major;             /* SLUICE_ABI_MAJOR the plugin was built with */
  guint16 abi_minor;             /* SLUICE_ABI_MINOR the plugin was built with */
  guint32 struct_size;           /* sizeof (SluicePluginDescriptor) */
  SluicePluginKind kind;
  const char *name;              /* `mqtt` for transport-mqtt */
  const char *version;           /* the plugin's own version */
  const char *description;       /* one line */
  const char *license;           /* SPDX identifier */
  gconstpointer vtable;          /* SluiceStorageVTable / SluiceAuthVTable / SluiceTransportVTable */
  guint32 vtable_size;           /* sizeof the vtable the plugin was built with */
  /* The plugin's own keys in its `[section]`; the host fills a struct of
   * `options_size` bytes and hands it to the plugin's create / open slot. */
  const SluiceOption *options;
  guint32 options_size;
  /* Section families this plugin owns, as prefixes (`policy.`); NULL-terminated.
   * The host gives them to the plugin via SluiceConfig and reports any section
   * that nobody owns. */
  const char *const *owned_sections;
  gpointer reserved[8];
} SluicePluginDescriptor;

/* The smallest descriptor the host accepts (everything through owned_sections). */
#define SLUICE_PLUGIN_DESCRIPTOR_MIN_SIZE \
  (G_STRUCT_OFFSET (SluicePluginDescriptor, owned_sections) + sizeof (gpointer))

#define SLUICE_PLUGIN_QUERY_SYMBOL "sluice_plugin_query"
typedef const SluicePluginDescriptor *(*SluicePluginQueryFunc) (void);

/* SLUICE_PLUGIN_DEFINE (transport, lines, "1.0", "newline-delimited JSON",
 *                       "Apache-2.0", &lines_vtable, lines_options,
 *                       sizeof (LinesOptions), NULL)
 * emits the descriptor and `transport_lines_LTX_sluice_plugin_query`. */
#define SLUICE_PLUGIN_DEFINE(kind_, name_, version_, description_, license_,   \
                             vtable_, options_, options_size_, owned_)          \
  static const SluicePluginDescriptor sluice_plugin_descriptor_ = {            \
    SLUICE_PLUGIN_MAGIC, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR,                   \
    sizeof (SluicePluginDescriptor), SLUICE_PLUGIN_KIND_##kind_,                \
    #name_, version_, description_, license_, vtable_, sizeof (*(vtable_)),    \
    options_, options_size_, owned_, { NULL }                                  \
  };                                                                           \
  SLUICE_API const SluicePluginDescriptor *kind_##_##name_##_LTX_sluice_plugin_query (void); \
  SLUICE_API const SluicePluginDescriptor *kind_##_##name_##_LTX_sluice_plugin_query (void) \
  {                                                                            \
    return &sluice_plugin_descriptor_;                                         \
  }

/* SLUICE_PLUGIN_DEFINE pastes its lower-case `kind_` (which also names the
 * exported symbol) onto SLUICE_PLUGIN_KIND_; these make that resolve. */
#define SLUICE_PLUGIN_KIND_storage SLUICE_PLUGIN_KIND_STORAGE
#define SLUICE_PLUGIN_KIND_auth SLUICE_PLUGIN_KIND_AUTH
#define SLUICE_PLUGIN_KIND_transport SLUICE_PLUGIN_KIND_TRANSPORT

#define SLUICE_KIND_STORAGE storage
#define SLUICE_KIND_AUTH auth
#define SLUICE_KIND_TRANSPORT transport

#define SLUICE_PLUGIN_ERROR (sluice_plugin_error_quark ())
SLUICE_API GQuark sluice_plugin_error_quark (void);

typedef enum {
  SLUICE_PLUGIN_ERROR_NOT_FOUND,    /* no module of that name on the search path */
  SLUICE_PLUGIN_ERROR_OPEN,         /* lt_dlopenext failed (missing library, bad file) */
  SLUICE_PLUGIN_ERROR_NO_SYMBOL,    /* no <kind>_<name>_LTX_sluice_plugin_query */
  SLUICE_PLUGIN_ERROR_BAD_MAGIC,
  SLUICE_PLUGIN_ERROR_ABI,          /* other major, or newer minor than the host */
  SLUICE_PLUGIN_ERROR_SIZE,         /* descriptor or vtable smaller than the ABI minimum */
  SLUICE_PLUGIN_ERROR_KIND,         /* unknown kind */
  SLUICE_PLUGIN_ERROR_MISMATCH,     /* kind / name differ from the file name */
  SLUICE_PLUGIN_ERROR_DUPLICATE,    /* a plugin of that name is already loaded */
  SLUICE_PLUGIN_ERROR_MISSING_SLOT, /* a required vtable slot is NULL */
  SLUICE_PLUGIN_ERROR_METADATA,     /* license or description missing */
} SluicePluginError;

G_END_DECLS
