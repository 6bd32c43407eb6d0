# transport-kafka against a real sluiced: kcat, python3-kafka and
# python3-confluent-kafka, a raw protocol client, HTTPS / MQTT -> Kafka, the
# version matrix (python3-kafka's codec) and the recorded client streams replayed.
# SPDX-License-Identifier: Apache-2.0
kafka_script_tests = \
	tests/interop/test-kafka.py \
	tests/interop/test-kafka-groups.py \
	tests/interop/test-kafka-admin.py \
	tests/interop/test-kafka-versions.py \
	tests/interop/test-kafka-replay.py
TESTS += $(kafka_script_tests)
dist_noinst_SCRIPTS += $(kafka_script_tests)
