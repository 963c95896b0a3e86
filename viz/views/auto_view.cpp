// The generic view: draws any Result. Scalars as a list, each group of Series sharing an x_label as one line
// plot (log y offered, on by default when the data spans over three decades), Tables as ImGui tables,
// Histograms as bar plots, Matrices as heatmaps, Texts as wrapped text. Specific views replace it per lesson.
#include <imgui.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "plot/heatmap.hpp"
#include "plot/histogram.hpp"
#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "views/view.hpp"

namespace tl::viz {

namespace {

constexpr float kPlotHeight = 220.0f;
constexpr float kTwoColumnWidth = 900.0f;  // wider centre regions put plots side by side

// Log scale by default when every value is positive and max/min exceeds the ratio.
bool spans_ratio(const std::vector<double>& v, double ratio) {
    double lo = INFINITY, hi = 0;
    for (double a : v) {
        if (!std::isfinite(a)) continue;
        if (a <= 0) return false;
        lo = std::min(lo, a), hi = std::max(hi, a);
    }
    return hi > 0 && hi / lo > ratio;
}

void draw_scalars(const Result& r) {
    if (r.scalars.empty()) return;
    if (!ImGui::BeginTable("scalars", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                                             ImGuiTableFlags_SizingFixedFit))
        return;
    for (const Scalar& s : r.scalars) {
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(s.name.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%s %s", cell_text(s.value, 6).c_str(), s.unit.c_str());
    }
    ImGui::EndTable();
}

void draw_series_group(const ViewContext& ctx, const std::string& x_label, const std::vector<const Series*>& ss) {
    std::vector<double> xs, ys;
    std::string y_label = ss.front()->y_label.empty() ? "value" : ss.front()->y_label;
    for (const Series* s : ss) {
        xs.insert(xs.end(), s->x.begin(), s->x.end());
        ys.insert(ys.end(), s->y.begin(), s->y.end());
        if (s->y_label != ss.front()->y_label) y_label = "value";
    }
    ImGui::PushID(x_label.c_str());
    ImGuiStorage* st = ImGui::GetStateStorage();
    bool* is_log_x = st->GetBoolRef(ImGui::GetID("log_x"), spans_ratio(xs, 31.9));  // e.g. ranks 1..64
    bool* is_log_y = st->GetBoolRef(ImGui::GetID("log_y"), spans_ratio(ys, 1e3));
    ImGui::Checkbox("log x", is_log_x);
    ImGui::SameLine();
    ImGui::Checkbox("log y", is_log_y);
    const ScaleKind kx = *is_log_x ? ScaleKind::log10 : ScaleKind::linear;
    const ScaleKind ky = *is_log_y ? ScaleKind::log10 : ScaleKind::linear;
    PlotSpec spec{"auto_series_" + x_label, axis(x_label, kx, padded_range(xs, kx, 0.02)),
                  axis(y_label, ky, padded_range(ys, ky)), {0, kPlotHeight}};
    {
        Plot p(spec, ctx.log);
        std::vector<LegendEntry> legend;
        for (const Series* s : ss) {
            const Marker m = s->x.size() <= 24 ? Marker::circle : Marker::none;
            plot_line(p, {.name = s->name, .marker = m, .x_label = x_label, .y_label = y_label}, s->x, s->y);
            legend.push_back({s->name});
        }
        draw_legend(p, legend);
    }
    ImGui::PopID();
}

void draw_table(const Table& t) {
    ImGui::TextUnformatted(t.name.c_str());
    if (t.columns.empty()) return;
    const int n = int(std::min<std::size_t>(t.columns.size(), 64));  // ImGui's column limit
    if (!ImGui::BeginTable(t.name.c_str(), n, ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg |
                                                  ImGuiTableFlags_SizingFixedFit))
        return;
    for (int c = 0; c < n; ++c) ImGui::TableSetupColumn(t.columns[std::size_t(c)].c_str());
    ImGui::TableHeadersRow();
    for (const auto& row : t.rows) {
        ImGui::TableNextRow();
        for (int c = 0; c < n && std::size_t(c) < row.size(); ++c) {
            ImGui::TableSetColumnIndex(c);
            ImGui::TextUnformatted(cell_text(row[std::size_t(c)]).c_str());
        }
    }
    ImGui::EndTable();
}

void draw_histogram(const ViewContext& ctx, const Histogram& h) {
    std::vector<double> counts = h.counts;
    counts.push_back(0.0);
    PlotSpec spec{"auto_hist_" + h.name, axis(h.name, ScaleKind::linear, padded_range(h.edges, ScaleKind::linear, 0.01)),
                  axis("count", ScaleKind::linear, padded_range(counts, ScaleKind::linear)), {0, kPlotHeight}};
    Plot p(spec, ctx.log);
    plot_histogram(p, {.name = h.name, .x_label = h.name}, h.edges, h.counts);
}

void draw_matrix(const ViewContext& ctx, const Matrix& m) {
    HeatmapSpec hs{m.name, "value", m.rows, m.cols, &m.values, &m.row_labels, &m.col_labels, ColorMap::sequential};
    for (double v : m.values)
        if (v < 0) hs.map = ColorMap::diverging;  // signed data: zero in the middle of the scale
    PlotSpec spec{"auto_matrix_" + m.name, axis("column", ScaleKind::linear, {}), axis("row", ScaleKind::linear, {}),
                  {0, std::clamp(float(m.rows) * 18.0f + 60.0f, 160.0f, 420.0f)}, kColorBarWidth};
    heatmap_axes(hs, spec.x, spec.y);
    spec.x.label = m.name + " (columns)";
    Plot p(spec, ctx.log);
    plot_heatmap(p, hs);
}

}  // namespace

void draw_auto_view(const ViewContext& ctx) {
    view_header(ctx, views().at("auto"));
    const Result& r = ctx.result;
    draw_scalars(r);
    std::map<std::string, std::vector<const Series*>> groups;  // by x label, in name order
    for (const Series& s : r.series) groups[s.x_label.empty() ? "x" : s.x_label].push_back(&s);
    std::vector<std::function<void()>> plots;  // laid out in one or two columns
    for (const auto& [x_label, ss] : groups) plots.push_back([&] { draw_series_group(ctx, x_label, ss); });
    for (const Histogram& h : r.histograms) plots.push_back([&] { draw_histogram(ctx, h); });
    for (const Matrix& m : r.matrices) plots.push_back([&] { draw_matrix(ctx, m); });
    const int columns = ImGui::GetContentRegionAvail().x >= kTwoColumnWidth && plots.size() > 1 ? 2 : 1;
    if (!plots.empty() && ImGui::BeginTable("auto_plots", columns, ImGuiTableFlags_SizingStretchSame)) {
        for (std::size_t i = 0; i < plots.size(); ++i) {
            ImGui::TableNextColumn();
            ImGui::PushID(int(i));
            plots[i]();
            ImGui::PopID();
        }
        ImGui::EndTable();
    }
    for (const Table& t : r.tables) draw_table(t);
    for (const Text& t : r.texts) {
        ImGui::TextDisabled("%s", t.name.c_str());
        ImGui::PushTextWrapPos(0.0f);
        ImGui::TextUnformatted(t.body.c_str());
        ImGui::PopTextWrapPos();
    }
    if (r.scalars.empty() && r.series.empty() && r.tables.empty() && r.histograms.empty() && r.matrices.empty() &&
        r.texts.empty())
        ImGui::TextDisabled(ctx.state == RunState::running ? "waiting for the first results ..." : "the result is empty");
    view_footer(ctx);
}

}  // namespace tl::viz
