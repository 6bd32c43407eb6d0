# plugins/transport-kafka: the Kafka wire protocol on Sluice streams.
# SPDX-License-Identifier: Apache-2.0

# The pure codec (wire primitives, request decoding, response encoding):
# bytes in, structs out and back, no I/O, no core calls. One convenience
# library that the transport, its unit tests and the fuzzer link.
kafka_codec_sources = \
	plugins/transport-kafka/kafka-codec.h \
	plugins/transport-kafka/kafka-codec.c \
	plugins/transport-kafka/kafka-protocol.h \
	plugins/transport-kafka/kafka-protocol.c \
	plugins/transport-kafka/kafka-protocol-responses.c

noinst_LTLIBRARIES += plugins/transport-kafka/libkafka-codec.la
plugins_transport_kafka_libkafka_codec_la_SOURCES = $(kafka_codec_sources)
plugins_transport_kafka_libkafka_codec_la_CFLAGS = $(AM_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-kafka\"

# The codec against the recorded client and server streams of
# $(SLUICE_VECTORS)/kafka, round trips and refusals.
kafka_codec_test_cflags = $(AM_CFLAGS) -I$(top_srcdir)/plugins/transport-kafka \
	-DG_LOG_DOMAIN=\"sluice-kafka\"
check_PROGRAMS += plugins/transport-kafka/tests/test-kafka-codec
TESTS += plugins/transport-kafka/tests/test-kafka-codec
plugins_transport_kafka_tests_test_kafka_codec_SOURCES = \
	plugins/transport-kafka/tests/test-kafka-codec.c
plugins_transport_kafka_tests_test_kafka_codec_CFLAGS = $(kafka_codec_test_cflags)
plugins_transport_kafka_tests_test_kafka_codec_LDADD = \
	plugins/transport-kafka/libkafka-codec.la $(GLIB_LIBS) $(JSON_LIBS)

# The transport plugin: connections, the request pipeline and the handlers
# on the codec above.
kafka_transport_sources = \
	plugins/transport-kafka/kafka-transport.h \
	plugins/transport-kafka/kafka-transport.c \
	plugins/transport-kafka/kafka-connection.c \
	plugins/transport-kafka/kafka-handlers.c \
	plugins/transport-kafka/kafka-handlers-fetch.c \
	plugins/transport-kafka/kafka-handlers-sasl.c \
	plugins/transport-kafka/kafka-handlers-groups.c \
	plugins/transport-kafka/kafka-handlers-producers.c \
	plugins/transport-kafka/kafka-handlers-admin.c
plugins_LTLIBRARIES += plugins/transport-kafka/transport-kafka.la
plugins_transport_kafka_transport_kafka_la_SOURCES = $(kafka_transport_sources)
plugins_transport_kafka_transport_kafka_la_CFLAGS = $(AM_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-kafka\"
plugins_transport_kafka_transport_kafka_la_LDFLAGS = $(sluice_plugin_ldflags)
plugins_transport_kafka_transport_kafka_la_LIBADD = \
	plugins/transport-kafka/libkafka-codec.la plugins/transport-kafka/libkafka-logic.la \
	$(sluice_plugin_libadd)

# kafka pure modules
# SASL (PLAIN mapping, SCRAM server), the consumer-group coordinator and the
# idempotent producer state: logic without sockets or clocks, driven by the
# transport and directly by their unit tests.
kafka_logic_sources = \
	plugins/transport-kafka/kafka-sasl.h \
	plugins/transport-kafka/kafka-sasl.c \
	plugins/transport-kafka/kafka-groups.h \
	plugins/transport-kafka/kafka-groups.c \
	plugins/transport-kafka/kafka-producers.h \
	plugins/transport-kafka/kafka-producers.c
noinst_LTLIBRARIES += plugins/transport-kafka/libkafka-logic.la
plugins_transport_kafka_libkafka_logic_la_SOURCES = $(kafka_logic_sources)
plugins_transport_kafka_libkafka_logic_la_CFLAGS = $(AM_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-kafka\"

kafka_logic_test_cflags = $(AM_CFLAGS) -I$(top_srcdir)/plugins/transport-kafka \
	-DG_LOG_DOMAIN=\"sluice-kafka\"
kafka_logic_test_ldadd = plugins/transport-kafka/libkafka-logic.la \
	core/libsluice.la $(GLIB_LIBS)
check_PROGRAMS += plugins/transport-kafka/tests/test-kafka-sasl
TESTS += plugins/transport-kafka/tests/test-kafka-sasl
plugins_transport_kafka_tests_test_kafka_sasl_SOURCES = \
	plugins/transport-kafka/tests/test-kafka-sasl.c
plugins_transport_kafka_tests_test_kafka_sasl_CFLAGS = $(kafka_logic_test_cflags)
plugins_transport_kafka_tests_test_kafka_sasl_LDADD = $(kafka_logic_test_ldadd)
check_PROGRAMS += plugins/transport-kafka/tests/test-kafka-groups \
	plugins/transport-kafka/tests/test-kafka-producers
TESTS += plugins/transport-kafka/tests/test-kafka-groups \
	plugins/transport-kafka/tests/test-kafka-producers
plugins_transport_kafka_tests_test_kafka_groups_SOURCES = \
	plugins/transport-kafka/tests/test-kafka-groups.c
plugins_transport_kafka_tests_test_kafka_groups_CFLAGS = $(kafka_logic_test_cflags)
plugins_transport_kafka_tests_test_kafka_groups_LDADD = $(kafka_logic_test_ldadd)
plugins_transport_kafka_tests_test_kafka_producers_SOURCES = \
	plugins/transport-kafka/tests/test-kafka-producers.c
plugins_transport_kafka_tests_test_kafka_producers_CFLAGS = $(kafka_logic_test_cflags)
plugins_transport_kafka_tests_test_kafka_producers_LDADD = $(kafka_logic_test_ldadd)
