// The merge methods on one tensor (flat float arrays of n elements): the math, pure and single-threaded.
// merge.hpp applies them to whole state dicts in parallel; the LoRA and ensemble methods live in lora_merge.hpp
// and ensemble.hpp. Task-vector methods follow mergekit's "generalized task arithmetic" (Ilharco et al. 2023,
// Yadav et al. 2023 TIES, Yu et al. 2023 DARE): delta_i = x_i - base, sparsify, optionally elect a sign, combine.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace tl {

enum class Normalize { no, yes };  // divide a weighted sum by the sum of the weights that contributed

// k inputs of n floats each with their weights (and base for the task-vector methods).
struct TensorInputs {
    std::span<const float* const> xs;
    std::span<const double> weights;
    const float* base = nullptr;
    std::int64_t n = 0;
};

// out = sum_i w_i x_i  (/ sum_i w_i when normalised).  out may alias no input.
void linear_merge(float* out, const TensorInputs& in, Normalize normalize);

// Spherical interpolation of the flattened tensors a -> b at t in [0, 1]: the angle between a/|a| and b/|b| is
// theta, out = sin((1-t) theta)/sin(theta) a + sin(t theta)/sin(theta) b. Falls back to (1-t) a + t b when
// |cos theta| > kSlerpParallelDot (nearly parallel or antiparallel: the formula divides by ~0) or a norm is 0.
inline constexpr double kSlerpParallelDot = 0.9995;
void slerp_merge(float* out, const float* a, const float* b, std::int64_t n, double t);

enum class Sparsify { none, magnitude, random };  // task arithmetic | TIES trim | DARE drop-and-rescale
enum class Consensus { none, sign };              // plain weighted sum | TIES sign election + disjoint mean

struct TaskArithmeticArgs {
    Sparsify sparsify = Sparsify::none;
    Consensus consensus = Consensus::none;
    std::span<const double> density;  // per input, in (0, 1]: kept fraction (TIES top-k, DARE keep prob)
    double lambda = 1.0;              // scales the combined task vector; < 0 removes a skill
    Normalize normalize = Normalize::no;
    std::uint64_t seed = 0;           // DARE only: the drop mask of input i uses Philox stream streams[i]
    std::span<const std::uint64_t> streams;
};

// out = base + lambda * combine_i(sparsify(w_i (x_i - base))).
void task_arithmetic_merge(float* out, const TensorInputs& in, const TaskArithmeticArgs& args);

// TIES trim, in place: keeps exactly floor(density * n) entries of largest |delta| (ties broken by index).
// Uses nth_element on a copy of the magnitudes (O(n)), not a sort. scratch is reused across calls.
void trim_top_k(float* delta, std::int64_t n, double density, std::vector<float>& scratch);
// DARE, in place: keeps each entry with probability density (Philox(seed, stream), counter = index / 4) and
// rescales the kept ones by 1 / density, so the expectation is unchanged.
void dare_drop(float* delta, std::int64_t n, double density, std::uint64_t seed, std::uint64_t stream);

}  // namespace tl
