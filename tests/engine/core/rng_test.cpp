// Rng: the Philox-4x32-10 core against the Random123 known-answer vectors (kat_vectors), and the derived
// distributions against their defining properties.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/rng.hpp"

namespace tl {
namespace {

// Random123's philox4x32-10 KAT: counter words (c0..c3), key (k0, k1) -> output. Our mapping is
// c0,c1 = counter low/high, c2,c3 = stream low/high, k0,k1 = seed low/high.
TEST(Rng, PhiloxMatchesRandom123KnownAnswers) {
    auto a = Rng::philox(0, 0, 0);
    EXPECT_EQ(a[0], 0x6627e8d5u);
    EXPECT_EQ(a[1], 0xe169c58du);
    EXPECT_EQ(a[2], 0xbc57ac4cu);
    EXPECT_EQ(a[3], 0x9b00dbd8u);
    auto b = Rng::philox(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull);
    EXPECT_EQ(b[0], 0x408f276du);
    EXPECT_EQ(b[1], 0x41c83b0eu);
    EXPECT_EQ(b[2], 0xa20bc7c6u);
    EXPECT_EQ(b[3], 0x6d5451fdu);
    // counter (243f6a88, 85a308d3, 13198a2e, 03707344), key (a4093822, 299f31d0): digits of pi.
    auto c = Rng::philox(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
    EXPECT_EQ(c[0], 0xd16cfe09u);
    EXPECT_EQ(c[1], 0x94fdccebu);
    EXPECT_EQ(c[2], 0x5001e420u);
    EXPECT_EQ(c[3], 0x24126ea1u);
}

TEST(Rng, SameSeedAndStreamGiveTheSameSequence) {
    Rng a(42, 3), b(42, 3), c(42, 4), d(43, 3);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 100; ++i) {
        const auto x = a.next_u32();
        EXPECT_EQ(x, b.next_u32());
        same_c += x == c.next_u32();
        same_d += x == d.next_u32();
    }
    EXPECT_LT(same_c, 3);
    EXPECT_LT(same_d, 3);
}

TEST(Rng, NormalHasUnitMomentsAndUniformIsInRange) {
    Rng rng(7);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
        const double x = rng.normal();
        sum += x;
        sum2 += x * x;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));  // 5 standard errors
    EXPECT_NEAR(var, 1.0, 0.02);
    for (int i = 0; i < 10000; ++i) {
        const double u = rng.uniform();
        ASSERT_GE(u, 0.0);
        ASSERT_LT(u, 1.0);
    }
}

TEST(Rng, BelowCoversTheRangeUniformly) {
    Rng rng(11);
    std::vector<int> counts(7, 0);
    for (int i = 0; i < 70000; ++i) {
        const auto k = rng.below(7);
        ASSERT_LT(k, 7u);
        ++counts[k];
    }
    for (int c : counts) EXPECT_NEAR(c, 10000, 500);  // ~5 sigma
}

}  // namespace
}  // namespace tl
