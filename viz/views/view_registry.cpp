// The view registry and the header/footer every view shares (see view.hpp).
#include <imgui.h>

#include "core/error.hpp"
#include "views/view.hpp"

namespace tl::viz {

void ViewRegistry::add(ViewInfo info) {
    TL_ASSERT(!find(info.name), "[viz] view '" + info.name + "' registered twice");
    infos_.push_back(std::move(info));
}

const ViewInfo* ViewRegistry::find(const std::string& name) const {
    for (const ViewInfo& v : infos_)
        if (v.name == name) return &v;
    return nullptr;
}

const ViewInfo& ViewRegistry::at(const std::string& name) const {
    if (const ViewInfo* v = find(name)) return *v;
    std::string known;
    for (const ViewInfo& v : infos_) known += (known.empty() ? "" : ", ") + v.name;
    throw Error("[viz] unknown view '" + name + "'; known views: " + known);
}

const ViewRegistry& views() {
    static const ViewRegistry registry = [] {
        ViewRegistry r;
        r.add({"dashboard", "How does training progress?",
               "Training dashboard. Top: training loss (and validation loss when measured) per optimizer step; "
               "it should fall quickly, then flatten. Below: the learning-rate schedule, the global gradient "
               "norm before clipping, throughput in tokens per second, and memory by category as a stacked "
               "area (the top edge is the total). Hover any plot for exact values.",
               draw_dashboard_view});
        r.add({"auto", "What did the experiment measure?",
               "Every part of the result: each group of series sharing an x axis as one line plot, tables, "
               "histograms, matrices as heatmaps (colour bar on the right), scalars and texts. Hover a plot "
               "for exact values; tick 'log y' for a logarithmic y axis.",
               draw_auto_view});
        return r;
    }();
    return registry;
}

void help_marker(const std::string& text) {
    ImGui::SameLine();
    ImGui::TextDisabled("(?)");
    if (ImGui::IsItemHovered()) {
        ImGui::BeginTooltip();
        ImGui::PushTextWrapPos(ImGui::GetFontSize() * 32.0f);
        ImGui::TextUnformatted(text.c_str());
        ImGui::PopTextWrapPos();
        ImGui::EndTooltip();
    }
}

void view_header(const ViewContext& ctx, const ViewInfo& info) {
    const std::string& title = ctx.title.empty() ? info.title : ctx.title;
    ImGui::TextUnformatted(title.c_str());
    help_marker(info.help);
    if (ctx.state == RunState::running) {
        ImGui::SameLine();
        ImGui::TextColored({0.95f, 0.65f, 0.15f, 1}, "  live: the run is in progress");
    } else if (ctx.state == RunState::cancelled || ctx.result.is_cancelled) {
        ImGui::SameLine();
        ImGui::TextColored({0.9f, 0.3f, 0.3f, 1}, "  cancelled: partial result");
    }
    ImGui::Separator();
}

void view_footer(const ViewContext& ctx) {
    if (ctx.takeaway.empty()) return;
    ImGui::Spacing();
    ImGui::PushTextWrapPos(0.0f);
    const ImVec4 bg = ImGui::GetStyleColorVec4(ImGuiCol_WindowBg);
    const bool is_dark = bg.x + bg.y + bg.z < 1.5f;
    ImGui::TextColored(is_dark ? ImVec4{0.55f, 0.85f, 0.55f, 1} : ImVec4{0.1f, 0.45f, 0.1f, 1}, "Takeaway: %s",
                       ctx.takeaway.c_str());
    ImGui::PopTextWrapPos();
}

}  // namespace tl::viz
