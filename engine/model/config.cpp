#include "model/config.hpp"

#include "core/error.hpp"

namespace tl {

namespace {
constexpr Preset kPresets[] = {
    //  name      vocab  T    C    L  H           batch  purpose
    {"nano", {257, 32, 32, 2, 4, 1e-5f}, 4, "unit tests and gradient checks"},
    {"tiny", {257, 128, 128, 4, 4, 1e-5f}, 16, "the reference workload: lessons on a laptop CPU"},
    {"small", {257, 256, 256, 6, 8, 1e-5f}, 8, "a bigger model for the 'start small, then grow' lesson"},
    {"medium", {257, 256, 512, 8, 8, 1e-5f}, 8, "the largest CPU preset"},
};
}  // namespace

std::span<const Preset> all_presets() { return kPresets; }

const Preset& find_preset(std::string_view name) {
    std::string known;
    for (const auto& p : kPresets) {
        if (p.name == name) return p;
        known += (known.empty() ? "" : ", ") + std::string(p.name);
    }
    throw Error("[model] unknown preset '" + std::string(name) + "'; known presets: " + known);
}

void validate_config(const GptConfig& c, std::string_view source) {
    auto fail = [&](const std::string& what) {
        throw Error("[model] " + std::string(source) + ": " + what);
    };
    constexpr std::int64_t kMaxDim = 1 << 16;
    if (c.vocab_size < 1 || c.vocab_size > kMaxDim) fail("vocab_size " + std::to_string(c.vocab_size) + " out of range");
    if (c.n_positions < 1 || c.n_positions > kMaxDim) fail("n_positions " + std::to_string(c.n_positions) + " out of range");
    if (c.n_embd < 1 || c.n_embd > kMaxDim) fail("n_embd " + std::to_string(c.n_embd) + " out of range");
    if (c.n_layer < 1 || c.n_layer > 256) fail("n_layer " + std::to_string(c.n_layer) + " out of range 1..256");
    if (c.n_head < 1 || c.n_embd % c.n_head != 0)
        fail("n_embd " + std::to_string(c.n_embd) + " is not divisible by n_head " + std::to_string(c.n_head));
    if (!(c.layer_norm_epsilon > 0 && c.layer_norm_epsilon < 1)) fail("layer_norm_epsilon must be in (0, 1)");
    if (c.num_local_experts < 0 || c.num_local_experts > 64)
        fail("num_local_experts " + std::to_string(c.num_local_experts) + " out of range 0..64 (0: dense MLP)");
    if (c.is_moe() && (c.num_experts_per_tok < 1 || c.num_experts_per_tok > c.num_local_experts))
        fail("num_experts_per_tok (top-k) " + std::to_string(c.num_experts_per_tok) + " must be in 1.." +
             std::to_string(c.num_local_experts) + " (the number of experts)");
    if (!(c.router_aux_loss_coef >= 0 && c.router_aux_loss_coef < 100))
        fail("router_aux_loss_coef must be in [0, 100)");
}

std::int64_t parameter_count(const GptConfig& c) {
    const std::int64_t C = c.n_embd;
    const std::int64_t mlp = (C * 4 * C + 4 * C) + (4 * C * C + C);
    // [MoE] k expert MLPs and a (k, C) router instead of one MLP.
    const std::int64_t ffn = c.is_moe() ? c.num_local_experts * (mlp + C) : mlp;
    const std::int64_t per_layer = 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C + ffn;
    return c.vocab_size * C + c.n_positions * C + c.n_layer * per_layer + 2 * C;
}

}  // namespace tl
