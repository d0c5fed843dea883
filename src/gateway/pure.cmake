# The gateway's pure request-path functions (API Gateway v2 event and response mapping): no
# I/O, no threads, so they build and test on their own. Included from
# src/gateway/CMakeLists.txt.
add_library(nimbus_gateway_pure
  ${CMAKE_CURRENT_LIST_DIR}/apigw_v2.cc)
target_link_libraries(nimbus_gateway_pure PUBLIC nimbus_common Boost::json Boost::headers)

if(NIMBUS_TESTS)
  include(GoogleTest)
  add_executable(nimbus_gateway_pure_test
    ${CMAKE_CURRENT_LIST_DIR}/apigw_v2_test.cc)
  target_link_libraries(nimbus_gateway_pure_test PRIVATE nimbus_gateway_pure GTest::gtest_main)
  gtest_discover_tests(nimbus_gateway_pure_test)
endif()
