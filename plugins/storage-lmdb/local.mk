# SPDX-License-Identifier: Apache-2.0
# plugins/storage-lmdb: partition logs, the KV and blobs in one LMDB environment
storage_lmdb_sources = \
	plugins/storage-lmdb/storage-lmdb.c \
	plugins/storage-lmdb/lmdb-store.h \
	plugins/storage-lmdb/lmdb-log.c \
	plugins/storage-lmdb/lmdb-kv.c \
	plugins/storage-lmdb/lmdb-blob.c \
	plugins/storage-lmdb/lmdb-verify.c

plugins_LTLIBRARIES += plugins/storage-lmdb/storage-lmdb.la
plugins_storage_lmdb_storage_lmdb_la_SOURCES = $(storage_lmdb_sources)
plugins_storage_lmdb_storage_lmdb_la_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-storage-lmdb\"
plugins_storage_lmdb_storage_lmdb_la_LDFLAGS = $(sluice_plugin_ldflags)
plugins_storage_lmdb_storage_lmdb_la_LIBADD = $(sluice_plugin_libadd) $(LMDB_LIBS)

# The plugin's own tests (map growth, damaged batches and pages, sync beside
# appends) drive it through its vtable, compiled in, and reach its files.
check_PROGRAMS += plugins/storage-lmdb/tests/test-storage-lmdb
TESTS += plugins/storage-lmdb/tests/test-storage-lmdb
plugins_storage_lmdb_tests_test_storage_lmdb_SOURCES = \
	plugins/storage-lmdb/tests/test-storage-lmdb.c \
	$(storage_lmdb_sources)
plugins_storage_lmdb_tests_test_storage_lmdb_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS) \
	-I$(top_srcdir)/plugins/storage-lmdb -DG_LOG_DOMAIN=\"sluice-storage-lmdb\"
plugins_storage_lmdb_tests_test_storage_lmdb_LDADD = \
	$(top_builddir)/core/libsluice.la $(GLIB_LIBS) $(LMDB_LIBS)
