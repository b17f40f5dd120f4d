# vigil_add_fuzzers(LIBS...): one libFuzzer target per <name>_fuzz.cpp in the current
# source directory, seeded from corpus/<name>/ and linked to LIBS. Built only with the
# 'fuzz' preset. CTest runs each for a short, bounded time (label "fuzz"); `./vigil fuzz`
# finds every *_fuzz program under a fuzz/ folder of the build tree and runs it for longer.
# New inputs go to the build tree, never into the source tree; what crashes, leaks or
# hangs goes to artifacts/<target>/ at the top of the build tree.
set(VIGIL_FUZZ_SECONDS 10 CACHE STRING "How long CTest runs each fuzz target")

function(vigil_add_fuzzers)
  file(GLOB _fuzzers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_fuzz.cpp)
  foreach(src IN LISTS _fuzzers)
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "_fuzz$" "" parser ${name})
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE ${ARGN} vigil_warnings)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set(_corpus ${CMAKE_CURRENT_BINARY_DIR}/corpus/${name})
    set(_artifacts ${CMAKE_BINARY_DIR}/artifacts/${name})
    file(MAKE_DIRECTORY ${_corpus} ${_artifacts})
    add_test(NAME fuzz.${parser}
             COMMAND ${name} -max_total_time=${VIGIL_FUZZ_SECONDS} -timeout=5 -rss_limit_mb=1024
                     -artifact_prefix=${_artifacts}/ ${_corpus}
                     ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${parser})
    set_tests_properties(fuzz.${parser} PROPERTIES LABELS fuzz TIMEOUT 120)
  endforeach()
endfunction()
