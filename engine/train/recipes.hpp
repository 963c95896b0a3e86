// Recipes: pretraining on the base corpus and fine-tuning on a task, with the defaults the lessons and the CLI
// share. A recipe is a pure function of its spec (seed included) and the starting weights.
#pragma once
#include <cstdint>
#include <string>

#include "backend/rounding_backend.hpp"
#include "data/tasks.hpp"
#include "peft/lora.hpp"
#include "peft/prefix.hpp"
#include "peft/qlora.hpp"
#include "peft/soft_prompt.hpp"
#include "train/trainer.hpp"

namespace tl {

struct PretrainSpec {
    std::int64_t steps = 2000;     // tiny: ~4 M tokens, 4-8 CPU-minutes (docs/training.md)
    std::uint64_t seed = 1;
    int batch = 0;              // rows of n_positions tokens; 0: the preset's batch
    float lr = 3e-3f;
    std::int64_t warmup = 100;
    int grad_accum = 1;
    Precision precision = Precision::fp32;  // bf16/fp16: the model must be built on a RoundingBackend
    LossScaleConfig loss_scale;             // fp16's loss scaling (optim/loss_scale.hpp); none by default
};

// full: every parameter; the rest are PEFT methods (engine/peft, docs/peft.md). prompt and ptuning are soft
// prompts (prompt tuning, P-tuning): n virtual tokens before every row; prefix: per-layer key/value prefixes.
// qlora: LoRA on a frozen base whose block matrices are stored in NF4 (peft/qlora.hpp).
enum class Method { full, lora, bitfit, partial, ia3, adapter, prompt, ptuning, prefix, qlora };

// The options of the PEFT methods; each method reads its own.
struct PeftOptions {
    int rank = 8;                          // lora, qlora: r (the lora options apply to qlora's adapter too)
    float alpha = 16.0f;                   // lora: scale alpha / r (alpha / sqrt(r) with rslora)
    LoraScaling scaling = LoraScaling::standard;
    std::vector<std::string> targets = {"c_attn", "c_proj", "c_fc"};  // lora: module names (PEFT matching)
    float lora_dropout = 0.0f;             // lora: dropout on the branch input while training, [0, 1)
    LoraVariant lora_variant = LoraVariant::lora;  // lora: dora = weight-decomposed (PEFT's use_dora)
    std::int64_t layers = 1;               // partial: train the last k blocks
    std::vector<std::string> train_modules;  // partial: train these named modules instead (name substrings)
    std::int64_t bottleneck = 16;          // adapter: Houlsby bottleneck width m
    SoftPromptConfig soft_prompt;          // prompt, ptuning, prefix: virtual tokens, init, encoder width
    PrefixProjection prefix_projection = PrefixProjection::none;  // prefix: the reparameterisation MLP
    QloraBaseOptions qlora;                // qlora: the NF4 base's group size and double quantization
};

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
    PeftOptions peft;                // read by the PEFT methods (lr is not: see default_lr)
    int train_examples = 4000;       // drawn from the task's train split (fewer if the split is smaller)
    // Simulated low precision (backend/rounding_backend.hpp; the model must be built on a RoundingBackend for
    // bf16/fp16) and fp16's loss scaling. The precision holds during training only.
    Precision precision = Precision::fp32;
    LossScaleConfig loss_scale;
    double loss_divisor = 1;  // TrainConfig::loss_divisor: smaller gradients, same optimum (experiments only)
};

Method parse_method(const std::string& name);  // tl::Error listing the methods
std::string method_name(Method m);
// Each method's default peak learning rate, measured on nano/tiny short runs (docs/peft.md): PEFT methods
// train fewer, often zero- or one-initialised parameters and need several times full fine-tuning's rate.
float default_lr(Method m);
// Freezes and attaches what the method needs (nothing for full); keeps a module already attached, so calling it
// before finetune() (which calls it too) is harmless. Exposed for the CLI, tests and lessons.
void apply_method(Gpt& model, Method m, const PeftOptions& options, std::uint64_t seed);

TrainSummary pretrain(Gpt& model, const PretrainSpec& spec, TrainObserver* observer = nullptr,
                      const std::atomic<bool>* cancel = nullptr);
TrainSummary finetune(Gpt& model, const FinetuneSpec& spec, TrainObserver* observer = nullptr,
                      const std::atomic<bool>* cancel = nullptr);
// The same on given examples instead of spec.task's train split (spec.task only names it in errors): for
// experiments that change the examples, e.g. a hard prompt before every prompt (soft_prompt_compare).
TrainSummary finetune_on(Gpt& model, const FinetuneSpec& spec, std::vector<Example> examples,
                         TrainObserver* observer = nullptr, const std::atomic<bool>* cancel = nullptr);

}  // namespace tl
