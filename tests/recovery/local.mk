# tests/recovery
