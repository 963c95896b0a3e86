# `tunelab memory` end to end: the course's worked example, predicted == measured in the JSON on nano, the
# real-shape question, and bad input (exit code 2 with a clear message).
# Run by CTest:  cmake -DTUNELAB=<path to tunelab> -P memory_cli.cmake
function(run_ok out_var)
  execute_process(COMMAND "${TUNELAB}" memory ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "tunelab memory ${ARGN}: exit ${rc}\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

set(TL_CLI_PREFIX memory)
include(${CMAKE_CURRENT_LIST_DIR}/../../cli/cli_expect.cmake)

# The course: 13e9 parameters x 2 bytes -> 31.2 GB inference, 78 GB training.
run_ok(course --params 13e9 --bytes 2)
if(NOT course MATCHES "31\\.2 GB" OR NOT course MATCHES "= 78 GB")
  message(SEND_ERROR "course example: expected 31.2 GB and 78 GB in:\n${course}")
endif()

# Predicted vs measured on nano: weights, gradients and optimizer agree to the byte.
run_ok(json --preset nano --batch 2 --seq 16 --steps 1 --threads 1 --json)
foreach(cat weights grads optimizer activations workspace)
  string(JSON predicted GET "${json}" categories ${cat} predicted)
  string(JSON measured GET "${json}" categories ${cat} measured)
  if(NOT predicted EQUAL measured)
    message(SEND_ERROR "nano ${cat}: predicted ${predicted} != measured ${measured}")
  endif()
endforeach()
string(JSON training GET "${json}" course training_bytes)
if(NOT training GREATER 0)
  message(SEND_ERROR "nano: no course figure in the JSON")
endif()

# A learner's question on a real shape.
run_ok(real --real 7b --method qlora --gpu-gb 24)
if(NOT real MATCHES "fits on a 24 GB GPU")
  message(SEND_ERROR "qlora 7b on 24 GB should fit:\n${real}")
endif()
run_ok(real_full --real 7b --method full --gpu-gb 24)
if(NOT real_full MATCHES "does NOT fit")
  message(SEND_ERROR "full 7b on 24 GB should not fit:\n${real_full}")
endif()

expect_exit2(no_mode "exactly one of")
expect_exit2(two_modes "exactly one of" --preset nano --real 7b)
expect_exit2(unknown_real "unknown real model '9b'" --real 9b)
expect_exit2(unknown_method "unknown method 'magic'" --real 7b --method magic)
expect_exit2(unknown_format "unknown weight format" --real 7b --method qlora --format nf3)
expect_exit2(seq_too_long "--seq must be in" --preset nano --seq 33)
expect_exit2(bad_zero "--zero must be" --real 7b --zero 4)
expect_exit2(bad_rank "rank must be" --real 7b --method lora --rank 0)
expect_exit2(bitfit_llama "trains nothing" --real 7b --method bitfit)
