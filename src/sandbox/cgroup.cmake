# Cgroup limits for instance processes (memory, pids). Included from src/sandbox/CMakeLists.txt.
add_library(nimbus_cgroup ${CMAKE_CURRENT_LIST_DIR}/cgroup.cc)
target_link_libraries(nimbus_cgroup PUBLIC nimbus_common)

if(NIMBUS_TESTS)
  include(GoogleTest)
  add_executable(nimbus_cgroup_test ${CMAKE_CURRENT_LIST_DIR}/cgroup_test.cc)
  target_link_libraries(nimbus_cgroup_test PRIVATE nimbus_cgroup GTest::gtest_main)
  # The tests move forked children between cgroups and OOM-kill them; they skip themselves
  # (saying why) where cgroups cannot be used, e.g. when not run as root.
  gtest_discover_tests(nimbus_cgroup_test DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60 LABELS sandbox)
endif()
