// Mixed-bit quantization: each tensor its own width, chosen by measured sensitivity (the loss increase when
// only that tensor is quantized) to meet an average bits-per-weight budget, as Apple's 2024 on-device model
// mixed 2- and 4-bit palettes to average 3.5 bits. Plans: model_quant.hpp. Lesson 04 compares it with
// uniform.
#pragma once
#include <string>
#include <vector>

#include "data/tasks.hpp"
#include "quant/model_quant.hpp"

namespace tl {

struct Sensitivity {
    QuantTarget target;
    double loss_low = 0, loss_high = 0;  // response loss with only this tensor quantized, at low / high bits
    double bpw_low = 0, bpw_high = 0;  // bits per weight of each scheme on this tensor (formats' accounting)
};

// The unquantized loss is returned in base_loss. The model is unchanged on return.
std::vector<Sensitivity> measure_sensitivity(Gpt& model, const std::vector<QuantTarget>& targets,
                                             const QuantScheme& low, const QuantScheme& high,
                                             const std::vector<Example>& examples,
                                             double* base_loss = nullptr);

enum class Priority {
    most_sensitive,   // upgrade the tensors whose loss rises most per bit saved (the method)
    least_sensitive,  // the opposite order: a control with the same budget
};

// Starts every tensor at `low` and upgrades tensors to `high` in priority order of
// (loss_low - loss_high) / (extra bits), skipping any that would push the average over the budget.
QuantPlan allocate_bits(const std::vector<Sensitivity>& s, const QuantScheme& low, const QuantScheme& high,
                        double budget_bits_per_weight, Priority priority);

}  // namespace tl
