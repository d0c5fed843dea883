# Peer uid of a loopback TCP connection (sock_diag). Included from src/sandbox/CMakeLists.txt.
add_library(nimbus_peer_uid ${CMAKE_CURRENT_LIST_DIR}/peer_uid.cc)
target_link_libraries(nimbus_peer_uid PUBLIC nimbus_common)

if(NIMBUS_TESTS)
  add_executable(nimbus_peer_uid_test ${CMAKE_CURRENT_LIST_DIR}/peer_uid_test.cc)
  target_link_libraries(nimbus_peer_uid_test PRIVATE nimbus_peer_uid GTest::gtest_main)
  # Connections from another uid need root; those tests skip themselves, saying why, without it.
  gtest_discover_tests(nimbus_peer_uid_test DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60 LABELS sandbox)
endif()
