// Bar series for a Plot (axes.hpp): grouped bars over categories (x axis with AxisSpec::categories) and bars at
// numeric x positions. Bars rise from 0 on a linear y axis and from the bottom of a log axis.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "plot/axes.hpp"

namespace tl::viz {

struct BarSpec {
    std::string name;
    std::uint32_t color = 0;   // palette_color(name) when 0
    int group = 0, groups = 1;  // this series' slot among `groups` side-by-side series per category
    double width = 0.8;         // of one category (grouped) or in x units (plot_bars_at)
    std::string y_label = "value";
};

// values[i] is the bar of category i.
void plot_bars(Plot& p, const BarSpec& spec, const std::vector<double>& values,
               const std::vector<std::string>& categories);
// Bars centred at x[i] of spec.width x units.
void plot_bars_at(Plot& p, const BarSpec& spec, const std::vector<double>& x, const std::vector<double>& y);

}  // namespace tl::viz
