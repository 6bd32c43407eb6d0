# plugins/transport-mqtt: an MQTT 3.1.1 and 5.0 broker on Sluice streams.
# SPDX-License-Identifier: Apache-2.0

# The pure parts (packet codec, topics, subscription and retained indexes):
# bytes and structs in, structs out, no I/O, no core calls. One convenience
# library that the transport, its unit tests and the fuzzer link.
mqtt_codec_sources = \
	plugins/transport-mqtt/mqtt-codec.h \
	plugins/transport-mqtt/mqtt-codec-private.h \
	plugins/transport-mqtt/mqtt-codec.c \
	plugins/transport-mqtt/mqtt-decode.c \
	plugins/transport-mqtt/mqtt-encode.c \
	plugins/transport-mqtt/mqtt-props.c
mqtt_topic_sources = \
	plugins/transport-mqtt/mqtt-topic.h \
	plugins/transport-mqtt/mqtt-topic.c \
	plugins/transport-mqtt/mqtt-subs.h \
	plugins/transport-mqtt/mqtt-subs.c \
	plugins/transport-mqtt/mqtt-retained.h \
	plugins/transport-mqtt/mqtt-retained.c

noinst_LTLIBRARIES += plugins/transport-mqtt/libmqtt-codec.la
plugins_transport_mqtt_libmqtt_codec_la_SOURCES = \
	$(mqtt_codec_sources) $(mqtt_topic_sources)
plugins_transport_mqtt_libmqtt_codec_la_CFLAGS = $(AM_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-mqtt\"

# Topic rules and the subscription index, driven directly.
mqtt_topic_test_cflags = $(AM_CFLAGS) -I$(top_srcdir)/plugins/transport-mqtt \
	-DG_LOG_DOMAIN=\"sluice-mqtt\"
mqtt_topic_test_ldadd = plugins/transport-mqtt/libmqtt-codec.la $(GLIB_LIBS)
check_PROGRAMS += \
	plugins/transport-mqtt/tests/test-mqtt-topic \
	plugins/transport-mqtt/tests/test-mqtt-subs \
	plugins/transport-mqtt/tests/test-mqtt-retained
TESTS += \
	plugins/transport-mqtt/tests/test-mqtt-topic \
	plugins/transport-mqtt/tests/test-mqtt-subs \
	plugins/transport-mqtt/tests/test-mqtt-retained
plugins_transport_mqtt_tests_test_mqtt_topic_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-topic.c
plugins_transport_mqtt_tests_test_mqtt_topic_CFLAGS = $(mqtt_topic_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_topic_LDADD = $(mqtt_topic_test_ldadd)
plugins_transport_mqtt_tests_test_mqtt_subs_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-subs.c \
	plugins/transport-mqtt/tests/mqtt-random-topics.h
plugins_transport_mqtt_tests_test_mqtt_subs_CFLAGS = $(mqtt_topic_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_subs_LDADD = $(mqtt_topic_test_ldadd)
plugins_transport_mqtt_tests_test_mqtt_retained_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-retained.c \
	plugins/transport-mqtt/tests/mqtt-random-topics.h
plugins_transport_mqtt_tests_test_mqtt_retained_CFLAGS = $(mqtt_topic_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_retained_LDADD = $(mqtt_topic_test_ldadd)

# The packet codec: round trips and refusals of every packet type in both
# versions, the stream decoder; then the recorded client and server streams
# and the malformed cases of $(SLUICE_VECTORS)/mqtt.
check_PROGRAMS += \
	plugins/transport-mqtt/tests/test-mqtt-codec \
	plugins/transport-mqtt/tests/test-mqtt-refusals \
	plugins/transport-mqtt/tests/test-mqtt-vectors
TESTS += \
	plugins/transport-mqtt/tests/test-mqtt-codec \
	plugins/transport-mqtt/tests/test-mqtt-refusals \
	plugins/transport-mqtt/tests/test-mqtt-vectors
mqtt_codec_test_cflags = $(AM_CFLAGS) -I$(top_srcdir)/plugins/transport-mqtt \
	-DG_LOG_DOMAIN=\"sluice-mqtt\"
mqtt_codec_test_ldadd = plugins/transport-mqtt/libmqtt-codec.la $(GLIB_LIBS) $(JSON_LIBS)
plugins_transport_mqtt_tests_test_mqtt_codec_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-codec.c \
	plugins/transport-mqtt/tests/mqtt-test-util.h
plugins_transport_mqtt_tests_test_mqtt_codec_CFLAGS = $(mqtt_codec_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_codec_LDADD = $(mqtt_codec_test_ldadd)
plugins_transport_mqtt_tests_test_mqtt_refusals_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-refusals.c \
	plugins/transport-mqtt/tests/mqtt-test-util.h
plugins_transport_mqtt_tests_test_mqtt_refusals_CFLAGS = $(mqtt_codec_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_refusals_LDADD = $(mqtt_codec_test_ldadd)
plugins_transport_mqtt_tests_test_mqtt_vectors_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-vectors.c
plugins_transport_mqtt_tests_test_mqtt_vectors_CFLAGS = $(mqtt_codec_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_vectors_LDADD = $(mqtt_codec_test_ldadd)

# The transport plugin: the connection state machine and the IoT Hub device
# topics on the codec above.
plugins_LTLIBRARIES += plugins/transport-mqtt/transport-mqtt.la
mqtt_transport_sources = \
	plugins/transport-mqtt/mqtt-transport.h \
	plugins/transport-mqtt/mqtt-transport.c \
	plugins/transport-mqtt/mqtt-conn-private.h \
	plugins/transport-mqtt/mqtt-connection.c \
	plugins/transport-mqtt/mqtt-pubsub.c \
	plugins/transport-mqtt/mqtt-persist.c \
	plugins/transport-mqtt/mqtt-bridge.c \
	plugins/transport-mqtt/mqtt-broker.h \
	plugins/transport-mqtt/mqtt-broker.c \
	plugins/transport-mqtt/mqtt-iothub.c
plugins_transport_mqtt_transport_mqtt_la_SOURCES = $(mqtt_transport_sources)
plugins_transport_mqtt_transport_mqtt_la_CFLAGS = $(AM_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-mqtt\"
plugins_transport_mqtt_transport_mqtt_la_LDFLAGS = $(sluice_plugin_ldflags)
plugins_transport_mqtt_transport_mqtt_la_LIBADD = \
	plugins/transport-mqtt/libmqtt-codec.la $(sluice_plugin_libadd)

# The IoT Hub helpers (topic, property bag, login form) as pure functions.
check_PROGRAMS += plugins/transport-mqtt/tests/test-mqtt-iothub
TESTS += plugins/transport-mqtt/tests/test-mqtt-iothub
plugins_transport_mqtt_tests_test_mqtt_iothub_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-iothub.c \
	$(mqtt_transport_sources) \
	plugins/transport-mqtt/mqtt-acl.h \
	plugins/transport-mqtt/mqtt-acl.c \
	plugins/transport-mqtt/mqtt-map.h \
	plugins/transport-mqtt/mqtt-map.c
plugins_transport_mqtt_tests_test_mqtt_iothub_CFLAGS = $(mqtt_codec_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_iothub_LDADD = \
	plugins/transport-mqtt/libmqtt-codec.la $(top_builddir)/core/libsluice.la \
	$(GLIB_LIBS) $(JSON_LIBS)
include plugins/transport-mqtt/acl.mk

# The broker without sockets: sessions, delivery, back-pressure, retained.
check_PROGRAMS += plugins/transport-mqtt/tests/test-mqtt-broker
TESTS += plugins/transport-mqtt/tests/test-mqtt-broker
plugins_transport_mqtt_tests_test_mqtt_broker_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-broker.c \
	plugins/transport-mqtt/mqtt-broker.h \
	plugins/transport-mqtt/mqtt-broker.c
plugins_transport_mqtt_tests_test_mqtt_broker_CFLAGS = $(mqtt_codec_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_broker_LDADD = \
	plugins/transport-mqtt/libmqtt-codec.la $(top_builddir)/core/libsluice.la $(GLIB_LIBS)
