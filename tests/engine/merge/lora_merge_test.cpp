// LoRA combining against a naive triple-loop product (the oracle): cat is exact (B_cat A_cat = sum B_i A_i),
// svd at full rank reproduces the product, svd at rank 1 of a rank-1 update is exact, linear (1, 0) is the first.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "testing/expect_allclose.hpp"
#include "merge/lora_merge.hpp"

namespace tl {
namespace {

TensorData random_mat(std::int64_t r, std::int64_t c, Rng& rng) {
    TensorData t{{r, c}, std::vector<float>(std::size_t(r * c))};
    for (auto& v : t.values) v = rng.normal();
    return t;
}

// scale * B A by loops, in double.
std::vector<double> naive_delta(const LoraFactors& m) {
    const std::int64_t out = m.B.shape[0], in = m.A.shape[1], r = m.A.shape[0];
    std::vector<double> d(std::size_t(out * in), 0.0);
    for (std::int64_t o = 0; o < out; ++o)
        for (std::int64_t i = 0; i < in; ++i)
            for (std::int64_t k = 0; k < r; ++k)
                d[std::size_t(o * in + i)] += m.scale * double(m.B.values[std::size_t(o * r + k)]) *
                                              m.A.values[std::size_t(k * in + i)];
    return d;
}

LoraFactorSet adapter(std::int64_t r, std::uint64_t seed, double scale) {
    Rng rng(seed);
    LoraFactorSet a;
    a["transformer.h.0.attn.c_attn"] = {random_mat(r, 16, rng), random_mat(24, r, rng), scale};
    a["transformer.h.0.mlp.c_fc"] = {random_mat(r, 16, rng), random_mat(12, r, rng), scale};
    return a;
}

std::vector<double> sum_of_deltas(const LoraFactorSet& a, const LoraFactorSet& b, const std::string& name) {
    std::vector<double> d = naive_delta(a.at(name)), e = naive_delta(b.at(name));
    for (std::size_t i = 0; i < d.size(); ++i) d[i] += e[i];
    return d;
}

TEST(LoraMerge, CatEqualsTheSumOfTheSeparateUpdates) {
    const LoraFactorSet a = adapter(2, 1, 0.5), b = adapter(3, 2, 2.0);
    const LoraFactorSet adapters[] = {a, b};
    const LoraFactorSet m = merge_lora(adapters, {LoraCombine::cat, {}, 0});
    for (const auto& [name, mod] : m) {
        EXPECT_EQ(mod.rank(), 5);
        TL_EXPECT_ALLCLOSE(lora_delta(mod), sum_of_deltas(a, b, name), 1e-5, 1e-5);
    }
}

TEST(LoraMerge, SvdAtFullRankReproducesTheProduct) {
    const LoraFactorSet a = adapter(2, 3, 1.0), b = adapter(4, 4, 1.5);
    const LoraFactorSet adapters[] = {a, b};
    const LoraFactorSet m = merge_lora(adapters, {LoraCombine::svd, {}, 12});  // min(out, in) for c_fc
    TL_EXPECT_ALLCLOSE(lora_delta(m.at("transformer.h.0.mlp.c_fc")),
                       sum_of_deltas(a, b, "transformer.h.0.mlp.c_fc"), 1e-4, 1e-4);
    // Rank 6 = 2 + 4 also holds the whole sum (its rank is at most 6).
    const LoraFactorSet m6 = merge_lora(adapters, {LoraCombine::svd, {}, 6});
    for (const auto& [name, mod] : m6) TL_EXPECT_ALLCLOSE(lora_delta(mod), sum_of_deltas(a, b, name), 1e-4, 1e-4);
}

TEST(LoraMerge, SvdTruncatesToTheRequestedRank) {
    const LoraFactorSet a = adapter(1, 5, 1.0), b = adapter(1, 6, 1.0);
    const LoraFactorSet adapters[] = {a, b};
    const LoraFactorSet m = merge_lora(adapters, {LoraCombine::svd, {1.0, 0.0}, 1});  // only a: rank 1, exact
    for (const auto& [name, mod] : m) {
        EXPECT_EQ(mod.rank(), 1);
        TL_EXPECT_ALLCLOSE(lora_delta(mod), naive_delta(a.at(name)), 1e-4, 1e-5);
    }
}

TEST(LoraMerge, LinearWithWeightsOneZeroIsTheFirstAdapter) {
    const LoraFactorSet a = adapter(3, 7, 0.25), b = adapter(3, 8, 4.0);
    const LoraFactorSet adapters[] = {a, b};
    const LoraFactorSet m = merge_lora(adapters, {LoraCombine::linear, {1.0, 0.0}, 0});
    for (const auto& [name, mod] : m) TL_EXPECT_ALLCLOSE(lora_delta(mod), naive_delta(a.at(name)), 1e-5, 1e-6);
}

TEST(LoraMerge, RejectsMismatchedAdapters) {
    const LoraFactorSet a = adapter(2, 1, 1.0), b = adapter(3, 2, 1.0);
    const LoraFactorSet pair[] = {a, b};
    EXPECT_THROW(merge_lora(pair, {LoraCombine::linear, {}, 0}), Error);  // ranks differ
    EXPECT_THROW(merge_lora(pair, {LoraCombine::svd, {}, 0}), Error);     // rank 0
    LoraFactorSet c = a;
    c.erase(c.begin());
    const LoraFactorSet other[] = {a, c};
    EXPECT_THROW(merge_lora(other, {LoraCombine::cat, {}, 0}), Error);
}

}  // namespace
}  // namespace tl
