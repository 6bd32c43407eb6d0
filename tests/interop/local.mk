# tests/interop — the real sluiced against real clients.
# SPDX-License-Identifier: Apache-2.0

# The lines transport (tests/plugins.mk builds it) and the installed SDK.
interop_lines_tests = \
	tests/interop/test-lines.py \
	tests/interop/test-sdk-install.sh
TESTS += $(interop_lines_tests)
dist_noinst_SCRIPTS += $(interop_lines_tests)
