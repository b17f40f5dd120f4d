# The version and git revision that vigil_build_info reports.
execute_process(
  COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  OUTPUT_VARIABLE VIGIL_REVISION
  OUTPUT_STRIP_TRAILING_WHITESPACE
  ERROR_QUIET)
if(NOT VIGIL_REVISION)
  set(VIGIL_REVISION "unknown")
endif()
set(VIGIL_VERSION ${PROJECT_VERSION})
