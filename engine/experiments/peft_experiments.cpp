// PEFT experiments: fine-tune the cached base with one method (trainable count, optimizer memory, accuracy and
// loss before/after), and a LoRA rank sweep. LoRA and IA3 are merged before generation (the KV-cache decoder
// runs base ops only); the Houlsby adapter cannot be merged, so its runs report the loss only.
#include <cmath>
#include <memory>
#include <sstream>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "data/tasks.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "experiments/dashboard_recorder.hpp"
#include "peft/ia3.hpp"
#include "train/evaluate.hpp"
#include "train/recipes.hpp"

namespace tl {

namespace {

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

FinetuneSpec spec_from(const ExperimentArgs& a) {
    FinetuneSpec spec;
    spec.task = a.choice("task");
    spec.method = parse_method(a.choice("method"));
    spec.steps = a.integer("steps");
    spec.lr = a.real("lr") > 0 ? float(a.real("lr")) : default_lr(spec.method);
    spec.batch = int(a.integer("batch"));
    spec.seed = std::uint64_t(a.integer("seed"));
    spec.peft.rank = int(a.integer("rank"));
    spec.peft.alpha = float(a.real("alpha"));
    spec.peft.scaling = a.choice("rslora") == "yes" ? LoraScaling::rslora : LoraScaling::standard;
    spec.peft.targets = split_list(a.text("targets"));
    spec.peft.layers = a.integer("layers");
    spec.peft.bottleneck = a.integer("bottleneck");
    return spec;
}

struct MethodRun {
    EvalResult before, after;
    bool has_accuracy = true;  // false for the unmergeable adapter
    std::int64_t trainable = 0, total = 0, optimizer_bytes = 0;
    TrainSummary summary;
};

// Fine-tunes a copy of the base weights with spec's method; evaluates before and after (merged when possible).
MethodRun run_method(Backend& be, const Gpt& base, const FinetuneSpec& spec, const std::vector<Example>& test,
                     TrainObserver* observer, RunContext& ctx) {
    Gpt model(be, base.config());
    be.copy(model.weights().vec(), base.weights().vec());
    MethodRun r;
    EvalOptions eo;
    eo.keep_samples = 4;
    r.before = evaluate(model, test, eo);
    be.ledger().reset_peaks();
    apply_method(model, spec.method, spec.peft, spec.seed);
    r.trainable = model.params().trainable_count();
    r.total = model.params().total();
    r.summary = finetune(model, spec, observer, ctx.cancel);
    r.optimizer_bytes = be.ledger().peak(MemCategory::optimizer);
    if (spec.method == Method::lora) lora_merge_and_detach(model);
    if (spec.method == Method::ia3) ia3_merge_and_detach(model);
    if (model.has_adapters()) {
        r.has_accuracy = false;
        r.after.loss = response_loss(model, test, eo.loss_batch);
    } else {
        r.after = evaluate(model, test, eo);
    }
    return r;
}

// A CPU backend and the cached base the experiment names (pretrained on first use).
struct Prepared {
    std::unique_ptr<Backend> backend;
    BaseModel base;
    Prepared(const ExperimentArgs& a, RunContext& ctx)
        : backend(make_cpu_backend({ctx.threads})), base(obtain_base(*backend, base_spec_from(a), ctx)) {}
};

Result run_peft_finetune(const ExperimentArgs& a, RunContext& ctx) {
    Prepared run(a, ctx);
    Result r;
    r.is_cancelled = run.base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    const FinetuneSpec spec = spec_from(a);
    const std::vector<Example> test = task_examples(find_task(spec.task), Split::test, int(a.integer("eval_n")), 99);
    DashboardRecorder recorder(r, ctx, "finetune " + a.choice("method"), std::max<std::int64_t>(1, spec.steps / 20));
    const MethodRun m = run_method(*run.backend, *run.base.model, spec, test, &recorder, ctx);
    r.is_cancelled = m.summary.is_cancelled;
    r.scalars = {{"trainable_params", double(m.trainable), ""},
                 {"total_params", double(m.total), ""},
                 {"trainable_percent", 100.0 * double(m.trainable) / double(m.total), "%"},
                 {"optimizer_bytes", double(m.optimizer_bytes), "B"},
                 {"lr", double(spec.lr), ""},
                 {"loss_before", m.before.loss, ""},
                 {"loss_after", m.after.loss, ""},
                 {"accuracy_before", 100 * m.before.accuracy, "%"},
                 {"seconds", m.summary.seconds, "s"}};
    if (m.has_accuracy) r.scalars.push_back({"accuracy_after", 100 * m.after.accuracy, "%"});
    return r;
}

Result run_lora_rank_sweep(const ExperimentArgs& a, RunContext& ctx) {
    Prepared run(a, ctx);
    Result r;
    r.is_cancelled = run.base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    FinetuneSpec spec = spec_from(a);
    spec.method = Method::lora;
    spec.lr = a.real("lr") > 0 ? float(a.real("lr")) : default_lr(Method::lora);
    const std::vector<Example> test = task_examples(find_task(spec.task), Split::test, int(a.integer("eval_n")), 99);
    std::vector<int> ranks;
    for (const std::string& s : split_list(a.text("ranks"))) ranks.push_back(std::stoi(s));
    if (ranks.empty()) throw Error("[experiments] lora_rank_sweep needs ranks, e.g. ranks=1,4,16");
    Table t{"ranks", {"rank", "trainable", "accuracy_before", "accuracy_after", "loss_after", "seconds"}, {}};
    Series acc{"accuracy", "rank", "%", {}, {}}, loss{"loss", "rank", "", {}, {}};
    for (std::size_t i = 0; i < ranks.size() && !ctx.is_cancelled(); ++i) {
        ctx.progress(std::int64_t(i), std::int64_t(ranks.size()), "rank " + std::to_string(ranks[i]));
        spec.peft.rank = ranks[i];
        const MethodRun m = run_method(*run.backend, *run.base.model, spec, test, nullptr, ctx);
        acc.x.push_back(ranks[i]), acc.y.push_back(100 * m.after.accuracy);
        loss.x.push_back(ranks[i]), loss.y.push_back(m.after.loss);
        t.rows.push_back({double(ranks[i]), double(m.trainable), 100 * m.before.accuracy, 100 * m.after.accuracy,
                          m.after.loss, m.summary.seconds});
    }
    r.is_cancelled = ctx.is_cancelled();
    r.series.push_back(std::move(acc));
    r.series.push_back(std::move(loss));
    r.tables.push_back(std::move(t));
    return r;
}

void add_finetune_params(std::vector<ParamSpec>& p) {
    std::vector<std::string> tasks;
    for (const TaskInfo& t : all_tasks()) tasks.emplace_back(t.name);
    p.push_back({"task", ParamKind::choice, "reverse", 0, 0, tasks, "the task to learn"});
    p.push_back({"steps", ParamKind::integer, "300", 1, 100000, {}, "optimizer steps"});
    p.push_back({"lr", ParamKind::real, "0", 0, 1, {}, "peak learning rate; 0: the method's default"});
    p.push_back({"batch", ParamKind::integer, "16", 1, 256, {}, "rows per step"});
    p.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "data order and adapter init seed"});
    p.push_back({"eval_n", ParamKind::integer, "100", 1, 10000, {}, "test examples scored"});
    p.push_back({"rank", ParamKind::integer, "8", 1, 4096, {}, "lora: rank r"});
    p.push_back({"alpha", ParamKind::real, "16", 0.001, 100000, {}, "lora: alpha (scale alpha/r)"});
    p.push_back({"rslora", ParamKind::choice, "no", 0, 0, {"no", "yes"}, "lora: scale alpha/sqrt(r)"});
    p.push_back({"targets", ParamKind::text, "c_attn,c_proj,c_fc", 0, 0, {}, "lora: module names"});
    p.push_back({"layers", ParamKind::integer, "1", 1, 1000, {}, "partial: last k blocks trained"});
    p.push_back({"bottleneck", ParamKind::integer, "16", 1, 100000, {}, "adapter: bottleneck width"});
}

}  // namespace

void register_peft_experiments(ExperimentRegistry& reg) {
    ExperimentInfo ft{"peft_finetune", "Fine-tune the base with a PEFT method",
                      "Fine-tunes the cached base with full, lora, bitfit, partial, ia3 or adapter; reports the "
                      "trainable parameters, optimizer memory, and accuracy/loss on the test split before and after.",
                      {}, 60, run_peft_finetune};
    add_base_params(ft.params);
    add_finetune_params(ft.params);
    ft.params.push_back({"method", ParamKind::choice, "lora", 0, 0,
                         {"full", "lora", "bitfit", "partial", "ia3", "adapter"}, "fine-tuning method"});
    reg.add(std::move(ft));

    ExperimentInfo sweep{"lora_rank_sweep", "LoRA rank vs quality",
                         "Fine-tunes the cached base with LoRA at each rank and plots test accuracy and loss "
                         "against the rank (the course's 'small ranks are enough when the base has the skill').",
                         {}, 300, run_lora_rank_sweep};
    add_base_params(sweep.params);
    add_finetune_params(sweep.params);
    sweep.params.push_back({"method", ParamKind::choice, "lora", 0, 0, {"lora"}, "always lora"});
    sweep.params.push_back({"ranks", ParamKind::text, "1,2,4,8,16,64", 0, 0, {}, "ranks, comma-separated"});
    reg.add(std::move(sweep));
}

}  // namespace tl
