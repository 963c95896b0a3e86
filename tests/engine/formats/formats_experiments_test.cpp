// The formats experiments through the registry, against hand-computed values: 0.3 in e4m3 is 10 quanta of 2^-5
// (0.3125), int4 in groups of 32 with fp16 scales costs 4.5 bits, and the rounding grid of fp4 has 7 values.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "experiments/experiment.hpp"

namespace tl {
namespace {

TEST(FormatsExperiments, RoundingAndQuantErrorReportHandComputedValues) {
    RunContext ctx;
    const Result rounding = run_experiment("format_rounding", {{"format", "fp8_e4m3"}, {"value", "0.3"}}, ctx);
    EXPECT_EQ(rounding.scalar_or("nearest", 0), 0.3125);
    ASSERT_NE(rounding.find_text("bits"), nullptr);
    EXPECT_EQ(rounding.find_text("bits")->body, "0 0101 010");
    const Result fp4 = run_experiment("format_rounding", {{"format", "fp4_e2m1"}, {"value", "1"}}, ctx);
    ASSERT_NE(fp4.find_series("relative_gap"), nullptr);
    EXPECT_EQ(fp4.find_series("relative_gap")->x, (std::vector<double>{0.5, 1, 1.5, 2, 3, 4}));  // 6 has no next
    const Result q = run_experiment("quant_error", {}, ctx);  // defaults: int4, groups of 32, fp16 scales
    EXPECT_EQ(q.scalar_or("bits_per_weight", 0), 4.5);
    EXPECT_GT(q.scalar_or("sqnr_db", 0), 15.0);
    const Result table = run_experiment("format_table", {}, ctx);
    ASSERT_NE(table.find_table("formats"), nullptr);
    EXPECT_GE(table.find_table("formats")->rows.size(), 14u);
    EXPECT_THROW(run_experiment("quant_error", {{"format", "nf4"}, {"symmetry", "asymmetric"}}, ctx), Error);
}

}  // namespace
}  // namespace tl
