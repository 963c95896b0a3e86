// Fast causal attention on the CPU: Eigen GEMMs per (batch, head), OpenMP across (batch, head) pairs.
// Same contract as ref::attention_forward/backward (core/ops.hpp); tested against them.
#pragma once
#include "core/ops.hpp"

namespace tl::cpu {

void attention_forward(const AttentionArgs<float>& a, int threads);
void attention_backward(const AttentionGradArgs<float>& a, int threads);

}  // namespace tl::cpu
