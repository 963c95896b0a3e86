// Host-side 16-bit activations for the quantized kernels' callers (bench_quant, quant_parity): a float rounded
// to bf16 or fp16 bits (nearest even) and back, and the type's unit roundoff. Host C++ only (the fp16 encoder
// is the format table's).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "formats/format_table.hpp"
#include "quant/cuda/qmatmul.hpp"

namespace tl::cuda_quant {

inline std::uint16_t to_bits(float v, ActType t) {
    if (t == ActType::fp16) return std::uint16_t(format_encode(format_info(Format::fp16), v));
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);  // bf16: round to nearest even (finite inputs)
    return std::uint16_t(u >> 16);
}

inline float from_bits(std::uint16_t h, ActType t) {
    if (t == ActType::fp16) return qdecode::fp16_value(h);
    const std::uint32_t u = std::uint32_t(h) << 16;
    float v;
    std::memcpy(&v, &u, 4);
    return v;
}

inline float round_to(float v, ActType t) { return from_bits(to_bits(v, t), t); }

// 2^-8 for bf16 (8 significant bits), 2^-11 for fp16 (11).
inline double unit_roundoff(ActType t) { return t == ActType::bf16 ? 1.0 / 256 : 1.0 / 2048; }

// |got - ref| / bound, the check's measure: 1e30 for a non-finite result; when bound is 0 (every product 0),
// 0 for an exact result and 1e30 otherwise (0/0 would be NaN, which compares false and would pass).
inline double error_ratio(double got, double ref, double bound) {
    if (!std::isfinite(got)) return 1e30;
    const double err = std::fabs(got - ref);
    return bound > 0 ? err / bound : err == 0 ? 0 : 1e30;
}

}  // namespace tl::cuda_quant
