# unit tests: auth (SAS tokens, scope, connection strings, rights, principals)
# Built from the auth sources themselves, so it runs even while other parts
# of libsluice are being written.
check_PROGRAMS += tests/unit/test-sas
TESTS += tests/unit/test-sas
tests_unit_test_sas_SOURCES = tests/unit/test-sas.c \
	core/sas.c core/principal.c core/sas-private.h core/error.c
tests_unit_test_sas_CFLAGS = $(AM_CFLAGS) -DG_LOG_DOMAIN=\"sluice\"
tests_unit_test_sas_LDADD = $(GLIB_LIBS) $(JSON_LIBS)
