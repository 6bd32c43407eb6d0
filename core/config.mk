core_config_sources =
