#include "optim/adamw.hpp"

#include <cmath>

#include "core/error.hpp"

namespace tl {

AdamW::AdamW(Gpt& model, const AdamWConfig& config) : model_(model), config_(config) {
    TL_ASSERT(model.has_grads(), "[adamw] the model has no gradient buffer (call enable_grads)");
    for (const ParamInfo& p : model.params().entries()) {
        if (!p.is_trainable) continue;
        spans_.push_back({&p, state_floats_, decays_by_default(p.role) ? config.weight_decay : 0.0f});
        state_floats_ += p.numel();
    }
    if (state_floats_ > 0) {
        m_ = model.backend().tensor({state_floats_}, MemCategory::optimizer);
        v_ = model.backend().tensor({state_floats_}, MemCategory::optimizer);
    }
}

void AdamW::step(float lr) {
    ++step_;
    Backend& be = model_.backend();
    for (const Span& s : spans_) {
        const std::int64_t n = s.param->numel();
        be.adamw({model_.param(*s.param), VecView(m_.data() + s.state_offset, n),
                  VecView(v_.data() + s.state_offset, n), CVecView(model_.grad(*s.param)), lr, config_.beta1,
                  config_.beta2, config_.eps, s.weight_decay, step_});
    }
}

double clip_grad_norm(Gpt& model, float max_norm) {
    Backend& be = model.backend();
    double sum = 0;
    for (const ParamInfo& p : model.params().entries())
        if (p.is_trainable) sum += be.sum_squares(model.grad(p));
    const double norm = std::sqrt(sum);
    if (max_norm > 0 && norm > max_norm) {
        const float s = float(max_norm / (norm + 1e-6));
        for (const ParamInfo& p : model.params().entries())
            if (p.is_trainable) be.scale(model.grad(p), s);
    }
    return norm;
}

}  // namespace tl
