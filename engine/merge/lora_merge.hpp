// Combining LoRA adapters without touching the base: cat (stack the factors, rank = sum of ranks; exact),
// linear (weighted average of same-rank factors; approximate: cross terms B_i A_j appear) and svd (the exact
// weighted sum of updates, truncated back to a chosen rank by SVD: the best rank-r approximation).
// Adapters here are plain data; reading/writing PEFT folders is the peft module's job.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "merge/state_dict.hpp"

namespace tl {

// delta W = scale * B A  with  A (r, in)  and  B (out, r)   (PEFT's lora_A / lora_B layouts; scale = alpha / r).
struct LoraFactors {
    TensorData A, B;
    double scale = 1.0;
    std::int64_t rank() const { return A.shape.at(0); }
};

using LoraFactorSet = std::map<std::string, LoraFactors>;  // target module name -> factors

enum class LoraCombine { cat, linear, svd };

struct LoraMergeSpec {
    LoraCombine combine = LoraCombine::cat;
    std::vector<double> weights;  // one per adapter; empty: all 1
    std::int64_t rank = 0;        // svd only: the rank of the result, 1..min(out, in)
};

// The result has scale 1 (weights and scales are folded into the factors). tl::Error when the adapters target
// different modules or shapes, linear ranks differ, or the svd rank is out of range.
LoraFactorSet merge_lora(std::span<const LoraFactorSet> adapters, const LoraMergeSpec& spec);

// scale * B A as an (out, in) row-major matrix.
std::vector<float> lora_delta(const LoraFactors& m);

}  // namespace tl
