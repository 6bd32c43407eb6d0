/* Sluice core — error domains.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core-private.h"

G_DEFINE_QUARK (sluice-error-quark, sluice_error)
G_DEFINE_QUARK (sluice-plugin-error-quark, sluice_plugin_error)
