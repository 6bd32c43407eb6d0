# unit tests: records (record batch v2, CRC-32C, murmur2)
# SPDX-License-Identifier: Apache-2.0
check_PROGRAMS += tests/unit/test-records tests/unit/test-records-vectors
TESTS += tests/unit/test-records tests/unit/test-records-vectors

tests_unit_test_records_SOURCES = tests/unit/test-records.c
tests_unit_test_records_LDADD = core/libsluice.la $(GLIB_LIBS)

tests_unit_test_records_vectors_SOURCES = tests/unit/test-records-vectors.c
tests_unit_test_records_vectors_LDADD = core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)
