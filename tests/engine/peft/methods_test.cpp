// IA3, Houlsby adapters, BitFit and partial fine-tuning: gradients against central differences (each module
// alone and the whole model), identity at initialisation, IA3's merge, and trainable counts against closed forms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "peft/freeze.hpp"
#include "peft/houlsby.hpp"
#include "peft/ia3.hpp"
#include "peft_fixture.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

using peft_test::grad_close;
using peft_test::PeftModel;

// Moves every adapter parameter away from its identity init, so each gradient path carries signal.
void perturb_adapter_params(Gpt& model, float scale) {
    Rng rng(21, 3);
    for (const ParamInfo& p : model.params().entries()) {
        if (p.offset < model.base_param_count()) continue;
        const VecView v = model.param(p);
        for (std::int64_t i = 0; i < v.n; ++i) v[i] += scale * rng.normal();
    }
}

// Every parameter's largest-gradient element against a central difference of the float model's loss.
void check_whole_model(PeftModel& pm) {
    Gpt& model = pm.model();
    for (ParamInfo& p : model.params().entries()) p.is_trainable = true;
    pm.backward();
    for (const ParamInfo& p : model.params().entries()) {
        const VecView g = model.grad(p);
        const std::int64_t i =
            std::max_element(g.data, g.data + g.n, [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
            g.data;
        const float analytic = g[i];
        EXPECT_TRUE(grad_close(analytic, pm.numeric(model.param(p)[i], 5e-3), 2e-2, 1e-4)) << p.name << "[" << i << "]";
    }
}

// Checks a module's parameter gradients and d loss / d y0 at one site against central differences.
void check_site(Gpt& model, peft_test::SiteHarness& h, double step, double rtol) {
    const auto [dy0, dx] = h.backward();
    for (const ParamInfo& p : model.params().entries()) {
        if (p.offset < model.base_param_count()) continue;
        const std::vector<float> g(model.grad(p).data, model.grad(p).data + p.numel());
        if (std::all_of(g.begin(), g.end(), [](float x) { return x == 0.0f; })) continue;  // another site's
        for (std::int64_t i = 0; i < p.numel(); i += 3)
            EXPECT_TRUE(grad_close(g[std::size_t(i)], h.numeric(model.param(p)[i], step), rtol, 1e-3)) << p.name << i;
    }
    for (std::size_t i = 0; i < h.y0.size(); i += 7)
        EXPECT_TRUE(grad_close(dy0[i], h.numeric(h.y0[i], step), rtol, 1e-3)) << "y0 " << i;
}

TEST(Ia3, SiteGradientsMatchCentralDifferences) {
    PeftModel pm;
    Ia3Adapter& ia3 = ia3_attach(pm.model(), 1);
    perturb_adapter_params(pm.model(), 0.3f);
    const std::int64_t C = pm.model().config().n_embd;
    peft_test::SiteHarness qkv(pm.model(), ia3, 1, HookSite::attn_qkv, 5, C, 3 * C);
    check_site(pm.model(), qkv, 1e-2, 1e-3);  // linear in l and y0: exact up to rounding
    peft_test::SiteHarness hidden(pm.model(), ia3, 0, HookSite::mlp_hidden, 5, 4 * C, 4 * C);
    check_site(pm.model(), hidden, 1e-2, 1e-3);
}

TEST(Ia3, WholeModelGradientsMatchCentralDifferences) {
    PeftModel pm;
    ia3_attach(pm.model(), 1);
    perturb_adapter_params(pm.model(), 0.3f);
    check_whole_model(pm);
}

TEST(Ia3, OnesChangeNothingMergeKeepsLogitsAndCountIs6CL) {
    PeftModel pm;
    const std::vector<float> base = pm.logits();
    ia3_attach(pm.model(), 1);
    EXPECT_EQ(pm.logits(), base);  // multiplying by 1.0f is exact
    const std::int64_t C = pm.model().config().n_embd, L = pm.model().config().n_layer;
    EXPECT_EQ(pm.model().params().trainable_count(), 6 * C * L);
    perturb_adapter_params(pm.model(), 0.3f);
    const std::vector<float> adapted = pm.logits();
    ia3_merge_and_detach(pm.model());
    EXPECT_FALSE(pm.model().has_adapters());
    const std::vector<float> merged = pm.logits();
    EXPECT_TRUE(testing::allclose(merged.data(), adapted.data(), std::int64_t(merged.size()), 1e-4, 1e-5));
    EXPECT_FALSE(testing::allclose(merged.data(), base.data(), std::int64_t(merged.size()), 1e-4, 1e-5));
}

TEST(Houlsby, SiteGradientsMatchCentralDifferences) {
    PeftModel pm;
    HoulsbyAdapter& ad = houlsby_attach(pm.model(), 4, 1);
    perturb_adapter_params(pm.model(), 0.3f);
    const std::int64_t C = pm.model().config().n_embd;
    peft_test::SiteHarness attn(pm.model(), ad, 1, HookSite::attn_proj, 5, C, C);
    check_site(pm.model(), attn, 1e-2, 2e-2);  // GELU: O(h^2) truncation
    peft_test::SiteHarness mlp(pm.model(), ad, 0, HookSite::mlp_proj, 5, 4 * C, C);
    check_site(pm.model(), mlp, 1e-2, 2e-2);
}

TEST(Houlsby, WholeModelGradientsMatchCentralDifferences) {
    PeftModel pm;
    houlsby_attach(pm.model(), 4, 1);
    perturb_adapter_params(pm.model(), 0.3f);
    check_whole_model(pm);
}

TEST(Houlsby, ZeroUpProjectionIsTheIdentityAndCountMatches) {
    PeftModel pm;
    const std::vector<float> base = pm.logits();
    houlsby_attach(pm.model(), 6, 1);
    EXPECT_EQ(pm.logits(), base);  // y + (0 a + 0): exact
    const std::int64_t C = pm.model().config().n_embd, L = pm.model().config().n_layer, m = 6;
    EXPECT_EQ(pm.model().params().trainable_count(), L * 2 * (2 * C * m + m + C));
    PeftModel other;
    EXPECT_THROW(houlsby_attach(other.model(), C + 1, 1), Error);
    EXPECT_THROW(houlsby_attach(other.model(), 0, 1), Error);
}

TEST(Freeze, BitFitAndPartialCountsMatchClosedForms) {
    PeftModel pm;
    const std::int64_t C = pm.model().config().n_embd, L = pm.model().config().n_layer;
    bitfit_apply(pm.model());
    EXPECT_EQ(pm.model().params().trainable_count(), L * 11 * C + C);  // 3C + C + 4C + C + 2 LN biases; ln_f
    partial_apply(pm.model(), 1);
    EXPECT_EQ(pm.model().params().trainable_count(), 12 * C * C + 13 * C + 2 * C);
    partial_apply(pm.model(), L);
    EXPECT_EQ(pm.model().params().trainable_count(), L * (12 * C * C + 13 * C) + 2 * C);
    EXPECT_THROW(partial_apply(pm.model(), 0), Error);
    EXPECT_THROW(partial_apply(pm.model(), L + 1), Error);
    // By name: every block's MLP output projection (4C x C weight, C bias) and the final LayerNorm.
    partial_apply_named(pm.model(), {"mlp.c_proj", "ln_f"});
    EXPECT_EQ(pm.model().params().trainable_count(), L * (4 * C * C + C) + 2 * C);
    partial_apply_named(pm.model(), {"h.0.attn.c_attn.weight"});
    EXPECT_EQ(pm.model().params().trainable_count(), 3 * C * C);
    EXPECT_THROW(partial_apply_named(pm.model(), {"q_proj"}), Error);
    EXPECT_THROW(partial_apply_named(pm.model(), {}), Error);
}

// Frozen linears skip their weight GEMMs; the trainable gradients must not change because of it.
TEST(Freeze, FrozenWeightsLeaveTrainableGradientsExact) {
    PeftModel all, part;
    partial_apply(part.model(), 1);
    all.backward();
    part.backward();
    for (const ParamInfo& p : part.model().params().entries()) {
        const CVecView a = all.model().grad(all.model().params().at(p.name)), b = part.model().grad(p);
        if (p.is_trainable) {
            EXPECT_TRUE(std::equal(a.data, a.data + a.n, b.data)) << p.name;
        } else if (p.name.find(".c_") != std::string::npos) {
            EXPECT_TRUE(std::all_of(b.data, b.data + b.n, [](float x) { return x == 0.0f; })) << p.name;
        }
    }
}

}  // namespace
}  // namespace tl
