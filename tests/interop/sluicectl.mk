# tests/interop — sluicectl against a real sluiced with transport-https.
# SPDX-License-Identifier: Apache-2.0
interop_sluicectl_tests = tests/interop/test-sluicectl.py
TESTS += $(interop_sluicectl_tests)
dist_noinst_SCRIPTS += $(interop_sluicectl_tests)
