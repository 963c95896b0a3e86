// A plot frame on ImDrawList: reserves a rectangle in the current ImGui window, draws background, grid, ticks,
// tick labels and axis labels, maps data to pixels and collects hover read-outs from the series drawn into it.
// Series drawers are beside it, one file per kind (lines, bars, area, heatmap, histogram, legend); the maths
// (ticks, log scales) is scale.hpp. Usage:  Plot p(spec);  plot_line(p, ...);  draw_legend(p, ...);  (dtor ends it)
#pragma once
#include <imgui.h>

#include <string>
#include <vector>

#include "plot/scale.hpp"

namespace tl::viz {

enum class HoverReach { near, anywhere };

struct AxisSpec {
    std::string label;                    // with units, e.g. "step" or "memory (MiB)"
    ScaleKind scale = ScaleKind::linear;
    Range range;                          // data range shown (see padded_range); lo > hi flips the axis
    std::vector<std::string> categories;  // non-empty: ticks at 0, 1, ... labelled with these (bar charts)
};

// A numeric axis: label (with units), scale and the data range shown.
inline AxisSpec axis(std::string label, ScaleKind scale, Range range) { return {std::move(label), scale, range, {}}; }

struct PlotSpec {
    std::string id;           // unique within the window (ImGui id of the hover area)
    AxisSpec x, y;
    ImVec2 size{0, 240};      // <= 0: the available width / height
    float reserve_right = 0;  // extra pixels on the right, e.g. for a heatmap's colour bar
};

// Where a plot was drawn and how it mapped data, for screenshot tests and docs (pixels of the window).
struct PlotRecord {
    std::string id;
    float left = 0, top = 0, right = 0, bottom = 0;
    AxisMap x, y;
};
using PlotLog = std::vector<PlotRecord>;

class Plot {
public:
    explicit Plot(const PlotSpec& spec, PlotLog* log = nullptr);
    ~Plot();  // draws the frame on top of the data and the hover read-out
    Plot(const Plot&) = delete;
    Plot& operator=(const Plot&) = delete;

    ImVec2 to_px(double x, double y) const { return {x_.to_px(x), y_.to_px(y)}; }
    const AxisMap& x_map() const { return x_; }
    const AxisMap& y_map() const { return y_; }
    const PlotSpec& spec() const { return spec_; }
    ImDrawList* draw_list() const { return dl_; }
    ImVec2 min() const { return min_; }  // the data rectangle
    ImVec2 max() const { return max_; }
    bool is_hovered() const { return is_hovered_; }
    ImVec2 mouse() const { return mouse_; }

    // A read-out candidate at pixel px: the one nearest the mouse (within 24 px, or anywhere in the plot for
    // HoverReach::anywhere, e.g. the area under the mouse) is shown in the tooltip.
    void offer_hover(ImVec2 px, const std::string& text, HoverReach reach = HoverReach::near);

private:
    void draw_axes_labels();
    PlotSpec spec_;
    ImDrawList* dl_ = nullptr;
    ImVec2 min_, max_;
    AxisMap x_, y_;
    bool is_hovered_ = false;
    ImVec2 mouse_;
    float best_d2_ = 24.0f * 24.0f;
    ImVec2 best_px_;
    std::string best_text_;
};

// Text of a data coordinate for read-outs: "label = value".
std::string readout(const std::string& label, double v);

}  // namespace tl::viz
