// Generic minifloat codec (see float_codec.hpp). Encoding works on |x| in double: x = n * 2^(e - man) with the
// quantum 2^(e - man) of x's binade (clamped to the subnormal binade), n rounded to the nearest integer, ties
// to even. Every step is an exact power-of-two scaling, so the only rounding is the one we mean.
#include "formats/float_codec.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"
#include "formats/int_codec.hpp"

namespace tl {

namespace {

std::uint32_t exp_all_ones(const MiniFloat& f) { return (1u << f.exp_bits) - 1; }
std::uint32_t man_mask(const MiniFloat& f) { return (1u << f.man_bits) - 1; }
std::uint32_t sign_bit(const MiniFloat& f) { return 1u << (f.exp_bits + f.man_bits); }

// The largest finite code (positive).
std::uint32_t max_code(const MiniFloat& f) {
    switch (f.special) {
        case SpecialRule::ieee: return ((exp_all_ones(f) - 1) << f.man_bits) | man_mask(f);
        case SpecialRule::nan_only: return (exp_all_ones(f) << f.man_bits) | (man_mask(f) - 1);
        case SpecialRule::all_finite: return (exp_all_ones(f) << f.man_bits) | man_mask(f);
    }
    return 0;
}

std::uint32_t nan_code(const MiniFloat& f) {
    // IEEE: the canonical quiet NaN (top mantissa bit only); OCP FN: the one NaN pattern, all ones.
    const std::uint32_t man = f.special == SpecialRule::ieee ? 1u << (f.man_bits - 1) : man_mask(f);
    return (exp_all_ones(f) << f.man_bits) | man;
}

std::uint32_t overflow_code(const MiniFloat& f, Overflow overflow) {
    switch (overflow) {
        case Overflow::to_inf:
            TL_ASSERT(minifloat_has_inf(f), "[formats] overflow to inf asked of a format without infinities");
            return exp_all_ones(f) << f.man_bits;
        case Overflow::to_nan:
            TL_ASSERT(minifloat_has_nan(f), "[formats] overflow to NaN asked of a format without NaN");
            return nan_code(f);
        case Overflow::saturate: return max_code(f);
    }
    return 0;
}

}  // namespace

bool minifloat_has_nan(const MiniFloat& f) { return f.special != SpecialRule::all_finite; }
bool minifloat_has_inf(const MiniFloat& f) { return f.special == SpecialRule::ieee; }
double minifloat_max(const MiniFloat& f) { return minifloat_decode(f, max_code(f)); }
double minifloat_min_normal(const MiniFloat& f) { return std::ldexp(1.0, 1 - f.bias); }
double minifloat_min_subnormal(const MiniFloat& f) { return std::ldexp(1.0, 1 - f.bias - f.man_bits); }
double minifloat_epsilon(const MiniFloat& f) { return std::ldexp(1.0, -f.man_bits); }

std::uint32_t minifloat_encode(const MiniFloat& f, double x, Overflow overflow) {
    const std::uint32_t sign = std::signbit(x) ? sign_bit(f) : 0u;
    if (std::isnan(x)) {
        if (!minifloat_has_nan(f))
            throw Error("[formats] this format (e" + std::to_string(f.exp_bits) + "m" + std::to_string(f.man_bits) +
                        ") has no NaN; got a NaN to encode. Remove NaNs before quantizing.");
        return sign | nan_code(f);
    }
    const double a = std::fabs(x);
    if (std::isinf(a)) return sign | overflow_code(f, overflow);
    if (a == 0.0) return sign;
    const int emin = 1 - f.bias;
    int e = 0;
    std::frexp(a, &e);                  // a = m * 2^e, m in [0.5, 1)
    e = std::max(e - 1, emin);          // a in [2^e, 2^(e+1)), or the subnormal binade
    const double n = round_half_even(std::ldexp(a, f.man_bits - e));
    auto m = static_cast<std::uint64_t>(n);  // in [0, 2^(man+1)]
    if (m == (std::uint64_t{1} << (f.man_bits + 1))) {  // rounded up into the next binade
        m >>= 1;
        e += 1;
    }
    const bool is_normal = m >= (std::uint64_t{1} << f.man_bits);
    const std::uint64_t biased = is_normal ? std::uint64_t(e + f.bias) : 0u;
    // Positive codes order like their values, so "beyond max" is a comparison of codes.
    const std::uint64_t magnitude = (biased << f.man_bits) | (m & man_mask(f));
    if (magnitude > max_code(f)) return sign | overflow_code(f, overflow);
    return sign | std::uint32_t(magnitude);
}

double minifloat_decode(const MiniFloat& f, std::uint32_t code) {
    const bool is_negative = (code & sign_bit(f)) != 0;
    const std::uint32_t E = (code >> f.man_bits) & exp_all_ones(f), M = code & man_mask(f);
    double v = 0;
    if (E == exp_all_ones(f) && f.special == SpecialRule::ieee) {
        v = M == 0 ? INFINITY : NAN;
    } else if (E == exp_all_ones(f) && f.special == SpecialRule::nan_only && M == man_mask(f)) {
        v = NAN;
    } else if (E == 0) {
        v = std::ldexp(double(M), 1 - f.bias - f.man_bits);
    } else {
        v = std::ldexp(double(M + (1u << f.man_bits)), int(E) - f.bias - f.man_bits);
    }
    return is_negative ? -v : v;
}

}  // namespace tl
