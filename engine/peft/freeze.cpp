// BitFit and partial fine-tuning: trainable flags only (see freeze.hpp).
#include "peft/freeze.hpp"

#include "core/error.hpp"
#include "peft/peft_common.hpp"

namespace tl {

void bitfit_apply(Gpt& model) {
    for (ParamInfo& p : model.params().entries())
        p.is_trainable = p.role == ParamRole::bias || p.role == ParamRole::norm_bias;
}

void partial_apply(Gpt& model, std::int64_t k) {
    const std::int64_t L = model.config().n_layer;
    if (k < 1 || k > L)
        throw Error("[peft] partial fine-tuning trains the last k blocks: --layers must be 1.." + std::to_string(L) +
                    " for this model, got " + std::to_string(k));
    freeze_base(model);
    for (ParamInfo& p : model.params().entries()) {
        if (p.name.starts_with("transformer.ln_f.")) p.is_trainable = true;
        for (std::int64_t l = L - k; l < L; ++l)
            if (p.name.starts_with("transformer.h." + std::to_string(l) + ".")) p.is_trainable = true;
    }
}

void partial_apply_named(Gpt& model, const std::vector<std::string>& modules) {
    if (modules.empty()) throw Error("[peft] partial by name needs at least one module name (--train-modules)");
    freeze_base(model);
    for (const std::string& m : modules) {
        bool matched = false;
        for (ParamInfo& p : model.params().entries())
            if (!m.empty() && p.name.find(m) != std::string::npos && p.name.starts_with("transformer.")) {
                p.is_trainable = true;
                matched = true;
            }
        if (!matched)
            throw Error("[peft] --train-modules: '" + m + "' matches no parameter; names look like " +
                        "transformer.h.0.mlp.c_proj.weight or transformer.ln_f.bias (tunelab inspect lists them)");
    }
}

}  // namespace tl
