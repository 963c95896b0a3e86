// The format table (see format_table.hpp). Facts are computed from each row's layout; tests check them against
// the IEEE 754 / OCP FP8 / OCP MX specifications' published numbers.
#include "formats/format_table.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"

namespace tl {

namespace {

constexpr float kTernaryValues[] = {-1.0f, 0.0f, 1.0f};  // only for display; ternary codes are integers
constexpr MiniFloat kNoFp{0, 0, 0, SpecialRule::all_finite};
constexpr IntRange kNoInt{0, 0, 0};
constexpr auto S = Scaling::scaled;
constexpr auto N = Scaling::none;
using K = FormatKind;
using R = SpecialRule;
using O = Overflow;

constexpr FormatInfo kFormats[] = {
// id                 name        bits kind         exp man bias special       overflow      ints          codebook       block scaling
{Format::fp32,      "fp32",      32, K::floating, {8, 23, 127, R::ieee},      O::to_inf,    kNoInt,       {},            0,  N, "IEEE 754 binary32"},
{Format::tf32,      "tf32",      19, K::floating, {8, 10, 127, R::ieee},      O::to_inf,    kNoInt,       {},            0,  N, "NVIDIA TensorFloat-32: fp32 range, fp16 precision"},
{Format::bf16,      "bf16",      16, K::floating, {8,  7, 127, R::ieee},      O::to_inf,    kNoInt,       {},            0,  N, "bfloat16: the top half of an fp32"},
{Format::fp16,      "fp16",      16, K::floating, {5, 10,  15, R::ieee},      O::to_inf,    kNoInt,       {},            0,  N, "IEEE 754 binary16"},
{Format::fp8_e4m3,  "fp8_e4m3",   8, K::floating, {4,  3,   7, R::nan_only},  O::to_nan,    kNoInt,       {},            0,  S, "OCP FP8 E4M3 (FN): no inf, one NaN, max 448"},
{Format::fp8_e5m2,  "fp8_e5m2",   8, K::floating, {5,  2,  15, R::ieee},      O::to_inf,    kNoInt,       {},            0,  S, "OCP FP8 E5M2: IEEE-like, max 57344"},
{Format::fp4_e2m1,  "fp4_e2m1",   4, K::floating, {2,  1,   1, R::all_finite},O::saturate,  kNoInt,       {},           32,  S, "OCP MX FP4: no inf/NaN, saturates at 6"},
{Format::int8,      "int8",       8, K::integer,  kNoFp,                      O::saturate,  {8, -128, 127}, {},          0,  S, "two's complement; symmetric scaling uses -127..127"},
{Format::int4,      "int4",       4, K::integer,  kNoFp,                      O::saturate,  {4, -8, 7},   {},           32,  S, "two's complement; symmetric scaling uses -7..7"},
{Format::ternary,   "ternary",    2, K::integer,  kNoFp,                      O::saturate,  {2, -1, 1},   kTernaryValues, 0, S, "BitNet b1.58: {-1,0,1} x absmean scale (1.58 bits of information)"},
{Format::nf4,       "nf4",        4, K::codebook, kNoFp,                      O::saturate,  kNoInt,       kNf4Codebook, 64,  S, "QLoRA NormalFloat4: 16 normal quantiles in [-1, 1]"},
{Format::palette2,  "palette2",   2, K::palette,  kNoFp,                      O::saturate,  kNoInt,       {},            0,  N, "4-entry k-means code book per tensor"},
{Format::palette3,  "palette3",   3, K::palette,  kNoFp,                      O::saturate,  kNoInt,       {},            0,  N, "8-entry k-means code book per tensor"},
{Format::palette4,  "palette4",   4, K::palette,  kNoFp,                      O::saturate,  kNoInt,       {},            0,  N, "16-entry k-means code book per tensor"},
};

// One encode/decode pair per kind: the row selects, nothing branches on the format's name.
struct Codec {
    std::uint32_t (*encode)(const FormatInfo&, double, Overflow);
    double (*decode)(const FormatInfo&, std::uint32_t);
};

[[noreturn]] void palette_has_no_table(const FormatInfo& f) {
    throw Error("[formats] " + std::string(f.name) +
                " has no fixed code book: it is fitted per tensor by k-means. Quantize a tensor (or give "
                "several values to `tunelab formats --encode`) instead.");
}

constexpr Codec kCodecs[] = {
    /* floating */ {[](const FormatInfo& f, double x, Overflow o) { return minifloat_encode(f.fp, x, o); },
                    [](const FormatInfo& f, std::uint32_t c) { return minifloat_decode(f.fp, c); }},
    /* integer  */ {[](const FormatInfo& f, double x, Overflow) { return int_encode(f.ints, x); },
                    [](const FormatInfo& f, std::uint32_t c) { return double(int_decode(f.ints, c)); }},
    /* codebook */ {[](const FormatInfo& f, double x, Overflow) { return codebook_encode(f.codebook, x); },
                    [](const FormatInfo& f, std::uint32_t c) {
                        TL_ASSERT(c < f.codebook.size(), "[formats] code outside the code book");
                        return double(f.codebook[c]);
                    }},
    /* palette  */ {[](const FormatInfo& f, double, Overflow) -> std::uint32_t { palette_has_no_table(f); },
                    [](const FormatInfo& f, std::uint32_t) -> double { palette_has_no_table(f); }},
};

const Codec& codec(const FormatInfo& f) { return kCodecs[static_cast<int>(f.kind)]; }

}  // namespace

std::span<const FormatInfo> all_formats() { return kFormats; }

const FormatInfo& format_info(Format id) {
    for (const auto& row : kFormats)
        if (row.id == id) return row;
    TL_ASSERT(false, "[formats] a Format without a table row");
    return kFormats[0];
}

const FormatInfo& find_format(std::string_view name) {
    std::string known;
    for (const auto& row : kFormats) {
        if (row.name == name) return row;
        known += (known.empty() ? "" : ", ") + std::string(row.name);
    }
    throw Error("[formats] unknown format '" + std::string(name) + "'; known formats: " + known);
}

FormatFacts format_facts(const FormatInfo& f) {
    FormatFacts r;
    switch (f.kind) {
        case FormatKind::floating:
            r.max = minifloat_max(f.fp);
            r.lowest = -r.max;
            r.min_normal = minifloat_min_normal(f.fp);
            r.min_subnormal = minifloat_min_subnormal(f.fp);
            r.epsilon = minifloat_epsilon(f.fp);
            r.has_inf = minifloat_has_inf(f.fp);
            r.has_nan = minifloat_has_nan(f.fp);
            break;
        case FormatKind::integer: r.max = f.ints.hi, r.lowest = f.ints.lo; break;
        case FormatKind::codebook: r.max = f.codebook.back(), r.lowest = f.codebook.front(); break;
        case FormatKind::palette: break;  // fitted per tensor
    }
    return r;
}

double format_unit_max(const FormatInfo& f) {
    switch (f.kind) {
        case FormatKind::floating: return minifloat_max(f.fp);
        case FormatKind::integer: return f.ints.hi;
        case FormatKind::codebook: return std::fmax(std::fabs(f.codebook.front()), std::fabs(f.codebook.back()));
        case FormatKind::palette: return 1.0;
    }
    return 1.0;
}

std::uint32_t format_encode(const FormatInfo& f, double x) { return codec(f).encode(f, x, f.overflow); }
std::uint32_t format_encode(const FormatInfo& f, double x, Overflow o) { return codec(f).encode(f, x, o); }
double format_decode(const FormatInfo& f, std::uint32_t code) { return codec(f).decode(f, code); }

std::string format_bits(const FormatInfo& f, std::uint32_t code) {
    std::string out;
    for (int b = f.bits - 1; b >= 0; --b) {
        out += ((code >> b) & 1u) ? '1' : '0';
        const bool is_field_end =
            f.kind == FormatKind::floating && (b == f.fp.exp_bits + f.fp.man_bits || b == f.fp.man_bits);
        if (is_field_end && b > 0) out += ' ';
    }
    return out;
}

}  // namespace tl
