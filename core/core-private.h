/* Sluice core — what every core file shares.
 *
 * libsluice is built with hidden visibility: only SLUICE_API (the installed
 * SDK) and SLUICE_INTERNAL symbols are exported. SLUICE_INTERNAL marks core
 * functions that sluiced, sluicectl and the tests call; they are declared
 * only in these *-private.h headers, which are not installed, so plugins
 * cannot reach them.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "config.h"
#include <sluice/sluice.h>

#define SLUICE_INTERNAL __attribute__ ((visibility ("default")))
