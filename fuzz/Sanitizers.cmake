# Included by the top-level CMakeLists when CONDUIT_FUZZ is ON, before any target exists, so
# every library the fuzz targets link is built with the same instrumentation: libFuzzer coverage
# (fuzzer-no-link), AddressSanitizer, and UndefinedBehaviorSanitizer with no recovery (any UB
# report aborts the run, which libFuzzer records as a crash).
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "CONDUIT_FUZZ needs clang (configure with -DCMAKE_CXX_COMPILER=clang++); "
                      "got ${CMAKE_CXX_COMPILER_ID}")
endif()
set(CONDUIT_SANITIZE_FLAGS
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -fno-omit-frame-pointer)
add_compile_options(${CONDUIT_SANITIZE_FLAGS})
add_link_options(-fsanitize=address,undefined)
