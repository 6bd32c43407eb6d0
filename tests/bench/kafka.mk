# `make bench-kafka`: the Kafka load generator (tests/bench/kafka-load, on
# librdkafka) against sluiced's transport-kafka (storage-file) and against
# librdkafka's in-process mock cluster in the same run; see
# tests/bench/bench-kafka.py.
# SPDX-License-Identifier: Apache-2.0
noinst_PROGRAMS += tests/bench/kafka-load
tests_bench_kafka_load_SOURCES = tests/bench/kafka-load.c
tests_bench_kafka_load_CFLAGS = $(AM_CFLAGS) $(RDKAFKA_CFLAGS)
tests_bench_kafka_load_LDADD = $(GLIB_LIBS) $(JSON_LIBS) $(RDKAFKA_LIBS)
EXTRA_DIST += tests/bench/bench-kafka.py

.PHONY: bench-kafka
bench: bench-kafka
bench-kafka: tests/bench/kafka-load core/sluiced $(plugins_LTLIBRARIES)
	$(AM_TESTS_ENVIRONMENT) /usr/bin/python3 $(srcdir)/tests/bench/bench-kafka.py \
		--load $(abs_builddir)/tests/bench/kafka-load
