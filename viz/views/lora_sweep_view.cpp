// The LoRA rank view (lesson 06): test accuracy against the rank on a log2 axis, full fine-tuning as a reference
// line, the trainable parameters per rank as bars on a right log axis, and the loss below. Reads lora_rank_sweep
// (series "accuracy", "loss" against "rank", table "ranks", scalars full_accuracy, accuracy_before) and
// lora_alpha_sweep (series accuracy_alpha_over_r, accuracy_alpha_over_sqrt_r: LoRA vs rsLoRA scaling) from
// engine/experiments/peft_experiments.cpp. Whatever is absent is named in the plot instead.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "plot/legend.hpp"
#include "plot/lines.hpp"
#include "plot/palette.hpp"
#include "views/course_views.hpp"
#include "views/view_util.hpp"

namespace tl::viz {

namespace {

struct Curve {
    const char* series;  // Result series name
    const char* label;   // legend name
    const char* colour;  // palette key
};

constexpr Curve kCurves[] = {{"accuracy", "LoRA (alpha = 2r)", "lora"},
                             {"accuracy_alpha_over_r", "LoRA, alpha/r", "lora"},
                             {"accuracy_alpha_over_sqrt_r", "rsLoRA, alpha/sqrt(r)", "rslora"}};

std::vector<double> log2_of(const std::vector<double>& v) {
    std::vector<double> out;
    for (double x : v) out.push_back(x > 0 ? std::log2(x) : NAN);
    return out;
}

// The x axis: log2(rank) with one labelled tick per power of two, 1 .. 2^K.
AxisSpec rank_axis(const Result& r) {
    double max_rank = 1;
    for (const Series& s : r.series)
        if (s.x_label == "rank")
            for (double x : s.x) max_rank = std::max(max_rank, x);
    AxisSpec a = axis("LoRA rank r (log2 axis)", ScaleKind::linear, {});
    for (int k = 0; k <= int(std::ceil(std::log2(max_rank))); ++k) a.categories.push_back(std::to_string(1 << k));
    return a;
}

// The rich read-out of one rank from the "ranks" table: accuracy, parameters, adapter bytes (fp32), time.
std::string rank_readout(const Table* t, double rank, const std::string& label, double acc) {
    std::string s = label + "\nrank = " + format_value(rank) + "\naccuracy = " + format_value(acc) + " %";
    if (!t) return s;
    const std::vector<double> ranks = column_numbers(*t, "rank"), params = column_numbers(*t, "trainable"),
                              secs = column_numbers(*t, "seconds");
    for (std::size_t i = 0; i < ranks.size(); ++i)
        if (ranks[i] == rank) {
            if (i < params.size()) s += "\ntrainable = " + format_value(params[i]) + " params (" +
                                        format_value(4 * params[i]) + " B in fp32)";
            if (i < secs.size()) s += "\ntime = " + format_value(secs[i]) + " s";
            break;
        }
    return s;
}

// Trainable parameters as bars on a log axis at the right edge (its own map, drawn under the lines).
void params_bars(Plot& p, const Table* t) {
    if (!t) return;
    std::vector<double> ranks = column_numbers(*t, "rank"), params = column_numbers(*t, "trainable");
    std::vector<double> pos;
    for (std::size_t i = 0; i < ranks.size() && i < params.size(); ++i)
        if (ranks[i] > 0 && params[i] > 0) pos.push_back(params[i]);
    if (pos.empty()) return;
    const Range pr = padded_range(pos, ScaleKind::log10, 0.3);
    const AxisMap m{ScaleKind::log10, pr.lo, pr.hi, p.max().y, p.min().y};
    const ImU32 col = palette_color("lora", 0.28f);
    for (std::size_t i = 0; i < ranks.size() && i < params.size(); ++i) {
        if (!(ranks[i] > 0 && params[i] > 0)) continue;
        const float cx = p.x_map().to_px(std::log2(ranks[i])), w = std::abs(p.x_map().to_px(0.3) - p.x_map().to_px(0));
        p.draw_list()->AddRectFilled({cx - w / 2, m.to_px(params[i])}, {cx + w / 2, p.max().y}, col);
    }
    p.draw_list()->PushClipRectFullScreen();
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
    for (const Tick& tk : log_ticks(pr.lo, pr.hi, 5)) {
        if (!tk.is_major) continue;
        const float y = m.to_px(tk.value);
        p.draw_list()->AddLine({p.max().x, y}, {p.max().x + 4, y}, text);
        p.draw_list()->AddText({p.max().x + 6, y - ImGui::GetTextLineHeight() / 2}, text, tk.label.c_str());
    }
    const char* title = "params (bars, log)";
    p.draw_list()->AddText({p.max().x + p.spec().reserve_right - ImGui::CalcTextSize(title).x,
                            p.min().y - ImGui::GetTextLineHeight() - 3}, ImGui::GetColorU32(ImGuiCol_TextDisabled), title);
    p.draw_list()->PopClipRect();
}

void accuracy_panel(const ViewContext& ctx, float height) {
    const Result& r = ctx.result;
    const Table* t = r.find_table("ranks");
    PlotSpec spec{"lora_accuracy", rank_axis(r), axis("test accuracy (%)", ScaleKind::linear, {-2, 102}), {0, height}};
    spec.reserve_right = 70;
    Plot p(spec, ctx.log);
    params_bars(p, t);
    std::vector<LegendEntry> legend;
    const ImU32 neutral = ImGui::GetColorU32(ImGuiCol_Text);
    if (const Scalar* full = r.find_scalar("full_accuracy")) {
        plot_hline(p, {.name = "full fine-tuning", .color = neutral, .y_label = "accuracy (%)"}, full->value);
        legend.push_back({"full fine-tuning", neutral});
    }
    if (const Scalar* before = r.find_scalar("accuracy_before")) {
        const ImU32 dim = ImGui::GetColorU32(ImGuiCol_TextDisabled);
        plot_hline(p, {.name = "base, before", .color = dim, .style = LineStyle::dashed, .y_label = "accuracy (%)"},
                   before->value);
    }
    for (const Curve& c : kCurves) {
        const Series* s = r.find_series(c.series);
        if (!s) continue;
        const std::vector<double> x = log2_of(s->x);
        for (std::size_t i = 0; i < x.size() && i < s->y.size(); ++i)
            if (x[i] == x[i]) p.offer_hover(p.to_px(x[i], s->y[i]), rank_readout(t, s->x[i], c.label, s->y[i]));
        const LineStyle style = std::string(c.colour) == "rslora" ? LineStyle::dashed : LineStyle::solid;
        plot_line(p, {.name = c.label, .color = palette_color(c.colour), .style = style, .marker = Marker::circle,
                      .x_label = "log2 rank", .y_label = "accuracy (%)"}, x, s->y);
        legend.push_back({c.label, palette_color(c.colour), style == LineStyle::dashed ? Swatch::dashed : Swatch::line});
    }
    if (legend.empty() || (legend.size() == 1 && r.find_scalar("full_accuracy")))
        plot_note(p, "no accuracy-by-rank series ('accuracy' or 'accuracy_alpha_over_r') in this result");
    draw_legend(p, legend, Corner::bottom_right);
}

void loss_panel(const ViewContext& ctx, float height) {
    const Result& r = ctx.result;
    const Series* s = r.find_series("loss");
    std::vector<double> ys = s ? s->y : std::vector<double>{};
    double full_loss = NAN;
    if (const Table* t = r.find_table("ranks")) {
        const std::vector<std::string> methods = column_text(*t, "method");
        const std::vector<double> losses = column_numbers(*t, "loss_after");
        for (std::size_t i = 0; i < methods.size() && i < losses.size(); ++i)
            if (methods[i] == "full") full_loss = losses[i], ys.push_back(losses[i]);
    }
    PlotSpec spec{"lora_loss", rank_axis(r), axis("test loss (nats/token)", ScaleKind::linear,
                  padded_range(ys, ScaleKind::linear)), {0, height}};
    spec.reserve_right = 70;
    Plot p(spec, ctx.log);
    if (full_loss == full_loss)
        plot_hline(p, {.name = "full fine-tuning", .color = ImGui::GetColorU32(ImGuiCol_Text), .y_label = "loss"},
                   full_loss);
    if (!s) return plot_note(p, "no 'loss' series against rank in this result");
    plot_line(p, {.name = "LoRA loss", .color = palette_color("lora"), .marker = Marker::square,
                  .x_label = "log2 rank", .y_label = "loss"}, log2_of(s->x), s->y);
}

}  // namespace

void draw_lora_sweep_view(const ViewContext& ctx) {
    view_header(ctx, views().at("lora_sweep"));
    const float space = plot_space(ctx.takeaway);
    accuracy_panel(ctx, std::max(240.0f, space * 0.64f));
    loss_panel(ctx, std::max(140.0f, plot_space(ctx.takeaway) - 6));
    view_footer(ctx);
}

}  // namespace tl::viz
