# vigil_add_component(NAME <name> [PROGRAM <program>] [LIBS <targets>...])
#
# One part of the platform laid out the usual way in the current source directory:
#   *.cpp and src/*.cpp (except main.cpp)   -> static library vigil_<name>
#   include/ (if present) and the directory  -> its include path
#   main.cpp (with PROGRAM)                  -> the program, linked to the library
#   tests/<test>_test.cpp                    -> one GoogleTest executable <name>_<test> each,
#                                               registered with CTest as unit.* (one CTest
#                                               test per GoogleTest test, except programs
#                                               named *postgres*: one test for the program)
find_package(GTest REQUIRED)
include(GoogleTest)

function(vigil_add_component)
  cmake_parse_arguments(ARG "" "NAME;PROGRAM" "LIBS" ${ARGN})
  set(lib vigil_${ARG_NAME})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp
       ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  list(FILTER _srcs EXCLUDE REGEX "/main\\.cpp$")
  if(NOT _srcs)
    message(STATUS "${lib}: no sources yet, skipped")
    return()
  endif()
  add_library(${lib} STATIC ${_srcs})
  target_include_directories(${lib} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_include_directories(${lib} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  endif()
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_include_directories(${lib} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  endif()
  target_link_libraries(${lib} PUBLIC ${ARG_LIBS} PRIVATE vigil_warnings)

  if(ARG_PROGRAM AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/main.cpp)
    add_executable(${ARG_PROGRAM} main.cpp)
    target_link_libraries(${ARG_PROGRAM} PRIVATE ${lib} vigil_warnings)
  endif()

  file(GLOB _tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/*_test.cpp)
  foreach(test_src IN LISTS _tests)
    get_filename_component(test ${test_src} NAME_WE)
    set(exe ${ARG_NAME}_${test})
    add_executable(${exe} ${test_src})
    target_include_directories(${exe} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/tests
                               ${CMAKE_SOURCE_DIR}/http/tests ${CMAKE_SOURCE_DIR}/telemetry/tests)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/src)
      target_include_directories(${exe} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    endif()
    target_link_libraries(${exe} PRIVATE ${lib} GTest::gtest GTest::gtest_main vigil_warnings)
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
