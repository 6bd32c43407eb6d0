# The installed plugin SDK.
sluiceincludedir = $(includedir)/sluice-1/sluice
sluiceinclude_HEADERS = \
	sdk/sluice/sluice.h \
	sdk/sluice/sluice-types.h \
	sdk/sluice/sluice-options.h \
	sdk/sluice/sluice-plugin.h \
	sdk/sluice/sluice-record.h \
	sdk/sluice/sluice-storage.h \
	sdk/sluice/sluice-auth.h \
	sdk/sluice/sluice-transport.h \
	sdk/sluice/sluice-host.h

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = sdk/sluice-plugin.pc
EXTRA_DIST += sdk/sluice-plugin.pc.in
