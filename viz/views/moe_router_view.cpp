// The MoE router view (lesson 09): each expert's share of the routed tokens over the upcycled model's
// training (series expert_share_<i> against step, with 1/k as the balanced line) and the load-balancing loss
// beside it (router_aux_loss, 1 when balanced); which expert each task's tokens go to, right after upcycling
// and after training (table expert_use), and per layer (matrix expert_0_share_by_layer). Reads
// merge_moe_upcycle (engine/experiments/merge_experiments.cpp); the dashboard recorder writes the same series
// for any MoE run.
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

std::vector<const Series*> share_series(const Result& r) {
    std::vector<const Series*> out;
    for (const Series& s : r.series)
        if (s.name.starts_with("expert_share_")) out.push_back(&s);
    return out;
}

void share_panel(const ViewContext& ctx, float height) {
    const std::vector<const Series*> shares = share_series(ctx.result);
    std::vector<double> xs;
    for (const Series* s : shares) xs.insert(xs.end(), s->x.begin(), s->x.end());
    PlotSpec spec{"moe_share",
                  axis("training step", ScaleKind::linear, padded_range(xs, ScaleKind::linear, 0.02)),
                  axis("share of routed tokens", ScaleKind::linear, {0, 1.02}),
                  {0, height}};
    Plot p(spec, ctx.log);
    if (shares.empty())
        return plot_note(p, "no expert_share_<i> series (merge_moe_upcycle, or any MoE training run)");
    std::vector<LegendEntry> legend;
    for (const Series* s : shares) {
        const std::string name = "expert " + s->name.substr(std::string("expert_share_").size());
        plot_line(p, {.name = name, .color = palette_color(name), .x_label = "step", .y_label = "share"},
                  s->x, s->y);
        legend.push_back({name, palette_color(name), Swatch::line});
    }
    const ImU32 neutral = ImGui::GetColorU32(ImGuiCol_Text);
    plot_hline(p,
               {.name = "balanced (1/k)", .color = neutral, .style = LineStyle::dashed, .y_label = "share"},
               1.0 / double(shares.size()));
    legend.push_back({"balanced (1/k)", neutral, Swatch::dashed});
    draw_legend(p, legend);
}

void aux_panel(const ViewContext& ctx, float height) {
    const Series* aux = ctx.result.find_series("router_aux_loss");
    std::vector<double> ys = aux ? aux->y : std::vector<double>{};
    ys.push_back(1.0);
    PlotSpec spec{"moe_aux",
                  axis("training step", ScaleKind::linear,
                       aux ? padded_range(aux->x, ScaleKind::linear, 0.02) : Range{0, 1}),
                  axis("load-balancing loss", ScaleKind::linear, padded_range(ys, ScaleKind::linear, 0.05)),
                  {0, height}};
    Plot p(spec, ctx.log);
    if (!aux) return plot_note(p, "no router_aux_loss series");
    plot_line(
        p, {.name = "aux loss", .color = palette_color("aux"), .x_label = "step", .y_label = "k sum f_i P_i"},
        aux->x, aux->y);
    const ImU32 neutral = ImGui::GetColorU32(ImGuiCol_Text);
    plot_hline(p, {.name = "balanced", .color = neutral, .style = LineStyle::dashed, .y_label = "aux"}, 1.0);
}

void use_panel(const ViewContext& ctx, float height) {
    const Table* t = ctx.result.find_table("expert_use");
    std::vector<std::string> labels;
    if (t) {
        const auto task = column_text(*t, "task"), stage = column_text(*t, "stage");
        for (std::size_t i = 0; i < task.size() && i < stage.size(); ++i)
            labels.push_back(task[i] + ", " + stage[i]);
    }
    PlotSpec spec{"moe_use",
                  axis("task, stage", ScaleKind::linear, {}),
                  axis("share of the task's tokens (%)", ScaleKind::linear, {0, 102}),
                  {0, height}};
    spec.x.categories = labels;
    Plot p(spec, ctx.log);
    if (!t) return plot_note(p, "no 'expert_use' table (merge_moe_upcycle)");
    std::vector<LegendEntry> legend;
    for (int e = 0; e < 2; ++e) {
        const std::string name = "expert " + std::to_string(e);
        plot_bars(p, {.name = name, .group = e, .groups = 2, .y_label = name + " (%)"},
                  column_numbers(*t, "expert_" + std::to_string(e) + "_pct"), labels);
        legend.push_back({name, palette_color(name), Swatch::box});
    }
    draw_legend(p, legend);
}

}  // namespace

void draw_moe_router_view(const ViewContext& ctx) {
    view_header(ctx, views().at("moe_router"));
    const float space = plot_space(ctx.takeaway);
    const float top = std::max(200.0f, space * 0.5f), bottom = std::max(160.0f, space - top - 8);
    if (ImGui::BeginTable("moe_upper", 2, ImGuiTableFlags_SizingStretchProp)) {
        ImGui::TableSetupColumn("share", ImGuiTableColumnFlags_WidthStretch, 2.0f);
        ImGui::TableSetupColumn("aux", ImGuiTableColumnFlags_WidthStretch, 1.0f);
        ImGui::TableNextColumn();
        share_panel(ctx, top);
        ImGui::TableNextColumn();
        aux_panel(ctx, top);
        ImGui::EndTable();
    }
    if (ImGui::BeginTable("moe_lower", 2, ImGuiTableFlags_SizingStretchSame)) {
        ImGui::TableNextColumn();
        use_panel(ctx, bottom);
        ImGui::TableNextColumn();
        if (!matrix_panel(
                ctx, "expert_0_share_by_layer",
                {"moe_layers", "layer", "task, stage", "expert 0's share of the tokens (%)", bottom}))
            missing_note("expert use per layer (matrix 'expert_0_share_by_layer')");
        ImGui::EndTable();
    }
    view_footer(ctx);
}

}  // namespace tl::viz
