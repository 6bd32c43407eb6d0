# Benchmarks: `make bench` (not part of `make check`).
noinst_PROGRAMS += tests/bench/bench-append
tests_bench_bench_append_SOURCES = tests/bench/bench-append.c
tests_bench_bench_append_LDADD = core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)
EXTRA_DIST += tests/bench/run-append.py

# Both storage backends (BENCH_BACKENDS=file,lmdb in the environment picks),
# BENCH_VOLUME_MIB per volume run, on BENCH_DIR (default: /tmp).
BENCH_RUNS ?= 7
BENCH_VOLUME_MIB ?= 512
.PHONY: bench bench-append
bench: bench-append
bench-append: tests/bench/bench-append $(plugins_LTLIBRARIES)
	$(AM_TESTS_ENVIRONMENT) /usr/bin/python3 $(srcdir)/tests/bench/run-append.py \
		$(abs_builddir)/tests/bench/bench-append $(BENCH_RUNS) $(BENCH_VOLUME_MIB)
