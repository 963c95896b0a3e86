// Houlsby adapters (Houlsby et al. 2019): a bottleneck after the attention branch and after the MLP branch of
// every block, inside the residual:  y' = y + gelu(y Wd + bd) Wu + bu,  Wd (C, m), Wu (m, C).
// Wu and bu start at zero, so a fresh adapter is the identity. 2 (2Cm + m + C) parameters per block.
// Not mergeable (the nonlinearity): generation needs the full forward (docs/peft.md).
#pragma once
#include <cstdint>
#include <string>

#include "peft/peft_common.hpp"

namespace tl {

class HoulsbyAdapter final : public ModelAdapter {
public:
    HoulsbyAdapter(const Gpt& model, std::int64_t bottleneck);  // tl::Error unless 1 <= m <= C
    std::string name() const override { return "adapter"; }
    std::vector<AdapterParam> params() const override;
    void init(Gpt& model, std::uint64_t seed) override;
    void forward(Gpt& model, const HookForward& h) override;
    void backward_output(Gpt& model, const HookBackward& h) override;
    bool acts_at(HookSite site) const override { return site == HookSite::attn_proj || site == HookSite::mlp_proj; }

    // "transformer.h.<l>.attn.adapter" or "transformer.h.<l>.mlp.adapter"; tensors .down.weight (C, m),
    // .down.bias (m), .up.weight (m, C), .up.bias (C).
    static std::string prefix(std::int64_t layer, HookSite site);

private:
    struct Saved {
        const Tensor &y, &z, &a;
    };
    Saved saved(Backend& be, std::int64_t layer, HookSite site, std::int64_t N);
    std::int64_t L_, C_, m_;
    SavedBuffers y_in_, z_, a_;      // per (layer, site): the branch output y, z = y Wd + bd, a = gelu(z)
    SavedBuffers scratch_;           // workspace: u (N, C), da (N, m), dz (N, m), dy_in (N, C)
};

HoulsbyAdapter& houlsby_attach(Gpt& model, std::int64_t bottleneck, std::uint64_t seed);  // freezes the base

}  // namespace tl
