// Gpt: the GPT-2 model (pre-LN, learned positions, tied embeddings, biases, GELU tanh, causal attention) as a flat
// parameter buffer described by a ParamTable, with a forward pass that keeps what backward needs and a backward
// pass that accumulates parameter gradients. Ops run on a Backend. Generation with a KV cache: generate.hpp.
#pragma once
#include <cstdint>
#include <memory>

#include "core/backend.hpp"
#include "model/config.hpp"
#include "model/params.hpp"

namespace tl {

struct LayerWeights {
    CVecView ln1_w, ln1_b;
    CMatView qkv_w;  // (C, 3C)
    CVecView qkv_b;
    CMatView proj_w;  // (C, C)
    CVecView proj_b;
    CVecView ln2_w, ln2_b;
    CMatView fc_w;  // (C, 4C)
    CVecView fc_b;
    CMatView fcproj_w;  // (4C, C)
    CVecView fcproj_b;
};

struct LayerGrads {
    VecView ln1_w, ln1_b;
    MatView qkv_w;
    VecView qkv_b;
    MatView proj_w;
    VecView proj_b;
    VecView ln2_w, ln2_b;
    MatView fc_w;
    VecView fc_b;
    MatView fcproj_w;
    VecView fcproj_b;
};

class Gpt {
public:
    Gpt(Backend& backend, const GptConfig& config);  // weights allocated, zero; call init_gpt2 or load
    ~Gpt();
    Gpt(const Gpt&) = delete;
    Gpt& operator=(const Gpt&) = delete;

    // GPT-2 initialisation: N(0, 0.02) for matrices and embeddings, residual projections (attn.c_proj,
    // mlp.c_proj) N(0, 0.02 / sqrt(2L)), biases 0, LayerNorm weight 1. Each tensor draws from its own Rng
    // stream, so the result does not depend on the order of the table.
    void init_gpt2(std::uint64_t seed);

    const GptConfig& config() const { return config_; }
    const ParamTable& params() const { return params_; }
    ParamTable& params() { return params_; }
    Backend& backend() const { return backend_; }
    const Tensor& weights() const { return weights_; }
    VecView param(const ParamInfo& p) const { return {weights_.data() + p.offset, p.numel()}; }
    VecView grad(const ParamInfo& p) const { return {grads_.data() + p.offset, p.numel()}; }
    const Tensor& grads() const { return grads_; }

    void enable_grads();  // allocates the flat gradient buffer (category grads), zeroed
    bool has_grads() const { return !grads_.empty(); }
    void zero_grads();

    // Forward over B rows of T tokens (T <= n_positions); targets may be null (no loss). Keeps activations.
    void forward(const std::int32_t* tokens, const std::int32_t* targets, std::int64_t B, std::int64_t T);
    // Backward of  sum_i weights[i] * loss_i / norm  for the last forward; parameter grads accumulate (+=).
    void backward(const float* weights, float norm);

    CMatView logits() const;   // (B*T, V) of the last forward
    CVecView losses() const;   // (B*T) per-token cross-entropy of the last forward (needs targets)
    std::int64_t rows() const { return B_ * T_; }

    LayerWeights layer(std::int64_t l) const;
    LayerGrads layer_grads(std::int64_t l) const;
    CMatView wte() const;  // (V, C)
    CMatView wpe() const;  // (n_positions, C)

private:
    struct Activations;
    struct Scratch;
    void plan_buffers(std::int64_t B, std::int64_t T);
    void forward_layer(std::int64_t l, const float* residual_in);
    void backward_layer(std::int64_t l, const float* residual_in);
    const float* layer_input(std::int64_t l) const;

    Backend& backend_;
    GptConfig config_;
    ParamTable params_;
    Tensor weights_, grads_;
    std::unique_ptr<Activations> acts_;
    std::unique_ptr<Scratch> scratch_;
    std::int64_t B_ = 0, T_ = 0, planned_rows_ = 0, planned_T_ = 0;
    bool has_targets_ = false;
};

}  // namespace tl
