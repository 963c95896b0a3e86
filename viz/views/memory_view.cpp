// The memory view (lesson 02): stacked bars per memory category for the course formula (N x 3 x M, drawn as
// equal thirds of weights, gradients and optimizer), the detailed prediction and the measured peak, with the
// GPU's memory as a line for a real model ("7B, QLoRA, batch 4, 2k tokens: fits on 24 GB?"). Reads the results
// of memory_breakdown and memory_real_model (engine/experiments/memory_experiments.cpp): table "categories"
// (category, predicted_bytes[, measured_bytes]), table "terms", scalars course_training_bytes, gpu_bytes, fits.
#include <imgui.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "plot/stacked_bars.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

struct Unit {
    double bytes;
    const char* name;
};

// GB (1e9, as GPUs are sold) for real models, MiB for tunelab's small presets.
Unit unit_for(double max_bytes) { return max_bytes >= 1e9 ? Unit{1e9, "GB"} : Unit{1024.0 * 1024.0, "MiB"}; }

struct Bars {
    std::vector<std::string> columns;  // "course formula", "predicted", "measured" (those present)
    std::vector<StackLayer> layers;    // one per memory category
    double max_total = 0;
};

Bars collect(const Result& r) {
    Bars b;
    const Table* cats = r.find_table("categories");
    const Scalar* course = r.find_scalar("course_training_bytes");
    std::vector<std::string> names = cats ? column_text(*cats, "category") : std::vector<std::string>{};
    std::vector<double> predicted = cats ? column_numbers(*cats, "predicted_bytes") : std::vector<double>{};
    std::vector<double> measured = cats ? column_numbers(*cats, "measured_bytes") : std::vector<double>{};
    const bool has_measured = std::any_of(measured.begin(), measured.end(), [](double v) { return v == v; });
    if (course) b.columns.push_back("course formula");
    if (!predicted.empty()) b.columns.push_back("predicted");
    if (has_measured) b.columns.push_back("measured");
    for (const char* third : {"weights", "grads", "optimizer"})
        if (std::find(names.begin(), names.end(), third) == names.end()) names.push_back(third), predicted.push_back(0);
    for (std::size_t i = 0; i < names.size(); ++i) {
        StackLayer l{names[i], {}};
        const bool is_third = names[i] == "weights" || names[i] == "grads" || names[i] == "optimizer";
        if (course) l.values.push_back(is_third ? course->value / 3 : 0);
        if (!predicted.empty() && cats) l.values.push_back(i < predicted.size() ? predicted[i] : 0);
        if (has_measured) l.values.push_back(i < measured.size() ? measured[i] : 0);
        b.layers.push_back(std::move(l));
    }
    for (std::size_t c = 0; c < b.columns.size(); ++c) {
        double total = 0;
        for (const StackLayer& l : b.layers) total += c < l.values.size() && l.values[c] == l.values[c] ? l.values[c] : 0;
        b.max_total = std::max(b.max_total, total);
    }
    return b;
}

void draw_bars(const ViewContext& ctx, Bars& b, float height) {
    const Scalar* gpu = ctx.result.find_scalar("gpu_bytes");
    const Unit u = unit_for(std::max(b.max_total, gpu ? gpu->value : 0.0));
    for (StackLayer& l : b.layers)
        for (double& v : l.values) v /= u.bytes;
    std::vector<StackLayer> used;  // categories that hold nothing stay out of the legend
    for (const StackLayer& l : b.layers)
        if (std::any_of(l.values.begin(), l.values.end(), [](double v) { return v > 0; })) used.push_back(l);
    std::vector<double> tops{0.0, b.max_total / u.bytes};
    if (gpu) tops.push_back(gpu->value / u.bytes);
    PlotSpec spec{"memory_bars", axis("", ScaleKind::linear, {}), axis(std::string("memory (") + u.name + ")",
                  ScaleKind::linear, padded_range(tops, ScaleKind::linear)), {0, height}};
    spec.x.categories = b.columns;
    spec.y.range.lo = 0;
    Plot p(spec, ctx.log);
    plot_stacked_bars(p, used, b.columns, u.name);
    if (gpu) plot_hline(p, {.name = "GPU " + format_value(gpu->value / u.bytes) + " " + u.name,
                            .color = IM_COL32(220, 50, 50, 255), .style = LineStyle::dashed, .y_label = u.name},
                        gpu->value / u.bytes);
    if (b.columns.empty()) plot_note(p, "no 'categories' table or course_training_bytes in this result");
    std::vector<LegendEntry> legend;
    for (std::size_t k = used.size(); k-- > 0;) legend.push_back({used[k].name, 0, Swatch::box});
    draw_legend(p, legend, Corner::top_left);
}

void draw_verdict(const Result& r) {
    const Scalar* fits = r.find_scalar("fits");
    const Scalar* gpu = r.find_scalar("gpu_bytes");
    const Scalar* total = r.find_scalar("predicted_total_bytes");
    if (fits && gpu && total)
        ImGui::TextColored(fits->value > 0 ? ImVec4{0.3f, 0.8f, 0.3f, 1} : ImVec4{0.9f, 0.3f, 0.3f, 1},
                           "%s: predicted %.1f GB on a %.0f GB GPU", fits->value > 0 ? "Fits" : "Does not fit",
                           total->value / 1e9, gpu->value / 1e9);
    if (const Scalar* m = r.find_scalar("measured_peak_bytes"); m && total)
        ImGui::Text("measured peak %.2f MiB, predicted %.2f MiB (%+.1f%%)", m->value / 1048576.0,
                    total->value / 1048576.0, 100.0 * (total->value - m->value) / std::max(m->value, 1.0));
}

void draw_terms(const Result& r, float height) {
    const Table* t = r.find_table("terms");
    if (!t) return missing_note("the 'terms' table (the formula of each term)");
    const std::vector<std::string> names = column_text(*t, "term"), cats = column_text(*t, "category"),
                                   formulas = column_text(*t, "formula");
    const std::vector<double> bytes = column_numbers(*t, "bytes");
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersInnerV;
    if (!ImGui::BeginTable("memory_terms", 4, flags, {0, height})) return;
    for (const char* c : {"term", "category", "bytes", "formula"}) ImGui::TableSetupColumn(c);
    ImGui::TableHeadersRow();
    for (std::size_t i = 0; i < names.size(); ++i) {
        ImGui::TableNextColumn(), ImGui::TextUnformatted(names[i].c_str());
        ImGui::TableNextColumn(), ImGui::TextUnformatted(i < cats.size() ? cats[i].c_str() : "");
        ImGui::TableNextColumn(), ImGui::TextUnformatted(i < bytes.size() ? format_value(bytes[i]).c_str() : "");
        ImGui::TableNextColumn(), ImGui::TextUnformatted(i < formulas.size() ? formulas[i].c_str() : "");
    }
    ImGui::EndTable();
}

}  // namespace

void draw_memory_view(const ViewContext& ctx) {
    view_header(ctx, views().at("memory"));
    const float space = plot_space(ctx.takeaway);
    Bars bars = collect(ctx.result);
    draw_bars(ctx, bars, std::max(220.0f, space * 0.62f));
    draw_verdict(ctx.result);
    draw_terms(ctx.result, std::max(80.0f, plot_space(ctx.takeaway) - 8));
    view_footer(ctx);
}

}  // namespace tl::viz
