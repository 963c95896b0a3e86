// The memory experiments through the registry, as a lesson runs them: the breakdown's measured column equals its
// predicted column on nano, and the real-model experiment answers the 24 GB question both ways.
#include <gtest/gtest.h>

#include <variant>

#include "experiments/experiment.hpp"

namespace tl {
namespace {

TEST(MemoryExperiments, BreakdownMeasuredEqualsPredictedOnNano) {
    RunContext ctx;
    ctx.threads = 1;
    const Result r = run_experiment("memory_breakdown", {{"preset", "nano"}, {"batch", "2"}, {"measure_steps", "1"}}, ctx);
    const Table* t = r.find_table("categories");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->rows.size(), 7u);
    for (const auto& row : t->rows) {
        ASSERT_TRUE(std::holds_alternative<double>(row[2])) << std::get<std::string>(row[0]);
        EXPECT_EQ(std::get<double>(row[1]), std::get<double>(row[2])) << std::get<std::string>(row[0]);
    }
    EXPECT_GT(r.scalar_or("measured_peak_bytes", 0), 4.0 / 3.0 * r.scalar_or("course_training_bytes", 0));
}

TEST(MemoryExperiments, RealModelAnswersTheTwentyFourGigabyteQuestion) {
    RunContext ctx;
    const Result q = run_experiment("memory_real_model", {{"model", "7b"}, {"method", "qlora"}}, ctx);
    EXPECT_EQ(q.scalar_or("fits", -1), 1.0);
    const Result f = run_experiment("memory_real_model", {{"model", "7b"}, {"method", "full"}}, ctx);
    EXPECT_EQ(f.scalar_or("fits", -1), 0.0);
    EXPECT_NEAR(f.scalar_or("course_training_bytes", 0), 6'738'415'616.0 * 3 * 2, 1e3);
}

}  // namespace
}  // namespace tl
