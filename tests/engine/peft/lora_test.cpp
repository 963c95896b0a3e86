// LoRA: gradients against central differences (one module alone, and the whole model), B = 0 changes no
// logit, merge/unmerge, merged logits equal unmerged, trainable counts against r (in + out) per module,
// PEFT's Kaiming-uniform bound, and bad ranks/targets as clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "optim/adamw.hpp"
#include "peft/lora.hpp"
#include "peft_fixture.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

using peft_test::grad_close;
using peft_test::PeftModel;

void randomize_b(Gpt& model, const LoraAdapter& lora, float scale) {
    Rng rng(5, 99);
    for (const auto& m : lora.modules()) {
        const VecView b = model.param(model.params().at(m.b_name()));
        for (std::int64_t i = 0; i < b.n; ++i) b[i] = scale * rng.normal();
    }
}

// The module is bilinear in (A, B) and linear in x, so central differences are exact up to float rounding.
TEST(Lora, ModuleGradientsMatchCentralDifferences) {
    PeftModel pm;
    Gpt& model = pm.model();
    LoraConfig cfg;
    cfg.r = 3, cfg.alpha = 5.0f, cfg.targets = {"c_fc"};
    LoraAdapter& lora = lora_attach(model, cfg, 1);
    randomize_b(model, lora, 0.3f);
    const std::int64_t C = model.config().n_embd;
    peft_test::SiteHarness h(model, lora, 1, HookSite::mlp_fc, 5, C, 4 * C);
    const auto [dy0, dx] = h.backward();
    const auto& m = lora.modules()[1];
    ASSERT_EQ(m.layer, 1);
    for (const std::string& name : {m.a_name(), m.b_name()}) {
        const ParamInfo& p = model.params().at(name);
        const std::vector<float> g(model.grad(p).data, model.grad(p).data + p.numel());
        for (std::int64_t i = 0; i < p.numel(); i += 7)
            EXPECT_TRUE(grad_close(g[std::size_t(i)], h.numeric(model.param(p)[i], 1e-2), 1e-3, 1e-3)) << name << i;
    }
    for (std::size_t i = 0; i < h.x.size(); i += 5)
        EXPECT_TRUE(grad_close(dx[i], h.numeric(h.x[i], 1e-2), 1e-3, 1e-3)) << "x " << i;
    EXPECT_EQ(dy0, h.g);  // LoRA adds to y: d loss / d y0 is g unchanged
}

// The whole model with LoRA on every linear: the adapter's gradients and, with the base unfrozen, the base's
// (which see the hooks' dx contributions), against central differences of the float model.
TEST(Lora, WholeModelGradientsMatchCentralDifferences) {
    PeftModel pm;
    Gpt& model = pm.model();
    LoraConfig cfg;
    cfg.r = 2, cfg.alpha = 4.0f;
    LoraAdapter& lora = lora_attach(model, cfg, 1);
    randomize_b(model, lora, 0.2f);
    for (ParamInfo& p : model.params().entries()) p.is_trainable = true;  // check the base's grads too
    pm.backward();
    int checked = 0;
    for (const ParamInfo& p : model.params().entries()) {
        const VecView g = model.grad(p);
        const std::int64_t i = std::max_element(g.data, g.data + g.n, [](float a, float b) {
                                   return std::fabs(a) < std::fabs(b);
                               }) - g.data;
        const float analytic = g[i];
        EXPECT_TRUE(grad_close(analytic, pm.numeric(model.param(p)[i], 5e-3), 2e-2, 1e-4)) << p.name << "[" << i << "]";
        ++checked;
    }
    EXPECT_EQ(checked, int(model.params().entries().size()));
}

TEST(Lora, ZeroBChangesNoLogitAndCountsMatchClosedForm) {
    PeftModel pm;
    Gpt& model = pm.model();
    const std::vector<float> base = pm.logits();
    LoraConfig cfg;
    cfg.r = 4;
    cfg.targets = {"c_attn", "c_proj", "c_fc"};
    lora_attach(model, cfg, 7);
    EXPECT_EQ(pm.logits(), base);  // s h B^T with B = 0 adds exact zeros
    const std::int64_t C = model.config().n_embd, L = model.config().n_layer, r = cfg.r;
    // c_attn r(C + 3C), attn.c_proj r(C + C), c_fc r(C + 4C), mlp.c_proj r(4C + C): 16 r C per block.
    EXPECT_EQ(model.params().trainable_count(), L * 16 * r * C);
    EXPECT_EQ(model.params().total(), model.base_param_count() + L * 16 * r * C);
    model.enable_grads();
    AdamW opt(model, {});
    EXPECT_EQ(opt.state_floats(), L * 16 * r * C);  // optimizer state for the adapter only
}

TEST(Lora, TargetsMatchModuleNameSuffixes) {
    PeftModel pm;
    LoraConfig cfg;
    cfg.r = 2, cfg.targets = {"mlp.c_proj"};
    const LoraAdapter& lora = lora_attach(pm.model(), cfg, 1);
    const std::int64_t C = pm.model().config().n_embd;
    ASSERT_EQ(lora.modules().size(), 2u);  // one per block
    EXPECT_EQ(lora.modules()[0].path, "transformer.h.0.mlp.c_proj");
    EXPECT_EQ(pm.model().params().at("transformer.h.1.mlp.c_proj.lora_A.weight").shape, (Shape{2, 4 * C}));
    EXPECT_EQ(pm.model().params().at("transformer.h.1.mlp.c_proj.lora_B.weight").shape, (Shape{C, 2}));
}

// PEFT: kaiming_uniform_(a = sqrt(5)) gives U(-1/sqrt(in), 1/sqrt(in)), variance 1 / (3 in).
TEST(Lora, AIsKaimingUniformAndBIsZero) {
    PeftModel pm;
    LoraConfig cfg;
    cfg.r = 8, cfg.targets = {"c_fc"};
    const LoraAdapter& lora = lora_attach(pm.model(), cfg, 1);
    const auto& m = lora.modules()[0];
    const CVecView a = pm.model().param(pm.model().params().at(m.a_name()));
    const double bound = 1.0 / std::sqrt(double(m.in));
    double var = 0;
    for (std::int64_t i = 0; i < a.n; ++i) {
        EXPECT_LE(std::fabs(a[i]), bound);
        var += double(a[i]) * a[i] / double(a.n);
    }
    EXPECT_NEAR(var, bound * bound / 3, 0.15 * bound * bound / 3);  // 256 draws: ~9% standard error
    const CVecView b = pm.model().param(pm.model().params().at(m.b_name()));
    EXPECT_TRUE(std::all_of(b.data, b.data + b.n, [](float x) { return x == 0.0f; }));
}

TEST(Lora, ScaleIsAlphaOverROrOverSqrtR) {
    LoraConfig c;
    c.r = 16, c.alpha = 8.0f;
    EXPECT_FLOAT_EQ(c.scale(), 0.5f);
    c.scaling = LoraScaling::rslora;
    EXPECT_FLOAT_EQ(c.scale(), 2.0f);
}

TEST(Lora, MergeEqualsUnmergedAndUnmergeRestoresWeights) {
    PeftModel pm;
    Gpt& model = pm.model();
    const std::vector<float> w0(model.weights().data(), model.weights().data() + model.base_param_count());
    LoraConfig cfg;
    cfg.r = 4, cfg.alpha = 8.0f;
    LoraAdapter& lora = lora_attach(model, cfg, 2);
    randomize_b(model, lora, 0.3f);
    const std::vector<float> unmerged = pm.logits();
    lora.merge(model);
    const std::vector<float> merged = pm.logits();
    EXPECT_TRUE(testing::allclose(merged.data(), unmerged.data(), std::int64_t(merged.size()), 1e-4, 1e-5));
    lora.unmerge(model);
    EXPECT_TRUE(testing::allclose(model.weights().data(), w0.data(), std::int64_t(w0.size()), 1e-6, 1e-6));
    lora_merge_and_detach(model);  // a plain GPT-2 again
    EXPECT_FALSE(model.has_adapters());
    EXPECT_EQ(model.params().total(), model.base_param_count());
    EXPECT_EQ(model.params().trainable_count(), model.params().total());
    const std::vector<float> plain = pm.logits();
    EXPECT_TRUE(testing::allclose(plain.data(), unmerged.data(), std::int64_t(plain.size()), 1e-4, 1e-5));
    PeftModel fresh;  // and the merge really moved the weights: the base model's logits differ
    const std::vector<float> base = fresh.logits();
    EXPECT_FALSE(testing::allclose(plain.data(), base.data(), std::int64_t(plain.size()), 1e-4, 1e-5));
}

TEST(Lora, BadRankAndTargetsAreClearErrors) {
    PeftModel pm;
    LoraConfig cfg;
    cfg.r = 0;
    EXPECT_THROW(lora_attach(pm.model(), cfg, 1), Error);
    cfg.r = 33;  // nano: C = 32, so min(in, out) = 32 for every linear
    try {
        lora_attach(pm.model(), cfg, 1);
        FAIL() << "rank 33 accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("1 <= r <= 32"), std::string::npos) << e.what();
    }
    cfg.r = 2, cfg.targets = {"c_attn", "q_proj"};
    try {
        lora_attach(pm.model(), cfg, 1);
        FAIL() << "unknown target accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'q_proj'"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(pm.model().has_adapters());  // nothing attached on error
}

}  // namespace
}  // namespace tl
