// Stacked bars (see stacked_bars.hpp).
#include "plot/stacked_bars.hpp"

#include <algorithm>
#include <cmath>

#include "plot/palette.hpp"

namespace tl::viz {

void plot_stacked_bars(Plot& p, const std::vector<StackLayer>& layers, const std::vector<std::string>& categories,
                       const std::string& y_label, double width) {
    auto value = [](const StackLayer& l, std::size_t i) {
        return i < l.values.size() && std::isfinite(l.values[i]) ? l.values[i] : 0.0;
    };
    for (std::size_t i = 0; i < categories.size(); ++i) {
        double total = 0;
        for (const StackLayer& l : layers) total += value(l, i);
        double base = 0;
        for (const StackLayer& l : layers) {
            const double v = value(l, i);
            if (v <= 0) continue;
            ImVec2 a = p.to_px(double(i) - width / 2, base + v), b = p.to_px(double(i) + width / 2, base);
            p.draw_list()->AddRectFilled(a, b, palette_color(l.name));
            p.draw_list()->AddRect(a, b, ImGui::GetColorU32(ImGuiCol_FrameBg), 0, 0, 1.0f);  // layer seams
            const ImVec2 m = p.mouse();
            if (p.is_hovered() && m.x >= a.x && m.x <= b.x && m.y >= a.y && m.y <= b.y)
                p.offer_hover(m, categories[i] + " / " + l.name + "\n" + readout(y_label, v) + "\n" +
                                     readout("total", total), HoverReach::anywhere);
            base += v;
        }
    }
}

}  // namespace tl::viz
