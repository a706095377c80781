# Helpers that give every Tripline target the same warnings and layout.

# tripline_library(NAME SOURCES ... [DEPS ...])
function(tripline_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${TRIPLINE_WARNINGS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# tripline_executable(NAME SOURCES ... [DEPS ...])
function(tripline_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${TRIPLINE_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# tripline_test(NAME SOURCES ... [DEPS ...] [LABELS ...]): a GoogleTest binary whose
# tests are registered with CTest one by one. Its main() is tripline_test_main
# (tests/support/test_main.cc): under CI=true a skipped test fails with its reason.
function(tripline_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${TRIPLINE_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} tripline_test_main GTest::gtest GTest::gmock)
  set(labels unit)
  if(ARG_LABELS)
    set(labels ${ARG_LABELS})
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS "${labels}" DISCOVERY_TIMEOUT 60)
endfunction()

# tripline_fuzz_target(NAME SOURCES ... [DEPS ...] CORPUS DIR)
# With TRIPLINE_FUZZ (clang) this builds a libFuzzer binary. Otherwise it builds a replay
# driver that feeds every file of the seed corpus through the same entry point, registered
# as a test, so the target is compiled and exercised in every build.
# Every target is recorded, with its seed corpus and sources, in the build's
# fuzz-targets.tsv (tripline_write_fuzz_targets): scripts/fuzz fuzzes exactly that list,
# and fails, as does the unit test fuzz_targets.registered, when a source defining
# LLVMFuzzerTestOneInput is in none of them.
function(tripline_fuzz_target name)
  cmake_parse_arguments(ARG "" "CORPUS" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_CORPUS)
    message(FATAL_ERROR "tripline_fuzz_target(${name}): CORPUS (the seed corpus) is required")
  endif()
  file(GLOB seeds LIST_DIRECTORIES false ${ARG_CORPUS}/*)
  if(NOT seeds)
    message(FATAL_ERROR "tripline_fuzz_target(${name}): seed corpus ${ARG_CORPUS} is missing or empty")
  endif()
  if(TRIPLINE_FUZZ)
    add_executable(${name} ${ARG_SOURCES})
    target_compile_options(${name} PRIVATE ${TRIPLINE_WARNINGS} -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cc)
    target_compile_options(${name} PRIVATE ${TRIPLINE_WARNINGS})
    add_test(NAME ${name}.replay COMMAND ${name} ${ARG_CORPUS})
    set_tests_properties(${name}.replay PROPERTIES LABELS unit)
  endif()
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})

  set(sources)
  foreach(src ${ARG_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    list(APPEND sources ${rel})
  endforeach()
  file(RELATIVE_PATH corpus ${PROJECT_SOURCE_DIR} ${ARG_CORPUS})
  list(JOIN sources " " sources)
  set_property(GLOBAL APPEND PROPERTY TRIPLINE_FUZZ_TARGETS "${name}\t${corpus}\t${sources}")
endfunction()

# tripline_write_fuzz_targets(): called once, after every component, by the top-level
# CMakeLists. Writes ${CMAKE_BINARY_DIR}/fuzz-targets.tsv, one line per fuzz target:
# name, seed corpus and sources (paths relative to the source tree), tab-separated.
function(tripline_write_fuzz_targets)
  get_property(targets GLOBAL PROPERTY TRIPLINE_FUZZ_TARGETS)
  list(SORT targets)
  set(text "")
  foreach(line ${targets})
    string(APPEND text "${line}\n")
  endforeach()
  file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/fuzz-targets.tsv CONTENT "${text}" @ONLY)
  # The same check scripts/fuzz makes before fuzzing, in every build's unit tests.
  add_test(NAME fuzz_targets.registered
           COMMAND ${PROJECT_SOURCE_DIR}/scripts/fuzz --check ${CMAKE_BINARY_DIR}/fuzz-targets.tsv)
  set_tests_properties(fuzz_targets.registered PROPERTIES LABELS unit)
endfunction()
