# Benchmarks: `make bench` (not part of `make check`).
noinst_PROGRAMS += tests/bench/bench-append
tests_bench_bench_append_SOURCES = tests/bench/bench-append.c
tests_bench_bench_append_LDADD = core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)
EXTRA_DIST += tests/bench/run-append.py

BENCH_RUNS ?= 7
.PHONY: bench bench-append
bench: bench-append
bench-append: tests/bench/bench-append $(plugins_LTLIBRARIES)
	$(AM_TESTS_ENVIRONMENT) /usr/bin/python3 $(srcdir)/tests/bench/run-append.py \
		$(abs_builddir)/tests/bench/bench-append $(BENCH_RUNS)
