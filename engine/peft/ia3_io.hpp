// IA3 on disk as a Hugging Face PEFT folder, loadable by PEFT on top of the tunelab model folder. PEFT's
// default for GPT-2 (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING) targets "c_attn" and "mlp.c_proj",
// with "mlp.c_proj" a feedforward module. Its IA3Layer keeps one vector ia3_l per module: (out_features, 1)
// scaling a non-feedforward module's output (bias included), (1, in_features) scaling a feedforward module's
// input. adapter_config.json: peft_type "IA3", task_type "CAUSAL_LM", target_modules, feedforward_modules,
// fan_in_fan_out true (Conv1D), base_model_name_or_path. adapter_model.safetensors, per block l:
//   base_model.model.transformer.h.l.attn.c_attn.ia3_l  (3C, 1) = [1 (C) ; l_k (C) ; l_v (C)]
//   base_model.model.transformer.h.l.mlp.c_proj.ia3_l   (1, 4C) = l_ff  (c_proj's input is GELU's output)
// c_attn is one fused q/k/v Conv1D, so PEFT scales all 3C columns, queries too; tunelab's IA3 (the paper's)
// scales keys and values only and writes ones for the queries: the folder is exact for PEFT. Reading: see
// below.
#pragma once
#include <filesystem>
#include <string>

#include "peft/ia3.hpp"

namespace tl {

void save_ia3_adapter(const std::filesystem::path& dir, const Gpt& model, const std::string& base_model_name);

// Reads the folder, attaches IA3 to `model` (freezing the base) and loads l_k, l_v, l_ff. A folder PEFT
// trained has query entries other than 1: they are folded into the base's c_attn query columns (weight and
// bias), which is exact for inference (evaluate, generate, merge) but is not trained further and not saved
// again by save_ia3_adapter. tl::Error when the folder is not IA3, targets other modules than GPT-2's
// default, holds a non-finite value, or was made for a model of other shapes (exit 2 on the command line).
Ia3Adapter& load_ia3_adapter(const std::filesystem::path& dir, Gpt& model);

// The tensor names under which PEFT saves block l's vectors.
std::string ia3_peft_attn_name(std::int64_t l);  // "base_model.model.transformer.h.<l>.attn.c_attn.ia3_l"
std::string ia3_peft_ff_name(std::int64_t l);    // "base_model.model.transformer.h.<l>.mlp.c_proj.ia3_l"

}  // namespace tl
