// The detailed model term by term: parameter counts against published totals and the engine's own registry,
// each term of a small config against hand-computed values, formats against the QLoRA paper, ZeRO against the
// ZeRO paper's formulas, and the questions a learner asks ("QLoRA 7B on a 24 GB GPU?").
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "memory/memory_model.hpp"
#include "model/params.hpp"

namespace tl::memory {
namespace {

// Totals from the models' Hugging Face cards / safetensors indexes.
TEST(Shapes, RealModelParameterCountsMatchPublishedTotals) {
    EXPECT_EQ(count_params(find_real_model("1b").shape).total(), 1'235'814'400);
    EXPECT_EQ(count_params(find_real_model("7b").shape).total(), 6'738'415'616);
    EXPECT_EQ(count_params(find_real_model("8b").shape).total(), 8'030'261'248);
    EXPECT_EQ(count_params(find_real_model("mistral-7b").shape).total(), 7'241'732'096);
    EXPECT_EQ(count_params(find_real_model("13b").shape).total(), 13'015'864'320);
    EXPECT_EQ(count_params(find_real_model("70b").shape).total(), 68'976'648'192);
    EXPECT_EQ(count_params(find_real_model("gpt2").shape).total(), 124'439'808);
    EXPECT_EQ(&find_real_model("LLAMA-2-7B"), &find_real_model("7b"));
    EXPECT_THROW(find_real_model("9b"), Error);
}

TEST(Shapes, PresetCountsMatchTheEngineRegistry) {
    for (const Preset& p : all_presets())
        EXPECT_EQ(count_params(shape_of(p.config, std::string(p.name))).total(), ParamTable(p.config).total())
            << p.name;
}

// Hand-computed: C=8, L=2, H=2, V=10, T=4, batch 3 (N=12 rows), fp32 engine setup, full fine-tuning.
//   params: V C + T C + L (2C + 3C^2+3C + C^2+C + 2C + 4C^2+4C + 4C^2+C) + 2C = 80 + 32 + 2*872 + 16 = 1872
//   per block kept: 7NC + 3NC + 8NC + B H T^2 + 4N = 672 + 288 + 768 + 96 + 48 = 1872 floats
//   once: 2NC + NV + 6N = 192 + 120 + 72 = 384 floats;  scratch: 4NC + 3NC + 8NC + BHT^2 + NV = 1656 floats
GptConfig small_config() {
    GptConfig c;
    c.vocab_size = 10, c.n_positions = 4, c.n_embd = 8, c.n_layer = 2, c.n_head = 2;
    return c;
}

TEST(Detailed, EveryTermOfASmallConfigMatchesHandComputedBytes) {
    const ArchShape s = shape_of(small_config(), "hand");
    const Prediction p = predict_training(s, engine_setup({}, 3, 4));
    EXPECT_EQ(p.total_params, 1872);
    EXPECT_EQ(p.trainable, 1872);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::weights), 1872 * 4);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::grads), 1872 * 4);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::optimizer), 2 * 1872 * 4);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::activations), (2 * 1872 + 384) * 4);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::workspace), 1656 * 4);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::kv_cache), 0);
}

// Full recomputation keeps each block's input (N C floats) and one block's full set while it is recomputed.
TEST(Detailed, RecomputationKeepsBlockInputsPlusOneBlock) {
    const ArchShape s = shape_of(small_config(), "hand");
    TrainSetup t = engine_setup({}, 3, 4);
    t.recompute = Recompute::full;
    EXPECT_DOUBLE_EQ(activation_bytes(s, t), (2 * 12 * 8 + 1872 + 384) * 4);
}

// Mixed precision on the same config: 2-byte weights and grads, 4-byte master, 4-byte m and v.
TEST(Detailed, MixedPrecisionAddsAnFp32MasterCopy) {
    const ArchShape s = shape_of(small_config(), "hand");
    TrainSetup t = engine_setup({}, 3, 4);
    t.precision = Precision::mixed_bf16;
    const Prediction p = predict_training(s, t);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::weights), 1872 * 2);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::grads), 1872 * 2);
    EXPECT_DOUBLE_EQ(p.by_category(MemCategory::optimizer), 1872 * 4 + 2 * 1872 * 4);
}

// PEFT's printed counts for Llama-2-7B: r=64 on all linear layers (QLoRA's recipe) 159,907,840; r=8 on
// q, k, v, o 8,388,608. Prompt tuning: 20 x 4096; IA3: L (2 kv + F) = 32 (8192 + 11008).
TEST(Detailed, TrainableCountsOfPeftMethods) {
    const ArchShape s = find_real_model("7b").shape;
    MethodSpec q{MethodKind::qlora, 64, LoraTargets::all_linear};
    EXPECT_EQ(trainable_params(s, q), 159'907'840);
    MethodSpec l{MethodKind::lora, 8, LoraTargets::attention};
    EXPECT_EQ(trainable_params(s, l), 8'388'608);
    MethodSpec pt{MethodKind::prompt_tuning};
    EXPECT_EQ(trainable_params(s, pt), 20 * 4096);
    MethodSpec ia{MethodKind::ia3};
    EXPECT_EQ(trainable_params(s, ia), 32 * (2 * 4096 + 11008));
    MethodSpec part{MethodKind::partial};
    part.partial_layers = 2;
    EXPECT_EQ(trainable_params(s, part), 2 * 202'383'360 + 4096);  // two blocks + final norm
    EXPECT_THROW(trainable_params(s, MethodSpec{MethodKind::bitfit}), Error);  // Llama has no biases
    part.partial_layers = 33;
    EXPECT_THROW(trainable_params(s, part), Error);
}

// QLoRA paper, section 3: double quantization cuts the scales from 32/64 = 0.5 to 8/64 + 32/(64*256) = 0.127
// bits per parameter.
TEST(Detailed, NormalFloatBitsPerParameterMatchTheQloraPaper) {
    EXPECT_DOUBLE_EQ(bits_per_weight(WeightFormat::nf4), 4.5);
    EXPECT_NEAR(bits_per_weight(WeightFormat::nf4_dq), 4.127, 1e-3);
    EXPECT_DOUBLE_EQ(bits_per_weight(WeightFormat::bf16), 16);
    EXPECT_THROW(parse_weight_format("nf3"), Error);
}

// ZeRO paper (Rajbhandari et al. 2019), Figure 1: per-GPU model states with K = 12 optimizer bytes:
// baseline (2 + 2 + K) P, P_os 2P + 2P + K P / Nd, P_os+g 2P + (2 + K) P / Nd, P_os+g+p (2 + 2 + K) P / Nd.
TEST(Detailed, ZeroStagesMatchThePapersFormulas) {
    const ArchShape s = find_real_model("7b").shape;
    const double P = 6'738'415'616.0, Nd = 64, K = 12;
    auto states = [&](ZeroStage z) {
        TrainSetup t = typical_setup({}, 1, 512);
        t.zero = z;
        t.gpus = 64;
        const Prediction p = predict_training(s, t);
        return p.by_category(MemCategory::weights) + p.by_category(MemCategory::grads) +
               p.by_category(MemCategory::optimizer);
    };
    EXPECT_NEAR(states(ZeroStage::none), (2 + 2 + K) * P, 1e3);
    EXPECT_NEAR(states(ZeroStage::optimizer), 2 * P + 2 * P + K * P / Nd, 1e3);
    EXPECT_NEAR(states(ZeroStage::gradients), 2 * P + (2 + K) * P / Nd, 1e3);
    EXPECT_NEAR(states(ZeroStage::parameters), (2 + 2 + K) * P / Nd, 1e3);
}

// The learner's question: QLoRA fits a 7B model on a 24 GB GPU at a modest batch; full fine-tuning does not.
TEST(Detailed, QloraOnSevenBillionFitsTwentyFourGigabytes) {
    const ArchShape s = find_real_model("7b").shape;
    const Prediction q = predict_training(s, typical_setup({MethodKind::qlora, 64}, 1, 512));
    EXPECT_LT(q.total(), 24e9);
    const double mats = 32.0 * (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008);  // every block's matrices
    EXPECT_NEAR(q.by_category(MemCategory::quant_storage), mats * bits_per_weight(WeightFormat::nf4_dq) / 8, 1);
    const Prediction full = predict_training(s, typical_setup({}, 1, 512));
    EXPECT_GT(full.total(), 100e9);
    // The frozen base in nf4 is smaller than in bf16 by 16 / 4.127.
    const Prediction lora = predict_training(s, typical_setup({MethodKind::lora, 64}, 1, 512));
    EXPECT_LT(q.total(), lora.total());
}

TEST(Detailed, BadInputIsRejectedWithAClearError) {
    const ArchShape s = find_real_model("7b").shape;
    EXPECT_THROW(parse_method_kind("dora2"), Error);
    EXPECT_THROW(parse_precision("fp64"), Error);
    EXPECT_THROW(predict_training(s, typical_setup({}, 0, 512)), Error);
    TrainSetup t = typical_setup({}, 1, 512);
    t.gpus = 0;
    EXPECT_THROW(predict_training(s, t), Error);
}

}  // namespace
}  // namespace tl::memory
