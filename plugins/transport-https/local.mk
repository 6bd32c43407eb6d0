# plugins/transport-https: IoT Hub device and registry REST, Event Hubs send,
# the stream read API, /healthz and /metrics, on libsoup-3 (TLS by
# glib-networking).
# SPDX-License-Identifier: Apache-2.0
https_codec_sources = \
	plugins/transport-https/https-codec.h \
	plugins/transport-https/https-codec.c

plugins_LTLIBRARIES += plugins/transport-https/transport-https.la
plugins_transport_https_transport_https_la_SOURCES = \
	$(https_codec_sources) \
	plugins/transport-https/https-transport.h \
	plugins/transport-https/https-server.c \
	plugins/transport-https/https-listen.c \
	plugins/transport-https/https-stream.h \
	plugins/transport-https/https-stream.c \
	plugins/transport-https/https-requests.c \
	plugins/transport-https/https-errors.c \
	plugins/transport-https/https-auth.c \
	plugins/transport-https/https-batch.c \
	plugins/transport-https/https-device.c \
	plugins/transport-https/https-streams.c \
	plugins/transport-https/https-ops.c \
	plugins/transport-https/https-websocket.c
plugins_transport_https_transport_https_la_CFLAGS = $(AM_CFLAGS) $(SOUP_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-https\"
plugins_transport_https_transport_https_la_LDFLAGS = $(sluice_plugin_ldflags)
plugins_transport_https_transport_https_la_LIBADD = $(sluice_plugin_libadd) $(SOUP_LIBS)

# The codec (routes, JSON in and out, header mapping) is pure: its tests
# drive it directly.
check_PROGRAMS += plugins/transport-https/tests/test-https-codec
TESTS += plugins/transport-https/tests/test-https-codec
plugins_transport_https_tests_test_https_codec_SOURCES = \
	plugins/transport-https/tests/test-https-codec.c \
	$(https_codec_sources)
plugins_transport_https_tests_test_https_codec_CFLAGS = $(AM_CFLAGS) \
	-I$(top_srcdir)/plugins/transport-https -DG_LOG_DOMAIN=\"sluice-https\"
plugins_transport_https_tests_test_https_codec_LDADD = \
	$(top_builddir)/core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)

# Error statuses and bodies (one table for every host error).
check_PROGRAMS += plugins/transport-https/tests/test-https-errors
TESTS += plugins/transport-https/tests/test-https-errors
plugins_transport_https_tests_test_https_errors_SOURCES = \
	plugins/transport-https/tests/test-https-errors.c \
	plugins/transport-https/https-errors.c \
	$(https_codec_sources)
plugins_transport_https_tests_test_https_errors_CFLAGS = $(AM_CFLAGS) $(SOUP_CFLAGS) \
	-I$(top_srcdir)/plugins/transport-https -DG_LOG_DOMAIN=\"sluice-https\"
plugins_transport_https_tests_test_https_errors_LDADD = \
	$(top_builddir)/core/libsluice.la $(SOUP_LIBS) $(GLIB_LIBS) $(JSON_LIBS)

# The connection stream (pause, written count, end of stream, lookup).
check_PROGRAMS += plugins/transport-https/tests/test-https-stream
TESTS += plugins/transport-https/tests/test-https-stream
plugins_transport_https_tests_test_https_stream_SOURCES = \
	plugins/transport-https/tests/test-https-stream.c \
	plugins/transport-https/https-stream.h \
	plugins/transport-https/https-stream.c
plugins_transport_https_tests_test_https_stream_CFLAGS = $(AM_CFLAGS) $(SOUP_CFLAGS) \
	-I$(top_srcdir)/plugins/transport-https -DG_LOG_DOMAIN=\"sluice-https\"
plugins_transport_https_tests_test_https_stream_LDADD = \
	$(top_builddir)/core/libsluice.la $(GLIB_LIBS)
