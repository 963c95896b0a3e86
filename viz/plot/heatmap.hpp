// Heatmaps for a Plot (axes.hpp): a rows x cols grid of coloured cells with a colour bar on the right (give the
// PlotSpec reserve_right >= kColorBarWidth). Row 0 is drawn at the top: use heatmap_axes() to build the axes.
#pragma once
#include <string>
#include <vector>

#include "plot/axes.hpp"

namespace tl::viz {

enum class ColorMap { sequential, diverging };  // diverging: symmetric around 0 (signed data)

struct HeatmapSpec {
    std::string name, value_label = "value";
    std::int64_t rows = 0, cols = 0;
    const std::vector<double>* values = nullptr;       // row-major, rows * cols
    const std::vector<std::string>* row_labels = nullptr;  // optional, rows entries
    const std::vector<std::string>* col_labels = nullptr;  // optional, cols entries
    ColorMap map = ColorMap::sequential;
};

inline constexpr float kColorBarWidth = 90.0f;

// The value range the colours span: [min, max] of the finite values, or [-m, m] with m = max |v| (diverging).
Range heatmap_value_range(const HeatmapSpec& h);
// Axes with one unit per cell, rows top-down, labelled by the row/column labels when given.
void heatmap_axes(const HeatmapSpec& h, AxisSpec& x, AxisSpec& y);
void plot_heatmap(Plot& p, const HeatmapSpec& h);

}  // namespace tl::viz
