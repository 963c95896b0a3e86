#include "experiments/base_models.hpp"

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.hpp"

#ifndef TL_ASSETS_DIR
#define TL_ASSETS_DIR "assets"
#endif
#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "data/tasks.hpp"
#include "experiments/dashboard_recorder.hpp"
#include "experiments/engine_version.hpp"
#include "io/atomic_file.hpp"
#include "model/config.hpp"
#include "model/model_io.hpp"
#include "peft/peft_common.hpp"
#include "train/evaluate.hpp"
#include "train/recipes.hpp"

namespace tl {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCurveFile = "pretrain_result.json";

// Mean next-token loss on a fixed held-out corpus batch (its own seed, never drawn by training).
Batch held_out_batch(const BaseSpec& spec) {
    const Preset& preset = find_preset(spec.preset);
    CorpusStream held_out(spec.seed + 0x9E3779B97F4A7C15ull);
    return corpus_batch(held_out, preset.batch, int(preset.config.n_positions));
}

double corpus_validation_loss(Gpt& model, const Batch& batch) {
    model.forward(batch.tokens.data(), batch.targets.data(), batch.B, batch.T);
    std::vector<float> losses(std::size_t(batch.B) * std::size_t(batch.T));
    model.backend().copy_to_host(losses.data(), model.losses());
    double sum = 0;
    for (float l : losses) sum += l;
    return sum / double(losses.size());
}

Result read_curve(const fs::path& dir) {
    std::ifstream in(dir / kCurveFile);
    std::stringstream text;
    text << in.rdbuf();
    return result_from_json(text.str());
}

std::optional<BaseModel> load_cached(Backend& backend, const fs::path& dir) {
    if (!fs::exists(dir / "model.safetensors") || !fs::exists(dir / kCurveFile)) return std::nullopt;
    try {
        BaseModel b;
        b.curve = read_curve(dir);
        b.model = std::move(load_model(dir, backend).model);
        b.was_cached = true;
        return b;
    } catch (const Error&) {
        return std::nullopt;  // damaged cache: pretrain again and replace it
    }
}

// The shipped copy counts only if its record says it is this spec's run (a folder name is easy to copy by hand).
std::optional<BaseModel> load_shipped(Backend& backend, const BaseSpec& spec) {
    const fs::path dir = shipped_models_root() / base_model_dir(spec).filename();
    if (!fs::exists(dir / "model.safetensors") || !fs::exists(dir / kCurveFile)) return std::nullopt;
    try {
        LoadedModel loaded = load_model(dir, backend);
        const std::vector<TrainingRecord>& h = loaded.meta.history;
        if (loaded.meta.preset != spec.preset || h.size() != 1 || h[0].steps != spec.steps || h[0].seed != spec.seed)
            return std::nullopt;
        BaseModel b;
        b.curve = read_curve(dir);
        b.curve.texts.push_back({"base_source", "shipped: " + dir.string() + " (rebuilt by scripts/build-base.sh)"});
        b.model = std::move(loaded.model);
        b.was_cached = true;
        b.was_shipped = true;
        return b;
    } catch (const Error&) {
        return std::nullopt;  // a damaged shipped copy: pretrain instead
    }
}

}  // namespace

fs::path cache_root() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "tunelab";
    if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "tunelab";
    return fs::temp_directory_path() / "tunelab-cache";
}

fs::path shipped_models_root() {
    if (const char* a = std::getenv("TUNELAB_ASSETS"); a && *a) return fs::path(a) / "models";
    return fs::path(TL_ASSETS_DIR) / "models";
}

double base_validation_loss(Gpt& model, const BaseSpec& spec) {
    return corpus_validation_loss(model, held_out_batch(spec));
}

fs::path base_model_dir(const BaseSpec& s) {
    char lr[32];
    std::snprintf(lr, sizeof lr, "%g", s.lr);
    return cache_root() / "models" /
           ("base-" + s.preset + "-steps" + std::to_string(s.steps) + "-seed" + std::to_string(s.seed) + "-lr" + lr +
            "-r" + std::to_string(kModelRevision));
}

BaseModel obtain_base(Backend& backend, const BaseSpec& spec, RunContext& ctx) {
    const fs::path dir = base_model_dir(spec);
    if (auto cached = load_cached(backend, dir)) return std::move(*cached);
    if (spec.use_shipped)
        if (auto shipped = load_shipped(backend, spec)) return std::move(*shipped);

    const Preset& preset = find_preset(spec.preset);
    BaseModel b;
    b.model = std::make_unique<Gpt>(backend, preset.config);
    b.model->init_gpt2(spec.seed);
    PretrainSpec p;
    p.steps = spec.steps;
    p.seed = spec.seed;
    p.lr = spec.lr;
    p.batch = preset.batch;
    const Batch val = held_out_batch(spec);
    DashboardRecorder recorder(b.curve, ctx, "pretrain " + spec.preset, std::max<std::int64_t>(1, spec.steps / 20),
                               [&] { return corpus_validation_loss(*b.model, val); });
    const TrainSummary s = pretrain(*b.model, p, &recorder, ctx.cancel);
    b.curve.scalars.push_back({"final_loss", s.final_loss(), ""});
    b.curve.scalars.push_back({"seconds", s.seconds, "s"});
    b.curve.scalars.push_back({"tokens_per_s", s.seconds > 0 ? double(s.tokens) / s.seconds : 0, "tokens/s"});
    b.curve.scalars.push_back({"parameters", double(b.model->params().total()), ""});
    b.curve.is_cancelled = s.is_cancelled;
    if (s.is_cancelled) return b;
    fs::create_directories(dir.parent_path());
    save_model(dir, *b.model,
               {spec.preset, {{"pretrain", "corpus", "full", spec.steps, spec.seed, s.seconds, s.final_loss()}}});
    write_file_atomic(dir / kCurveFile, to_json(b.curve));
    return b;
}

BaseModel obtain_finetuned(Backend& backend, const BaseSpec& base, const FinetuneSpec& spec, RunContext& ctx) {
    if (spec.method != Method::full && spec.method != Method::bitfit && spec.method != Method::partial)
        throw Error("[experiments] obtain_finetuned caches plain models: method " + method_name(spec.method) +
                    " attaches modules; use full, bitfit or partial");
    char lr[32];
    std::snprintf(lr, sizeof lr, "%g", spec.lr);
    const fs::path dir = base_model_dir(base).string() + "-ft-" + spec.task + "-" + method_name(spec.method) +
                         "-steps" + std::to_string(spec.steps) + "-seed" + std::to_string(spec.seed) + "-b" +
                         std::to_string(spec.batch) + "-lr" + lr;
    if (auto cached = load_cached(backend, dir)) return std::move(*cached);
    BaseModel start = obtain_base(backend, base, ctx);
    if (start.curve.is_cancelled) return start;
    BaseModel b;
    b.model = std::move(start.model);
    DashboardRecorder recorder(b.curve, ctx, "fine-tune " + spec.task, std::max<std::int64_t>(1, spec.steps / 20));
    const TrainSummary s = finetune(*b.model, spec, &recorder, ctx.cancel);
    b.curve.scalars.push_back({"final_loss", s.final_loss(), ""});
    b.curve.scalars.push_back({"seconds", s.seconds, "s"});
    b.curve.is_cancelled = s.is_cancelled;
    if (s.is_cancelled) return b;
    unfreeze_all(*b.model);  // as a model loaded from the cache is
    fs::create_directories(dir.parent_path());
    save_model(dir, *b.model,
               {base.preset,
                {{"pretrain", "corpus", "full", base.steps, base.seed, 0, 0},
                 {"finetune", spec.task, method_name(spec.method), spec.steps, spec.seed, s.seconds, s.final_loss()}}});
    write_file_atomic(dir / kCurveFile, to_json(b.curve));
    return b;
}

fs::path finetuned_model_dir(const FinetunedSpec& s) {
    char lr[32];
    std::snprintf(lr, sizeof lr, "%g", s.lr);
    return cache_root() / "models" /
           ("ft-" + base_model_dir(s.base).filename().string() + "-" + s.task + "-steps" + std::to_string(s.steps) +
            "-lr" + lr + "-seed" + std::to_string(s.seed) + "-r" + std::to_string(kModelRevision));
}

BaseModel obtain_finetuned(Backend& backend, const FinetunedSpec& spec, RunContext& ctx) {
    const fs::path dir = finetuned_model_dir(spec);
    if (auto cached = load_cached(backend, dir)) return std::move(*cached);
    BaseModel b = obtain_base(backend, spec.base, ctx);
    if (b.curve.is_cancelled) return b;
    b.curve = Result{};
    b.was_cached = false;
    FinetuneSpec f;
    f.task = spec.task;
    f.steps = spec.steps;
    f.lr = spec.lr;
    f.seed = spec.seed;
    const TaskInfo& task = find_task(spec.task);
    const std::vector<Example> val = task_examples(task, Split::validation, 32, 7);
    DashboardRecorder recorder(b.curve, ctx, "finetune " + spec.task, std::max<std::int64_t>(1, spec.steps / 20),
                               [&] { return response_loss(*b.model, val, 16); });
    const TrainSummary s = finetune(*b.model, f, &recorder, ctx.cancel);
    b.curve.scalars.push_back({"final_loss", s.final_loss(), ""});
    b.curve.scalars.push_back({"seconds", s.seconds, "s"});
    b.curve.is_cancelled = s.is_cancelled;
    if (s.is_cancelled) return b;
    ModelMeta meta{spec.base.preset,
                   {{"pretrain", "corpus", "full", spec.base.steps, spec.base.seed, 0, 0},
                    {"finetune", spec.task, "full", spec.steps, spec.seed, s.seconds, s.final_loss()}}};
    fs::create_directories(dir.parent_path());
    save_model(dir, *b.model, meta);
    write_file_atomic(dir / kCurveFile, to_json(b.curve));
    return b;
}

BaseSpec base_spec_from(const ExperimentArgs& a) {
    BaseSpec s;
    s.preset = a.choice("preset");
    s.steps = a.integer("base_steps");
    s.seed = std::uint64_t(a.integer("base_seed"));
    return s;
}

FinetuneSpec task_a_start_spec(const ExperimentArgs& a) {
    FinetuneSpec first;
    first.task = a.choice("task_a");
    first.method = Method::full;
    first.steps = a.integer("a_steps");
    first.seed = std::uint64_t(a.integer("seed"));
    first.lr = default_lr(Method::full);
    first.batch = int(a.integer("batch"));
    return first;
}

void add_base_params(std::vector<ParamSpec>& params) {
    std::vector<std::string> presets;
    for (const Preset& p : all_presets()) presets.emplace_back(p.name);
    params.push_back({"preset", ParamKind::choice, "tiny", 0, 0, presets, "model size of the base"});
    params.push_back({"base_steps", ParamKind::integer, "2000", 1, 100000, {}, "pretraining steps of the base"});
    params.push_back({"base_seed", ParamKind::integer, "1", 0, 1000000, {}, "pretraining seed of the base"});
}

}  // namespace tl
