// Heatmap cells and colour bar (see heatmap.hpp).
#include "plot/heatmap.hpp"

#include <algorithm>
#include <cmath>

#include "plot/palette.hpp"

namespace tl::viz {

namespace {

Rgb color_of(const HeatmapSpec& h, const Range& r, double v) {
    if (h.map == ColorMap::diverging) return colormap_diverging(r.hi > 0 ? v / r.hi : 0.0);
    return colormap_viridis(r.hi > r.lo ? (v - r.lo) / (r.hi - r.lo) : 0.5);
}

std::string label_or_index(const std::vector<std::string>* labels, std::int64_t i) {
    return labels && std::size_t(i) < labels->size() ? (*labels)[std::size_t(i)] : std::to_string(i);
}

void draw_color_bar(Plot& p, const HeatmapSpec& h, const Range& r) {
    ImDrawList* dl = p.draw_list();
    dl->PushClipRectFullScreen();
    const float x0 = p.max().x + 14, x1 = x0 + 14, y0 = p.min().y, y1 = p.max().y;
    constexpr int kSteps = 32;
    for (int s = 0; s < kSteps; ++s) {  // top = high values
        const double v = r.hi - (r.hi - r.lo) * (s + 0.5) / kSteps;
        dl->AddRectFilled({x0, y0 + (y1 - y0) * s / kSteps}, {x1, y0 + (y1 - y0) * (s + 1) / kSteps + 1},
                          pack(color_of(h, r, v)));
    }
    dl->AddRect({x0, y0}, {x1, y1}, ImGui::GetColorU32(ImGuiCol_Text, 0.6f));
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
    for (const Tick& t : linear_ticks(r.lo, r.hi, 5)) {
        const float y = y1 - float((t.value - r.lo) / (r.hi - r.lo)) * (y1 - y0);
        dl->AddLine({x1, y}, {x1 + 4, y}, text);
        dl->AddText({x1 + 6, y - ImGui::GetTextLineHeight() / 2}, text, t.label.c_str());
    }
    dl->PopClipRect();
}

}  // namespace

Range heatmap_value_range(const HeatmapSpec& h) {
    double lo = INFINITY, hi = -INFINITY;
    for (double v : *h.values)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (lo > hi) return {0, 1};
    if (h.map == ColorMap::diverging) {
        const double m = std::max({std::abs(lo), std::abs(hi), 1e-30});
        return {-m, m};
    }
    return lo == hi ? Range{lo - 0.5, hi + 0.5} : Range{lo, hi};
}

void heatmap_axes(const HeatmapSpec& h, AxisSpec& x, AxisSpec& y) {
    x.range = {-0.5, double(h.cols) - 0.5};
    y.range = {double(h.rows) - 0.5, -0.5};  // row 0 at the top
    x.scale = y.scale = ScaleKind::linear;
    x.categories = h.col_labels && h.col_labels->size() == std::size_t(h.cols) ? *h.col_labels : std::vector<std::string>{};
    y.categories = h.row_labels && h.row_labels->size() == std::size_t(h.rows) ? *h.row_labels : std::vector<std::string>{};
}

void plot_heatmap(Plot& p, const HeatmapSpec& h) {
    if (!h.values || h.values->size() != std::size_t(h.rows * h.cols)) return;
    const Range r = heatmap_value_range(h);
    for (std::int64_t i = 0; i < h.rows; ++i)
        for (std::int64_t j = 0; j < h.cols; ++j) {
            const double v = (*h.values)[std::size_t(i * h.cols + j)];
            ImVec2 a = p.to_px(j - 0.5, i - 0.5), b = p.to_px(j + 0.5, i + 0.5);  // cell (i, j) is centred on (j, i)
            if (a.y > b.y) std::swap(a.y, b.y);
            const ImU32 col = std::isfinite(v) ? pack(color_of(h, r, v)) : ImGui::GetColorU32(ImGuiCol_FrameBg);
            p.draw_list()->AddRectFilled(a, b, col);
            const ImVec2 m = p.mouse();
            if (p.is_hovered() && m.x >= a.x && m.x < b.x && m.y >= a.y && m.y < b.y)
                p.offer_hover(m, h.name + "\nrow " + label_or_index(h.row_labels, i) + ", column " +
                                     label_or_index(h.col_labels, j) + "\n" + readout(h.value_label, v),
                              HoverReach::anywhere);
        }
    draw_color_bar(p, h, r);
}

}  // namespace tl::viz
