// The plotting module's maths without a window: axis maps against their closed forms, nice ticks against the
// 1-2-5 rule, log ticks against powers of ten, padded ranges, stacking, colour maps against matplotlib's table.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "plot/area.hpp"
#include "plot/heatmap.hpp"
#include "plot/palette.hpp"
#include "plot/scale.hpp"

namespace tl::viz {
namespace {

TEST(AxisMap, LinearMatchesClosedForm) {
    const AxisMap m{ScaleKind::linear, -2.0, 6.0, 100.0f, 500.0f};  // 50 px per unit
    EXPECT_FLOAT_EQ(m.to_px(-2.0), 100.0f);
    EXPECT_FLOAT_EQ(m.to_px(6.0), 500.0f);
    EXPECT_FLOAT_EQ(m.to_px(0.0), 200.0f);
    EXPECT_FLOAT_EQ(m.to_px(7.0), 550.0f);  // outside the range: extrapolated, clipping is the plot's job
    EXPECT_NEAR(m.from_px(325.0f), 2.5, 1e-6);
}

TEST(AxisMap, ScreenYAxisGrowsUp) {
    const AxisMap y{ScaleKind::linear, 0.0, 1.0, 400.0f, 100.0f};  // px_lo is the bottom
    EXPECT_FLOAT_EQ(y.to_px(0.0), 400.0f);
    EXPECT_FLOAT_EQ(y.to_px(0.75), 175.0f);
    EXPECT_GT(y.to_px(0.2), y.to_px(0.8));
}

TEST(AxisMap, LogPlacesDecadesEvenlyAndTheGeometricMeanInTheMiddle) {
    const AxisMap m{ScaleKind::log10, 1e-4, 1e-1, 0.0f, 300.0f};
    EXPECT_NEAR(m.to_px(1e-3), 100.0f, 1e-3);
    EXPECT_NEAR(m.to_px(1e-2), 200.0f, 1e-3);
    EXPECT_NEAR(m.to_px(std::sqrt(1e-4 * 1e-1)), 150.0f, 1e-3);
    EXPECT_NEAR(m.to_px(2e-3), 100.0f + 100.0f * std::log10(2.0f), 1e-3);
    EXPECT_NEAR(m.from_px(250.0f), std::pow(10.0, -1.5), 1e-9);
    EXPECT_FLOAT_EQ(m.to_px(0.0), 0.0f);   // nothing to draw at <= 0: pinned to the axis start
    EXPECT_FLOAT_EQ(m.to_px(-1.0), 0.0f);
}

TEST(Ticks, NiceStepFollowsTheOneTwoFiveRule) {
    EXPECT_DOUBLE_EQ(nice_step(10.0, 5), 2.0);     // raw 2
    EXPECT_DOUBLE_EQ(nice_step(1.0, 10), 0.1);     // raw 0.1
    EXPECT_DOUBLE_EQ(nice_step(7.3, 4), 2.0);      // raw 1.825 -> 2
    EXPECT_NEAR(nice_step(0.037, 5), 0.01, 1e-15); // raw 0.0074 -> 0.01
    EXPECT_DOUBLE_EQ(nice_step(3000.0, 4), 1000.0);// raw 750 -> 1000
    EXPECT_DOUBLE_EQ(nice_step(12.0, 5), 5.0);     // raw 2.4 -> 5
}

TEST(Ticks, LinearTicksAreMultiplesOfTheStepInsideTheRange) {
    const auto t = linear_ticks(0.13, 0.97, 5);  // step 0.2
    ASSERT_EQ(t.size(), 4u);
    for (std::size_t i = 0; i < t.size(); ++i) {
        EXPECT_NEAR(t[i].value, 0.2 * double(i + 1), 1e-12);
        EXPECT_NEAR(std::stod(t[i].label), t[i].value, 1e-12) << t[i].label;
        EXPECT_TRUE(t[i].is_major);
    }
    EXPECT_EQ(t[0].label, "0.2");
}

TEST(Ticks, ZeroIsLabelledZeroNotMinusZero) {
    const auto t = linear_ticks(-1.05, 1.05, 5);  // raw step 0.42 -> 0.5: -1, -0.5, 0, 0.5, 1
    ASSERT_EQ(t.size(), 5u);
    EXPECT_EQ(t[2].label, "0.0");
    EXPECT_EQ(t[0].label, "-1.0");
}

TEST(Ticks, LargeValuesUseSuffixes) {
    const auto t = linear_ticks(0, 20000, 4);  // step 5000
    ASSERT_EQ(t.size(), 5u);
    EXPECT_EQ(t[3].label, "15k");
    EXPECT_EQ(format_tick(2.5e6, 5e5), "2.5M");
}

TEST(Ticks, LogTicksArePowersOfTen) {
    const auto t = log_ticks(1e-5, 1e-1, 10);  // four decades: no minor ticks
    ASSERT_EQ(t.size(), 5u);
    const char* labels[] = {"1e-5", "1e-4", "0.001", "0.01", "0.1"};
    for (int i = 0; i < 5; ++i) {
        EXPECT_NEAR(std::log10(t[std::size_t(i)].value), -5 + i, 1e-12);
        EXPECT_EQ(t[std::size_t(i)].label, labels[i]);
    }
}

TEST(Ticks, FewDecadesGetMinorTicksAtTwoToNine) {
    const auto t = log_ticks(1.0, 1000.0, 10);
    int majors = 0, minors = 0;
    for (const Tick& k : t) (k.is_major ? majors : minors)++;
    EXPECT_EQ(majors, 4);        // 1 10 100 1000
    EXPECT_EQ(minors, 3 * 8);    // 2..9 in each of the three decades
    for (std::size_t i = 1; i < t.size(); ++i) EXPECT_LT(t[i - 1].value, t[i].value);
}

TEST(Ticks, ManyDecadesAreThinned) {
    const auto t = log_ticks(1e-40, 1e40, 8);  // 81 decades, at most 8 labels -> every 11th
    EXPECT_LE(t.size(), 9u);
    EXPECT_GE(t.size(), 7u);
}

TEST(Ticks, LogRangeWithoutAPowerOfTenFallsBackToLinearTicks) {
    const auto t = log_ticks(2.0, 8.0, 4);
    ASSERT_FALSE(t.empty());
    EXPECT_NEAR(t.front().value, 2.0, 1e-12);
}

TEST(Range, PaddedRangeAddsTheMarginAndIgnoresWhatCannotBeDrawn) {
    const Range r = padded_range({1.0, 2.0, 3.0, NAN}, ScaleKind::linear, 0.05);
    EXPECT_NEAR(r.lo, 0.9, 1e-12);
    EXPECT_NEAR(r.hi, 3.1, 1e-12);
    const Range l = padded_range({-5.0, 0.0, 1.0, 100.0}, ScaleKind::log10, 0.05);
    EXPECT_NEAR(std::log10(l.lo), -0.1, 1e-12);
    EXPECT_NEAR(std::log10(l.hi), 2.1, 1e-12);
    const Range d = padded_range({5.0, 5.0}, ScaleKind::linear);
    EXPECT_NEAR(d.lo, 4.5, 1e-12);
    EXPECT_NEAR(d.hi, 5.5, 1e-12);
    const Range e = padded_range({}, ScaleKind::linear);
    EXPECT_EQ(e.lo, 0.0);
    EXPECT_EQ(e.hi, 1.0);
}

TEST(Area, StackedTotalsAreRunningSums) {
    const std::vector<AreaLayer> layers = {{"weights", {1, 2, 3}}, {"grads", {10, NAN, 30}}, {"optimizer", {100, 200}}};
    const auto t = stack_layers(layers, 3);
    EXPECT_EQ(t[0], (std::vector<double>{1, 2, 3}));
    EXPECT_EQ(t[1], (std::vector<double>{11, 2, 33}));      // NaN counts as 0
    EXPECT_EQ(t[2], (std::vector<double>{111, 202, 33}));   // a short layer is 0 past its end
}

TEST(Heatmap, DivergingRangeIsSymmetricAroundZero) {
    const std::vector<double> v = {-0.5, 0.1, 2.0, NAN};
    HeatmapSpec h{"m", "v", 2, 2, &v, nullptr, nullptr, ColorMap::diverging};
    const Range r = heatmap_value_range(h);
    EXPECT_DOUBLE_EQ(r.lo, -2.0);
    EXPECT_DOUBLE_EQ(r.hi, 2.0);
    h.map = ColorMap::sequential;
    EXPECT_DOUBLE_EQ(heatmap_value_range(h).lo, -0.5);
}

TEST(Palette, ViridisEndpointsMatchMatplotlib) {
    // matplotlib's viridis: 0 -> (0.267004, 0.004874, 0.329415), 1 -> (0.993248, 0.906157, 0.143936)
    const Rgb a = colormap_viridis(0.0), b = colormap_viridis(1.0);
    EXPECT_EQ(a.r, 68);
    EXPECT_EQ(a.g, 1);
    EXPECT_EQ(a.b, 84);
    EXPECT_EQ(b.r, 253);
    EXPECT_EQ(b.g, 231);
    EXPECT_EQ(b.b, 37);
    const Rgb m = colormap_viridis(0.5);  // matplotlib: (0.127568, 0.566949, 0.550556)
    EXPECT_NEAR(m.r, 33, 2);
    EXPECT_NEAR(m.g, 145, 2);
    EXPECT_NEAR(m.b, 140, 2);
}

TEST(Palette, SameNameSameColourAcrossViewsAndPrefixes) {
    EXPECT_EQ(palette_color("bf16"), palette_color("bf16"));
    EXPECT_EQ(palette_color("memory_weights"), palette_color("weights"));
    EXPECT_EQ(palette_color("acc_lora"), palette_color("lora"));
    EXPECT_NE(palette_color("train_loss"), palette_color("val_loss"));
    EXPECT_NE(palette_color("bf16"), palette_color("fp16"));
    EXPECT_EQ(palette_color("some_new_series"), palette_color("some_new_series"));
    const std::uint32_t c = pack({31, 119, 180});  // IM_COL32 layout: 0xAABBGGRR
    EXPECT_EQ(c, 0xFFB4771Fu);
}

}  // namespace
}  // namespace tl::viz

namespace tl::viz {
TEST(Ticks, UnderTwoDecadesThe2xAnd5xTicksAreLabelled) {
    const auto t = log_ticks(0.8, 6.0, 10);  // only 1 is a power of ten inside
    std::vector<double> labelled;
    for (const Tick& k : t)
        if (k.is_major) labelled.push_back(k.value);
    ASSERT_EQ(labelled.size(), 3u);  // 1, 2, 5
    EXPECT_NEAR(labelled[0], 1.0, 1e-12);
    EXPECT_NEAR(labelled[1], 2.0, 1e-12);
    EXPECT_NEAR(labelled[2], 5.0, 1e-12);
}
}  // namespace tl::viz
