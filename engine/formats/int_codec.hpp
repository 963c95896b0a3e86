// Integer codes: a value rounds to the nearest integer (ties to even, as torch.round and numpy do) and saturates
// to [lo, hi]. Signed ranges are stored as two's complement in `bits` bits, unsigned ranges as plain binary.
// Scales and zero points belong to the quantizer (quantizer.hpp), not here.
#pragma once
#include <cstdint>

namespace tl {

struct IntRange {
    int bits;
    std::int32_t lo, hi;  // inclusive; lo < 0 means two's complement storage
};

double round_half_even(double x);  // nearest integer, ties to even (for any sign)

std::uint32_t int_encode(const IntRange& r, double x);    // tl::Error for NaN
std::int32_t int_decode(const IntRange& r, std::uint32_t code);
std::int32_t int_round_clamp(const IntRange& r, double x);  // the integer itself, before storage

}  // namespace tl
