// Low-precision training: the loss scaler's state machine (GradScaler's rules), the trainer skipping inf
// steps and backing off, growing S after the interval, and a short nano fine-tune in bf16 that learns like
// FP32.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/rounding_backend.hpp"
#include "core/error.hpp"
#include "model/config.hpp"
#include "optim/loss_scale.hpp"
#include "train/recipes.hpp"
#include "train/trainer.hpp"
#include "train_fixture.hpp"

namespace tl {
namespace {

TEST(LossScaler, GradScalerDefaults) {
    const LossScaleConfig c = parse_loss_scaling("dynamic");
    EXPECT_EQ(c.mode, LossScaling::dynamic);
    EXPECT_EQ(c.init_scale, 65536.0f);
    EXPECT_EQ(c.growth_factor, 2.0f);
    EXPECT_EQ(c.backoff_factor, 0.5f);
    EXPECT_EQ(c.growth_interval, 2000);
    EXPECT_EQ(parse_loss_scaling("none").mode, LossScaling::none);
    EXPECT_EQ(parse_loss_scaling("1024").init_scale, 1024.0f);
    EXPECT_EQ(parse_loss_scaling("1024").mode, LossScaling::fixed);
    EXPECT_THROW(parse_loss_scaling("-3"), Error);
    EXPECT_THROW(parse_loss_scaling("big"), Error);
}

TEST(LossScaler, DoublesAfterTheIntervalAndHalvesOnInf) {
    LossScaleConfig c = parse_loss_scaling("dynamic");
    c.growth_interval = 3;
    LossScaler s(c);
    EXPECT_TRUE(s.update(true));
    EXPECT_TRUE(s.update(true));
    EXPECT_EQ(s.scale(), 65536.0f);
    EXPECT_TRUE(s.update(true));
    EXPECT_EQ(s.scale(), 131072.0f) << "the third good step in a row doubles S";
    EXPECT_TRUE(s.update(true));
    EXPECT_TRUE(s.update(true));
    EXPECT_FALSE(s.update(false)) << "inf/NaN: skip the step";
    EXPECT_EQ(s.scale(), 65536.0f);
    EXPECT_EQ(s.skipped_steps(), 1);
    EXPECT_TRUE(s.update(true));
    EXPECT_TRUE(s.update(true));
    EXPECT_EQ(s.scale(), 65536.0f) << "an inf restarts the count";
    EXPECT_TRUE(s.update(true));
    EXPECT_EQ(s.scale(), 131072.0f);
    LossScaler fixed(parse_loss_scaling("8"));
    EXPECT_FALSE(fixed.update(false));
    EXPECT_EQ(fixed.scale(), 8.0f) << "a fixed scale skips but keeps S";
    LossScaler none(parse_loss_scaling("none"));
    EXPECT_TRUE(none.update(false));
    EXPECT_EQ(none.scale(), 1.0f);
}

struct Recorder : TrainObserver {
    std::vector<StepEvent> events;
    void on_step(const StepEvent& e) override { events.push_back(e); }
};

// fp16 on nano with loss scaling from S0: returns the step events, and whether the master weights changed.
std::vector<StepEvent> train_fp16(float S0, std::int64_t interval, int steps, bool* changed) {
    auto cpu = make_cpu_backend({1});
    RoundingBackend rb(*cpu, Precision::fp16);
    const GptConfig cfg = find_preset("nano").config;
    Gpt model(rb, cfg);
    model.init_gpt2(3);
    const std::vector<float> before = testing::weights_of(model);
    const auto batches = testing::reverse_batches(steps, 4, int(cfg.n_positions), 2);
    TrainConfig tc;
    tc.steps = steps;
    tc.loss_scale = parse_loss_scaling("dynamic");
    tc.loss_scale.init_scale = S0;
    tc.loss_scale.growth_interval = interval;
    Recorder rec;
    int next = 0;
    train(
        model, tc, [&] { return batches[std::size_t(next++)]; }, &rec);
    if (changed) *changed = testing::weights_of(model) != before;
    return rec.events;
}

// S = 2^40 makes d loss / d logits about 2^40 / (tokens) in size: fp16 overflows to inf, the trainer skips
// the step (weights unchanged) and halves S, step after step.
TEST(LowPrecisionTraining, Fp16OverflowSkipsTheStepAndHalvesTheScale) {
    bool changed = true;
    const auto ev = train_fp16(0x1p40f, 2000, 3, &changed);
    ASSERT_EQ(ev.size(), 3u);
    for (std::size_t i = 0; i < ev.size(); ++i) {
        EXPECT_EQ(ev[i].loss_scale, std::ldexp(1.0, 40 - int(i)));
        EXPECT_TRUE(ev[i].is_skipped);
        EXPECT_EQ(ev[i].skipped_steps, std::int64_t(i) + 1);
    }
    EXPECT_FALSE(changed) << "skipped steps leave the FP32 master weights alone";
}

TEST(LowPrecisionTraining, ScaleDoublesAfterTheGrowthInterval) {
    bool changed = false;
    const auto ev = train_fp16(1024.0f, 2, 4, &changed);
    ASSERT_EQ(ev.size(), 4u);
    const double want[] = {1024, 1024, 2048, 2048};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(ev[i].loss_scale, want[i]) << "step " << i + 1;
        EXPECT_FALSE(ev[i].is_skipped);
    }
    EXPECT_TRUE(changed);
}

// Nano fine-tuned on reverse for 40 steps from the same start in fp32 and bf16: both learn, and bf16's curve
// stays near fp32's (bf16 keeps fp32's range; it loses precision, not gradients).
TEST(LowPrecisionTraining, Bf16FineTuneLearnsLikeFp32) {
    const GptConfig cfg = find_preset("nano").config;
    auto run = [&](Precision p) {
        auto cpu = make_cpu_backend({1});
        RoundingBackend rb(*cpu);
        Gpt model(rb, cfg);
        model.init_gpt2(5);
        FinetuneSpec spec;
        spec.task = "reverse";
        spec.steps = 40;
        spec.batch = 8;
        spec.train_examples = 400;
        spec.precision = p;
        const TrainSummary s = finetune(model, spec);
        EXPECT_EQ(rb.precision(), Precision::fp32) << "the precision holds for training only";
        if (p == Precision::bf16) {
            EXPECT_GT(rb.stats().backward.values, 0);
        }
        return s.losses;
    };
    const auto fp32 = run(Precision::fp32), bf16 = run(Precision::bf16);
    const double first = bf16.front(), last = (bf16[37] + bf16[38] + bf16[39]) / 3;
    EXPECT_LT(last, 0.7 * first) << "bf16 learns";
    const double last32 = (fp32[37] + fp32[38] + fp32[39]) / 3;
    EXPECT_NEAR(last, last32, 0.1 * last32);
}

}  // namespace
}  // namespace tl
