// Integer codes (see int_codec.hpp): round half to even, saturate, two's complement in `bits` bits.
#include "formats/int_codec.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace tl {

double round_half_even(double x) {
    const double lo = std::floor(x), frac = x - lo;
    if (frac > 0.5) return lo + 1;
    if (frac < 0.5) return lo;
    return std::fmod(lo, 2.0) == 0.0 ? lo : lo + 1;
}

std::int32_t int_round_clamp(const IntRange& r, double x) {
    if (std::isnan(x)) throw Error("[formats] integer formats have no NaN; got a NaN to encode. Remove NaNs first.");
    return std::int32_t(std::clamp(round_half_even(x), double(r.lo), double(r.hi)));
}

std::uint32_t int_encode(const IntRange& r, double x) {
    const std::uint32_t mask = r.bits >= 32 ? 0xFFFFFFFFu : (1u << r.bits) - 1;
    return std::uint32_t(int_round_clamp(r, x)) & mask;
}

std::int32_t int_decode(const IntRange& r, std::uint32_t code) {
    const std::uint32_t mask = (1u << r.bits) - 1;
    code &= mask;
    if (r.lo < 0 && (code >> (r.bits - 1)) != 0) return std::int32_t(code) - std::int32_t(1u << r.bits);
    return std::int32_t(code);
}

}  // namespace tl
