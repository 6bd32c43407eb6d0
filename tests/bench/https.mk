# `make bench-https`: HTTP telemetry POSTs with wrk against sluiced
# (durability none and batch, plain and TLS) beside nginx answering 204.
# SPDX-License-Identifier: Apache-2.0
EXTRA_DIST += tests/bench/bench-https.py

.PHONY: bench-https
bench: bench-https
bench-https: core/sluiced $(plugins_LTLIBRARIES)
	$(AM_TESTS_ENVIRONMENT) /usr/bin/python3 $(srcdir)/tests/bench/bench-https.py
