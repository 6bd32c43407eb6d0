# tests/recovery — kill -9 under load.
# SPDX-License-Identifier: Apache-2.0

recovery_lines_tests = tests/recovery/test-lines-kill9.py
TESTS += $(recovery_lines_tests)
dist_noinst_SCRIPTS += $(recovery_lines_tests)

# Torn and corrupt data, and a full disk (a tmpfs the test mounts: root),
# for both storage backends, through sluiced's HTTPS API.
recovery_storage_tests = \
	tests/recovery/test-storage-faults.py \
	tests/recovery/test-disk-full.py
TESTS += $(recovery_storage_tests)
dist_noinst_SCRIPTS += $(recovery_storage_tests)

# sluiced --migrate between storage-file and storage-lmdb, both ways.
migrate_tests = tests/interop/test-migrate.py
TESTS += $(migrate_tests)
dist_noinst_SCRIPTS += $(migrate_tests)

# kill -9 under HTTPS, MQTT QoS 1 and idempotent Kafka load, 20 rounds for
# each storage backend; acknowledged data, order, no Kafka duplicates and
# consumer-group offsets are checked after every restart.
recovery_mixed_tests = tests/recovery/test-kill9-mixed.py
TESTS += $(recovery_mixed_tests)
dist_noinst_SCRIPTS += $(recovery_mixed_tests)
