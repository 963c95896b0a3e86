// Screenshots of the course views (memory, lora_sweep, method_compare, formats, slerp, ptq_qat) under Xvfb: a
// hand-written Result with known values is rendered, and each value's palette colour must lie where the plot's
// rectangle and axis range put it (plain linear formula here, not the plot code), and not where there is no data.
// An empty Result must render every view without throwing (views degrade, naming what is missing).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "app/result_viewer.hpp"
#include "app/window.hpp"
#include "plot/palette.hpp"

namespace tl::viz {
namespace {

const PlotRecord* find_plot(const Snapshot& s, const std::string& id) {
    for (const PlotRecord& p : s.plots)
        if (p.id == id) return &p;
    return nullptr;
}

// Pixel of data (x, y): category axes span -0.5 .. n-0.5, which the recorded map already holds.
std::pair<int, int> px_of(const PlotRecord& p, double x, double y) {
    const double fx = (x - p.x.lo) / (p.x.hi - p.x.lo), fy = (y - p.y.lo) / (p.y.hi - p.y.lo);
    return {int(std::lround(p.left + fx * (p.right - p.left))), int(std::lround(p.bottom - fy * (p.bottom - p.top)))};
}

bool colour_near(const Image& img, std::pair<int, int> at, int radius, Rgb c, int tol = 30) {
    for (int y = at.second - radius; y <= at.second + radius; ++y)
        for (int x = at.first - radius; x <= at.first + radius; ++x) {
            if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
            const std::uint8_t* px = img.at(x, y);
            if (std::abs(px[0] - c.r) <= tol && std::abs(px[1] - c.g) <= tol && std::abs(px[2] - c.b) <= tol)
                return true;
        }
    return false;
}

Snapshot render(const Result& r, const std::string& view) {
    ResultViewOptions o;
    o.view = view, o.takeaway = "A takeaway line.";
    Snapshot s = render_result(r, o);
    if (const char* dir = std::getenv("TL_VIZ_SCREENSHOT_DIR"))  // to look at the pictures: set it to a folder
        write_png(s.image, std::string(dir) + "/" + view + (r.tables.empty() && r.series.empty() ? "_empty" : "") + ".png");
    return s;
}

class CourseViews : public ::testing::Test {
protected:
    void SetUp() override {
        if (!display_available()) GTEST_SKIP() << "no display (" << last_glfw_error() << "); run under xvfb-run";
    }
};

constexpr double kMiB = 1024.0 * 1024.0;

TEST_F(CourseViews, MemoryStacksCategoriesPerEstimate) {
    Result r;
    r.tables.push_back({"categories", {"category", "predicted_bytes", "measured_bytes"},
                        {{std::string("weights"), 60 * kMiB, 60 * kMiB}, {std::string("activations"), 30 * kMiB, 50 * kMiB}}});
    r.scalars.push_back({"course_training_bytes", 180 * kMiB, "bytes"});
    const Snapshot s = render(r, "memory");
    const PlotRecord* p = find_plot(s, "memory_bars");
    ASSERT_NE(p, nullptr);
    // Columns: 0 course (weights 60, grads 60, optimizer 60), 1 predicted (60 + 30), 2 measured (60 + 50), MiB.
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 0, 90), 2, palette_rgb("grads")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 0, 150), 2, palette_rgb("optimizer")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1, 30), 2, palette_rgb("weights")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1, 75), 2, palette_rgb("activations")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 2, 85), 2, palette_rgb("activations")));
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 1, 100), 2, palette_rgb("activations")));  // above 90 MiB
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 2, 30), 2, palette_rgb("grads")));         // no grads measured
}

TEST_F(CourseViews, LoraSweepPutsRanksOnALog2Axis) {
    Result r;
    Series acc{"accuracy", "rank", "%", {1, 2, 4, 8, 16, 32, 64}, {10, 30, 55, 70, 75, 76, 76}};
    r.series.push_back(acc);
    r.scalars.push_back({"full_accuracy", 90, "%"});
    const Snapshot s = render(r, "lora_sweep");
    const PlotRecord* p = find_plot(s, "lora_accuracy");
    ASSERT_NE(p, nullptr);
    for (std::size_t i = 0; i < acc.x.size(); ++i)  // rank 2^k sits at k: equal steps per doubling
        EXPECT_TRUE(colour_near(s.image, px_of(*p, double(i), acc.y[i]), 2, palette_rgb("lora"))) << "rank " << acc.x[i];
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 1, 80), 4, palette_rgb("lora")));  // far above the rank-2 point
}

TEST_F(CourseViews, MethodCompareColoursEachMethodsBar) {
    Result r;
    r.tables.push_back({"methods", {"method", "accuracy_after", "trainable", "peak_mib", "ms_per_step"},
                        {{std::string("full"), 80.0, 1e6, 40.0, 20.0}, {std::string("lora"), 60.0, 1e4, 20.0, 12.0},
                         {std::string("ia3"), 20.0, 1e2, 18.0, 11.0}}});
    const Snapshot s = render(r, "method_compare");
    const PlotRecord* p = find_plot(s, "compare_accuracy_after");
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1, 30), 2, palette_rgb("lora")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 2, 10), 2, palette_rgb("ia3")));
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 2, 40), 3, palette_rgb("ia3")));  // above ia3's 20 %
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 2, 10), 3, palette_rgb("lora")));
}

TEST_F(CourseViews, FormatsDrawsTheNormalRangeOnTheLog2Axis) {
    Result r;  // fp16: max 65504, min normal 2^-14, min subnormal 2^-24 (IEEE 754 binary16)
    r.tables.push_back({"formats", {"format", "bits", "kind", "max", "min_normal", "min_subnormal", "epsilon", "note"},
                        {{std::string("fp16"), 16.0, std::string("float"), 65504.0, std::ldexp(1.0, -14),
                          std::ldexp(1.0, -24), std::ldexp(1.0, -10), std::string("")},
                         {std::string("int8"), 8.0, std::string("integer"), 127.0, 1.0, 1.0, 1.0, std::string("")}}});
    const Snapshot s = render(r, "formats");
    const PlotRecord* p = find_plot(s, "formats_range");
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 0, 0), 2, palette_rgb("fp16")));         // 2^0 is normal in fp16
    EXPECT_FALSE(colour_near(s.image, px_of(*p, -20, 0), 2, palette_rgb("fp16")));      // subnormal: the pale part
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 17, 0), 3, palette_rgb("fp16")));       // beyond 65504 < 2^16
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 3.5, 1), 2, palette_rgb("int8")));       // 1 .. 127
    EXPECT_FALSE(colour_near(s.image, px_of(*p, -2, 1), 3, palette_rgb("int8")));
}

TEST_F(CourseViews, SlerpPlotsEachTaskAlongT) {
    Result r;
    r.series.push_back({"slerp_reverse", "t", "%", {0, 0.5, 1}, {90, 60, 10}});
    r.series.push_back({"slerp_norm", "t", "mean |W|", {0, 0.5, 1}, {2, 2, 2}});
    r.series.push_back({"linear_norm", "t", "mean |W|", {0, 0.5, 1}, {2, 2 * std::cos(0.5), 2}});  // theta = 1 rad
    const Snapshot s = render(r, "slerp");
    const PlotRecord* p = find_plot(s, "slerp_accuracy");
    ASSERT_NE(p, nullptr);
    for (auto [t, y] : {std::pair{0.0, 90.0}, {0.5, 60.0}, {1.0, 10.0}})
        EXPECT_TRUE(colour_near(s.image, px_of(*p, t, y), 2, palette_rgb("reverse"))) << "t = " << t;
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 0.5, 95), 3, palette_rgb("reverse")));
    ASSERT_NE(find_plot(s, "slerp_plane"), nullptr);
}

TEST_F(CourseViews, PtqQatBarsPerModelAndRecoveryCurve) {
    Result r;  // the shape of qat_vs_ptq's result
    r.tables.push_back({"quality", {"model", "bits_per_weight", "accuracy", "loss", "kl"},
                        {{std::string("fp32 (fine-tuned)"), 32.0, 80.0, 1.0, 0.0},
                         {std::string("PTQ int4"), 4.5, 20.0, 2.0, 0.5}, {std::string("QAT int4, 50 steps"), 4.5, 70.0, 1.2, 0.1}}});
    r.scalars.push_back({"accuracy_fp32", 80, "%"});
    r.series.push_back({"val_loss", "step", "loss", {0, 10, 20, 30}, {2.0, 1.6, 1.3, 1.2}});
    r.series.push_back({"ptq_val_loss", "step", "loss", {0, 30}, {2.0, 2.0}});
    const Snapshot s = render(r, "ptq_qat");
    const PlotRecord* p = find_plot(s, "ptq_qat_bars");
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1, 10), 2, palette_rgb("ptq")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 2, 50), 2, palette_rgb("qat")));
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 1, 40), 2, palette_rgb("ptq")));  // PTQ int4 is 20 %
    const PlotRecord* rec = find_plot(s, "ptq_qat_recovery");
    ASSERT_NE(rec, nullptr);
    for (auto [x, y] : {std::pair{0.0, 2.0}, {10.0, 1.6}, {20.0, 1.3}, {30.0, 1.2}})
        EXPECT_TRUE(colour_near(s.image, px_of(*rec, x, y), 2, palette_rgb("qat"))) << "step " << x;
}

TEST_F(CourseViews, SpectrumColoursEnergyCellsWithViridis) {
    Result r;  // energy of 2 modules at r = 1, 2, 4: smallest 0.2 (viridis start), largest 1.0 (viridis end)
    r.matrices.push_back({"energy", 2, 3, {0.2, 0.5, 0.9, 0.6, 0.8, 1.0}, {"h0.attn.c_attn", "h0.mlp.c_fc"},
                          {"r=1", "r=2", "r=4"}});
    r.series.push_back({"sv h0.attn.c_attn", "index", "singular value", {1, 2, 3, 4}, {8, 4, 2, 1}});
    const Snapshot s = render(r, "spectrum");
    const PlotRecord* hm = find_plot(s, "spectrum_energy");
    ASSERT_NE(hm, nullptr);
    EXPECT_TRUE(colour_near(s.image, px_of(*hm, 0, 0), 1, {68, 1, 84}, 6));     // row 0 (top), r=1
    EXPECT_TRUE(colour_near(s.image, px_of(*hm, 2, 1), 1, {253, 231, 37}, 6));  // row 1, r=4
    const PlotRecord* sv = find_plot(s, "spectrum_sv");
    ASSERT_NE(sv, nullptr);
    EXPECT_EQ(sv->y.kind, ScaleKind::log10);
}

TEST_F(CourseViews, MergeLabGroupsAccuracyByTask) {
    Result r;
    r.tables.push_back({"methods", {"method", "acc_reverse", "acc_add", "loss_reverse", "loss_add"},
                        {{std::string("base"), 0.0, 0.0, 3.0, 3.0}, {std::string("ties"), 80.0, 40.0, 1.0, 2.0}}});
    const Snapshot s = render(r, "merge_lab");
    const PlotRecord* p = find_plot(s, "merge_methods");
    ASSERT_NE(p, nullptr);
    // Two groups in a 0.8-wide category: reverse centred at i - 0.2, add at i + 0.2.
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1 - 0.2, 70), 2, palette_rgb("reverse")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1 + 0.2, 30), 2, palette_rgb("add")));
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 1 + 0.2, 50), 2, palette_rgb("add")));  // add is 40 %
}

TEST_F(CourseViews, MoeRouterPlotsEachExpertsShareOverSteps) {
    Result r;
    r.series.push_back({"expert_share_0", "step", "share", {1, 2, 3, 4}, {0.9, 0.8, 0.6, 0.5}});
    r.series.push_back({"expert_share_1", "step", "share", {1, 2, 3, 4}, {0.1, 0.2, 0.4, 0.5}});
    r.series.push_back({"router_aux_loss", "step", "aux", {1, 2, 3, 4}, {1.6, 1.4, 1.1, 1.0}});
    const Snapshot s = render(r, "moe_router");
    const PlotRecord* p = find_plot(s, "moe_share");
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1, 0.9), 2, palette_rgb("expert 0")));
    EXPECT_TRUE(colour_near(s.image, px_of(*p, 1, 0.1), 2, palette_rgb("expert 1")));
    EXPECT_FALSE(colour_near(s.image, px_of(*p, 1, 0.5), 2, palette_rgb("expert 0")));
}

TEST_F(CourseViews, EmptyResultDrawsEveryViewWithoutData) {
    for (const char* view : {"memory", "lora_sweep", "method_compare", "formats", "slerp", "ptq_qat", "spectrum",
                             "merge_lab", "moe_router"}) {
        Snapshot s;
        ASSERT_NO_THROW(s = render(Result{}, view)) << view;
        EXPECT_EQ(s.image.width, 1280) << view;
        if (std::string(view) != "formats") {  // formats names its three missing parts in text lines instead
            EXPECT_FALSE(s.plots.empty()) << view << ": the frames are drawn, with a note";
        }
    }
}

// To look at a real experiment's Result: TL_VIZ_RESULT=r.json TL_VIZ_VIEW=memory TL_VIZ_SCREENSHOT_DIR=/tmp/shots.
TEST_F(CourseViews, RendersAResultFileWhenAsked) {
    const char *file = std::getenv("TL_VIZ_RESULT"), *view = std::getenv("TL_VIZ_VIEW");
    if (!file || !view) GTEST_SKIP() << "set TL_VIZ_RESULT and TL_VIZ_VIEW to render a saved Result";
    std::ifstream in(file);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_FALSE(render(result_from_json(text), view).plots.empty());
}

}  // namespace
}  // namespace tl::viz
