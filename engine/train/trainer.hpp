// The training loop: micro-batches -> forward/backward (gradients accumulate) -> clip -> AdamW at the scheduled
// learning rate, with events to observers after every optimizer step. The loss of a step is normalised by the
// number of weighted tokens over all its micro-batches, so k micro-batches of b rows equal one batch of k*b.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/memory_ledger.hpp"
#include "data/batch.hpp"
#include "model/gpt.hpp"
#include "optim/adamw.hpp"
#include "optim/loss_scale.hpp"
#include "optim/schedule.hpp"

namespace tl {

struct TrainConfig {
    std::int64_t steps = 100;        // optimizer steps
    int grad_accum = 1;              // micro-batches per optimizer step
    AdamWConfig optim;
    std::int64_t warmup_steps = 0;
    float min_lr_ratio = 0.1f;       // cosine decays to this fraction of the peak
    float clip_norm = 1.0f;          // global gradient norm; <= 0 disables clipping
    LossScaleConfig loss_scale;      // fp16: backward from S x loss, unscale in FP32, skip inf/NaN steps
    double loss_divisor = 1;         // trains on loss / this: every gradient that much smaller (the
                                     // low_precision_training experiment's stand-in for a larger model's gradients)
    const std::atomic<bool>* cancel = nullptr;  // checked between steps; training stops early when set
};

struct MemorySnapshot {
    std::array<std::int64_t, kMemCategoryCount> current{}, peak{};
    std::int64_t peak_total = 0;
};
MemorySnapshot snapshot(const MemoryLedger& ledger);

struct StepEvent {
    std::int64_t step = 0, total_steps = 0;  // step is 1-based
    double loss = 0, lr = 0, grad_norm = 0;
    double tokens_per_s = 0, elapsed_s = 0;
    std::int64_t tokens = 0;                  // tokens processed so far (all positions, padding included)
    MemorySnapshot memory;
    // [MoE] Empty for a dense model. expert_load (L, k): tokens routed to each expert of each layer in this step's
    // micro-batches; router_aux_loss: the load-balancing loss (1 when balanced), weighted over the micro-batches.
    std::vector<std::vector<std::int64_t>> expert_load;
    double router_aux_loss = 0;
    // [loss scaling] The S this step's backward used (1 without), whether its gradients were inf/NaN so no update
    // was made, and how many steps were skipped so far.
    double loss_scale = 1;
    bool is_skipped = false;
    std::int64_t skipped_steps = 0;
};

class TrainObserver {
public:
    virtual ~TrainObserver() = default;
    virtual void on_step(const StepEvent&) {}
};

using BatchSource = std::function<Batch()>;

struct TrainSummary {
    std::vector<double> losses;  // per optimizer step
    double seconds = 0;
    std::int64_t tokens = 0;
    bool is_cancelled = false;
    std::int64_t skipped_steps = 0;  // [loss scaling] steps with inf/NaN gradients, not applied
    double loss_scale = 1;           // [loss scaling] S at the end
    double final_loss() const;   // mean of the last (up to) 10 steps
};

TrainSummary train(Gpt& model, const TrainConfig& config, const BatchSource& next_batch,
                   TrainObserver* observer = nullptr);

}  // namespace tl
