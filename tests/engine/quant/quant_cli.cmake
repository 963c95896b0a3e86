# `tunelab quantize` end to end: a nano model quantized to int8 evaluates like the original (int8 PTQ moves the
# loss by < 1e-2), an int4 folder runs in eval and generate, and bad input exits 2 having written nothing.
# Run by CTest:  cmake -DTUNELAB=<tunelab> -DWORK=<scratch folder> -P quant_cli.cmake
function(run_ok out_var)
  execute_process(COMMAND "${TUNELAB}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "tunelab ${ARGN}: exit ${rc}\n${out}${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
include(${CMAKE_CURRENT_LIST_DIR}/../../cli/cli_expect.cmake)  # expect_exit2(name fragment args...)
# ... and the refused command wrote nothing.
function(expect_refused name fragment out_dir)
  expect_exit2("${name}" "${fragment}" ${ARGN})
  if(EXISTS "${out_dir}")
    message(SEND_ERROR "${name}: ${out_dir} was written")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
run_ok(_ pretrain --preset nano --steps 30 --out "${WORK}/base" --threads 1)

run_ok(_ quantize --model "${WORK}/base" --format int8 --out "${WORK}/q8" --threads 1)
run_ok(fp eval --model "${WORK}/base" --task reverse --n 8 --json --threads 1)
run_ok(q8 eval --model "${WORK}/q8" --task reverse --n 8 --json --threads 1)
string(JSON loss_fp GET "${fp}" loss)
string(JSON loss_q8 GET "${q8}" loss)
# CMake math is integer-only: compare the losses in thousandths
string(REGEX REPLACE "^([0-9]+)\\.([0-9][0-9][0-9]).*" "\\1\\2" a "${loss_fp}")
string(REGEX REPLACE "^([0-9]+)\\.([0-9][0-9][0-9]).*" "\\1\\2" b "${loss_q8}")
math(EXPR diff "${a} - ${b}")
if(diff GREATER 10 OR diff LESS -10)
  message(SEND_ERROR "int8 moved the loss from ${loss_fp} to ${loss_q8} (more than 0.01)")
endif()

run_ok(out quantize --model "${WORK}/base" --format int4 --group 16 --skip-embeddings --out "${WORK}/q4" --threads 1)
if(NOT out MATCHES "5\\.000 bits/weight")
  message(SEND_ERROR "int4 groups of 16 with fp16 scales should be 4 + 16/16 = 5 bits/weight:\n${out}")
endif()
run_ok(_ eval --model "${WORK}/q4" --task reverse --n 4 --threads 1)
run_ok(gen generate --model "${WORK}/q4" --prompt "Q: reverse abc" --max-tokens 4 --threads 1)
run_ok(_ quantize --model "${WORK}/base" --format nf4 --granularity group --group 64 --double-quant int8
       --out "${WORK}/qnf4" --threads 1)
run_ok(_ eval --model "${WORK}/qnf4" --task reverse --n 4 --threads 1)

expect_refused("unknown format" "unknown format 'int5'" "${WORK}/bad1"
             quantize --model "${WORK}/base" --format int5 --out "${WORK}/bad1")
expect_refused("group without group granularity" "needs --granularity group" "${WORK}/bad2"
             quantize --model "${WORK}/base" --format int4 --group 16 --granularity tensor --out "${WORK}/bad2")
expect_refused("asymmetric nf4" "asymmetric" "${WORK}/bad3"
             quantize --model "${WORK}/base" --format nf4 --symmetry asymmetric --out "${WORK}/bad3")
expect_refused("missing model" "not a model folder" "${WORK}/bad4"
             quantize --model "${WORK}/nothing" --format int8 --out "${WORK}/bad4")
expect_refused("already quantized" "already quantized" "${WORK}/bad5"
             quantize --model "${WORK}/q8" --format int4 --out "${WORK}/bad5")
expect_refused("bad granularity" "unknown granularity" "${WORK}/bad6"
             quantize --model "${WORK}/base" --format int4 --granularity row --out "${WORK}/bad6")
expect_refused("missing parent" "parent folder" "${WORK}/no/bad7"
             quantize --model "${WORK}/base" --format int8 --out "${WORK}/no/bad7")
file(REMOVE_RECURSE "${WORK}")
