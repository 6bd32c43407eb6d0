/* sluiced — the Sluice host. Everything lives in libsluice.
 * SPDX-License-Identifier: Apache-2.0 */
#include "daemon-private.h"

int
main (int argc, char **argv)
{
  return sluice_daemon_main (argc, argv);
}
