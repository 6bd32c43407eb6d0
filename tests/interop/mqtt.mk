# transport-mqtt against a real sluiced: mosquitto_pub (3.1.1 and 5, plain
# and TLS) and raw-socket clients; telemetry read back over HTTPS.
# SPDX-License-Identifier: Apache-2.0
mqtt_script_tests = tests/interop/test-mqtt.py tests/interop/test-mqtt-pubsub.py
TESTS += $(mqtt_script_tests)
dist_noinst_SCRIPTS += $(mqtt_script_tests)
