# Helpers shared by every Conduit target: warnings, include roots, tests beside code.

set(CONDUIT_WARNINGS -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wno-unused-parameter)
if(CONDUIT_WERROR)
  list(APPEND CONDUIT_WARNINGS -Werror)
endif()

# DCMTK's headers trip our warnings; make them SYSTEM includes.
get_target_property(_dcmtk_inc DCMTK::DCMTK INTERFACE_INCLUDE_DIRECTORIES)
if(_dcmtk_inc)
  set_target_properties(DCMTK::DCMTK PROPERTIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_dcmtk_inc}")
endif()

# conduit_library(NAME SOURCES a.cc b.cc DEPS x y)
function(conduit_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${CONDUIT_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# Sources built with -O1: Boost.Beast's WebSocket code, which takes two minutes to optimise at
# -O2 and half that at -O1, for a channel that carries a few small event messages.
function(conduit_lightly_optimised)
  set_source_files_properties(${ARGN}
    PROPERTIES COMPILE_OPTIONS $<$<CONFIG:RelWithDebInfo,Release>:-O1>)
endfunction()

# conduit_test(NAME SOURCES a_test.cc DEPS lib LABELS unit)
function(conduit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT CONDUIT_TESTS)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  # Test code itself at -O1: it compiles in about three quarters of the time of -O2
  # (admin_server_test.cc: 23.5 s against 31.3 s). The libraries under test are built as they
  # ship.
  target_compile_options(${name} PRIVATE ${CONDUIT_WARNINGS}
                                         $<$<CONFIG:RelWithDebInfo,Release>:-O1>)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 300)
endfunction()
