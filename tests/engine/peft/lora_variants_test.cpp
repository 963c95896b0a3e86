// LoRA dropout and DoRA. Oracles: central differences of one hook's loss (DoRA with the exact norm derivative;
// with the detached norm, the magnitude and input gradients, which the norm does not touch), the base model's
// logits (a fresh DoRA changes nothing; dropout in eval changes nothing), the merged model (same logits), column
// norms computed on the host, closed-form counts, PEFT's folder layout (lora_magnitude_vector).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "peft/lora_io.hpp"
#include "peft_fixture.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;
using peft_test::grad_close;
using peft_test::PeftModel;
using peft_test::SiteHarness;

LoraConfig dora_config(DoraNorm norm, std::vector<std::string> targets = {"c_attn"}) {
    LoraConfig c;
    c.r = 2, c.alpha = 4.0f, c.variant = LoraVariant::dora, c.dora_norm = norm, c.targets = std::move(targets);
    return c;
}

// B and m away from their init, so every term of the gradient is alive.
void perturb(Gpt& m, const LoraAdapter& lora, std::uint64_t seed) {
    Rng rng(seed, 3);
    for (const LoraAdapter::Module& mod : lora.modules()) {
        const VecView B = m.param(m.params().at(mod.b_name()));
        for (std::int64_t i = 0; i < B.n; ++i) B[i] = 0.2f * rng.normal();
        if (lora.config().variant != LoraVariant::dora) continue;
        const VecView mag = m.param(m.params().at(mod.m_name()));
        for (std::int64_t i = 0; i < mag.n; ++i) mag[i] *= 1.0f + 0.3f * rng.normal();
    }
}

void check_site(DoraNorm norm, bool is_param_checked) {
    PeftModel pm;
    Gpt& m = pm.model();
    LoraAdapter& lora = lora_attach(m, dora_config(norm), 1);
    perturb(m, lora, 7);
    const std::int64_t C = m.config().n_embd;
    SiteHarness h(m, lora, 0, HookSite::attn_qkv, 3, C, 3 * C);
    const auto [dy0, dx] = h.backward();
    const LoraAdapter::Module& mod = lora.modules()[0];
    for (const std::string& name : {mod.m_name(), mod.a_name(), mod.b_name()}) {
        if (!is_param_checked && name != mod.m_name()) continue;
        const VecView g = m.grad(m.params().at(name)), w = m.param(m.params().at(name));
        for (std::int64_t i = 0; i < g.n; i += 3)
            EXPECT_TRUE(grad_close(g[i], h.numeric(w[i], 1e-2), 1e-2, 2e-3)) << name << "[" << i << "]";
    }
    for (std::size_t i = 0; i < h.x.size(); i += 5)
        EXPECT_TRUE(grad_close(dx[i], h.numeric(h.x[i], 1e-2), 1e-2, 2e-3)) << "x[" << i << "]";
}

TEST(Dora, ExactNormGradientsMatchCentralDifferences) { check_site(DoraNorm::exact, true); }
// Detached (PEFT): the norm is a constant in backward, so only m and x have the loss's true gradient.
TEST(Dora, DetachedNormMagnitudeAndInputGradientsMatch) { check_site(DoraNorm::detached, false); }

TEST(Dora, FreshAdapterChangesNothingAndMagnitudeIsTheColumnNorm) {
    PeftModel pm;
    Gpt& m = pm.model();
    const std::vector<float> base = pm.logits();
    LoraAdapter& lora = lora_attach(m, dora_config(DoraNorm::detached, {"c_attn", "c_proj", "c_fc"}), 1);
    EXPECT_TRUE(testing::allclose(pm.logits(), base, 1e-5, 1e-5));
    const LoraAdapter::Module& mod = lora.modules()[0];  // layer 0 attn.c_attn, W (in, out)
    const VecView W = m.param(m.params().at(mod.path + ".weight")), mag = m.param(m.params().at(mod.m_name()));
    for (std::int64_t j = 0; j < mod.out; ++j) {
        double sq = 0;
        for (std::int64_t k = 0; k < mod.in; ++k) sq += double(W[k * mod.out + j]) * W[k * mod.out + j];
        EXPECT_NEAR(mag[j], std::sqrt(sq), 1e-5 * std::sqrt(sq)) << j;
    }
    std::vector<std::pair<std::int64_t, std::int64_t>> shapes;
    for (const auto& x : lora.modules()) shapes.push_back({x.in, x.out});
    EXPECT_EQ(m.params().trainable_count(), lora_param_count(shapes, 2, LoraVariant::dora));
    const std::int64_t C = m.config().n_embd, L = m.config().n_layer;  // c_proj matches attn's and mlp's
    EXPECT_EQ(lora_param_count(shapes, 2, LoraVariant::dora),
              L * (2 * (C + 3 * C) + 3 * C + 2 * (C + C) + C + 2 * (C + 4 * C) + 4 * C + 2 * (4 * C + C) + C));
}

TEST(Dora, MergedEqualsUnmergedAndUnmergeRestores) {
    PeftModel pm;
    Gpt& m = pm.model();
    LoraAdapter& lora = lora_attach(m, dora_config(DoraNorm::detached, {"c_attn", "c_proj", "c_fc"}), 1);
    perturb(m, lora, 9);
    const std::vector<float> unmerged = pm.logits();
    std::vector<float> w0(std::size_t(m.base_param_count()));
    m.backend().copy_to_host(w0.data(), CVecView(m.weights().data(), m.base_param_count()));
    lora.merge(m);
    EXPECT_TRUE(testing::allclose(pm.logits(), unmerged, 1e-4, 1e-4));
    lora.unmerge(m);
    EXPECT_TRUE(testing::allclose(m.weights().data(), w0.data(), m.base_param_count(), 1e-5, 1e-6));
    lora_merge_and_detach(m);
    EXPECT_FALSE(m.has_adapters());
    EXPECT_TRUE(testing::allclose(pm.logits(), unmerged, 1e-4, 1e-4));
}

TEST(Dora, FolderRoundTripsWithPeftNames) {
    PeftModel pm;
    LoraConfig c = dora_config(DoraNorm::detached);
    c.dropout = 0.1f;
    LoraAdapter& lora = lora_attach(pm.model(), c, 1);
    perturb(pm.model(), lora, 11);
    const std::vector<float> logits = pm.logits();
    const fs::path dir = fs::temp_directory_path() / ("tl_dora_" + std::to_string(::getpid()));
    save_lora_adapter(dir, pm.model(), "base");
    const auto j = nlohmann::json::parse(read_file_text(dir / "adapter_config.json", 1 << 20));
    EXPECT_EQ(j.at("use_dora"), true);
    EXPECT_FLOAT_EQ(j.at("lora_dropout").get<float>(), 0.1f);
    const SafeTensorsFile st = read_safetensors(dir / "adapter_model.safetensors");
    const std::int64_t C = pm.model().config().n_embd, L = pm.model().config().n_layer;
    EXPECT_EQ(st.tensors.size(), std::size_t(3 * L));
    EXPECT_EQ(st.at("base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector").shape, (Shape{3 * C}));
    PeftModel other;
    const LoraAdapter& back = load_lora_adapter(dir, other.model());
    EXPECT_EQ(back.config().variant, LoraVariant::dora);
    EXPECT_FLOAT_EQ(back.config().dropout, 0.1f);
    EXPECT_TRUE(testing::allclose(other.logits(), logits, 1e-6, 1e-6));
    fs::remove_all(dir);
}

// Dropout: nothing in eval; in train a mask fixed by (seed, forward count), so the gradients can be checked by
// central differences with the mask held (set_phase restarts the masks).
TEST(LoraDropout, EvalIsUnchangedTrainIsDeterministicAndGradientsMatch) {
    PeftModel pm;
    Gpt& m = pm.model();
    LoraConfig c;
    c.r = 2, c.alpha = 4.0f, c.targets = {"c_attn"}, c.dropout = 0.3f;
    LoraAdapter& lora = lora_attach(m, c, 1);
    perturb(m, lora, 5);
    lora.set_phase(LoraPhase::eval, 0);
    const std::vector<float> eval = pm.logits();
    lora.set_phase(LoraPhase::train, 42);
    const std::vector<float> train1 = pm.logits();
    lora.set_phase(LoraPhase::train, 42);
    EXPECT_EQ(pm.logits(), train1);  // same seed, same masks
    EXPECT_FALSE(testing::allclose(train1, eval, 1e-4, 1e-4));
    { const LoraTrainingScope scope(m, 42); EXPECT_EQ(pm.logits(), train1); }
    EXPECT_EQ(lora.phase(), LoraPhase::eval);
    EXPECT_EQ(pm.logits(), eval);

    const std::int64_t C = m.config().n_embd;
    SiteHarness h(m, lora, 1, HookSite::attn_qkv, 4, C, 3 * C);
    lora.set_phase(LoraPhase::train, 8);
    const auto [dy0, dx] = h.backward();
    auto numeric = [&](float& e) {
        return peft_test::central_difference(e, 1e-2, [&] {
            lora.set_phase(LoraPhase::train, 8);
            return h.loss();
        });
    };
    const LoraAdapter::Module& mod = lora.modules()[1];  // layer 1
    for (const std::string& name : {mod.a_name(), mod.b_name()}) {
        const VecView g = m.grad(m.params().at(name)), w = m.param(m.params().at(name));
        for (std::int64_t i = 0; i < g.n; i += 3)
            EXPECT_TRUE(grad_close(g[i], numeric(w[i]), 1e-2, 2e-3)) << name << "[" << i << "]";
    }
    int zeros = 0;
    for (std::size_t i = 0; i < h.x.size(); i += 1) {
        if (i % 5 == 0) {
            EXPECT_TRUE(grad_close(dx[i], numeric(h.x[i]), 1e-2, 2e-3)) << "x[" << i << "]";
        }
        zeros += dx[i] == 0.0f;
    }
    EXPECT_GT(zeros, 0);  // dropped inputs get no gradient
}

TEST(LoraVariants, BadInputIsRefused) {
    PeftModel pm;
    LoraConfig c;
    c.dropout = 1.0f;
    EXPECT_THROW(lora_attach(pm.model(), c, 1), Error);
    c.dropout = -0.1f;
    EXPECT_THROW(lora_attach(pm.model(), c, 1), Error);
    c.dropout = std::nanf("");
    EXPECT_THROW(lora_attach(pm.model(), c, 1), Error);
    EXPECT_FALSE(pm.model().has_adapters());
}

}  // namespace
}  // namespace tl
