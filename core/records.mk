core_records_sources =
