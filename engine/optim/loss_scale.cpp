// LossScaler: the GradScaler state machine. Why: loss_scale.hpp.
#include "optim/loss_scale.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.hpp"

namespace tl {

LossScaleConfig parse_loss_scaling(const std::string& text) {
    LossScaleConfig c;
    if (text == "none") return c;
    if (text == "dynamic") {
        c.mode = LossScaling::dynamic;
        return c;
    }
    char* end = nullptr;
    const double s = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(s > 0) || !std::isfinite(float(s)))
        throw Error("[train] loss scale '" + text + "': use none, dynamic or a positive number such as 1024");
    c.mode = LossScaling::fixed;
    c.init_scale = float(s);
    return c;
}

std::string loss_scaling_name(const LossScaleConfig& c) {
    switch (c.mode) {
        case LossScaling::none:
            return "none";
        case LossScaling::dynamic:
            return "dynamic";
        case LossScaling::fixed:
            break;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "fixed %g", double(c.init_scale));
    return buf;
}

LossScaler::LossScaler(const LossScaleConfig& config) : config_(config) {
    if (!is_enabled()) return;
    if (!(config.init_scale > 0) || !std::isfinite(config.init_scale))
        throw Error("[train] loss scale must be positive and finite, got " +
                    std::to_string(config.init_scale));
    if (config.mode == LossScaling::dynamic &&
        (!(config.growth_factor > 1) || !(config.backoff_factor > 0 && config.backoff_factor < 1) ||
         config.growth_interval < 1))
        throw Error(
            "[train] dynamic loss scaling needs growth_factor > 1, 0 < backoff_factor < 1 and "
            "growth_interval >= 1; got " +
            std::to_string(config.growth_factor) + ", " + std::to_string(config.backoff_factor) + ", " +
            std::to_string(config.growth_interval));
    scale_ = config.init_scale;
}

bool LossScaler::update(bool is_finite) {
    if (!is_enabled()) return true;
    if (!is_finite) {
        ++skipped_;
        good_in_a_row_ = 0;
        if (config_.mode == LossScaling::dynamic) scale_ *= config_.backoff_factor;
        return false;
    }
    if (config_.mode == LossScaling::dynamic && ++good_in_a_row_ == config_.growth_interval) {
        good_in_a_row_ = 0;
        const float grown = scale_ * config_.growth_factor;
        if (std::isfinite(grown)) scale_ = grown;  // GradScaler does not grow into inf
    }
    return true;
}

void scale_grads(Gpt& model, float s) {
    Backend& be = model.backend();
    for (const ParamInfo& p : model.params().entries())
        if (p.is_trainable) be.scale(model.grad(p), s);
}

}  // namespace tl
