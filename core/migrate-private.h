/* Sluice core — `sluiced --migrate FROM-CONFIG TO-CONFIG` (migrate.c).
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "core-private.h"

/* Runs the migration the command line asks for; the process exit status. */
int sluice_migrate_main (int argc, char **argv);
