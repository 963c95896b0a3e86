// The mixture-of-experts MLP (model/moe.hpp) and sparse upcycling (merge/moe_merge.hpp): experts that are
// copies of the dense MLP give the dense model's logits (forward and KV cache, top-1 and top-2); backward
// against central differences of the full loss (cross-entropy + coef * load-balancing loss), router included;
// save/load round trip; training emits per-expert load events; bad input is refused. All on nano shapes: well
// under a second.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/batch.hpp"
#include "data/tasks.hpp"
#include "merge/moe_merge.hpp"
#include "model/generate.hpp"
#include "model/gpt.hpp"
#include "model/model_io.hpp"
#include "train/trainer.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;

GptConfig nano() { return find_preset("nano").config; }

// A dense nano model with every weight moved off GPT-2's init, so all paths carry signal.
ModelState dense_state(std::uint64_t seed) {
    auto be = make_cpu_backend({1});
    Gpt m(*be, nano());
    m.init_gpt2(seed);
    Rng rng(seed, 99);
    for (const ParamInfo& p : m.params().entries()) {
        const VecView w = m.param(p);
        for (std::int64_t i = 0; i < w.n; ++i) w[i] += 0.1f * rng.normal();
    }
    ModelMeta meta;
    meta.preset = "nano";
    return state_of(m, meta);
}

std::unique_ptr<Gpt> model_of(Backend& be, const ModelState& s) {
    auto m = std::make_unique<Gpt>(be, s.config);
    copy_state_into(*m, s);
    return m;
}

std::vector<std::int32_t> tokens_of(std::int64_t n, std::uint64_t seed) {
    Rng rng(seed, 5);
    std::vector<std::int32_t> t;
    for (std::int64_t i = 0; i < n; ++i) t.push_back(std::int32_t(rng.below(256)));
    return t;
}

void expect_close(CMatView a, CMatView b, double tol) {
    ASSERT_EQ(a.rows, b.rows);
    ASSERT_EQ(a.cols, b.cols);
    double worst = 0;
    for (std::int64_t r = 0; r < a.rows; ++r)
        for (std::int64_t c = 0; c < a.cols; ++c)
            worst = std::max(worst, double(std::fabs(a(r, c) - b(r, c))));
    EXPECT_LE(worst, tol);
}

class IdenticalExperts : public ::testing::TestWithParam<std::pair<int, RouterInit>> {};

TEST_P(IdenticalExperts, GiveTheDenseLogits) {
    const auto [top_k, router] = GetParam();
    const ModelState dense = dense_state(3);
    MoeMergeSpec spec;
    spec.base = &dense;
    const std::vector<std::string> prompts{"\nrev abc", "\nsort dcba"};
    for (int i = 0; i < 3; ++i) spec.experts.push_back({&dense, prompts, "copy"});
    spec.top_k = top_k;
    spec.router = router;
    spec.seed = 11;
    const ModelState moe = moe_merge(spec);
    EXPECT_EQ(moe.config.num_local_experts, 3);
    auto be = make_cpu_backend({1});
    auto d = model_of(*be, dense);
    auto m = model_of(*be, moe);
    const auto tok = tokens_of(2 * 9, 1);
    d->forward(tok.data(), nullptr, 2, 9);
    m->forward(tok.data(), nullptr, 2, 9);
    expect_close(m->logits(), d->logits(), 2e-5);
    // The router did route: with top-1 and three experts, not every token went to one expert.
    if (top_k == 1 && router == RouterInit::random) {
        int used = 0;
        for (std::int64_t c : m->moe()->stats(0).counts) used += c > 0;
        EXPECT_GE(used, 2);
    }
    // KV-cache decoding of the MoE model gives the same logits as the dense decoder.
    KvDecoder kd(*d), km(*m);
    for (int t = 0; t < 9; ++t) {
        const std::vector<float> ld = kd.step(tok[std::size_t(t)]);
        const std::vector<float>& lm = km.step(tok[std::size_t(t)]);
        expect_close(CMatView(lm.data(), 1, std::int64_t(lm.size())),
                     CMatView(ld.data(), 1, std::int64_t(ld.size())), 2e-5);
    }
}

INSTANTIATE_TEST_SUITE_P(TopK, IdenticalExperts,
                         ::testing::Values(std::pair{1, RouterInit::random}, std::pair{2, RouterInit::random},
                                           std::pair{2, RouterInit::hidden}));

// loss = sum_i w_i CE_i / norm + coef * (sum_i w_i / norm) * mean over layers of the aux loss
// (Gpt::backward).
class MoeGradCheck {
public:
    explicit MoeGradCheck(float aux_coef) : be_(make_cpu_backend({1})) {
        GptConfig c = nano();
        c.num_local_experts = 3, c.num_experts_per_tok = 2, c.router_aux_loss_coef = aux_coef;
        model_ = std::make_unique<Gpt>(*be_, c);
        model_->init_gpt2(7);
        Rng rng(7, 1000);
        for (const ParamInfo& p : model_->params().entries()) {
            const VecView w = model_->param(p);
            const float s = p.name.find("gate") != std::string::npos ? 1.0f : 0.1f;  // a decisive router
            for (std::int64_t i = 0; i < w.n; ++i) w[i] += s * rng.normal();
        }
        tokens_ = tokens_of(B_ * T_, 2), targets_ = tokens_of(B_ * T_, 3);
        for (std::int64_t i = 0; i < B_ * T_; ++i) weights_.push_back(float(0.3 + 1.5 * rng.uniform()));
        weights_[1] = 0;
        double sum = 0;
        for (float w : weights_) sum += w;
        norm_ = float(1.2 * sum);
        model_->enable_grads();
    }
    double loss() {
        model_->forward(tokens_.data(), targets_.data(), B_, T_);
        const CVecView l = model_->losses();
        double ce = 0, w = 0;
        for (std::int64_t i = 0; i < l.n; ++i)
            ce += double(weights_[std::size_t(i)]) * l[i], w += weights_[std::size_t(i)];
        return ce / norm_ +
               double(model_->config().router_aux_loss_coef) * w / norm_ * model_->moe()->aux_loss();
    }
    std::vector<std::vector<std::int32_t>> routing() const {
        std::vector<std::vector<std::int32_t>> r;
        for (std::int64_t l = 0; l < model_->config().n_layer; ++l) r.push_back(model_->moe()->choices(l));
        return r;
    }
    Gpt& model() { return *model_; }
    void backward() {
        model_->zero_grads();
        model_->forward(tokens_.data(), targets_.data(), B_, T_);
        model_->backward(weights_.data(), norm_);
    }

private:
    std::unique_ptr<Backend> be_;
    std::unique_ptr<Gpt> model_;
    std::int64_t B_ = 2, T_ = 6;
    std::vector<std::int32_t> tokens_, targets_;
    std::vector<float> weights_;
    float norm_ = 1;
};

TEST(MoeGrad, BackwardMatchesCentralDifferencesRouterAndAuxIncluded) {
    MoeGradCheck chk(0.5f);
    Gpt& m = chk.model();
    chk.backward();
    const auto routing = chk.routing();
    const std::vector<std::string> names = {moe_gate_name(0),
                                            moe_gate_name(1),
                                            moe_expert_name(0, 0, "c_fc.weight"),
                                            moe_expert_name(1, 1, "c_fc.bias"),
                                            moe_expert_name(0, 2, "c_proj.weight"),
                                            moe_expert_name(1, 0, "c_proj.bias"),
                                            "transformer.h.0.ln_2.weight",
                                            "transformer.h.1.attn.c_attn.weight",
                                            "transformer.wte.weight"};
    int checked = 0, skipped = 0;
    Rng rng(3, 4);
    for (const std::string& name : names) {
        const ParamInfo& p = m.params().at(name);
        for (int s = 0; s < 6; ++s) {
            const std::int64_t i = std::int64_t(rng.below(std::uint64_t(p.numel())));
            float& w = m.param(p)[i];
            const float saved = w;
            const double h = 5e-3;
            w = float(saved + h);
            const double lp = chk.loss();
            const bool same_p = chk.routing() == routing;
            w = float(saved - h);
            const double lm = chk.loss();
            const bool same_m = chk.routing() == routing;
            w = saved;
            if (!same_p || !same_m) {  // top-k switched: the loss is not differentiable across that step
                ++skipped;
                continue;
            }
            const double numeric = (lp - lm) / (2 * h), analytic = m.grad(p)[i];
            EXPECT_NEAR(analytic, numeric, 1e-4 + 2e-2 * std::fabs(numeric)) << name << "[" << i << "]";
            ++checked;
        }
    }
    EXPECT_GE(checked, 45) << skipped << " samples skipped because the routing changed";
    // The load-balancing term reaches the router: the same model without it has another router gradient.
    MoeGradCheck plain(0.0f);
    plain.backward();
    const CVecView g_aux = m.grad(m.params().at(moe_gate_name(0)));
    const CVecView g_plain = plain.model().grad(plain.model().params().at(moe_gate_name(0)));
    double diff = 0;
    for (std::int64_t i = 0; i < g_aux.n; ++i) diff += std::fabs(g_aux[i] - g_plain[i]);
    EXPECT_GT(diff, 1e-3);
}

TEST(MoeModel, SaveLoadRoundTrip) {
    const ModelState dense = dense_state(5);
    const ModelState other = dense_state(6);
    MoeMergeSpec spec;
    spec.base = &dense;
    spec.experts = {{&dense, {}, "a"}, {&other, {}, "b"}};
    spec.top_k = 1;
    spec.aux_loss_coef = 0.03f;
    const ModelState moe = moe_merge(spec);
    auto be = make_cpu_backend({1});
    auto m = model_of(*be, moe);
    const fs::path dir = fs::temp_directory_path() / ("tl_moe_io_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    save_model(dir, *m, {"custom", {}});
    std::ifstream cj(dir / "config.json");
    std::stringstream text;
    text << cj.rdbuf();
    EXPECT_NE(text.str().find("\"num_local_experts\": 2"), std::string::npos);
    LoadedModel back = load_model(dir, *be);
    fs::remove_all(dir);
    const GptConfig& c = back.model->config();
    EXPECT_EQ(c.num_local_experts, 2);
    EXPECT_EQ(c.num_experts_per_tok, 1);
    EXPECT_FLOAT_EQ(c.router_aux_loss_coef, 0.03f);
    const auto tok = tokens_of(7, 9);
    m->forward(tok.data(), nullptr, 1, 7);
    back.model->forward(tok.data(), nullptr, 1, 7);
    expect_close(back.model->logits(), m->logits(), 0.0);
    // Expert 1 came from the other model: its MLP, under the MoE name.
    const auto& e1 = moe.tensors.at(moe_expert_name(1, 1, "c_fc.weight")).values;
    EXPECT_EQ(e1, other.tensors.at("transformer.h.1.mlp.c_fc.weight").values);
}

class LoadEvents : public TrainObserver {
public:
    void on_step(const StepEvent& e) override { events.push_back(e); }
    std::vector<StepEvent> events;
};

TEST(MoeModel, TrainsAndReportsExpertLoad) {
    GptConfig c = nano();
    c.num_local_experts = 2, c.num_experts_per_tok = 1;
    auto be = make_cpu_backend({1});
    Gpt m(*be, c);
    m.init_gpt2(1);
    ExampleBatcher batcher(task_examples(find_task("reverse"), Split::train, 64, 1), 4, 32, 0.0f,
                           ExampleBatcher::Order::shuffled, 1);
    TrainConfig tc;
    tc.steps = 4;
    tc.grad_accum = 2;
    tc.optim.lr = 3e-3f;
    LoadEvents obs;
    const TrainSummary s = train(
        m, tc, [&] { return batcher.next(); }, &obs);
    ASSERT_EQ(obs.events.size(), 4u);
    for (const StepEvent& e : obs.events) {
        ASSERT_EQ(e.expert_load.size(), 2u);
        for (const auto& layer : e.expert_load)
            EXPECT_EQ(layer[0] + layer[1], 2 * 4 * 32);                         // 2 micro-batches, top-1
        EXPECT_TRUE(e.router_aux_loss > 0 && e.router_aux_loss <= 2.0 + 1e-9);  // k sum f_i P_i <= k
    }
    EXPECT_LT(s.losses.back(), s.losses.front());
}

TEST(MoeBadInput, IsRefused) {
    GptConfig c = nano();
    c.num_local_experts = 2, c.num_experts_per_tok = 3;
    EXPECT_THROW(validate_config(c, "test"), Error);
    const ModelState a = dense_state(1);
    MoeMergeSpec spec;
    spec.base = &a;
    spec.experts = {{&a, {}, "a"}, {&a, {}, "b"}};
    spec.top_k = 3;
    EXPECT_THROW(moe_merge(spec), Error);  // top-k > experts
    spec.top_k = 2;
    spec.router = RouterInit::hidden;
    EXPECT_THROW(moe_merge(spec), Error);  // hidden without prompts
    spec.router = RouterInit::random;
    ModelState wide = a;
    wide.config.n_embd = 64;
    spec.experts[1].state = &wide;
    EXPECT_THROW(moe_merge(spec), Error);  // another shape
    const ModelState moe = moe_merge({&a, {{&a, {}, "a"}, {&a, {}, "b"}}, 2});
    spec.experts[1].state = &moe;
    EXPECT_THROW(moe_merge(spec), Error);  // an MoE is no expert
    EXPECT_THROW(parse_router_init("smart"), Error);
}

}  // namespace
}  // namespace tl
