// The numeric format explorer (lesson 03, the lecture's Figure 7-6): range and precision of every format on a
// shared log2 axis, one value rounded in every format, and a real model's weights and gradients as log2|x|
// histograms shaded where a format overflows (red) or flushes to zero (blue). Reads format_table (table
// "formats"), format_rounding (scalars value/nearest, text bits, table "every_format") and model_value_histograms
// (histograms weights_log2, grads_log2, scalars log2_format_*, *_overflow, *_flush_to_zero) - whichever is there.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "plot/histogram.hpp"
#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "plot/palette.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

constexpr std::uint32_t kOverflow = IM_COL32(220, 50, 50, 60), kFlush = IM_COL32(60, 110, 230, 60);
constexpr std::uint32_t kWeights = IM_COL32(44, 160, 44, 255), kGrads = IM_COL32(255, 127, 14, 255);

double log2_or_nan(double v) { return v > 0 && std::isfinite(v) ? std::log2(v) : NAN; }

// Where a format's row lies on the log2 axis. Floats: min subnormal .. max, normal range from min normal.
// Integers without a scale: the step is 1, so 2^0 .. max. Code books (nf4, ternary): their codes lie in
// [-max, max] and a per-block scale moves them: a mark at max. Palettes are fitted per tensor: nothing to draw.
struct RowSpan {
    double lo = NAN, normal = NAN, hi = NAN;
    std::string label;  // at the right end
};

RowSpan row_span(const std::string& kind, double max, double min_normal, double min_sub, double eps) {
    RowSpan r{log2_or_nan(min_sub), log2_or_nan(min_normal), log2_or_nan(max), ""};
    if (kind == "integer") r.lo = r.normal = 0, r.label = "step 1 (x scale)";
    else if (kind == "codebook") r.lo = r.normal = r.hi - 0.25, r.label = "codes in [-max, max] (x scale)";
    else if (kind == "palette") r.label = "fitted per tensor";
    else r.label = eps > 0 ? "eps 2^" + format_value(std::log2(eps)) : "";
    if (r.lo != r.lo) r.lo = r.normal;
    return r;
}

// One row per format: the pale bar from min subnormal to max, the dark bar the normal range, a label at the end.
void range_panel(const ViewContext& ctx, const Table& t, float height) {
    const std::vector<std::string> names = column_text(t, "format"), kinds = column_text(t, "kind");
    const std::vector<double> mx = column_numbers(t, "max"), mn = column_numbers(t, "min_normal"),
                              ms = column_numbers(t, "min_subnormal"), eps = column_numbers(t, "epsilon");
    auto at = [](const std::vector<double>& v, std::size_t i) { return i < v.size() ? v[i] : NAN; };
    std::vector<RowSpan> rows;
    std::vector<double> span;
    for (std::size_t i = 0; i < names.size(); ++i) {
        rows.push_back(row_span(i < kinds.size() ? kinds[i] : "float", at(mx, i), at(mn, i), at(ms, i), at(eps, i)));
        for (double v : {rows.back().lo, rows.back().hi})
            if (v == v) span.push_back(v);
    }
    PlotSpec spec{"formats_range", axis("log2 |value|  (the value is 2^x)", ScaleKind::linear,
                  padded_range(span, ScaleKind::linear, 0.02)), axis("format", ScaleKind::linear, {1, 0}), {0, height}};
    spec.y.categories = names;
    spec.reserve_right = 70;  // the labels right of the widest bar
    Plot p(spec, ctx.log);
    if (names.empty()) return plot_note(p, "no 'formats' table (format_table) in this result");
    const double half = 0.32;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const RowSpan& r = rows[i];
        const double y = double(i);
        const ImVec2 end = p.to_px(r.hi == r.hi ? r.hi : 0, y);
        p.draw_list()->PushClipRectFullScreen();
        p.draw_list()->AddText({end.x + 4, end.y - ImGui::GetTextLineHeight() / 2},
                               ImGui::GetColorU32(ImGuiCol_Text), r.label.c_str());
        p.draw_list()->PopClipRect();
        if (!(r.hi == r.hi && r.lo == r.lo)) continue;
        p.draw_list()->AddRectFilled(p.to_px(r.lo, y - half), p.to_px(r.hi, y + half), palette_color(names[i], 0.35f));
        p.draw_list()->AddRectFilled(p.to_px(r.normal, y - half), p.to_px(r.hi, y + half), palette_color(names[i]));
        const ImVec2 m = p.mouse(), a = p.to_px(r.lo, y - half), b = p.to_px(r.hi, y + half);
        if (p.is_hovered() && m.x >= a.x && m.x <= b.x && m.y >= a.y && m.y <= b.y)
            p.offer_hover(m, names[i] + "\nmax = " + format_value(at(mx, i)) + " (2^" + format_value(r.hi) + ")" +
                                 "\nmin normal = " + format_value(at(mn, i)) + "\nmin subnormal = " +
                                 format_value(at(ms, i)) + "\nepsilon = " + format_value(at(eps, i)),
                          HoverReach::anywhere);
    }
}

void rounding_panel(const Result& r, float height) {
    const Scalar *value = r.find_scalar("value"), *nearest = r.find_scalar("nearest");
    if (value && nearest) {
        const Text* bits = r.find_text("bits");
        ImGui::Text("%.10g rounds to %.10g  %s", value->value, nearest->value, bits ? bits->body.c_str() : "");
    }
    const Table* t = r.find_table("every_format");
    if (!t) return missing_note("'every_format' (format_rounding: one value in every format)");
    const char* const kCols[] = {"format", "nearest", "error", "relative_error", "bits"};
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersInnerV;
    if (!ImGui::BeginTable("formats_rounding", 5, flags, {0, height})) return;
    for (const char* c : kCols) ImGui::TableSetupColumn(c);
    ImGui::TableHeadersRow();
    std::vector<std::vector<std::string>> cols;
    for (const char* c : kCols) cols.push_back(column_text(*t, c));
    for (std::size_t i = 0; i < t->rows.size(); ++i)
        for (std::size_t k = 0; k < cols.size(); ++k) {
            ImGui::TableNextColumn();
            const std::string s = i < cols[k].size() ? cols[k][i] : "";
            const Rgb c = palette_rgb(s);
            if (k == 0) ImGui::TextColored({c.r / 255.f, c.g / 255.f, c.b / 255.f, 1}, "%s", s.c_str());
            else ImGui::TextUnformatted(s.c_str());
        }
    ImGui::EndTable();
}

// format_rounding's grid: the gap to the next representable value, relative to the value, on log-log axes.
void gap_panel(const ViewContext& ctx, float height) {
    const Series* gap = ctx.result.find_series("relative_gap");
    PlotSpec spec{"formats_gap", axis("value", ScaleKind::log10, padded_range(gap ? gap->x : std::vector<double>{},
                  ScaleKind::log10)), axis("gap to the next value / value", ScaleKind::log10,
                  padded_range(gap ? gap->y : std::vector<double>{}, ScaleKind::log10)), {0, height}};
    Plot p(spec, ctx.log);
    if (!gap) return plot_note(p, "no 'relative_gap' series (format_rounding)");
    plot_line(p, {.name = "relative gap", .color = palette_color("accuracy"), .style = LineStyle::hidden,
                  .x_label = "value", .y_label = "gap / value"}, gap->x, gap->y);
}

void histogram_panel(const ViewContext& ctx, float height) {
    const Result& r = ctx.result;
    const Histogram *w = r.find_histogram("weights_log2"), *g = r.find_histogram("grads_log2");
    std::vector<double> xs, ys{0};
    for (const Histogram* h : {w, g})
        if (h) xs.insert(xs.end(), h->edges.begin(), h->edges.end()), ys.insert(ys.end(), h->counts.begin(), h->counts.end());
    PlotSpec spec{"formats_hist", axis("log2 |x|", ScaleKind::linear, padded_range(xs, ScaleKind::linear, 0.01)),
                  axis("values per bin", ScaleKind::linear, padded_range(ys, ScaleKind::linear)), {0, height}};
    spec.y.range.lo = 0;
    Plot p(spec, ctx.log);
    if (!w && !g) return plot_note(p, "no weights_log2 / grads_log2 histograms (model_value_histograms)");
    const double top = spec.y.range.hi, lo_x = spec.x.range.lo, hi_x = spec.x.range.hi;
    if (const Scalar* mx = r.find_scalar("log2_format_max"); mx && mx->value < hi_x)
        p.draw_list()->AddRectFilled(p.to_px(mx->value, top), p.to_px(hi_x, 0), kOverflow);
    if (const Scalar* ms = r.find_scalar("log2_format_min_subnormal"); ms && ms->value - 1 > lo_x)
        p.draw_list()->AddRectFilled(p.to_px(lo_x, top), p.to_px(ms->value - 1, 0), kFlush);  // below half of it
    if (const Scalar* mn = r.find_scalar("log2_format_min_normal"))
        p.draw_list()->AddLine(p.to_px(mn->value, 0), p.to_px(mn->value, top), ImGui::GetColorU32(ImGuiCol_TextDisabled));
    if (w) plot_histogram(p, {.name = "weights", .color = kWeights, .alpha = 0.7f, .x_label = "log2 |x|"}, w->edges, w->counts);
    if (g) plot_histogram(p, {.name = "gradients", .color = kGrads, .alpha = 0.7f, .x_label = "log2 |x|"}, g->edges, g->counts);
    std::vector<LegendEntry> legend;
    if (w) legend.push_back({"weights", kWeights, Swatch::box});
    if (g) legend.push_back({"gradients", kGrads, Swatch::box});
    legend.push_back({"overflow", IM_COL32(220, 50, 50, 255), Swatch::box});
    legend.push_back({"flush to zero", IM_COL32(60, 110, 230, 255), Swatch::box});
    draw_legend(p, legend);
}

// How many values the chosen format loses, under the histogram.
void grid_counts_line(const Result& r) {
    if (!r.find_scalar("weights_overflow")) return;
    const Text* tensor = r.find_text("tensor");
    ImGui::TextWrapped("%s: overflow %s weights, %s grads; flush to zero %s weights, %s grads; subnormal %s grads",
                       tensor ? tensor->body.c_str() : "tensor", format_value(r.scalar_or("weights_overflow", NAN)).c_str(),
                       format_value(r.scalar_or("grads_overflow", NAN)).c_str(),
                       format_value(r.scalar_or("weights_flush_to_zero", NAN)).c_str(),
                       format_value(r.scalar_or("grads_flush_to_zero", NAN)).c_str(),
                       format_value(r.scalar_or("grads_subnormal", NAN)).c_str());
}

}  // namespace

void draw_formats_view(const ViewContext& ctx) {
    view_header(ctx, views().at("formats"));
    const Result& r = ctx.result;
    const float space = plot_space(ctx.takeaway), line = ImGui::GetTextLineHeightWithSpacing();
    const bool has_rounding = r.find_table("every_format") || r.find_scalar("nearest");
    const bool has_lower = has_rounding || !r.histograms.empty();
    const Table* formats = r.find_table("formats");
    if (formats) range_panel(ctx, *formats, std::max(200.0f, has_lower ? space * 0.45f : space - 3 * line));
    else missing_note("the 'formats' table (format_table: range and precision per format)");
    if (!has_lower) {  // a format_table result: the rows take the room, the other parts are named
        missing_note("a value rounded in every format (format_rounding)");
        missing_note("a model's weights and gradients on the log2 axis (model_value_histograms)");
        return view_footer(ctx);
    }
    const float rest = std::max(160.0f, plot_space(ctx.takeaway) - 6);
    const bool has_hist = !r.histograms.empty(), has_gap = r.find_series("relative_gap") != nullptr;
    const int cols = (has_rounding ? 1 : 0) + (has_hist || has_gap ? 1 : 0);
    if (ImGui::BeginTable("formats_lower", cols, ImGuiTableFlags_SizingStretchSame)) {
        if (has_rounding) ImGui::TableNextColumn(), rounding_panel(r, rest - line);
        if (has_hist || has_gap) ImGui::TableNextColumn();
        if (has_hist) histogram_panel(ctx, rest - 2 * line), grid_counts_line(r);
        else if (has_gap) gap_panel(ctx, rest);  // format_rounding: the spacing of the chosen format's grid
        ImGui::EndTable();
    }
    view_footer(ctx);
}

}  // namespace tl::viz
