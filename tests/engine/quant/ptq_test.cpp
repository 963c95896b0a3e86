// PTQ of a whole model: orientation (per_channel = per output feature), identity formats, bf16's rounding
// bound, KL = 0 for identity and KL against a direct softmax computation, footprint accounting, mixed-bit
// allocation.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "data/batch.hpp"
#include "quant/mixed_bit.hpp"
#include "quant/quality.hpp"
#include "quant_fixture.hpp"
#include "train/evaluate.hpp"

namespace tl {
namespace {

using testing::trained_nano;

std::vector<float> all_weights(const Gpt& m) {
    std::vector<float> w(std::size_t(m.weights().numel()));
    m.backend().copy_to_host(w.data(), CVecView(m.weights().data(), m.weights().numel()));
    return w;
}

TEST(QuantTargets, MatricesAreOutByInAndEmbeddingsOptional) {
    auto be = make_cpu_backend({1});
    Gpt m(*be, find_preset("nano").config);
    const auto with = quant_targets(m, EmbeddingPolicy::quantize),
               without = quant_targets(m, EmbeddingPolicy::keep_fp32);
    const std::int64_t C = m.config().n_embd, L = m.config().n_layer;
    EXPECT_EQ(std::int64_t(without.size()), 4 * L);  // c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    EXPECT_EQ(with.size(), without.size() + 2);      // + wte, wpe
    for (const QuantTarget& t : without) {
        std::int64_t want_rows = C, want_cols = C;  // attn.c_proj
        if (t.name.find("c_attn") != std::string::npos) want_rows = 3 * C;
        if (t.name.find("c_fc") != std::string::npos) want_rows = 4 * C;
        if (t.name.find("mlp.c_proj") != std::string::npos) want_cols = 4 * C;
        EXPECT_EQ(t.rows, want_rows) << t.name;
        EXPECT_EQ(t.cols, want_cols) << t.name;
    }
}

// The stored Conv1D weight is (in, out): element (i, o) must come back as target (o, i).
TEST(QuantTargets, ReadWriteTransposes) {
    auto be = make_cpu_backend({1});
    Gpt m(*be, find_preset("nano").config);
    m.init_gpt2(3);
    const QuantTarget t = quant_targets(m, EmbeddingPolicy::keep_fp32)[0];
    const ParamInfo& p = m.params().at(t.name);
    std::vector<float> stored(std::size_t(p.numel()));
    be->copy_to_host(stored.data(), m.param(p));
    const std::vector<float> w = read_target(m, t);
    EXPECT_EQ(w[std::size_t(5 * t.cols + 7)], stored[std::size_t(7 * t.rows + 5)]);
    std::vector<float> changed = w;
    changed[std::size_t(2 * t.cols + 1)] = 42.0f;
    write_target(m, t, changed);
    be->copy_to_host(stored.data(), m.param(p));
    EXPECT_EQ(stored[std::size_t(1 * t.rows + 2)], 42.0f);
}

// per_channel must mean one scale per OUTPUT feature: scaling one output column of the stored (in, out)
// weight by 1000 leaves the other outputs' quantized values as they were.
TEST(Ptq, PerChannelIsPerOutputFeature) {
    auto be = make_cpu_backend({1});
    Gpt a(*be, find_preset("nano").config);
    a.init_gpt2(5);
    const QuantTarget t = quant_targets(a, EmbeddingPolicy::keep_fp32)[0];
    auto b = clone_model(a);
    std::vector<float> w = read_target(*b, t);
    for (std::int64_t c = 0; c < t.cols; ++c) w[std::size_t(0 * t.cols + c)] *= 1000.0f;  // output feature 0
    write_target(*b, t, w);
    const QuantScheme s = make_scheme("int4", "per_channel", 0);
    apply_ptq(a, {{t, s}});
    apply_ptq(*b, {{t, s}});
    const auto qa = read_target(a, t), qb = read_target(*b, t);
    for (std::int64_t r = 1; r < t.rows; ++r)
        for (std::int64_t c = 0; c < t.cols; ++c)
            ASSERT_EQ(qa[std::size_t(r * t.cols + c)], qb[std::size_t(r * t.cols + c)]);
}

TEST(Ptq, Fp32IsTheIdentityAndKlIsZero) {
    auto& n = trained_nano();
    auto q = clone_model(*n.model);
    apply_ptq(*q, uniform_plan(*q, make_scheme("fp32", "per_tensor", 0), EmbeddingPolicy::quantize));
    EXPECT_EQ(all_weights(*q), all_weights(*n.model));
    const ReferenceDist ref = capture_reference(*n.model, n.test);
    EXPECT_GT(ref.positions, 0);
    EXPECT_EQ(kl_to_reference(*q, ref), 0.0);
    const QuantQuality a = measure_quality(*n.model, ref), b = measure_quality(*q, ref);
    EXPECT_EQ(a.accuracy, b.accuracy);
    EXPECT_EQ(a.loss, b.loss);
}

// bf16 keeps 8 significant bits: every weight moves by at most half an ulp, 2^-8 of itself (round to
// nearest), and the model answers exactly as before.
TEST(Ptq, Bf16MovesWeightsWithinHalfAnUlpAndKeepsAccuracy) {
    auto& n = trained_nano();
    auto q = clone_model(*n.model);
    apply_ptq(*q, uniform_plan(*q, make_scheme("bf16", "per_tensor", 0), EmbeddingPolicy::quantize));
    const auto w0 = all_weights(*n.model), w1 = all_weights(*q);
    for (std::size_t i = 0; i < w0.size(); ++i)
        ASSERT_LE(std::fabs(w1[i] - w0[i]), std::ldexp(std::fabs(w0[i]), -8));
    const ReferenceDist ref = capture_reference(*n.model, n.test);
    const QuantQuality a = measure_quality(*n.model, ref), b = measure_quality(*q, ref);
    EXPECT_EQ(a.accuracy, b.accuracy);
    EXPECT_NEAR(a.loss, b.loss, 1e-2);
    EXPECT_LT(b.kl, 1e-3);
}

// KL against a direct computation: one example, both models' logits, softmax in double in the test.
TEST(Ptq, KlMatchesADirectSoftmaxComputation) {
    auto& n = trained_nano();
    auto q = clone_model(*n.model);
    apply_ptq(*q, uniform_plan(*q, make_scheme("int4", "per_tensor", 0), EmbeddingPolicy::quantize));
    const std::vector<Example> one(n.test.begin(), n.test.begin() + 1);
    const ReferenceDist ref = capture_reference(*n.model, one);
    const std::int64_t T = n.model->config().n_positions, V = n.model->config().vocab_size;
    ExampleBatcher batcher(one, 1, int(T), 0.0f, ExampleBatcher::Order::sequential, 0);
    const Batch b = batcher.next();
    auto logits_of = [&](Gpt& m) {
        m.forward(b.tokens.data(), nullptr, 1, T);
        std::vector<float> z(std::size_t(T * V));
        m.backend().copy_to_host(z.data(), CVecView(m.logits().data, T * V));
        return z;
    };
    const auto zp = logits_of(*n.model), zq = logits_of(*q);
    double total = 0;
    int count = 0;
    for (std::int64_t t = 0; t < T; ++t) {
        if (b.weights[std::size_t(t)] <= 0) continue;
        double sp = 0, sq = 0;
        for (std::int64_t v = 0; v < V; ++v)
            sp += std::exp(zp[std::size_t(t * V + v)]), sq += std::exp(zq[std::size_t(t * V + v)]);
        double kl = 0;
        for (std::int64_t v = 0; v < V; ++v) {
            const double pv = std::exp(zp[std::size_t(t * V + v)]) / sp,
                         qv = std::exp(zq[std::size_t(t * V + v)]) / sq;
            kl += pv * std::log(pv / qv);
        }
        total += kl, ++count;
    }
    ASSERT_GT(count, 0);
    EXPECT_NEAR(kl_to_reference(*q, ref), total / count, 1e-5 + 1e-4 * total / count);
    EXPECT_GT(total, 0);
}

// Lower bits cost more: KL to the fp32 model grows int8 < int4 < ternary (all per_channel).
TEST(Ptq, FewerBitsMoveTheDistributionMore) {
    auto& n = trained_nano();
    const ReferenceDist ref = capture_reference(*n.model, n.test);
    double last = -1;
    for (const char* f : {"int8", "int4", "ternary"}) {
        auto q = clone_model(*n.model);
        apply_ptq(*q, uniform_plan(*q, make_scheme(f, "per_channel", 0), EmbeddingPolicy::quantize));
        const double kl = kl_to_reference(*q, ref);
        EXPECT_GT(kl, last) << f;
        last = kl;
    }
}

TEST(Footprint, CountsScalesAndKeepsTheRestAt32Bits) {
    auto be = make_cpu_backend({1});
    Gpt m(*be, find_preset("nano").config);
    const QuantPlan plan = uniform_plan(m, make_scheme("int4", "per_group", 32), EmbeddingPolicy::keep_fp32);
    const QuantFootprint f = footprint(m, plan);
    // nano: every matrix has cols divisible by 32, so int4 + one fp16 scale per 32 = 4.5 bits exactly.
    EXPECT_DOUBLE_EQ(f.bits_per_quantized_weight(), 4.5);
    std::int64_t n = 0;
    for (const PlanEntry& e : plan) n += e.target.rows * e.target.cols;
    EXPECT_EQ(f.quantized_params, n);
    EXPECT_EQ(f.quantized_params + f.other_params, m.params().total());
    EXPECT_DOUBLE_EQ(f.bytes(), (4.5 * double(n) + 32.0 * double(f.other_params)) / 8);
}

TEST(Footprint, BadSchemeNamesTheTensor) {
    auto be = make_cpu_backend({1});
    Gpt m(*be, find_preset("nano").config);
    QuantScheme s = make_scheme("nf4", "per_channel", 0);
    s.symmetry = Symmetry::asymmetric;
    try {
        uniform_plan(m, s, EmbeddingPolicy::keep_fp32);
        FAIL() << "asymmetric nf4 accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("tensor transformer.h.0"), std::string::npos) << e.what();
    }
}

// A hand-made sensitivity table: the allocation is the greedy knapsack one can work out on paper.
TEST(MixedBit, AllocationFollowsSensitivityWithinTheBudget) {
    auto tgt = [](const char* name, std::int64_t n) { return QuantTarget{name, n, 1, false, false}; };
    const std::vector<Sensitivity> s = {
        {tgt("a", 100), 1.0, 0.1, 2, 4},  // gain 0.9 per 200 bits
        {tgt("b", 100), 0.2, 0.1, 2, 4},  // 0.1 per 200
        {tgt("c", 200), 2.0, 0.1, 2, 4},  // 1.9 per 400: densest
        {tgt("d", 100), 0.5, 0.1, 2, 4},  // 0.4 per 200
    };
    const QuantScheme lo = make_scheme("palette2", "per_tensor", 0),
                      hi = make_scheme("palette4", "per_tensor", 0);
    // 500 weights at 2 bits = 1000; budget 3 bits = 1500: room for 500 extra bits -> c (400), then nothing of
    // 200.
    QuantPlan p = allocate_bits(s, lo, hi, 3.0, Priority::most_sensitive);
    ASSERT_EQ(p.size(), 4u);
    EXPECT_EQ(p[2].scheme.format, Format::palette4);
    EXPECT_EQ(p[0].scheme.format, Format::palette2);
    // Budget 3.6: 800 extra bits -> c (400), a (200), d (200).
    p = allocate_bits(s, lo, hi, 3.6, Priority::most_sensitive);
    EXPECT_EQ(p[0].scheme.format, Format::palette4);
    EXPECT_EQ(p[1].scheme.format, Format::palette2);
    EXPECT_EQ(p[3].scheme.format, Format::palette4);
    p = allocate_bits(s, lo, hi, 2.4, Priority::least_sensitive);  // 200 extra bits: b, the least sensitive
    EXPECT_EQ(p[1].scheme.format, Format::palette4);
    EXPECT_EQ(p[2].scheme.format, Format::palette2);
    EXPECT_THROW(allocate_bits(s, lo, hi, 1.5, Priority::most_sensitive), Error);
}

TEST(MixedBit, SensitivityLeavesTheModelUnchanged) {
    auto& n = trained_nano();
    const auto before = all_weights(*n.model);
    double base = 0;
    const auto s = measure_sensitivity(*n.model, quant_targets(*n.model, EmbeddingPolicy::quantize),
                                       make_scheme("palette2", "per_tensor", 0),
                                       make_scheme("int8", "per_channel", 0), n.val, &base);
    EXPECT_EQ(all_weights(*n.model), before);
    EXPECT_NEAR(base, response_loss(*n.model, n.val, 16), 1e-9);
    EXPECT_EQ(s.size(), quant_targets(*n.model, EmbeddingPolicy::quantize).size());
}

}  // namespace
}  // namespace tl
