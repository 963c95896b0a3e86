// LoRA adapters on disk as Hugging Face PEFT folders: adapter_config.json (peft_type "LORA", r, lora_alpha,
// target_modules, use_rslora, fan_in_fan_out true for GPT-2's Conv1D, base_model_name_or_path) and
// adapter_model.safetensors with tensors "base_model.model.<module>.lora_A.weight" (r, in), ".lora_B.weight"
// (out, r) and, with use_dora, ".lora_magnitude_vector" (out) (PEFT drops the magnitude's ".weight"); lora_dropout
// is recorded. Written atomically; read back with every name and shape checked against the model.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "io/safetensors.hpp"
#include "peft/lora.hpp"

namespace tl {

inline constexpr const char* kPeftTensorPrefix = "base_model.model.";

void save_lora_adapter(const std::filesystem::path& dir, const Gpt& model, const std::string& base_model_name);
// Reads the folder, attaches a LoRA with its config to `model` (freezing the base) and loads its tensors.
// tl::Error when the folder is not a LoRA PEFT folder or was made for a model of other shapes.
LoraAdapter& load_lora_adapter(const std::filesystem::path& dir, Gpt& model);
LoraConfig read_lora_config(const std::filesystem::path& dir);

// Every attached module's parameters in the same folder layout, for methods Hugging Face PEFT has no type for
// (the Houlsby adapter): adapter_config.json gets peft_type and the given integer fields. tunelab writes these
// folders but does not load them yet (docs/peft.md).
void save_adapter_params(const std::filesystem::path& dir, const Gpt& model, const std::string& peft_type,
                         const std::string& base_model_name,
                         const std::vector<std::pair<std::string, std::int64_t>>& fields);

// The folder plumbing every PEFT type shares: adapter_config.json parsed (tl::Error naming the folder when it has
// none or the file when it is not JSON), and the config and the tensors written atomically as one folder
// (replacing an earlier adapter folder).
nlohmann::json read_adapter_config(const std::filesystem::path& dir);
void write_peft_folder(const std::filesystem::path& dir, const std::string& config_json, const SafeTensorsFile& tensors);

}  // namespace tl
