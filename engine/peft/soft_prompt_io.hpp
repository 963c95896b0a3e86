// Soft prompts on disk as Hugging Face PEFT folders. adapter_config.json: peft_type "PROMPT_TUNING" or
// "P_TUNING", task_type "CAUSAL_LM", num_virtual_tokens, token_dim, num_transformer_submodules 1,
// num_attention_heads, num_layers, inference_mode true, and the method's own fields
// (prompt_tuning_init[_text], tokenizer_name_or_path; encoder_reparameterization_type "MLP",
// encoder_hidden_size, encoder_num_layers 2). adapter_model.safetensors holds one tensor, "prompt_embeddings"
// (n, C): what PEFT's get_peft_model_state_dict saves for prompt learning, the virtual embeddings as they
// enter the model (for P-tuning the encoder's output; PEFT drops the encoder too).
#pragma once
#include <filesystem>
#include <string>

#include "peft/prefix.hpp"
#include "peft/soft_prompt.hpp"

namespace tl {

inline constexpr const char* kPromptEmbeddingsTensor = "prompt_embeddings";

void save_soft_prompt(const std::filesystem::path& dir, const Gpt& model, const std::string& base_model_name);
// Reads the folder and attaches its virtual embeddings to `model` as a prompt-tuning module (a P-tuning
// folder too: its encoder is gone, as in PEFT's inference mode), freezing the base. tl::Error when the folder
// is not a soft prompt or was made for a model of another width (token_dim) or context.
PromptTuning& load_soft_prompt(const std::filesystem::path& dir, Gpt& model);

// Prefix tuning: peft_type "PREFIX_TUNING", the shared fields above, prefix_projection and
// encoder_hidden_size; "prompt_embeddings" (n, 2 L C) is the prefix as the model uses it (with the projection:
// the MLP's output, as PEFT's get_prompt_embedding_to_save writes it; PEFT's inference mode then loads it into
// an (n, 2 L C) embedding without the MLP). load_prefix attaches it the same way (projection none).
void save_prefix(const std::filesystem::path& dir, const Gpt& model, const std::string& base_model_name);
PrefixTuning& load_prefix(const std::filesystem::path& dir, Gpt& model);

}  // namespace tl
