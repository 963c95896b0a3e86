// Generic minifloat codec: any sign/exponent/mantissa format (fp32 down to fp4) encoded from a float with
// round-to-nearest-even, subnormals, and the format's special-value rule (IEEE inf/NaN, OCP "FN", or all
// finite). The table of formats is format_table.hpp; this file only knows the bit arithmetic.
#pragma once
#include <cstdint>

namespace tl {

// Which codes of the all-ones exponent are special.
enum class SpecialRule {
    ieee,         // all-ones exponent: infinities (mantissa 0) and NaNs (fp32, bf16, fp16, tf32, fp8_e5m2)
    nan_only,     // OCP "FN": no infinities; only S.1111.111 is NaN, the rest of that binade is finite (e4m3)
    all_finite,   // no infinities, no NaN: every code is a number (fp4_e2m1)
};

// What a finite value beyond the largest finite number becomes.
enum class Overflow {
    to_inf,       // IEEE: round-to-nearest overflows to +-inf
    to_nan,       // OCP FP8 non-saturating mode for a format without infinities
    saturate,     // clamp to +-max (OCP saturating mode; the only choice for fp4 which has neither)
};

struct MiniFloat {
    int exp_bits;
    int man_bits;
    int bias;
    SpecialRule special;
};

// Facts computed from the layout (exact powers of two and their sums).
double minifloat_max(const MiniFloat& f);            // largest finite value
double minifloat_min_normal(const MiniFloat& f);     // 2^(1 - bias)
double minifloat_min_subnormal(const MiniFloat& f);  // 2^(1 - bias - man_bits)
double minifloat_epsilon(const MiniFloat& f);        // 2^-man_bits: gap above 1
bool minifloat_has_nan(const MiniFloat& f);
bool minifloat_has_inf(const MiniFloat& f);

// Code layout: sign at bit (exp_bits + man_bits), then the biased exponent, then the mantissa.
// NaN input gives the canonical quiet NaN (all-ones exponent and mantissa, sign kept); tl::Error for a format
// without NaN. Infinite input follows `overflow` like any value beyond max.
std::uint32_t minifloat_encode(const MiniFloat& f, double x, Overflow overflow);
double minifloat_decode(const MiniFloat& f, std::uint32_t code);

}  // namespace tl
