// The legend box (see legend.hpp): sized from its text, drawn over the data with a translucent background.
#include "plot/legend.hpp"

#include <algorithm>

#include "plot/palette.hpp"

namespace tl::viz {

void draw_legend(Plot& p, const std::vector<LegendEntry>& entries, Corner corner) {
    if (entries.empty()) return;
    const float line = ImGui::GetTextLineHeight(), swatch_w = 22, pad = 6;
    float w = 0;
    for (const LegendEntry& e : entries) w = std::max(w, ImGui::CalcTextSize(e.name.c_str()).x);
    const ImVec2 size{pad * 3 + swatch_w + w, pad * 2 + line * float(entries.size())};
    const bool is_right = corner == Corner::top_right || corner == Corner::bottom_right;
    const bool is_top = corner == Corner::top_right || corner == Corner::top_left;
    const ImVec2 a{is_right ? p.max().x - size.x - 6 : p.min().x + 6, is_top ? p.min().y + 6 : p.max().y - size.y - 6};
    ImDrawList* dl = p.draw_list();
    dl->AddRectFilled(a, {a.x + size.x, a.y + size.y}, ImGui::GetColorU32(ImGuiCol_WindowBg, 0.85f), 3.0f);
    dl->AddRect(a, {a.x + size.x, a.y + size.y}, ImGui::GetColorU32(ImGuiCol_Border), 3.0f);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const LegendEntry& e = entries[i];
        const ImU32 col = e.color ? e.color : palette_color(e.name);
        const float y = a.y + pad + line * float(i), cy = y + line / 2, x = a.x + pad;
        if (e.swatch == Swatch::box) dl->AddRectFilled({x, y + 3}, {x + swatch_w, y + line - 3}, col);
        if (e.swatch == Swatch::line) dl->AddLine({x, cy}, {x + swatch_w, cy}, col, 2.5f);
        if (e.swatch == Swatch::dashed) {
            dl->AddLine({x, cy}, {x + 8, cy}, col, 2.5f);
            dl->AddLine({x + 13, cy}, {x + swatch_w, cy}, col, 2.5f);
        }
        dl->AddText({x + swatch_w + pad, y}, ImGui::GetColorU32(ImGuiCol_Text), e.name.c_str());
    }
}

}  // namespace tl::viz
