// GPT-2 configuration and the presets (nano for tests, tiny as the reference workload, small, medium).
// Field names follow Hugging Face's GPT2Config so config.json maps one to one (model_io.cpp).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tl {

struct GptConfig {
    std::int64_t vocab_size = 257;   // 256 bytes + end-of-text (data/tokenizer.hpp)
    std::int64_t n_positions = 128;  // context length T
    std::int64_t n_embd = 128;       // C
    std::int64_t n_layer = 4;        // L
    std::int64_t n_head = 4;         // H
    float layer_norm_epsilon = 1e-5f;
    // [MoE] Sparse mixture of experts (model/moe.hpp; Mixtral's config names). 0: the dense GPT-2 MLP. k > 0:
    // each block's MLP is k experts (GPT-2 MLPs) behind a router that sends each token to its top
    // num_experts_per_tok experts; training adds router_aux_loss_coef times the load-balancing loss.
    std::int64_t num_local_experts = 0;
    std::int64_t num_experts_per_tok = 2;
    float router_aux_loss_coef = 0.01f;
    std::int64_t head_size() const { return n_embd / n_head; }
    bool is_moe() const { return num_local_experts > 0; }
};

struct Preset {
    std::string_view name;
    GptConfig config;
    int batch;  // the preset's default batch size (rows of n_positions tokens)
    std::string_view purpose;
};

std::span<const Preset> all_presets();
const Preset& find_preset(std::string_view name);  // tl::Error listing the presets when unknown
// Rejects configurations the engine cannot run (non-positive sizes, C not divisible by H, absurd sizes).
void validate_config(const GptConfig& c, std::string_view source);
std::int64_t parameter_count(const GptConfig& c);

}  // namespace tl
