# A C test client on librdkafka (tests/interop/kafka-client: an idempotent
# producer and a high-level group consumer that print JSON lines) and the
# driver that runs it against a real sluiced: delivery reports read back over
# HTTPS, a two-member group rebalancing when one leaves, resuming from the
# committed offsets after a restart.
# SPDX-License-Identifier: Apache-2.0
check_PROGRAMS += tests/interop/kafka-client
tests_interop_kafka_client_SOURCES = tests/interop/kafka-client.c
tests_interop_kafka_client_CFLAGS = $(AM_CFLAGS) $(RDKAFKA_CFLAGS)
tests_interop_kafka_client_LDADD = $(GLIB_LIBS) $(JSON_LIBS) $(RDKAFKA_LIBS)

kafka_client_script_tests = tests/interop/test-kafka-rdkafka.py
TESTS += $(kafka_client_script_tests)
dist_noinst_SCRIPTS += $(kafka_client_script_tests)
