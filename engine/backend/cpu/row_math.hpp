// Row kernels for the CPU backend whose results depend only on the values, never on where the row lies in
// memory. Eigen's vectorised reductions and element-wise maps peel a scalar head up to the first aligned
// address, so the same row at a different address is summed in a different order (and its head goes through
// std::exp instead of the vectorised exp): results then change with the allocation, and runs are not
// reproducible. These loops use a fixed number of lanes and the same formula for every element; GCC
// vectorises them at -O3 without reordering anything.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace tl::cpu {

constexpr int kLanes = 16;

// Lane k sums elements k, k + 16, k + 32, ...; the lanes are then added in a fixed tree.
template <class Term>
inline float lane_sum(std::int64_t n, const Term& term) {
    float acc[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int k = 0; k < kLanes; ++k) acc[k] += term(i + k);
    for (int k = 0; i < n; ++i, ++k) acc[k] += term(i);
    for (int width = kLanes / 2; width > 0; width /= 2)
        for (int k = 0; k < width; ++k) acc[k] += acc[k + width];
    return acc[0];
}

inline float row_sum(const float* x, std::int64_t n) {
    return lane_sum(n, [x](std::int64_t i) { return x[i]; });
}
inline float row_dot(const float* a, const float* b, std::int64_t n) {
    return lane_sum(n, [a, b](std::int64_t i) { return a[i] * b[i]; });
}
inline float row_max(const float* x, std::int64_t n) {
    float m = x[0];
    for (std::int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);  // max is exact: order does not matter
    return m;
}

// exp(x) in float: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, and Cephes' degree-6 polynomial for e^r
// (within 2 ulp of the true value over the clamped range; 0 below e^-87.3, where a softmax term vanishes
// anyway). k is rounded by adding 1.5 * 2^23 (the float then has no fraction bits left), not by std::floor,
// and its bits give k as an integer: that keeps the function free of library calls, so GCC vectorises loops
// over it.
inline float exp_approx(float x) {
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
    x = std::min(std::max(x, -87.3f), 88.3f);
    const float k_biased = std::fma(x, 1.44269504088896341f, kRound);
    const float k = k_biased - kRound;
    float r = std::fma(k, -0.693359375f, x);
    r = std::fma(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = std::fma(p, r, 1.3981999507e-3f);
    p = std::fma(p, r, 8.3334519073e-3f);
    p = std::fma(p, r, 4.1665795894e-2f);
    p = std::fma(p, r, 1.6666665459e-1f);
    p = std::fma(p, r, 5.0000001201e-1f);
    const float er = std::fma(p, r * r, r) + 1.0f;
    const std::int32_t ki = std::bit_cast<std::int32_t>(k_biased) - std::bit_cast<std::int32_t>(kRound);
    return er * std::bit_cast<float>((ki + 127) << 23);
}

// tanh(y) = 1 - 2 / (e^{2y} + 1): enough for GELU, which adds it to 1 (an absolute error of a few 1e-7).
inline float tanh_approx(float y) { return 1.0f - 2.0f / (exp_approx(2.0f * y) + 1.0f); }

}  // namespace tl::cpu
