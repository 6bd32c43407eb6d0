# `make bench-mqtt`: the MQTT load generator (tests/bench/mqtt-load, on
# libmosquitto) against sluiced's transport-mqtt and against Debian's
# mosquitto 2.0 in the same run; see tests/bench/bench-mqtt.py.
# SPDX-License-Identifier: Apache-2.0
noinst_PROGRAMS += tests/bench/mqtt-load
tests_bench_mqtt_load_SOURCES = tests/bench/mqtt-load.c
tests_bench_mqtt_load_CFLAGS = $(AM_CFLAGS) $(MOSQUITTO_CFLAGS)
tests_bench_mqtt_load_LDADD = $(GLIB_LIBS) $(JSON_LIBS) $(MOSQUITTO_LIBS)
EXTRA_DIST += tests/bench/bench-mqtt.py

.PHONY: bench-mqtt
bench: bench-mqtt
bench-mqtt: tests/bench/mqtt-load core/sluiced $(plugins_LTLIBRARIES)
	$(AM_TESTS_ENVIRONMENT) /usr/bin/python3 $(srcdir)/tests/bench/bench-mqtt.py \
		--load $(abs_builddir)/tests/bench/mqtt-load
