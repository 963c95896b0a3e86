// Screenshots of the views under Xvfb (CTest label gui): a Result with known data is rendered, and the data's
// colour must appear where the plot's axes say the data lies - computed here from the plot rectangle and the
// axis range with the plain linear / log10 formula - and must not appear where there is no data.
// Skips when no display can be opened (run it through xvfb-run; CMake does when xvfb-run exists).
#include <gtest/gtest.h>
#include <stb_image.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

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

// The pixel of data (x, y) inside a recorded plot, from its rectangle and range alone.
std::pair<int, int> expected_px(const PlotRecord& p, double x, double y) {
    auto frac = [](ScaleKind k, double lo, double hi, double v) {
        return k == ScaleKind::log10 ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                                     : (v - lo) / (hi - lo);
    };
    const double fx = frac(p.x.kind, p.x.lo, p.x.hi, x), fy = frac(p.y.kind, p.y.lo, p.y.hi, y);
    return {int(std::lround(p.left + fx * (p.right - p.left))), int(std::lround(p.bottom - fy * (p.bottom - p.top)))};
}

bool is_close(const std::uint8_t* px, Rgb c, int tol) {
    return std::abs(px[0] - c.r) <= tol && std::abs(px[1] - c.g) <= tol && std::abs(px[2] - c.b) <= tol;
}

bool colour_near(const Image& img, int cx, int cy, int radius, Rgb c, int tol) {
    for (int y = std::max(0, cy - radius); y <= std::min(img.height - 1, cy + radius); ++y)
        for (int x = std::max(0, cx - radius); x <= std::min(img.width - 1, cx + radius); ++x)
            if (is_close(img.at(x, y), c, tol)) return true;
    return false;
}

int count_colour(const Image& img, int x0, int y0, int x1, int y1, Rgb c, int tol) {
    int n = 0;
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) n += is_close(img.at(x, y), c, tol);
    return n;
}

double loss_at(double step) { return 0.5 + 3.0 * std::exp(-step / 30.0); }

Result training_result() {
    Result r;
    r.experiment = "test_training";
    Series loss{"train_loss", "step", "loss", {}, {}}, val{"val_loss", "step", "loss", {}, {}}, lr{"lr", "step", "lr", {}, {}};
    for (int s = 0; s <= 100; ++s) {
        loss.x.push_back(s), loss.y.push_back(loss_at(s));
        lr.x.push_back(s), lr.y.push_back(s < 10 ? 3e-3 * s / 10 : 3e-3);
        if (s % 10 == 0) val.x.push_back(s), val.y.push_back(loss_at(s) + 0.2);
    }
    r.series = {loss, val, lr};
    for (const char* cat : {"memory_weights", "memory_grads", "memory_optimizer"}) {
        Series m{cat, "step", "bytes", {}, {}};
        for (int s = 0; s <= 100; s += 5) m.x.push_back(s), m.y.push_back(64.0 * 1024 * 1024);  // 64 MiB each
        r.series.push_back(m);
    }
    return r;
}

ResultViewOptions options(const std::string& view, Theme theme = Theme::dark, const std::string& takeaway = "") {
    ResultViewOptions o;
    o.view = view, o.theme = theme, o.takeaway = takeaway;
    return o;
}

class GuiScreenshot : public ::testing::Test {
protected:
    void SetUp() override {
        if (!display_available()) GTEST_SKIP() << "no display (" << last_glfw_error() << "); run under xvfb-run";
    }
};

TEST_F(GuiScreenshot, DashboardDrawsTheLossCurveWhereItsAxesSay) {
    const Snapshot s = render_result(training_result(), options("dashboard", Theme::dark, "Loss falls."));
    ASSERT_EQ(s.image.width, 1280);
    ASSERT_EQ(s.image.height, 800);
    const PlotRecord* p = find_plot(s, "dashboard_loss");
    ASSERT_NE(p, nullptr);
    ASSERT_LE(p->y.lo, 0.5 + 3.0 * std::exp(-100 / 30.0));  // the axis shows all the data
    ASSERT_GE(p->y.hi, 3.5);
    const Rgb blue = palette_rgb("train_loss");
    int hits = 0, tried = 0;
    for (int step = 0; step <= 100; step += 4, ++tried) {
        const auto [x, y] = expected_px(*p, step, loss_at(step));
        hits += colour_near(s.image, x, y, 3, blue, 40);
    }
    EXPECT_GE(hits, tried * 9 / 10) << hits << " of " << tried << " loss points found at their pixels";
    // Below the curve on the left there is no data: no loss colour there.
    const auto [x_mid, y_low] = expected_px(*p, 25, 1.2);
    EXPECT_LE(count_colour(s.image, int(p->left) + 2, y_low, x_mid, int(p->bottom) - 2, blue, 30), 2);
}

TEST_F(GuiScreenshot, DashboardStacksMemoryByCategory) {
    const Snapshot s = render_result(training_result(), options("dashboard"));
    const PlotRecord* p = find_plot(s, "dashboard_memory");
    ASSERT_NE(p, nullptr);
    // Layers of 64 MiB each: weights 0..64, grads 64..128, optimizer 128..192 (MiB); check each layer's middle.
    const double mids[] = {32, 96, 160};
    const char* names[] = {"weights", "grads", "optimizer"};
    const ImVec4 bg = {0.16f, 0.16f, 0.18f, 1.0f};  // the dark theme's plot background (style.cpp)
    for (int k = 0; k < 3; ++k) {
        const Rgb c = palette_rgb(names[k]);  // drawn at 75% opacity over the background
        const Rgb blended{std::uint8_t(0.75 * c.r + 0.25 * 255 * bg.x), std::uint8_t(0.75 * c.g + 0.25 * 255 * bg.y),
                          std::uint8_t(0.75 * c.b + 0.25 * 255 * bg.z)};
        const auto [x, y] = expected_px(*p, 30, mids[k]);
        EXPECT_TRUE(colour_near(s.image, x, y, 2, blended, 12)) << names[k] << " at (" << x << ", " << y << ")";
    }
    // Above the total (192 MiB) nothing is filled.
    const auto [x, y] = expected_px(*p, 30, 192.0 * 1.02);
    EXPECT_FALSE(colour_near(s.image, x, y - 3, 1, palette_rgb("optimizer"), 40));
}

TEST_F(GuiScreenshot, AutoViewDrawsLogSeriesAndHeatmapCells) {
    Result r;
    Series& sweep = r.series_named("lora", "rank");
    for (int k = 0; k <= 6; ++k) sweep.x.push_back(std::pow(2, k)), sweep.y.push_back(std::pow(10.0, -k));  // 6 decades
    r.matrices.push_back({"signs", 2, 3, {0, 1, 2, 3, 4, 5}, {}, {}});
    r.scalars.push_back({"accuracy", 0.5, ""});
    const Snapshot s = render_result(r, options("auto"));
    const PlotRecord* line = find_plot(s, "auto_series_rank");
    ASSERT_NE(line, nullptr);
    EXPECT_EQ(line->y.kind, ScaleKind::log10);  // over three decades: log y by default
    int hits = 0;
    for (std::size_t i = 0; i < sweep.x.size(); ++i) {
        const auto [x, y] = expected_px(*line, sweep.x[i], sweep.y[i]);
        hits += colour_near(s.image, x, y, 3, palette_rgb("lora"), 40);
    }
    EXPECT_EQ(hits, int(sweep.x.size()));
    const PlotRecord* hm = find_plot(s, "auto_matrix_signs");
    ASSERT_NE(hm, nullptr);
    // Cell (row 0, col 0) holds the minimum (viridis 0), cell (row 1, col 2) the maximum (viridis 1).
    const auto [x0, y0] = expected_px(*hm, 0, 0);
    const auto [x1, y1] = expected_px(*hm, 2, 1);
    EXPECT_TRUE(colour_near(s.image, x0, y0, 1, {68, 1, 84}, 6));
    EXPECT_TRUE(colour_near(s.image, x1, y1, 1, {253, 231, 37}, 6));
    EXPECT_LT(y0, y1);  // row 0 at the top
}

TEST_F(GuiScreenshot, PngRoundTripAndThemesDiffer) {
    const Snapshot dark = render_result(training_result(), options("dashboard", Theme::dark));
    const Snapshot light = render_result(training_result(), options("dashboard", Theme::light));
    const auto path = std::filesystem::temp_directory_path() / "tunelab_viz_test.png";
    write_png(dark.image, path.string());
    int w = 0, h = 0, n = 0;
    unsigned char* data = stbi_load(path.string().c_str(), &w, &h, &n, 4);
    ASSERT_NE(data, nullptr);
    EXPECT_EQ(w, dark.image.width);
    EXPECT_EQ(h, dark.image.height);
    EXPECT_EQ(0, std::memcmp(data, dark.image.rgba.data(), dark.image.rgba.size()));
    stbi_image_free(data);
    std::filesystem::remove(path);
    const int corner = 5;  // window background, away from any text
    EXPECT_LT(dark.image.at(corner, dark.image.height - corner)[0], 64);
    EXPECT_GT(light.image.at(corner, light.image.height - corner)[0], 192);
}

TEST_F(GuiScreenshot, KoreanScriptRendersHangulGlyphs) {
    if (!std::filesystem::exists(kKoreanFont)) GTEST_SKIP() << kKoreanFont << " missing (apt install fonts-nanum)";
    Result r;
    r.texts.push_back({"sample", "학습률이 너무 작으면 손실이 천천히 줄어듭니다 학습률이 너무 작으면 손실이 천천히"});
    ResultViewOptions o = options("auto");
    const Snapshot latin = render_result(r, o);
    o.script = Script::korean;
    const Snapshot korean = render_result(r, o);
    // Without the Korean font each syllable is one '?' glyph; with it, a Hangul block with several strokes.
    auto ink = [](const Image& img) {
        long n = 0;
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x) n += img.at(x, y)[0] > 128;
        return n;
    };
    EXPECT_GT(ink(korean.image), ink(latin.image) * 3 / 2);
}

}  // namespace
}  // namespace tl::viz
