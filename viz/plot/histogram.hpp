// Histograms for a Plot (axes.hpp): counts[i] as a bar over [edges[i], edges[i+1]) (the Result's Histogram
// layout), with a read-out of the bin and its count. On a log y axis empty bins are left out.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "plot/axes.hpp"

namespace tl::viz {

struct HistogramSpec {
    std::string name;
    std::uint32_t color = 0;  // palette_color(name) when 0
    float alpha = 0.8f;       // overlaid histograms stay readable
    std::string x_label = "value";
};

void plot_histogram(Plot& p, const HistogramSpec& spec, const std::vector<double>& edges,
                    const std::vector<double>& counts);

}  // namespace tl::viz
