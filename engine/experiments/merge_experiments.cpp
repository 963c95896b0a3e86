// Merging experiments: two full fine-tunes of the cached base on different tasks, then (a) the SLERP/linear path
// between them (accuracy on both tasks and the weight norm along t: the arc keeps it, the chord shrinks it) and
// (b) every merge method side by side against the ensembling baseline. The merge math is engine/merge.
#include <cmath>
#include <memory>

#include "core/backend.hpp"
#include "data/tasks.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "merge/ensemble.hpp"
#include "merge/merge.hpp"
#include "train/evaluate.hpp"
#include "train/recipes.hpp"

namespace tl {

namespace {

struct TaskPair {
    std::unique_ptr<Backend> backend;
    BaseModel base;
    ModelState base_state, a, b;
    std::string task_a, task_b;
    std::vector<Example> test_a, test_b;
    bool is_cancelled = false;
};

// The base, and one full fine-tune of it per task (same steps and seed), as plain states.
TaskPair prepare_pair(const ExperimentArgs& a, RunContext& ctx) {
    TaskPair p;
    p.backend = make_cpu_backend({ctx.threads});
    p.base = obtain_base(*p.backend, base_spec_from(a), ctx);
    p.is_cancelled = p.base.curve.is_cancelled;
    p.task_a = a.choice("task_a");
    p.task_b = a.choice("task_b");
    const int n = int(a.integer("eval_n"));
    p.test_a = task_examples(find_task(p.task_a), Split::test, n, 99);
    p.test_b = task_examples(find_task(p.task_b), Split::test, n, 99);
    p.base_state = state_of(*p.base.model);
    for (auto [task, out] : {std::pair{p.task_a, &p.a}, std::pair{p.task_b, &p.b}}) {
        if (p.is_cancelled) return p;
        ctx.progress(out == &p.a ? 0 : 1, 2, "fine-tune on " + task);
        Gpt model(*p.backend, p.base.model->config());
        copy_state_into(model, p.base_state);
        FinetuneSpec spec;
        spec.task = task;
        spec.steps = a.integer("steps");
        spec.seed = std::uint64_t(a.integer("seed"));
        p.is_cancelled = finetune(model, spec, nullptr, ctx.cancel).is_cancelled;
        *out = state_of(model);
    }
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

MergeSpec pair_spec(const TaskPair& p, MergeMethod m) {
    MergeSpec s;
    s.method = m;
    const auto one = ParamSchedule::constant(1.0);
    s.models = {{&p.base_state, one, one, "base"}, {&p.a, one, one, p.task_a}, {&p.b, one, one, p.task_b}};
    s.base = 0;
    if (!uses_base(m)) {  // linear, slerp: the two fine-tunes only
        s.models.erase(s.models.begin());
        s.base = m == MergeMethod::slerp ? 0 : -1;
    }
    return s;
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

Result run_slerp_path(const ExperimentArgs& a, RunContext& ctx) {
    TaskPair p = prepare_pair(a, ctx);
    Result r;
    r.is_cancelled = p.is_cancelled;
    if (r.is_cancelled) return r;
    const std::int64_t points = a.integer("points");
    Series sa{"slerp_" + p.task_a, "t", "%", {}, {}}, sb{"slerp_" + p.task_b, "t", "%", {}, {}};
    Series la{"linear_" + p.task_a, "t", "%", {}, {}}, lb{"linear_" + p.task_b, "t", "%", {}, {}};
    Series ns{"slerp_norm", "t", "mean |W|", {}, {}}, nl{"linear_norm", "t", "mean |W|", {}, {}};
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
        const std::initializer_list<std::pair<Series*, double>> points_at_t = {
            {&sa, ss.acc_a}, {&sb, ss.acc_b}, {&la, sl.acc_a}, {&lb, sl.acc_b},
            {&ns, mean_matrix_norm(slerp)}, {&nl, mean_matrix_norm(lin)}};
        for (auto [series, y] : points_at_t) {
            series->x.push_back(t);
            series->y.push_back(y);
        }
    }
    r.is_cancelled = ctx.is_cancelled();
    r.series = {sa, sb, la, lb, ns, nl};
    return r;
}

Result run_merge_methods(const ExperimentArgs& a, RunContext& ctx) {
    TaskPair p = prepare_pair(a, ctx);
    Result r;
    r.is_cancelled = p.is_cancelled;
    if (r.is_cancelled) return r;
    Table t{"methods", {"method", "acc_" + p.task_a, "acc_" + p.task_b, "loss_" + p.task_a, "loss_" + p.task_b}, {}};
    auto add_row = [&](const std::string& name, const Scores& s) {
        t.rows.push_back({name, s.acc_a, s.acc_b, s.loss_a, s.loss_b});
    };
    add_row("base", score(p, p.base_state));
    add_row("finetune " + p.task_a, score(p, p.a));
    add_row("finetune " + p.task_b, score(p, p.b));
    const double density = a.real("density"), lambda = a.real("lambda");
    for (MergeMethod m : {MergeMethod::linear, MergeMethod::slerp, MergeMethod::task_arithmetic, MergeMethod::ties,
                          MergeMethod::dare_linear, MergeMethod::dare_ties}) {
        if (ctx.is_cancelled()) break;
        ctx.progress(std::int64_t(t.rows.size()), 10, std::string(merge_method_name(m)));
        MergeSpec s = pair_spec(p, m);
        for (MergeModel& mm : s.models) mm.density = ParamSchedule::constant(density);
        s.lambda = ParamSchedule::constant(lambda);
        s.seed = std::uint64_t(a.integer("seed"));
        add_row(std::string(merge_method_name(m)), score(p, merge_models(s)));
    }
    // The baseline merging replaces: both fine-tunes run, their next-token distributions averaged.
    Gpt ma(*p.backend, p.a.config), mb(*p.backend, p.b.config);
    copy_state_into(ma, p.a);
    copy_state_into(mb, p.b);
    Gpt* both[] = {&ma, &mb};
    const EnsembleEval ea = evaluate_ensemble(both, p.test_a), eb = evaluate_ensemble(both, p.test_b);
    add_row("ensemble (2 forwards)", {100 * ea.accuracy, 100 * eb.accuracy, ea.loss, eb.loss});
    r.is_cancelled = ctx.is_cancelled();
    r.tables.push_back(std::move(t));
    return r;
}

void add_pair_params(std::vector<ParamSpec>& params) {
    add_base_params(params);
    std::vector<std::string> tasks;
    for (const TaskInfo& t : all_tasks()) tasks.emplace_back(t.name);
    params.push_back({"task_a", ParamKind::choice, "reverse", 0, 0, tasks, "first fine-tune's task"});
    params.push_back({"task_b", ParamKind::choice, "add", 0, 0, tasks, "second fine-tune's task"});
    params.push_back({"steps", ParamKind::integer, "300", 1, 100000, {}, "fine-tuning steps per task"});
    params.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "fine-tuning and DARE seed"});
    params.push_back({"eval_n", ParamKind::integer, "100", 1, 10000, {}, "test examples per task"});
}

}  // namespace

void register_merge_experiments(ExperimentRegistry& r) {
    ExperimentInfo path{.name = "merge_slerp_path",
                        .title = "SLERP vs linear path between two fine-tunes",
                        .description = "Fine-tunes the base on two tasks, then walks t from 0 to 1 with slerp and "
                                       "with linear interpolation: accuracy on both tasks and the weight norm "
                                       "along the arc and the chord.",
                        .params = {},
                        .estimated_seconds = 240,
                        .run = run_slerp_path};
    add_pair_params(path.params);
    path.params.push_back({"points", ParamKind::integer, "5", 2, 21, {}, "values of t from 0 to 1"});
    r.add(std::move(path));
    ExperimentInfo methods{.name = "merge_methods",
                           .title = "Merge methods side by side, and ensembling",
                           .description = "Fine-tunes the base on two tasks and merges them with linear, slerp, "
                                          "task arithmetic, TIES and DARE; compares with both fine-tunes and with "
                                          "the ensemble of the two (averaged probabilities).",
                           .params = {},
                           .estimated_seconds = 240,
                           .run = run_merge_methods};
    add_pair_params(methods.params);
    methods.params.push_back({"density", ParamKind::real, "0.5", 0.01, 1, {}, "ties/dare: kept fraction"});
    methods.params.push_back({"lambda", ParamKind::real, "1", -2, 4, {}, "task vector scale"});
    r.add(std::move(methods));
}

}  // namespace tl
