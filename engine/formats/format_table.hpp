// The numeric formats as a table: one FormatInfo row per format (bits, layout, special-value and overflow
// rules, code book), and scalar encode/decode chosen by the row's kind. Codecs: float_codec, int_codec,
// codebook. Scales, groups and zero points are the quantizer's business (quantizer.hpp); docs/formats.md explains.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "formats/codebook.hpp"
#include "formats/float_codec.hpp"
#include "formats/int_codec.hpp"

namespace tl {

enum class Format {
    fp32, tf32, bf16, fp16, fp8_e4m3, fp8_e5m2, fp4_e2m1,  // floating point
    int8, int4, ternary,                                    // integers (ternary: BitNet b1.58's {-1, 0, 1})
    nf4,                                                    // fixed code book
    palette2, palette3, palette4,                           // code book fitted per tensor by k-means
};

enum class FormatKind { floating, integer, codebook, palette };

// Whether the quantizer scales values into the format's range before rounding.
enum class Scaling { none, scaled };

struct FormatInfo {
    Format id;
    std::string_view name;
    int bits;                        // storage bits per element (tf32: the 19 that carry information)
    FormatKind kind;
    MiniFloat fp;                    // floating: layout and special values
    Overflow overflow;               // floating: what a value beyond max becomes, by default
    IntRange ints;                   // integer: code range
    std::span<const float> codebook; // codebook: the sorted values
    int block;                       // the group size the format is usually used with (0: none)
    Scaling scaling;
    std::string_view note;
};

std::span<const FormatInfo> all_formats();
const FormatInfo& format_info(Format f);
const FormatInfo& find_format(std::string_view name);  // tl::Error listing the known names

// Range facts. Floating formats: all fields; others: max/lowest only (min_normal etc. are 0).
struct FormatFacts {
    double max = 0, lowest = 0;               // largest and most negative finite values
    double min_normal = 0, min_subnormal = 0;
    double epsilon = 0;                       // gap between 1 and the next value
    bool has_inf = false, has_nan = false;
};
FormatFacts format_facts(const FormatInfo& f);

// The magnitude a scale maps the block's range onto: max for floats, hi for integers, 1 for code books.
double format_unit_max(const FormatInfo& f);

// Scalar codec. Palette formats have no fixed table: tl::Error (use codebook_encode with a fitted palette).
std::uint32_t format_encode(const FormatInfo& f, double x);                     // the row's overflow rule
std::uint32_t format_encode(const FormatInfo& f, double x, Overflow overflow);  // floating: this rule
double format_decode(const FormatInfo& f, std::uint32_t code);
// The code's bits, most significant first; float fields apart ("0 0111 010" for 1.25 in fp8_e4m3).
std::string format_bits(const FormatInfo& f, std::uint32_t code);
inline double format_round(const FormatInfo& f, double x) { return format_decode(f, format_encode(f, x)); }

}  // namespace tl
