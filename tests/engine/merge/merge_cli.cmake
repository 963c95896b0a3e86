# `tunelab merge` end to end: flags and mergekit YAML both run; linear (1, 0) and passthrough of one whole model
# reproduce the input file byte for byte (the oracle: the input); merges of two `small` models take < 2 s;
# bad input exits 2 with a clear message and leaves no output folder.
# Run by CTest:  cmake -DTUNELAB=<path to tunelab> -DWORK=<scratch folder> -P merge_cli.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

include("${CMAKE_CURRENT_LIST_DIR}/merge_cli_common.cmake")

function(expect_same_file name a b)
  file(SHA256 "${a}" ha)
  file(SHA256 "${b}" hb)
  if(NOT ha STREQUAL hb)
    message(SEND_ERROR "${name}: ${a} differs from ${b}")
  else()
    message(STATUS "ok  ${name}")
  endif()
endfunction()

# A nano base (pretraining seed `seed`) and a fine-tune of it on `task` (a few steps: merging needs related
# weights, not good ones).
function(base_and_finetune base seed ft task)
  run_ok(pretrain_${base} pretrain --preset nano --steps 2 --seed ${seed} --out "${WORK}/${base}" --threads 1)
  run_ok(finetune_${ft} finetune --base "${WORK}/${base}" --task ${task} --steps 2 --out "${WORK}/${ft}" --threads 1)
endfunction()

base_and_finetune(base 1 ft1 reverse)
run_ok(ft_add finetune --base "${WORK}/base" --task add --steps 2 --out "${WORK}/ft2" --threads 1)

run_ok(linear_10 merge --method linear --models "${WORK}/ft1" "${WORK}/ft2" --weights 1 0 --out "${WORK}/lin")
expect_same_file(linear_weights_1_0_is_the_first "${WORK}/lin/model.safetensors" "${WORK}/ft1/model.safetensors")
run_ok(passthrough_one merge --method passthrough --models "${WORK}/ft2" --out "${WORK}/pt")
expect_same_file(passthrough_of_one_model "${WORK}/pt/model.safetensors" "${WORK}/ft2/model.safetensors")
run_ok(slerp merge --method slerp --base "${WORK}/base" --models "${WORK}/ft1" --t 0 0.5 1 --out "${WORK}/m_slerp")
foreach(m slerp task_arithmetic ties dare_linear dare_ties)
  if(NOT m STREQUAL "slerp")
    run_ok(${m} merge --method ${m} --base "${WORK}/base" --models "${WORK}/ft1" "${WORK}/ft2" --density 0.5
           --out "${WORK}/m_${m}")
  endif()
  run_ok(${m}_eval eval --model "${WORK}/m_${m}" --task reverse --n 2)
endforeach()
run_ok(stack merge --method passthrough --models "${WORK}/ft1" "${WORK}/ft2" --out "${WORK}/deep")
file(READ "${WORK}/deep/config.json" cfg)
string(JSON layers GET "${cfg}" n_layer)
if(NOT layers EQUAL 4)
  message(SEND_ERROR "stacking two 2-layer models gave n_layer ${layers}, expected 4")
endif()

# The same TIES merge from a mergekit YAML config.
file(WRITE "${WORK}/ties.yaml" "models:
  - model: ${WORK}/base
  - model: ${WORK}/ft1
    parameters:
      density: 0.5
      weight: 0.6
  - model: ${WORK}/ft2
    parameters:
      density: 0.5
      weight: 0.4
merge_method: ties
base_model: ${WORK}/base
parameters:
  normalize: true
dtype: bfloat16
")
run_ok(yaml_ties merge --config "${WORK}/ties.yaml" --out "${WORK}/yaml_ties")
if(NOT last_err MATCHES "dtype bfloat16 ignored")
  message(SEND_ERROR "yaml_ties: no note about the ignored dtype:\n${last_err}")
endif()
file(WRITE "${WORK}/stack.yaml" "slices:
  - sources:
      - model: ${WORK}/ft1
        layer_range: [0, 2]
  - sources:
      - model: ${WORK}/ft2
        layer_range: [1, 2]
merge_method: passthrough
")
run_ok(yaml_stack merge --config "${WORK}/stack.yaml" --out "${WORK}/yaml_stack")

# Two `small` models: every method under 2 s (the merge itself, as the command reports it).
run_ok(small_base pretrain --preset small --steps 1 --seed 3 --out "${WORK}/sbase" --batch 1)
run_ok(small_ft finetune --base "${WORK}/sbase" --task reverse --steps 1 --out "${WORK}/sft" --batch 1)
foreach(m linear slerp task_arithmetic ties dare_ties)
  run_ok(small_${m} merge --method ${m} --base "${WORK}/sbase" --models "${WORK}/sft"
         --density 0.3 --out "${WORK}/s_${m}")
  string(REGEX MATCH "merge ([0-9.]+) s" _ "${last_out}")
  if(NOT CMAKE_MATCH_1 OR CMAKE_MATCH_1 GREATER_EQUAL 2)
    message(SEND_ERROR "small_${m}: merge took ${CMAKE_MATCH_1} s (limit 2 s):\n${last_out}")
  else()
    message(STATUS "ok  small_${m}: ${CMAKE_MATCH_1} s")
  endif()
endforeach()

# Bad input.
base_and_finetune(base2 2 ft_other reverse)
run_ok(tiny pretrain --preset tiny --steps 1 --batch 1 --out "${WORK}/tiny" --threads 1)
set(M merge --models "${WORK}/ft1" "${WORK}/ft2")
expect_exit2(t_above_1 "t must be in \\[0, 1\\]" "${WORK}/x1" ${M} --method slerp --t 1.5 --out "${WORK}/x1")
expect_exit2(t_below_0 "t must be in" "${WORK}/x2" ${M} --method slerp --t -0.1 --out "${WORK}/x2")
expect_exit2(density_0 "density of .* must be in \\(0, 1\\]" "${WORK}/x3" ${M} --method ties --base "${WORK}/base" --density 0 --out "${WORK}/x3")
expect_exit2(density_above_1 "density" "${WORK}/x4" ${M} --method dare --base "${WORK}/base" --density 1.5 --out "${WORK}/x4")
expect_exit2(no_base "needs a base model" "${WORK}/x5" ${M} --method ties --out "${WORK}/x5")
expect_exit2(different_shapes "different shape" "${WORK}/x6" merge --method linear --models "${WORK}/ft1" "${WORK}/tiny" --out "${WORK}/x6")
expect_exit2(different_bases "different base models" "${WORK}/x7" merge --method ties --base "${WORK}/base" --models "${WORK}/ft1" "${WORK}/ft_other" --out "${WORK}/x7")
expect_exit2(missing_model "not a model folder" "${WORK}/x8" merge --method linear --models "${WORK}/ft1" "${WORK}/nope" --out "${WORK}/x8")
expect_exit2(unknown_method "unknown merge method 'soup'" "${WORK}/x9" ${M} --method soup --out "${WORK}/x9")
expect_exit2(weights_count "one weight per model" "${WORK}/x10" ${M} --method linear --weights 1 --out "${WORK}/x10")
expect_exit2(slerp_three "exactly 2 models" "${WORK}/x11" merge --method slerp --models "${WORK}/base" "${WORK}/ft1" "${WORK}/ft2" --out "${WORK}/x11")
file(WRITE "${WORK}/bad.yaml" "merge_method: linear\nmodels:\n  - model: ${WORK}/ft1\nmerge_speed: fast\n")
expect_exit2(yaml_unknown_key "unknown key 'merge_speed'" "${WORK}/x12" merge --config "${WORK}/bad.yaml" --out "${WORK}/x12")
expect_exit2(yaml_missing "cannot|no such|not found|does not exist" "${WORK}/x13" merge --config "${WORK}/none.yaml" --out "${WORK}/x13")
expect_exit2(config_and_flags "either --config" "${WORK}/x14" merge --config "${WORK}/ties.yaml" --method linear --out "${WORK}/x14")
file(MAKE_DIRECTORY "${WORK}/users_folder")
file(WRITE "${WORK}/users_folder/thesis.txt" "precious")
execute_process(COMMAND "${TUNELAB}" ${M} --method linear --out "${WORK}/users_folder" RESULT_VARIABLE rc ERROR_VARIABLE err)
file(READ "${WORK}/users_folder/thesis.txt" kept)
if(NOT rc EQUAL 2 OR NOT kept STREQUAL "precious")
  message(SEND_ERROR "a user's non-model folder given as --out was not refused (rc ${rc}): ${err}")
endif()
