# unit tests: host (streams, writer, reads, groups, registry)
check_PROGRAMS += tests/unit/test-host
TESTS += tests/unit/test-host
tests_unit_test_host_SOURCES = tests/unit/test-host.c
tests_unit_test_host_LDADD = core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)
