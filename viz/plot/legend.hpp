// A legend box inside a Plot's corner (axes.hpp): a swatch (line, dashed line or filled box) and a name per entry.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "plot/axes.hpp"

namespace tl::viz {

enum class Swatch { line, dashed, box };
enum class Corner { top_right, top_left, bottom_right, bottom_left };

struct LegendEntry {
    std::string name;
    std::uint32_t color = 0;  // palette_color(name) when 0
    Swatch swatch = Swatch::line;
};

void draw_legend(Plot& p, const std::vector<LegendEntry>& entries, Corner corner = Corner::top_right);

}  // namespace tl::viz
