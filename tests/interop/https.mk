# transport-https against a real sluiced: curl and Python's http.client
# (tests/interop), and kill -9 under HTTP load (tests/recovery).
# SPDX-License-Identifier: Apache-2.0
https_script_tests = \
	tests/interop/test-https.py \
	tests/recovery/test-https-kill9.py
TESTS += $(https_script_tests)
dist_noinst_SCRIPTS += $(https_script_tests)
