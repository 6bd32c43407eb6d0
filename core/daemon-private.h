/* Sluice core — entry point of the sluiced program.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

SLUICE_INTERNAL int sluice_daemon_main (int argc, char **argv);
