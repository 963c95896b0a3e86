# `tunelab merge --method moe` end to end on nano folders: upcycle two fine-tunes (random and hidden routers),
# fine-tune, evaluate and generate with the result; bad input (top-k > experts, another shape, a hidden router
# without prompts, an unknown router) exits 2 and writes nothing. About a second.
# Run by CTest:  cmake -DTUNELAB=<path to tunelab> -DWORK=<scratch folder> -P moe_cli.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

include("${CMAKE_CURRENT_LIST_DIR}/merge_cli_common.cmake")

run_ok(pretrain pretrain --preset nano --steps 2 --seed 1 --out "${WORK}/base" --threads 1)
run_ok(ft_a finetune --base "${WORK}/base" --task reverse --steps 2 --out "${WORK}/a" --threads 1)
run_ok(ft_b finetune --base "${WORK}/base" --task sort --steps 2 --out "${WORK}/b" --threads 1)

run_ok(moe_random merge --method moe --base "${WORK}/base" --models "${WORK}/a" "${WORK}/b" --top-k 2
       --router random --out "${WORK}/moe_r")
run_ok(moe_hidden merge --method moe --base "${WORK}/base" --models "${WORK}/a" "${WORK}/b" --top-k 1
       --router hidden --prompts reverse sort --out "${WORK}/moe_h")
file(READ "${WORK}/moe_h/config.json" cfg)
if(NOT cfg MATCHES "\"num_local_experts\": 2" OR NOT cfg MATCHES "\"num_experts_per_tok\": 1")
  message(SEND_ERROR "moe config.json lacks the expert fields:\n${cfg}")
endif()
run_ok(moe_finetune finetune --base "${WORK}/moe_h" --task reverse --steps 2 --out "${WORK}/moe_ft" --threads 1)
run_ok(moe_eval eval --model "${WORK}/moe_ft" --task reverse --n 2)
run_ok(moe_generate generate --model "${WORK}/moe_ft" --prompt "rev abc" --max-tokens 4)

# mergekit-moe's YAML (--config with `experts:`): a random gate with the flags' seed and top-k builds the same
# model, byte for byte, as the flags; a hidden gate reads positive_prompts.
file(WRITE "${WORK}/moe_random.yml" "base_model: ${WORK}/base\ngate_mode: random\ndtype: bfloat16\nexperts_per_token: 2\nexperts:\n  - source_model: ${WORK}/a\n  - source_model: ${WORK}/b\n")
run_ok(moe_yaml_random merge --config "${WORK}/moe_random.yml" --out "${WORK}/moe_ry")
file(SHA256 "${WORK}/moe_r/model.safetensors" flags_sha)
file(SHA256 "${WORK}/moe_ry/model.safetensors" yaml_sha)
if(NOT flags_sha STREQUAL yaml_sha)
  message(SEND_ERROR "the mergekit-moe YAML (random gate) and the flags built different models")
endif()
if(NOT last_err MATCHES "dtype bfloat16 ignored")
  message(SEND_ERROR "expected a note about dtype:\n${last_err}")
endif()
file(WRITE "${WORK}/moe_hidden.yml" "base_model: ${WORK}/base\ngate_mode: hidden\nexperts_per_token: 1\nexperts:\n  - source_model: ${WORK}/a\n    positive_prompts:\n      - \"rev abc\"\n      - \"rev hello\"\n  - source_model: ${WORK}/b\n    positive_prompts: [\"sort cab\"]\n")
run_ok(moe_yaml_hidden merge --config "${WORK}/moe_hidden.yml" --out "${WORK}/moe_hy")
file(READ "${WORK}/moe_hy/config.json" cfg_y)
if(NOT cfg_y MATCHES "\"num_experts_per_tok\": 1")
  message(SEND_ERROR "experts_per_token 1 did not reach config.json:\n${cfg_y}")
endif()
foreach(bad "cheap_embed;gate_mode: cheap_embed;is not built in tunelab"
            "negative;gate_mode: random\nexperts:\n  - source_model: ${WORK}/a\n    negative_prompts: [x];negative_prompts are not built"
            "no_prompts;gate_mode: hidden\nexperts:\n  - source_model: ${WORK}/a;needs positive_prompts"
            "unknown_key;gate_mode: random\nshared_experts: 1;unknown key 'shared_experts'")
  list(GET bad 0 name)
  list(GET bad 1 body)
  list(GET bad 2 fragment)
  if(NOT body MATCHES "experts:")
    set(body "${body}\nexperts:\n  - source_model: ${WORK}/a")
  endif()
  file(WRITE "${WORK}/${name}.yml" "base_model: ${WORK}/base\n${body}\n")
  expect_exit2(yaml_${name} "${fragment}" "${WORK}/bad_${name}" merge --config "${WORK}/${name}.yml" --out "${WORK}/bad_${name}")
endforeach()

run_ok(deeper merge --method passthrough --models "${WORK}/base" "${WORK}/base" --out "${WORK}/deep")
expect_exit2(top_k_above_experts "top-k 3 must be in 1..2" "${WORK}/bad1"
             merge --method moe --base "${WORK}/base" --models "${WORK}/a" "${WORK}/b" --top-k 3 --out "${WORK}/bad1")
expect_exit2(other_shape "different shape" "${WORK}/bad2"
             merge --method moe --base "${WORK}/base" --models "${WORK}/a" "${WORK}/deep" --out "${WORK}/bad2")
expect_exit2(hidden_without_prompts "needs --prompts" "${WORK}/bad3"
             merge --method moe --base "${WORK}/base" --models "${WORK}/a" --router hidden --out "${WORK}/bad3")
expect_exit2(unknown_router "unknown router" "${WORK}/bad4"
             merge --method moe --base "${WORK}/base" --models "${WORK}/a" --router smart --out "${WORK}/bad4")
expect_exit2(no_base "needs --base" "${WORK}/bad5"
             merge --method moe --models "${WORK}/a" "${WORK}/b" --out "${WORK}/bad5")
