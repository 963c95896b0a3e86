// QAT by master weights and the straight-through estimator (qat.hpp). AdamW's decoupled weight decay acts on
// the quantized weights the model holds, which differ from the masters by less than one quantization step.
#include "quant/qat.hpp"

#include <cmath>

#include "core/error.hpp"

namespace tl {

namespace {

// The block of element (r, c), as the quantizer numbers blocks (formats/quantizer.cpp: row-major groups).
std::int64_t block_of(const QuantScheme& s, std::int64_t r, std::int64_t c, std::int64_t cols) {
    switch (s.granularity) {
        case Granularity::per_tensor:
            return 0;
        case Granularity::per_channel:
            return r;
        case Granularity::per_group:
            return r * ((cols + s.group_size - 1) / s.group_size) + c / s.group_size;
    }
    return 0;
}

}  // namespace

std::vector<float> representable_mask(std::span<const float> w, std::int64_t rows, std::int64_t cols,
                                      const QuantScheme& s) {
    std::vector<float> mask(w.size(), 1.0f);
    const FormatInfo& f = format_info(s.format);
    if (f.scaling == Scaling::none) return mask;
    const QuantizedTensor q = quantize(w, rows, cols, s);
    const double unit = format_unit_max(f), top_code = double((1u << f.bits) - 1);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) {
            const auto b = std::size_t(block_of(s, r, c, cols));
            const double scale = q.scales[b], x = w[std::size_t(r * cols + c)];
            double lo = -scale * unit, hi = scale * unit;
            if (s.symmetry == Symmetry::asymmetric)
                lo = -q.zero_points[b] * scale, hi = (top_code - q.zero_points[b]) * scale;
            // fp16-stored scales round by up to 2^-11: absmax's own extreme must not count as clipped
            const double slack = 1e-3 * std::max(std::fabs(lo), std::fabs(hi));
            if (x < lo - slack || x > hi + slack) mask[std::size_t(r * cols + c)] = 0.0f;
        }
    return mask;
}

QatState::QatState(Gpt& model, QuantPlan plan, SteMode ste) : plan_(std::move(plan)), ste_(ste) {
    validate_plan(plan_);
    for (std::size_t i = 0; i < plan_.size(); ++i) {
        master_.push_back(read_target(model, plan_[i].target));
        quantized_.emplace_back();
        requantize(model, i);
    }
}

void QatState::requantize(Gpt& model, std::size_t i) {
    const QuantTarget& t = plan_[i].target;
    quantized_[i] = master_[i];
    fake_quantize(quantized_[i], t.rows, t.cols, plan_[i].scheme);
    write_target(model, t, quantized_[i]);
}

std::vector<float> QatState::ste_mask(std::size_t i) const {
    const QuantTarget& t = plan_[i].target;
    if (ste_ == SteMode::identity) return std::vector<float>(master_[i].size(), 1.0f);
    return representable_mask(master_[i], t.rows, t.cols, plan_[i].scheme);
}

void QatState::after_step(Gpt& model) {
    for (std::size_t i = 0; i < plan_.size(); ++i) {
        const std::vector<float> w = read_target(model, plan_[i].target);
        const std::vector<float> mask = ste_mask(i);
        for (std::size_t k = 0; k < w.size(); ++k) master_[i][k] += mask[k] * (w[k] - quantized_[i][k]);
        requantize(model, i);
    }
}

std::vector<float> QatState::master_gradient(const Gpt& model, std::size_t i) const {
    std::vector<float> g = read_target_grad(model, plan_[i].target);
    const std::vector<float> mask = ste_mask(i);
    for (std::size_t k = 0; k < g.size(); ++k) g[k] *= mask[k];
    return g;
}

void QatObserver::on_step(const StepEvent& e) {
    state_.after_step(model_);
    if (inner_) inner_->on_step(e);
}

TrainSummary qat_finetune(Gpt& model, const FinetuneSpec& spec, const QuantPlan& plan, SteMode ste,
                          TrainObserver* observer, const std::atomic<bool>* cancel) {
    if (spec.method != Method::full)
        throw Error("[quant] QAT here trains every parameter (method full); got method " +
                    method_name(spec.method));
    QatState state(model, plan, ste);
    QatObserver qat(model, state, observer);
    return finetune(model, spec, &qat, cancel);
}

}  // namespace tl
