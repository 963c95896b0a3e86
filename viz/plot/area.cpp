// Stacked areas (see area.hpp). Each segment of a layer is a trapezoid with vertical sides, so convex.
#include "plot/area.hpp"

#include <cmath>

#include "plot/palette.hpp"

namespace tl::viz {

std::vector<std::vector<double>> stack_layers(const std::vector<AreaLayer>& layers, std::size_t n) {
    std::vector<std::vector<double>> totals(layers.size(), std::vector<double>(n, 0.0));
    for (std::size_t k = 0; k < layers.size(); ++k)
        for (std::size_t i = 0; i < n; ++i) {
            const double v = i < layers[k].y.size() && std::isfinite(layers[k].y[i]) ? layers[k].y[i] : 0.0;
            totals[k][i] = (k ? totals[k - 1][i] : 0.0) + v;
        }
    return totals;
}

void plot_stacked_area(Plot& p, const std::vector<double>& x, const std::vector<AreaLayer>& layers,
                       const std::string& x_label, const std::string& y_label) {
    const std::size_t n = x.size();
    const auto totals = stack_layers(layers, n);
    std::size_t nearest = n;  // the x index under the mouse
    float best = 1e30f;
    // Adjacent trapezoids with anti-aliased edges leave faint seams between them: fill without AA.
    const ImDrawListFlags saved_flags = p.draw_list()->Flags;
    p.draw_list()->Flags &= ~ImDrawListFlags_AntiAliasedFill;
    for (std::size_t k = 0; k < layers.size(); ++k) {
        const ImU32 fill = palette_color(layers[k].name, 0.75f);
        for (std::size_t i = 0; i + 1 < n; ++i) {
            const double lo0 = k ? totals[k - 1][i] : 0.0, lo1 = k ? totals[k - 1][i + 1] : 0.0;
            const ImVec2 q[4] = {p.to_px(x[i], lo0), p.to_px(x[i], totals[k][i]), p.to_px(x[i + 1], totals[k][i + 1]),
                                 p.to_px(x[i + 1], lo1)};
            p.draw_list()->AddConvexPolyFilled(q, 4, fill);
        }
    }
    p.draw_list()->Flags = saved_flags;
    for (std::size_t k = 0; k < layers.size(); ++k)  // the top edge of each layer, anti-aliased
        for (std::size_t i = 0; i + 1 < n; ++i)
            p.draw_list()->AddLine(p.to_px(x[i], totals[k][i]), p.to_px(x[i + 1], totals[k][i + 1]),
                                   palette_color(layers[k].name), 1.5f);
    for (std::size_t i = 0; i < n && p.is_hovered(); ++i) {
        const float d = std::abs(p.x_map().to_px(x[i]) - p.mouse().x);
        if (d < best) best = d, nearest = i;
    }
    if (nearest >= n || layers.empty()) return;
    std::string text = readout(x_label, x[nearest]);
    for (std::size_t k = layers.size(); k-- > 0;)
        text += "\n" + layers[k].name + ": " + format_value(totals[k][nearest] - (k ? totals[k - 1][nearest] : 0.0));
    text += "\n" + readout("total " + y_label, totals.back()[nearest]);
    p.offer_hover(p.to_px(x[nearest], totals.back()[nearest]), text, HoverReach::anywhere);
}

}  // namespace tl::viz
