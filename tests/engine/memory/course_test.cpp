// The course's rules of thumb against its worked examples, and the detailed model against the course where the
// course's own assumptions hold (16-bit weights, Adam): the formula undercounts states and ignores activations.
#include <gtest/gtest.h>

#include "memory/memory_model.hpp"

namespace tl::memory {
namespace {

TEST(CourseFormula, ThirteenBillionAtTwoBytesIsTheCoursesWorkedExample) {
    const CourseFormula f{13e9, 2};
    EXPECT_NEAR(f.weights_bytes(), 26e9, 1);
    EXPECT_NEAR(f.inference_bytes(), 31.2e9, 1);  // 13e9 x 2 x 1.2
    EXPECT_NEAR(f.training_bytes(), 78e9, 1);     // 13e9 x 3 x 2
}

TEST(CourseFormula, ScalesLinearlyInParamsAndBytes) {
    EXPECT_NEAR((CourseFormula{7e9, 4}.training_bytes()), 84e9, 1);
    EXPECT_NEAR((CourseFormula{1e9, 0.5}.inference_bytes()), 0.6e9, 1);
}

// Mixed-precision AdamW keeps 2 (bf16 weights) + 2 (bf16 grads) + 4 (master) + 4 + 4 (m, v) = 16 bytes per
// trainable parameter (ZeRO paper, section 3.1), against the course's 3 x 2 = 6.
TEST(CourseFormula, DetailedModelShowsTheStateUndercountFor13B) {
    const ArchShape s = find_real_model("13b").shape;
    const double N = 13'015'864'320.0;
    const Prediction p = predict_training(s, typical_setup({}, 1, 512));
    const double states = p.by_category(MemCategory::weights) + p.by_category(MemCategory::grads) +
                          p.by_category(MemCategory::optimizer);
    EXPECT_NEAR(states, 16 * N, 1e3);
    EXPECT_NEAR(states / (CourseFormula{N, 2}.training_bytes()), 16.0 / 6.0, 1e-9);
    EXPECT_GT(p.total(), states);  // activations and scratch come on top
}

// Inference of Llama-2-13B in bf16 at 4096 tokens: weights 2N plus a KV cache of 2 L T C 2 bytes, which the
// course's 20% covers at this length; at batch 8 it does not.
TEST(CourseFormula, InferenceOverheadVersusKvCache) {
    const ArchShape s = find_real_model("13b").shape;
    InferenceSetup one;
    one.seq = 4096;
    const Prediction p1 = predict_inference(s, one);
    EXPECT_NEAR(p1.by_category(MemCategory::kv_cache), 2.0 * 40 * 4096 * 5120 * 2, 1);  // 3.36 GB
    EXPECT_NEAR(p1.by_category(MemCategory::weights), 13'015'864'320.0 * 2, 1);
    const double course = CourseFormula{13'015'864'320.0, 2}.inference_bytes();
    EXPECT_LT(p1.total(), course);
    InferenceSetup eight = one;
    eight.batch = 8;
    EXPECT_GT(predict_inference(s, eight).total(), course);
}

}  // namespace
}  // namespace tl::memory
