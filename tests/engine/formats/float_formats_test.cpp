// Floating formats against independent oracles: the CPU's F16C conversions for fp16 (and fp8_e5m2, the top byte
// of an fp16), bit manipulation for bf16/tf32/fp32, the OCP FP8 / MX specification values for e4m3 and e2m1.
// Also: every code of every <= 8-bit float format decodes and re-encodes to itself; RNE ties spelled out.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/error.hpp"
#include "formats/format_table.hpp"

namespace tl {
namespace {

__attribute__((target("f16c"))) std::uint16_t f16c_encode(float x) {
    return std::uint16_t(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
__attribute__((target("f16c"))) float f16c_decode(std::uint16_t h) { return _cvtsh_ss(h); }
bool has_f16c() { return __builtin_cpu_supports("f16c"); }

// bf16 / tf32 by bit manipulation on the fp32 pattern: add half of the dropped range (minus 1 when the kept
// lowest bit is 0) and truncate. Carries into the exponent give the next binade or inf, as RNE should.
std::uint32_t fp32_rne_drop(float x, int dropped) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const std::uint32_t keep_lsb = (u >> dropped) & 1u;
    return (u + ((1u << (dropped - 1)) - 1) + keep_lsb) >> dropped;
}

// A sweep over the whole fp32 bit space (every 4099th pattern: all binades, subnormals, both signs), no NaNs.
std::vector<float> fp32_sweep() {
    std::vector<float> out;
    for (std::uint64_t u = 0; u < (std::uint64_t{1} << 32); u += 4099) {
        const float x = std::bit_cast<float>(std::uint32_t(u));
        if (!std::isnan(x)) out.push_back(x);
    }
    return out;
}

TEST(FloatFormats, FactsMatchTheSpecifications) {
    struct Spec {
        Format f;
        double max, min_normal, min_subnormal, epsilon;
        int bits;
    };
    const Spec specs[] = {
        {Format::fp32, 3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45, 1.1920928955078125e-07, 32},
        {Format::tf32, 3.4011621342146535e38, 1.1754943508222875e-38, 1.1479437019748901e-41, 9.765625e-4, 19},
        {Format::bf16, 3.3895313892515355e38, 1.1754943508222875e-38, 9.183549615799121e-41, 0.0078125, 16},
        {Format::fp16, 65504.0, 6.103515625e-05, 5.960464477539063e-08, 0.0009765625, 16},
        {Format::fp8_e4m3, 448.0, 0.015625, 0.001953125, 0.125, 8},      // OCP FP8: 2^-6, 2^-9
        {Format::fp8_e5m2, 57344.0, 6.103515625e-05, 1.52587890625e-05, 0.25, 8},  // 2^-14, 2^-16
        {Format::fp4_e2m1, 6.0, 1.0, 0.5, 0.5, 4},                        // OCP MX: E2M1 max 6, min subnormal 0.5
    };
    for (const Spec& s : specs) {
        const FormatInfo& f = format_info(s.f);
        const FormatFacts facts = format_facts(f);
        SCOPED_TRACE(std::string(f.name));
        EXPECT_EQ(f.bits, s.bits);
        EXPECT_EQ(facts.max, s.max);
        EXPECT_EQ(facts.lowest, -s.max);
        EXPECT_EQ(facts.min_normal, s.min_normal);
        EXPECT_EQ(facts.min_subnormal, s.min_subnormal);
        EXPECT_EQ(facts.epsilon, s.epsilon);
    }
    EXPECT_EQ(format_facts(format_info(Format::fp32)).max, double(std::numeric_limits<float>::max()));
    EXPECT_FALSE(format_facts(format_info(Format::fp8_e4m3)).has_inf);
    EXPECT_TRUE(format_facts(format_info(Format::fp8_e4m3)).has_nan);
    EXPECT_TRUE(format_facts(format_info(Format::fp8_e5m2)).has_inf);
    EXPECT_FALSE(format_facts(format_info(Format::fp4_e2m1)).has_nan);
}

TEST(FloatFormats, Fp16MatchesF16cForEveryCodeAndASweep) {
    if (!has_f16c()) GTEST_SKIP() << "this CPU has no F16C instructions";
    const FormatInfo& f = format_info(Format::fp16);
    for (std::uint32_t c = 0; c < 65536; ++c) {
        const float want = f16c_decode(std::uint16_t(c));
        const double got = format_decode(f, c);
        if (std::isnan(want)) {
            ASSERT_TRUE(std::isnan(got)) << c;
            continue;
        }
        ASSERT_EQ(got, double(want)) << "code " << c;
        // Ties: the midpoint to the next code, and one fp32 ulp either side of it.
        if ((c & 0x7FFF) < 0x7C00) {
            const float mid = float((double(want) + format_decode(f, c + 1)) / 2);
            for (const float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f * (want < 0 ? -1 : 1))})
                ASSERT_EQ(format_encode(f, x), f16c_encode(x)) << "x = " << x;
        }
    }
    for (const float x : fp32_sweep()) ASSERT_EQ(format_encode(f, x), f16c_encode(x)) << "x = " << x;
}

TEST(FloatFormats, Bf16Tf32Fp32MatchBitManipulation) {
    const FormatInfo &bf16 = format_info(Format::bf16), &tf32 = format_info(Format::tf32);
    const FormatInfo& fp32 = format_info(Format::fp32);
    for (const float x : fp32_sweep()) {
        ASSERT_EQ(format_encode(bf16, x), fp32_rne_drop(x, 16)) << "x = " << x;
        ASSERT_EQ(format_encode(tf32, x), fp32_rne_drop(x, 13)) << "x = " << x;
        ASSERT_EQ(format_encode(fp32, x), std::bit_cast<std::uint32_t>(x)) << "x = " << x;
        ASSERT_EQ(format_decode(fp32, std::bit_cast<std::uint32_t>(x)), double(x));
    }
    for (std::uint32_t c = 0; c < 65536; ++c) {
        const float want = std::bit_cast<float>(c << 16);
        if (std::isnan(want)) continue;
        ASSERT_EQ(format_decode(bf16, c), double(want)) << c;
    }
}

TEST(FloatFormats, Fp8E5m2IsTheTopByteOfAnFp16) {
    if (!has_f16c()) GTEST_SKIP() << "this CPU has no F16C instructions";
    const FormatInfo& f = format_info(Format::fp8_e5m2);
    for (std::uint32_t c = 0; c < 256; ++c) {
        const float want = f16c_decode(std::uint16_t(c << 8));
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(format_decode(f, c))) << c;
        } else {
            EXPECT_EQ(format_decode(f, c), double(want)) << c;
        }
    }
}

TEST(FloatFormats, Fp8E4m3FollowsTheOcpSpec) {
    const FormatInfo& f = format_info(Format::fp8_e4m3);
    // OCP 8-bit FP spec table: S.1111.111 is NaN, S.1111.110 = 448 is max, 0.0000.001 = 2^-9, 0.0001.000 = 2^-6.
    EXPECT_TRUE(std::isnan(format_decode(f, 0x7F)));
    EXPECT_TRUE(std::isnan(format_decode(f, 0xFF)));
    EXPECT_EQ(format_decode(f, 0x7E), 448.0);
    EXPECT_EQ(format_decode(f, 0xFE), -448.0);
    EXPECT_EQ(format_decode(f, 0x78), 256.0);  // S.1111.000 is a number (no infinities)
    EXPECT_EQ(format_decode(f, 0x01), std::ldexp(1.0, -9));
    EXPECT_EQ(format_decode(f, 0x08), std::ldexp(1.0, -6));
    EXPECT_EQ(format_decode(f, 0x38), 1.0);
    // Every non-NaN code, by the spec's formula: (-1)^S 2^(E-7) (1 + M/8), subnormal 2^-6 (M/8).
    for (std::uint32_t c = 0; c < 256; ++c) {
        if ((c & 0x7F) == 0x7F) continue;
        const int E = int(c >> 3) & 15, M = int(c & 7);
        const double mag = E == 0 ? std::ldexp(M / 8.0, -6) : std::ldexp(1.0 + M / 8.0, E - 7);
        EXPECT_EQ(format_decode(f, c), (c & 0x80) ? -mag : mag) << c;
    }
    // Overflow: 464 is the tie between 448 (mantissa 110) and the NaN slot 480: even wins, 448.
    EXPECT_EQ(format_encode(f, 464.0), 0x7Eu);
    EXPECT_EQ(format_encode(f, 464.1), 0x7Fu);                       // non-saturating: NaN
    EXPECT_EQ(format_encode(f, 464.1, Overflow::saturate), 0x7Eu);   // saturating: max
    EXPECT_EQ(format_encode(f, -1e9, Overflow::saturate), 0xFEu);
    EXPECT_EQ(format_encode(f, INFINITY), 0x7Fu);
}

TEST(FloatFormats, Fp4E2m1ValuesAndSaturation) {
    const FormatInfo& f = format_info(Format::fp4_e2m1);
    const double want[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};  // OCP MX spec, E2M1 table
    for (std::uint32_t c = 0; c < 8; ++c) {
        EXPECT_EQ(format_decode(f, c), want[c]);
        EXPECT_EQ(format_decode(f, c | 8), -want[c]);
    }
    EXPECT_EQ(format_encode(f, 100.0), 0x7u);
    EXPECT_EQ(format_encode(f, -INFINITY), 0xFu);
    EXPECT_THROW(format_encode(f, NAN), Error);
}

TEST(FloatFormats, RoundHalfToEvenTies) {
    auto round_in = [](Format fmt, double x) { return format_round(format_info(fmt), x); };
    // fp16: 1 + 2^-11 is halfway between 1 (mantissa 0) and 1 + 2^-10 (mantissa 1).
    EXPECT_EQ(round_in(Format::fp16, 1 + std::ldexp(1, -11)), 1.0);
    EXPECT_EQ(round_in(Format::fp16, 1 + 3 * std::ldexp(1, -11)), 1 + std::ldexp(1, -9));
    EXPECT_EQ(round_in(Format::fp16, std::ldexp(1, -25)), 0.0);                    // half the min subnormal
    EXPECT_EQ(round_in(Format::fp16, 3 * std::ldexp(1, -25)), std::ldexp(1, -23));  // 1.5 subnormal steps -> 2
    EXPECT_EQ(round_in(Format::fp16, 65519.0), 65504.0);
    EXPECT_TRUE(std::isinf(round_in(Format::fp16, 65520.0)));  // tie between 65504 (odd) and 65536: overflow
    EXPECT_EQ(round_in(Format::bf16, 1 + std::ldexp(1, -8)), 1.0);
    EXPECT_EQ(round_in(Format::bf16, 1 + 3 * std::ldexp(1, -8)), 1 + std::ldexp(1, -6));
    EXPECT_EQ(round_in(Format::fp8_e4m3, 1.0625), 1.0);
    EXPECT_EQ(round_in(Format::fp8_e4m3, 1.1875), 1.25);
    EXPECT_EQ(round_in(Format::fp8_e5m2, 1.125), 1.0);
    EXPECT_TRUE(std::isinf(round_in(Format::fp8_e5m2, 61440.0)));  // tie between 57344 (odd) and 65536
    EXPECT_EQ(round_in(Format::fp4_e2m1, 0.25), 0.0);
    EXPECT_EQ(round_in(Format::fp4_e2m1, 0.75), 1.0);
    EXPECT_EQ(round_in(Format::fp4_e2m1, 2.5), 2.0);
    EXPECT_EQ(round_in(Format::fp4_e2m1, 3.5), 4.0);
    EXPECT_EQ(round_in(Format::fp4_e2m1, 5.0), 4.0);
    EXPECT_EQ(round_in(Format::fp4_e2m1, -5.0), -4.0);
}

TEST(AllFormats, EveryCodeOfEverySmallFormatRoundTrips) {
    for (const FormatInfo& f : all_formats()) {
        if (f.bits > 8 || f.kind == FormatKind::palette) continue;
        SCOPED_TRACE(std::string(f.name));
        for (std::uint32_t c = 0; c < (1u << f.bits); ++c) {
            const double v = format_decode(f, c);
            if (f.kind == FormatKind::integer && (v < f.ints.lo || v > f.ints.hi)) continue;  // ternary's unused 0b10
            if (std::isnan(v)) {
                EXPECT_TRUE(std::isnan(format_decode(f, format_encode(f, v))));
                continue;
            }
            EXPECT_EQ(format_encode(f, v), c) << "code " << c << " value " << v;
        }
    }
}

}  // namespace
}  // namespace tl
