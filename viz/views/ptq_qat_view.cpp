// The PTQ vs QAT view (lesson 04): test accuracy per format / bit width after post-training quantization and after
// quantization-aware training as grouped bars with the unquantized model as a line, and QAT's recovery curve over
// training steps with PTQ as a flat line. No quant experiment existed when this was written, so it reads the
// names docs/viewer.md lists: table "schemes" (scheme, ptq_accuracy, qat_accuracy), scalar unquantized_accuracy,
// series qat_accuracy against "step" with scalar ptq_accuracy. Anything absent is named instead.
#include <imgui.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plot/bars.hpp"
#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "plot/palette.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

void bars_panel(const ViewContext& ctx, float height) {
    const Result& r = ctx.result;
    const Table* t = r.find_table("schemes");
    const std::vector<std::string> schemes = t ? column_text(*t, "scheme") : std::vector<std::string>{};
    const std::vector<double> ptq = t ? column_numbers(*t, "ptq_accuracy") : std::vector<double>{};
    const std::vector<double> qat = t ? column_numbers(*t, "qat_accuracy") : std::vector<double>{};
    PlotSpec spec{"ptq_qat_bars", axis("format / bit width", ScaleKind::linear, {}),
                  axis("test accuracy (%)", ScaleKind::linear, {0, 100}), {0, height}};
    spec.x.categories = schemes;
    Plot p(spec, ctx.log);
    if (schemes.empty()) return plot_note(p, "no 'schemes' table (scheme, ptq_accuracy, qat_accuracy) in this result");
    std::vector<LegendEntry> legend;
    if (!ptq.empty()) plot_bars(p, {.name = "ptq", .group = 0, .groups = 2, .y_label = "accuracy (%)"}, ptq, schemes),
                      legend.push_back({"PTQ", palette_color("ptq"), Swatch::box});
    if (!qat.empty()) plot_bars(p, {.name = "qat", .group = 1, .groups = 2, .y_label = "accuracy (%)"}, qat, schemes),
                      legend.push_back({"QAT", palette_color("qat"), Swatch::box});
    if (const Scalar* u = r.find_scalar("unquantized_accuracy")) {
        const ImU32 neutral = ImGui::GetColorU32(ImGuiCol_Text);
        plot_hline(p, {.name = "unquantized", .color = neutral, .y_label = "accuracy (%)"}, u->value);
        legend.push_back({"unquantized", neutral});
    }
    draw_legend(p, legend);
}

void recovery_panel(const ViewContext& ctx, float height) {
    const Result& r = ctx.result;
    const Series* qat = r.find_series("qat_accuracy");
    const Scalar* ptq = r.find_scalar("ptq_accuracy");
    std::vector<double> xs = qat ? qat->x : std::vector<double>{};
    PlotSpec spec{"ptq_qat_recovery", axis("QAT step", ScaleKind::linear, padded_range(xs, ScaleKind::linear, 0.02)),
                  axis("test accuracy (%)", ScaleKind::linear, {0, 100}), {0, height}};
    Plot p(spec, ctx.log);
    std::vector<LegendEntry> legend;
    if (ptq) plot_hline(p, {.name = "PTQ", .color = palette_color("ptq"), .style = LineStyle::dashed,
                            .y_label = "accuracy (%)"}, ptq->value), legend.push_back({"PTQ", palette_color("ptq"), Swatch::dashed});
    if (qat) plot_line(p, {.name = "QAT", .color = palette_color("qat"), .marker = Marker::circle, .x_label = "step",
                           .y_label = "accuracy (%)"}, qat->x, qat->y), legend.push_back({"QAT", palette_color("qat")});
    if (!qat) return plot_note(p, "no 'qat_accuracy' series against step in this result");
    draw_legend(p, legend, Corner::bottom_right);
}

}  // namespace

void draw_ptq_qat_view(const ViewContext& ctx) {
    view_header(ctx, views().at("ptq_qat"));
    const float space = plot_space(ctx.takeaway);
    bars_panel(ctx, std::max(220.0f, space * 0.58f));
    recovery_panel(ctx, std::max(140.0f, plot_space(ctx.takeaway) - 6));
    view_footer(ctx);
}

}  // namespace tl::viz
