// Lines, markers and reference lines (see lines.hpp).
#include "plot/lines.hpp"

#include <algorithm>
#include <cmath>

#include "plot/palette.hpp"

namespace tl::viz {

namespace {

bool is_drawable(const AxisMap& m, double v) { return std::isfinite(v) && (m.kind != ScaleKind::log10 || v > 0); }

void draw_dashed(ImDrawList* dl, const std::vector<ImVec2>& pts, ImU32 col, float thickness) {
    constexpr float kDash = 7.0f, kGap = 5.0f;
    float phase = 0;  // distance walked along the current dash/gap period
    for (std::size_t i = 1; i < pts.size(); ++i) {
        const ImVec2 a = pts[i - 1], b = pts[i];
        const float len = std::hypot(b.x - a.x, b.y - a.y);
        for (float s = 0; s < len;) {
            const bool is_on = phase < kDash;
            const float step = std::min(len - s, is_on ? kDash - phase : kDash + kGap - phase);
            if (is_on) {
                const float t0 = s / len, t1 = (s + step) / len;
                dl->AddLine({a.x + (b.x - a.x) * t0, a.y + (b.y - a.y) * t0},
                            {a.x + (b.x - a.x) * t1, a.y + (b.y - a.y) * t1}, col, thickness);
            }
            s += step, phase = std::fmod(phase + step, kDash + kGap);
        }
    }
}

void draw_marker(ImDrawList* dl, ImVec2 c, Marker m, ImU32 col) {
    if (m == Marker::circle) dl->AddCircleFilled(c, 3.5f, col, 12);
    if (m == Marker::square) dl->AddRectFilled({c.x - 3, c.y - 3}, {c.x + 3, c.y + 3}, col);
}

}  // namespace

void plot_line(Plot& p, const LineSpec& spec, const std::vector<double>& x, const std::vector<double>& y) {
    const ImU32 col = spec.color ? spec.color : palette_color(spec.name);
    const std::size_t n = std::min(x.size(), y.size());
    std::vector<ImVec2> run;
    auto flush = [&] {
        if (spec.style == LineStyle::solid && run.size() >= 2)
            p.draw_list()->AddPolyline(run.data(), int(run.size()), col, ImDrawFlags_None, spec.thickness);
        if (spec.style == LineStyle::dashed) draw_dashed(p.draw_list(), run, col, spec.thickness);
        run.clear();
    };
    for (std::size_t i = 0; i < n; ++i) {
        if (!is_drawable(p.x_map(), x[i]) || !is_drawable(p.y_map(), y[i])) {
            flush();
            continue;
        }
        const ImVec2 px = p.to_px(x[i], y[i]);
        run.push_back(px);
        draw_marker(p.draw_list(), px, spec.marker == Marker::none && spec.style == LineStyle::hidden
                                           ? Marker::circle : spec.marker, col);
        if (p.is_hovered())
            p.offer_hover(px, spec.name + "\n" + readout(spec.x_label, x[i]) + "\n" + readout(spec.y_label, y[i]));
    }
    if (n == 1 && !run.empty()) draw_marker(p.draw_list(), run[0], Marker::circle, col);  // one point: still seen
    flush();
}

void plot_hline(Plot& p, const LineSpec& spec, double y) {
    if (!is_drawable(p.y_map(), y)) return;
    const ImU32 col = spec.color ? spec.color : palette_color(spec.name);
    const float py = p.y_map().to_px(y);
    const std::vector<ImVec2> pts{{p.min().x, py}, {p.max().x, py}};
    if (spec.style == LineStyle::dashed) draw_dashed(p.draw_list(), pts, col, spec.thickness);
    else p.draw_list()->AddLine(pts[0], pts[1], col, spec.thickness);
    const ImVec2 sz = ImGui::CalcTextSize(spec.name.c_str());
    p.draw_list()->AddText({p.max().x - sz.x - 4, py - sz.y - 1}, col, spec.name.c_str());
    if (p.is_hovered()) p.offer_hover({p.mouse().x, py}, spec.name + "\n" + readout(spec.y_label, y));
}

}  // namespace tl::viz
