# Warnings are errors everywhere; sanitizers and fuzzing are switched on by options so
# the same sources build in every preset.
add_library(vigil_warnings INTERFACE)
target_compile_options(vigil_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Werror
  -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wconversion -Wsign-conversion -Wdouble-promotion
  -Wimplicit-fallthrough -Wformat=2)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # g++ 12 pairs Asio's sized operator delete for coroutine frames with the wrong
  # operator new when it inlines a coroutine's frame allocation; the pair is correct.
  target_compile_options(vigil_warnings INTERFACE -Wno-mismatched-new-delete)
endif()

if(VIGIL_SANITIZE)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # The sanitizers' instrumentation makes g++ 12 see Beast's optional content length
    # as maybe-uninitialized after inlining; the Release build keeps the warning.
    target_compile_options(vigil_warnings INTERFACE -Wno-maybe-uninitialized)
  endif()
  # float-cast-overflow (a double outside the target integer's range) is not part of
  # g++'s "undefined" group; clang's fuzz builds have it already.
  add_compile_options(-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined,float-cast-overflow)
endif()

if(VIGIL_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "VIGIL_FUZZ needs clang (libFuzzer); configure with the 'fuzz' preset")
  endif()
  # clang 14 cannot emit UBSan's function-type check in C++20 coroutines (the HTTP runtime's
  # and its fuzzers': "Cannot represent a difference across sections", llvm-project#49689),
  # so that one check is left out; the rest of "undefined" stays.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
