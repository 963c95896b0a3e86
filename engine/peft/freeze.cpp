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

}  // namespace tl
