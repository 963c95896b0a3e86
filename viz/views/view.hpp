// Views: one file each under viz/views/, each a function that draws a Result into the current ImGui region,
// found by the run block's `view:` name through a small registry. A new view (formats, lora sweep, slerp ...)
// is a new file plus one line in view_registry.cpp. Shared pieces every view uses: view_header/view_footer.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "plot/axes.hpp"
#include "trace/result.hpp"

namespace tl::viz {

enum class RunState { done, running, cancelled };

struct ViewContext {
    const Result& result;
    std::string title;     // the question the step asks; the view's own title when empty
    std::string takeaway;  // the lesson's one line under the plot
    RunState state = RunState::done;
    PlotLog* log = nullptr;  // where plots record their rectangles and maps (tests, docs); may be null
};

using ViewFn = std::function<void(const ViewContext&)>;

struct ViewInfo {
    std::string name;   // as written after `view:` in a run block
    std::string title;  // default question, e.g. "How does training progress?"
    std::string help;   // how to read the view, shown by the (?) marker
    ViewFn draw;
};

class ViewRegistry {
public:
    void add(ViewInfo info);  // InternalError on a duplicate name
    const ViewInfo* find(const std::string& name) const;
    const ViewInfo& at(const std::string& name) const;  // tl::Error listing the known views
    const std::vector<ViewInfo>& all() const { return infos_; }

private:
    std::vector<ViewInfo> infos_;
};

// The built-in views, registered on first use.
const ViewRegistry& views();

// Title line with a (?) help marker, and the state of a live run. Call first in a view.
void view_header(const ViewContext& ctx, const ViewInfo& info);
// The takeaway line (wrapped) under the plots. Call last in a view.
void view_footer(const ViewContext& ctx);
void help_marker(const std::string& text);

// The built-in views' draw functions (one file each).
void draw_dashboard_view(const ViewContext& ctx);
void draw_auto_view(const ViewContext& ctx);

}  // namespace tl::viz
