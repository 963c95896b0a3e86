// Predicted vs measured: a few real training steps on the CPU engine, the MemoryLedger's peak per category
// against the detailed prediction (weights, gradients and optimizer exactly; activations and scratch within 5%),
// and the course's formula against the measurement (fp32 AdamW keeps 4 copies of the weights, not 3).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "memory/measure.hpp"
#include "model/params.hpp"

namespace tl::memory {
namespace {

Comparison run(const char* preset, std::int64_t batch, std::int64_t seq, MethodSpec method = {}) {
    MeasureSpec spec;
    spec.method = method;
    spec.config = find_preset(preset).config;
    spec.name = preset;
    spec.batch = batch;
    spec.seq = seq;
    spec.steps = 2;
    spec.threads = 1;
    return compare_on_engine(spec, Measure::yes);
}

void expect_prediction_matches(const Comparison& c) {
    ASSERT_TRUE(c.measurement.has_value());
    EXPECT_EQ(c.measurement->steps, 2);
    for (const CategoryRow& r : c.rows) {
        ASSERT_TRUE(r.measured.has_value());
        const double m = double(*r.measured);
        const auto name = mem_category_name(r.category);
        if (r.category == MemCategory::weights || r.category == MemCategory::grads ||
            r.category == MemCategory::optimizer)
            EXPECT_EQ(r.predicted, m) << name;
        else
            EXPECT_LE(std::fabs(r.predicted - m), 0.05 * m) << name << ": predicted " << r.predicted << ", measured " << m;
    }
    EXPECT_GT(c.measurement->peak[std::size_t(MemCategory::activations)], 0);
}

TEST(PredictedVsMeasured, NanoFullFineTuning) { expect_prediction_matches(run("nano", 4, 32)); }

TEST(PredictedVsMeasured, TinyFullFineTuningAtAShorterSequence) { expect_prediction_matches(run("tiny", 2, 64)); }

TEST(PredictedVsMeasured, SmallFullFineTuning) { expect_prediction_matches(run("small", 1, 64)); }

// The PEFT methods the engine runs: optimizer state shrinks to the trainable count, the engine's flat gradient
// buffer still covers every base weight, and each module's saved tensors and scratch appear in the ledger.
TEST(PredictedVsMeasured, NanoPeftMethods) {
    std::vector<MethodSpec> methods = {{MethodKind::lora, 4, LoraTargets::all_linear},
                                       {MethodKind::lora, 2, LoraTargets::attention},
                                       {MethodKind::bitfit},
                                       {MethodKind::ia3},
                                       {MethodKind::adapters}};
    MethodSpec partial{MethodKind::partial};
    partial.partial_layers = 1;
    methods.push_back(partial);
    for (const MethodSpec& m : methods) {
        SCOPED_TRACE(std::string(method_name(m.kind)));
        const Comparison c = run("nano", 2, 32, m);
        expect_prediction_matches(c);
        EXPECT_EQ(c.measurement->trainable, c.prediction.trainable);
        EXPECT_LT(c.prediction.trainable, c.prediction.total_params);
    }
}

// The targets: tiny and small under LoRA and QLoRA (full is above), every category.
TEST(PredictedVsMeasured, TinyAndSmallLoraAndQlora) {
    for (const char* preset : {"tiny", "small"})
        for (MethodKind kind : {MethodKind::lora, MethodKind::qlora}) {
            SCOPED_TRACE(std::string(preset) + " " + std::string(method_name(kind)));
            const Comparison c = run(preset, 2, 64, {kind, 8, LoraTargets::all_linear});
            expect_prediction_matches(c);
            EXPECT_EQ(c.measurement->trainable, c.prediction.trainable);
        }
}

// QLoRA: the block matrices leave the fp32 weights (and the gradient buffer) for NF4 storage, 4.127 bits each
// plus a 4-byte mean per matrix; the ledger's quant_storage matches that to the byte.
TEST(PredictedVsMeasured, QloraMovesTheMatricesToNf4Storage) {
    const Comparison lora = run("tiny", 2, 64, {MethodKind::lora, 8, LoraTargets::all_linear});
    const Comparison qlora = run("tiny", 2, 64, {MethodKind::qlora, 8, LoraTargets::all_linear});
    const GptConfig c = find_preset("tiny").config;
    const double matrices = double(c.n_layer * 12 * c.n_embd * c.n_embd);
    auto peak = [](const Comparison& x, MemCategory k) { return double(x.measurement->peak[std::size_t(k)]); };
    EXPECT_EQ(peak(lora, MemCategory::weights) - peak(qlora, MemCategory::weights), 4 * matrices);
    EXPECT_EQ(peak(lora, MemCategory::grads) - peak(qlora, MemCategory::grads), 4 * matrices);
    EXPECT_EQ(peak(qlora, MemCategory::quant_storage), matrices * (4 + 8.0 / 64 + 32.0 / (64 * 256)) / 8 + 4 * 16);
    EXPECT_EQ(peak(lora, MemCategory::optimizer), peak(qlora, MemCategory::optimizer));
}

// fp32 AdamW: weights + grads + m + v = 4 x N x 4 bytes; the course's N x 3 x 4 misses one copy exactly.
TEST(PredictedVsMeasured, CourseFormulaMissesOneCopyOfTheWeights) {
    const Comparison c = run("nano", 2, 16);
    const auto& peak = c.measurement->peak;
    const double states = double(peak[std::size_t(MemCategory::weights)] + peak[std::size_t(MemCategory::grads)] +
                                 peak[std::size_t(MemCategory::optimizer)]);
    EXPECT_DOUBLE_EQ(states, c.course.training_bytes() * 4.0 / 3.0);
    EXPECT_DOUBLE_EQ(c.course.params, double(ParamTable(find_preset("nano").config).total()));
}

TEST(PredictedVsMeasured, MethodsTheEngineCannotRunArePredictedOnly) {
    MeasureSpec spec;
    spec.config = find_preset("nano").config;
    spec.method.kind = MethodKind::prompt_tuning;
    EXPECT_FALSE(is_measurable(MethodKind::prompt_tuning));
    EXPECT_THROW(measure_training(spec), Error);
    const Comparison c = compare_on_engine(spec, Measure::yes);
    EXPECT_FALSE(c.measurement.has_value());
    EXPECT_LT(c.prediction.by_category(MemCategory::optimizer), 0.1 * c.prediction.by_category(MemCategory::weights));
}

TEST(PredictedVsMeasured, BadSpecsAreRejected) {
    MeasureSpec spec;
    spec.config = find_preset("nano").config;
    spec.seq = 33;  // nano's n_positions is 32
    EXPECT_THROW(measure_training(spec), Error);
    spec.seq = 0;
    spec.batch = 0;
    EXPECT_THROW(compare_on_engine(spec, Measure::no), Error);
}

}  // namespace
}  // namespace tl::memory
