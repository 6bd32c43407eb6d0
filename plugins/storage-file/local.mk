# plugins/storage-file: segment-file logs, a KV commit log and blob files
# SPDX-License-Identifier: Apache-2.0
storage_file_sources = \
	plugins/storage-file/storage-file.c \
	plugins/storage-file/file-store.h \
	plugins/storage-file/file-util.c \
	plugins/storage-file/file-log.h \
	plugins/storage-file/file-log.c \
	plugins/storage-file/file-read.c \
	plugins/storage-file/file-segment.c \
	plugins/storage-file/file-kv.c \
	plugins/storage-file/file-blob.c

plugins_LTLIBRARIES += plugins/storage-file/storage-file.la
plugins_storage_file_storage_file_la_SOURCES = $(storage_file_sources)
plugins_storage_file_storage_file_la_CFLAGS = $(AM_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-storage-file\"
plugins_storage_file_storage_file_la_LDFLAGS = $(sluice_plugin_ldflags)
plugins_storage_file_storage_file_la_LIBADD = $(sluice_plugin_libadd)

# The plugin's own tests (recovery, index, segments, corruption) drive it
# through its vtable, compiled in, and poke at its files directly.
check_PROGRAMS += plugins/storage-file/tests/test-storage-file
TESTS += plugins/storage-file/tests/test-storage-file
plugins_storage_file_tests_test_storage_file_SOURCES = \
	plugins/storage-file/tests/test-storage-file.c \
	$(storage_file_sources)
plugins_storage_file_tests_test_storage_file_CFLAGS = $(AM_CFLAGS) \
	-I$(top_srcdir)/plugins/storage-file -DG_LOG_DOMAIN=\"sluice-storage-file\"
plugins_storage_file_tests_test_storage_file_LDADD = \
	$(top_builddir)/core/libsluice.la $(GLIB_LIBS)
