// Grouped and positioned bars (see bars.hpp).
#include "plot/bars.hpp"

#include <algorithm>
#include <cmath>

#include "plot/palette.hpp"

namespace tl::viz {

namespace {

double bar_base(const AxisMap& y) {
    return y.kind == ScaleKind::log10 ? std::min(y.lo, y.hi) : std::clamp(0.0, std::min(y.lo, y.hi), std::max(y.lo, y.hi));
}

void draw_bar(Plot& p, double x0, double x1, double v, ImU32 col, const std::string& hover) {
    if (!std::isfinite(v) || (p.y_map().kind == ScaleKind::log10 && v <= 0)) return;
    const double base = bar_base(p.y_map());
    ImVec2 a = p.to_px(x0, base), b = p.to_px(x1, v);
    if (a.x > b.x) std::swap(a.x, b.x);
    if (a.y > b.y) std::swap(a.y, b.y);
    p.draw_list()->AddRectFilled(a, b, col);
    const ImVec2 m = p.mouse();
    if (p.is_hovered() && m.x >= a.x && m.x <= b.x) p.offer_hover({m.x, std::clamp(m.y, a.y, b.y)}, hover, HoverReach::anywhere);
}

}  // namespace

void plot_bars(Plot& p, const BarSpec& spec, const std::vector<double>& values,
               const std::vector<std::string>& categories) {
    const ImU32 col = spec.color ? spec.color : palette_color(spec.name);
    const double slot = spec.width / std::max(1, spec.groups);
    for (std::size_t i = 0; i < values.size(); ++i) {
        const double x0 = double(i) - spec.width / 2 + slot * spec.group;
        const std::string cat = i < categories.size() ? categories[i] : std::to_string(i);
        draw_bar(p, x0 + slot * 0.05, x0 + slot * 0.95, values[i], col,
                 spec.name + " / " + cat + "\n" + readout(spec.y_label, values[i]));
    }
}

void plot_bars_at(Plot& p, const BarSpec& spec, const std::vector<double>& x, const std::vector<double>& y) {
    const ImU32 col = spec.color ? spec.color : palette_color(spec.name);
    for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i)
        draw_bar(p, x[i] - spec.width / 2, x[i] + spec.width / 2, y[i], col,
                 spec.name + "\n" + readout("x", x[i]) + "\n" + readout(spec.y_label, y[i]));
}

}  // namespace tl::viz
