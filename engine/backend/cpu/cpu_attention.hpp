// Fast causal attention on the CPU: serial OpenBLAS GEMMs on the causal blocks of each (batch, head) pair,
// OpenMP across the pairs.
// Same contract as ref::attention_forward/backward (core/ops.hpp); tested against them.
#pragma once
#include "core/ops.hpp"

namespace tl::cpu {

void attention_forward(const AttentionArgs<float>& a, int threads);
void attention_backward(const AttentionGradArgs<float>& a, int threads);

}  // namespace tl::cpu
