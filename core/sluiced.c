/* sluiced — the Sluice host. Everything lives in libsluice.
 * SPDX-License-Identifier: Apache-2.0 */
#include "daemon-private.h"
#include "migrate-private.h"

#include <string.h>

int
main (int argc, char **argv)
{
  /* A one-off copy between storage backends instead of the hub. */
  if (argc > 1 && strcmp (argv[1], "--migrate") == 0)
    return sluice_migrate_main (argc, argv);
  return sluice_daemon_main (argc, argv);
}
