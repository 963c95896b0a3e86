// Test helpers for the PEFT modules: a perturbed nano model, a site harness that runs one hook on chosen x and
// y (so its gradients can be checked by central differences of loss = sum g . hook(y, x)), a whole-model loss
// with non-uniform token weights, and logits/weights snapshots. Oracles: central differences, closed forms.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/backend.hpp"
#include "core/rng.hpp"
#include "model/config.hpp"
#include "model/gpt.hpp"

namespace tl::peft_test {

inline GptConfig nano() { return find_preset("nano").config; }

// (loss(e + h) - loss(e - h)) / 2h for one float element e that loss() reads; e is restored.
template <class F>
double central_difference(float& e, double h, const F& loss) {
    const float saved = e;
    e = float(saved + h);
    const double lp = loss();
    e = float(saved - h);
    const double lm = loss();
    e = saved;
    return (lp - lm) / (2 * h);
}

// A nano model with every weight perturbed (GPT-2's init has zero biases and unit LN scales, under which
// gradient terms vanish), plus a fixed batch with token weights.
class PeftModel {
public:
    explicit PeftModel(std::uint64_t seed = 3, std::int64_t B = 2, std::int64_t T = 6)
        : be_(make_cpu_backend({1})), model_(*be_, nano()), B_(B), T_(T) {
        model_.init_gpt2(seed);
        Rng rng(seed, 1000);
        for (const ParamInfo& p : model_.params().entries()) {
            const VecView w = model_.param(p);
            for (std::int64_t i = 0; i < w.n; ++i) w[i] += 0.1f * rng.normal();
        }
        for (std::int64_t i = 0; i < B * T; ++i) {
            tokens_.push_back(std::int32_t(rng.below(257)));
            targets_.push_back(std::int32_t(rng.below(257)));
            weights_.push_back(float(0.2 + 1.8 * rng.uniform()));
        }
        for (float w : weights_) norm_ += w;
    }
    Gpt& model() { return model_; }
    Backend& backend() { return *be_; }

    double loss() {
        model_.forward(tokens_.data(), targets_.data(), B_, T_);
        const CVecView l = model_.losses();
        double s = 0;
        for (std::int64_t i = 0; i < l.n; ++i) s += double(weights_[std::size_t(i)]) * double(l[i]);
        return s / double(norm_);
    }
    void backward() {
        model_.enable_grads();
        model_.zero_grads();
        model_.forward(tokens_.data(), targets_.data(), B_, T_);
        model_.backward(weights_.data(), norm_);
    }
    std::vector<float> logits() {
        model_.forward(tokens_.data(), nullptr, B_, T_);
        const CMatView z = model_.logits();
        return {z.data, z.data + z.rows * z.cols};
    }
    double numeric(float& e, double h) { return central_difference(e, h, [&] { return loss(); }); }

private:
    std::unique_ptr<Backend> be_;
    Gpt model_;
    std::int64_t B_, T_;
    std::vector<std::int32_t> tokens_, targets_;
    std::vector<float> weights_;
    float norm_ = 0;
};

inline std::vector<float> random_vec(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
    Rng rng(seed, 77);
    std::vector<float> v(n);
    for (float& x : v) x = scale * rng.normal();
    return v;
}

// One hook alone at (layer, site): y = hook(y0, x). loss = sum g . y in double.
struct SiteHarness {
    Gpt& model;
    ModelAdapter& adapter;
    std::int64_t layer, N, in, out;
    HookSite site;
    std::vector<float> x, y0, g;

    SiteHarness(Gpt& m, ModelAdapter& a, std::int64_t l, HookSite s, std::int64_t n, std::int64_t in_, std::int64_t out_)
        : model(m), adapter(a), layer(l), N(n), in(in_), out(out_), site(s) {
        x = random_vec(std::size_t(N * in), 11);
        y0 = random_vec(std::size_t(N * out), 12);
        g = random_vec(std::size_t(N * out), 13);
    }
    double loss() {
        std::vector<float> y = y0;
        adapter.forward(model, {layer, site, MatView(y.data(), N, out), CMatView(x.data(), N, in)});
        double s = 0;
        for (std::size_t i = 0; i < y.size(); ++i) s += double(g[i]) * double(y[i]);
        return s;
    }
    // Analytic: parameter grads (model.grad) after zeroing; returns {dy0, dx}.
    std::pair<std::vector<float>, std::vector<float>> backward() {
        model.enable_grads();
        model.zero_grads();
        loss();  // forward saves what backward needs
        std::vector<float> dy = g, dx(x.size(), 0.0f);
        const HookBackward hb{layer, site, MatView(dy.data(), N, out), MatView(dx.data(), N, in),
                              CMatView(x.data(), N, in)};
        adapter.backward_output(model, hb);
        adapter.backward_input(model, hb);
        return {dy, dx};
    }
    double numeric(float& e, double h) { return central_difference(e, h, [&] { return loss(); }); }
};

// |a - n| <= atol + rtol |n|
inline ::testing::AssertionResult grad_close(double analytic, double numeric, double rtol, double atol) {
    if (std::fabs(analytic - numeric) <= atol + rtol * std::fabs(numeric)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "analytic " << analytic << " vs numeric " << numeric;
}

}  // namespace tl::peft_test
