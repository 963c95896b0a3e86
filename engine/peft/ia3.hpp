// IA3 (Liu et al. 2022, "(IA)^3"): learned vectors that rescale the keys, the values and the MLP hidden
// activation of every block, initialised to one (so a fresh model is unchanged): 6C parameters per block.
// Mergeable: l_k, l_v scale c_attn's key/value columns (weight and bias), l_ff scales mlp.c_proj's rows.
// Elementwise host loops: CPU backend only.
#pragma once
#include <cstdint>
#include <string>

#include "peft/peft_common.hpp"

namespace tl {

class Ia3Adapter final : public ModelAdapter {
public:
    explicit Ia3Adapter(const Gpt& model);
    std::string name() const override { return "ia3"; }
    std::vector<AdapterParam> params() const override;
    void init(Gpt& model, std::uint64_t seed) override;
    void forward(Gpt& model, const HookForward& h) override;
    void backward_output(Gpt& model, const HookBackward& h) override;
    bool acts_at(HookSite site) const override;
    void merge(Gpt& model) const;  // folds the vectors into the base weights (then detach)

    static std::string k_name(std::int64_t l) { return module_path(l, "attn.ia3_l_k"); }   // (C)
    static std::string v_name(std::int64_t l) { return module_path(l, "attn.ia3_l_v"); }   // (C)
    static std::string ff_name(std::int64_t l) { return module_path(l, "mlp.ia3_l_ff"); }  // (4C)

private:
    std::int64_t L_, C_;
    SavedBuffers saved_;  // the unscaled values: (N, 2C) keys|values and (N, 4C) hidden, per layer
};

Ia3Adapter& ia3_attach(Gpt& model, std::uint64_t seed);  // freezes the base
void ia3_merge_and_detach(Gpt& model);                   // a plain GPT-2 with the same logits

}  // namespace tl
