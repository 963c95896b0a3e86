#include "train/recipes.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "data/tasks.hpp"
#include "data/tokenizer.hpp"
#include "peft/freeze.hpp"
#include "peft/houlsby.hpp"
#include "peft/ia3.hpp"

namespace tl {

namespace {

struct MethodInfo {
    Method method;
    const char* name;
    float lr;  // default peak learning rate (docs/peft.md: the nano sweep of tests/engine/peft)
};
constexpr MethodInfo kMethods[] = {
    {Method::full, "full", 3e-3f},       {Method::lora, "lora", 1e-2f}, {Method::bitfit, "bitfit", 9e-2f},
    {Method::partial, "partial", 3e-2f}, {Method::ia3, "ia3", 9e-2f},   {Method::adapter, "adapter", 3e-2f},
    {Method::prompt, "prompt", 1e-1f},   {Method::ptuning, "ptuning", 1e-2f}, {Method::prefix, "prefix", 3e-2f},
    {Method::qlora, "qlora", 1e-2f},  // LoRA's rate: the adapter is the same, only the base it sees is rounded
};

const MethodInfo& info(Method m) {
    for (const MethodInfo& i : kMethods)
        if (i.method == m) return i;
    TL_ASSERT(false, "[train] method missing from kMethods");
    return kMethods[0];
}

}  // namespace

Method parse_method(const std::string& name) {
    std::string known;
    for (const MethodInfo& i : kMethods) {
        if (name == i.name) return i.method;
        known += std::string(known.empty() ? "" : ", ") + i.name;
    }
    throw Error("[train] unknown method '" + name + "'; available: " + known);
}

std::string method_name(Method m) { return info(m).name; }

float default_lr(Method m) { return info(m).lr; }

template <class A>
static bool has_adapter(const Gpt& model) {
    for (const auto& a : model.adapters())
        if (dynamic_cast<const A*>(a.get())) return true;
    return false;
}

// Idempotent: a module the model already carries (an adapter loaded to train further) is kept, not doubled.
void apply_method(Gpt& model, Method m, const PeftOptions& o, std::uint64_t seed) {
    switch (m) {
        case Method::full: return;
        case Method::qlora:
            if (o.lora_variant == LoraVariant::dora)
                throw Error("[train] DoRA needs the fp32 base weights' column norms; QLoRA keeps the base in NF4 "
                            "only: use --method lora --dora, or qlora without --dora");
            if (!model.store()) qlora_quantize_base(model, o.qlora);
            [[fallthrough]];
        case Method::lora: {
            if (lora_find(model)) return freeze_base(model);
            LoraConfig c;
            c.r = o.rank, c.alpha = o.alpha, c.scaling = o.scaling, c.targets = o.targets;
            c.dropout = o.lora_dropout, c.variant = o.lora_variant;
            lora_attach(model, c, seed);
            return;
        }
        case Method::bitfit: bitfit_apply(model); return;
        case Method::partial:
            if (o.train_modules.empty()) return partial_apply(model, o.layers);
            return partial_apply_named(model, o.train_modules);
        case Method::ia3:
            if (!has_adapter<Ia3Adapter>(model)) ia3_attach(model, seed);
            return;
        case Method::adapter:
            if (!has_adapter<HoulsbyAdapter>(model)) houlsby_attach(model, o.bottleneck, seed);
            return;
        case Method::prompt:
            if (!has_adapter<PromptTuning>(model)) prompt_tuning_attach(model, o.soft_prompt, seed);
            return freeze_base(model);
        case Method::ptuning:
            if (!has_adapter<PTuning>(model)) ptuning_attach(model, o.soft_prompt, seed);
            return freeze_base(model);
        case Method::prefix:
            if (!has_adapter<PrefixTuning>(model)) prefix_tuning_attach(model, o.soft_prompt, o.prefix_projection, seed);
            return freeze_base(model);
    }
}

// With a soft prompt a row holds n_positions - n real tokens: name the virtual tokens before the batcher's error.
static void check_examples_fit(const Gpt& model, const std::vector<Example>& examples, const std::string& task) {
    const std::int64_t n = model.virtual_tokens(), positions = model.config().n_positions;
    if (n == 0) return;
    std::int64_t longest = 0;
    for (const Example& e : examples)
        longest = std::max(longest, std::int64_t(prompt_tokens(e).size() + encode(e.response).size()));
    if (longest <= model.context() + 1) return;  // a row of T inputs holds T + 1 tokens (the last as a target)
    const std::int64_t max_n = positions + 1 - longest;
    throw Error("[train] task '" + task + "' has examples of " + std::to_string(longest) + " tokens, but " +
                std::to_string(n) + " virtual tokens leave rows of " + std::to_string(model.context()) + " (+1) of the " +
                std::to_string(positions) + " positions; " +
                (max_n >= 1 ? "use at most " + std::to_string(max_n) + " virtual tokens" : "no soft prompt fits") +
                ", or a preset with a longer context");
}

TrainSummary pretrain(Gpt& model, const PretrainSpec& spec, TrainObserver* observer, const std::atomic<bool>* cancel) {
    if (spec.batch < 1) throw Error("[train] pretraining batch must be at least 1, got " + std::to_string(spec.batch));
    CorpusStream corpus(spec.seed);
    const int T = int(model.config().n_positions);
    TrainConfig cfg;
    cfg.steps = spec.steps;
    cfg.grad_accum = spec.grad_accum;
    cfg.optim.lr = spec.lr;
    cfg.warmup_steps = std::min(spec.warmup, spec.steps / 10);
    cfg.cancel = cancel;
    cfg.loss_scale = spec.loss_scale;
    const PrecisionScope precision(model.backend(), spec.precision);
    return train(model, cfg, [&] { return corpus_batch(corpus, spec.batch, T); }, observer);
}

TrainSummary finetune(Gpt& model, const FinetuneSpec& spec, TrainObserver* observer, const std::atomic<bool>* cancel) {
    const TaskInfo& task = find_task(spec.task);
    return finetune_on(model, spec, task_examples(task, Split::train, spec.train_examples, spec.seed), observer,
                       cancel);
}

TrainSummary finetune_on(Gpt& model, const FinetuneSpec& spec, std::vector<Example> examples, TrainObserver* observer,
                         const std::atomic<bool>* cancel) {
    if (spec.batch < 1) throw Error("[train] batch must be at least 1, got " + std::to_string(spec.batch));
    if (examples.empty()) throw Error("[train] task '" + spec.task + "' produced no training examples");
    apply_method(model, spec.method, spec.peft, spec.seed);
    check_examples_fit(model, examples, spec.task);
    ExampleBatcher batcher(std::move(examples), spec.batch, int(model.context()), spec.prompt_loss_weight,
                           ExampleBatcher::Order::shuffled, spec.seed);
    TrainConfig cfg;
    cfg.steps = spec.steps;
    cfg.grad_accum = spec.grad_accum;
    cfg.optim.lr = spec.lr;
    cfg.optim.weight_decay = 0.0f;  // short fine-tunes: decay only pulls weights away from the base
    cfg.warmup_steps = std::min(spec.warmup, spec.steps / 10);
    cfg.cancel = cancel;
    cfg.loss_scale = spec.loss_scale;
    cfg.loss_divisor = spec.loss_divisor;
    const PrecisionScope precision(model.backend(), spec.precision);
    const LoraTrainingScope dropout_on(model, spec.seed);  // LoRA dropout acts while training only
    return train(model, cfg, [&] { return batcher.next(); }, observer);
}

}  // namespace tl
