// Showing one saved Result with one view, no experiment run: `tunelab gui --result FILE.json --view NAME`
// (interactive, or straight to a PNG with --screenshot), and render_result() for tests and docs figures.
// The lesson browser with its worker thread is gui.cpp; this file needs only the trace library.
#pragma once
#include <string>

#include "app/style.hpp"
#include "app/window.hpp"
#include "plot/axes.hpp"
#include "trace/result.hpp"
#include "views/view.hpp"

namespace tl::viz {

struct ResultViewOptions {
    std::string view = "auto";
    std::string title, takeaway;  // empty: the view's own title, no takeaway
    Theme theme = Theme::dark;
    Script script = Script::latin;
    int width = 1280, height = 800;
};

struct Snapshot {
    Image image;
    PlotLog plots;  // where each plot was drawn, in image pixels
};

// Opens a window, draws a few frames (layout settles: tables size their columns on the first), captures the last.
Snapshot render_result(const Result& r, const ResultViewOptions& o);
// Interactive window until closed. Returns the exit code (0).
int show_result(const Result& r, const ResultViewOptions& o);

// The view filling the whole ImGui viewport (one borderless window), as in screenshots.
void draw_view_fullscreen(const ViewInfo& view, const ViewContext& ctx);
// Frames a screenshot renders before it captures: ImGui tables measure their columns on the first frames.
inline constexpr int kSettleFrames = 4;

}  // namespace tl::viz
