// Learning-rate schedule: linear warm-up to the peak, then cosine decay to min_ratio * peak at the last step.
#pragma once
#include <cstdint>

namespace tl {

struct LrSchedule {
    float peak = 1e-3f;
    std::int64_t warmup_steps = 0;
    std::int64_t total_steps = 1;
    float min_ratio = 0.1f;
    float at(std::int64_t step) const;  // step is 0-based
};

}  // namespace tl
