// Line and scatter series for a Plot (axes.hpp): a polyline through (x, y) pairs, broken at non-finite values
// (and at y <= 0 on a log axis), optional markers, and a hover read-out at the nearest point.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "plot/axes.hpp"

namespace tl::viz {

enum class Marker { none, circle, square };
enum class LineStyle { solid, dashed, hidden };  // hidden: markers only (a scatter plot)

struct LineSpec {
    std::string name;              // shown in hover read-outs
    std::uint32_t color = 0;       // palette_color(name) when 0
    float thickness = 2.0f;
    LineStyle style = LineStyle::solid;
    Marker marker = Marker::none;
    std::string x_label = "x", y_label = "y";  // read-out names
};

void plot_line(Plot& p, const LineSpec& spec, const std::vector<double>& x, const std::vector<double>& y);
// A horizontal reference line across the plot (e.g. "full fine-tuning"), labelled at its right end.
void plot_hline(Plot& p, const LineSpec& spec, double y);

}  // namespace tl::viz
