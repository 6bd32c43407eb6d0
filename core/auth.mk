# core: principals, rights, SAS tokens and connection strings
core_auth_sources = core/principal.c core/sas.c core/sas-private.h
