# SPDX-License-Identifier: Apache-2.0
# plugins/auth-x509: TLS client certificates (thumbprint-pinned and CA-signed
# devices, CRLs, certificate-mapped policies)
auth_x509_sources = \
	plugins/auth-x509/auth-x509.c \
	plugins/auth-x509/auth-x509-cert.c \
	plugins/auth-x509/auth-x509-cert.h \
	plugins/auth-x509/auth-x509-map.c \
	plugins/auth-x509/auth-x509-map.h

plugins_LTLIBRARIES += plugins/auth-x509/auth-x509.la
plugins_auth_x509_auth_x509_la_SOURCES = $(auth_x509_sources)
plugins_auth_x509_auth_x509_la_CFLAGS = $(AM_CFLAGS) $(GNUTLS_CFLAGS) \
	-DG_LOG_DOMAIN=\"sluice-auth-x509\"
plugins_auth_x509_auth_x509_la_LDFLAGS = $(sluice_plugin_ldflags)
plugins_auth_x509_auth_x509_la_LIBADD = $(sluice_plugin_libadd) $(GNUTLS_LIBS)

# Unit tests drive the plugin through its vtable, compiled in, against a
# real host from libsluice; certificates, keys and CRLs are made in the test
# with GnuTLS.
check_PROGRAMS += plugins/auth-x509/tests/test-auth-x509
TESTS += plugins/auth-x509/tests/test-auth-x509
plugins_auth_x509_tests_test_auth_x509_SOURCES = \
	plugins/auth-x509/tests/test-auth-x509.c \
	plugins/auth-x509/tests/x509-test-certs.c \
	plugins/auth-x509/tests/x509-test-certs.h \
	$(auth_x509_sources)
plugins_auth_x509_tests_test_auth_x509_CFLAGS = $(AM_CFLAGS) $(GNUTLS_CFLAGS) \
	-I$(top_srcdir)/plugins/auth-x509 -DG_LOG_DOMAIN=\"sluice-auth-x509\"
plugins_auth_x509_tests_test_auth_x509_LDADD = \
	$(top_builddir)/core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS) $(GNUTLS_LIBS)
