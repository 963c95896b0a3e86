#include "optim/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace tl {

float LrSchedule::at(std::int64_t step) const {
    if (step < warmup_steps) return peak * float(step + 1) / float(warmup_steps);
    const std::int64_t decay_steps = std::max<std::int64_t>(1, total_steps - warmup_steps - 1);
    const double progress = std::min(1.0, double(step - warmup_steps) / double(decay_steps));
    const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
    return float(peak * (min_ratio + (1.0 - min_ratio) * cosine));
}

}  // namespace tl
