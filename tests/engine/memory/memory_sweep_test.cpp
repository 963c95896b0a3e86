// memory_batch_sweep against two facts independent of the memory model: at a fixed sequence length every kept
// activation has B as a factor (so the measured bytes are exactly B times batch 1's), and the course's N x 3 x M
// does not see the batch at all.
#include <gtest/gtest.h>

#include "experiments/experiment.hpp"

namespace tl {
namespace {

TEST(MemoryBatchSweep, ActivationsScaleWithBatchAndTheCourseFormulaDoesNot) {
    RunContext ctx;
    ctx.threads = 1;
    const Result r = run_experiment("memory_batch_sweep", {{"preset", "nano"}, {"max_batch", "8"}}, ctx);
    const Series* act = r.find_series("measured_activations");
    const Series* pred = r.find_series("predicted_activations");
    const Series* course = r.find_series("course_training");
    ASSERT_TRUE(act && pred && course);
    ASSERT_EQ(act->x, (std::vector<double>{32, 64, 128, 256}));  // nano: T = 32; batch 1, 2, 4, 8
    for (std::size_t i = 0; i < act->y.size(); ++i) {
        EXPECT_EQ(act->y[i], act->y[0] * double(1 << i)) << "batch " << (1 << i);
        EXPECT_EQ(pred->y[i], act->y[i]);
        EXPECT_EQ(course->y[i], course->y[0]);
    }
    EXPECT_GT(act->y.back(), course->y.back());  // at batch 8 activations alone pass the course's whole figure
}

}  // namespace
}  // namespace tl
