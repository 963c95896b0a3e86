// Generation (model/generate.hpp): the KV-cache decoder against the full forward it must reproduce, and the
// sampling rules: greedy is deterministic and is the argmax, a seed fixes temperature sampling, top_k = 1 is
// greedy, top_k keeps the k most likely tokens in softmax proportions, stop tokens and the context limit.
#include "model/generate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "model/config.hpp"
#include "model/gpt.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

// A nano model whose logits are far from uniform: GPT-2 init plus noise on every parameter.
struct NanoModel {
    std::unique_ptr<Backend> be = make_cpu_backend({1});
    Gpt model{*be, find_preset("nano").config};
    explicit NanoModel(std::uint64_t seed) {
        model.init_gpt2(seed);
        Rng rng(seed, /*stream=*/1000);
        for (const ParamInfo& p : model.params().entries()) {
            const VecView w = model.param(p);
            for (std::int64_t i = 0; i < w.n; ++i) w[i] += 0.1f * rng.normal();
        }
    }
    std::int64_t V() const { return model.config().vocab_size; }
    std::int64_t ctx() const { return model.config().n_positions; }
};

std::vector<std::int32_t> random_tokens(std::int64_t n, std::int64_t V, std::uint64_t seed) {
    Rng rng(seed, /*stream=*/3000);
    std::vector<std::int32_t> t(static_cast<std::size_t>(n));
    for (auto& x : t) x = std::int32_t(rng.below(std::uint64_t(V)));
    return t;
}

std::vector<float> row(const CMatView& m, std::int64_t r) { return {m.row(r), m.row(r) + m.cols}; }

std::int32_t argmax(const std::vector<float>& v) {
    return std::int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// -----------------------------------------------------------------------------------------------------------
// Causal attention makes row t of a forward over the whole sequence the logits after the prefix 0..t, which
// is what the decoder returns at step t. Float sums in a different order: agreement to 1e-4 on logits of
// order 1.
TEST(Generate, KvDecoderMatchesFullForwardAtEveryPosition) {
    NanoModel m(51);
    const std::int64_t T = m.ctx();  // the whole context
    const auto tokens = random_tokens(T, m.V(), 51);
    m.model.forward(tokens.data(), nullptr, 1, T);
    std::vector<std::vector<float>> full;
    for (std::int64_t t = 0; t < T; ++t) full.push_back(row(m.model.logits(), t));

    KvDecoder dec(m.model);
    for (std::int64_t t = 0; t < T; ++t) {
        SCOPED_TRACE(::testing::Message() << "position " << t);
        EXPECT_EQ(dec.length(), t);
        TL_EXPECT_ALLCLOSE(dec.step(tokens[std::size_t(t)]), full[std::size_t(t)], 1e-4, 1e-4);
    }
    EXPECT_THROW(dec.step(0), Error);  // the context is full

    // An explicit forward over a prefix gives the same last row.
    for (const std::int64_t len : {1, 7, 20}) {
        m.model.forward(tokens.data(), nullptr, 1, len);
        SCOPED_TRACE(::testing::Message() << "prefix " << len);
        TL_EXPECT_ALLCLOSE(row(m.model.logits(), len - 1), full[std::size_t(len - 1)], 1e-4, 1e-4);
    }

    // reset() forgets the cache: the same tokens give the same logits again, bit for bit.
    dec.reset();
    std::vector<float> first;
    for (std::int64_t t = 0; t < 5; ++t) first = dec.step(tokens[std::size_t(t)]);
    KvDecoder fresh(m.model);
    std::vector<float> again;
    for (std::int64_t t = 0; t < 5; ++t) again = fresh.step(tokens[std::size_t(t)]);
    TL_EXPECT_ALLCLOSE(first, again, 0.0, 0.0);
}

// Rows of a batch are independent: batch row 1 of a B = 2 forward is the decoder over that row's tokens.
TEST(Generate, KvDecoderMatchesSecondRowOfABatch) {
    NanoModel m(52);
    const std::int64_t T = 9;
    const auto tokens = random_tokens(2 * T, m.V(), 52);
    m.model.forward(tokens.data(), nullptr, 2, T);
    KvDecoder dec(m.model);
    for (std::int64_t t = 0; t < T; ++t) {
        SCOPED_TRACE(::testing::Message() << "position " << t);
        TL_EXPECT_ALLCLOSE(dec.step(tokens[std::size_t(T + t)]), row(m.model.logits(), T + t), 1e-4, 1e-4);
    }
}

// -----------------------------------------------------------------------------------------------------------
TEST(Generate, GreedyIsDeterministicAndIsTheArgmaxOfTheFullForward) {
    NanoModel m(53);
    const auto prompt = random_tokens(5, m.V(), 53);
    SampleOptions opt;
    opt.max_new_tokens = 12;
    const auto a = generate(m.model, prompt, opt);
    const auto b = generate(m.model, prompt, opt);
    ASSERT_EQ(a.size(), 12u);
    EXPECT_EQ(a, b);

    // The same tokens by the slow road: a full forward over the sequence so far, argmax of its last row.
    std::vector<std::int32_t> seq = prompt;
    for (int i = 0; i < opt.max_new_tokens; ++i) {
        m.model.forward(seq.data(), nullptr, 1, std::int64_t(seq.size()));
        seq.push_back(argmax(row(m.model.logits(), std::int64_t(seq.size()) - 1)));
    }
    EXPECT_EQ(std::vector<std::int32_t>(seq.begin() + 5, seq.end()), a);
}

TEST(Generate, TemperatureSamplingIsFixedBySeed) {
    NanoModel m(54);
    const auto prompt = random_tokens(4, m.V(), 54);
    SampleOptions opt;
    opt.max_new_tokens = 20;
    opt.temperature = 1.5f;
    opt.seed = 7;
    const auto a = generate(m.model, prompt, opt);
    EXPECT_EQ(generate(m.model, prompt, opt), a);
    opt.seed = 8;
    const auto b = generate(m.model, prompt, opt);
    EXPECT_NE(a, b) << "20 tokens sampled over 257 ids came out the same for two seeds";
    opt.temperature = 0.0f;
    EXPECT_NE(generate(m.model, prompt, opt), a) << "temperature 1.5 sampled exactly the greedy sequence";
}

TEST(Generate, TopKOneIsGreedy) {
    NanoModel m(55);
    const auto prompt = random_tokens(4, m.V(), 55);
    SampleOptions greedy;
    greedy.max_new_tokens = 15;
    const auto expect = generate(m.model, prompt, greedy);
    for (const std::uint64_t seed : {1, 2, 3}) {
        SampleOptions opt = greedy;
        opt.temperature = 1.0f;
        opt.top_k = 1;
        opt.seed = seed;
        EXPECT_EQ(generate(m.model, prompt, opt), expect) << "seed " << seed;
    }
}

// top_k = 3 draws only the three largest logits, in their softmax proportions (2000 draws: the standard error
// of a frequency is <= 0.011, the tolerance 0.04 is over 3.5 of them).
TEST(Generate, TopKSamplesTheKLargestInProportion) {
    std::vector<float> logits(50, -1.0f);
    logits[7] = 2.0f, logits[30] = 1.5f, logits[41] = 0.5f, logits[3] = 0.4f;
    SampleOptions opt;
    opt.temperature = 1.0f;
    opt.top_k = 3;
    opt.seed = 99;
    const double z = std::exp(2.0) + std::exp(1.5) + std::exp(0.5);
    const double p7 = std::exp(2.0) / z, p30 = std::exp(1.5) / z, p41 = std::exp(0.5) / z;
    int n7 = 0, n30 = 0, n41 = 0;
    const int draws = 2000;
    for (int i = 0; i < draws; ++i) {
        const std::int32_t t = sample_token(logits, opt, std::uint64_t(i));
        ASSERT_TRUE(t == 7 || t == 30 || t == 41) << "draw " << i << " picked " << t << ", outside the top 3";
        n7 += t == 7, n30 += t == 30, n41 += t == 41;
    }
    EXPECT_NEAR(n7 / double(draws), p7, 0.04);
    EXPECT_NEAR(n30 / double(draws), p30, 0.04);
    EXPECT_NEAR(n41 / double(draws), p41, 0.04);
    // The same draw index gives the same token; temperature 0 is the argmax.
    EXPECT_EQ(sample_token(logits, opt, 5), sample_token(logits, opt, 5));
    opt.temperature = 0.0f;
    EXPECT_EQ(sample_token(logits, opt, 5), 7);
}

// -----------------------------------------------------------------------------------------------------------
TEST(Generate, StopsBeforeAStopToken) {
    NanoModel m(56);
    const auto prompt = random_tokens(3, m.V(), 56);
    SampleOptions opt;
    opt.max_new_tokens = 10;
    const auto full = generate(m.model, prompt, opt);
    ASSERT_EQ(full.size(), 10u);
    const std::int32_t stop = full[4];
    const auto first = std::find(full.begin(), full.end(), stop);
    opt.stop_tokens = {stop};
    EXPECT_EQ(generate(m.model, prompt, opt), std::vector<std::int32_t>(full.begin(), first));
}

TEST(Generate, StopsAtTheContextLimitAndRejectsBadPrompts) {
    NanoModel m(57);
    const std::int64_t ctx = m.ctx();
    SampleOptions opt;
    opt.max_new_tokens = 10;
    const auto prompt = random_tokens(ctx - 2, m.V(), 57);
    std::vector<std::int32_t> out;
    ASSERT_NO_THROW(out = generate(m.model, prompt, opt));
    // Every fed token fits the context; the last sampled one need not be fed.
    EXPECT_GE(std::int64_t(out.size()), 2);
    EXPECT_LE(std::int64_t(out.size()), 3);

    EXPECT_THROW(generate(m.model, {}, opt), Error);
    EXPECT_THROW(generate(m.model, random_tokens(ctx, m.V(), 58), opt), Error);
}

}  // namespace
}  // namespace tl
