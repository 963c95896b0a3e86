// model_value_histograms and wrong_format_load on a small cached base, against independent facts: histogram
// counts against the tensor's shape, overflow / flush-to-zero against the specs' thresholds counted by brute
// force, bf16 bits read as fp16 decoded by hand from the bit fields, and LayerNorm's scale invariance.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <tuple>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "experiments/base_models.hpp"
#include "experiments/experiment.hpp"

namespace tl {
namespace {

const std::map<std::string, std::string> kBase = {{"preset", "nano"}, {"base_steps", "40"}, {"base_seed", "3"}};

std::map<std::string, std::string> with(std::map<std::string, std::string> extra) {
    extra.insert(kBase.begin(), kBase.end());
    return extra;
}

class FormatsModelExperiments : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        const auto dir = std::filesystem::temp_directory_path() / "tl_formats_model_test_cache";
        setenv("XDG_CACHE_HOME", dir.c_str(), 1);
    }
    // The base's weights, flat, and its parameter table, loaded the way the experiments load it.
    static std::vector<float> base_weights(std::vector<ParamInfo>* entries = nullptr) {
        auto backend = make_cpu_backend({1});
        RunContext ctx;
        BaseSpec s;
        s.preset = "nano", s.steps = 40, s.seed = 3;
        BaseModel b = obtain_base(*backend, s, ctx);
        std::vector<float> w(std::size_t(b.model->weights().numel()));
        backend->copy_to_host(w.data(), b.model->weights().vec());
        if (entries) *entries = b.model->params().entries();
        return w;
    }
    static std::vector<float> tensor(const std::string& name) {
        std::vector<ParamInfo> entries;
        const std::vector<float> w = base_weights(&entries);
        for (const ParamInfo& p : entries)
            if (p.name == name) return {w.begin() + p.offset, w.begin() + p.offset + p.numel()};
        ADD_FAILURE() << "no tensor " << name;
        return {};
    }
};

double hist_total(const Result& r, const std::string& name) {
    const Histogram* h = r.find_histogram(name);
    EXPECT_NE(h, nullptr) << name;
    if (!h) return -1;
    EXPECT_EQ(h->edges.size(), h->counts.size() + 1);
    return std::accumulate(h->counts.begin(), h->counts.end(), 0.0);
}

TEST_F(FormatsModelExperiments, HistogramCountsCoverEveryValueOfTheTensor) {
    RunContext ctx;
    const Result r = run_experiment("model_value_histograms", with({{"tensor", "mlp.c_fc"}, {"layer", "1"}}), ctx);
    const double n = 32.0 * 128.0;  // nano: C = 32, c_fc is (C, 4C)
    EXPECT_EQ(r.scalar_or("weights_count", 0), n);
    EXPECT_EQ(hist_total(r, "weights_log2") + r.scalar_or("weights_zero", -1), n);
    EXPECT_EQ(r.scalar_or("grads_count", 0), n);
    EXPECT_EQ(hist_total(r, "grads_log2") + r.scalar_or("grads_zero", -1), n);
    EXPECT_EQ(r.scalar_or("format_max", 0), 65504.0);        // fp16, the default
    EXPECT_EQ(r.scalar_or("format_min_normal", 0), std::ldexp(1.0, -14));
    EXPECT_EQ(r.scalar_or("format_min_subnormal", 0), std::ldexp(1.0, -24));
    const Result all = run_experiment("model_value_histograms", with({{"tensor", "all"}}), ctx);
    EXPECT_EQ(hist_total(all, "weights_log2") + all.scalar_or("weights_zero", -1), double(base_weights().size()));
}

// OCP E4M3: max 448, the next step would be 480, so round-to-nearest-even overflows above 464 (464 itself ties to
// the even 448); min subnormal 2^-9, so values at or below 2^-10 round to zero.
TEST_F(FormatsModelExperiments, OverflowAndFlushCountsMatchBruteForceAtTheSpecThresholds) {
    const std::vector<float> w = tensor("transformer.h.0.attn.c_attn.weight");
    ASSERT_FALSE(w.empty());
    float max_abs = 0, min_abs = INFINITY;
    for (const float x : w)
        if (x != 0) max_abs = std::max(max_abs, std::fabs(x)), min_abs = std::min(min_abs, std::fabs(x));
    auto brute = [&](int k) {
        double over = 0, flush = 0;
        for (const float x : w) {
            const double a = std::fabs(double(float(x * std::ldexp(1.0, k))));
            over += a > 464 ? 1 : 0;
            flush += a != 0 && a <= std::ldexp(1.0, -10) ? 1 : 0;
        }
        return std::pair{over, flush};
    };
    RunContext ctx;
    const int k_big = int(std::ceil(std::log2(464.0 / max_abs))) + 2;   // the largest quarter or so overflow
    const int k_small = int(std::floor(std::log2(std::ldexp(1.0, -10) / min_abs))) - 4;
    for (const int k : {k_big, k_small, 0}) {
        const Result r = run_experiment("model_value_histograms",
                                        with({{"tensor", "attn.c_attn"}, {"layer", "0"}, {"format", "fp8_e4m3"},
                                              {"weight_scale_log2", std::to_string(k)}}),
                                        ctx);
        const auto [over, flush] = brute(k);
        EXPECT_EQ(r.scalar_or("weights_overflow", -1), over) << "k=" << k;
        EXPECT_EQ(r.scalar_or("weights_flush_to_zero", -1), flush) << "k=" << k;
    }
    EXPECT_GT(brute(k_big).first, 0);
    EXPECT_GT(brute(k_small).second, 0);
}

// bf16 bits by round-to-nearest-even on the fp32 pattern; fp16 decoded by hand from sign, 5-bit exponent, 10-bit
// mantissa (IEEE 754 binary16).
std::uint16_t bf16_bits(float x) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    return std::uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
float bf16_value(std::uint16_t h) { return std::bit_cast<float>(std::uint32_t(h) << 16); }
double fp16_value(std::uint16_t h) {
    const int e = (h >> 10) & 31, m = h & 1023;
    const double sign = h & 0x8000 ? -1 : 1;
    if (e == 31) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * std::ldexp(m, -24);
    return sign * std::ldexp(1024 + m, e - 25);
}

TEST_F(FormatsModelExperiments, Bf16BitsReadAsFp16ChangeTheWeightsAndBreakTheModel) {
    const std::vector<float> w = base_weights();
    double changed = 0, nonfinite = 0;
    for (const float x : w) {
        const std::uint16_t h = bf16_bits(x);
        const double wrong = fp16_value(h);
        changed += double(bf16_value(h)) != wrong ? 1 : 0;
        nonfinite += std::isfinite(wrong) ? 0 : 1;
    }
    RunContext ctx;
    const Result bad = run_experiment("wrong_format_load", with({{"load", "bf16_bits_as_fp16"}}), ctx);
    EXPECT_EQ(bad.scalar_or("weights_total", 0), double(w.size()));
    EXPECT_EQ(bad.scalar_or("weights_changed", -1), changed);
    EXPECT_EQ(bad.scalar_or("weights_nonfinite", -1), nonfinite);
    EXPECT_GT(changed, 0.9 * double(w.size()));
    if (bad.scalar_or("loss_loaded_is_finite", 0) == 1.0) {
        EXPECT_GT(bad.scalar_or("loss_loaded", 0), bad.scalar_or("loss_correct", 0) + 1.0);
    }
    EXPECT_LT(bad.scalar_or("accuracy_loaded", 100), bad.scalar_or("accuracy_correct", 0));

    const Result ok = run_experiment("wrong_format_load", with({{"load", "bf16"}}), ctx);
    EXPECT_EQ(ok.scalar_or("weights_changed", -1), 0.0);
    EXPECT_NEAR(ok.scalar_or("loss_correct", 0), ok.scalar_or("loss_fp32", 1e9), 0.05);  // bf16 rounding only
    EXPECT_GT(ok.scalar_or("top1_agreement", 0), 90.0);
}

// Scaling the residual stream by 2^k (ln_f by 2^-k) leaves the function alone (LayerNorm is scale-invariant, the
// tied head's factor cancels ln_f's), so bf16 still works; an fp16 cast turns every |w| >= 65520 into inf.
TEST_F(FormatsModelExperiments, LargeMagnitudesSurviveBf16ButOverflowAnFp16Cast) {
    std::vector<ParamInfo> entries;
    const std::vector<float> w = base_weights(&entries);
    auto is_scaled = [](const std::string& n) {
        return n.find("wte") != n.npos || n.find("wpe") != n.npos || n.find("c_proj") != n.npos;
    };
    double max_scaled = 0;
    for (const ParamInfo& p : entries)
        for (std::int64_t j = 0; is_scaled(p.name) && j < p.numel(); ++j)
            max_scaled = std::max(max_scaled, std::fabs(double(w[std::size_t(p.offset + j)])));
    const int k = int(std::ceil(std::log2(65520 / max_scaled))) + 1;  // the largest weights overflow fp16
    double overflow = 0;
    for (const ParamInfo& p : entries)
        for (std::int64_t j = 0; is_scaled(p.name) && j < p.numel(); ++j)
            overflow += std::fabs(double(bf16_value(bf16_bits(float(w[std::size_t(p.offset + j)] * std::ldexp(1.0, k)))))) >= 65520 ? 1 : 0;
    ASSERT_GT(overflow, 0);
    RunContext ctx;
    const Result plain = run_experiment("wrong_format_load", with({{"load", "fp16"}, {"magnitude_log2", "0"}}), ctx);
    const Result big = run_experiment("wrong_format_load", with({{"load", "fp16"}, {"magnitude_log2", std::to_string(k)}}), ctx);
    EXPECT_EQ(plain.scalar_or("weights_nonfinite", -1), 0.0);
    EXPECT_NEAR(plain.scalar_or("loss_loaded", 0), plain.scalar_or("loss_correct", 1e9), 0.02);
    EXPECT_NEAR(big.scalar_or("loss_correct", 0), plain.scalar_or("loss_correct", 1e9), 0.02);
    EXPECT_EQ(big.scalar_or("weights_nonfinite", -1), overflow);
    EXPECT_EQ(big.scalar_or("loss_loaded_is_finite", 1), 0.0);
}

TEST_F(FormatsModelExperiments, ALayerThePresetLacksIsAClearError) {
    RunContext ctx;
    EXPECT_THROW(run_experiment("model_value_histograms", with({{"layer", "9"}}), ctx), Error);
}

}  // namespace
}  // namespace tl

namespace tl {
namespace {

// 0.1 in each format, by hand: fp16 keeps 10 fraction bits of 1.6 x 2^-4 (1638/1024 x 2^-4), bf16 7 bits
// (205/128 x 2^-4 rounds up), e4m3 3 bits (13/8 x 2^-4); unscaled integers round it to 0.
TEST(FormatRoundingEveryFormat, PointOneAgainstHandRoundedValues) {
    RunContext ctx;
    const Result r = run_experiment("format_rounding", {{"format", "fp16"}, {"value", "0.1"}}, ctx);
    const Table* t = r.find_table("every_format");
    ASSERT_NE(t, nullptr);
    std::map<std::string, Cell> nearest;
    for (const auto& row : t->rows) nearest[std::get<std::string>(row[0])] = row[1];
    EXPECT_EQ(std::get<double>(nearest.at("fp16")), 1638.0 / 1024 / 16);
    EXPECT_EQ(std::get<double>(nearest.at("bf16")), 205.0 / 128 / 16);
    EXPECT_EQ(std::get<double>(nearest.at("fp8_e4m3")), 13.0 / 8 / 16);
    EXPECT_EQ(std::get<double>(nearest.at("fp32")), double(0.1f));
    EXPECT_EQ(std::get<double>(nearest.at("int8")), 0.0);
    EXPECT_EQ(nearest.count("palette4"), 0u);
}

// IEEE layout: in the normal range the gap is 2^(e-m), so gap / value lies in [2^-m / (2 - 2^-m), 2^-m]; the
// smallest subnormal's neighbour is twice it (relative gap 1). Sampled wide formats must still use true neighbours.
TEST(FormatRoundingEveryFormat, RelativeGapsFollowTheMantissaWidth) {
    RunContext ctx;
    for (const auto& [name, m, min_normal, min_sub] :
         {std::tuple{"fp16", 10, std::ldexp(1.0, -14), std::ldexp(1.0, -24)},
          std::tuple{"bf16", 7, std::ldexp(1.0, -126), std::ldexp(1.0, -133)},
          std::tuple{"fp32", 23, std::ldexp(1.0, -126), std::ldexp(1.0, -149)}}) {
        const Result r = run_experiment("format_rounding", {{"format", name}, {"value", "1"}}, ctx);
        const Series* g = r.find_series("relative_gap");
        ASSERT_NE(g, nullptr);
        ASSERT_GT(g->x.size(), 1000u) << name;
        const double eps = std::ldexp(1.0, -m);
        for (std::size_t i = 0; i < g->x.size(); ++i) {
            if (g->x[i] < min_normal) continue;
            EXPECT_GE(g->y[i], eps / (2 - eps)) << name << " at " << g->x[i];
            EXPECT_LE(g->y[i], eps) << name << " at " << g->x[i];
        }
        EXPECT_EQ(g->x.front(), min_sub) << name;
        EXPECT_EQ(g->y.front(), 1.0) << name;
    }
}

}  // namespace
}  // namespace tl
