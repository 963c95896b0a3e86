// fast_round (the bit tricks the rounding backend uses) against the format table's codec: the same value for
// a spread of every float (normals, subnormals, inf, NaN), densely around fp16's underflow and overflow
// edges, and hand-picked ties that must go to even.
#include "formats/fast_round.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "formats/format_table.hpp"

namespace tl {
namespace {

// Same value, or both NaN. Compared as bits so -0 and +0 count as different.
::testing::AssertionResult same(float got, double want, float x) {
    if (std::isnan(got) && std::isnan(want)) return ::testing::AssertionSuccess();
    if (std::bit_cast<std::uint32_t>(got) == std::bit_cast<std::uint32_t>(float(want)))
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "x = " << x << " (bits 0x" << std::hex << std::bit_cast<std::uint32_t>(x) << std::dec
           << "): got " << got << ", the codec says " << want;
}

void check_range(std::uint32_t lo, std::uint32_t hi, std::uint32_t stride) {
    const FormatInfo& bf16 = format_info(Format::bf16);
    const FormatInfo& fp16 = format_info(Format::fp16);
    for (std::uint64_t b = lo; b <= hi; b += stride) {
        for (const std::uint32_t sign : {0u, 0x80000000u}) {
            const float x = std::bit_cast<float>(std::uint32_t(b) | sign);
            ASSERT_TRUE(same(round_to_bf16(x), format_round(bf16, x), x));
            ASSERT_TRUE(same(round_to_fp16(x), format_round(fp16, x), x));
        }
    }
}

TEST(FastRound, MatchesTheCodecAcrossAllFloats) {
    check_range(0, 0x7FFFFFFFu, 40009);        // a prime stride: every exponent, many mantissas, inf and NaNs
    check_range(0x7F7F0000u, 0x7F810000u, 1);  // bf16's overflow edge, inf, the first NaNs
    check_range(0x7F810000u, 0x7FFFFFFFu, 4099);  // NaN payloads
}

TEST(FastRound, MatchesTheCodecAtFp16sEdges) {
    check_range(0x32800000u, 0x32800000u + (1u << 23), 61);  // [2^-26, 2^-25]: flush to zero or 2^-24
    check_range(0x33000000u, 0x34000000u, 131);              // [2^-25, 2^-23]: the first subnormals
    check_range(0x38000000u, 0x39000000u, 127);              // [2^-15, 2^-13]: subnormal to normal
    check_range(0x477F0000u, 0x47810000u, 1);                // around 65504 and 65536: overflow to inf
}

TEST(FastRound, Bf16TiesGoToEven) {
    EXPECT_EQ(round_to_bf16(1.0f + 0x1p-8f), 1.0f);                       // halfway, 1.0 is even
    EXPECT_EQ(round_to_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);         // halfway, the even one is above
    EXPECT_EQ(round_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);  // just past halfway: up
    EXPECT_EQ(round_to_bf16(-(1.0f + 0x1p-8f)), -1.0f);                   // the same for negatives
    EXPECT_TRUE(std::isinf(round_to_bf16(3.4e38f)));                      // past bf16's max 3.39e38
    EXPECT_EQ(round_to_bf16(0x1p-133f), 0x1p-133f);                       // bf16's smallest subnormal
    EXPECT_EQ(round_to_bf16(0x1p-134f), 0.0f);                            // half of it: tie to even 0
}

TEST(Fp16Round, SubnormalsUnderflowAndOverflow) {
    EXPECT_EQ(round_to_fp16(0x1p-24f), 0x1p-24f);         // the smallest subnormal survives
    EXPECT_EQ(round_to_fp16(0x1p-25f), 0.0f);             // half of it: a tie, to even 0
    EXPECT_EQ(round_to_fp16(1.5f * 0x1p-25f), 0x1p-24f);  // past half: up
    EXPECT_EQ(round_to_fp16(1.5f * 0x1p-24f), 0x1p-23f);  // 1.5 quanta: tie, to even 2 quanta
    EXPECT_EQ(round_to_fp16(1e-8f), 0.0f);                // below 2^-25: flushed
    EXPECT_EQ(round_to_fp16(65504.0f), 65504.0f);         // max
    EXPECT_EQ(round_to_fp16(65519.0f), 65504.0f);         // below the midpoint to 65536
    EXPECT_TRUE(std::isinf(round_to_fp16(65520.0f)));     // the midpoint ties to 65536: inf
    EXPECT_TRUE(std::isinf(round_to_fp16(-1e5f)) && round_to_fp16(-1e5f) < 0);
    EXPECT_TRUE(std::isnan(round_to_fp16(NAN)));
}

}  // namespace
}  // namespace tl
