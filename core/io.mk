core_io_sources =
