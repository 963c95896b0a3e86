// Experiments of the tour and the training dashboard: pretraining a base model, and fine-tuning it on a task
// with exact-match accuracy and sample answers before and after.
#include <algorithm>
#include <memory>

#include "core/backend.hpp"
#include "data/tasks.hpp"
#include "data/tokenizer.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "experiments/dashboard_recorder.hpp"
#include "experiments/experiment_backend.hpp"
#include "model/generate.hpp"
#include "train/evaluate.hpp"
#include "train/recipes.hpp"

namespace tl {

namespace {

std::string continuation(const Gpt& model, const std::string& prompt, int n) {
    SampleOptions opt;
    opt.max_new_tokens = n;
    return prompt + decode(generate(model, encode(prompt), opt));
}

// What the base says to a corpus-like prompt, before (random init) and after pretraining.
constexpr const char* kPretrainPrompt = "reverse: stone -> ";

Result run_pretrain_base(const ExperimentArgs& a, RunContext& ctx) {
    auto backend = experiment_backend(ctx);
    BaseSpec spec = base_spec_from(a);
    spec.lr = float(a.real("lr"));
    spec.use_shipped = a.choice("shipped") == "yes";
    BaseModel base = obtain_base(*backend, spec, ctx);
    // The random-init model lives on its own backend, so the dashboard's memory is the trained model's alone.
    auto init_backend = experiment_backend(ctx);
    Gpt init(*init_backend, find_preset(spec.preset).config);
    init.init_gpt2(spec.seed);
    Result r = base.curve;
    r.texts.push_back({"sample_init", continuation(init, kPretrainPrompt, 40)});
    r.texts.push_back({"sample_trained", continuation(*base.model, kPretrainPrompt, 40)});
    return r;
}

Result run_finetune_task(const ExperimentArgs& a, RunContext& ctx) {
    auto backend = experiment_backend(ctx);
    BaseModel base = obtain_base(*backend, base_spec_from(a), ctx);
    Result r;
    if (base.curve.is_cancelled) {
        r.is_cancelled = true;
        return r;
    }
    const TaskInfo& task = find_task(a.choice("task"));
    const std::vector<Example> test = task_examples(task, Split::test, int(a.integer("eval_n")), 99);
    const std::vector<Example> val = task_examples(task, Split::validation, 32, 7);
    EvalOptions eo;
    eo.keep_samples = 8;
    ctx.progress(0, 1, "evaluating the base");
    const EvalResult before = evaluate(*base.model, test, eo);

    FinetuneSpec spec;
    spec.task = task.name;
    spec.steps = a.integer("steps");
    spec.lr = float(a.real("lr"));
    spec.batch = int(a.integer("batch"));
    spec.seed = std::uint64_t(a.integer("seed"));
    Gpt& model = *base.model;  // fine-tuned in place: the cached base on disk is untouched
    DashboardRecorder recorder(r, ctx, "finetune " + spec.task, std::max<std::int64_t>(1, spec.steps / 20),
                               [&] { return response_loss(model, val, 16); });
    const TrainSummary s = finetune(model, spec, &recorder, ctx.cancel);
    r.is_cancelled = s.is_cancelled;
    ctx.progress(0, 1, "evaluating the fine-tuned model");
    const EvalResult after = evaluate(model, test, eo);

    r.scalars = {{"accuracy_before", 100 * before.accuracy, "%"},
                 {"accuracy_after", 100 * after.accuracy, "%"},
                 {"loss_before", before.loss, ""},
                 {"loss_after", after.loss, ""},
                 {"test_examples", double(test.size()), ""},
                 {"trainable_params", double(model.params().trainable_count()), ""},
                 {"seconds", s.seconds, "s"},
                 {"tokens_per_s", s.seconds > 0 ? double(s.tokens) / s.seconds : 0, "tokens/s"}};
    Table samples{"samples", {"prompt", "expected", "before", "after", "correct"}, {}};
    for (std::size_t i = 0; i < after.samples.size() && i < before.samples.size(); ++i) {
        std::string prompt = after.samples[i].prompt;
        std::replace(prompt.begin(), prompt.end(), '\n', ' ');
        samples.rows.push_back({prompt, after.samples[i].expected, before.samples[i].got, after.samples[i].got,
                                std::string(after.samples[i].is_correct ? "yes" : "no")});
    }
    r.tables.push_back(std::move(samples));
    return r;
}

}  // namespace

void register_training_experiments(ExperimentRegistry& reg) {
    ExperimentInfo pre{"pretrain_base", "Pretrain a base model on the corpus",
                       "Trains a GPT-2 from random weights on the base corpus (or loads the cached or shipped one) and "
                       "records the training dashboard: loss, validation loss, learning rate, gradient norm, tokens/s, "
                       "memory.",
                       {}, 300, run_pretrain_base};
    add_base_params(pre.params);
    pre.params.push_back({"lr", ParamKind::log_real, "0.003", 1e-5, 1e-1, {}, "peak learning rate"});
    pre.params.push_back({"shipped", ParamKind::choice, "yes", 0, 0, {"yes", "no"},
                          "yes: load the base shipped in assets/ when it is this one; no: pretrain it live "
                          "(about 3 minutes on two cores) unless the cache has it"});
    reg.add(std::move(pre));

    ExperimentInfo ft{"finetune_task", "Fine-tune the base on a task",
                      "Full fine-tuning of the cached base on one task; exact-match accuracy on the test split and "
                      "sample answers before and after, with the training dashboard.",
                      {}, 50, run_finetune_task};
    add_base_params(ft.params);
    ft.params.push_back({"task", ParamKind::choice, "reverse", 0, 0, task_names(), "the task to learn"});
    ft.params.push_back({"steps", ParamKind::integer, "300", 1, 100000, {}, "optimizer steps"});
    ft.params.push_back({"lr", ParamKind::log_real, "0.003", 1e-6, 1e-1, {}, "peak learning rate"});
    ft.params.push_back({"batch", ParamKind::integer, "16", 1, 256, {}, "rows per step"});
    ft.params.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "data order seed"});
    ft.params.push_back({"eval_n", ParamKind::integer, "100", 1, 10000, {}, "test examples scored"});
    reg.add(std::move(ft));
}

}  // namespace tl
