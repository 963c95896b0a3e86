// Fast float -> bf16 / fp16 -> float rounding on the bits of a float, for simulating low-precision training
// (backend/rounding_backend.hpp) where every value of every op is rounded. Same results, bit for bit, as the
// table's codec (format_round(format_info(Format::bf16 / fp16), x): round-to-nearest-even, subnormals,
// overflow to inf, NaN stays NaN); tests/engine/formats/fast_round_test.cpp checks that. Not a codec: no bit
// patterns out.
#pragma once
#include <bit>
#include <cstdint>

namespace tl {

// bf16 keeps fp32's 8 exponent bits and the top 7 mantissa bits: add half an ulp of bf16 (minus one, plus the
// lowest kept bit, which makes ties go to even) and cut the low 16 bits. fp32 subnormals round the same way
// (bf16 has them too), and a carry out of the largest binade gives the all-ones exponent with a zero
// mantissa: inf, as IEEE overflow under round-to-nearest requires.
inline float round_to_bf16(float x) {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
    const std::uint32_t r = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
    return (b & 0x7FFFFFFFu) > 0x7F800000u ? x : std::bit_cast<float>(r);  // NaN stays NaN
}

// fp16: 5 exponent bits (bias 15) and 10 mantissa bits.
//   |x| >= 2^-14 (normal): keep 10 of fp32's 23 mantissa bits, the same carry trick as bf16 on the low 13;
//                          anything that rounds above 65504 (max) is inf.
//   |x| <  2^-14 (subnormal): the spacing is a fixed 2^-24. Adding 0.5 puts |x| in [0.5, 1), whose fp32
//   spacing
//                          is exactly 2^-24, so the FPU's own round-to-nearest-even does the rounding;
//                          subtracting 0.5 again is exact. Values of at most 2^-25 (half the smallest
//                          subnormal) become 0.
// Both paths are computed and one selected, so loops over arrays vectorise.
inline float round_to_fp16(float x) {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
    const std::uint32_t sign = b & 0x80000000u, mag = b & 0x7FFFFFFFu;
    std::uint32_t normal = (mag + 0x0FFFu + ((mag >> 13) & 1u)) & 0xFFFFE000u;
    normal = normal > 0x477FE000u ? 0x7F800000u : normal;  // 0x477FE000 = 65504
    const float a = std::bit_cast<float>(mag);
    const std::uint32_t subnormal = std::bit_cast<std::uint32_t>((a + 0.5f) - 0.5f);
    std::uint32_t r = mag < 0x38800000u ? subnormal : normal;  // 0x38800000 = 2^-14
    r = mag > 0x7F800000u ? mag : r;                           // NaN stays NaN
    return std::bit_cast<float>(r | sign);
}

}  // namespace tl
