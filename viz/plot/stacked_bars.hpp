// Stacked bars for a Plot (axes.hpp): one bar per category, its layers (memory categories, ...) piled from 0 in
// order, each layer coloured with palette_color(name). The hover read-out names the layer, its value and the
// bar's total. Used by the memory view; grouped side-by-side bars are bars.hpp.
#pragma once
#include <string>
#include <vector>

#include "plot/axes.hpp"

namespace tl::viz {

struct StackLayer {
    std::string name;           // coloured with palette_color(name)
    std::vector<double> values;  // one per category; non-finite or missing values count as 0
};

// Bars at x = 0, 1, ... (a category axis), `width` of one category, drawn on a linear y axis.
void plot_stacked_bars(Plot& p, const std::vector<StackLayer>& layers, const std::vector<std::string>& categories,
                       const std::string& y_label, double width = 0.6);

}  // namespace tl::viz
