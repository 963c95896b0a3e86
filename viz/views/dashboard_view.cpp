// The training dashboard: loss (train, and validation when present), learning rate, gradient norm, tokens/s
// and memory by category as a stacked area, all against the optimizer step. It reads these Result series (the
// names the training experiments stream live through RunContext::point): train_loss, val_loss (or any other
// "*loss*"), lr, grad_norm, tokens_per_s, mem_<category> (or memory_<category>) in bytes (weights, grads, ...),
// as engine/experiments/dashboard_recorder.cpp writes them.
#include <imgui.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plot/area.hpp"
#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "views/view.hpp"

namespace tl::viz {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::vector<const Series*> matching(const Result& r, bool (*pred)(const std::string&)) {
    std::vector<const Series*> out;
    for (const Series& s : r.series)
        if (pred(s.name)) out.push_back(&s);
    return out;
}

bool is_loss(const std::string& n) { return contains(n, "loss"); }
bool is_lr(const std::string& n) { return n == "lr" || n == "learning_rate"; }
bool is_grad_norm(const std::string& n) { return n == "grad_norm"; }
bool is_throughput(const std::string& n) { return n == "tokens_per_s"; }
bool is_memory(const std::string& n) { return starts_with(n, "mem_") || starts_with(n, "memory_"); }
std::string category_of(const std::string& n) { return n.substr(starts_with(n, "mem_") ? 4 : 7); }

Range x_range_of(const std::vector<const Series*>& ss) {
    std::vector<double> xs;
    for (const Series* s : ss) xs.insert(xs.end(), s->x.begin(), s->x.end());
    return padded_range(xs, ScaleKind::linear, 0.02);
}

Range y_range_of(const std::vector<const Series*>& ss, ScaleKind kind, bool from_zero) {
    std::vector<double> ys;
    for (const Series* s : ss) ys.insert(ys.end(), s->y.begin(), s->y.end());
    if (from_zero) ys.push_back(0.0);
    return padded_range(ys, kind);
}

// One panel of line plots, or a frame that says the data is not there (yet).
void line_panel(const ViewContext& ctx, const char* id, const std::vector<const Series*>& ss, const char* y_label,
                float height, bool from_zero) {
    PlotSpec spec{id, axis("step", ScaleKind::linear, x_range_of(ss)), axis(y_label, ScaleKind::linear, {}), {0, height}};
    spec.y.range = y_range_of(ss, ScaleKind::linear, from_zero);
    Plot p(spec, ctx.log);
    std::vector<LegendEntry> legend;
    for (const Series* s : ss) {
        const Marker m = s->x.size() <= 30 ? Marker::circle : Marker::none;  // sparse (validation) points
        plot_line(p, {.name = s->name, .marker = m, .x_label = "step", .y_label = y_label}, s->x, s->y);
        legend.push_back({s->name});
    }
    if (ss.empty()) {
        const char* msg = ctx.state == RunState::running ? "waiting for data ..." : "not recorded by this experiment";
        p.draw_list()->AddText({p.min().x + 8, p.min().y + 8}, ImGui::GetColorU32(ImGuiCol_TextDisabled), msg);
    }
    if (ss.size() > 1 || (id == std::string("dashboard_loss") && !ss.empty())) draw_legend(p, legend);
}

void memory_panel(const ViewContext& ctx, const std::vector<const Series*>& mem, float height) {
    std::vector<AreaLayer> layers;
    std::vector<double> x = mem.empty() ? std::vector<double>{} : mem.front()->x;
    for (const Series* s : mem) {
        if (s->x.size() < x.size()) x.resize(s->x.size());  // live series may be a point apart
        AreaLayer l{category_of(s->name), {}};
        bool is_used = false;
        for (double v : s->y) l.y.push_back(v / kMiB), is_used = is_used || v != 0;
        if (is_used) layers.push_back(std::move(l));  // categories this run never allocated stay out of the legend
    }
    const auto totals = stack_layers(layers, x.size());
    std::vector<double> top = totals.empty() ? std::vector<double>{} : totals.back();
    top.push_back(0.0);
    PlotSpec spec{"dashboard_memory", axis("step", ScaleKind::linear, padded_range(x, ScaleKind::linear, 0.02)),
                  axis("memory (MiB)", ScaleKind::linear, padded_range(top, ScaleKind::linear)), {0, height}};
    Plot p(spec, ctx.log);
    plot_stacked_area(p, x, layers, "step", "MiB");
    std::vector<LegendEntry> legend;
    for (std::size_t k = layers.size(); k-- > 0;) legend.push_back({layers[k].name, 0, Swatch::box});
    if (layers.empty())
        p.draw_list()->AddText({p.min().x + 8, p.min().y + 8}, ImGui::GetColorU32(ImGuiCol_TextDisabled),
                               "no memory series in this result");
    draw_legend(p, legend, Corner::bottom_right);
}

}  // namespace

void draw_dashboard_view(const ViewContext& ctx) {
    view_header(ctx, views().at("dashboard"));
    const Result& r = ctx.result;
    const float avail = ImGui::GetContentRegionAvail().y;
    const float footer = ctx.takeaway.empty() ? 0 : 3 * ImGui::GetTextLineHeightWithSpacing();
    const float big = std::max(200.0f, (avail - footer) * 0.42f);
    const float small = std::max(150.0f, (avail - footer - big) / 2 - ImGui::GetStyle().ItemSpacing.y * 2);

    line_panel(ctx, "dashboard_loss", matching(r, is_loss), "loss (nats/token)", big, false);
    if (ImGui::BeginTable("dashboard_grid", 2, ImGuiTableFlags_SizingStretchSame)) {
        ImGui::TableNextColumn();
        line_panel(ctx, "dashboard_lr", matching(r, is_lr), "learning rate", small, true);
        ImGui::TableNextColumn();
        line_panel(ctx, "dashboard_grad_norm", matching(r, is_grad_norm), "gradient norm", small, true);
        ImGui::TableNextColumn();
        line_panel(ctx, "dashboard_tokens_per_s", matching(r, is_throughput), "tokens/s", small, true);
        ImGui::TableNextColumn();
        memory_panel(ctx, matching(r, is_memory), small);
        ImGui::EndTable();
    }
    view_footer(ctx);
}

}  // namespace tl::viz
