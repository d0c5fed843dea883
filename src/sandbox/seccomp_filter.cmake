# The seccomp filter for instance processes. Included from src/sandbox/CMakeLists.txt.
pkg_check_modules(LIBSECCOMP REQUIRED IMPORTED_TARGET libseccomp)
add_library(nimbus_seccomp_filter ${CMAKE_CURRENT_LIST_DIR}/seccomp_filter.cc)
target_link_libraries(nimbus_seccomp_filter PUBLIC nimbus_common PRIVATE PkgConfig::LIBSECCOMP)

if(NIMBUS_TESTS)
  add_executable(nimbus_seccomp_filter_test ${CMAKE_CURRENT_LIST_DIR}/seccomp_filter_test.cc)
  target_link_libraries(nimbus_seccomp_filter_test PRIVATE nimbus_seccomp_filter Threads::Threads
                        GTest::gtest_main)
  # Each test forks a child that installs the filter; the runtime tests exec python3 and node
  # and skip themselves, saying why, where those are not installed.
  gtest_discover_tests(nimbus_seccomp_filter_test DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120
                       LABELS sandbox)
endif()
