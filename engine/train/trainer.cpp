#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.hpp"

namespace tl {

MemorySnapshot snapshot(const MemoryLedger& ledger) {
    MemorySnapshot s;
    for (int c = 0; c < kMemCategoryCount; ++c) {
        s.current[std::size_t(c)] = ledger.current(MemCategory(c));
        s.peak[std::size_t(c)] = ledger.peak(MemCategory(c));
    }
    s.peak_total = ledger.peak_total();
    return s;
}

double TrainSummary::final_loss() const {
    if (losses.empty()) return 0;
    const std::size_t k = std::min<std::size_t>(10, losses.size());
    double sum = 0;
    for (std::size_t i = losses.size() - k; i < losses.size(); ++i) sum += losses[i];
    return sum / double(k);
}

namespace {

// Forward + backward of one micro-batch; returns sum_i w_i loss_i (unnormalised). `losses` is the host copy of
// the per-token losses, sized once by the caller so that a step allocates nothing.
double micro_step(Gpt& model, const Batch& b, float norm, std::vector<float>& losses) {
    model.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    model.backward(b.weights.data(), norm);
    losses.resize(std::size_t(b.B) * std::size_t(b.T));  // no-op after the first step: batches keep their shape
    model.backend().copy_to_host(losses.data(), model.losses());
    double sum = 0;
    for (std::size_t i = 0; i < losses.size(); ++i) sum += double(b.weights[i]) * losses[i];
    return sum;
}

}  // namespace

TrainSummary train(Gpt& model, const TrainConfig& config, const BatchSource& next_batch, TrainObserver* observer) {
    if (config.steps < 1) throw Error("[train] steps must be at least 1, got " + std::to_string(config.steps));
    if (config.grad_accum < 1) throw Error("[train] grad_accum must be at least 1");
    if (!(config.loss_divisor > 0)) throw Error("[train] loss_divisor must be positive");
    model.enable_grads();
    AdamW optimizer(model, config.optim);
    const LrSchedule schedule{config.optim.lr, config.warmup_steps, config.steps, config.min_lr_ratio};
    TrainSummary summary;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Batch> micro(std::size_t(config.grad_accum));
    std::vector<float> host_losses;
    LossScaler scaler(config.loss_scale);
    summary.losses.reserve(std::size_t(config.steps));
    for (std::int64_t step = 0; step < config.steps; ++step) {
        if (config.cancel && config.cancel->load()) {
            summary.is_cancelled = true;
            break;
        }
        double norm = 0;
        for (auto& b : micro) {
            b = next_batch();
            norm += total_weight(b);
        }
        if (norm <= 0) throw Error("[train] a step's batches carry no loss weight (all prompt or padding tokens)");
        model.zero_grads();
        if (model.moe()) model.moe()->reset_load();  // [MoE] this step's routing only
        double loss_sum = 0, aux_sum = 0;
        const float loss_scale = scaler.scale();  // backward of S x loss: norm / S scales every gradient by S
        for (const auto& b : micro) {
            loss_sum += micro_step(model, b, float(norm * config.loss_divisor / loss_scale), host_losses);
            if (model.moe()) aux_sum += total_weight(b) / norm * model.moe()->aux_loss();
            summary.tokens += std::int64_t(b.B) * b.T;
        }
        if (loss_scale != 1.0f) scale_grads(model, 1.0f / loss_scale);  // unscale in FP32 before clipping
        const double grad_norm = clip_grad_norm(model, config.clip_norm);
        const float lr = schedule.at(step);
        const bool is_applied = scaler.update(std::isfinite(grad_norm));  // false: inf/NaN, skip the step
        if (is_applied) optimizer.step(lr);
        const double loss = loss_sum / norm;
        summary.losses.push_back(loss);
        if (observer) {
            StepEvent e;
            e.step = step + 1;
            e.total_steps = config.steps;
            e.loss = loss;
            e.lr = lr;
            e.grad_norm = grad_norm;
            e.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            e.tokens = summary.tokens;
            e.tokens_per_s = e.elapsed_s > 0 ? double(summary.tokens) / e.elapsed_s : 0;
            e.memory = snapshot(model.backend().ledger());
            if (model.moe()) e.expert_load = model.moe()->load(), e.router_aux_loss = aux_sum;
            e.loss_scale = loss_scale, e.is_skipped = !is_applied, e.skipped_steps = scaler.skipped_steps();
            observer->on_step(e);
        }
    }
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    summary.skipped_steps = scaler.skipped_steps(), summary.loss_scale = scaler.scale();
    return summary;
}

}  // namespace tl
