# tests/interop — the real sluiced against real clients.
# SPDX-License-Identifier: Apache-2.0

# The lines transport (tests/plugins.mk builds it) and the installed SDK.
interop_lines_tests = \
	tests/interop/test-lines.py \
	tests/interop/test-sdk-install.sh
TESTS += $(interop_lines_tests)
dist_noinst_SCRIPTS += $(interop_lines_tests)

# `make install` relinks the build tree's libtool modules in place for a
# moment, so a plugin loaded by a test running alongside could be caught
# half-written. Run the install test only after every other test finished.
# (The target is spelled through a variable so that automake still emits its
# own rule for this log and make merges the two.)
interop_sdk_install_log = tests/interop/test-sdk-install.sh.log
$(interop_sdk_install_log): $(filter-out $(interop_sdk_install_log),$(TEST_LOGS))
include tests/interop/x509.mk
include tests/interop/kafka-client.mk
