# unit tests: config (options, config file) and the plugin loader
# SPDX-License-Identifier: Apache-2.0

check_PROGRAMS += tests/unit/test-config tests/unit/test-loader
TESTS += tests/unit/test-config tests/unit/test-loader

tests_unit_test_config_SOURCES = tests/unit/test-config.c
tests_unit_test_config_LDADD = $(top_builddir)/core/libsluice.la $(GLIB_LIBS)

tests_unit_test_loader_SOURCES = tests/unit/test-loader.c
tests_unit_test_loader_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFIXTURE_BUILDDIR=\"$(abs_top_builddir)/tests/unit/plugins\"
tests_unit_test_loader_LDADD = $(top_builddir)/core/libsluice.la $(GLIB_LIBS)
# The loader tests open the fixtures, so they must exist first.
EXTRA_tests_unit_test_loader_DEPENDENCIES = $(loader_fixtures)

# Fixture plugins: one source (tests/unit/plugins/fixture.c), one module per
# refusal the loader knows, plus good ones. They do not link libsluice.
loader_fixture_ldflags = -module -avoid-version -rpath /nowhere -no-undefined -shared
loader_fixtures = \
	tests/unit/plugins/storage-good.la \
	tests/unit/plugins/auth-good.la \
	tests/unit/plugins/transport-good.la \
	tests/unit/plugins/transport-owns.la \
	tests/unit/plugins/transport-badmagic.la \
	tests/unit/plugins/transport-newminor.la \
	tests/unit/plugins/transport-othermajor.la \
	tests/unit/plugins/transport-smalldesc.la \
	tests/unit/plugins/transport-smallvtable.la \
	tests/unit/plugins/transport-badoptions.la \
	tests/unit/plugins/transport-wrongkind.la \
	tests/unit/plugins/transport-mismatch.la \
	tests/unit/plugins/transport-kindmismatch.la \
	tests/unit/plugins/transport-nullslot.la \
	tests/unit/plugins/storage-nullslot.la \
	tests/unit/plugins/auth-nullslot.la \
	tests/unit/plugins/transport-nolicense.la \
	tests/unit/plugins/transport-nodescription.la \
	tests/unit/plugins/transport-nosymbol.la \
	tests/unit/plugins/transport-dup.la \
	tests/unit/plugins/dup/transport-dup.la
check_LTLIBRARIES += $(loader_fixtures)


tests_unit_plugins_storage_good_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_storage_good_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=storage -DFIXTURE_NAME=good -DFIXTURE_FAULT=FAULT_NONE
tests_unit_plugins_storage_good_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_auth_good_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_auth_good_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=auth -DFIXTURE_NAME=good -DFIXTURE_FAULT=FAULT_NONE
tests_unit_plugins_auth_good_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_good_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_good_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=good -DFIXTURE_FAULT=FAULT_NONE
tests_unit_plugins_transport_good_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_owns_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_owns_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=owns -DFIXTURE_FAULT=FAULT_OWNS_LISTENERS
tests_unit_plugins_transport_owns_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_badmagic_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_badmagic_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=badmagic -DFIXTURE_FAULT=FAULT_BAD_MAGIC
tests_unit_plugins_transport_badmagic_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_newminor_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_newminor_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=newminor -DFIXTURE_FAULT=FAULT_NEW_MINOR
tests_unit_plugins_transport_newminor_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_othermajor_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_othermajor_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=othermajor -DFIXTURE_FAULT=FAULT_OTHER_MAJOR
tests_unit_plugins_transport_othermajor_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_smalldesc_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_smalldesc_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=smalldesc -DFIXTURE_FAULT=FAULT_SMALL_DESCRIPTOR
tests_unit_plugins_transport_smalldesc_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_smallvtable_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_smallvtable_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=smallvtable -DFIXTURE_FAULT=FAULT_SMALL_VTABLE
tests_unit_plugins_transport_smallvtable_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_badoptions_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_badoptions_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=badoptions -DFIXTURE_FAULT=FAULT_BAD_OPTIONS
tests_unit_plugins_transport_badoptions_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_wrongkind_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_wrongkind_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=wrongkind -DFIXTURE_FAULT=FAULT_WRONG_KIND
tests_unit_plugins_transport_wrongkind_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_mismatch_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_mismatch_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=mismatch -DFIXTURE_FAULT=FAULT_NAME_MISMATCH
tests_unit_plugins_transport_mismatch_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_kindmismatch_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_kindmismatch_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=kindmismatch -DFIXTURE_FAULT=FAULT_KIND_MISMATCH
tests_unit_plugins_transport_kindmismatch_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_nullslot_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_nullslot_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=nullslot -DFIXTURE_FAULT=FAULT_NULL_SLOT
tests_unit_plugins_transport_nullslot_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_storage_nullslot_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_storage_nullslot_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=storage -DFIXTURE_NAME=nullslot -DFIXTURE_FAULT=FAULT_NULL_SLOT
tests_unit_plugins_storage_nullslot_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_auth_nullslot_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_auth_nullslot_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=auth -DFIXTURE_NAME=nullslot -DFIXTURE_FAULT=FAULT_NULL_SLOT
tests_unit_plugins_auth_nullslot_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_nolicense_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_nolicense_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=nolicense -DFIXTURE_FAULT=FAULT_NO_LICENSE
tests_unit_plugins_transport_nolicense_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_nodescription_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_nodescription_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=nodescription -DFIXTURE_FAULT=FAULT_NO_DESCRIPTION
tests_unit_plugins_transport_nodescription_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_nosymbol_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_nosymbol_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=nosymbol -DFIXTURE_FAULT=FAULT_NO_SYMBOL
tests_unit_plugins_transport_nosymbol_la_LDFLAGS = $(loader_fixture_ldflags)

tests_unit_plugins_transport_dup_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_transport_dup_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=dup -DFIXTURE_FAULT=FAULT_NONE
tests_unit_plugins_transport_dup_la_LDFLAGS = $(loader_fixture_ldflags)

# The same module name in a second folder (the duplicate test).

tests_unit_plugins_dup_transport_dup_la_SOURCES = tests/unit/plugins/fixture.c
tests_unit_plugins_dup_transport_dup_la_CPPFLAGS = $(AM_CPPFLAGS) -DFIXTURE_KIND=transport -DFIXTURE_NAME=dup -DFIXTURE_FAULT=FAULT_NONE -DFIXTURE_VERSION=\"2.0\"
tests_unit_plugins_dup_transport_dup_la_LDFLAGS = $(loader_fixture_ldflags)
