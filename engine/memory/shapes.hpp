// Model shapes for the memory model: the architecture facts that decide bytes (width, layers, heads, KV heads, MLP
// width and kind, vocabulary), for tunelab's GPT-2 presets and a table of real open models (Llama 1B-70B ...).
// Parameter counts are computed from the shape alone. The byte accounting itself: memory_model.hpp.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.hpp"

namespace tl::memory {

enum class MlpKind { gelu, swiglu };            // 2 matrices (fc, proj) vs 3 (gate, up, down)
enum class NormKind { layernorm, rmsnorm };     // weight + bias vs weight only
enum class LinearBias { yes, no };
enum class Embeddings { tied, untied };         // LM head shares the token embedding or has its own matrix
enum class Positions { learned, rotary };       // learned table (n_positions, C) vs RoPE (no parameters)
enum class QkvLayout { fused, separate };       // GPT-2's one c_attn (C, 3C) vs q_proj, k_proj, v_proj

struct ArchShape {
    std::string name;
    std::int64_t d_model = 0;      // C
    std::int64_t n_layers = 0;     // L
    std::int64_t n_heads = 0;      // H
    std::int64_t n_kv_heads = 0;   // grouped-query attention: K and V heads (== H without GQA)
    std::int64_t d_ffn = 0;        // MLP hidden width F
    std::int64_t vocab = 0;        // V
    std::int64_t max_seq = 0;      // context length
    MlpKind mlp = MlpKind::gelu;
    NormKind norm = NormKind::layernorm;
    LinearBias bias = LinearBias::yes;
    Embeddings embeddings = Embeddings::tied;
    Positions positions = Positions::learned;
    QkvLayout qkv = QkvLayout::fused;

    std::int64_t head_dim() const { return d_model / n_heads; }
    std::int64_t kv_dim() const { return n_kv_heads * head_dim(); }
    std::int64_t qkv_dim() const { return d_model + 2 * kv_dim(); }
};

enum class LinearGroup { attention, mlp };

// One linear map of a transformer block (weight in x out, plus a bias of `out` when the shape has biases).
struct LinearInfo {
    std::string_view name;
    std::int64_t in = 0, out = 0;
    LinearGroup group = LinearGroup::attention;
};

std::vector<LinearInfo> layer_linears(const ArchShape& s);

struct ParamCounts {
    std::int64_t token_embedding = 0, position_embedding = 0, lm_head = 0, final_norm = 0;
    std::int64_t layer_linear_weights = 0;  // per layer: the matrices (what quantization and LoRA act on)
    std::int64_t layer_biases = 0;          // per layer
    std::int64_t layer_norms = 0;           // per layer
    std::int64_t n_layers = 0;
    std::int64_t per_layer() const { return layer_linear_weights + layer_biases + layer_norms; }
    std::int64_t non_layer() const { return token_embedding + position_embedding + lm_head + final_norm; }
    std::int64_t total() const { return non_layer() + n_layers * per_layer(); }
};

ParamCounts count_params(const ArchShape& s);

// tunelab's GPT-2 (presets and model folders): MLP 4C, LayerNorm with bias, biases, tied, learned positions.
ArchShape shape_of(const GptConfig& c, std::string name);

struct RealModel {
    std::string_view key;      // what --real takes: "7b", "llama-2-7b", ...
    ArchShape shape;
};
std::span<const RealModel> real_models();
// Matches a key or the model's name, case-insensitively; tl::Error listing the known keys otherwise.
const RealModel& find_real_model(std::string_view key);

}  // namespace tl::memory
