// PEFT experiments: one method on the cached base (peft_finetune), every method side by side with forgetting,
// memory and latency (method_compare), the LoRA rank and alpha sweeps, and the spectrum of a full fine-tune's dW.
// LoRA and IA3 are merged before evaluation; the unmergeable Houlsby adapter is scored by greedy decoding with
// full forwards (peft_measure.hpp). Each run gets a fresh backend so its ledger holds that model only.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <sstream>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "data/tasks.hpp"
#include "data/tokenizer.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "experiments/dashboard_recorder.hpp"
#include "experiments/experiment_backend.hpp"
#include "experiments/peft_measure.hpp"
#include "merge/state_dict.hpp"
#include "model/config.hpp"
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
    spec.peft.lora_dropout = float(a.real("lora_dropout"));
    spec.peft.lora_variant = a.choice("dora") == "yes" ? LoraVariant::dora : LoraVariant::lora;
    spec.peft.soft_prompt.virtual_tokens = a.integer("virtual_tokens");
    spec.peft.soft_prompt.encoder_hidden = a.integer("encoder_hidden");
    spec.peft.prefix_projection = a.choice("prefix_projection") == "yes" ? PrefixProjection::mlp : PrefixProjection::none;
    return spec;
}

// What one fine-tune of a start model with one method measured. Accuracies are exact match in 0..1.
struct MethodRun {
    EvalResult after;                 // on the fine-tuning task (samples only for plain or merged models)
    double accuracy_a = -1;           // on the other task, when one is given
    std::int64_t trainable = 0, total = 0;
    std::array<std::int64_t, kMemCategoryCount> peak{};  // per category, during fine-tuning
    std::int64_t peak_total = 0;
    double latency_ms = 0, latency_attached_ms = 0;      // forward at batch 1: as deployed / modules attached
    TrainSummary summary;
};

enum class Latency { skip, measure };

struct EvalSets {
    std::vector<Example> task, other;  // other: empty, or the task whose forgetting is measured
};

constexpr std::int64_t kLatencyTokens = 32;  // one row of 32 tokens: a short prompt, no KV cache
constexpr int kLatencyReps = 41;

EvalResult evaluate_any(Gpt& model, const std::vector<Example>& test) {
    EvalOptions eo;
    eo.keep_samples = 4;
    bool is_cached = true;  // soft prompts and prefixes run in the KV-cache decoder; other hooks do not
    for (const auto& m : model.adapters())
        for (int s = 0; s < kHookSiteCount; ++s) is_cached = is_cached && (!m->acts_at(HookSite(s)) || m->has_prefix_kv());
    if (is_cached) return evaluate(model, test, eo);
    EvalResult r;  // the Houlsby adapter cannot be merged: greedy decoding with full forwards
    r.accuracy = greedy_accuracy(model, test, eo.max_new_tokens);
    r.loss = response_loss(model, test, eo.loss_batch);
    r.perplexity = std::exp(r.loss);
    r.n = int(test.size());
    return r;
}

// Fine-tunes a copy of `start` with spec's method on a fresh backend (so its ledger holds this model only);
// evaluates after merging where the method can be merged.
MethodRun run_method(const ModelState& start, const FinetuneSpec& spec, const EvalSets& sets,
                     TrainObserver* observer, RunContext& ctx, Latency latency) {
    std::unique_ptr<Backend> be = experiment_backend(ctx);
    Gpt model(*be, start.config);
    copy_state_into(model, start);
    MethodRun r;
    apply_method(model, spec.method, spec.peft, spec.seed);
    be->ledger().reset_peaks();  // training's peaks: qlora's fp32 base is gone once it is quantized
    r.trainable = model.params().trainable_count();
    r.total = model.params().total();
    r.summary = finetune(model, spec, observer, ctx.cancel);
    for (int c = 0; c < kMemCategoryCount; ++c) r.peak[std::size_t(c)] = be->ledger().peak(MemCategory(c));
    r.peak_total = be->ledger().peak_total();
    const std::int64_t T = std::min(kLatencyTokens, model.context());  // virtual tokens take positions too
    if (latency == Latency::measure) r.latency_attached_ms = forward_latency_ms(model, T, kLatencyReps);
    if (spec.method == Method::lora) lora_merge_and_detach(model);  // qlora stays unmerged: its base is NF4
    if (spec.method == Method::ia3) ia3_merge_and_detach(model);
    if (latency == Latency::measure) r.latency_ms = forward_latency_ms(model, T, kLatencyReps);
    r.after = evaluate_any(model, sets.task);
    if (!sets.other.empty()) r.accuracy_a = evaluate_any(model, sets.other).accuracy;
    return r;
}

// A CPU backend and the cached base the experiment names (pretrained on first use), as a plain state.
struct Prepared {
    std::unique_ptr<Backend> backend;
    BaseModel base;
    ModelState state;
    Prepared(const ExperimentArgs& a, RunContext& ctx)
        : backend(experiment_backend(ctx)), base(obtain_base(*backend, base_spec_from(a), ctx)) {
        if (!base.curve.is_cancelled) state = state_of(*base.model);
    }
};

std::vector<Example> test_split(const std::string& task, const ExperimentArgs& a) {
    return task_examples(find_task(task), Split::test, int(a.integer("eval_n")), 99);
}

EvalResult evaluate_state(const ModelState& s, const std::vector<Example>& test) {
    std::unique_ptr<Backend> be = make_cpu_backend({1});
    Gpt model(*be, s.config);
    copy_state_into(model, s);
    return evaluate_any(model, test);
}

Table samples_table(const EvalResult& before, const EvalResult& after) {
    Table t{"samples", {"prompt", "expected", "before", "after", "correct"}, {}};
    for (std::size_t i = 0; i < after.samples.size() && i < before.samples.size(); ++i) {
        const EvalSample &b = before.samples[i], &s = after.samples[i];
        t.rows.push_back({s.prompt, s.expected, b.got, s.got, std::string(s.is_correct ? "yes" : "no")});
    }
    return t;
}

Result run_peft_finetune(const ExperimentArgs& a, RunContext& ctx) {
    Prepared run(a, ctx);
    Result r;
    r.is_cancelled = run.base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    const FinetuneSpec spec = spec_from(a);
    const EvalSets sets{test_split(spec.task, a), {}};
    const EvalResult before = evaluate_state(run.state, sets.task);
    DashboardRecorder recorder(r, ctx, "finetune " + a.choice("method"), std::max<std::int64_t>(1, spec.steps / 20));
    const MethodRun m = run_method(run.state, spec, sets, &recorder, ctx, Latency::skip);
    r.is_cancelled = m.summary.is_cancelled;
    r.scalars = {{"trainable_params", double(m.trainable), ""},
                 {"total_params", double(m.total), ""},
                 {"trainable_percent", 100.0 * double(m.trainable) / double(m.total), "%"},
                 {"optimizer_bytes", double(m.peak[std::size_t(MemCategory::optimizer)]), "B"},
                 {"lr", double(spec.lr), ""},
                 {"loss_before", before.loss, ""},
                 {"loss_after", m.after.loss, ""},
                 {"accuracy_before", 100 * before.accuracy, "%"},
                 {"accuracy_after", 100 * m.after.accuracy, "%"},
                 {"seconds", m.summary.seconds, "s"}};
    r.tables.push_back(samples_table(before, m.after));
    return r;
}

std::vector<int> parse_ranks(const ExperimentArgs& a, const std::string& experiment) {
    std::vector<int> ranks;
    for (const std::string& s : split_list(a.text("ranks"))) {
        char* end = nullptr;
        const long v = std::strtol(s.c_str(), &end, 10);
        if (*end != '\0' || v < 1 || v > 4096)
            throw Error("[experiments] " + experiment + ": rank '" + s + "' is not an integer in 1..4096; pass "
                        "ranks=1,4,16");
        ranks.push_back(int(v));
    }
    if (ranks.empty()) throw Error("[experiments] " + experiment + " needs ranks, e.g. ranks=1,4,16");
    return ranks;
}

// Drops the ranks no targeted matrix admits (r <= min(in, out) = n_embd for GPT-2's Conv1Ds), naming them in the
// result, so a sweep written for tiny (C 128) also runs on nano (C 32) in `--quick` lessons.
std::vector<int> ranks_that_fit(std::vector<int> ranks, const GptConfig& c, Result& r) {
    std::string skipped;
    std::erase_if(ranks, [&](int k) {
        if (k <= c.n_embd) return false;
        skipped += (skipped.empty() ? "" : ", ") + std::to_string(k);
        return true;
    });
    if (!skipped.empty())
        r.texts.push_back({"skipped_ranks", "ranks above n_embd = " + std::to_string(c.n_embd) +
                                                " do not fit this preset: " + skipped});
    if (ranks.empty()) throw Error("[experiments] no rank fits n_embd " + std::to_string(c.n_embd) +
                                   "; pass ranks of at most that");
    return ranks;
}

// The rank sweep's learning rate: LoRA's default, lowered as sqrt(8 / r) above r = 8 when alpha grows with r
// (alpha = 2r keeps alpha/r = 2, so the update B A has r times more terms; the prototype's r = 64 diverged at
// 1e-2 and trained at 3e-3 = 1e-2 * sqrt(8/64) * 0.85).
float sweep_lr(const ExperimentArgs& a, int rank) {
    const float lr = a.real("lr") > 0 ? float(a.real("lr")) : default_lr(Method::lora);
    if (a.choice("lr_rule") == "constant") return lr;
    return lr * float(std::min(1.0, std::sqrt(8.0 / double(rank))));
}

Result run_lora_rank_sweep(const ExperimentArgs& a, RunContext& ctx) {
    std::vector<int> ranks = parse_ranks(a, "lora_rank_sweep");
    Prepared run(a, ctx);
    Result r;
    r.is_cancelled = run.base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    ranks = ranks_that_fit(ranks, run.state.config, r);
    FinetuneSpec spec = spec_from(a);
    spec.method = Method::lora;
    const EvalSets sets{test_split(spec.task, a), {}};
    const bool alpha_2r = a.choice("alpha_rule") == "2r", with_full = a.choice("reference") == "full";
    Table t{"ranks", {"method", "rank", "alpha", "lr", "trainable", "accuracy_after", "loss_after", "seconds"}, {}};
    Series acc{"accuracy", "rank", "%", {}, {}}, loss{"loss", "rank", "", {}, {}};
    const std::int64_t total_runs = std::int64_t(ranks.size()) + (with_full ? 1 : 0);
    for (std::size_t i = 0; i < ranks.size() && !ctx.is_cancelled(); ++i) {
        ctx.progress(std::int64_t(i), total_runs, "rank " + std::to_string(ranks[i]));
        spec.peft.rank = ranks[i];
        spec.peft.alpha = alpha_2r ? 2.0f * float(ranks[i]) : float(a.real("alpha"));
        spec.lr = sweep_lr(a, ranks[i]);
        const MethodRun m = run_method(run.state, spec, sets, nullptr, ctx, Latency::skip);
        acc.x.push_back(ranks[i]), acc.y.push_back(100 * m.after.accuracy);
        loss.x.push_back(ranks[i]), loss.y.push_back(m.after.loss);
        t.rows.push_back({std::string("lora"), double(ranks[i]), double(spec.peft.alpha), double(spec.lr),
                          double(m.trainable), 100 * m.after.accuracy, m.after.loss, m.summary.seconds});
    }
    if (with_full && !ctx.is_cancelled()) {  // the reference line: full fine-tuning, same data and steps
        ctx.progress(total_runs - 1, total_runs, "full fine-tuning");
        spec.method = Method::full;
        spec.lr = default_lr(Method::full);
        const MethodRun m = run_method(run.state, spec, sets, nullptr, ctx, Latency::skip);
        t.rows.push_back({std::string("full"), 0.0, 0.0, double(spec.lr), double(m.trainable),
                          100 * m.after.accuracy, m.after.loss, m.summary.seconds});
        r.series.push_back({"full_accuracy", "rank", "%", {double(ranks.front()), double(ranks.back())},
                            {100 * m.after.accuracy, 100 * m.after.accuracy}});
        r.scalars.push_back({"full_accuracy", 100 * m.after.accuracy, "%"});
        r.scalars.push_back({"full_trainable", double(m.trainable), ""});
    }
    r.scalars.push_back({"accuracy_before", 100 * evaluate_state(run.state, sets.task).accuracy, "%"});
    r.is_cancelled = ctx.is_cancelled();
    r.series.insert(r.series.begin(), std::move(loss));
    r.series.insert(r.series.begin(), std::move(acc));
    r.tables.push_back(std::move(t));
    return r;
}

Result run_lora_alpha_sweep(const ExperimentArgs& a, RunContext& ctx) {
    std::vector<int> ranks = parse_ranks(a, "lora_alpha_sweep");
    Prepared run(a, ctx);
    Result r;
    r.is_cancelled = run.base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    ranks = ranks_that_fit(ranks, run.state.config, r);
    FinetuneSpec spec = spec_from(a);
    spec.method = Method::lora;
    spec.lr = a.real("lr") > 0 ? float(a.real("lr")) : default_lr(Method::lora);
    const EvalSets sets{test_split(spec.task, a), {}};
    Table t{"runs", {"scaling", "rank", "alpha", "scale", "accuracy_after", "loss_after"}, {}};
    Series std_acc{"accuracy_alpha_over_r", "rank", "%", {}, {}};
    Series rs_acc{"accuracy_alpha_over_sqrt_r", "rank", "%", {}, {}};
    const std::int64_t n = 2 * std::int64_t(ranks.size());
    for (std::size_t i = 0; i < ranks.size() && !ctx.is_cancelled(); ++i) {
        for (LoraScaling s : {LoraScaling::standard, LoraScaling::rslora}) {
            const bool rs = s == LoraScaling::rslora;
            ctx.progress(2 * std::int64_t(i) + (rs ? 1 : 0), n, "rank " + std::to_string(ranks[i]));
            spec.peft.rank = ranks[i];
            spec.peft.scaling = s;
            const MethodRun m = run_method(run.state, spec, sets, nullptr, ctx, Latency::skip);
            const double scale = spec.peft.alpha / (rs ? std::sqrt(double(ranks[i])) : double(ranks[i]));
            (rs ? rs_acc : std_acc).x.push_back(ranks[i]);
            (rs ? rs_acc : std_acc).y.push_back(100 * m.after.accuracy);
            t.rows.push_back({std::string(rs ? "alpha/sqrt(r)" : "alpha/r"), double(ranks[i]),
                              double(spec.peft.alpha), scale, 100 * m.after.accuracy, m.after.loss});
        }
    }
    r.is_cancelled = ctx.is_cancelled();
    r.series = {std::move(std_acc), std::move(rs_acc)};
    r.tables.push_back(std::move(t));
    r.scalars.push_back({"lr", double(spec.lr), ""});
    return r;
}

// method_compare: every method from the same start, on the same task, data, seed and step budget. The start is
// the base, or a full fine-tune of it on task_a (which teaches the new prompt format: the "skill in the base"
// case); accuracy on task_a before and after measures forgetting.
std::vector<Method> parse_methods(const std::string& text) {
    std::vector<Method> out;
    for (const std::string& name : split_list(text)) out.push_back(parse_method(name));
    if (out.empty()) throw Error("[experiments] method_compare needs methods, e.g. methods=full,lora");
    return out;
}

ModelState compare_start(const ExperimentArgs& a, Prepared& run, RunContext& ctx, bool& is_cancelled) {
    if (a.choice("start") == "base") return run.state;
    const FinetuneSpec first = task_a_start_spec(a);
    ctx.progress(0, 1, "fine-tune the start on " + first.task);
    BaseModel m = obtain_finetuned(*run.backend, base_spec_from(a), first, ctx);
    is_cancelled = m.curve.is_cancelled;
    return state_of(*m.model);
}

double mib(std::int64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

bool is_soft_prompt(Method m) { return m == Method::prompt || m == Method::ptuning || m == Method::prefix; }

// Why n virtual tokens cannot run on this preset and these examples ("" when they can): a row then holds
// n_positions - n real tokens (+1, the last as a target only), and every training example and every test
// example of both tasks has to fit (recipes.cpp's check_examples_fit, at training time).
std::string soft_prompt_room(const GptConfig& c, std::int64_t n, const FinetuneSpec& spec, const EvalSets& sets) {
    std::int64_t longest = 0;
    auto scan = [&](const std::vector<Example>& v) {
        for (const Example& e : v)
            longest = std::max(longest, std::int64_t(prompt_tokens(e).size() + encode(e.response).size()));
    };
    scan(task_examples(find_task(spec.task), Split::train, spec.train_examples, spec.seed));
    scan(sets.task), scan(sets.other);
    if (n < c.n_positions && longest <= c.n_positions - n + 1) return "";
    return std::to_string(n) + " virtual tokens leave " + std::to_string(std::max<std::int64_t>(0, c.n_positions - n)) +
           " of the " + std::to_string(c.n_positions) + " positions, and the longest example has " +
           std::to_string(longest) + " tokens";
}

std::vector<Cell> compare_row(Method method, const FinetuneSpec& spec, const MethodRun& m, double acc_a_before) {
    auto peak = [&](MemCategory c) { return mib(m.peak[std::size_t(c)]); };
    const std::int64_t steps = std::max<std::int64_t>(1, std::int64_t(m.summary.losses.size()));
    return {method_name(method), double(m.trainable), 100.0 * double(m.trainable) / double(m.total),
            4.0 * double(m.trainable), double(spec.lr), 100 * m.after.accuracy, m.after.loss,
            100 * acc_a_before, 100 * m.accuracy_a, 100 * (acc_a_before - m.accuracy_a),
            1000 * m.summary.seconds / double(steps), mib(m.peak_total), peak(MemCategory::weights),
            peak(MemCategory::grads), peak(MemCategory::optimizer), peak(MemCategory::activations),
            peak(MemCategory::workspace), peak(MemCategory::quant_storage), m.latency_ms, m.latency_attached_ms};
}

Result run_method_compare(const ExperimentArgs& a, RunContext& ctx) {
    const std::vector<Method> methods = parse_methods(a.text("methods"));
    Prepared run(a, ctx);
    Result r;
    r.is_cancelled = run.base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    const ModelState start = compare_start(a, run, ctx, r.is_cancelled);
    if (r.is_cancelled) return r;
    FinetuneSpec spec = spec_from(a);
    const EvalSets sets{test_split(spec.task, a), test_split(a.choice("task_a"), a)};
    const EvalResult before = evaluate_state(start, sets.task);
    const double acc_a_before = evaluate_state(start, sets.other).accuracy;
    Table t{"methods",
            {"method", "trainable", "trainable_percent", "adapter_bytes", "lr", "accuracy_after", "loss_after",
             "task_a_before", "task_a_after", "forgetting", "ms_per_step", "peak_mib", "weights_mib", "grads_mib",
             "optimizer_mib", "activations_mib", "workspace_mib", "quant_storage_mib", "latency_ms",
             "latency_unmerged_ms"},
            {}};
    Series acc{"accuracy", "method", "%", {}, {}}, forget{"forgetting", "method", "points", {}, {}};
    const std::string no_room = soft_prompt_room(start.config, spec.peft.soft_prompt.virtual_tokens, spec, sets);
    std::string skipped;
    for (std::size_t i = 0; i < methods.size() && !ctx.is_cancelled(); ++i) {
        if (is_soft_prompt(methods[i]) && !no_room.empty()) {
            skipped += (skipped.empty() ? "" : ", ") + method_name(methods[i]);
            continue;
        }
        ctx.progress(std::int64_t(i), std::int64_t(methods.size()), method_name(methods[i]));
        spec.method = methods[i];
        spec.lr = a.real("lr") > 0 ? float(a.real("lr")) : default_lr(methods[i]);
        const MethodRun m = run_method(start, spec, sets, nullptr, ctx, Latency::measure);
        t.rows.push_back(compare_row(methods[i], spec, m, acc_a_before));
        acc.x.push_back(double(t.rows.size() - 1)), acc.y.push_back(100 * m.after.accuracy);
        forget.x.push_back(double(t.rows.size() - 1)), forget.y.push_back(100 * (acc_a_before - m.accuracy_a));
    }
    r.is_cancelled = ctx.is_cancelled();
    if (!skipped.empty())
        r.texts.push_back({"skipped_methods", "not run: " + skipped + " (" + no_room + " on " + spec.task + "/" +
                                                  a.choice("task_a") + "; a preset with a longer context, fewer "
                                                  "virtual_tokens or a shorter task fits them)"});
    r.scalars = {{"accuracy_before", 100 * before.accuracy, "%"},
                 {"loss_before", before.loss, ""},
                 {"task_a_before", 100 * acc_a_before, "%"},
                 {"total_params", double(parameter_count(start.config)), ""}};
    r.series = {std::move(acc), std::move(forget)};
    r.tables.push_back(std::move(t));
    return r;
}

// delta_w_spectrum: singular values of W_finetuned - W_base for every block's Conv1D weight, after a full
// fine-tune (cached); the share of ||dW||_F^2 the best rank-r approximation keeps; and, as a control, the same
// for a Gaussian matrix of c_attn's shape (whose energy spreads over all directions).
const char* const kConv1d[] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};

Result run_delta_w_spectrum(const ExperimentArgs& a, RunContext& ctx) {
    const std::vector<int> ranks = parse_ranks(a, "delta_w_spectrum");
    Prepared run(a, ctx);
    Result r;
    r.is_cancelled = run.base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    FinetuneSpec spec = spec_from(a);
    spec.method = Method::full;
    spec.lr = a.real("lr") > 0 ? float(a.real("lr")) : default_lr(Method::full);
    BaseModel ft = obtain_finetuned(*run.backend, base_spec_from(a), spec, ctx);
    r.is_cancelled = ft.curve.is_cancelled;
    if (r.is_cancelled) return r;
    const ModelState after = state_of(*ft.model);
    Matrix energy{"energy", 0, std::int64_t(ranks.size()), {}, {}, {}};
    for (int k : ranks) energy.col_labels.push_back("r=" + std::to_string(k));
    Table t{"modules", {"module", "rows", "cols", "frobenius", "s1_share", "rank_50", "rank_90", "rank_99"}, {}};
    auto add = [&](const std::string& label, const std::vector<double>& sv, std::int64_t rows, std::int64_t cols) {
        energy.row_labels.push_back(label);
        ++energy.rows;
        for (int k : ranks) energy.values.push_back(energy_fraction(sv, k));
        double fro = 0;
        for (double v : sv) fro += v * v;
        t.rows.push_back({label, double(rows), double(cols), std::sqrt(fro), energy_fraction(sv, 1),
                          double(rank_for_energy(sv, 0.5)), double(rank_for_energy(sv, 0.9)),
                          double(rank_for_energy(sv, 0.99))});
        Series s{"sv " + label, "index", "singular value", {}, sv};
        for (std::size_t i = 0; i < sv.size(); ++i) s.x.push_back(double(i + 1));
        r.series.push_back(std::move(s));
    };
    for (std::int64_t l = 0; l < after.config.n_layer; ++l)
        for (const char* module : kConv1d) {
            const std::string name = "transformer.h." + std::to_string(l) + "." + module + ".weight";
            const TensorData &w1 = after.tensors.at(name), &w0 = run.state.tensors.at(name);
            std::vector<float> dw(w1.values.size());
            for (std::size_t i = 0; i < dw.size(); ++i) dw[i] = w1.values[i] - w0.values[i];
            add("h" + std::to_string(l) + "." + module, singular_values(dw.data(), w1.shape[0], w1.shape[1]),
                w1.shape[0], w1.shape[1]);
        }
    const TensorData& shape_of = after.tensors.at("transformer.h.0.attn.c_attn.weight");
    Rng rng(std::uint64_t(a.integer("seed")));
    std::vector<float> noise(shape_of.values.size());
    for (float& v : noise) v = rng.normal();
    add("random (c_attn shape)", singular_values(noise.data(), shape_of.shape[0], shape_of.shape[1]),
        shape_of.shape[0], shape_of.shape[1]);
    r.matrices.push_back(std::move(energy));
    r.tables.push_back(std::move(t));
    r.scalars.push_back({"finetune_final_loss", ft.curve.scalar_or("final_loss", 0), ""});
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
    p.push_back({"lora_dropout", ParamKind::real, "0", 0, 0.99, {}, "lora: dropout on the LoRA input in training"});
    p.push_back({"dora", ParamKind::choice, "no", 0, 0, {"no", "yes"}, "lora: DoRA (magnitude per column)"});
    p.push_back({"virtual_tokens", ParamKind::integer, "8", 1, 4096, {}, "prompt, ptuning, prefix: virtual tokens"});
    p.push_back({"encoder_hidden", ParamKind::integer, "0", 0, 65536, {}, "ptuning, prefix: MLP width (0: C)"});
    p.push_back({"prefix_projection", ParamKind::choice, "no", 0, 0, {"no", "yes"}, "prefix: reparameterisation MLP"});
}

void set_default(std::vector<ParamSpec>& p, const std::string& name, const std::string& value) {
    for (ParamSpec& spec : p)
        if (spec.name == name) spec.default_value = value;
}

ExperimentInfo peft_experiment(std::string name, std::string title, std::string description, double seconds,
                               ExperimentFn fn, const std::string& methods) {
    ExperimentInfo e{std::move(name), std::move(title), std::move(description), {}, seconds, std::move(fn)};
    add_base_params(e.params);
    add_finetune_params(e.params);
    std::vector<std::string> choices;
    for (const std::string& m : split_list(methods)) choices.push_back(m);
    e.params.push_back({"method", ParamKind::choice, choices.front(), 0, 0, choices, "fine-tuning method"});
    return e;
}

}  // namespace

void register_peft_experiments(ExperimentRegistry& reg) {
    reg.add(peft_experiment("peft_finetune", "Fine-tune the base with a PEFT method",
                            "Fine-tunes the cached base with full, lora, bitfit, partial, ia3, adapter, prompt, "
                            "ptuning, prefix or qlora; reports "
                            "the trainable parameters, optimizer memory, and accuracy/loss on the test split before "
                            "and after.",
                            60, run_peft_finetune, "lora,full,bitfit,partial,ia3,adapter,prompt,ptuning,prefix,qlora"));

    ExperimentInfo sweep = peft_experiment(
        "lora_rank_sweep", "LoRA rank vs quality",
        "Fine-tunes the cached base with LoRA at each rank (alpha = 2r, the LR lowered as sqrt(8/r) above r = 8) "
        "and full fine-tuning as the reference line; test accuracy and loss against the rank.",
        80, run_lora_rank_sweep, "lora");
    set_default(sweep.params, "steps", "60");
    sweep.params.push_back({"ranks", ParamKind::text, "1,2,4,8,16,32,64", 0, 0, {}, "ranks, comma-separated"});
    sweep.params.push_back({"alpha_rule", ParamKind::choice, "2r", 0, 0, {"2r", "fixed"}, "alpha = 2r, or alpha"});
    sweep.params.push_back({"lr_rule", ParamKind::choice, "sqrt", 0, 0, {"sqrt", "constant"},
                            "lr * min(1, sqrt(8/r)), or lr at every rank"});
    sweep.params.push_back({"reference", ParamKind::choice, "full", 0, 0, {"full", "none"},
                            "also run full fine-tuning"});
    reg.add(std::move(sweep));

    ExperimentInfo alpha = peft_experiment(
        "lora_alpha_sweep", "LoRA scaling: alpha/r vs alpha/sqrt(r)",
        "Fine-tunes LoRA at each rank with one alpha and one LR, scaled as alpha/r (LoRA) and alpha/sqrt(r) "
        "(rsLoRA): with alpha/r the update shrinks as the rank grows.",
        80, run_lora_alpha_sweep, "lora");
    set_default(alpha.params, "steps", "60");
    alpha.params.push_back({"ranks", ParamKind::text, "1,4,16,64", 0, 0, {}, "ranks, comma-separated"});
    reg.add(std::move(alpha));

    ExperimentInfo cmp = peft_experiment(
        "method_compare", "Every fine-tuning method on one task",
        "Fine-tunes one start model with full, partial, bitfit, adapter, ia3, lora, prompt, ptuning and prefix on "
        "the same task, data, seed and steps: accuracy, forgetting of task_a, trainable parameters, adapter bytes, "
        "peak memory by category, time per step and inference latency (merged and unmerged). The soft prompts "
        "(virtual_tokens each) run where the context holds them beside the longest example; otherwise the text "
        "skipped_methods says why.",
        300, run_method_compare, "full");
    set_default(cmp.params, "steps", "150");
    std::vector<std::string> tasks;
    for (const TaskInfo& t : all_tasks()) tasks.emplace_back(t.name);
    cmp.params.push_back({"task_a", ParamKind::choice, "sort", 0, 0, tasks, "the task the start already does"});
    cmp.params.push_back({"start", ParamKind::choice, "task_a", 0, 0, {"task_a", "base"},
                          "start from a full fine-tune on task_a, or from the base"});
    cmp.params.push_back({"a_steps", ParamKind::integer, "300", 1, 100000, {}, "fine-tuning steps on task_a"});
    cmp.params.push_back({"methods", ParamKind::text, "full,partial,bitfit,adapter,ia3,lora,prompt,ptuning,prefix",
                          0, 0, {}, "methods, comma-separated (soft prompts skipped where they do not fit)"});

    // The same runs for LoRA against QLoRA: what the NF4 base costs in accuracy and saves in memory.
    ExperimentInfo q = cmp;
    q.name = "qlora_vs_lora";
    q.title = "QLoRA vs LoRA: the same adapter on an NF4 base";
    q.description = "Fine-tunes the base with LoRA (fp32 base) and QLoRA (the block matrices stored in NF4 with "
                    "double-quantized scales, decoded one layer at a time) on the same task, data, seed and steps: "
                    "accuracy, loss, peak memory by category (quant_storage is the NF4 base) and time per step.";
    q.estimated_seconds = 60;
    set_default(q.params, "methods", "lora,qlora");
    set_default(q.params, "start", "base");
    set_default(q.params, "task", "add");  // the base cannot add: both start at 0% and learn the task
    set_default(q.params, "steps", "150");
    reg.add(std::move(q));
    reg.add(std::move(cmp));

    ExperimentInfo spec = peft_experiment(
        "delta_w_spectrum", "How low-rank is a full fine-tune's change?",
        "Fully fine-tunes the base on a task (cached), then the singular values of dW = W_ft - W_base for every "
        "Conv1D weight and the share of ||dW||^2 that rank r keeps, beside a random matrix of the same shape.",
        45, run_delta_w_spectrum, "full");
    spec.params.push_back({"ranks", ParamKind::text, "1,2,4,8,16,32,64", 0, 0, {}, "ranks for the energy table"});
    reg.add(std::move(spec));
}

}  // namespace tl
