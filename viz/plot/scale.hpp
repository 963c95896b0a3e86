// Plot maths with no window: data ranges, linear and log10 axis maps (data <-> pixel), "nice" tick positions
// and tick labels. Everything the plotting module draws goes through these; tests/viz/plot_math_test.cpp checks
// them against closed forms. Drawing lives in axes.hpp.
#pragma once
#include <string>
#include <vector>

namespace tl::viz {

enum class ScaleKind { linear, log10 };

struct Range {
    double lo = 0, hi = 1;
    double span() const { return hi - lo; }
};

// Maps data values on [lo, hi] onto pixels [px_lo, px_hi] (px_hi < px_lo for a y axis, screen y grows down).
// log10: position is linear in log10(v); values <= 0 map to px_lo (there is nothing to draw).
struct AxisMap {
    ScaleKind kind = ScaleKind::linear;
    double lo = 0, hi = 1;
    float px_lo = 0, px_hi = 1;

    float to_px(double v) const;
    double from_px(float px) const;
};

struct Tick {
    double value = 0;
    std::string label;
    bool is_major = true;  // minor ticks (log axes: 2..9 x 10^k) get a grid line but no label
};

// The step among {1, 2, 5} x 10^k giving at most max_ticks intervals over span (span > 0).
double nice_step(double span, int max_ticks);
// Multiples of nice_step(hi - lo) inside [lo, hi], labelled with just enough decimals to tell them apart.
std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks);
// Powers of ten inside [lo, hi] (every k-th when there are many decades); 2..9 x 10^k as minor ticks when the
// range spans few decades; when no power of ten falls inside, the linear ticks of the range instead.
std::vector<Tick> log_ticks(double lo, double hi, int max_ticks);
std::vector<Tick> axis_ticks(ScaleKind kind, double lo, double hi, int max_ticks);

// A short label: 3 significant digits, k/M/G suffixes from 1e4, scientific below 1e-3.
std::string format_value(double v);
// The label for a tick on a grid of the given step: enough decimals for the step, no trailing noise.
std::string format_tick(double v, double step);

// The range of the finite values (positive ones for log10) with a small margin; a degenerate or empty set gets
// a unit-wide range around its value so that axes always have something to show.
Range padded_range(const std::vector<double>& values, ScaleKind kind, double margin_fraction = 0.05);
Range merge_ranges(const Range& a, const Range& b);

}  // namespace tl::viz
