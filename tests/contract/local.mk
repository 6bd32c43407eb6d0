# tests/contract: one storage suite that every storage backend runs unchanged.
# SPDX-License-Identifier: Apache-2.0
#
# The suite is built once per backend: STORAGE_PLUGIN_DEFAULT names the
# plugin and STORAGE_OPTIONS_DEFAULT its `[storage]` keys (`key=value;...`,
# small units so the retention cases drop something). At run time
# $SLUICE_STORAGE_PLUGIN / $SLUICE_STORAGE_OPTIONS override both, e.g.
#   SLUICE_STORAGE_PLUGIN=lmdb make check TESTS=tests/contract/test-storage-file
# A new backend adds a program like the one below with its own defaults.
storage_contract_sources = \
	tests/contract/storage-contract.h \
	tests/contract/storage-contract.c \
	tests/contract/contract-logs.c \
	tests/contract/contract-trim.c \
	tests/contract/contract-kv.c \
	tests/contract/contract-concurrent.c

check_PROGRAMS += tests/contract/test-storage-file
TESTS += tests/contract/test-storage-file
tests_contract_test_storage_file_SOURCES = $(storage_contract_sources)
tests_contract_test_storage_file_CFLAGS = $(AM_CFLAGS) -DG_LOG_DOMAIN=\"storage-contract\" \
	-DSTORAGE_PLUGIN_DEFAULT=\"file\" \
	-DSTORAGE_OPTIONS_DEFAULT=\"segment-size=4KiB\;index-interval=256\"
tests_contract_test_storage_file_LDADD = $(top_builddir)/core/libsluice.la $(GLIB_LIBS)

# storage-lmdb: a small first map so the contract cases also make it grow.
check_PROGRAMS += tests/contract/test-storage-lmdb
TESTS += tests/contract/test-storage-lmdb
tests_contract_test_storage_lmdb_SOURCES = $(storage_contract_sources)
tests_contract_test_storage_lmdb_CFLAGS = $(AM_CFLAGS) -DG_LOG_DOMAIN=\"storage-contract\" \
	-DSTORAGE_PLUGIN_DEFAULT=\"lmdb\" \
	-DSTORAGE_OPTIONS_DEFAULT=\"map-size=1MiB\"
tests_contract_test_storage_lmdb_LDADD = $(top_builddir)/core/libsluice.la $(GLIB_LIBS)
