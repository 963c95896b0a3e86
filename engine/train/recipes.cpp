#include "train/recipes.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "data/tasks.hpp"

namespace tl {

Method parse_method(const std::string& name) {
    if (name == "full") return Method::full;
    throw Error("[train] unknown method '" + name + "'; available now: full (PEFT methods arrive with engine/peft)");
}

std::string method_name(Method m) {
    switch (m) {
        case Method::full: return "full";
    }
    return "?";
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
    return train(model, cfg, [&] { return corpus_batch(corpus, spec.batch, T); }, observer);
}

TrainSummary finetune(Gpt& model, const FinetuneSpec& spec, TrainObserver* observer, const std::atomic<bool>* cancel) {
    const TaskInfo& task = find_task(spec.task);
    if (spec.batch < 1) throw Error("[train] batch must be at least 1, got " + std::to_string(spec.batch));
    std::vector<Example> examples = task_examples(task, Split::train, spec.train_examples, spec.seed);
    if (examples.empty()) throw Error("[train] task '" + spec.task + "' produced no training examples");
    ExampleBatcher batcher(std::move(examples), spec.batch, int(model.config().n_positions), spec.prompt_loss_weight,
                           ExampleBatcher::Order::shuffled, spec.seed);
    TrainConfig cfg;
    cfg.steps = spec.steps;
    cfg.grad_accum = spec.grad_accum;
    cfg.optim.lr = spec.lr;
    cfg.optim.weight_decay = 0.0f;  // short fine-tunes: decay only pulls weights away from the base
    cfg.warmup_steps = std::min(spec.warmup, spec.steps / 10);
    cfg.cancel = cancel;
    return train(model, cfg, [&] { return batcher.next(); }, observer);
}

}  // namespace tl
