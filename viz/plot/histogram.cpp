// Histogram bars (see histogram.hpp).
#include "plot/histogram.hpp"

#include <algorithm>
#include <cmath>

#include "plot/palette.hpp"

namespace tl::viz {

void plot_histogram(Plot& p, const HistogramSpec& spec, const std::vector<double>& edges,
                    const std::vector<double>& counts) {
    if (edges.size() != counts.size() + 1) return;
    const ImU32 fill = spec.color ? spec.color : palette_color(spec.name, spec.alpha);
    const bool is_log = p.y_map().kind == ScaleKind::log10;
    const double base = is_log ? std::min(p.y_map().lo, p.y_map().hi) : 0.0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        const double c = counts[i];
        if (!std::isfinite(c) || (is_log && c <= 0)) continue;
        ImVec2 a = p.to_px(edges[i], base), b = p.to_px(edges[i + 1], c);
        if (a.x > b.x) std::swap(a.x, b.x);
        if (a.y > b.y) std::swap(a.y, b.y);
        p.draw_list()->AddRectFilled(a, {std::max(b.x, a.x + 1), b.y}, fill);
        const ImVec2 m = p.mouse();
        if (p.is_hovered() && m.x >= a.x && m.x < std::max(b.x, a.x + 1))
            p.offer_hover({m.x, b.y}, spec.name + "\n" + spec.x_label + " in [" + format_value(edges[i]) + ", " +
                                          format_value(edges[i + 1]) + ")\ncount = " + format_value(c),
                          HoverReach::anywhere);
    }
}

}  // namespace tl::viz
