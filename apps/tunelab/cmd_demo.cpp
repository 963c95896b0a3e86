// `tunelab demo`: the whole story in one command — pretrain the tiny base (or reuse the cached or shipped one, as
// the lessons do: experiments/base_models.hpp), measure it on a task, fine-tune it, measure again.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common.hpp"
#include "core/error.hpp"
#include "data/tasks.hpp"
#include "experiments/base_models.hpp"
#include "model/config.hpp"
#include "model/model_io.hpp"
#include "train/evaluate.hpp"
#include "train/progress.hpp"
#include "train/recipes.hpp"

namespace tl::cli {

namespace fs = std::filesystem;

namespace {

struct DemoOptions {
    CommonOptions common;
    std::string preset = "tiny", task = "all";
    PretrainSpec pretrain;
    FinetuneSpec finetune;
    int eval_n = 200;
    bool no_cache = false;
};

// The base the lessons use (experiments/base_models: the cache, else the shipped copy, else pretraining it now),
// or with --no-cache a fresh pretraining that is not kept.
std::unique_ptr<Gpt> obtain_demo_base(const DemoOptions& o, Backend& be) {
    const Preset& preset = find_preset(o.preset);
    if (!o.no_cache) {
        BaseSpec spec;
        spec.preset = o.preset;
        spec.steps = o.pretrain.steps;
        spec.seed = o.pretrain.seed;
        RunContext ctx;
        ctx.threads = o.common.threads;
        ctx.on_progress = [](const Progress& p) {
            std::fprintf(stderr, "\r  %s %lld/%lld   ", p.label.c_str(), (long long)p.done, (long long)p.total);
        };
        BaseModel b = obtain_base(be, spec, ctx);
        std::printf("1. the %s base (%lld parameters): %s %s\n", o.preset.c_str(),
                    (long long)b.model->params().total(),
                    b.was_shipped ? "the copy shipped in" : (b.was_cached ? "cached in" : "pretrained now, cached in"),
                    (b.was_shipped ? shipped_models_root() / base_model_dir(spec).filename() : base_model_dir(spec))
                        .c_str());
        return std::move(b.model);
    }
    auto model = std::make_unique<Gpt>(be, preset.config);
    model->init_gpt2(o.pretrain.seed);
    PretrainSpec spec = o.pretrain;
    if (spec.batch == 0) spec.batch = preset.batch;
    std::printf("1. pretraining the %s base (%lld parameters) on the base corpus: %lld steps of %d x %lld tokens\n",
                o.preset.c_str(), (long long)model->params().total(), (long long)spec.steps, spec.batch,
                (long long)preset.config.n_positions);
    ProgressBar bar("pretrain");
    const TrainSummary s = pretrain(*model, spec, &bar);
    std::printf("   %.1f s, final loss %.3f\n", s.seconds, s.final_loss());
    return model;
}

void run_demo(DemoOptions& o) {
    std::vector<std::string> tasks;
    if (o.task == "all")
        for (const TaskInfo& t : all_tasks()) tasks.emplace_back(t.name);
    else
        tasks.push_back(std::string(find_task(o.task).name));
    auto be = make_backend(o.common);
    std::unique_ptr<Gpt> base = obtain_demo_base(o, *be);
    struct Row { std::string task; double before, after, seconds; };
    std::vector<Row> rows;
    for (const std::string& task : tasks) {
        const std::vector<Example> test = task_examples(find_task(task), Split::test, o.eval_n, 99);
        auto model = std::make_unique<Gpt>(*be, base->config());
        be->copy(model->weights().vec(), base->weights().vec());
        const double before = evaluate(*model, test).accuracy;
        std::printf("\n2. task '%s': the base model scores %.1f%% exact match on %zu test examples\n", task.c_str(),
                    100 * before, test.size());
        FinetuneSpec spec = o.finetune;
        spec.task = task;
        ProgressBar bar("finetune");
        const TrainSummary s = finetune(*model, spec, &bar);
        const EvalResult after = evaluate(*model, test);
        std::printf("3. after %lld steps of full fine-tuning (%.1f s): %.1f%% exact match\n", (long long)spec.steps,
                    s.seconds, 100 * after.accuracy);
        for (const auto& smp : after.samples) {
            std::string p = smp.prompt;
            for (auto& ch : p) if (ch == '\n') ch = ' ';
            std::printf("   %s %-34s -> %s\n", smp.is_correct ? "ok  " : "MISS", p.c_str(), smp.got.c_str());
        }
        rows.push_back({task, before, after.accuracy, s.seconds});
    }
    std::printf("\n%-8s %10s %10s %10s\n", "task", "before", "after", "seconds");
    for (const Row& r : rows)
        std::printf("%-8s %9.1f%% %9.1f%% %10.1f\n", r.task.c_str(), 100 * r.before, 100 * r.after, r.seconds);
}

}  // namespace

void add_demo_command(CLI::App& app) {
    auto o = std::make_shared<DemoOptions>();
    CLI::App* cmd = app.add_subcommand("demo", "Pretrain the tiny base, then fine-tune it on tasks: before vs after");
    cmd->add_option("--preset", o->preset, "model preset")->capture_default_str();
    cmd->add_option("--task", o->task, "a task name, or all")->capture_default_str();
    cmd->add_option("--pretrain-steps", o->pretrain.steps, "pretraining steps")->capture_default_str()
        ->check(CLI::Range(1, 10000000));
    cmd->add_option("--finetune-steps", o->finetune.steps, "fine-tuning steps")->capture_default_str()
        ->check(CLI::Range(1, 10000000));
    cmd->add_option("--seed", o->pretrain.seed, "pretraining seed")->capture_default_str();
    cmd->add_option("--eval-n", o->eval_n, "test examples per task")->capture_default_str()->check(CLI::Range(1, 100000));
    cmd->add_flag("--no-cache", o->no_cache, "pretrain again (not kept) even if a cached or shipped base exists");
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_demo(*o); });
}

}  // namespace tl::cli
