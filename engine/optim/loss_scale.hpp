// Loss scaling for fp16 training (Micikevicius et al. 2018, "Mixed Precision Training"): the backward pass
// starts from S x loss, so every gradient is S times larger and the small ones stay above fp16's underflow
// (2^-24); the FP32 gradients are divided by S again before clipping and the update. Dynamic scaling, as
// torch.amp.GradScaler does it: inf/NaN gradients skip the step and halve S; after `growth_interval` good
// steps in a row S doubles. The trainer uses it (train/trainer.cpp); the rounding that makes it necessary:
// backend/rounding_backend.hpp.
#pragma once
#include <cstdint>
#include <string>

#include "model/gpt.hpp"

namespace tl {

// none: S = 1, nothing checked. fixed: a constant S; inf/NaN gradients still skip the step. dynamic:
// GradScaler.
enum class LossScaling { none, fixed, dynamic };

struct LossScaleConfig {
    LossScaling mode = LossScaling::none;
    float init_scale = 65536.0f;  // 2^16: torch.amp.GradScaler's init_scale (fixed: the scale)
    float growth_factor = 2.0f;   // GradScaler's defaults, checked against its source
    float backoff_factor = 0.5f;
    std::int64_t growth_interval = 2000;  // good steps in a row before S grows
};

// "none", "dynamic" (init 2^16), or a number: a fixed scale (a power of two keeps the unscaling exact).
LossScaleConfig parse_loss_scaling(const std::string& text);
std::string loss_scaling_name(const LossScaleConfig& c);  // "none", "dynamic", "fixed 1024"

class LossScaler {
public:
    explicit LossScaler(const LossScaleConfig& config);  // tl::Error on a scale <= 0, factors, interval < 1
    bool is_enabled() const { return config_.mode != LossScaling::none; }
    float scale() const { return scale_; }  // the S to use for the next backward (1 when disabled)
    // After the backward: whether the gradients were finite. Returns whether to apply the step (false: skip
    // it). Updates S for the next step as GradScaler.update() does.
    bool update(bool is_finite);
    std::int64_t skipped_steps() const { return skipped_; }

private:
    LossScaleConfig config_;
    float scale_ = 1.0f;
    std::int64_t good_in_a_row_ = 0, skipped_ = 0;
};

// Multiplies every trainable gradient by s in FP32 (unscaling: s = 1/S).
void scale_grads(Gpt& model, float s);

}  // namespace tl
