// The PTQ vs QAT view (lesson 04): test accuracy per format / granularity after post-training quantization
// (ptq_sweep: table "ptq") or per model of one QAT comparison (qat_vs_ptq: table "quality" - fp32, PTQ, controls,
// QAT), with the unquantized model (scalar accuracy_fp32) as a line; and QAT's recovery: the validation loss over
// the QAT run's steps (series val_loss) with PTQ and fp32 as flat lines (ptq_val_loss, fp32_val_loss).
// engine/experiments/quant_experiments.cpp writes these; anything absent is named instead.
#include <imgui.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plot/bars.hpp"
#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "plot/palette.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

struct Bar {
    std::string label, colour;  // colour: a palette key (ptq, qat, fp32)
    double accuracy = 0;
};

// ptq_sweep rows: "int4 per_group" (and the embeddings policy when both were run); qat_vs_ptq rows by model.
std::vector<Bar> bars_of(const Result& r) {
    std::vector<Bar> out;
    if (const Table* t = r.find_table("ptq")) {
        const auto f = column_text(*t, "format"), g = column_text(*t, "granularity"), e = column_text(*t, "embeddings");
        const auto acc = column_numbers(*t, "accuracy");
        const bool both = std::count(e.begin(), e.end(), "quantize") > 0 && std::count(e.begin(), e.end(), "keep_fp32") > 0;
        for (std::size_t i = 0; i < f.size() && i < acc.size(); ++i) {
            std::string label = f[i] + (i < g.size() && g[i] != "-" ? " " + g[i] : "");
            if (both && i < e.size() && e[i] == "quantize") label += " +emb";
            if (f[i] != "fp32") out.push_back({label, "ptq", acc[i]});
        }
    } else if (const Table* q = r.find_table("quality")) {
        const auto model = column_text(*q, "model");
        const auto acc = column_numbers(*q, "accuracy");
        for (std::size_t i = 0; i < model.size() && i < acc.size(); ++i) {
            const std::string key = model[i].starts_with("QAT") ? "qat" : model[i].starts_with("PTQ") ? "ptq" : "fp32";
            out.push_back({model[i], key, acc[i]});
        }
    }
    return out;
}

void bars_panel(const ViewContext& ctx, float height) {
    const Result& r = ctx.result;
    const std::vector<Bar> bars = bars_of(r);
    PlotSpec spec{"ptq_qat_bars", axis("format / model", ScaleKind::linear, {}),
                  axis("test accuracy (%)", ScaleKind::linear, {0, 102}), {0, height}};
    for (const Bar& b : bars) spec.x.categories.push_back(b.label);
    Plot p(spec, ctx.log);
    if (bars.empty()) return plot_note(p, "no 'ptq' table (ptq_sweep) or 'quality' table (qat_vs_ptq) in this result");
    std::vector<LegendEntry> legend;
    for (std::size_t i = 0; i < bars.size(); ++i) {
        std::vector<double> only(bars.size(), NAN);
        only[i] = bars[i].accuracy;
        plot_bars(p, {.name = bars[i].colour, .width = 0.7, .y_label = "accuracy (%)"}, only, spec.x.categories);
        if (std::none_of(legend.begin(), legend.end(), [&](const LegendEntry& e) { return e.name == bars[i].colour; }))
            legend.push_back({bars[i].colour, palette_color(bars[i].colour), Swatch::box});
    }
    if (const Scalar* u = r.find_scalar("accuracy_fp32")) {
        const ImU32 neutral = ImGui::GetColorU32(ImGuiCol_Text);
        plot_hline(p, {.name = "unquantized", .color = neutral, .style = LineStyle::dashed, .y_label = "accuracy (%)"},
                   u->value);
        legend.push_back({"unquantized", neutral, Swatch::dashed});
    }
    draw_legend(p, legend);
}

void recovery_panel(const ViewContext& ctx, float height) {
    const Result& r = ctx.result;
    const Series *qat = r.find_series("val_loss"), *ptq = r.find_series("ptq_val_loss"), *fp = r.find_series("fp32_val_loss");
    std::vector<double> xs, ys;
    for (const Series* s : {qat, ptq, fp})
        if (s) xs.insert(xs.end(), s->x.begin(), s->x.end()), ys.insert(ys.end(), s->y.begin(), s->y.end());
    PlotSpec spec{"ptq_qat_recovery", axis("QAT step", ScaleKind::linear, padded_range(xs, ScaleKind::linear, 0.02)),
                  axis("validation loss (nats/token)", ScaleKind::linear, padded_range(ys, ScaleKind::linear)),
                  {0, height}};
    Plot p(spec, ctx.log);
    if (!qat) return plot_note(p, "no QAT run in this result (qat_vs_ptq: series val_loss, ptq_val_loss)");
    std::vector<LegendEntry> legend;
    const ImU32 neutral = ImGui::GetColorU32(ImGuiCol_Text);
    if (fp) plot_line(p, {.name = "fp32", .color = neutral, .style = LineStyle::dashed, .x_label = "step",
                          .y_label = "loss"}, fp->x, fp->y), legend.push_back({"fp32", neutral, Swatch::dashed});
    if (ptq) plot_line(p, {.name = "PTQ", .color = palette_color("ptq"), .style = LineStyle::dashed, .x_label = "step",
                           .y_label = "loss"}, ptq->x, ptq->y), legend.push_back({"PTQ", palette_color("ptq"), Swatch::dashed});
    plot_line(p, {.name = "QAT", .color = palette_color("qat"), .marker = Marker::circle, .x_label = "step",
                  .y_label = "loss"}, qat->x, qat->y);
    legend.push_back({"QAT", palette_color("qat")});
    draw_legend(p, legend);
}

}  // namespace

void draw_ptq_qat_view(const ViewContext& ctx) {
    view_header(ctx, views().at("ptq_qat"));
    const float space = plot_space(ctx.takeaway);
    bars_panel(ctx, std::max(220.0f, space * 0.58f));
    recovery_panel(ctx, std::max(140.0f, plot_space(ctx.takeaway) - 6));
    view_footer(ctx);
}

}  // namespace tl::viz
