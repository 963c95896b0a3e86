// Stacked areas for a Plot (axes.hpp): layers over a shared x, each drawn from the running total below it
// (memory by category over training steps). The hover read-out lists every layer and the total at that x.
#pragma once
#include <string>
#include <vector>

#include "plot/axes.hpp"

namespace tl::viz {

struct AreaLayer {
    std::string name;           // coloured with palette_color(name)
    std::vector<double> y;      // same length as x; non-finite values count as 0
};

// The running totals: totals[k][i] = sum of layers 0..k at x[i]. Exposed for the axis range and for tests.
std::vector<std::vector<double>> stack_layers(const std::vector<AreaLayer>& layers, std::size_t n);

void plot_stacked_area(Plot& p, const std::vector<double>& x, const std::vector<AreaLayer>& layers,
                       const std::string& x_label, const std::string& y_label);

}  // namespace tl::viz
