core_host_sources = \
	core/host-private.h core/host-internal.h core/daemon-private.h \
	core/host.c core/host-auth.c core/streams.c core/streams-admin.c core/writer.c core/reader.c \
	core/groups.c \
	core/registry.c core/host-kv.c core/metrics.c core/log.c core/daemon.c

bin_PROGRAMS += core/sluiced
core_sluiced_SOURCES = core/sluiced.c
core_sluiced_LDADD = core/libsluice.la $(GLIB_LIBS)
