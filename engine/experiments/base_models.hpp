// The base models lessons start from, pretrained once and kept in the cache folder, so every lesson after the
// first starts at once. Keyed by preset, steps, seed, lr and the model revision (changed training retrains).
// The lessons' default base (tiny, 2000 steps, seed 1) is also shipped in assets/models, built by
// scripts/build-base.sh, so a fresh machine starts the course without the ~3 minutes of pretraining.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "experiments/experiment.hpp"
#include "model/gpt.hpp"
#include "train/recipes.hpp"

namespace tl {

// $XDG_CACHE_HOME/tunelab, else ~/.cache/tunelab, else <tmp>/tunelab-cache.
std::filesystem::path cache_root();

struct BaseSpec {
    std::string preset = "tiny";
    std::int64_t steps = 2000;
    std::uint64_t seed = 1;
    float lr = 3e-3f;
    bool use_shipped = true;  // false: pretrain (live) unless the cache has it, even when assets/ ships it
};

struct BaseModel {
    std::unique_ptr<Gpt> model;
    Result curve;          // the pretraining run's dashboard result (loss, lr, grad norm, tokens/s, memory)
    bool was_cached = false;
    bool was_shipped = false;  // loaded from assets/models (a kind of cached)
};

std::filesystem::path base_model_dir(const BaseSpec& spec);
// Where shipped models live: $TUNELAB_ASSETS/models, else the source tree's assets/models.
std::filesystem::path shipped_models_root();
// The held-out corpus batch (its own seed, never drawn by pretraining) whose mean loss is the `val_loss` series.
double base_validation_loss(Gpt& model, const BaseSpec& spec);
// Loads the cached base, else the shipped one (spec.use_shipped), else pretrains it (streaming the dashboard to
// ctx) and caches it. A cancelled pretraining is returned but not cached.
BaseModel obtain_base(Backend& backend, const BaseSpec& spec, RunContext& ctx);

// A fine-tune of the base on one task (spec.method full, bitfit or partial: a plain model), cached beside the
// base and keyed by the base, task, method, steps, seed, batch and lr. For experiments that need "a model that
// already does task A" (forgetting, PEFT from a related skill). curve: the fine-tuning dashboard.
BaseModel obtain_finetuned(Backend& backend, const BaseSpec& base, const FinetuneSpec& spec, RunContext& ctx);

// A base fine-tuned on a task (full fine-tuning, train/recipes.hpp defaults otherwise), cached like the base:
// keyed by the base spec, task, steps, lr, seed and kEngineRevision. Lessons that start from a trained model
// (quantization, merging, ...) share it. `curve` is the fine-tuning dashboard; a cancelled run is not cached.
struct FinetunedSpec {
    BaseSpec base;
    std::string task = "reverse";
    std::int64_t steps = 300;
    float lr = 3e-3f;
    std::uint64_t seed = 1;
};
std::filesystem::path finetuned_model_dir(const FinetunedSpec& spec);
BaseModel obtain_finetuned(Backend& backend, const FinetunedSpec& spec, RunContext& ctx);

// The base spec a lesson experiment names with its `preset`, `base_steps` and `base_seed` arguments.
BaseSpec base_spec_from(const ExperimentArgs& a);
// The full fine-tune on `task_a` (`a_steps`, `seed`, `batch`; full fine-tuning's default LR) that experiments
// with `start: task_a` begin from, so method_compare and soft_prompt_compare share one cached start model.
FinetuneSpec task_a_start_spec(const ExperimentArgs& a);
// Declares those three arguments (tiny, 2000, 1 by default) for an experiment that starts from a base.
void add_base_params(std::vector<ParamSpec>& params);

}  // namespace tl
