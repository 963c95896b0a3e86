// AdamW over the model's trainable parameters, with state (m, v) allocated for trainable parameters only —
// so the optimizer's memory in the ledger shrinks with the trainable count, as the PEFT lessons show.
// Also: global-norm gradient clipping. Schedules: schedule.hpp.
#pragma once
#include <cstdint>
#include <vector>

#include "model/gpt.hpp"

namespace tl {

struct AdamWConfig {
    float lr = 1e-3f;            // peak learning rate (the schedule scales it)
    float beta1 = 0.9f;
    float beta2 = 0.95f;         // GPT-style; 0.999 is PyTorch's default
    float eps = 1e-8f;
    float weight_decay = 0.1f;   // decoupled; applied to matrices only (decays_by_default)
};

class AdamW {
public:
    AdamW(Gpt& model, const AdamWConfig& config);
    // One update with learning rate lr (already scheduled). Increments the step count first (bias correction).
    void step(float lr);
    std::int64_t steps_taken() const { return step_; }
    std::int64_t state_floats() const { return state_floats_; }

private:
    struct Span {
        const ParamInfo* param;
        std::int64_t state_offset;
        float weight_decay;
    };
    Gpt& model_;
    AdamWConfig config_;
    std::vector<Span> spans_;
    Tensor m_, v_;
    std::int64_t step_ = 0, state_floats_ = 0;
};

// Scales the trainable gradients so their global L2 norm is at most max_norm (no-op when max_norm <= 0).
// Returns the norm before clipping.
double clip_grad_norm(Gpt& model, float max_norm);

}  // namespace tl
