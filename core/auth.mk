core_auth_sources =
