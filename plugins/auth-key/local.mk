# plugins/auth-key: symmetric keys, SAS tokens, shared access policies
plugins_LTLIBRARIES += plugins/auth-key/auth-key.la
plugins_auth_key_auth_key_la_SOURCES = \
	plugins/auth-key/auth-key.c \
	plugins/auth-key/auth-key-policies.c \
	plugins/auth-key/auth-key-policies.h
plugins_auth_key_auth_key_la_CFLAGS = $(AM_CFLAGS) -DG_LOG_DOMAIN=\"sluice-auth-key\"
plugins_auth_key_auth_key_la_LDFLAGS = $(sluice_plugin_ldflags)
plugins_auth_key_auth_key_la_LIBADD = $(sluice_plugin_libadd)

# Unit tests drive the plugin through its vtable, compiled in, against a
# real host from libsluice.
check_PROGRAMS += plugins/auth-key/tests/test-auth-key
TESTS += plugins/auth-key/tests/test-auth-key
plugins_auth_key_tests_test_auth_key_SOURCES = \
	plugins/auth-key/tests/test-auth-key.c \
	plugins/auth-key/auth-key.c \
	plugins/auth-key/auth-key-policies.c \
	plugins/auth-key/auth-key-policies.h
plugins_auth_key_tests_test_auth_key_CFLAGS = $(AM_CFLAGS) \
	-I$(top_srcdir)/plugins/auth-key -DG_LOG_DOMAIN=\"sluice-auth-key\"
plugins_auth_key_tests_test_auth_key_LDADD = \
	$(top_builddir)/core/libsluice.la $(GLIB_LIBS) $(JSON_LIBS)
