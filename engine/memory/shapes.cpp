// Shapes and parameter counts. The real-model rows are the config.json values of each model on the Hugging Face
// hub (hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size, vocab_size,
// max_position_embeddings, tie_word_embeddings); tests check the counts against the published totals.
#include "memory/shapes.hpp"

#include <algorithm>
#include <cctype>

#include "core/error.hpp"

namespace tl::memory {

namespace {

ArchShape llama(std::string name, std::int64_t C, std::int64_t L, std::int64_t H, std::int64_t kv, std::int64_t F,
                std::int64_t V, std::int64_t T, Embeddings emb) {
    return {std::move(name), C,      L,          H,         kv, F, V, T, MlpKind::swiglu, NormKind::rmsnorm,
            LinearBias::no,  emb,    Positions::rotary, QkvLayout::separate};
}

const std::vector<RealModel>& table() {
    static const std::vector<RealModel> rows = {
        //  key            name                  C     L   H   kv  F      V       T       embeddings
        {"1b", llama("Llama-3.2-1B", 2048, 16, 32, 8, 8192, 128256, 131072, Embeddings::tied)},
        {"7b", llama("Llama-2-7B", 4096, 32, 32, 32, 11008, 32000, 4096, Embeddings::untied)},
        {"8b", llama("Llama-3.1-8B", 4096, 32, 32, 8, 14336, 128256, 131072, Embeddings::untied)},
        {"mistral-7b", llama("Mistral-7B-v0.1", 4096, 32, 32, 8, 14336, 32000, 32768, Embeddings::untied)},
        {"13b", llama("Llama-2-13B", 5120, 40, 40, 40, 13824, 32000, 4096, Embeddings::untied)},
        {"70b", llama("Llama-2-70B", 8192, 80, 64, 8, 28672, 32000, 4096, Embeddings::untied)},
        {"gpt2", {"GPT-2 (124M)", 768, 12, 12, 12, 3072, 50257, 1024, MlpKind::gelu, NormKind::layernorm,
                  LinearBias::yes, Embeddings::tied, Positions::learned, QkvLayout::fused}},
    };
    return rows;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

}  // namespace

std::vector<LinearInfo> layer_linears(const ArchShape& s) {
    const std::int64_t C = s.d_model, F = s.d_ffn;
    std::vector<LinearInfo> out;
    if (s.qkv == QkvLayout::fused) {
        TL_ASSERT(s.kv_dim() == C, "[memory] a fused c_attn needs as many KV heads as heads");
        out.push_back({"attn.c_attn", C, 3 * C, LinearGroup::attention});  // GPT-2 fuses q, k, v
    } else {
        out.push_back({"q_proj", C, C, LinearGroup::attention});
        out.push_back({"k_proj", C, s.kv_dim(), LinearGroup::attention});
        out.push_back({"v_proj", C, s.kv_dim(), LinearGroup::attention});
    }
    out.push_back({s.mlp == MlpKind::gelu ? "attn.c_proj" : "o_proj", C, C, LinearGroup::attention});
    if (s.mlp == MlpKind::swiglu) {
        out.push_back({"gate_proj", C, F, LinearGroup::mlp});
        out.push_back({"up_proj", C, F, LinearGroup::mlp});
        out.push_back({"down_proj", F, C, LinearGroup::mlp});
    } else {
        out.push_back({"mlp.c_fc", C, F, LinearGroup::mlp});
        out.push_back({"mlp.c_proj", F, C, LinearGroup::mlp});
    }
    return out;
}

ParamCounts count_params(const ArchShape& s) {
    ParamCounts p;
    const std::int64_t C = s.d_model;
    const std::int64_t norm_params = s.norm == NormKind::layernorm ? 2 * C : C;
    p.token_embedding = s.vocab * C;
    p.position_embedding = s.positions == Positions::learned ? s.max_seq * C : 0;
    p.lm_head = s.embeddings == Embeddings::untied ? s.vocab * C : 0;
    p.final_norm = norm_params;
    for (const LinearInfo& l : layer_linears(s)) {
        p.layer_linear_weights += l.in * l.out;
        if (s.bias == LinearBias::yes) p.layer_biases += l.out;
    }
    p.layer_norms = 2 * norm_params;
    p.n_layers = s.n_layers;
    return p;
}

ArchShape shape_of(const GptConfig& c, std::string name) {
    return {std::move(name), c.n_embd,         c.n_layer,        c.n_head,         c.n_head,
            4 * c.n_embd,    c.vocab_size,     c.n_positions,    MlpKind::gelu,    NormKind::layernorm,
            LinearBias::yes, Embeddings::tied, Positions::learned, QkvLayout::fused};
}

std::span<const RealModel> real_models() { return table(); }

const RealModel& find_real_model(std::string_view key) {
    const std::string k = lower(key);
    std::string known;
    for (const RealModel& m : table()) {
        if (k == m.key || k == lower(m.shape.name)) return m;
        known += (known.empty() ? "" : ", ") + std::string(m.key);
    }
    throw Error("[memory] unknown real model '" + std::string(key) + "'; known: " + known +
                " (or a full name such as Llama-2-7B)");
}

}  // namespace tl::memory
