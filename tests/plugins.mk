# Test-only plugins and tools, built from the tree for tests/interop and
# tests/recovery. The lines example is the same source the out-of-tree build
# uses (examples/transport-lines), here as a check-only libtool module.
# SPDX-License-Identifier: Apache-2.0

check_LTLIBRARIES += tests/plugins/transport-lines.la
tests_plugins_transport_lines_la_SOURCES = examples/transport-lines/transport-lines.c
tests_plugins_transport_lines_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden \
	-DG_LOG_DOMAIN=\"sluice-lines\"
tests_plugins_transport_lines_la_LDFLAGS = -module -avoid-version -rpath /nowhere \
	-no-undefined -shared -export-symbols-regex 'sluice_plugin_query$$'
tests_plugins_transport_lines_la_LIBADD = $(sluice_plugin_libadd)

# sluice-dump: print a stream's records straight from a data directory.
check_PROGRAMS += tests/tools/sluice-dump
tests_tools_sluice_dump_SOURCES = tests/tools/sluice-dump.c
tests_tools_sluice_dump_CFLAGS = $(AM_CFLAGS) -DG_LOG_DOMAIN=\"sluice-dump\"
tests_tools_sluice_dump_LDADD = $(top_builddir)/core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)

# The small Python library the interop and recovery scripts share.
EXTRA_DIST += tests/lib/sluicetest.py
