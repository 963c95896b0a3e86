// Per-tensor merge math against independent oracles: slerp's closed form on 2-D vectors (angle interpolation),
// its endpoints and norm; TIES against a hand-worked example of Yadav et al.'s three steps and against task
// arithmetic; top-k trimming against a full sort; DARE's identity at p = 0 and its unbiasedness over seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/rng.hpp"
#include "testing/expect_allclose.hpp"
#include "merge/merge_ops.hpp"

namespace tl {
namespace {

std::vector<float> random_vec(std::int64_t n, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = rng.normal();
    return v;
}

double norm(const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s);
}

TEST(Slerp, EndpointsAreTheInputs) {
    const auto a = random_vec(1000, 1), b = random_vec(1000, 2);
    std::vector<float> out(a.size());
    slerp_merge(out.data(), a.data(), b.data(), 1000, 0.0);
    TL_EXPECT_ALLCLOSE(out, a, 1e-6, 1e-6);
    slerp_merge(out.data(), a.data(), b.data(), 1000, 1.0);
    TL_EXPECT_ALLCLOSE(out, b, 1e-6, 1e-6);
}

TEST(Slerp, KeepsTheNormOfUnitVectors) {
    auto a = random_vec(512, 3), b = random_vec(512, 4);
    const double na = norm(a), nb = norm(b);
    for (auto& x : a) x = float(x / na);
    for (auto& x : b) x = float(x / nb);
    std::vector<float> out(a.size());
    for (double t : {0.1, 0.25, 0.5, 0.8}) {
        slerp_merge(out.data(), a.data(), b.data(), 512, t);
        EXPECT_NEAR(norm(out), 1.0, 1e-5) << "t = " << t;
    }
    // The chord (linear interpolation) shrinks: that is what slerp fixes.
    std::vector<float> chord(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) chord[i] = 0.5f * (a[i] + b[i]);
    EXPECT_LT(norm(chord), 0.8);
}

TEST(Slerp, EqualsAngleInterpolationIn2D) {
    // a at angle 10 degrees with radius 1, b at 100 degrees: slerp moves along the unit circle at angle 10 + 90 t.
    const double pi = std::numbers::pi, a0 = 10 * pi / 180, b0 = 100 * pi / 180;
    const float a[2] = {float(std::cos(a0)), float(std::sin(a0))};
    const float b[2] = {float(std::cos(b0)), float(std::sin(b0))};
    for (double t : {0.0, 0.3, 0.5, 0.9, 1.0}) {
        float out[2];
        slerp_merge(out, a, b, 2, t);
        const double ang = a0 + t * (b0 - a0);
        EXPECT_NEAR(out[0], std::cos(ang), 1e-6) << "t = " << t;
        EXPECT_NEAR(out[1], std::sin(ang), 1e-6) << "t = " << t;
    }
}

TEST(Slerp, FallsBackToLinearForNearlyParallelVectors) {
    const float a[3] = {1, 2, 3}, b[3] = {2, 4, 6.0001f};  // cos ~ 1
    float out[3];
    slerp_merge(out, a, b, 3, 0.25);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(out[i], 0.75 * a[i] + 0.25 * b[i], 1e-6);
}

TEST(Linear, WeightsOneZeroGiveTheFirstInput) {
    const auto a = random_vec(100, 5), b = random_vec(100, 6);
    const float* xs[] = {a.data(), b.data()};
    const double w[] = {1.0, 0.0};
    std::vector<float> out(100);
    linear_merge(out.data(), {xs, w, nullptr, 100}, Normalize::yes);
    TL_EXPECT_ALLCLOSE(out, a, 0, 0);
    const double w2[] = {3.0, 1.0};  // normalised: 0.75 a + 0.25 b
    linear_merge(out.data(), {xs, w2, nullptr, 100}, Normalize::yes);
    for (int i = 0; i < 100; ++i) EXPECT_NEAR(out[std::size_t(i)], 0.75 * a[std::size_t(i)] + 0.25 * b[std::size_t(i)], 1e-6);
}

TEST(TrimTopK, KeepsExactlyTheLargestMagnitudes) {
    auto d = random_vec(1001, 7);
    const auto original = d;
    std::vector<float> scratch;
    trim_top_k(d.data(), 1001, 0.2, scratch);  // k = floor(200.2) = 200
    std::vector<float> mags;
    for (float x : original) mags.push_back(std::fabs(x));
    std::sort(mags.begin(), mags.end(), std::greater<float>());  // the oracle: a full sort
    int kept = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
        if (d[i] != 0) {
            ++kept;
            EXPECT_EQ(d[i], original[i]);
            EXPECT_GE(std::fabs(d[i]), mags[199]);
        } else {
            EXPECT_LE(std::fabs(original[i]), mags[199]);
        }
    }
    EXPECT_EQ(kept, 200);
}

TEST(TrimTopK, BreaksTiesToKeepExactlyK) {
    std::vector<float> d = {1, -1, 1, -1, 2}, scratch;
    trim_top_k(d.data(), 5, 0.6, scratch);  // k = 3: the 2, then the first two of the tied 1s
    EXPECT_EQ(d, (std::vector<float>{1, -1, 0, 0, 2}));
}

TEST(Ties, DensityOneWithOneModelIsTaskArithmetic) {
    const auto base = random_vec(300, 8), x = random_vec(300, 9);
    const float* xs[] = {x.data()};
    const double w[] = {1.0}, density[] = {1.0};
    std::vector<float> ties(300), ta(300), oracle(300);
    for (double lambda : {1.0, 0.5, -1.0}) {
        TaskArithmeticArgs t{Sparsify::magnitude, Consensus::sign, density, lambda, Normalize::yes, 0, {}};
        task_arithmetic_merge(ties.data(), {xs, w, base.data(), 300}, t);
        TaskArithmeticArgs plain;
        plain.lambda = lambda;
        task_arithmetic_merge(ta.data(), {xs, w, base.data(), 300}, plain);
        for (int i = 0; i < 300; ++i) oracle[std::size_t(i)] = float(base[std::size_t(i)] + lambda * (x[std::size_t(i)] - base[std::size_t(i)]));
        TL_EXPECT_ALLCLOSE(ties, oracle, 1e-6, 1e-6);
        TL_EXPECT_ALLCLOSE(ta, oracle, 1e-6, 1e-6);
    }
}

TEST(Ties, FollowsTrimElectMergeByHand) {
    // Task vectors (base 0), density 2/3 keeps the 2 largest of 3 in each:
    //   t1 = [ 3, -1,  2] -> [ 3,  0,  2]      t2 = [-2, -4,  1] -> [-2, -4,  0]      t3 = [ 1,  5, -6] -> [ 0,  5, -6]
    // elected sign (sign of the sum):  [+, +, -]   (3-2+0 = 1 > 0;  0-4+5 = 1 > 0;  2+0-6 < 0)
    // disjoint mean of agreeing entries:  [3/1, 5/1, -6/1]
    const std::vector<float> base(3, 0.0f), t1 = {3, -1, 2}, t2 = {-2, -4, 1}, t3 = {1, 5, -6};
    const float* xs[] = {t1.data(), t2.data(), t3.data()};
    const double w[] = {1, 1, 1}, density[] = {2.0 / 3 + 1e-9, 2.0 / 3 + 1e-9, 2.0 / 3 + 1e-9};
    std::vector<float> out(3);
    TaskArithmeticArgs a{Sparsify::magnitude, Consensus::sign, density, 1.0, Normalize::yes, 0, {}};
    task_arithmetic_merge(out.data(), {xs, w, base.data(), 3}, a);
    EXPECT_EQ(out, (std::vector<float>{3, 5, -6}));
    // Plain task arithmetic sums everything: [2, 0, -3].
    task_arithmetic_merge(out.data(), {xs, w, base.data(), 3}, {});
    EXPECT_EQ(out, (std::vector<float>{2, 0, -3}));
}

TEST(Dare, DensityOneIsIdentity) {
    auto d = random_vec(777, 10);
    const auto original = d;
    dare_drop(d.data(), 777, 1.0, 42, 3);
    EXPECT_EQ(d, original);
}

TEST(Dare, DropsTheRightFractionAndRescales) {
    std::vector<float> d(100000, 2.0f);
    dare_drop(d.data(), 100000, 0.3, 1, 1);
    const auto kept = std::count_if(d.begin(), d.end(), [](float x) { return x != 0; });
    EXPECT_NEAR(double(kept) / 100000, 0.3, 0.005);  // binomial sd ~ 0.0015
    for (float x : d) {
        if (x != 0) {
            EXPECT_FLOAT_EQ(x, 2.0f / 0.3f);
        }
    }
}

TEST(Dare, MeanOverSeedsApproachesTheUndroppedVector) {
    const auto v = random_vec(64, 11);
    std::vector<double> mean(64, 0.0);
    const int seeds = 4000;
    for (int s = 0; s < seeds; ++s) {
        auto d = v;
        dare_drop(d.data(), 64, 0.5, std::uint64_t(s), 0);
        for (int i = 0; i < 64; ++i) mean[std::size_t(i)] += d[std::size_t(i)] / double(seeds);
    }
    // Each entry is v * Bernoulli(0.5) * 2: sd of the mean = |v| / sqrt(seeds) ~ 0.016 |v|; allow 5 sd.
    for (int i = 0; i < 64; ++i)
        EXPECT_NEAR(mean[std::size_t(i)], v[std::size_t(i)], 5 * std::fabs(v[std::size_t(i)]) / std::sqrt(seeds) + 1e-6);
}

}  // namespace
}  // namespace tl
