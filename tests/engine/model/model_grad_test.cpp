// Whole-model gradient checks: Gpt::backward against central differences of Gpt::forward's losses, for
// loss = sum_i w_i l_i / norm with non-uniform token weights. The model runs in float, so the differences use
// a large step and the comparison is loose, but a wrong sign or a missing term still fails (each tensor is
// sampled at least once). Per-op checks in double: tests/engine/backend/ref_grad_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/rng.hpp"
#include "model/config.hpp"
#include "model/gpt.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

// Central differences of a float model: the loss is summed in double from float per-token losses, which carry
// rounding noise of ~1e-7..1e-6; over 2h = 1e-2 that is up to ~1e-4 in the quotient, and the O(h^2)
// truncation term is ~1e-5. Observed: relative errors <= 4e-3, absolute <= 1e-4 on gradients ~0.5. Hence the
// check |analytic - numeric| <= 1e-4 + 2e-2 |numeric|: a dropped term or a flipped sign on any gradient above
// ~1e-4 still fails (a flipped sign is a relative error of 2).
constexpr double kStep = 5e-3;
constexpr double kRtol = 2e-2;
constexpr double kAtol = 1e-4;

struct Sample {
    const ParamInfo* param;
    std::int64_t index;  // within the tensor
};

class ModelCheck {
public:
    ModelCheck(const GptConfig& cfg, std::int64_t B, std::int64_t T, std::uint64_t seed)
        : be_(make_cpu_backend({1})), model_(*be_, cfg), B_(B), T_(T) {
        model_.init_gpt2(seed);
        // GPT-2's init has tiny weights, zero biases and unit LayerNorm scales, under which many gradient
        // terms vanish or cancel. Perturb every parameter so each path carries a visible gradient.
        Rng rng(seed, /*stream=*/1000);
        for (const ParamInfo& p : model_.params().entries()) {
            const VecView w = model_.param(p);
            for (std::int64_t i = 0; i < w.n; ++i) w[i] += 0.1f * rng.normal();
        }
        const std::int64_t N = B * T;
        for (std::int64_t i = 0; i < N; ++i) {
            tokens_.push_back(std::int32_t(rng.below(std::uint64_t(cfg.vocab_size))));
            targets_.push_back(std::int32_t(rng.below(std::uint64_t(cfg.vocab_size))));
            weights_.push_back(float(0.2 + 1.8 * rng.uniform()));
        }
        weights_[1] = 0.0f;  // a prompt token: counts in no loss
        weights_[std::size_t(N - 1)] = 0.0f;
        double sum = 0;
        for (float w : weights_) sum += w;
        norm_ = float(1.3 * sum);  // not the sum of this batch's weights: other micro-batches count too
        model_.enable_grads();
    }

    Gpt& model() { return model_; }
    const std::vector<std::int32_t>& tokens() const { return tokens_; }
    std::int64_t T() const { return T_; }
    void set_tokens(std::vector<std::int32_t> t) { tokens_ = std::move(t); }

    double loss() {
        model_.forward(tokens_.data(), targets_.data(), B_, T_);
        const CVecView l = model_.losses();
        double s = 0;
        for (std::int64_t i = 0; i < l.n; ++i) s += double(weights_[std::size_t(i)]) * double(l[i]);
        return s / double(norm_);
    }

    // The analytic gradient of loss(), flat.
    std::vector<float> grads() {
        model_.zero_grads();
        model_.forward(tokens_.data(), targets_.data(), B_, T_);
        model_.backward(weights_.data(), norm_);
        const float* g = model_.grads().data();
        return {g, g + model_.params().total()};
    }

    // One more forward and backward, without zeroing the gradients first.
    void accumulate() {
        model_.forward(tokens_.data(), targets_.data(), B_, T_);
        model_.backward(weights_.data(), norm_);
    }

    float& weight(const ParamInfo& p, std::int64_t i) { return model_.param(p)[i]; }

    // d loss / d theta where theta moves the listed elements together: element k by sign[k] * h.
    double numeric(const std::vector<float*>& elems, const std::vector<float>& signs, double h = kStep) {
        std::vector<float> saved;
        for (float* e : elems) saved.push_back(*e);
        auto shift = [&](double by) {
            for (std::size_t k = 0; k < elems.size(); ++k)
                *elems[k] = float(double(saved[k]) + signs[k] * by);
        };
        shift(h);
        const double lp = loss();
        shift(-h);
        const double lm = loss();
        for (std::size_t k = 0; k < elems.size(); ++k) *elems[k] = saved[k];
        return (lp - lm) / (2 * h);
    }
    double numeric(const ParamInfo& p, std::int64_t i) { return numeric({&weight(p, i)}, {1.0f}); }

private:
    std::unique_ptr<Backend> be_;
    Gpt model_;
    std::int64_t B_, T_;
    std::vector<std::int32_t> tokens_, targets_;
    std::vector<float> weights_;
    float norm_ = 1;
};

bool close(double analytic, double numeric) {
    return std::fabs(analytic - numeric) <= kAtol + kRtol * std::fabs(numeric);
}

// For every tensor the element with the largest analytic gradient among 8 random candidates (a missing or
// wrong term then shows at a size the loose float tolerance cannot hide), then `extra` elements drawn
// uniformly from tensors drawn uniformly. wpe draws from the T positions in use. One wte element also lies in
// the row of an input token, whose gradient has both the head's and the input embedding's term.
std::vector<Sample> pick_samples(ModelCheck& mc, const std::vector<float>& g, int extra, std::uint64_t seed) {
    Rng rng(seed, /*stream=*/2000);
    const GptConfig& cfg = mc.model().config();
    const auto& entries = mc.model().params().entries();
    auto draw = [&](const ParamInfo& p) {
        const std::int64_t n = p.role == ParamRole::position_embedding ? mc.T() * cfg.n_embd : p.numel();
        return std::int64_t(rng.below(std::uint64_t(n)));
    };
    std::vector<Sample> out;
    for (const ParamInfo& p : entries) {
        Sample best{&p, draw(p)};
        for (int k = 1; k < 8; ++k) {
            const std::int64_t i = draw(p);
            if (std::fabs(g[std::size_t(p.offset + i)]) > std::fabs(g[std::size_t(p.offset + best.index)]))
                best.index = i;
        }
        out.push_back(best);
    }
    for (int k = 0; k < extra; ++k) {
        const ParamInfo& p = entries[rng.below(entries.size())];
        out.push_back({&p, draw(p)});
    }
    const ParamInfo& wte = mc.model().params().at("transformer.wte.weight");
    out.push_back({&wte, std::int64_t(mc.tokens()[2]) * cfg.n_embd +
                             std::int64_t(rng.below(std::uint64_t(cfg.n_embd)))});
    return out;
}

void check_samples(ModelCheck& mc, int extra, std::uint64_t seed) {
    const std::vector<float> g = mc.grads();
    const std::vector<Sample> samples = pick_samples(mc, g, extra, seed);
    int significant = 0;
    for (const Sample& s : samples) {
        const double analytic = g[std::size_t(s.param->offset + s.index)];
        const double numeric = mc.numeric(*s.param, s.index);
        EXPECT_TRUE(close(analytic, numeric))
            << s.param->name << "[" << s.index << "]: analytic " << analytic << ", numeric " << numeric;
        significant += std::fabs(numeric) > 10 * kAtol;
    }
    // Most sampled gradients must be well above atol, or the check would prove little.
    EXPECT_GT(significant, int(samples.size()) * 2 / 3) << "too many sampled gradients are ~0";
}

const GptConfig kSmall{/*vocab_size=*/257, /*n_positions=*/8, /*n_embd=*/8, /*n_layer=*/2, /*n_head=*/2};

TEST(ModelGrad, SmallModelMatchesCentralDifferences) {
    ModelCheck mc(kSmall, /*B=*/2, /*T=*/5, /*seed=*/41);
    check_samples(mc, /*extra=*/12, 41);
}

TEST(ModelGrad, NanoPresetMatchesCentralDifferences) {
    ModelCheck mc(find_preset("nano").config, /*B=*/2, /*T=*/12, /*seed=*/42);
    check_samples(mc, /*extra=*/0, 42);
}

// With one row of distinct tokens, token r = tokens[t] and position t occur only together, so moving wte[r]
// by +h and wpe[t] by -h leaves the input embedding unchanged: that derivative is the head's term alone, and
// analytically it is dwte[r] - dwpe[t]. The input's term is dwpe[t] itself. Both must be there and be right.
TEST(ModelGrad, TiedEmbeddingGetsHeadAndInputGradients) {
    ModelCheck mc(kSmall, /*B=*/1, /*T=*/5, /*seed=*/43);
    mc.set_tokens({10, 200, 37, 99, 256});
    const std::int64_t t = 2, r = 37, C = kSmall.n_embd;
    const ParamInfo& wte = mc.model().params().at("transformer.wte.weight");
    const ParamInfo& wpe = mc.model().params().at("transformer.wpe.weight");
    const std::vector<float> g = mc.grads();
    double head_norm = 0, input_norm = 0;
    for (std::int64_t c = 0; c < C; ++c) {
        const double dwte = g[std::size_t(wte.offset + r * C + c)],
                     dwpe = g[std::size_t(wpe.offset + t * C + c)];
        const double head =
            mc.numeric({&mc.weight(wte, r * C + c), &mc.weight(wpe, t * C + c)}, {1.0f, -1.0f});
        const double input = mc.numeric(wpe, t * C + c);
        const double total = mc.numeric(wte, r * C + c);
        EXPECT_TRUE(close(dwte - dwpe, head))
            << "head term, c " << c << ": " << dwte - dwpe << " vs " << head;
        EXPECT_TRUE(close(dwpe, input)) << "input term, c " << c << ": " << dwpe << " vs " << input;
        EXPECT_TRUE(close(dwte, total)) << "wte, c " << c << ": " << dwte << " vs " << total;
        head_norm += head * head;
        input_norm += input * input;
    }
    EXPECT_GT(std::sqrt(head_norm), 10 * kAtol);
    EXPECT_GT(std::sqrt(input_norm), 10 * kAtol);
    // A row no input token uses gets the head's term only.
    const std::int64_t unused = 5;
    for (std::int64_t c = 0; c < C; ++c)
        EXPECT_TRUE(close(g[std::size_t(wte.offset + unused * C + c)], mc.numeric(wte, unused * C + c)))
            << "c " << c;
}

// Parameter gradients accumulate across backward calls (gradient accumulation relies on it): a second
// forward/backward without zero_grads doubles every gradient, up to the rounding of the running sums.
TEST(ModelGrad, BackwardAccumulates) {
    ModelCheck mc(kSmall, /*B=*/2, /*T=*/5, /*seed=*/44);
    const std::vector<float> once = mc.grads();
    mc.accumulate();
    const float* twice = mc.model().grads().data();
    std::vector<float> expect(once.size());
    for (std::size_t i = 0; i < once.size(); ++i) expect[i] = 2.0f * once[i];
    TL_EXPECT_ALLCLOSE(std::vector<float>(twice, twice + once.size()), expect, 1e-5, 1e-7);
}

}  // namespace
}  // namespace tl
