# `tunelab finetune --method ...` and `tunelab merge-lora` end to end: every method runs and prints its trainable
# count (checked against the closed forms of docs/peft.md for nano: C 32, L 2), LoRA writes a PEFT folder that
# merge-lora turns into the same model as --merged-out, IA3 a PEFT folder that eval/generate --adapter read back
# (scoring what its --merged-out scores), and bad PEFT input exits 2 having written nothing.
# Run by CTest:  cmake -DTUNELAB=<path to tunelab> -DWORK=<scratch folder> -P peft_cli.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(run_ok name)
  execute_process(COMMAND "${TUNELAB}" ${ARGN} --threads 1 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${out}\n${err}")
  endif()
  set(LAST_OUT "${out}" PARENT_SCOPE)
endfunction()

set(TL_CLI_SUFFIX --threads 1)
include(${CMAKE_CURRENT_LIST_DIR}/cli_expect.cmake)

run_ok(pretrain pretrain --preset nano --steps 20 --seed 1 --out "${WORK}/base")
run_ok(pretrain_tiny pretrain --preset tiny --steps 1 --batch 1 --seed 1 --out "${WORK}/tiny")

# nano: C = 32, L = 2, 34,720 base parameters.  lora r 4 on every linear: L * 16 r C = 4,096;
# bitfit: L * 11 C + C = 736;  partial k = 1: 12 C^2 + 13 C + 2 C = 12,768;  ia3: 6 C L = 384;
# adapter m 8: L * 2 (2 C m + m + C) = 2,208.
foreach(case "lora;4096;--rank;4;--alpha;8" "bitfit;736" "partial;12768;--layers;1" "ia3;384"
             "adapter;2208;--bottleneck;8")
  list(POP_FRONT case method count)
  run_ok(${method} finetune --base "${WORK}/base" --task reverse --method ${method} --steps 3 --batch 4
         --out "${WORK}/ft_${method}" ${case})
  if(NOT LAST_OUT MATCHES "trainable ${count} of ")
    message(SEND_ERROR "${method}: expected 'trainable ${count} of' in:\n${LAST_OUT}")
  endif()
endforeach()
foreach(method lora ia3)
  foreach(f adapter_config.json adapter_model.safetensors)
    if(NOT EXISTS "${WORK}/ft_${method}/${f}")
      message(SEND_ERROR "the ${method} output lacks ${f}")
    endif()
  endforeach()
endforeach()

# IA3 writes PEFT's IA3 folder (c_attn and the feedforward mlp.c_proj, GPT-2's default); eval and generate
# --adapter load it on top of the base (merged), and score exactly what the --merged-out folder scores.
file(READ "${WORK}/ft_ia3/adapter_config.json" ia3_config)
if(NOT ia3_config MATCHES "\"peft_type\": \"IA3\"" OR NOT ia3_config MATCHES "\"feedforward_modules\": \\[\n *\"mlp.c_proj\"")
  message(SEND_ERROR "the IA3 folder's config is not PEFT's:\n${ia3_config}")
endif()
run_ok(ia3_merged finetune --base "${WORK}/base" --task reverse --method ia3 --steps 3 --batch 4
       --out "${WORK}/ia3_ad" --merged-out "${WORK}/ia3_merged")
run_ok(eval_ia3_adapter eval --model "${WORK}/base" --adapter "${WORK}/ia3_ad" --task reverse --n 4)
string(REGEX MATCH "exact match[^\n]*" ia3_adapter_line "${LAST_OUT}")
run_ok(eval_ia3_merged eval --model "${WORK}/ia3_merged" --task reverse --n 4)
string(REGEX MATCH "exact match[^\n]*" ia3_merged_line "${LAST_OUT}")
if(ia3_adapter_line STREQUAL "" OR NOT ia3_adapter_line STREQUAL ia3_merged_line)
  message(SEND_ERROR "eval --adapter (${ia3_adapter_line}) and the merged folder (${ia3_merged_line}) disagree")
endif()
run_ok(generate_ia3 generate --model "${WORK}/base" --adapter "${WORK}/ia3_ad" --prompt "rev ab" --max-tokens 3)

# QLoRA: the same adapter as LoRA (r 4: 4,096 trainable) on a base whose block matrices are stored in NF4. Its
# folder is a plain PEFT LoRA folder; eval --load-in-4bit rounds the base as training stored it, which must score
# exactly what the same adapter scores on `tunelab quantize`'s nf4 folder of the same scheme (another code path:
# quant_io's packed folder, dequantized on load).
run_ok(qlora finetune --base "${WORK}/base" --task reverse --method qlora --rank 4 --alpha 8 --steps 3 --batch 4
       --out "${WORK}/ft_qlora")
if(NOT LAST_OUT MATCHES "trainable 4096 of " OR NOT LAST_OUT MATCHES "quant_storage")
  message(SEND_ERROR "qlora: expected 'trainable 4096 of' and a quant_storage peak in:\n${LAST_OUT}")
endif()
file(READ "${WORK}/ft_qlora/adapter_config.json" qlora_config)
if(NOT qlora_config MATCHES "\"peft_type\": \"LORA\"")
  message(SEND_ERROR "the QLoRA adapter is not a PEFT LoRA folder:\n${qlora_config}")
endif()
run_ok(eval_qlora_4bit eval --model "${WORK}/base" --adapter "${WORK}/ft_qlora" --load-in-4bit --task reverse --n 4)
string(REGEX MATCH "exact match[^\n]*" qlora_4bit_line "${LAST_OUT}")
run_ok(quantize_nf4 quantize --model "${WORK}/base" --format nf4 --granularity per_group --group 64
       --double-quant fp8_e4m3 --skip-embeddings --out "${WORK}/base_nf4")
run_ok(eval_qlora_nf4_folder eval --model "${WORK}/base_nf4" --adapter "${WORK}/ft_qlora" --task reverse --n 4)
string(REGEX MATCH "exact match[^\n]*" qlora_folder_line "${LAST_OUT}")
if(qlora_4bit_line STREQUAL "" OR NOT qlora_4bit_line STREQUAL qlora_folder_line)
  message(SEND_ERROR "--load-in-4bit (${qlora_4bit_line}) and the nf4 folder (${qlora_folder_line}) disagree")
endif()
run_ok(generate_qlora generate --model "${WORK}/base" --adapter "${WORK}/ft_qlora" --load-in-4bit --prompt "rev ab"
       --max-tokens 3)
expect_exit2(qlora_dora "DoRA needs the fp32 base" finetune --base "${WORK}/base" --task reverse --method qlora --dora --out "${WORK}/x18")
expect_exit2(qlora_group_other "--qlora-group and --double-quant are for --method qlora only" finetune --base "${WORK}/base" --task reverse --method lora --qlora-group 32 --out "${WORK}/x19")
expect_exit2(qlora_double_quant "double" finetune --base "${WORK}/base" --task reverse --method qlora --double-quant fp4 --out "${WORK}/x20")
expect_exit2(load_in_4bit_alone "--load-in-4bit needs --adapter" eval --model "${WORK}/base" --load-in-4bit --task reverse --n 2)
expect_exit2(load_in_4bit_ia3 "--load-in-4bit is for LoRA adapters" eval --model "${WORK}/base" --adapter "${WORK}/ft_ia3" --load-in-4bit --task reverse --n 2)
foreach(x x18 x19 x20)
  if(EXISTS "${WORK}/${x}")
    message(SEND_ERROR "bad qlora input still wrote ${WORK}/${x}")
  endif()
endforeach()

# Soft prompts on add (reverse's 31-token examples leave nano's 32 positions no room): prompt n 4: n C = 128;
# ptuning n 4, H 16: n C + 2 C H + H^2 + 2 H + C = 1,472; H = C (default): 3,296. Each writes a PEFT folder that
# eval --adapter reads back. prefix n 4: 2 n L C = 512; with --prefix-projection, H 16:
# n C + C H + H + 2 L C H + 2 L C = 2,832 (docs/peft.md).
foreach(case "prompt;128;--prompt-init;text;--prompt-init-text;Q: " "ptuning;1472;--encoder-hidden;16"
             "ptuning;3296" "prefix;512;--prompt-init;text;--prompt-init-text;Q: "
             "prefix;2832;--prefix-projection;--encoder-hidden;16")
  list(POP_FRONT case method count)
  run_ok(${method} finetune --base "${WORK}/base" --task add --method ${method} --virtual-tokens 4 --steps 3
         --batch 4 --out "${WORK}/sp_${method}_${count}" ${case})
  if(NOT LAST_OUT MATCHES "trainable ${count} of ")
    message(SEND_ERROR "${method}: expected 'trainable ${count} of' in:\n${LAST_OUT}")
  endif()
  foreach(f adapter_config.json adapter_model.safetensors)
    if(NOT EXISTS "${WORK}/sp_${method}_${count}/${f}")
      message(SEND_ERROR "the ${method} output lacks ${f}")
    endif()
  endforeach()
  run_ok(eval_${method} eval --model "${WORK}/base" --adapter "${WORK}/sp_${method}_${count}" --task add --n 4)
endforeach()
file(READ "${WORK}/sp_prompt_128/adapter_config.json" prompt_config)
if(NOT prompt_config MATCHES "\"peft_type\": \"PROMPT_TUNING\"" OR NOT prompt_config MATCHES "\"num_virtual_tokens\": 4")
  message(SEND_ERROR "the prompt tuning folder's config is not PEFT's:\n${prompt_config}")
endif()

file(READ "${WORK}/sp_prefix_2832/adapter_config.json" prefix_config)
if(NOT prefix_config MATCHES "\"peft_type\": \"PREFIX_TUNING\"" OR NOT prefix_config MATCHES "\"prefix_projection\": true")
  message(SEND_ERROR "the prefix tuning folder's config is not PEFT's:\n${prefix_config}")
endif()

# DoRA with dropout, r 4 on every linear: 4,096 + one magnitude per output column (L (3C + C + 4C + C) = 576).
run_ok(dora finetune --base "${WORK}/base" --task reverse --method lora --rank 4 --alpha 8 --dora --lora-dropout 0.1
       --steps 3 --batch 4 --out "${WORK}/dora")
if(NOT LAST_OUT MATCHES "trainable 4672 of ")
  message(SEND_ERROR "dora: expected 'trainable 4672 of' in:\n${LAST_OUT}")
endif()
file(READ "${WORK}/dora/adapter_config.json" dora_config)
if(NOT dora_config MATCHES "\"use_dora\": true" OR NOT dora_config MATCHES "\"lora_dropout\": 0.1")
  message(SEND_ERROR "the DoRA folder's config lacks use_dora or lora_dropout:\n${dora_config}")
endif()
run_ok(eval_dora eval --model "${WORK}/base" --adapter "${WORK}/dora" --task reverse --n 4)

# --merged-out and merge-lora give the same model, byte for byte.
run_ok(lora_merged finetune --base "${WORK}/base" --task reverse --method lora --rslora --targets c_attn,mlp.c_proj
       --steps 3 --batch 4 --out "${WORK}/ad" --merged-out "${WORK}/merged")
run_ok(merge_lora merge-lora --base "${WORK}/base" --adapter "${WORK}/ad" --out "${WORK}/merged2")
file(SHA256 "${WORK}/merged/model.safetensors" a)
file(SHA256 "${WORK}/merged2/model.safetensors" b)
if(NOT a STREQUAL b)
  message(SEND_ERROR "merge-lora and --merged-out disagree")
endif()
run_ok(eval_merged eval --model "${WORK}/merged2" --task reverse --n 4)

# Combining adapters: cat stacks the factors (rank 4 + 4 = 8), so its merged model equals merging the two adapters
# one after the other (another path: two plain merge-lora runs), and the combined PEFT folder scores the same
# through eval --adapter; svd truncates the sum to --rank.
run_ok(lora_sort finetune --base "${WORK}/base" --task sort --method lora --rank 4 --alpha 8 --steps 3 --batch 4
       --out "${WORK}/ft_lora_sort")
run_ok(combine_cat merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora,${WORK}/ft_lora_sort" --combine cat
       --adapter-out "${WORK}/cat" --out "${WORK}/merged_cat")
if(NOT LAST_OUT MATCHES "rank 8 on 8 modules")
  message(SEND_ERROR "cat of two rank-4 adapters should have rank 8 on 8 modules:\n${LAST_OUT}")
endif()
run_ok(merge_one merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora" --out "${WORK}/merged_1")
run_ok(merge_two merge-lora --base "${WORK}/merged_1" --adapter "${WORK}/ft_lora_sort" --out "${WORK}/merged_12")
set(combine_lines "")
foreach(how "--model;${WORK}/merged_cat" "--model;${WORK}/merged_12" "--model;${WORK}/base;--adapter;${WORK}/cat")
  run_ok(eval_combined eval ${how} --task sort --n 4)
  string(REGEX MATCH "exact match[^\n]*" line "${LAST_OUT}")
  list(APPEND combine_lines "${line}")
endforeach()
list(REMOVE_DUPLICATES combine_lines)
list(LENGTH combine_lines n_lines)
if(NOT n_lines EQUAL 1)
  message(SEND_ERROR "cat, sequential merges and the combined folder disagree: ${combine_lines}")
endif()
run_ok(combine_svd merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora,${WORK}/ft_lora_sort" --combine svd
       --rank 2 --adapter-out "${WORK}/svd2")
if(NOT LAST_OUT MATCHES "rank 2 on 8 modules")
  message(SEND_ERROR "svd --rank 2 should give rank 2:\n${LAST_OUT}")
endif()
expect_exit2(combine_svd_no_rank "--combine svd needs --rank" merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora,${WORK}/ft_lora_sort" --combine svd --adapter-out "${WORK}/x21")
expect_exit2(combine_weights "--weights has 1 values for 2 adapters" merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora,${WORK}/ft_lora_sort" --weights 1 --adapter-out "${WORK}/x22")
expect_exit2(combine_rank_cat "--rank is for --combine svd only" merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora,${WORK}/ft_lora_sort" --rank 3 --adapter-out "${WORK}/x23")
expect_exit2(combine_one "give two or more --adapter" merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora" --adapter-out "${WORK}/x24")
expect_exit2(combine_unknown "--combine must be cat, linear or svd" merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora,${WORK}/ft_lora_sort" --combine ties --adapter-out "${WORK}/x25")
expect_exit2(combine_other_modules "combine adapters of one" merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora,${WORK}/ad" --combine linear --adapter-out "${WORK}/x26")
expect_exit2(combine_no_out "needs --out DIR and/or --adapter-out DIR" merge-lora --base "${WORK}/base" --adapter "${WORK}/ft_lora")
foreach(x x21 x22 x23 x24 x25 x26)
  if(EXISTS "${WORK}/${x}")
    message(SEND_ERROR "bad merge-lora input still wrote ${WORK}/${x}")
  endif()
endforeach()

run_ok(partial_named finetune --base "${WORK}/base" --task reverse --method partial --train-modules ln_f,mlp.c_proj
       --steps 2 --batch 4 --out "${WORK}/partial_named")
expect_exit2(partial_unknown_module "matches no parameter" finetune --base "${WORK}/base" --task reverse
             --method partial --train-modules q_proj --out "${WORK}/x0")
expect_exit2(rank_zero "rank 0" finetune --base "${WORK}/base" --task reverse --method lora --rank 0 --out "${WORK}/x1")
expect_exit2(rank_too_big "1 <= r <= 32" finetune --base "${WORK}/base" --task reverse --method lora --rank 33 --out "${WORK}/x2")
expect_exit2(unknown_target "q_proj" finetune --base "${WORK}/base" --task reverse --method lora --targets q_proj --out "${WORK}/x3")
expect_exit2(partial_layers "--layers must be 1..2" finetune --base "${WORK}/base" --task reverse --method partial --layers 3 --out "${WORK}/x4")
expect_exit2(bottleneck "bottleneck" finetune --base "${WORK}/base" --task reverse --method adapter --bottleneck 0 --out "${WORK}/x5")
expect_exit2(other_base "another base model" merge-lora --base "${WORK}/tiny" --adapter "${WORK}/ad" --out "${WORK}/x6")
expect_exit2(not_adapter "not a PEFT adapter folder" merge-lora --base "${WORK}/base" --adapter "${WORK}/base" --out "${WORK}/x7")
expect_exit2(merged_out_other "merged-out is for --method lora and ia3" finetune --base "${WORK}/base" --task reverse --method bitfit --merged-out "${WORK}/x8" --out "${WORK}/x9")
expect_exit2(virtual_zero "virtual tokens must be 1..31" finetune --base "${WORK}/base" --task add --method prompt --virtual-tokens 0 --out "${WORK}/x10")
expect_exit2(virtual_too_many "virtual tokens must be 1..31" finetune --base "${WORK}/base" --task add --method ptuning --virtual-tokens 32 --out "${WORK}/x11")
expect_exit2(virtual_no_room "use at most 2 virtual tokens" finetune --base "${WORK}/base" --task reverse --method prompt --virtual-tokens 12 --out "${WORK}/x12")
expect_exit2(prompt_init "unknown prompt init 'vocab'" finetune --base "${WORK}/base" --task add --method prompt --prompt-init vocab --out "${WORK}/x13")
expect_exit2(prompt_init_text "needs a non-empty init text" finetune --base "${WORK}/base" --task add --method prompt --prompt-init text --out "${WORK}/x14")
expect_exit2(dora_other "--dora and --lora-dropout are for --method lora and qlora only" finetune --base "${WORK}/base" --task add --method prefix --dora --out "${WORK}/x15")
expect_exit2(dropout_one "LoRA dropout must be in \\[0, 1\\)" finetune --base "${WORK}/base" --task reverse --method lora --lora-dropout 1 --out "${WORK}/x16")
expect_exit2(projection_other "--prefix-projection is for --method prefix only" finetune --base "${WORK}/base" --task add --method lora --prefix-projection --out "${WORK}/x17")
expect_exit2(prefix_other_base "another base model" eval --model "${WORK}/tiny" --adapter "${WORK}/sp_prefix_512" --task add --n 2)
expect_exit2(ia3_other_base "another base model" eval --model "${WORK}/tiny" --adapter "${WORK}/ft_ia3" --task reverse --n 2)
expect_exit2(ia3_generate_other_base "another base model" generate --model "${WORK}/tiny" --adapter "${WORK}/ft_ia3" --prompt "rev ab")
foreach(x x1 x2 x3 x4 x5 x6 x7 x8 x9 x10 x11 x12 x13 x14 x15 x16 x17)
  if(EXISTS "${WORK}/${x}")
    message(SEND_ERROR "bad input still wrote ${WORK}/${x}")
  endif()
endforeach()

# --precision: simulated fp16 fine-tuning (dynamic loss scaling by default) prints its loss scale and flushed
# gradients; an unknown precision or a bad loss scale exits 2 having written nothing.
run_ok(fp16 finetune --base "${WORK}/base" --task reverse --precision fp16 --steps 3 --batch 4 --out "${WORK}/ft_fp16")
if(NOT LAST_OUT MATCHES "precision fp16 \\(simulated\\), loss scaling dynamic: final scale")
  message(SEND_ERROR "fp16: no precision report in\n${LAST_OUT}")
endif()
expect_exit2(bad_precision "unknown precision 'fp8'" finetune --base "${WORK}/base" --task reverse --precision fp8 --out "${WORK}/x18")
expect_exit2(bad_loss_scale "loss scale '-1'" finetune --base "${WORK}/base" --task reverse --precision fp16 --loss-scale -1 --out "${WORK}/x19")
foreach(x x18 x19)
  if(EXISTS "${WORK}/${x}")
    message(SEND_ERROR "bad input still wrote ${WORK}/${x}")
  endif()
endforeach()
