// Merging experiments: two fine-tunes of the cached base on different tasks (cached with obtain_finetuned, or
// LoRA fine-tunes merged into the weights), then the SLERP/linear path between them, every method side by side,
// task arithmetic's lambda, TIES/DARE density sweeps, ensembling vs merging, passthrough layer stacking, and MoE
// upcycling (both fine-tunes' MLPs as experts behind a router, then trained on both tasks).
// Every merge is scored on both tasks. The merge math is engine/merge; docs/merging.md has the measured numbers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <sstream>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "data/batch.hpp"
#include "data/tasks.hpp"
#include "data/tokenizer.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "experiments/experiment_backend.hpp"
#include "merge/ensemble.hpp"
#include "merge/merge.hpp"
#include "merge/moe_merge.hpp"
#include "merge/sign_conflict.hpp"
#include "peft/lora.hpp"
#include "train/evaluate.hpp"
#include "train/recipes.hpp"

namespace tl {

namespace {

struct TaskPair {
    std::unique_ptr<Backend> backend;
    BaseSpec base_spec;
    bool starts_at_cached_base = true;  // false: a shared fine-tune is the merge base (not cacheable by spec)
    ModelState base_state, a, b;
    std::string task_a, task_b;
    std::vector<Example> test_a, test_b;
    bool is_cancelled = false;
};

FinetuneSpec parent_spec(const ExperimentArgs& a, const std::string& task) {
    FinetuneSpec spec;
    spec.task = task;
    spec.method = parse_method(a.choice("method"));
    spec.steps = a.integer("steps");
    spec.lr = float(a.real("lr"));
    spec.seed = std::uint64_t(a.integer("seed"));
    spec.peft.rank = int(a.integer("rank"));
    spec.peft.alpha = 2.0f * float(spec.peft.rank);
    return spec;
}

// One parent: a full fine-tune of the cached base comes from (and goes to) the cache; a LoRA fine-tune is trained
// here and merged into the weights (W + s B A); a fine-tune of a shared start is trained here. All plain models.
bool obtain_parent(TaskPair& p, const FinetuneSpec& spec, RunContext& ctx, ModelState& out) {
    if (spec.method == Method::full && p.starts_at_cached_base) {
        BaseModel ft = obtain_finetuned(*p.backend, p.base_spec, spec, ctx);
        if (ft.curve.is_cancelled) return false;
        out = state_of(*ft.model);
        return true;
    }
    Gpt model(*p.backend, p.base_state.config);
    copy_state_into(model, p.base_state);
    if (finetune(model, spec, nullptr, ctx.cancel).is_cancelled) return false;
    if (spec.method == Method::lora) lora_merge_and_detach(model);
    out = state_of(model);
    return true;
}

TaskPair prepare_pair(const ExperimentArgs& a, RunContext& ctx) {
    TaskPair p;
    p.backend = experiment_backend(ctx);
    p.base_spec = base_spec_from(a);
    BaseModel base = obtain_base(*p.backend, p.base_spec, ctx);
    p.is_cancelled = base.curve.is_cancelled;
    p.task_a = a.choice("task_a");
    p.task_b = a.choice("task_b");
    if (p.task_a == p.task_b)
        throw Error("[experiments] task_a and task_b are both " + p.task_a + "; merging needs two different tasks");
    if (a.choice("shared_task") == p.task_a || a.choice("shared_task") == p.task_b)
        throw Error("[experiments] shared_task " + a.choice("shared_task") + " is one of the merged tasks; pick a "
                    "third task (or none)");
    const Method m = parse_method(a.choice("method"));
    if (m != Method::full && m != Method::lora)
        throw Error("[experiments] merge parents are full or lora fine-tunes, not " + method_name(m));
    const int n = int(a.integer("eval_n"));
    p.test_a = task_examples(find_task(p.task_a), Split::test, n, 99);
    p.test_b = task_examples(find_task(p.task_b), Split::test, n, 99);
    if (p.is_cancelled) return p;
    p.base_state = state_of(*base.model);
    if (a.choice("shared_task") != "none") {  // a shared start: the base first fine-tuned on a third task
        FinetuneSpec shared = parent_spec(a, a.choice("shared_task"));
        shared.method = Method::full;
        shared.steps = a.integer("shared_steps");
        Gpt model(*p.backend, p.base_state.config);
        copy_state_into(model, p.base_state);
        ctx.progress(0, 3, "shared fine-tune on " + shared.task);
        p.is_cancelled = finetune(model, shared, nullptr, ctx.cancel).is_cancelled;
        if (p.is_cancelled) return p;
        p.base_state = state_of(model);
        p.starts_at_cached_base = false;
    }
    ctx.progress(0, 2, "fine-tune on " + p.task_a);
    p.is_cancelled = !obtain_parent(p, parent_spec(a, p.task_a), ctx, p.a);
    if (p.is_cancelled) return p;
    ctx.progress(1, 2, "fine-tune on " + p.task_b);
    p.is_cancelled = !obtain_parent(p, parent_spec(a, p.task_b), ctx, p.b);
    return p;
}

struct Scores {
    double acc_a = 0, acc_b = 0, loss_a = 0, loss_b = 0;
};

Scores score(TaskPair& p, const ModelState& s) {
    Gpt model(*p.backend, s.config);
    copy_state_into(model, s);
    EvalOptions eo;
    eo.keep_samples = eo.keep_misses = 0;
    const EvalResult ra = evaluate(model, p.test_a, eo), rb = evaluate(model, p.test_b, eo);
    return {100 * ra.accuracy, 100 * rb.accuracy, ra.loss, rb.loss};
}

// The baseline merging replaces: both parents run, their next-token distributions averaged (2 forwards).
Scores ensemble_scores(TaskPair& p) {
    Gpt ma(*p.backend, p.a.config), mb(*p.backend, p.b.config);
    copy_state_into(ma, p.a);
    copy_state_into(mb, p.b);
    Gpt* both[] = {&ma, &mb};
    const EnsembleEval ea = evaluate_ensemble(both, p.test_a), eb = evaluate_ensemble(both, p.test_b);
    return {100 * ea.accuracy, 100 * eb.accuracy, ea.loss, eb.loss};
}

enum class Parents { both, a_only };

// models = {base, A, B} for the task-vector methods ({base, A} with a_only); {A, B} for linear and slerp.
MergeSpec pair_spec(const TaskPair& p, MergeMethod m, Parents which = Parents::both) {
    MergeSpec s;
    s.method = m;
    const auto one = ParamSchedule::constant(1.0);
    s.models = {{&p.base_state, one, one, "base"}, {&p.a, one, one, p.task_a}};
    if (which == Parents::both) s.models.push_back({&p.b, one, one, p.task_b});
    s.base = 0;
    if (!uses_base(m)) {  // linear, slerp: the two fine-tunes only
        s.models.erase(s.models.begin());
        s.base = m == MergeMethod::slerp ? 0 : -1;
    }
    return s;
}

ModelState merged(const TaskPair& p, MergeMethod m, double density, double lambda, std::uint64_t seed,
                  Parents which = Parents::both) {
    MergeSpec s = pair_spec(p, m, which);
    for (MergeModel& mm : s.models) mm.density = ParamSchedule::constant(density);
    s.lambda = ParamSchedule::constant(lambda);
    s.seed = seed;
    return merge_models(s);
}

// How much of each parent's own-task accuracy a merge keeps, in % of the parent (the parent at 0%: 100).
double kept(double merged_acc, double parent_acc) { return parent_acc > 0 ? 100 * merged_acc / parent_acc : 100; }

void add_task_texts(Result& r, const TaskPair& p) {
    r.texts.push_back({"task_a", p.task_a});
    r.texts.push_back({"task_b", p.task_b});
}

std::vector<double> parse_reals(const ExperimentArgs& a, const std::string& key, double lo, double hi) {
    std::vector<double> out;
    std::stringstream in(a.text(key));
    std::string item;
    while (std::getline(in, item, ',')) {
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (item.empty() || *end != '\0' || !(v >= lo && v <= hi))
            throw Error("[experiments] " + key + ": '" + item + "' is not a number in [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "]; give a comma-separated list such as " + key + "=0.1,0.5,1");
        out.push_back(v);
    }
    if (out.empty()) throw Error("[experiments] " + key + " is empty; give a comma-separated list of numbers");
    return out;
}

void push(Series& s, double x, double y) {
    s.x.push_back(x);
    s.y.push_back(y);
}

// Mean Frobenius norm of the block matrices: slerp keeps it along the path, linear interpolation shrinks it.
double mean_matrix_norm(const ModelState& s) {
    double total = 0;
    int count = 0;
    for (const auto& [name, t] : s.tensors) {
        if (!layer_index(name) || t.shape.size() != 2) continue;
        double sq = 0;
        for (float v : t.values) sq += double(v) * v;
        total += std::sqrt(sq);
        ++count;
    }
    return count ? total / count : 0.0;
}

void run_slerp_path(const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r) {
    const std::int64_t points = a.integer("points");
    auto mk = [](const std::string& name, const char* y) { return Series{name, "t", y, {}, {}}; };
    Series sa = mk("slerp_" + p.task_a, "%"), sb = mk("slerp_" + p.task_b, "%");
    Series la = mk("linear_" + p.task_a, "%"), lb = mk("linear_" + p.task_b, "%");
    Series ns = mk("slerp_norm", "mean |W|"), nl = mk("linear_norm", "mean |W|");
    Series sla = mk("slerp_loss_a", "loss"), slb = mk("slerp_loss_b", "loss");
    Series lla = mk("linear_loss_a", "loss"), llb = mk("linear_loss_b", "loss");
    for (std::int64_t i = 0; i < points && !ctx.is_cancelled(); ++i) {
        const double t = points > 1 ? double(i) / double(points - 1) : 0.5;
        ctx.progress(i, points, "t = " + std::to_string(t));
        MergeSpec s = pair_spec(p, MergeMethod::slerp);
        s.t = ParamSchedule::constant(t);
        const ModelState slerp = merge_models(s);
        MergeSpec l = pair_spec(p, MergeMethod::linear);
        l.models[0].weight = ParamSchedule::constant(1 - t);
        l.models[1].weight = ParamSchedule::constant(t);
        const ModelState lin = merge_models(l);
        const Scores ss = score(p, slerp), sl = score(p, lin);
        const std::initializer_list<std::pair<Series*, double>> at_t = {
            {&sa, ss.acc_a},  {&sb, ss.acc_b},  {&la, sl.acc_a},  {&lb, sl.acc_b},
            {&sla, ss.loss_a}, {&slb, ss.loss_b}, {&lla, sl.loss_a}, {&llb, sl.loss_b},
            {&ns, mean_matrix_norm(slerp)}, {&nl, mean_matrix_norm(lin)}};
        for (auto [series, y] : at_t) push(*series, t, y);
    }
    r.series = {sa, sb, la, lb, ns, nl, sla, slb, lla, llb};
}

void run_merge_methods(const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r) {
    Table t{"methods",
            {"method", "acc_" + p.task_a, "acc_" + p.task_b, "loss_" + p.task_a, "loss_" + p.task_b, "kept_a_pct",
             "kept_b_pct", "min_kept_pct"},
            {}};
    const Scores fa = score(p, p.a), fb = score(p, p.b);
    double best = 0;
    auto add_row = [&](const std::string& name, const Scores& s) {
        const double ka = kept(s.acc_a, fa.acc_a), kb = kept(s.acc_b, fb.acc_b);
        t.rows.push_back({name, s.acc_a, s.acc_b, s.loss_a, s.loss_b, ka, kb, std::min(ka, kb)});
        return std::min(ka, kb);
    };
    add_row("base", score(p, p.base_state));
    add_row("finetune " + p.task_a, fa);
    add_row("finetune " + p.task_b, fb);
    const double density = a.real("density"), lambda = a.real("lambda");
    for (MergeMethod m : {MergeMethod::linear, MergeMethod::slerp, MergeMethod::task_arithmetic, MergeMethod::ties,
                          MergeMethod::dare_linear, MergeMethod::dare_ties}) {
        if (ctx.is_cancelled()) break;
        ctx.progress(std::int64_t(t.rows.size()), 10, std::string(merge_method_name(m)));
        const ModelState s = merged(p, m, density, lambda, std::uint64_t(a.integer("seed")));
        best = std::max(best, add_row(std::string(merge_method_name(m)), score(p, s)));
    }
    add_row("ensemble (2 forwards)", ensemble_scores(p));
    r.tables.push_back(std::move(t));
    r.scalars.push_back({"best_merge_min_kept_pct", best, "%"});
    // Where the two task vectors pull apart, after TIES' trim at this density (and untrimmed, as a scalar).
    const SignConflictMap map = sign_conflicts(p.base_state, p.a, p.b, density);
    r.matrices.push_back({"sign_conflict", std::int64_t(map.rows.size()), std::int64_t(map.cols.size()), map.share,
                          map.rows, map.cols});
    r.scalars.push_back({"sign_conflict_trimmed", 100 * map.overall, "%"});
    r.scalars.push_back({"sign_conflict_untrimmed", 100 * sign_conflicts(p.base_state, p.a, p.b, 1.0).overall, "%"});
}

// lambda sweep of task arithmetic: base + lambda (dA + dB) ("sum_*"), and base + lambda dA alone ("a_only_*");
// lambda < 0 pushes the model away from task A (its loss on A rises above the base's).
void run_task_arithmetic(const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r) {
    const std::vector<double> lambdas = parse_reals(a, "lambdas", -4, 4);
    const char* names[] = {"sum_acc_a", "sum_acc_b", "sum_loss_a", "sum_loss_b",
                           "a_only_acc_a", "a_only_acc_b", "a_only_loss_a", "a_only_loss_b"};
    std::vector<Series> s;
    for (const char* n : names)
        s.push_back({n, "lambda", std::string(n).find("acc") != std::string::npos ? "%" : "loss", {}, {}});
    for (std::size_t i = 0; i < lambdas.size() && !ctx.is_cancelled(); ++i) {
        const double l = lambdas[i];
        ctx.progress(std::int64_t(i), std::int64_t(lambdas.size()), "lambda = " + std::to_string(l));
        const Scores both = score(p, merged(p, MergeMethod::task_arithmetic, 1, l, 0));
        const Scores one = score(p, merged(p, MergeMethod::task_arithmetic, 1, l, 0, Parents::a_only));
        const double ys[] = {both.acc_a, both.acc_b, both.loss_a, both.loss_b,
                             one.acc_a,  one.acc_b,  one.loss_a,  one.loss_b};
        for (std::size_t k = 0; k < s.size(); ++k) push(s[k], l, ys[k]);
    }
    const Scores base = score(p, p.base_state);
    r.scalars = {{"base_loss_a", base.loss_a, ""}, {"base_acc_a", base.acc_a, "%"}};
    r.series = std::move(s);
}

// TIES or DARE density sweep: one task vector alone (base + sparsify(dA): the course's "top 20% matches 100%")
// and the two-parent merge; match_density is the smallest density whose a_only accuracy reaches 95% of the
// undropped vector's.
void run_density_sweep(const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r, MergeMethod m) {
    const std::vector<double> densities = parse_reals(a, "densities", 0.001, 1);
    const double lambda = a.real("lambda");
    const std::uint64_t seed = std::uint64_t(a.integer("seed"));
    auto mk = [](const char* n, const char* y) { return Series{n, "density", y, {}, {}}; };
    Series one_a = mk("a_only_acc_a", "%"), one_loss = mk("a_only_loss_a", "loss");
    Series both_a = mk("merge_acc_a", "%"), both_b = mk("merge_acc_b", "%");
    for (std::size_t i = 0; i < densities.size() && !ctx.is_cancelled(); ++i) {
        const double d = densities[i];
        ctx.progress(std::int64_t(i), std::int64_t(densities.size()), "density = " + std::to_string(d));
        const Scores one = score(p, merged(p, m, d, lambda, seed, Parents::a_only));
        const Scores both = score(p, merged(p, m, d, lambda, seed));
        push(one_a, d, one.acc_a);
        push(one_loss, d, one.loss_a);
        push(both_a, d, both.acc_a);
        push(both_b, d, both.acc_b);
    }
    const Scores full = score(p, merged(p, m, 1.0, lambda, seed, Parents::a_only));
    double match = 1.0;
    for (std::size_t i = 0; i < one_a.x.size(); ++i)
        if (one_a.y[i] >= 0.95 * full.acc_a) match = std::min(match, one_a.x[i]);
    r.scalars = {{"full_vector_acc_a", full.acc_a, "%"}, {"match_density", match, ""}};
    r.series = {one_a, one_loss, both_a, both_b};
}

// Accuracy and compute of the two-model ensemble against single merged models: forwards per token, parameters
// held in memory and measured evaluation seconds.
void run_ensemble_vs_merge(const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r) {
    Table t{"ensemble_vs_merge", {"model", "acc_a", "acc_b", "forwards_per_token", "params_held", "eval_seconds"},
            {}};
    double params = 0;
    for (const auto& [name, x] : p.a.tensors) params += double(x.numel());
    using Clock = std::chrono::steady_clock;
    auto seconds_since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
    for (auto [name, state] : {std::pair<std::string, const ModelState*>{"finetune_a", &p.a}, {"finetune_b", &p.b}}) {
        const auto t0 = Clock::now();
        const Scores s = score(p, *state);
        t.rows.push_back({name, s.acc_a, s.acc_b, 1.0, params, seconds_since(t0)});
    }
    const double density = a.real("density");
    for (MergeMethod m : {MergeMethod::linear, MergeMethod::task_arithmetic, MergeMethod::ties}) {
        if (ctx.is_cancelled()) break;
        const ModelState s = merged(p, m, density, 1.0, 0);
        const auto t0 = Clock::now();
        const Scores sc = score(p, s);
        t.rows.push_back({"merge_" + std::string(merge_method_name(m)), sc.acc_a, sc.acc_b, 1.0, params,
                          seconds_since(t0)});
    }
    const auto t0 = Clock::now();
    const Scores e = ensemble_scores(p);
    t.rows.push_back({"ensemble", e.acc_a, e.acc_b, 2.0, 2 * params, seconds_since(t0)});
    r.tables.push_back(std::move(t));
}

// Passthrough depth up-scaling of the task-A fine-tune: "duplicate" stacks all L blocks twice (2L), "solar"
// cuts `overlap` = k blocks at each side of the seam ([0, L-k) then [k, L): 2 (L - k) blocks, as SOLAR). Loss
// and accuracy on task A before and right after stacking, then over `more_steps` of continued fine-tuning on A,
// against the unstacked model trained the same steps.
void run_stacking(const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r) {
    const std::int64_t L = p.a.config.n_layer, k = a.integer("overlap");
    const bool solar = a.choice("scheme") == "solar";
    if (solar && (k < 1 || k >= L))
        throw Error("[experiments] overlap " + std::to_string(k) + " must be in 1.." + std::to_string(L - 1) +
                    " for a model of " + std::to_string(L) + " blocks");
    MergeSpec s;
    s.method = MergeMethod::passthrough;
    s.models = {{&p.a, ParamSchedule::constant(1.0), ParamSchedule::constant(1.0), p.task_a}};
    s.base = 0;
    s.slices = {{{{0, {0, solar ? L - k : L}}}}, {{{0, {solar ? k : 0, L}}}}};
    const ModelState stacked = merge_models(s);
    const Scores before = score(p, p.a), after = score(p, stacked);
    FinetuneSpec more = parent_spec(a, p.task_a);
    more.method = Method::full;
    more.steps = a.integer("more_steps");
    more.seed += 1000;  // fresh batches, not the parent's
    Series curves[2] = {{"stacked_train_loss", "step", "loss", {}, {}}, {"original_train_loss", "step", "loss", {}, {}}};
    Scores trained[2];
    const ModelState* starts[2] = {&stacked, &p.a};
    for (int i = 0; i < 2 && !ctx.is_cancelled(); ++i) {
        ctx.progress(i, 2, i == 0 ? "training the stacked model" : "training the original");
        Gpt model(*p.backend, starts[i]->config);
        copy_state_into(model, *starts[i]);
        const TrainSummary ts = finetune(model, more, nullptr, ctx.cancel);
        for (std::size_t j = 0; j < ts.losses.size(); ++j) push(curves[i], double(j + 1), ts.losses[j]);
        trained[i] = score(p, state_of(model));
    }
    r.scalars = {{"layers_before", double(L), ""},
                 {"layers_after", double(stacked.config.n_layer), ""},
                 {"loss_before", before.loss_a, ""},
                 {"loss_after_stacking", after.loss_a, ""},
                 {"loss_after_training", trained[0].loss_a, ""},
                 {"original_loss_after_training", trained[1].loss_a, ""},
                 {"acc_before", before.acc_a, "%"},
                 {"acc_after_stacking", after.acc_a, "%"},
                 {"acc_after_training", trained[0].acc_a, "%"},
                 {"original_acc_after_training", trained[1].acc_a, "%"}};
    r.series = {curves[0], curves[1]};
}

// [MoE] Per-step routing: each expert's share of the routed tokens (all layers) and the load-balancing loss.
class RouterLoadRecorder : public TrainObserver {
public:
    RouterLoadRecorder(Result& r, RunContext& ctx, std::int64_t experts) : r_(r), ctx_(ctx), k_(experts) {}
    void on_step(const StepEvent& e) override {
        std::vector<double> n(std::size_t(k_), 0.0);
        double total = 0;
        for (const auto& layer : e.expert_load)
            for (std::int64_t i = 0; i < k_; ++i) n[std::size_t(i)] += double(layer[std::size_t(i)]), total += double(layer[std::size_t(i)]);
        for (std::int64_t i = 0; i < k_; ++i)
            push(r_.series_named("expert_share_" + std::to_string(i)), double(e.step), total > 0 ? n[std::size_t(i)] / total : 0);
        push(r_.series_named("router_aux_loss"), double(e.step), e.router_aux_loss);
        push(r_.series_named("train_loss"), double(e.step), e.loss);
        ctx_.progress(e.step, e.total_steps, "training the MoE on both tasks");
    }

private:
    Result& r_;
    RunContext& ctx_;
    std::int64_t k_;
};

// [MoE] Expert use on one task's test examples, teacher-forced: the share of routing slots (top-k per token,
// real tokens only, padding excluded) each expert receives, per layer; (L, k).
std::vector<std::vector<double>> expert_use(Gpt& model, const std::vector<Example>& examples) {
    const std::int64_t L = model.config().n_layer, k = model.config().num_local_experts;
    std::vector<std::vector<double>> use(std::size_t(L), std::vector<double>(std::size_t(k), 0.0));
    ExampleBatcher batcher(examples, 8, int(model.config().n_positions), 0.0f, ExampleBatcher::Order::sequential, 0);
    while (!batcher.done()) {
        const Batch b = batcher.next();
        model.forward(b.tokens.data(), nullptr, b.B, b.T);
        const std::int64_t K = model.config().num_experts_per_tok;
        for (std::int64_t l = 0; l < L; ++l) {
            const auto& ch = model.moe()->choices(l);
            for (std::size_t n = 0; n < b.tokens.size(); ++n)
                for (std::int64_t j = 0; j < K && b.tokens[n] != kEndOfText; ++j)
                    use[std::size_t(l)][std::size_t(ch[n * std::size_t(K) + std::size_t(j)])] += 1;
        }
    }
    for (auto& row : use) {
        double t = 0;
        for (double v : row) t += v;
        for (double& v : row) v = t > 0 ? 100 * v / t : 0;
    }
    return use;
}

// Sparse upcycling: parents A and B become the two experts of one MoE (attention from the base), scored right
// away and over more_steps of training on both tasks mixed; routing shares per step and per task.
void run_moe_upcycle(const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r) {
    MoeMergeSpec spec;
    spec.base = &p.base_state;
    const int n_prompts = int(a.integer("prompts"));
    spec.experts = {{&p.a, task_prompts(p.task_a, n_prompts), p.task_a}, {&p.b, task_prompts(p.task_b, n_prompts), p.task_b}};
    spec.top_k = a.integer("top_k");
    spec.router = parse_router_init(a.choice("router"));
    spec.aux_loss_coef = float(a.real("aux_coef"));
    spec.seed = std::uint64_t(a.integer("seed"));
    if (spec.top_k > 2) throw Error("[experiments] top_k " + std::to_string(spec.top_k) + " must be 1 or 2 (two experts)");
    const ModelState moe = moe_merge(spec);
    const ModelState linear_state = merge_models(pair_spec(p, MergeMethod::linear));
    const Scores pa = score(p, p.a), pb = score(p, p.b), up = score(p, moe), linear = score(p, linear_state);
    Gpt model(*p.backend, moe.config);
    copy_state_into(model, moe);
    Table use{"expert_use", {"task", "stage", "expert_0_pct", "expert_1_pct"}, {}};
    const std::int64_t L = moe.config.n_layer;
    Matrix by_layer{"expert_0_share_by_layer", 0, L, {}, {}, {}};  // rows: task x stage; columns: layers
    for (std::int64_t l = 0; l < L; ++l) by_layer.col_labels.push_back("layer " + std::to_string(l));
    auto add_use = [&](const std::string& stage) {
        for (int t = 0; t < 2; ++t) {
            const auto u = expert_use(model, t == 0 ? p.test_a : p.test_b);
            double e0 = 0;
            for (const auto& row : u) e0 += row[0] / double(u.size()), by_layer.values.push_back(row[0]);
            const std::string task = t == 0 ? p.task_a : p.task_b;
            use.rows.push_back({task, stage, e0, 100 - e0});
            by_layer.row_labels.push_back(task + " " + stage), ++by_layer.rows;
        }
    };
    add_use("upcycled");
    FinetuneSpec more = parent_spec(a, p.task_a);
    more.method = Method::full;
    more.steps = a.integer("more_steps");
    more.lr = float(a.real("more_lr"));
    more.seed += 1000;  // fresh batches, not the parents'
    std::vector<Example> mixed = task_examples(find_task(p.task_a), Split::train, 2000, more.seed);
    for (Example& e : task_examples(find_task(p.task_b), Split::train, 2000, more.seed)) mixed.push_back(std::move(e));
    RouterLoadRecorder rec(r, ctx, 2);
    const auto t0 = std::chrono::steady_clock::now();
    finetune_on(model, more, mixed, &rec, ctx.cancel);
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Scores trained = score(p, state_of(model));
    add_use("trained");
    // The dense control: the linear merge trained the same steps on the same mixed examples.
    Gpt dense(*p.backend, linear_state.config);
    copy_state_into(dense, linear_state);
    const auto t1 = std::chrono::steady_clock::now();
    if (!ctx.is_cancelled()) finetune_on(dense, more, std::move(mixed), nullptr, ctx.cancel);
    const double dense_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    const Scores control = score(p, state_of(dense));
    r.tables.push_back(std::move(use));
    r.matrices.push_back(std::move(by_layer));
    Table cmp{"moe_vs_dense", {"model", "acc_a", "acc_b", "loss_a", "loss_b"}, {}};
    auto row = [&](const std::string& name, const Scores& s) {
        cmp.rows.push_back({name, s.acc_a, s.acc_b, s.loss_a, s.loss_b});
    };
    row("parent " + p.task_a, pa), row("parent " + p.task_b, pb), row("linear merge", linear);
    row("moe upcycled", up), row("moe trained", trained), row("linear merge trained", control);
    r.tables.push_back(std::move(cmp));
    const Series& s0 = *r.find_series("expert_share_0");
    r.scalars = {{"parent_a_acc_a", pa.acc_a, "%"},       {"parent_b_acc_b", pb.acc_b, "%"},
                 {"upcycled_acc_a", up.acc_a, "%"},       {"upcycled_acc_b", up.acc_b, "%"},
                 {"trained_acc_a", trained.acc_a, "%"},   {"trained_acc_b", trained.acc_b, "%"},
                 {"linear_acc_a", linear.acc_a, "%"},     {"linear_acc_b", linear.acc_b, "%"},
                 {"first_share_0", s0.y.empty() ? 0 : 100 * s0.y.front(), "%"},
                 {"last_share_0", s0.y.empty() ? 0 : 100 * s0.y.back(), "%"},
                 {"moe_params", double(parameter_count(moe.config)), ""},
                 {"dense_params", double(parameter_count(p.a.config)), ""},
                 {"control_acc_a", control.acc_a, "%"},   {"control_acc_b", control.acc_b, "%"},
                 {"train_seconds", train_s, "s"},         {"control_train_seconds", dense_s, "s"}};
}

using PairFn = std::function<void(const ExperimentArgs&, RunContext&, TaskPair&, Result&)>;

// An experiment on a task pair: lists are checked before any training, then the parents are obtained, body
// fills the result, and the task names are added.
ExperimentFn on_pair(PairFn body) {
    return [body = std::move(body)](const ExperimentArgs& a, RunContext& ctx) {
        if (a.values().count("lambdas")) parse_reals(a, "lambdas", -4, 4);
        if (a.values().count("densities")) parse_reals(a, "densities", 0.001, 1);
        TaskPair p = prepare_pair(a, ctx);
        Result r;
        if (!p.is_cancelled) {
            body(a, ctx, p, r);
            add_task_texts(r, p);
        }
        r.is_cancelled = p.is_cancelled || ctx.is_cancelled();
        return r;
    };
}

void add_pair_params(std::vector<ParamSpec>& params) {
    add_base_params(params);
    std::vector<std::string> tasks;
    for (const TaskInfo& t : all_tasks()) tasks.emplace_back(t.name);
    params.push_back({"task_a", ParamKind::choice, "reverse", 0, 0, tasks, "first fine-tune's task"});
    params.push_back({"task_b", ParamKind::choice, "add", 0, 0, tasks, "second fine-tune's task"});
    params.push_back({"method", ParamKind::choice, "full", 0, 0, {"full", "lora"}, "how the parents are tuned"});
    params.push_back({"steps", ParamKind::integer, "300", 1, 100000, {}, "fine-tuning steps per task"});
    params.push_back({"lr", ParamKind::log_real, "0.003", 1e-6, 1e-1, {}, "parents' peak learning rate"});
    params.push_back({"rank", ParamKind::integer, "8", 1, 1024, {}, "lora parents: r (alpha = 2r)"});
    params.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "fine-tuning and DARE seed"});
    std::vector<std::string> shared = tasks;
    shared.insert(shared.begin(), "none");
    params.push_back({"shared_task", ParamKind::choice, "none", 0, 0, shared,
                      "fine-tune the base on this third task first; merge from there"});
    params.push_back({"shared_steps", ParamKind::integer, "100", 1, 100000, {}, "steps of that shared fine-tune"});
    params.push_back({"eval_n", ParamKind::integer, "100", 1, 10000, {}, "test examples per task"});
}

ExperimentInfo pair_experiment(std::string name, std::string title, std::string description, double seconds,
                               PairFn run) {
    ExperimentInfo info{.name = std::move(name),
                        .title = std::move(title),
                        .description = std::move(description),
                        .params = {},
                        .estimated_seconds = seconds,
                        .run = on_pair(std::move(run))};
    add_pair_params(info.params);
    return info;
}

const ParamSpec kDensities{"densities", ParamKind::text, "0.05,0.1,0.2,0.3,0.5,0.7,1", 0, 0, {},
                           "kept fractions to try"};

}  // namespace

void register_merge_experiments(ExperimentRegistry& r) {
    ExperimentInfo path = pair_experiment(
        "merge_slerp_path", "SLERP vs linear path between two fine-tunes",
        "Fine-tunes the base on two tasks, then walks t from 0 to 1 with slerp and with linear interpolation: "
        "accuracy and loss on both tasks and the weight norm along the arc and the chord.",
        240, run_slerp_path);
    path.params.push_back({"points", ParamKind::integer, "5", 2, 21, {}, "values of t from 0 to 1"});
    r.add(std::move(path));
    ExperimentInfo methods = pair_experiment(
        "merge_methods", "Merge methods side by side, and ensembling",
        "Fine-tunes the base on two tasks and merges them with linear, slerp, task arithmetic, TIES and DARE; "
        "compares with both fine-tunes and with the ensemble of the two (averaged probabilities).",
        240, run_merge_methods);
    methods.params.push_back({"density", ParamKind::real, "0.5", 0.01, 1, {}, "ties/dare: kept fraction"});
    methods.params.push_back({"lambda", ParamKind::real, "1", -2, 4, {}, "task vector scale"});
    r.add(std::move(methods));
    ExperimentInfo ta = pair_experiment(
        "merge_task_arithmetic", "Task arithmetic: the scale lambda, and negation",
        "base + lambda (dA + dB) and base + lambda dA for each lambda: accuracy and loss on both tasks; "
        "lambda < 0 subtracts task A's vector.",
        90, run_task_arithmetic);
    ta.params.push_back({"lambdas", ParamKind::text, "-1,-0.5,0,0.5,1,1.5,2", 0, 0, {}, "values of lambda"});
    r.add(std::move(ta));
    for (MergeMethod m : {MergeMethod::ties, MergeMethod::dare_ties}) {
        const bool ties = m == MergeMethod::ties;
        ExperimentInfo d = pair_experiment(
            ties ? "merge_ties_density" : "merge_dare_density",
            ties ? "TIES: how much of a task vector to keep" : "DARE: how much of a task vector to drop",
            std::string(ties ? "Keeps the top fraction of each task vector by magnitude" :
                               "Drops entries at random and rescales the rest") +
                ", for one task vector alone and for the two-task merge; match_density is where one vector "
                "reaches 95% of its undropped accuracy.",
            90, [m](const ExperimentArgs& a, RunContext& ctx, TaskPair& p, Result& r) {
                run_density_sweep(a, ctx, p, r, m);
            });
        d.params.push_back(kDensities);
        d.params.push_back({"lambda", ParamKind::real, "1", -2, 4, {}, "task vector scale"});
        r.add(std::move(d));
    }
    ExperimentInfo ens = pair_experiment(
        "merge_ensemble_vs_merge", "Ensembling vs merging: accuracy and compute",
        "Both fine-tunes run as an ensemble (two forwards per token, both models in memory) against merged "
        "models (one forward): accuracy on both tasks and measured evaluation time.",
        90, run_ensemble_vs_merge);
    ens.params.push_back({"density", ParamKind::real, "0.5", 0.01, 1, {}, "ties: kept fraction"});
    r.add(std::move(ens));
    ExperimentInfo st = pair_experiment(
        "merge_stacking", "Layer stacking (depth up-scaling) and continued training",
        "Stacks the task-A fine-tune's blocks with passthrough (all twice, or SOLAR's overlap cut), measures "
        "loss and accuracy right after stacking and over more fine-tuning, against the unstacked model.",
        90, run_stacking);
    st.params.push_back({"scheme", ParamKind::choice, "solar", 0, 0, {"solar", "duplicate"}, "how to stack"});
    st.params.push_back({"overlap", ParamKind::integer, "1", 1, 64, {}, "solar: blocks cut at the seam"});
    st.params.push_back({"more_steps", ParamKind::integer, "60", 1, 100000, {}, "continued training steps"});
    r.add(std::move(st));
    ExperimentInfo moe = pair_experiment(
        "merge_moe_upcycle", "MoE upcycling: both fine-tunes as experts behind a router",
        "Turns each block's MLP into two experts copied from the two fine-tunes (attention from the base) with a "
        "router (random or hidden-state initialised) and top-k routing; scores both tasks right after upcycling and "
        "after more training on both tasks mixed (against the linear merge trained the same way), with each expert's "
        "share of the tokens over training and per task.",
        120, run_moe_upcycle);
    moe.params.push_back({"top_k", ParamKind::integer, "1", 1, 2, {}, "experts per token"});
    moe.params.push_back({"router", ParamKind::choice, "hidden", 0, 0, {"hidden", "random"}, "router init"});
    moe.params.push_back({"prompts", ParamKind::integer, "16", 1, 1000, {}, "hidden router: prompts per task"});
    moe.params.push_back({"aux_coef", ParamKind::real, "0.01", 0, 10, {}, "load-balancing loss coefficient"});
    moe.params.push_back({"more_steps", ParamKind::integer, "60", 1, 100000, {}, "training steps on both tasks"});
    moe.params.push_back({"more_lr", ParamKind::log_real, "0.001", 1e-6, 1e-1, {}, "their peak learning rate"});
    r.add(std::move(moe));
}

}  // namespace tl
