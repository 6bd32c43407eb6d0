core_host_sources =
