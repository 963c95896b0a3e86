// Code-book formats: a code is an index into a sorted table of values. NF4 (QLoRA's 16 normal quantiles,
// fixed) and palettized weights (a table fitted per tensor with 1-D k-means). Scales live in quantizer.hpp.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace tl {

// The NF4 data type of QLoRA (Dettmers et al. 2023), as bitsandbytes ships it (csrc/kernels.cu): sorted, in [-1, 1].
inline constexpr float kNf4Codebook[16] = {
    -1.0f,                 -0.6961928009986877f,  -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f,  0.16093020141124725f,  0.24611230194568634f,  0.33791524171829224f,
    0.44070982933044434f,  0.5626170039176941f,   0.7229568362236023f,   1.0f};

// Index of the nearest entry of a sorted code book; an exact tie goes to the entry nearer zero.
// tl::Error for NaN.
std::uint32_t codebook_encode(std::span<const float> book, double x);

// 1-D k-means (Lloyd) with k centres, started at the data's (i + 1/2)/k quantiles and run until no value changes
// cluster (at most max_iters rounds). Deterministic; returns the centres sorted. Fewer distinct values than k:
// the distinct values, padded by repeating the largest.
std::vector<float> kmeans_codebook(std::span<const float> data, int k, int max_iters = 100);

}  // namespace tl
