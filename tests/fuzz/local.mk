# libFuzzer targets: built only by `make fuzz` (clang -fsanitize=fuzzer),
# never by `make` or `make check`.
# SPDX-License-Identifier: Apache-2.0
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS = tests/fuzz/fuzz-batch

# The batch code is compiled straight into the target (not via libsluice)
# so that all of it carries the fuzzer's coverage instrumentation.
fuzz_batch_sources = \
	$(srcdir)/tests/fuzz/fuzz-batch.c $(srcdir)/core/error.c \
	$(srcdir)/core/crc32c.c $(srcdir)/core/record-batch.c \
	$(srcdir)/core/record-builder.c $(srcdir)/core/record-reader.c

tests/fuzz/fuzz-batch: $(fuzz_batch_sources)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
	  $(GLIB_CFLAGS) -o $@ $(fuzz_batch_sources) $(GLIB_LIBS)

fuzz: $(FUZZ_TARGETS)
.PHONY: fuzz

CLEANFILES += $(FUZZ_TARGETS)
EXTRA_DIST += tests/fuzz/fuzz-batch.c tests/fuzz/corpus
