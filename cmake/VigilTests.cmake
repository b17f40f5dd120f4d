# vigil_add_tests([PREFIX <prefix>] [LIBS <targets>...] [MODULE_PREFIX <prefix>])
#
# A library's unit tests, one GoogleTest program per tests/<name>_test.cpp in the current
# source directory:
#   program     <prefix>_<name>_test, or <name>_test without PREFIX
#   links       LIBS (the library under test and the level of vigil_testing it needs, see
#               testing/CMakeLists.txt), with MODULE_PREFIX also <MODULE_PREFIX><first word
#               of the file name> (metrics_core_test.cpp: vigil_telemetry_metrics), and
#               GoogleTest's main
#   includes    the library's internal headers (src/)
#   CTest       unit.<Suite>.<Test>, label unit: one CTest test per GoogleTest test, except
#               programs named *postgres*, which are one CTest test each
find_package(GTest REQUIRED)
include(GoogleTest)

function(vigil_add_tests)
  cmake_parse_arguments(ARG "" "PREFIX;MODULE_PREFIX" "LIBS" ${ARGN})
  set(_src ${CMAKE_CURRENT_SOURCE_DIR}/src)
  file(GLOB _tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/*_test.cpp)
  foreach(test_src IN LISTS _tests)
    get_filename_component(test ${test_src} NAME_WE)
    if(ARG_PREFIX)
      set(exe ${ARG_PREFIX}_${test})
    else()
      set(exe ${test})
    endif()
    add_executable(${exe} ${test_src})
    if(EXISTS ${_src})
      target_include_directories(${exe} PRIVATE ${_src})
    endif()
    target_link_libraries(${exe} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main vigil_warnings)
    if(ARG_MODULE_PREFIX)
      string(REGEX MATCH "^[a-z]+" module ${test})
      target_link_libraries(${exe} PRIVATE ${ARG_MODULE_PREFIX}${module})
    endif()
    if(test MATCHES "postgres")
      # These tests share one PostgreSQL server that the program starts once: run the
      # program as one CTest test rather than one process (and one server) per test.
      add_test(NAME unit.${exe} COMMAND ${exe})
      set_tests_properties(unit.${exe} PROPERTIES LABELS unit TIMEOUT 300)
    else()
      gtest_discover_tests(${exe} TEST_PREFIX "unit." DISCOVERY_TIMEOUT 30
                           PROPERTIES LABELS unit)
    endif()
  endforeach()
endfunction()
