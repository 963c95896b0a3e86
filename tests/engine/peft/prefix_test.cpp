// Prefix tuning. Oracles: the plain model reading a text first (a prefix set to the keys and values of that text
// must give the same logits, and the KV-cache decoder the same continuation); central differences of the
// model's loss for every prefix value and for the reparameterisation MLP; closed-form counts; PEFT's
// PREFIX_TUNING folder layout (prompt_embeddings (n, 2 L C)).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "model/generate.hpp"
#include "peft/soft_prompt_io.hpp"
#include "peft_fixture.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;
using peft_test::grad_close;
using peft_test::PeftModel;

SoftPromptConfig prefix_config(std::int64_t n, PromptInit init, const std::string& text = "") {
    SoftPromptConfig c;
    c.virtual_tokens = n, c.init = init, c.init_text = text;
    return c;
}

std::vector<float> logits_of(Gpt& m, const std::vector<std::int32_t>& tokens, std::int64_t B, std::int64_t T) {
    m.forward(tokens.data(), nullptr, B, T);
    const CMatView z = m.logits();
    return {z.data, z.data + z.rows * z.cols};
}

// A prefix holding the keys and values the model computes for "abc" is the model reading "abc" first.
TEST(Prefix, TextInitEqualsThePlainModelReadingTheText) {
    PeftModel pm;
    Gpt& m = pm.model();
    const std::int64_t B = 2, T = 5, n = 3, V = m.config().vocab_size;
    const std::vector<std::int32_t> x = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
    std::vector<std::int32_t> with_text;
    for (std::int64_t b = 0; b < B; ++b) {
        for (char ch : std::string("abc")) with_text.push_back(std::int32_t(ch));
        with_text.insert(with_text.end(), x.begin() + b * T, x.begin() + (b + 1) * T);
    }
    const std::vector<float> plain = logits_of(m, with_text, B, n + T);
    prefix_tuning_attach(m, prefix_config(n, PromptInit::text, "abc"), PrefixProjection::none, 1);
    EXPECT_EQ(m.context(), m.config().n_positions - n);
    const std::vector<float> got = logits_of(m, x, B, T);
    for (std::int64_t b = 0; b < B; ++b)
        EXPECT_TRUE(testing::allclose(got.data() + b * T * V, plain.data() + (b * (n + T) + n) * V, T * V, 1e-5, 1e-5))
            << "row " << b;
    SampleOptions opt;
    opt.max_new_tokens = 8;
    const std::vector<std::int32_t> prompt = {10, 20, 30};
    const std::vector<std::int32_t> cached = generate(m, prompt, opt);  // the prefix goes into the caches
    PeftModel plain_pm;
    EXPECT_EQ(cached, generate(plain_pm.model(), {'a', 'b', 'c', 10, 20, 30}, opt));
}

TEST(Prefix, CountsMatchTheFormulas) {
    PeftModel pm;
    const GptConfig& g = pm.model().config();
    const std::int64_t C = g.n_embd, L = g.n_layer, n = 3;
    prefix_tuning_attach(pm.model(), prefix_config(n, PromptInit::random), PrefixProjection::none, 1);
    EXPECT_EQ(pm.model().params().trainable_count(), n * 2 * L * C);
    EXPECT_EQ(prefix_param_count(n, C, L, PrefixProjection::none, 0), n * 2 * L * C);
    PeftModel pm2;
    SoftPromptConfig c = prefix_config(n, PromptInit::random);
    c.encoder_hidden = 8;
    prefix_tuning_attach(pm2.model(), c, PrefixProjection::mlp, 1);
    const std::int64_t H = 8, W = 2 * L * C;
    EXPECT_EQ(pm2.model().params().trainable_count(), n * C + C * H + H + H * W + W);
    EXPECT_EQ(prefix_param_count(n, C, L, PrefixProjection::mlp, H), n * C + C * H + H + H * W + W);
}

// Every prefix value against a central difference of the model's loss.
TEST(Prefix, GradientsMatchCentralDifferences) {
    PeftModel pm;
    prefix_tuning_attach(pm.model(), prefix_config(2, PromptInit::text, "Q:"), PrefixProjection::none, 1);
    pm.backward();
    const ParamInfo& p = pm.model().params().at(PrefixTuning::kEmbedding);
    const VecView g = pm.model().grad(p), w = pm.model().param(p);
    double max_abs = 0;
    for (std::int64_t i = 0; i < g.n; ++i) {
        max_abs = std::max(max_abs, double(std::fabs(g[i])));
        EXPECT_TRUE(grad_close(g[i], pm.numeric(w[i], 5e-3), 2e-2, 2e-4)) << "prefix[" << i << "]";
    }
    EXPECT_GT(max_abs, 1e-3);  // the check is not vacuous
    EXPECT_EQ(pm.model().params().trainable_count(), g.n);  // the base is frozen
}

TEST(Prefix, ProjectionGradientsMatchCentralDifferences) {
    PeftModel pm;
    SoftPromptConfig c = prefix_config(2, PromptInit::random);
    c.encoder_hidden = 6;
    prefix_tuning_attach(pm.model(), c, PrefixProjection::mlp, 2);
    pm.backward();
    for (const std::string& name : {std::string(PrefixTuning::kEmbedding), PrefixTuning::weight_name(0),
                                    PrefixTuning::bias_name(0), PrefixTuning::weight_name(2),
                                    PrefixTuning::bias_name(2)}) {
        const ParamInfo& p = pm.model().params().at(name);
        const VecView g = pm.model().grad(p), w = pm.model().param(p);
        const std::int64_t stride = g.n > 200 ? 7 : 1;  // the (H, 2LC) matrix: every 7th element
        double max_abs = 0;
        for (std::int64_t i = 0; i < g.n; i += stride) {
            max_abs = std::max(max_abs, double(std::fabs(g[i])));
            EXPECT_TRUE(grad_close(g[i], pm.numeric(w[i], 5e-3), 3e-2, 3e-4)) << name << "[" << i << "]";
        }
        EXPECT_GT(max_abs, 1e-4) << name;
    }
}

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("tl_prefix_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(d);
    return d;
}

// PEFT's PREFIX_TUNING folder: prompt_embeddings (n, 2 L C) = the prefix as used (with the projection: the MLP's
// output); read back onto a fresh base, the same values, logits and KV-cache continuation.
void check_round_trip(PeftModel& pm, bool is_projected) {
    const GptConfig& g = pm.model().config();
    const std::int64_t n = pm.model().virtual_tokens(), W = 2 * g.n_layer * g.n_embd;
    const std::vector<float> values = prefix_values(pm.model()), logits = pm.logits();
    const fs::path dir = scratch(is_projected ? "mlp" : "none");
    save_prefix(dir, pm.model(), "models/nano-base");
    const auto j = nlohmann::json::parse(read_file_text(dir / "adapter_config.json", 1 << 20));
    EXPECT_EQ(j.at("peft_type"), "PREFIX_TUNING");
    EXPECT_EQ(j.at("num_virtual_tokens"), n);
    EXPECT_EQ(j.at("token_dim"), g.n_embd);
    EXPECT_EQ(j.at("num_layers"), g.n_layer);
    EXPECT_EQ(j.at("num_attention_heads"), g.n_head);
    EXPECT_EQ(j.at("prefix_projection"), is_projected);
    const SafeTensorsFile st = read_safetensors(dir / "adapter_model.safetensors");
    ASSERT_EQ(st.tensors.size(), 1u);
    EXPECT_EQ(st.at(kPromptEmbeddingsTensor).shape, (Shape{n, W}));
    EXPECT_EQ(st.at(kPromptEmbeddingsTensor).to_f32(), values);
    PeftModel other;
    load_prefix(dir, other.model());
    EXPECT_EQ(prefix_values(other.model()), values);
    EXPECT_TRUE(testing::allclose(other.logits(), logits, 1e-6, 1e-6));
    SampleOptions opt;
    opt.max_new_tokens = 6;
    EXPECT_EQ(generate(other.model(), {5, 6, 7}, opt), generate(pm.model(), {5, 6, 7}, opt));
    fs::remove_all(dir);
}

TEST(PrefixIo, FolderRoundTrips) {
    PeftModel pm;
    prefix_tuning_attach(pm.model(), prefix_config(3, PromptInit::sample_vocab), PrefixProjection::none, 4);
    check_round_trip(pm, false);
}

TEST(PrefixIo, ProjectedFolderHoldsTheMlpOutput) {
    PeftModel pm;
    SoftPromptConfig c = prefix_config(2, PromptInit::random);
    c.encoder_hidden = 5;
    prefix_tuning_attach(pm.model(), c, PrefixProjection::mlp, 4);
    check_round_trip(pm, true);
}

TEST(Prefix, BadInputIsRefused) {
    PeftModel pm;
    Gpt& m = pm.model();
    const std::int64_t P = m.config().n_positions;
    EXPECT_THROW(prefix_tuning_attach(m, prefix_config(0, PromptInit::random), PrefixProjection::none, 1), Error);
    EXPECT_THROW(prefix_tuning_attach(m, prefix_config(P, PromptInit::random), PrefixProjection::none, 1), Error);
    EXPECT_THROW(prefix_tuning_attach(m, prefix_config(2, PromptInit::text, ""), PrefixProjection::none, 1), Error);
    SoftPromptConfig c = prefix_config(2, PromptInit::random);
    c.encoder_hidden = -1;
    EXPECT_THROW(prefix_tuning_attach(m, c, PrefixProjection::mlp, 1), Error);
    EXPECT_FALSE(m.has_adapters());
    prefix_tuning_attach(m, prefix_config(2, PromptInit::random), PrefixProjection::none, 1);
    EXPECT_THROW(prompt_tuning_attach(m, prefix_config(2, PromptInit::random), 1), Error);  // one at a time
    const fs::path dir = scratch("other");
    save_prefix(dir, m, "base");
    auto be = make_cpu_backend({1});
    Gpt tiny(*be, find_preset("tiny").config);
    EXPECT_THROW(load_prefix(dir, tiny), Error);
    EXPECT_FALSE(tiny.has_adapters());
    PeftModel other;
    EXPECT_THROW(load_soft_prompt(dir, other.model()), Error);  // a prefix is not a soft prompt
    fs::remove_all(dir);
}

}  // namespace
}  // namespace tl
