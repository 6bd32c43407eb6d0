# libFuzzer targets: built only by `make fuzz` (clang -fsanitize=fuzzer),
# never by `make` or `make check`.
# SPDX-License-Identifier: Apache-2.0
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS = tests/fuzz/fuzz-batch tests/fuzz/fuzz-mqtt tests/fuzz/fuzz-kafka

# The batch code is compiled straight into the target (not via libsluice)
# so that all of it carries the fuzzer's coverage instrumentation.
fuzz_batch_sources = \
	$(srcdir)/tests/fuzz/fuzz-batch.c $(srcdir)/core/error.c \
	$(srcdir)/core/crc32c.c $(srcdir)/core/record-batch.c \
	$(srcdir)/core/record-builder.c $(srcdir)/core/record-reader.c \
	$(srcdir)/core/record-compress.c

tests/fuzz/fuzz-batch: $(fuzz_batch_sources)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
	  $(GLIB_CFLAGS) $(KAFKA_COMPRESS_CFLAGS) -o $@ $(fuzz_batch_sources) $(GLIB_LIBS) \
	  $(KAFKA_COMPRESS_LIBS)

# The MQTT codec, compiled in for the same reason.
fuzz_mqtt_sources = \
	$(srcdir)/tests/fuzz/fuzz-mqtt.c \
	$(srcdir)/plugins/transport-mqtt/mqtt-codec.c \
	$(srcdir)/plugins/transport-mqtt/mqtt-decode.c \
	$(srcdir)/plugins/transport-mqtt/mqtt-encode.c \
	$(srcdir)/plugins/transport-mqtt/mqtt-props.c
fuzz_mqtt_headers = \
	$(srcdir)/plugins/transport-mqtt/mqtt-codec.h \
	$(srcdir)/plugins/transport-mqtt/mqtt-codec-private.h

tests/fuzz/fuzz-mqtt: $(fuzz_mqtt_sources) $(fuzz_mqtt_headers)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
	  -I$(srcdir)/plugins/transport-mqtt $(GLIB_CFLAGS) -o $@ $(fuzz_mqtt_sources) \
	  $(GLIB_LIBS)

# The Kafka codec, compiled in for the same reason.
fuzz_kafka_sources = \
	$(srcdir)/tests/fuzz/fuzz-kafka.c \
	$(srcdir)/plugins/transport-kafka/kafka-codec.c \
	$(srcdir)/plugins/transport-kafka/kafka-protocol.c \
	$(srcdir)/plugins/transport-kafka/kafka-protocol-responses.c
fuzz_kafka_headers = \
	$(srcdir)/plugins/transport-kafka/kafka-codec.h \
	$(srcdir)/plugins/transport-kafka/kafka-protocol.h

tests/fuzz/fuzz-kafka: $(fuzz_kafka_sources) $(fuzz_kafka_headers)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
	  -I$(srcdir)/plugins/transport-kafka $(GLIB_CFLAGS) -o $@ $(fuzz_kafka_sources) \
	  $(GLIB_LIBS)

fuzz: $(FUZZ_TARGETS)
.PHONY: fuzz

# A short bounded run of every target on its seed corpus (for CI):
# tests/fuzz/fuzz-NAME runs on tests/fuzz/corpus/NAME. New inputs and any
# crash go to tests/fuzz/smoke-NAME in the build tree, never the source.
FUZZ_SMOKE_SECONDS = 20
FUZZ_SMOKE_RUNS = 5000000
fuzz-smoke: $(FUZZ_TARGETS)
	@n=0; rc=0; for t in $(FUZZ_TARGETS); do \
	  n=$$((n + 1)); \
	  name=$${t##*/fuzz-}; \
	  work=tests/fuzz/smoke-$$name; \
	  rm -rf $$work && $(MKDIR_P) $$work/new; \
	  if $$t -max_total_time=$(FUZZ_SMOKE_SECONDS) -runs=$(FUZZ_SMOKE_RUNS) -timeout=10 \
	       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$$work/ \
	       $$work/new $(srcdir)/tests/fuzz/corpus/$$name >$$work/log 2>&1; then \
	    runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$work/log); \
	    echo "ok $$n - $$t: $$runs inputs in at most $(FUZZ_SMOKE_SECONDS) s, no crash"; \
	  else \
	    echo "not ok $$n - $$t failed; the input is in $$work/"; \
	    tail -40 $$work/log | sed 's/^/# /'; \
	    rc=1; \
	  fi; \
	done; echo "1..$$n"; exit $$rc
.PHONY: fuzz-smoke

CLEANFILES += $(FUZZ_TARGETS)
EXTRA_DIST += tests/fuzz/fuzz-batch.c tests/fuzz/fuzz-mqtt.c tests/fuzz/corpus
EXTRA_DIST += tests/fuzz/fuzz-kafka.c
