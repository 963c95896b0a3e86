// The merge lab view (lessons 08-09): accuracy on every parent task per merge method beside both fine-tunes, the
// base and the ensemble (grouped bars, one colour per task); density sweep curves (the lecture's Figure 7-17:
// keep the top k% of the task vector) and a sign-conflict map per layer when the result has them. Reads
// merge_methods (engine/experiments/merge_experiments.cpp): table "methods" (method, acc_<task>...); and, when
// present, series "density_<method>_<task>" against "density" and matrix "sign_conflict" (layers x tensors).
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

void methods_panel(const ViewContext& ctx, float height) {
    const Table* t = ctx.result.find_table("methods");
    std::vector<std::string> tasks;
    if (t)
        for (const std::string& c : t->columns)
            if (c.starts_with("acc_")) tasks.push_back(c.substr(4));
    const std::vector<std::string> methods = t ? column_text(*t, "method") : std::vector<std::string>{};
    PlotSpec spec{"merge_methods", axis("", ScaleKind::linear, {}), axis("test accuracy (%)", ScaleKind::linear,
                  {0, 102}), {0, height}};
    spec.x.categories = methods;
    Plot p(spec, ctx.log);
    if (tasks.empty()) return plot_note(p, "no 'methods' table with acc_<task> columns (merge_methods)");
    std::vector<LegendEntry> legend;
    for (std::size_t k = 0; k < tasks.size(); ++k) {
        plot_bars(p, {.name = tasks[k], .group = int(k), .groups = int(tasks.size()), .y_label = "accuracy on " +
                      tasks[k] + " (%)"}, column_numbers(*t, "acc_" + tasks[k]), methods);
        legend.push_back({"on " + tasks[k], palette_color(tasks[k]), Swatch::box});
    }
    draw_legend(p, legend);
}

void density_panel(const ViewContext& ctx, float height) {
    std::vector<const Series*> curves;
    std::vector<double> xs;
    for (const Series& s : ctx.result.series)
        if (s.x_label == "density") curves.push_back(&s), xs.insert(xs.end(), s.x.begin(), s.x.end());
    if (curves.empty()) return missing_note("density sweep curves (series against 'density')");
    PlotSpec spec{"merge_density", axis("density: share of the task vector kept", ScaleKind::linear,
                  padded_range(xs, ScaleKind::linear, 0.02)), axis("test accuracy (%)", ScaleKind::linear, {0, 102}),
                  {0, height}};
    Plot p(spec, ctx.log);
    std::vector<LegendEntry> legend;
    for (const Series* s : curves) {
        const std::size_t cut = s->name.rfind('_');  // density_<method>_<task>: coloured by task
        const std::string task = cut == std::string::npos ? s->name : s->name.substr(cut + 1);
        const bool is_ties = s->name.find("ties") != std::string::npos;
        const LineStyle style = is_ties ? LineStyle::solid : LineStyle::dashed;
        plot_line(p, {.name = s->name, .color = palette_color(task), .style = style, .marker = Marker::circle,
                      .x_label = "density", .y_label = "accuracy (%)"}, s->x, s->y);
        legend.push_back({s->name, palette_color(task), is_ties ? Swatch::line : Swatch::dashed});
    }
    draw_legend(p, legend, Corner::bottom_right);
}

}  // namespace

void draw_merge_lab_view(const ViewContext& ctx) {
    view_header(ctx, views().at("merge_lab"));
    const Result& r = ctx.result;
    const bool has_extra = r.find_matrix("sign_conflict") ||
                           std::any_of(r.series.begin(), r.series.end(), [](const Series& s) { return s.x_label == "density"; });
    const float space = plot_space(ctx.takeaway);
    methods_panel(ctx, std::max(220.0f, has_extra ? space * 0.52f : space - 3 * ImGui::GetTextLineHeightWithSpacing()));
    const float rest = std::max(150.0f, plot_space(ctx.takeaway) - 6);
    if (ImGui::BeginTable("merge_lower", 2, ImGuiTableFlags_SizingStretchSame)) {
        ImGui::TableNextColumn();
        density_panel(ctx, rest);
        ImGui::TableNextColumn();
        if (!matrix_panel(ctx, "sign_conflict", {"merge_conflict", "tensor", "layer",
                                                 "share of entries whose signs disagree", rest}))
            missing_note("a sign-conflict map (matrix 'sign_conflict')");
        ImGui::EndTable();
    }
    view_footer(ctx);
}

}  // namespace tl::viz
