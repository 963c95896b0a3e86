// Small helpers the course views share (memory, lora_sweep, method_compare, formats, slerp, ptq_qat): reading
// table columns by name, the "not in this result" note, panel heights. Views degrade through these: a column or
// series that is absent gives an empty vector or a note, never a crash. The views themselves: *_view.cpp.
#pragma once
#include <imgui.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "plot/axes.hpp"
#include "plot/heatmap.hpp"
#include "trace/result.hpp"
#include "views/view.hpp"

namespace tl::viz {

// Index of a column, or -1.
inline int column_index(const Table& t, const std::string& name) {
    for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i] == name) return int(i);
    return -1;
}

inline double cell_number(const Cell& c) {
    if (const double* v = std::get_if<double>(&c)) return *v;
    return std::numeric_limits<double>::quiet_NaN();
}

// A column's numbers (NaN for text cells); empty when the column is absent.
inline std::vector<double> column_numbers(const Table& t, const std::string& name) {
    const int k = column_index(t, name);
    std::vector<double> out;
    if (k < 0) return out;
    for (const auto& row : t.rows) out.push_back(std::size_t(k) < row.size() ? cell_number(row[k]) : NAN);
    return out;
}

// A column as text (numbers formatted); empty when the column is absent.
inline std::vector<std::string> column_text(const Table& t, const std::string& name) {
    const int k = column_index(t, name);
    std::vector<std::string> out;
    if (k < 0) return out;
    for (const auto& row : t.rows) out.push_back(std::size_t(k) < row.size() ? cell_text(row[k]) : "");
    return out;
}

// A note inside a plot's rectangle, e.g. "no 'ranks' table in this result".
inline void plot_note(Plot& p, const std::string& text, int line = 0) {
    const float h = ImGui::GetTextLineHeightWithSpacing();
    p.draw_list()->AddText({p.min().x + 8, p.min().y + 6 + h * float(line)},
                           ImGui::GetColorU32(ImGuiCol_TextDisabled), text.c_str());
}

// A note as a line of text, for what a view would draw but the result does not hold.
inline void missing_note(const std::string& what) { ImGui::TextDisabled("not in this result: %s", what.c_str()); }

struct MatrixPanel {
    std::string id, x_label, y_label, value_label;
    float height = 240;
};

// A named matrix as a viridis heatmap with its row/column labels and a colour bar; false when it is absent or
// its size does not match (the caller names what is missing).
inline bool matrix_panel(const ViewContext& ctx, const std::string& name, const MatrixPanel& panel) {
    const Matrix* m = ctx.result.find_matrix(name);
    if (!m || m->rows <= 0 || m->rows * m->cols != std::int64_t(m->values.size())) return false;
    HeatmapSpec hs{name, panel.value_label, m->rows, m->cols, &m->values, &m->row_labels, &m->col_labels,
                   ColorMap::sequential};
    PlotSpec spec{panel.id, axis("", ScaleKind::linear, {}), axis("", ScaleKind::linear, {}), {0, panel.height},
                  kColorBarWidth};
    heatmap_axes(hs, spec.x, spec.y);
    spec.x.label = panel.x_label, spec.y.label = panel.y_label;
    Plot p(spec, ctx.log);
    plot_heatmap(p, hs);
    return true;
}

// Height left for plots once the takeaway (about three lines) is kept free.
inline float plot_space(const std::string& takeaway) {
    const float footer = takeaway.empty() ? 0 : 3 * ImGui::GetTextLineHeightWithSpacing();
    return ImGui::GetContentRegionAvail().y - footer;
}

}  // namespace tl::viz
