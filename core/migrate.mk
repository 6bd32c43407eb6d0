# Copying a data directory between storage backends (sluiced --migrate).
# SPDX-License-Identifier: Apache-2.0
# migrate.c is part of sluiced, not of libsluice: only the program runs it.
core_sluiced_SOURCES += core/migrate.c core/migrate-private.h
