# transport-mqtt: [mqtt-map.*] and [mqtt-acl.*] (parsing and decisions) and their tests.
# SPDX-License-Identifier: Apache-2.0

# The decisions are pure over the parsed config; the transport calls them on
# every PUBLISH and SUBSCRIBE of a plain topic.
plugins_transport_mqtt_transport_mqtt_la_SOURCES += \
	plugins/transport-mqtt/mqtt-acl.h \
	plugins/transport-mqtt/mqtt-acl.c \
	plugins/transport-mqtt/mqtt-map.h \
	plugins/transport-mqtt/mqtt-map.c

# Parsing (errors with their exact messages), the matches, and the
# subscribe-coverage rule cross-checked by brute force. They link libsluice
# for the config parser.
check_PROGRAMS += \
	plugins/transport-mqtt/tests/test-mqtt-acl \
	plugins/transport-mqtt/tests/test-mqtt-map
TESTS += \
	plugins/transport-mqtt/tests/test-mqtt-acl \
	plugins/transport-mqtt/tests/test-mqtt-map
mqtt_acl_test_cflags = $(AM_CFLAGS) -I$(top_srcdir)/plugins/transport-mqtt \
	-DG_LOG_DOMAIN=\"sluice-mqtt\"
mqtt_acl_test_ldadd = \
	plugins/transport-mqtt/libmqtt-codec.la $(top_builddir)/core/libsluice.la \
	$(GLIB_LIBS) $(JSON_LIBS)
plugins_transport_mqtt_tests_test_mqtt_acl_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-acl.c \
	plugins/transport-mqtt/mqtt-acl.h \
	plugins/transport-mqtt/mqtt-acl.c
plugins_transport_mqtt_tests_test_mqtt_acl_CFLAGS = $(mqtt_acl_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_acl_LDADD = $(mqtt_acl_test_ldadd)
plugins_transport_mqtt_tests_test_mqtt_map_SOURCES = \
	plugins/transport-mqtt/tests/test-mqtt-map.c \
	plugins/transport-mqtt/mqtt-map.h \
	plugins/transport-mqtt/mqtt-map.c
plugins_transport_mqtt_tests_test_mqtt_map_CFLAGS = $(mqtt_acl_test_cflags)
plugins_transport_mqtt_tests_test_mqtt_map_LDADD = $(mqtt_acl_test_ldadd)
