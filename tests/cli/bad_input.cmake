# Bad input to `tunelab` gives a clear message and exit code 2, and writes nothing.
# Run by CTest:  cmake -DTUNELAB=<path to tunelab> -DWORK=<scratch folder> -P bad_input.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# A good nano model to break in various ways.
execute_process(COMMAND "${TUNELAB}" pretrain --preset nano --steps 2 --seed 1 --out "${WORK}/good" --threads 1
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "setup: pretraining a nano model failed (${rc})")
endif()

set(failures 0)
include(${CMAKE_CURRENT_LIST_DIR}/cli_expect.cmake)

# (`tunelab` with no arguments starts the course; a lone option is still an error.)
expect_exit2(option_without_command "subcommand is required" --threads 2)
expect_exit2(unknown_command "train_now" train_now)
expect_exit2(unknown_preset "unknown preset 'huge'" pretrain --preset huge --steps 1 --out "${WORK}/x1")
expect_exit2(zero_steps "steps" pretrain --preset nano --steps 0 --out "${WORK}/x2")
expect_exit2(negative_threads "threads" pretrain --preset nano --steps 1 --threads -1 --out "${WORK}/x3")
expect_exit2(missing_parent "parent folder" pretrain --preset nano --steps 1 --out "${WORK}/no/such/dir")
expect_exit2(missing_base "not a model folder" finetune --base "${WORK}/nope" --task reverse --steps 1 --out "${WORK}/x4")
expect_exit2(unknown_task "unknown task" finetune --base "${WORK}/good" --task poetry --steps 1 --out "${WORK}/x5")
expect_exit2(unknown_method "unknown method" finetune --base "${WORK}/good" --task reverse --method magic --steps 1 --out "${WORK}/x6")
expect_exit2(bad_plw "prompt-loss-weight" finetune --base "${WORK}/good" --task reverse --prompt-loss-weight 2 --out "${WORK}/x7")
expect_exit2(eval_missing_model "not a model folder" eval --model "${WORK}/nope" --task reverse)
expect_exit2(eval_bad_split "split" eval --model "${WORK}/good" --task reverse --split dev)
expect_exit2(generate_no_prompt "prompt" generate --model "${WORK}/good")
expect_exit2(inspect_short_text "2..32 bytes" inspect --model "${WORK}/good" --text "a" --out "${WORK}/x8.safetensors")
expect_exit2(cuda_without_cuda "CUDA" eval --model "${WORK}/good" --task reverse --device cuda)
# --precision: tf32 is a GPU mode; with --device cuda a typo fails before any GPU is looked for, and a real
# precision reaches the backend's clear no-CUDA / no-GPU error.
expect_exit2(tf32_on_cpu "use it with --device cuda" pretrain --preset nano --steps 1 --precision tf32 --out "${WORK}/x9")
expect_exit2(cuda_bad_precision "unknown GEMM precision 'fp8'" pretrain --preset nano --steps 1 --device cuda --precision fp8 --out "${WORK}/x10")
expect_exit2(cuda_bf16_without_cuda "CUDA" pretrain --preset nano --steps 1 --device cuda --precision bf16 --out "${WORK}/x11")
# Experiments, lessons and the memory measurement take --device too; without CUDA they say so.
expect_exit2(run_on_cuda_without_cuda "CUDA" run finetune_task --device cuda --no-cache preset=nano base_steps=2 steps=2 eval_n=2)
expect_exit2(lesson_on_cuda_without_cuda "CUDA" lesson 00 --yes --quick --no-cache --device cuda)
expect_exit2(memory_on_cuda_without_cuda "CUDA" memory --preset nano --device cuda)

# A folder of the user's that is not a model must never be replaced.
file(MAKE_DIRECTORY "${WORK}/users_folder")
file(WRITE "${WORK}/users_folder/thesis.txt" "precious")
expect_exit2(out_is_users_folder "not a tunelab model" pretrain --preset nano --steps 1 --out "${WORK}/users_folder")
file(READ "${WORK}/users_folder/thesis.txt" kept)
if(NOT kept STREQUAL "precious")
  message(SEND_ERROR "the user's folder was modified")
endif()

# Broken model folders: each gives exit 2 and a message naming the problem.
function(broken_copy name)
  file(REMOVE_RECURSE "${WORK}/${name}")
  file(COPY "${WORK}/good/" DESTINATION "${WORK}/${name}")
endfunction()
broken_copy(truncated)
file(READ "${WORK}/truncated/model.safetensors" head LIMIT 1000 HEX)
string(LENGTH "${head}" n)
file(WRITE "${WORK}/truncated/model.safetensors" "")  # empty file
expect_exit2(empty_safetensors "safetensors" eval --model "${WORK}/truncated" --task reverse)
broken_copy(badjson)
file(WRITE "${WORK}/badjson/config.json" "{\"model_type\": \"gpt2\", ")
expect_exit2(bad_config_json "not valid JSON" eval --model "${WORK}/badjson" --task reverse)
broken_copy(wrongsize)
file(READ "${WORK}/wrongsize/config.json" cfg)
string(REPLACE "\"n_embd\": 32" "\"n_embd\": 64" cfg "${cfg}")
file(WRITE "${WORK}/wrongsize/config.json" "${cfg}")
expect_exit2(config_weights_mismatch "shape" eval --model "${WORK}/wrongsize" --task reverse)

# A fine-tune from a broken base writes no output folder; a failed save over a model leaves it loadable.
expect_exit2(finetune_broken_base "safetensors" finetune --base "${WORK}/truncated" --task reverse --steps 1 --out "${WORK}/ft")
if(EXISTS "${WORK}/ft")
  message(SEND_ERROR "a failed fine-tune left an output folder behind")
endif()

# Nothing but what we created: no temp folders or files.
file(GLOB leftovers "${WORK}/.*")
if(leftovers)
  message(SEND_ERROR "temporary files left behind: ${leftovers}")
endif()
foreach(x x1 x2 x3 x4 x5 x6 x7 x8.safetensors)
  if(EXISTS "${WORK}/${x}")
    message(SEND_ERROR "bad input still wrote ${WORK}/${x}")
  endif()
endforeach()
