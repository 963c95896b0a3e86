# Helper functions shared by every folder: warnings, module libraries, tests.

# Warnings on and clean, for our own targets only.
function(tl_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
endfunction()

# tl_add_module(NAME tl_core SOURCES a.cpp b.cpp DEPS tl_x PRIVATE_DEPS Eigen3::Eigen)
# One static library per engine module; its links are the dependency table of docs/architecture.md.
function(tl_add_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${M_NAME} STATIC ${M_SOURCES})
  target_include_directories(${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/engine)
  target_link_libraries(${M_NAME} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  tl_warnings(${M_NAME})
endfunction()

# tl_add_test(NAME foo_test SOURCES foo_test.cpp DEPS tl_core LABELS engine)
function(tl_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} tl_testing GTest::gtest GTest::gtest_main)
  tl_warnings(${T_NAME})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT 600)
endfunction()

# tl_add_bench(NAME bench_x SOURCES bench_x.cpp DEPS tl_train)
function(tl_add_bench)
  cmake_parse_arguments(B "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${B_NAME} ${B_SOURCES})
  target_link_libraries(${B_NAME} PRIVATE ${B_DEPS} benchmark::benchmark)
  tl_warnings(${B_NAME})
endfunction()
