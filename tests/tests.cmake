# Test registration. Unit tests mirror the source tree: tests/unit/common/json.c tests
# common/json.c. Integration tests run against a throwaway PostgreSQL started once per
# ctest run (fixture "pg"), each test in a fresh database of its own.

set(TEST_PG_DIR ${CMAKE_BINARY_DIR}/testpg)

# GCC 12 at -O3 reports -Wdangling-pointer for pointers into live heap strings once test
# helpers are inlined (a known false positive of that release); the library and the
# services keep the warning.
set(TEST_C_FLAGS)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  set(TEST_C_FLAGS -Wno-dangling-pointer)
endif()
set(TEST_PG_URL "postgresql:///postgres?host=${TEST_PG_DIR}&port=5432&user=console")

function(cc_unit_test name)
  add_executable(test_${name} ${ARGN} ${CMAKE_SOURCE_DIR}/tests/lib/testutil.c)
  target_link_libraries(test_${name} PRIVATE console_common PkgConfig::CMOCKA)
  target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/lib)
  target_compile_options(test_${name} PRIVATE ${TEST_C_FLAGS})
  add_test(NAME unit.${name} COMMAND test_${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;CONSOLE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

function(cc_pg_test name)
  add_executable(test_${name} ${ARGN})
  target_link_libraries(test_${name} PRIVATE console_common PkgConfig::CMOCKA)
  target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/lib)
  target_compile_options(test_${name} PRIVATE ${TEST_C_FLAGS})
  add_test(NAME integration.${name} COMMAND test_${name})
  set_tests_properties(integration.${name} PROPERTIES LABELS integration TIMEOUT 300
    FIXTURES_REQUIRED pg
    ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;CONSOLE_TEST_DATABASE_URL=${TEST_PG_URL};CONSOLE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

add_test(NAME pg.start COMMAND ${CMAKE_SOURCE_DIR}/deploy/local/pg start ${TEST_PG_DIR})
set_tests_properties(pg.start PROPERTIES FIXTURES_SETUP pg TIMEOUT 120)
add_test(NAME pg.stop COMMAND ${CMAKE_SOURCE_DIR}/deploy/local/pg stop ${TEST_PG_DIR})
set_tests_properties(pg.stop PROPERTIES FIXTURES_CLEANUP pg TIMEOUT 60)

# ---- repository checks ----
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/docs-check)
add_test(NAME check.errors_doc COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR}
  -DTMP=${CMAKE_BINARY_DIR}/docs-check -P ${CMAKE_SOURCE_DIR}/tests/check_errors_doc.cmake)
add_test(NAME check.settings_doc COMMAND ${CMAKE_SOURCE_DIR}/tests/check-settings-doc
  ${CMAKE_BINARY_DIR}/bin)
find_program(CLANG_FORMAT clang-format)
if(CLANG_FORMAT)
  add_test(NAME check.format COMMAND ${CMAKE_SOURCE_DIR}/tests/check-format)
endif()

# ---- unit tests (no database) ----
cc_unit_test(mem tests/unit/common/mem.c)
cc_unit_test(str tests/unit/common/str.c)
cc_unit_test(config tests/unit/common/config.c)
cc_unit_test(json tests/unit/common/json.c)
cc_unit_test(crypto tests/unit/common/crypto.c)
cc_unit_test(mail tests/unit/common/mail.c)
cc_unit_test(auth tests/unit/common/auth.c)
cc_unit_test(router tests/unit/common/router.c)
cc_unit_test(metrics tests/unit/common/metrics.c)
cc_unit_test(http tests/unit/common/http.c)
cc_unit_test(totp tests/unit/common/totp.c)
cc_unit_test(cose tests/unit/common/cose.c)
cc_unit_test(brand tests/unit/common/brand.c)
# branding: validators and the asset checks (SVG sanitizer with a hostile corpus)
cc_unit_test(branding_validate tests/unit/branding/validate.c services/branding/validate.c)
cc_unit_test(branding_assets tests/unit/branding/assets.c services/branding/assets.c)
cc_unit_test(identity_federation_rp tests/unit/identity/federation_rp.c
  services/identity/federation_rp.c)
target_include_directories(test_identity_federation_rp PRIVATE ${CMAKE_SOURCE_DIR}/services/identity)
cc_unit_test(identity_phone tests/unit/identity/phone.c services/identity/phone.c)
target_include_directories(test_identity_phone PRIVATE ${CMAKE_SOURCE_DIR}/services/identity)
foreach(t branding_validate branding_assets)
  target_include_directories(test_${t} PRIVATE ${CMAKE_SOURCE_DIR}/services/branding)
  target_link_libraries(test_${t} PRIVATE PkgConfig::LIBXML2)
endforeach()

# ---- integration tests (real PostgreSQL) ----
cc_pg_test(db tests/integration/db.c tests/lib/testdb.c)
cc_pg_test(migrate tests/integration/migrate.c tests/lib/testdb.c)
cc_pg_test(outbox tests/integration/outbox.c tests/lib/testdb.c)
cc_pg_test(audit tests/integration/audit.c tests/lib/testdb.c)
cc_pg_test(tenants tests/integration/tenants.c tests/lib/testdb.c ${TENANTS_SOURCES})
cc_pg_test(users tests/integration/users.c tests/lib/testdb.c ${USERS_SOURCES})
cc_pg_test(usage tests/integration/usage.c tests/lib/testdb.c ${USAGE_SOURCES})
cc_pg_test(licensing tests/integration/licensing.c tests/lib/testdb.c tests/lib/testutil.c
  ${LICENSING_SOURCES})
cc_pg_test(identity_logic tests/integration/identity_logic.c tests/lib/testdb.c
  services/identity/policy.c services/identity/store.c services/identity/store_authn.c)
target_include_directories(test_identity_logic PRIVATE ${CMAKE_SOURCE_DIR}/services/identity)
cc_pg_test(branding tests/integration/branding.c tests/lib/testdb.c services/branding/events.c)

# ---- end-to-end: the real stack through the real gateway (Node's test runner) ----
find_program(NODE node)
if(NODE AND EXISTS ${CMAKE_SOURCE_DIR}/tests/e2e/package.json)
  # one test per file, e2e.<file> (ctest -R e2e.licensing; ctest -L e2e runs them all)
  file(GLOB E2E_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/*.test.mjs)
  foreach(f ${E2E_FILES})
    get_filename_component(n ${f} NAME)
    string(REPLACE ".test.mjs" "" n ${n})
    add_test(NAME e2e.${n} COMMAND ${NODE} --test --test-concurrency=1 --test-reporter=spec ${f})
    set_tests_properties(e2e.${n} PROPERTIES LABELS e2e TIMEOUT 1800 RUN_SERIAL TRUE
      ENVIRONMENT "CONSOLE_BIN_DIR=${CMAKE_BINARY_DIR}/bin;CONSOLE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endforeach()
else()
  message(WARNING "node missing: end-to-end tests not registered (./tests/run installs it)")
endif()
