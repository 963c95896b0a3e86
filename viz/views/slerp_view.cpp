// The SLERP path view (lesson 08, the lecture's Figure 7-16 with real weights): models A and B as two vectors in
// the plane they span, the arc (SLERP) and the chord (linear), the merged vector at t; accuracy on each task along
// t (SLERP solid, linear dashed) and the mean weight norm. Reads merge_slerp_path
// (engine/experiments/merge_experiments.cpp): series slerp_<task>, linear_<task>, slerp_norm, linear_norm vs "t".
// The angle between A and B comes from the norms: for equal norms |(A + B) / 2| = |A| cos(theta / 2).
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "plot/palette.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

constexpr double kMinDrawnDeg = 40;  // small real angles are drawn wider, and the label says so

// The angle (degrees) between A and B from the norms at the t nearest 0.5; NaN when not measured.
double angle_deg(const Result& r) {
    const Series *s = r.find_series("slerp_norm"), *l = r.find_series("linear_norm");
    if (!s || !l || s->x.empty() || l->y.size() != s->y.size()) return NAN;
    std::size_t mid = 0;
    for (std::size_t i = 0; i < s->x.size(); ++i)
        if (std::abs(s->x[i] - 0.5) < std::abs(s->x[mid] - 0.5)) mid = i;
    const double t = s->x[mid], ratio = std::clamp(l->y[mid] / s->y[mid], -1.0, 1.0);
    // |(1-t)a + t b|^2 = (1-t)^2 + t^2 + 2t(1-t)cos(theta) for unit a, b.
    const double c = (ratio * ratio - (1 - t) * (1 - t) - t * t) / std::max(2 * t * (1 - t), 1e-12);
    return std::acos(std::clamp(c, -1.0, 1.0)) * 180 / std::numbers::pi;
}

void plane_panel(const ViewContext& ctx, float t, float height) {
    const double measured = angle_deg(ctx.result);
    const double drawn = std::max(measured == measured ? measured : 60.0, kMinDrawnDeg) * std::numbers::pi / 180;
    PlotSpec spec{"slerp_plane", axis("direction in the plane of A and B", ScaleKind::linear, {-1.3, 1.3}),
                  axis("", ScaleKind::linear, {-0.15, 1.25}), {0, height}};
    Plot p(spec, ctx.log);
    auto at = [&](double phi) { return p.to_px(std::cos(phi), std::sin(phi)); };
    const double a = std::numbers::pi / 2 + drawn / 2, b = std::numbers::pi / 2 - drawn / 2;
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text), slerp = palette_color("slerp"), lin = palette_color("linear");
    std::vector<ImVec2> arc;
    for (int i = 0; i <= 48; ++i) arc.push_back(at(a + (b - a) * i / 48.0));
    p.draw_list()->AddPolyline(arc.data(), int(arc.size()), slerp, ImDrawFlags_None, 2.0f);
    p.draw_list()->AddLine(at(a), at(b), lin, 2.0f);
    const ImVec2 o = p.to_px(0, 0);
    for (auto [phi, name] : {std::pair{a, "A"}, std::pair{b, "B"}}) {
        p.draw_list()->AddLine(o, at(phi), text, 1.5f);
        const ImVec2 tip = at(phi);
        p.draw_list()->AddText({tip.x + (phi > 1.6 ? -16.0f : 6.0f), tip.y - 8}, text, name);
    }
    const ImVec2 ms = at(a + (b - a) * t);  // SLERP at t: along the arc, norm kept
    const ImVec2 ml{at(a).x + (at(b).x - at(a).x) * t, at(a).y + (at(b).y - at(a).y) * t};  // chord: shorter
    p.draw_list()->AddLine(o, ms, slerp, 2.5f), p.draw_list()->AddCircleFilled(ms, 5, slerp);
    p.draw_list()->AddLine(o, ml, lin, 2.5f), p.draw_list()->AddCircleFilled(ml, 5, lin);
    const double chord_norm = std::sqrt((1 - t) * (1 - t) + t * t + 2 * t * (1 - t) * std::cos(drawn));
    p.offer_hover(ms, "SLERP at t = " + format_value(t) + "\nnorm = |A|");
    p.offer_hover(ml, "linear at t = " + format_value(t) + "\nnorm = " + format_value(chord_norm) + " |A| (as drawn)");
    plot_note(p, measured == measured ? "angle A-B from the measured norms: " + format_value(measured) + " deg" +
                                            (measured < kMinDrawnDeg ? " (drawn wider)" : "")
                                      : "no slerp_norm / linear_norm: angle drawn at 60 deg");
    draw_legend(p, {{"slerp (arc)", slerp}, {"linear (chord)", lin}}, Corner::bottom_right);
}

void along_t_panel(const ViewContext& ctx, float t, float height, bool is_norm) {
    const Result& r = ctx.result;
    std::vector<double> ys;
    std::vector<const Series*> shown;
    for (const Series& s : r.series) {
        const bool norm = s.name.ends_with("_norm");
        if (norm == is_norm && (s.name.starts_with("slerp_") || s.name.starts_with("linear_")))
            shown.push_back(&s), ys.insert(ys.end(), s.y.begin(), s.y.end());
    }
    if (!is_norm) ys.push_back(0), ys.push_back(100);
    PlotSpec spec{is_norm ? "slerp_norm" : "slerp_accuracy", axis("t (0 = model A, 1 = model B)", ScaleKind::linear,
                  {-0.02, 1.02}), axis(is_norm ? "mean |W| (Frobenius)" : "test accuracy (%)", ScaleKind::linear,
                  padded_range(ys, ScaleKind::linear)), {0, height}};
    Plot p(spec, ctx.log);
    std::vector<LegendEntry> legend;
    for (const Series* s : shown) {
        const bool is_slerp = s->name.starts_with("slerp_");
        const std::string task = s->name.substr(is_slerp ? 6 : 7);
        const ImU32 col = is_norm ? palette_color(is_slerp ? "slerp" : "linear") : palette_color(task);
        const LineStyle style = is_slerp ? LineStyle::solid : LineStyle::dashed;
        plot_line(p, {.name = s->name, .color = col, .style = style, .marker = Marker::circle, .x_label = "t",
                      .y_label = spec.y.label}, s->x, s->y);
        legend.push_back({(is_slerp ? "slerp, " : "linear, ") + task, col, is_slerp ? Swatch::line : Swatch::dashed});
    }
    const ImU32 dim = ImGui::GetColorU32(ImGuiCol_TextDisabled);
    p.draw_list()->AddLine(p.to_px(t, spec.y.range.lo), p.to_px(t, spec.y.range.hi), dim);
    if (shown.empty()) return plot_note(p, is_norm ? "no slerp_norm / linear_norm series" : "no slerp_<task> series");
    draw_legend(p, legend, is_norm ? Corner::bottom_right : Corner::top_right);
}

}  // namespace

void draw_slerp_view(const ViewContext& ctx) {
    view_header(ctx, views().at("slerp"));
    static float t = 0.5f;  // the slider's value survives frames (and results), as a learner expects
    ImGui::SetNextItemWidth(260);
    ImGui::SliderFloat("t", &t, 0.0f, 1.0f, "t = %.2f");
    const float space = plot_space(ctx.takeaway);
    if (ImGui::BeginTable("slerp_grid", 2, ImGuiTableFlags_SizingStretchSame)) {
        ImGui::TableNextColumn();
        plane_panel(ctx, t, std::max(240.0f, space - 8));
        ImGui::TableNextColumn();
        along_t_panel(ctx, t, std::max(160.0f, space * 0.58f), false);
        along_t_panel(ctx, t, std::max(100.0f, space * 0.42f - 14), true);
        ImGui::EndTable();
    }
    view_footer(ctx);
}

}  // namespace tl::viz
