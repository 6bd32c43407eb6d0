# unit tests: host (streams, writer, reads, groups, registry)
check_PROGRAMS += tests/unit/test-host
TESTS += tests/unit/test-host
tests_unit_test_host_SOURCES = tests/unit/test-host.c
tests_unit_test_host_LDADD = core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)

# unit tests: the record batch codecs (core/record-compress.c)
check_PROGRAMS += tests/unit/test-record-compress
TESTS += tests/unit/test-record-compress
tests_unit_test_record_compress_SOURCES = tests/unit/test-record-compress.c
tests_unit_test_record_compress_CFLAGS = $(AM_CFLAGS) $(KAFKA_COMPRESS_CFLAGS)
tests_unit_test_record_compress_LDADD = core/libsluice.la $(GLIB_LIBS) $(KAFKA_COMPRESS_LIBS)

# unit tests: stream administration (core/streams-admin.c)
check_PROGRAMS += tests/unit/test-streams-admin
TESTS += tests/unit/test-streams-admin
tests_unit_test_streams_admin_SOURCES = tests/unit/test-streams-admin.c
tests_unit_test_streams_admin_LDADD = core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)
