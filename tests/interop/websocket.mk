# SPDX-License-Identifier: Apache-2.0
# MQTT over WebSockets (transport-https upgrades handed to transport-mqtt):
# python3-paho-mqtt and a raw WebSocket client against a real sluiced.
websocket_script_tests = tests/interop/test-websocket.py
TESTS += $(websocket_script_tests)
dist_noinst_SCRIPTS += $(websocket_script_tests)
