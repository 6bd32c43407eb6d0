# sluicectl: the admin tool (HTTPS service API client).
# SPDX-License-Identifier: Apache-2.0
bin_PROGRAMS += core/sluicectl
core_sluicectl_SOURCES = \
	core/sluicectl-private.h core/sluicectl.c core/sluicectl-http.c \
	core/sluicectl-device.c core/sluicectl-stream.c
core_sluicectl_CFLAGS = $(AM_CFLAGS) $(SOUP_CFLAGS) -DG_LOG_DOMAIN=\"sluicectl\"
core_sluicectl_LDADD = core/libsluice.la $(SOUP_LIBS) $(JSON_LIBS) $(GLIB_LIBS)
