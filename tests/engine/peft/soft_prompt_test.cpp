// Prompt tuning and P-tuning. Oracles: the plain model fed the init text's tokens before the input (a soft
// prompt initialised from those tokens must give the same logits and the same greedy continuation); central
// differences of the model's loss for the virtual embeddings; a double-precision host MLP (PEFT's
// PromptEncoder) for the encoder's values and gradients; closed-form parameter counts; PEFT's prompt-learning
// folder layout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "data/tokenizer.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "model/generate.hpp"
#include "optim/adamw.hpp"
#include "peft/lora_io.hpp"
#include "peft/soft_prompt_io.hpp"
#include "peft_fixture.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;
using peft_test::grad_close;
using peft_test::PeftModel;

SoftPromptConfig text_prompt(std::int64_t n, const std::string& text) {
    SoftPromptConfig c;
    c.virtual_tokens = n, c.init = PromptInit::text, c.init_text = text;
    return c;
}

std::vector<float> logits_of(Gpt& m, const std::vector<std::int32_t>& tokens, std::int64_t B,
                             std::int64_t T) {
    m.forward(tokens.data(), nullptr, B, T);
    const CMatView z = m.logits();
    return {z.data, z.data + z.rows * z.cols};
}

// A soft prompt that starts at the embeddings of "abc" is the plain model reading "abc" first: positions 0..2
// for the virtual tokens, 3.. for the real ones; logits cover the real tokens only.
TEST(SoftPrompt, TextInitEqualsThePlainModelReadingTheText) {
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
    prompt_tuning_attach(m, text_prompt(n, "abc"), 1);
    EXPECT_EQ(m.virtual_tokens(), n);
    EXPECT_EQ(m.context(), m.config().n_positions - n);
    const std::vector<float> soft = logits_of(m, x, B, T);
    ASSERT_EQ(soft.size(), std::size_t(B * T * V));
    for (std::int64_t b = 0; b < B; ++b)
        EXPECT_TRUE(testing::allclose(soft.data() + b * T * V, plain.data() + (b * (n + T) + n) * V, T * V,
                                      1e-5, 1e-5))
            << "row " << b;
    // The KV-cache decoder feeds the virtual tokens first: the same continuation as the plain model given
    // "abc".
    const std::vector<std::int32_t> prompt = {10, 20, 30};
    SampleOptions opt;
    opt.max_new_tokens = 8;
    const std::vector<std::int32_t> got = generate(m, prompt, opt);
    PeftModel plain_pm;
    std::vector<std::int32_t> text_prompt_tokens = {'a', 'b', 'c', 10, 20, 30};
    EXPECT_EQ(got, generate(plain_pm.model(), text_prompt_tokens, opt));
}

TEST(SoftPrompt, TextInitCyclesOrCutsTheTextLikePeft) {
    PeftModel pm;
    Gpt& m = pm.model();
    prompt_tuning_attach(m, text_prompt(5, "xy"), 1);  // x y x y x
    const std::vector<float> P = soft_prompt_values(m);
    const std::int64_t C = m.config().n_embd;
    for (std::int64_t j = 0; j < 5; ++j)
        EXPECT_TRUE(std::equal(P.begin() + j * C, P.begin() + (j + 1) * C, m.wte().row(j % 2 ? 'y' : 'x')))
            << j;
}

// Every element of P against a central difference of the float model's weighted loss (linear in P up to the
// blocks' smooth nonlinearities, so the difference is accurate).
TEST(SoftPrompt, VirtualEmbeddingGradientsMatchCentralDifferences) {
    PeftModel pm;
    prompt_tuning_attach(pm.model(), text_prompt(3, "Q: "), 1);
    pm.backward();
    const ParamInfo& p = pm.model().params().at(SoftPrompt::kEmbedding);
    const VecView g = pm.model().grad(p), w = pm.model().param(p);
    double max_abs = 0;
    for (std::int64_t i = 0; i < g.n; ++i) {
        max_abs = std::max(max_abs, double(std::fabs(g[i])));
        EXPECT_TRUE(grad_close(g[i], pm.numeric(w[i], 5e-3), 2e-2, 2e-4)) << "P[" << i << "]";
    }
    EXPECT_GT(max_abs, 1e-3);  // the check is not vacuous
}

// PEFT's PromptEncoder (MLP), in double on the host: P = relu(relu(E W1 + b1) W2 + b2) W3 + b3, W stored (in,
// out).
struct HostEncoder {
    std::int64_t n, C, H;
    std::vector<double> E, W1, b1, W2, b2, W3, b3;
    static std::vector<double> read(const Gpt& m, const std::string& name) {
        const CVecView v = m.param(m.params().at(name));
        return {v.data, v.data + v.n};
    }
    HostEncoder(const Gpt& m, std::int64_t n_, std::int64_t H_)
        : n(n_),
          C(m.config().n_embd),
          H(H_),
          E(read(m, SoftPrompt::kEmbedding)),
          W1(read(m, PTuning::weight_name(0))),
          b1(read(m, PTuning::bias_name(0))),
          W2(read(m, PTuning::weight_name(2))),
          b2(read(m, PTuning::bias_name(2))),
          W3(read(m, PTuning::weight_name(4))),
          b3(read(m, PTuning::bias_name(4))) {}
    static std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& W,
                                      const std::vector<double>& b, std::int64_t rows, std::int64_t in,
                                      std::int64_t out, bool is_relu) {
        std::vector<double> y(std::size_t(rows * out));
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t o = 0; o < out; ++o) {
                double s = b[std::size_t(o)];
                for (std::int64_t i = 0; i < in; ++i)
                    s += x[std::size_t(r * in + i)] * W[std::size_t(i * out + o)];
                y[std::size_t(r * out + o)] = is_relu ? std::max(s, 0.0) : s;
            }
        return y;
    }
    std::vector<double> prompt() const {
        return linear(linear(linear(E, W1, b1, n, C, H, true), W2, b2, n, H, H, true), W3, b3, n, H, C,
                      false);
    }
    double loss(const std::vector<float>& g) const {  // sum g . P
        const std::vector<double> P = prompt();
        double s = 0;
        for (std::size_t i = 0; i < P.size(); ++i) s += double(g[i]) * P[i];
        return s;
    }
    std::vector<double>* tensor(const std::string& name) {
        if (name == SoftPrompt::kEmbedding) return &E;
        if (name == PTuning::weight_name(0)) return &W1;
        if (name == PTuning::bias_name(0)) return &b1;
        if (name == PTuning::weight_name(2)) return &W2;
        if (name == PTuning::bias_name(2)) return &b2;
        if (name == PTuning::weight_name(4)) return &W3;
        return &b3;
    }
};

TEST(SoftPrompt, PTuningEncoderMatchesADoubleMlpAndItsCentralDifferences) {
    PeftModel pm;
    Gpt& m = pm.model();
    SoftPromptConfig c;
    c.virtual_tokens = 4, c.encoder_hidden = 12;
    PTuning& pt = ptuning_attach(m, c, 5);
    HostEncoder host(m, 4, 12);
    const std::int64_t C = m.config().n_embd;
    const std::vector<float> P = soft_prompt_values(m);
    const std::vector<double> want = host.prompt();
    EXPECT_TRUE(testing::allclose(P.data(), want.data(), std::int64_t(P.size()), 1e-5, 1e-6));
    // Backward of loss = sum g . P, against central differences of the double MLP (h small: no ReLU kink
    // crossed).
    const std::vector<float> g = peft_test::random_vec(std::size_t(4 * C), 31);
    m.enable_grads();
    m.zero_grads();
    std::vector<float> scratch(std::size_t(4 * C));
    pt.prompt_forward(m, MatView(scratch.data(), 4, C));
    pt.prompt_backward(m, CMatView(g.data(), 4, C));
    for (const ParamInfo& p : m.params().entries()) {
        if (p.offset < m.base_param_count()) continue;
        std::vector<double>& t = *host.tensor(p.name);
        const CVecView analytic = m.grad(p);
        for (std::int64_t i = 0; i < p.numel(); i += 1 + p.numel() / 40) {
            const double saved = t[std::size_t(i)], h = 1e-6;
            t[std::size_t(i)] = saved + h;
            const double lp = host.loss(g);
            t[std::size_t(i)] = saved - h;
            const double lm = host.loss(g);
            t[std::size_t(i)] = saved;
            EXPECT_TRUE(grad_close(analytic[i], (lp - lm) / (2 * h), 1e-4, 1e-5))
                << p.name << "[" << i << "]";
        }
    }
}

// The whole chain (model -> dP -> encoder) at each encoder tensor's largest gradient, against the float
// model.
TEST(SoftPrompt, PTuningWholeModelGradientsMatchCentralDifferences) {
    PeftModel pm;
    SoftPromptConfig c;
    c.virtual_tokens = 3, c.encoder_hidden = 16;
    ptuning_attach(pm.model(), c, 2);
    pm.backward();
    for (const ParamInfo& p : pm.model().params().entries()) {
        if (p.offset < pm.model().base_param_count()) continue;
        const VecView g = pm.model().grad(p);
        const std::int64_t i =
            std::max_element(g.data, g.data + g.n,
                             [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
            g.data;
        EXPECT_TRUE(grad_close(g[i], pm.numeric(pm.model().param(p)[i], 5e-3), 3e-2, 2e-4))
            << p.name << "[" << i << "]";
    }
}

TEST(SoftPrompt, TrainableCountsMatchClosedForms) {
    PeftModel a, b, d;
    const std::int64_t C = a.model().config().n_embd;
    prompt_tuning_attach(a.model(), text_prompt(7, "hi"), 1);
    EXPECT_EQ(a.model().params().trainable_count(), 7 * C);
    EXPECT_EQ(prompt_tuning_param_count(7, C), 7 * C);
    SoftPromptConfig c;
    c.virtual_tokens = 5;  // H = C by default (PEFT: encoder_hidden_size = token_dim)
    ptuning_attach(b.model(), c, 1);
    EXPECT_EQ(b.model().params().trainable_count(), 5 * C + (C * C + C) + (C * C + C) + (C * C + C));
    c.encoder_hidden = 9;
    ptuning_attach(d.model(), c, 1);
    EXPECT_EQ(d.model().params().trainable_count(), 5 * C + 2 * C * 9 + 9 * 9 + 2 * 9 + C);
    EXPECT_EQ(ptuning_param_count(5, C, 9), d.model().params().trainable_count());
}

// Frozen weights: their gradients stay zero (embeddings, every Conv1D) and one optimizer step leaves every
// base weight bit for bit as it was; AdamW keeps state for the n C prompt values only.
TEST(SoftPrompt, FrozenBaseGetsNoGradientAndNoUpdate) {
    PeftModel pm;
    Gpt& m = pm.model();
    prompt_tuning_attach(m, text_prompt(4, "rev"), 1);
    const std::vector<float> before(m.weights().data(), m.weights().data() + m.base_param_count());
    pm.backward();
    for (const ParamInfo& p : m.params().entries()) {
        if (p.offset >= m.base_param_count() || p.name.find("ln_") != std::string::npos) continue;
        const CVecView g = m.grad(p);
        EXPECT_TRUE(std::all_of(g.data, g.data + g.n, [](float x) { return x == 0.0f; })) << p.name;
    }
    AdamW opt(m, AdamWConfig{});
    opt.step(0.1f);
    EXPECT_TRUE(std::equal(before.begin(), before.end(), m.weights().data()));
    EXPECT_EQ(pm.backend().ledger().current(MemCategory::optimizer), 2 * 4 * 4 * m.config().n_embd);
}

TEST(SoftPrompt, BadInputIsAClearError) {
    PeftModel pm;
    Gpt& m = pm.model();
    const std::int64_t positions = m.config().n_positions;
    EXPECT_THROW(prompt_tuning_attach(m, text_prompt(0, "a"), 1), Error);
    EXPECT_THROW(prompt_tuning_attach(m, text_prompt(positions, "a"), 1), Error);
    EXPECT_THROW(prompt_tuning_attach(m, text_prompt(3, ""), 1), Error);  // init text missing
    EXPECT_THROW(parse_prompt_init("TEXT_AND_MORE"), Error);
    SoftPromptConfig c;
    c.encoder_hidden = -1;
    EXPECT_THROW(ptuning_attach(m, c, 1), Error);
    EXPECT_FALSE(m.has_adapters());
    prompt_tuning_attach(m, text_prompt(8, "a"), 1);
    EXPECT_THROW(prompt_tuning_attach(m, text_prompt(2, "a"), 1), Error);  // one soft prompt at a time
    const std::vector<std::int32_t> tokens(std::size_t(positions), 65);
    EXPECT_THROW(m.forward(tokens.data(), nullptr, 1, positions - 7), Error);  // 8 + 25 > 32
    EXPECT_NO_THROW(m.forward(tokens.data(), nullptr, 1, positions - 8));
    EXPECT_THROW(generate(m, std::vector<std::int32_t>(std::size_t(positions - 8), 65), SampleOptions{}),
                 Error);
}

fs::path scratch(const std::string& name) {
    const fs::path d =
        fs::temp_directory_path() / ("tl_soft_prompt_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(d);
    return d;
}

// The folder PEFT writes for prompt learning: adapter_config.json with the PromptLearningConfig fields and
// one tensor "prompt_embeddings" (n, C); read back, the same values and the same logits on a fresh base.
void check_round_trip(PeftModel& pm, const std::string& peft_type, std::int64_t n) {
    const std::vector<float> values = soft_prompt_values(pm.model());
    const std::vector<float> logits = pm.logits();
    const fs::path dir = scratch(peft_type);
    save_soft_prompt(dir, pm.model(), "models/nano-base");
    const auto j = nlohmann::json::parse(read_file_text(dir / "adapter_config.json", 1 << 20));
    const GptConfig& g = pm.model().config();
    EXPECT_EQ(j.at("peft_type"), peft_type);
    EXPECT_EQ(j.at("task_type"), "CAUSAL_LM");
    EXPECT_EQ(j.at("num_virtual_tokens"), n);
    EXPECT_EQ(j.at("token_dim"), g.n_embd);
    EXPECT_EQ(j.at("num_transformer_submodules"), 1);
    EXPECT_EQ(j.at("num_attention_heads"), g.n_head);
    EXPECT_EQ(j.at("num_layers"), g.n_layer);
    const SafeTensorsFile st = read_safetensors(dir / "adapter_model.safetensors");
    ASSERT_EQ(st.tensors.size(), 1u);
    EXPECT_EQ(st.at(kPromptEmbeddingsTensor).shape, (Shape{n, g.n_embd}));
    EXPECT_EQ(st.at(kPromptEmbeddingsTensor).to_f32(), values);
    PeftModel other;  // the same base, no soft prompt
    load_soft_prompt(dir, other.model());
    EXPECT_EQ(soft_prompt_values(other.model()), values);
    EXPECT_TRUE(testing::allclose(other.logits(), logits, 1e-6, 1e-6));
    fs::remove_all(dir);
}

TEST(SoftPromptIo, PromptTuningFolderRoundTrips) {
    PeftModel pm;
    prompt_tuning_attach(pm.model(), text_prompt(4, "Q: "), 1);
    const VecView P = pm.model().param(pm.model().params().at(SoftPrompt::kEmbedding));
    for (std::int64_t i = 0; i < P.n; ++i) P[i] += 0.01f * float(i % 7);  // trained-looking
    check_round_trip(pm, "PROMPT_TUNING", 4);
    const fs::path dir = scratch("fields");
    save_soft_prompt(dir, pm.model(), "base");
    const auto j = nlohmann::json::parse(read_file_text(dir / "adapter_config.json", 1 << 20));
    EXPECT_EQ(j.at("prompt_tuning_init"), "TEXT");
    EXPECT_EQ(j.at("prompt_tuning_init_text"), "Q: ");
    EXPECT_EQ(j.at("tokenizer_name_or_path"), "base");  // PEFT refuses TEXT without one
    fs::remove_all(dir);
}

TEST(SoftPromptIo, PTuningFolderHoldsTheEncoderOutput) {
    PeftModel pm;
    SoftPromptConfig c;
    c.virtual_tokens = 3, c.encoder_hidden = 10;
    ptuning_attach(pm.model(), c, 3);
    check_round_trip(pm, "P_TUNING", 3);
    const fs::path dir = scratch("ptuning_fields");
    save_soft_prompt(dir, pm.model(), "base");
    const auto j = nlohmann::json::parse(read_file_text(dir / "adapter_config.json", 1 << 20));
    EXPECT_EQ(j.at("encoder_reparameterization_type"), "MLP");
    EXPECT_EQ(j.at("encoder_hidden_size"), 10);
    fs::remove_all(dir);
}

TEST(SoftPromptIo, AnotherWidthOrTypeIsRefused) {
    PeftModel pm;
    prompt_tuning_attach(pm.model(), text_prompt(4, "ab"), 1);
    const fs::path dir = scratch("other");
    save_soft_prompt(dir, pm.model(), "base");
    auto be = make_cpu_backend({1});
    Gpt tiny(*be, find_preset("tiny").config);
    EXPECT_THROW(load_soft_prompt(dir, tiny), Error);
    EXPECT_FALSE(tiny.has_adapters());
    PeftModel other;
    EXPECT_THROW(load_lora_adapter(dir, other.model()), Error);  // a soft prompt is not a LoRA folder
    fs::remove_all(dir);
}

}  // namespace
}  // namespace tl
