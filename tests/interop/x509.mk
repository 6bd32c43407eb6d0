# auth-x509 against a real sluiced: mosquitto_pub with client certificates
# (selfSigned and certificateAuthority devices) on a TLS MQTT listener, the
# registry and read-back over HTTPS, revocation by disabling and by CRL.
# SPDX-License-Identifier: Apache-2.0
x509_script_tests = tests/interop/test-x509.py
TESTS += $(x509_script_tests)
dist_noinst_SCRIPTS += $(x509_script_tests)
