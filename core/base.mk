core_base_sources = core/core-private.h core/error.c
