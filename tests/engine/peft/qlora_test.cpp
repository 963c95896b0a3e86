// QLoRA's frozen NF4 base. Oracles: the quantizer's own dequantize (formats/quantizer.cpp, itself checked against
// the QLoRA paper's code book) for every decoded weight; a plain fp32 model whose block matrices were rounded
// through that dequantize for logits and LoRA gradients (bit-identical: the same fp32 weights reach the same ops);
// bits_per_weight's closed form (4 + 8/64 + 32/(64 * 256) + the mean) for the bytes charged to the ledger.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "peft/lora.hpp"
#include "peft/qlora.hpp"
#include "peft_fixture.hpp"
#include "train/recipes.hpp"

namespace tl {
namespace {

using peft_test::PeftModel;

const char* const kMatrices[] = {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"};

std::vector<std::string> block_matrices(const Gpt& m) {
    std::vector<std::string> out;
    for (std::int64_t l = 0; l < m.config().n_layer; ++l)
        for (const char* s : kMatrices) out.push_back("transformer.h." + std::to_string(l) + "." + s);
    return out;
}

// The independent path: (in, out) -> (out, in), formats' quantize + dequantize, back to (in, out).
std::vector<float> rounded_by_formats(const Gpt& m, const ParamInfo& p, const QuantScheme& scheme) {
    const std::int64_t in = p.shape[0], out = p.shape[1];
    std::vector<float> w(std::size_t(p.numel())), t(w.size());
    m.backend().copy_to_host(w.data(), m.param(p));
    for (std::int64_t i = 0; i < in; ++i)
        for (std::int64_t j = 0; j < out; ++j) t[std::size_t(j * in + i)] = w[std::size_t(i * out + j)];
    const std::vector<float> d = dequantize(quantize(t, out, in, scheme));
    for (std::int64_t i = 0; i < in; ++i)
        for (std::int64_t j = 0; j < out; ++j) w[std::size_t(i * out + j)] = d[std::size_t(j * in + i)];
    return w;
}

void round_like_formats(Gpt& m, const QuantScheme& scheme) {
    for (const std::string& name : block_matrices(m)) {
        const ParamInfo& p = m.params().at(name);
        const std::vector<float> w = rounded_by_formats(m, p, scheme);
        m.backend().copy_from_host(m.param(p), w.data());
    }
}

class QloraOptionsTest : public ::testing::TestWithParam<DoubleQuant> {};

TEST_P(QloraOptionsTest, StoredMatricesDecodeToTheQuantizersDequantizeBitForBit) {
    QloraBaseOptions o;
    o.double_quant = GetParam();
    o.group_size = 16;  // nano's rows of 32 and 128 hold whole groups; 64 is tested on the tiny shape below
    PeftModel a, b;
    std::vector<std::vector<float>> expected;
    for (const std::string& name : block_matrices(b.model()))
        expected.push_back(rounded_by_formats(b.model(), b.model().params().at(name), qlora_scheme(o)));
    qlora_quantize_base(a.model(), o);
    ASSERT_NE(a.model().store(), nullptr);
    std::size_t i = 0;
    for (const std::string& name : block_matrices(a.model())) {
        const ParamInfo& p = a.model().params().at(name);
        EXPECT_TRUE(p.is_in_store && !p.is_trainable) << name;
        std::vector<float> got(std::size_t(p.numel()));
        a.model().store()->decode(name, got);
        EXPECT_EQ(got, expected[i++]) << name;
    }
}

INSTANTIATE_TEST_SUITE_P(Qlora, QloraOptionsTest,
                         ::testing::Values(DoubleQuant::fp8_e4m3, DoubleQuant::int8, DoubleQuant::none),
                         [](const auto& info) { return std::string(name_of(info.param)); });

TEST(Qlora, LogitsEqualAnFp32ModelWithTheSameRoundedWeights) {
    PeftModel stored, rounded;
    qlora_quantize_base(stored.model());
    round_like_formats(rounded.model(), qlora_scheme({}));
    EXPECT_EQ(stored.logits(), rounded.logits());
    EXPECT_EQ(stored.logits(), rounded.logits());  // the decode workspace is reused: a second pass is the same
}

TEST(Qlora, LoraGradientsThroughTheNf4BaseEqualLoraOnTheRoundedFp32Base) {
    PeftModel stored, rounded;
    qlora_quantize_base(stored.model());
    round_like_formats(rounded.model(), qlora_scheme({}));
    LoraConfig c;
    c.r = 4, c.alpha = 8;
    for (PeftModel* m : {&stored, &rounded}) {
        lora_attach(m->model(), c, 7);
        Rng rng(5, 9);  // B starts at zero, under which A's gradient vanishes: give both the same B
        for (const ParamInfo& p : m->model().params().entries())
            if (p.name.find("lora_B") != std::string::npos) {
                const VecView v = m->model().param(p);
                for (std::int64_t k = 0; k < v.n; ++k) v[k] = 0.05f * rng.normal();
            }
        m->backward();
    }
    std::int64_t checked = 0;
    for (const ParamInfo& p : rounded.model().params().entries()) {
        if (!p.is_trainable) continue;
        const VecView g1 = stored.model().grad(stored.model().params().at(p.name)), g2 = rounded.model().grad(p);
        EXPECT_EQ(std::vector<float>(g1.data, g1.data + g1.n), std::vector<float>(g2.data, g2.data + g2.n)) << p.name;
        ++checked;
    }
    EXPECT_EQ(checked, 2 * 4 * stored.model().config().n_layer);  // A and B of c_attn, c_proj (x2), c_fc per layer
}

TEST(Qlora, LedgerChargesTheNf4BytesAndDropsTheFp32Matrices) {
    GptConfig c = find_preset("tiny").config;  // rows of 128 and 512: whole groups of 64
    auto be = make_cpu_backend({1});
    Gpt m(*be, c);
    m.init_gpt2(1);
    const std::int64_t fp32_before = be->ledger().current(MemCategory::weights);
    qlora_quantize_base(m);
    double expected_bytes = 0;
    std::int64_t stored_params = 0;
    for (const std::string& name : block_matrices(m)) {
        const ParamInfo& p = m.params().at(name);
        expected_bytes += bits_per_weight(qlora_scheme({}), p.shape[1], p.shape[0]) * double(p.numel()) / 8;
        stored_params += p.numel();
        EXPECT_EQ(qlora_matrix_bytes(p.shape[1], p.shape[0], {}),
                  std::int64_t(bits_per_weight(qlora_scheme({}), p.shape[1], p.shape[0]) * double(p.numel()) / 8));
    }
    EXPECT_EQ(double(be->ledger().current(MemCategory::quant_storage)), expected_bytes);
    EXPECT_EQ(be->ledger().current(MemCategory::weights), fp32_before - 4 * stored_params);
    // The paper's 4.127 bits per weight (section 3), plus 32 bits for each matrix's scale mean.
    EXPECT_NEAR(8 * expected_bytes / double(stored_params), 4.127, 0.002);
    // The decode workspace holds one layer's matrices: 12 C^2 floats.
    EXPECT_EQ(be->ledger().current(MemCategory::workspace), 4 * 12 * c.n_embd * c.n_embd);
}

TEST(Qlora, TrainingLeavesTheStoredBaseUntouched) {
    PeftModel m;
    qlora_quantize_base(m.model());
    const std::string name = "transformer.h.1.mlp.c_fc.weight";
    std::vector<float> before(std::size_t(m.model().params().at(name).numel())), after(before.size());
    m.model().store()->decode(name, before);
    FinetuneSpec spec;
    spec.method = Method::qlora, spec.steps = 5, spec.batch = 4, spec.lr = 1e-2f, spec.train_examples = 64;
    spec.peft.rank = 4;
    finetune(m.model(), spec);
    m.model().store()->decode(name, after);
    EXPECT_EQ(before, after);
    EXPECT_EQ(m.model().params().trainable_count(), m.model().params().total() - m.model().base_param_count());
}

TEST(Qlora, BadUsesSayWhatIsWrong) {
    PeftModel m;
    qlora_quantize_base(m.model());
    EXPECT_THROW(qlora_quantize_base(m.model()), Error);  // already stored
    EXPECT_THROW(m.model().param(m.model().params().at("transformer.h.0.attn.c_attn.weight")), InternalError);
    PeftOptions dora;
    dora.lora_variant = LoraVariant::dora;
    PeftModel n;
    EXPECT_THROW(apply_method(n.model(), Method::qlora, dora, 1), Error);
    GptConfig moe = find_preset("nano").config;
    moe.num_local_experts = 2, moe.num_experts_per_tok = 1;
    auto be = make_cpu_backend({1});
    Gpt e(*be, moe);
    EXPECT_THROW(qlora_quantize_base(e), Error);
}

}  // namespace
}  // namespace tl
