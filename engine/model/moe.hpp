// Sparse mixture-of-experts MLP for GPT-2 blocks (sparse upcycling, Mixtral-style routing): each block's MLP
// is k experts (c_fc, GELU tanh, c_proj each) behind a router; a token goes to its top-k experts. Not the GPT
// model (gpt.hpp calls this when GptConfig::num_local_experts > 0) and not the merge that builds one
// (merge/moe_merge). The math, with its derivatives, is at the top of moe.cpp; docs/merging.md tells the
// story.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend.hpp"
#include "model/config.hpp"

namespace tl {

// Parameter names, as Mixtral / mergekit-moe name them under a GPT-2 block:
//   transformer.h.L.block_sparse_moe.gate.weight            (k, C)   router, nn.Linear layout: logits = x G^T
//   transformer.h.L.block_sparse_moe.experts.E.c_fc.weight  (C, 4C)  and c_fc.bias, c_proj.weight, c_proj.bias
std::string moe_gate_name(std::int64_t layer);
std::string moe_expert_name(std::int64_t layer, std::int64_t expert, std::string_view leaf);

struct MoeExpertWeights {
    CMatView fc_w;  // (C, 4C)
    CVecView fc_b;
    CMatView proj_w;  // (4C, C)
    CVecView proj_b;
};
struct MoeExpertGrads {  // null views for frozen tensors: their gradients are skipped
    MatView fc_w;
    VecView fc_b;
    MatView proj_w;
    VecView proj_b;
};
struct MoeWeights {
    CMatView gate;  // (k, C)
    std::vector<MoeExpertWeights> experts;
};
struct MoeGrads {
    MatView gate;  // null when the router is frozen
    std::vector<MoeExpertGrads> experts;
};

// What one layer's router did in one forward.
struct MoeLayerStats {
    std::vector<std::int64_t> counts;  // (k) tokens sent to each expert (once per chosen expert)
    std::vector<double> mean_prob;  // (k) P_i: the router's softmax probability of expert i, mean over tokens
    double aux_loss = 0;            // k * sum_i f_i P_i with f_i = counts_i / (N top_k); 1 when balanced
};

// The MoE MLPs of all layers of one model: activations kept for backward (ledger: activations), scratch
// (workspace), routing statistics. CPU backend only (routing and dispatch are host loops around backend
// GEMMs).
class MoeBlocks {
public:
    MoeBlocks(Backend& backend, const GptConfig& config);
    void plan(std::int64_t N);  // rows per forward; re-allocates only when N changes

    //   x (N, C) the ln_2 output; y (N, C) the MoE output, overwritten: y_n = sum_j g_nj E_{e_nj}(x_n)
    void forward(std::int64_t layer, MatView y, CMatView x, const MoeWeights& w);
    //   dy (N, C) d loss / d y; dx (N, C) d loss / d x, overwritten. Parameter gradients accumulate (+=).
    //   aux_scale = d loss / d (this layer's aux_loss): the load-balancing term's weight in the loss.
    void backward(std::int64_t layer, MatView dx, CMatView dy, CMatView x, const MoeWeights& w,
                  const MoeGrads& g, double aux_scale);

    std::int64_t experts() const { return E_; }
    std::int64_t top_k() const { return K_; }
    const MoeLayerStats& stats(std::int64_t layer) const { return layers_[std::size_t(layer)].stats; }
    // (N, top_k) the experts chosen for each row in the layer's last forward, best first.
    const std::vector<std::int32_t>& choices(std::int64_t layer) const {
        return layers_[std::size_t(layer)].choice;
    }
    double aux_loss() const;  // mean over layers of the last forward's aux_loss

    // Counts summed over every forward since reset_load(): (L, k), for the trainer's per-step load events.
    const std::vector<std::vector<std::int64_t>>& load() const { return load_; }
    void reset_load();

private:
    struct Layer {
        Tensor logits;  // (N, k) router logits, then overwritten by the softmax p
        std::vector<Tensor> xe, he, ae,
            oe;  // per expert, capacity N rows: gathered x, c_fc out, gelu, c_proj
        std::vector<std::vector<std::int64_t>>
            rows;                          // per expert: (row n, slot j) pairs packed as n * top_k + j
        std::vector<std::int32_t> choice;  // (N, top_k)
        std::vector<float> gate;           // (N, top_k) renormalised routing weights g
        MoeLayerStats stats;
    };
    Backend& be_;
    std::int64_t L_, E_, K_, C_, N_ = 0;
    std::vector<Layer> layers_;
    Tensor dz_, doe_, dae_, dhe_, dxe_;  // scratch: (N, k), (N, C), (N, 4C), (N, 4C), (N, C)
    std::vector<std::vector<std::int64_t>> load_;
};

}  // namespace tl
