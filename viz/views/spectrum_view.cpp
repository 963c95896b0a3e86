// The ΔW spectrum view (lesson 06's "why does low rank work?"): singular values of W_finetuned - W_base per
// Conv1D weight (log y, one colour per module kind, a random matrix of c_attn's shape dashed as the control),
// and the share of ||dW||_F^2 the best rank-r approximation keeps as a heatmap (modules x r). Reads
// delta_w_spectrum (engine/experiments/peft_experiments.cpp): series "sv <module>" against "index", matrix
// "energy" (row and column labels), table "modules" (rank_90 ...).
#include <imgui.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "plot/palette.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

constexpr const char* kKinds[] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
constexpr Rgb kKindColours[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {148, 103, 189}};  // Tableau 1-3, 5

ImU32 kind_colour(const std::string& kind) {
    for (std::size_t i = 0; i < std::size(kKinds); ++i)
        if (kind == kKinds[i]) return pack(kKindColours[i], 0.85f);
    return ImGui::GetColorU32(ImGuiCol_Text);  // the random control
}

// The module kind of "sv h3.mlp.c_fc" (its colour), or "random" for the control matrix.
std::string kind_of(const std::string& series) {
    for (const char* k : kKinds)
        if (series.ends_with(k)) return k;
    return "random";
}

void singular_values_panel(const ViewContext& ctx, float height) {
    std::vector<const Series*> svs;
    std::vector<double> xs, ys;
    for (const Series& s : ctx.result.series)
        if (s.name.starts_with("sv ")) {
            svs.push_back(&s), xs.insert(xs.end(), s.x.begin(), s.x.end());
            for (double y : s.y) ys.push_back(y);
        }
    PlotSpec spec{"spectrum_sv", axis("singular value index (log)", ScaleKind::log10, padded_range(xs, ScaleKind::log10)),
                  axis("singular value of dW (log)", ScaleKind::log10, padded_range(ys, ScaleKind::log10)), {0, height}};
    Plot p(spec, ctx.log);
    if (svs.empty()) return plot_note(p, "no 'sv <module>' series (delta_w_spectrum) in this result");
    std::vector<LegendEntry> legend;
    for (const Series* s : svs) {
        const std::string kind = kind_of(s->name);
        const bool is_random = kind == "random";
        const ImU32 col = kind_colour(kind);
        plot_line(p, {.name = s->name.substr(3), .color = col, .thickness = is_random ? 2.0f : 1.5f,
                      .style = is_random ? LineStyle::dashed : LineStyle::solid, .x_label = "index",
                      .y_label = "singular value"}, s->x, s->y);
        if (std::none_of(legend.begin(), legend.end(), [&](const LegendEntry& e) { return e.name == kind; }))
            legend.push_back({kind, col, is_random ? Swatch::dashed : Swatch::line});
    }
    draw_legend(p, legend);
}

}  // namespace

void draw_spectrum_view(const ViewContext& ctx) {
    view_header(ctx, views().at("spectrum"));
    const float space = plot_space(ctx.takeaway);
    if (ImGui::BeginTable("spectrum_grid", 2, ImGuiTableFlags_SizingStretchSame)) {
        ImGui::TableNextColumn();
        singular_values_panel(ctx, std::max(240.0f, space - 8));
        ImGui::TableNextColumn();
        if (!matrix_panel(ctx, "energy", {"spectrum_energy", "best rank-r approximation", "module",
                                          "share of ||dW||^2 kept", std::max(240.0f, space - 8)}))
            missing_note("the 'energy' matrix (share of ||dW||^2 kept by rank r, per module)");
        ImGui::EndTable();
    }
    view_footer(ctx);
}

}  // namespace tl::viz
