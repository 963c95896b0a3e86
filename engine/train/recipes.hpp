// Recipes: pretraining on the base corpus and fine-tuning on a task, with the defaults the lessons and the CLI
// share. A recipe is a pure function of its spec (seed included) and the starting weights.
#pragma once
#include <cstdint>
#include <string>

#include "train/trainer.hpp"

namespace tl {

struct PretrainSpec {
    std::int64_t steps = 2000;     // tiny: ~4 M tokens, 4-8 CPU-minutes (docs/training.md)
    std::uint64_t seed = 1;
    int batch = 0;              // rows of n_positions tokens; 0: the preset's batch
    float lr = 3e-3f;
    std::int64_t warmup = 100;
    int grad_accum = 1;
};

enum class Method { full };

struct FinetuneSpec {
    std::string task = "reverse";
    Method method = Method::full;
    std::int64_t steps = 300;
    std::uint64_t seed = 1;
    int batch = 16;                  // rows per micro-batch (each row packs several examples)
    int grad_accum = 1;
    float lr = 3e-3f;                // measured on tiny: 1e-3 left facts at 90%, 3e-3 gives >= 97% on every task
    std::int64_t warmup = 20;
    float prompt_loss_weight = 0.0f;
    int train_examples = 4000;       // drawn from the task's train split (fewer if the split is smaller)
};

Method parse_method(const std::string& name);  // tl::Error listing the methods
std::string method_name(Method m);

TrainSummary pretrain(Gpt& model, const PretrainSpec& spec, TrainObserver* observer = nullptr,
                      const std::atomic<bool>* cancel = nullptr);
TrainSummary finetune(Gpt& model, const FinetuneSpec& spec, TrainObserver* observer = nullptr,
                      const std::atomic<bool>* cancel = nullptr);

}  // namespace tl
