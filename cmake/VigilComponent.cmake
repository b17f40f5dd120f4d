# vigil_add_component(NAME <name> [PROGRAM <program>] [LIBS <targets>...]
#                     [TEST_LIBS <targets>...])
#
# One part of the platform laid out the usual way in the current source directory:
#   *.cpp and src/*.cpp (except main.cpp)   -> static library vigil_<name>
#   include/ (if present) and the directory  -> its include path
#   main.cpp (with PROGRAM)                  -> the program, linked to the library
#   tests/<test>_test.cpp                    -> one GoogleTest program <name>_<test> each,
#                                               linked to the library and TEST_LIBS (see
#                                               vigil_add_tests in VigilTests.cmake)

function(vigil_add_component)
  cmake_parse_arguments(ARG "" "NAME;PROGRAM" "LIBS;TEST_LIBS" ${ARGN})
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

  vigil_add_tests(PREFIX ${ARG_NAME} LIBS ${lib} ${ARG_TEST_LIBS})
endfunction()
