// The view registry and the header/footer every view shares (see view.hpp).
#include <imgui.h>

#include "core/error.hpp"
#include "views/course_views.hpp"
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
        // The course's topic views (course_views.hpp), one file each.
        r.add({"memory", "What takes the memory, and does it fit?",
               "One stacked bar per estimate: the course formula (N x 3 x M, shown as equal thirds of weights, "
               "gradients and optimizer), the detailed prediction and the measured peak, each split by memory "
               "category. A dashed red line is the GPU's memory for a real model. Hover a layer for its size and "
               "the bar's total; the table below lists every term with its formula.",
               draw_memory_view});
        r.add({"lora_sweep", "How much does the LoRA rank buy?",
               "Test accuracy (left axis) against the LoRA rank on a log2 axis: each step right doubles the rank. "
               "The solid line across is full fine-tuning, the dashed one the base before fine-tuning. Pale bars "
               "(right axis, log) are the trainable parameters per rank. Look for where the curve flattens. "
               "Below: the test loss. Hover a point for its rank, accuracy, parameters, adapter bytes and time.",
               draw_lora_sweep_view});
        r.add({"method_compare", "Which fine-tuning method is worth its cost?",
               "One colour per method, the same in every panel: test accuracy, trainable parameters (log axis), "
               "peak training memory and time per optimizer step; forgetting of the earlier task where measured. "
               "Hover a bar for its value; the table below has every number.",
               draw_method_compare_view});
        r.add({"formats", "What can each number format represent?",
               "Top: one row per format on a shared log2 axis; the pale bar spans min subnormal to max, the dark "
               "part is the normal range, and the label gives the precision (epsilon, the gap after 1.0). Middle: "
               "one value rounded in every format. Bottom: a real model's weights and gradients as histograms of "
               "log2|x|, shaded red where the chosen format overflows and blue where it flushes to zero.",
               draw_formats_view});
        r.add({"slerp", "Arc or chord: how should two fine-tunes be blended?",
               "Left: model A and model B as two vectors in the plane they span (the angle between them is derived "
               "from the measured norms), the SLERP arc and the linear chord, and the merged vector at the chosen "
               "t. The chord's middle is shorter: linear interpolation shrinks the weights. Right: accuracy on "
               "each task along t, solid for SLERP, dashed for linear; below, the mean weight norm along t.",
               draw_slerp_view});
        r.add({"ptq_qat", "How much accuracy does quantization cost, and does QAT win it back?",
               "Bars: test accuracy per format and granularity after post-training quantization (PTQ), or, for one "
               "format, fp32 / PTQ / QAT side by side (orange PTQ, blue QAT); the dashed line across is the "
               "unquantized model. Below: the validation loss over the QAT run's steps, with PTQ and fp32 as flat "
               "dashed lines: how much of the gap training with the quantizer in the loop wins back.",
               draw_ptq_qat_view});
        r.add({"spectrum", "Why does a low rank suffice?",
               "Left: the singular values of dW = W_finetuned - W_base for every weight matrix of a full fine-tune, "
               "largest first, on log axes, one colour per module kind; the dashed line is a random matrix of the "
               "same shape, whose values stay flat. A steep drop means few directions carry the change. Right: the "
               "share of ||dW||^2 the best rank-r approximation keeps, per module (1 = all of it).",
               draw_spectrum_view});
        r.add({"merge_lab", "Can one merged model do both tasks?",
               "Top: test accuracy on each parent task (one colour per task) for the base, each fine-tune, every "
               "merge method and the ensemble of both fine-tunes (two forward passes: the cost merging avoids). A "
               "good merge keeps both bars high. Below, when measured: accuracy against the share of the task "
               "vector kept (density), and the share of entries whose task vectors disagree in sign, per layer.",
               draw_merge_lab_view});
        r.add({"moe_router", "Does the router spread the tokens over the experts?",
               "Top left: each expert's share of the routed tokens (all layers) per training step of the upcycled "
               "mixture of experts; the dashed line is a perfectly balanced router (1/k each). Top right: the "
               "load-balancing loss k sum_i f_i P_i, 1 when balanced, larger when one expert takes most tokens. "
               "Bottom: which expert each task's test tokens go to, right after upcycling and after training, and "
               "expert 0's share per layer. Hover for exact values.",
               draw_moe_router_view});
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
