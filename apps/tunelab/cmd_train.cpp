// `tunelab pretrain` and `tunelab finetune`: train, print a summary, save the model folder atomically.
#include <chrono>
#include <cstdio>

#include "common.hpp"
#include "core/error.hpp"
#include "model/config.hpp"
#include "model/model_io.hpp"
#include "train/progress.hpp"
#include "train/recipes.hpp"

namespace tl::cli {

namespace {

struct PretrainOptions {
    CommonOptions common;
    std::string preset = "tiny";
    std::string out;
    PretrainSpec spec;
};

struct FinetuneOptions {
    CommonOptions common;
    std::string base, out, method = "full";
    FinetuneSpec spec;
};

void print_memory(const Backend& be) {
    const MemoryLedger& m = be.ledger();
    std::printf("peak memory: %s total (", format_bytes(double(m.peak_total())).c_str());
    for (int c = 0; c < kMemCategoryCount; ++c)
        if (m.peak(MemCategory(c)) > 0)
            std::printf("%s%s %s", c ? ", " : "", std::string(kMemCategoryNames[c]).c_str(),
                        format_bytes(double(m.peak(MemCategory(c)))).c_str());
    std::printf(")\n");
}

void run_pretrain(PretrainOptions& o) {
    const Preset& preset = find_preset(o.preset);
    if (o.spec.batch == 0) o.spec.batch = preset.batch;
    if (o.spec.steps < 1) throw Error("[cli] --steps must be at least 1");
    check_output_folder(o.out);
    auto backend = make_backend(o.common);
    Gpt model(*backend, preset.config);
    model.init_gpt2(o.spec.seed);
    std::printf("pretraining %s (%lld parameters) on the base corpus: %lld steps x %d rows x %lld tokens, %s\n",
                std::string(preset.name).c_str(), (long long)model.params().total(), (long long)o.spec.steps,
                o.spec.batch, (long long)preset.config.n_positions, backend->name().c_str());
    ProgressBar bar("pretrain");
    const TrainSummary s = pretrain(model, o.spec, &bar);
    std::printf("done in %.1f s (%.0f tokens/s), final loss %.4f\n", s.seconds, double(s.tokens) / s.seconds,
                s.final_loss());
    print_memory(*backend);
    ModelMeta meta{std::string(preset.name), {{"pretrain", "corpus", "full", o.spec.steps, o.spec.seed, s.seconds,
                                               s.final_loss()}}};
    save_model(o.out, model, meta);
    std::printf("saved %s\n", o.out.c_str());
}

void run_finetune(FinetuneOptions& o) {
    o.spec.method = parse_method(o.method);
    find_task(o.spec.task);  // validate before any work
    if (o.spec.steps < 1) throw Error("[cli] --steps must be at least 1");
    check_output_folder(o.out);
    auto backend = make_backend(o.common);
    LoadedModel base = load_model(o.base, *backend);
    Gpt& model = *base.model;
    std::printf("fine-tuning %s on task '%s' with method %s: trainable %lld of %lld parameters, %s\n",
                o.base.c_str(), o.spec.task.c_str(), o.method.c_str(), (long long)model.params().trainable_count(),
                (long long)model.params().total(), backend->name().c_str());
    ProgressBar bar("finetune");
    const TrainSummary s = finetune(model, o.spec, &bar);
    std::printf("done in %.1f s, final loss %.4f\n", s.seconds, s.final_loss());
    print_memory(*backend);
    base.meta.history.push_back({"finetune", o.spec.task, o.method, o.spec.steps, o.spec.seed, s.seconds,
                                 s.final_loss()});
    save_model(o.out, model, base.meta);
    std::printf("saved %s (evaluate it with: tunelab eval --model %s --task %s)\n", o.out.c_str(), o.out.c_str(),
                o.spec.task.c_str());
}

}  // namespace

void add_pretrain_command(CLI::App& app) {
    auto o = std::make_shared<PretrainOptions>();
    CLI::App* cmd = app.add_subcommand("pretrain", "Pretrain a GPT-2 preset from scratch on the base corpus");
    cmd->add_option("--preset", o->preset, "nano, tiny, small or medium")->capture_default_str();
    cmd->add_option("--steps", o->spec.steps, "optimizer steps")->capture_default_str();
    cmd->add_option("--seed", o->spec.seed, "seed for initialisation and data")->capture_default_str();
    cmd->add_option("--out", o->out, "model folder to write")->required();
    cmd->add_option("--batch", o->spec.batch, "rows per step (default: the preset's)")->check(CLI::Range(1, 4096));
    cmd->add_option("--lr", o->spec.lr, "peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--grad-accum", o->spec.grad_accum, "micro-batches per step")->check(CLI::Range(1, 1024));
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_pretrain(*o); });
}

void add_finetune_command(CLI::App& app) {
    auto o = std::make_shared<FinetuneOptions>();
    CLI::App* cmd = app.add_subcommand("finetune", "Fine-tune a model folder on a task");
    cmd->add_option("--base", o->base, "model folder to start from")->required();
    cmd->add_option("--task", o->spec.task, "task name (see `tunelab tasks`)")->required();
    cmd->add_option("--method", o->method, "fine-tuning method")->capture_default_str();
    cmd->add_option("--steps", o->spec.steps, "optimizer steps")->capture_default_str();
    cmd->add_option("--seed", o->spec.seed, "seed for data order")->capture_default_str();
    cmd->add_option("--out", o->out, "model folder to write")->required();
    cmd->add_option("--batch", o->spec.batch, "rows per micro-batch")->capture_default_str()->check(CLI::Range(1, 4096));
    cmd->add_option("--grad-accum", o->spec.grad_accum, "micro-batches per step")->check(CLI::Range(1, 1024));
    cmd->add_option("--lr", o->spec.lr, "peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--prompt-loss-weight", o->spec.prompt_loss_weight, "loss weight of prompt tokens (0..1)")
        ->capture_default_str()->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--train-examples", o->spec.train_examples, "examples drawn from the train split")
        ->capture_default_str()->check(CLI::Range(1, 10000000));
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_finetune(*o); });
}

}  // namespace tl::cli
