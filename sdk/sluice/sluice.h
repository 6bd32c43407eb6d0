/* Sluice plugin SDK — include this one header.
 * SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sluice/sluice-types.h>
#include <sluice/sluice-options.h>
#include <sluice/sluice-plugin.h>
#include <sluice/sluice-record.h>
#include <sluice/sluice-storage.h>
#include <sluice/sluice-auth.h>
#include <sluice/sluice-transport.h>
#include <sluice/sluice-host.h>
