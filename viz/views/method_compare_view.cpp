// The method comparison view (lessons 05, 07): one bar per fine-tuning method, one colour per method (palette),
// in four panels - test accuracy, trainable parameters (log), peak memory, time per step - and the full table
// below. Reads method_compare's table "methods" (engine/experiments/peft_experiments.cpp); a peft_finetune
// result (scalars accuracy_after, trainable_params, seconds; argument method) is drawn as a one-method table.
#include <imgui.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plot/bars.hpp"
#include "plot/palette.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

struct Panel {
    const char* column;  // in the "methods" table
    const char* label;   // y axis, with units
    ScaleKind scale;
};

constexpr Panel kPanels[] = {{"accuracy_after", "test accuracy (%)", ScaleKind::linear},
                             {"trainable", "trainable parameters (log)", ScaleKind::log10},
                             {"peak_mib", "peak training memory (MiB)", ScaleKind::linear},
                             {"ms_per_step", "time per step (ms)", ScaleKind::linear}};

// The "methods" table, or one row built from a single peft_finetune run.
Table methods_table(const Result& r) {
    if (const Table* t = r.find_table("methods")) return *t;
    Table t{"methods", {"method", "accuracy_after", "trainable", "trainable_percent"}, {}};
    const Scalar* acc = r.find_scalar("accuracy_after");
    if (!acc) return t;
    std::string method = "method";
    for (const auto& [k, v] : r.args)
        if (k == "method") method = v;
    t.rows.push_back({method, acc->value, r.scalar_or("trainable_params", NAN), r.scalar_or("trainable_percent", NAN)});
    return t;
}

void bar_panel(const ViewContext& ctx, const Table& t, const Panel& panel, float height) {
    const std::vector<std::string> methods = column_text(t, "method");
    const std::vector<double> v = column_numbers(t, panel.column);
    std::vector<double> range_values = v;
    if (panel.scale == ScaleKind::linear) range_values.push_back(0);
    if (std::string(panel.column) == "accuracy_after") range_values.push_back(100);
    PlotSpec spec{std::string("compare_") + panel.column, axis("method", ScaleKind::linear, {}),
                  axis(panel.label, panel.scale, padded_range(range_values, panel.scale)), {0, height}};
    spec.x.categories = methods;
    if (panel.scale == ScaleKind::linear) spec.y.range.lo = 0;
    Plot p(spec, ctx.log);
    if (v.empty()) return plot_note(p, std::string("no '") + panel.column + "' column in this result");
    for (std::size_t i = 0; i < methods.size(); ++i) {  // one series per method: its own colour
        std::vector<double> only(methods.size(), NAN);
        only[i] = v[i];
        plot_bars(p, {.name = methods[i], .width = 0.7, .y_label = panel.label}, only, methods);
    }
}

void numbers_table(const Table& t, float height) {
    const char* const kShown[] = {"method", "accuracy_after", "forgetting", "trainable", "trainable_percent",
                                  "adapter_bytes", "peak_mib", "ms_per_step", "latency_ms", "latency_unmerged_ms"};
    std::vector<int> cols;
    for (const char* c : kShown)
        if (column_index(t, c) >= 0) cols.push_back(column_index(t, c));
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersInnerV;
    if (cols.empty() || !ImGui::BeginTable("compare_table", int(cols.size()), flags, {0, height})) return;
    for (int c : cols) ImGui::TableSetupColumn(t.columns[std::size_t(c)].c_str());
    ImGui::TableHeadersRow();
    for (const auto& row : t.rows)
        for (std::size_t k = 0; k < cols.size(); ++k) {
            ImGui::TableNextColumn();
            const Cell& c = row[std::size_t(cols[k])];
            if (k == 0) {
                const Rgb m = palette_rgb(cell_text(c));
                ImGui::TextColored({m.r / 255.f, m.g / 255.f, m.b / 255.f, 1}, "%s", cell_text(c).c_str());
            } else {
                ImGui::TextUnformatted(std::holds_alternative<double>(c) ? format_value(cell_number(c)).c_str()
                                                                         : cell_text(c).c_str());
            }
        }
    ImGui::EndTable();
}

}  // namespace

void draw_method_compare_view(const ViewContext& ctx) {
    view_header(ctx, views().at("method_compare"));
    const Table t = methods_table(ctx.result);
    if (t.rows.empty()) missing_note("a 'methods' table (method_compare) or accuracy_after (peft_finetune)");
    const float space = plot_space(ctx.takeaway);
    const float h = std::max(150.0f, space * 0.36f);
    if (ImGui::BeginTable("compare_grid", 2, ImGuiTableFlags_SizingStretchSame)) {
        for (const Panel& panel : kPanels) {
            ImGui::TableNextColumn();
            bar_panel(ctx, t, panel, h);
        }
        ImGui::EndTable();
    }
    if (const Scalar* before = ctx.result.find_scalar("accuracy_before"))
        ImGui::Text("before fine-tuning: %.1f %% on the task%s", before->value,
                    ctx.result.find_scalar("task_a_before") ? "; forgetting = points lost on task_a" : "");
    numbers_table(t, std::max(80.0f, plot_space(ctx.takeaway) - 6));
    view_footer(ctx);
}

}  // namespace tl::viz
