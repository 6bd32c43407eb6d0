# libsluice (the host library) and the programs sluiced / sluicectl.
# Each core subsystem lists its sources in its own fragment.
include core/base.mk
include core/config.mk
include core/records.mk
include core/auth.mk
include core/io.mk
include core/host.mk

lib_LTLIBRARIES += core/libsluice.la
core_libsluice_la_SOURCES = \
	$(core_base_sources) $(core_config_sources) $(core_records_sources) \
	$(core_auth_sources) $(core_io_sources) $(core_host_sources)
core_libsluice_la_CFLAGS = $(AM_CFLAGS) $(GNUTLS_CFLAGS) $(core_records_cflags) -fvisibility=hidden \
	-DG_LOG_DOMAIN=\"sluice\" -DSLUICE_PLUGINDIR=\"$(pluginsdir)\"
core_libsluice_la_LIBADD = $(GLIB_LIBS) $(JSON_LIBS) $(GNUTLS_LIBS) $(LTDL_LIBS) $(core_records_libs) -lm
core_libsluice_la_LDFLAGS = -version-info 0:0:0 -no-undefined
include core/sluicectl.mk
include core/migrate.mk
