// low_precision_training: the cached base fine-tuned on a task four times from the same weights, seed and
// data — FP32, bf16, fp16 without loss scaling, fp16 with dynamic loss scaling — simulated bit-exactly on the
// CPU (backend/rounding_backend.hpp; the scaler: optim/loss_scale.hpp). Loss curves, accuracy after, the
// share of gradient values that fp16 flushes to zero, skipped steps and the loss scale over time. Lesson
// 03-formats.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "backend/rounding_backend.hpp"
#include "core/error.hpp"
#include "data/tasks.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "train/evaluate.hpp"
#include "train/recipes.hpp"

namespace tl {

namespace {

struct Variant {
    const char* key;  // series and scalar suffix
    Precision precision;
    LossScaling scaling;
};
constexpr Variant kVariants[] = {
    {"fp32", Precision::fp32, LossScaling::none},
    {"bf16", Precision::bf16, LossScaling::none},
    {"fp16", Precision::fp16, LossScaling::none},
    {"fp16_scaled", Precision::fp16, LossScaling::dynamic},
};

// Per step: the loss, the loss scale, and what rounding did to that step's gradients (the backend's counts,
// read and reset after every step).
class PrecisionRecorder : public TrainObserver {
public:
    PrecisionRecorder(Result& r, RunContext& ctx, RoundingBackend& rb, std::string key, std::int64_t done,
                      std::int64_t total)
        : r_(r), ctx_(ctx), rb_(rb), key_(std::move(key)), done_(done), total_(total) {}
    // Three plots in the auto view (it groups series by x label): losses; gradient values flushed to zero
    // (fp16 runs; for FP32, what fp16 would flush of its gradients); the loss scale (drops are skipped
    // steps).
    void on_step(const StepEvent& e) override {
        const RoundingCounts g = rb_.stats().backward;
        rb_.reset_stats();
        sum_ += g;
        add("loss_" + key_, "step", e.step, e.loss, "loss");
        const char* flushed = "step (gradient values flushed to zero, %)";
        if (key_ == "fp32")
            add("grad_fp16_would_flush_fp32", flushed, e.step, 100 * g.fp16_flushed_share(), "%");
        if (key_.starts_with("fp16"))
            add("grad_flushed_" + key_, flushed, e.step, 100 * g.flushed_share(), "%");
        if (e.loss_scale != 1 || e.skipped_steps)
            add("loss_scale_" + key_, "step (loss scale)", e.step, e.loss_scale, "loss scale");
        ctx_.progress(done_ + e.step, total_, "fine-tuning in " + key_);
    }
    const RoundingCounts& total() const { return sum_; }

private:
    void add(const std::string& name, const char* x_label, double x, double y, const char* y_label) {
        Series& s = r_.series_named(name, x_label);
        s.y_label = y_label;
        s.x.push_back(x);
        s.y.push_back(y);
        ctx_.point(name, x, y);
    }
    Result& r_;
    RunContext& ctx_;
    RoundingBackend& rb_;
    std::string key_;
    std::int64_t done_, total_;
    RoundingCounts sum_;
};

double pct(std::int64_t part, std::int64_t whole) {
    return whole ? 100.0 * double(part) / double(whole) : 0.0;
}

Result run_low_precision_training(const ExperimentArgs& a, RunContext& ctx) {
    auto cpu = make_cpu_backend({ctx.threads});
    RoundingBackend rb(*cpu);  // fp32 until a run sets its precision
    BaseModel base = obtain_base(rb, base_spec_from(a), ctx);
    Result r;
    if (base.curve.is_cancelled) return r.is_cancelled = true, r;
    Gpt& model = *base.model;
    std::vector<float> start(std::size_t(model.weights().numel()));
    rb.copy_to_host(start.data(), model.weights().vec());

    const TaskInfo& task = find_task(a.choice("task"));
    const std::vector<Example> test = task_examples(task, Split::test, int(a.integer("eval_n")), 99);
    FinetuneSpec spec;
    spec.task = task.name;
    spec.steps = a.integer("steps");
    spec.lr = float(a.real("lr"));
    spec.batch = int(a.integer("batch"));
    spec.seed = std::uint64_t(a.integer("seed"));
    // grad_shrink_log2 = k divides the loss by 2^k: every gradient 2^k times smaller, like the gradients of a
    // larger model or batch. FP32 and bf16 barely notice (AdamW divides the scale out); fp16 starts to lose
    // them.
    const double shrink = std::ldexp(1.0, int(a.integer("grad_shrink_log2")));
    const float init_scale = float(std::ldexp(1.0, int(a.integer("init_scale_log2"))));

    Table runs{"runs",
               {"run", "precision", "loss scaling", "final loss", "accuracy %", "grad flushed %",
                "grad subnormal %", "fp16 would flush %", "skipped steps", "final loss scale", "seconds"},
               {}};
    const std::int64_t total = std::int64_t(std::size(kVariants)) * spec.steps;
    std::int64_t done = 0;
    for (const Variant& v : kVariants) {
        if (ctx.is_cancelled()) return r.is_cancelled = true, r;
        rb.copy_from_host(model.weights().vec(), start.data());
        spec.precision = v.precision;
        spec.loss_scale = {};
        spec.loss_scale.mode = v.scaling;
        spec.loss_scale.init_scale = init_scale;
        spec.loss_scale.growth_interval = a.integer("growth_interval");
        spec.loss_divisor = shrink;
        rb.reset_stats();
        PrecisionRecorder rec(r, ctx, rb, v.key, done, total);
        const auto t0 = std::chrono::steady_clock::now();
        const TrainSummary s = finetune(model, spec, &rec, ctx.cancel);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s.is_cancelled) return r.is_cancelled = true, r;
        const RoundingCounts g = rec.total();
        rb.reset_stats();
        const EvalResult after = evaluate(model, test);  // in FP32: only the training precision differs
        done += spec.steps;
        const std::string k = v.key;
        r.scalars.push_back({"accuracy_" + k, 100 * after.accuracy, "%"});
        r.scalars.push_back({"final_loss_" + k, s.final_loss(), ""});
        r.scalars.push_back({"grad_flushed_" + k, 100 * g.flushed_share(), "%"});
        if (v.precision != Precision::fp16)  // what fp16 would flush of this run's gradients
            r.scalars.push_back({"grad_fp16_would_flush_" + k, 100 * g.fp16_flushed_share(), "%"});
        r.scalars.push_back({"skipped_steps_" + k, double(s.skipped_steps), ""});
        if (v.scaling != LossScaling::none) r.scalars.push_back({"loss_scale_final_" + k, s.loss_scale, ""});
        runs.rows.push_back({std::string(k), std::string(precision_name(v.precision)),
                             loss_scaling_name(spec.loss_scale), s.final_loss(), 100 * after.accuracy,
                             100 * g.flushed_share(), pct(g.subnormal, g.nonzero),
                             100 * g.fp16_flushed_share(), double(s.skipped_steps),
                             v.scaling != LossScaling::none ? s.loss_scale : 1.0, seconds});
    }
    rb.copy_from_host(model.weights().vec(), start.data());
    r.tables.push_back(std::move(runs));
    r.scalars.push_back({"test_examples", double(test.size()), ""});
    return r;
}

}  // namespace

void register_low_precision_experiments(ExperimentRegistry& reg) {
    ExperimentInfo e{
        "low_precision_training",
        "Fine-tune in fp32, bf16 and fp16 (with and without loss scaling)",
        "The base fine-tuned four times from the same weights and data: FP32; bf16; fp16 without loss "
        "scaling; fp16 with dynamic loss scaling. Low precision is simulated bit-exactly (every op's "
        "inputs and outputs rounded, FP32 accumulation and master weights). Loss curves, accuracy, the "
        "share of gradient values flushed to zero, skipped steps and the loss scale over time.",
        {},
        30,
        run_low_precision_training};
    add_base_params(e.params);
    e.params.push_back({"task", ParamKind::choice, "reverse", 0, 0, task_names(), "the task to learn"});
    e.params.push_back({"steps", ParamKind::integer, "60", 1, 100000, {}, "optimizer steps per run"});
    e.params.push_back({"lr", ParamKind::log_real, "0.003", 1e-6, 1e-1, {}, "peak learning rate"});
    e.params.push_back({"batch", ParamKind::integer, "8", 1, 256, {}, "rows per step"});
    e.params.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "data order seed"});
    e.params.push_back({"eval_n", ParamKind::integer, "50", 1, 10000, {}, "test examples scored"});
    e.params.push_back({"grad_shrink_log2",
                        ParamKind::integer,
                        "0",
                        0,
                        40,
                        {},
                        "divide the loss by 2^k: every gradient 2^k times smaller, as in a larger model"});
    e.params.push_back({"init_scale_log2",
                        ParamKind::integer,
                        "16",
                        0,
                        40,
                        {},
                        "dynamic loss scaling's starting scale (log2; GradScaler: 16)"});
    e.params.push_back({"growth_interval",
                        ParamKind::integer,
                        "2000",
                        1,
                        100000,
                        {},
                        "good steps in a row before the scale doubles (GradScaler: 2000)"});
    reg.add(std::move(e));
}

}  // namespace tl
