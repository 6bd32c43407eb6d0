# unit tests: io (workers, epoll source, listeners, connections, TLS)
check_PROGRAMS += tests/unit/test-io tests/unit/test-io-tls tests/unit/test-epoll-source
TESTS += tests/unit/test-io tests/unit/test-io-tls tests/unit/test-epoll-source

unit_io_cflags = $(AM_CFLAGS) $(GNUTLS_CFLAGS) -DG_LOG_DOMAIN=\"sluice-test\"
unit_io_ldadd = core/libsluice.la $(GLIB_LIBS) $(GNUTLS_LIBS)
unit_io_support = \
	tests/unit/io-test-transport.h tests/unit/io-test-transport.c \
	tests/unit/io-test-util.h tests/unit/io-test-util.c

tests_unit_test_io_SOURCES = tests/unit/test-io.c $(unit_io_support)
tests_unit_test_io_CFLAGS = $(unit_io_cflags)
tests_unit_test_io_LDADD = $(unit_io_ldadd)

tests_unit_test_io_tls_SOURCES = tests/unit/test-io-tls.c $(unit_io_support)
tests_unit_test_io_tls_CFLAGS = $(unit_io_cflags)
tests_unit_test_io_tls_LDADD = $(unit_io_ldadd)

# The epoll source is internal to libsluice: the test compiles it in.
tests_unit_test_epoll_source_SOURCES = tests/unit/test-epoll-source.c \
	core/epoll-source.h core/epoll-source.c
tests_unit_test_epoll_source_CFLAGS = $(unit_io_cflags)
tests_unit_test_epoll_source_LDADD = $(GLIB_LIBS)

# Adopted connections (a fake carrier standing in for a WebSocket).
check_PROGRAMS += tests/unit/test-io-carrier
TESTS += tests/unit/test-io-carrier
tests_unit_test_io_carrier_SOURCES = tests/unit/test-io-carrier.c $(unit_io_support)
tests_unit_test_io_carrier_CFLAGS = $(unit_io_cflags)
tests_unit_test_io_carrier_LDADD = $(unit_io_ldadd)
