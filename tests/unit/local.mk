# Core unit tests, one fragment per subsystem.
include tests/unit/config.mk
include tests/unit/records.mk
include tests/unit/auth.mk
include tests/unit/io.mk
include tests/unit/host.mk
