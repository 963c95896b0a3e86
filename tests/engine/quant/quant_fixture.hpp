// A nano model pretrained briefly and fine-tuned on `reverse`, built once per test binary (a few seconds),
// and the examples the quant tests score on. Not a golden: tests compare quantized variants with this model.
#pragma once
#include <memory>
#include <vector>

#include "data/tasks.hpp"
#include "model/gpt.hpp"
#include "quant/model_quant.hpp"
#include "train/recipes.hpp"

namespace tl::testing {

struct TrainedNano {
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Gpt> model;
    std::vector<Example> test, val;
};

inline TrainedNano& trained_nano() {
    static TrainedNano t = [] {
        TrainedNano r;
        r.backend = make_cpu_backend({2});
        r.model = std::make_unique<Gpt>(*r.backend, find_preset("nano").config);
        r.model->init_gpt2(1);
        PretrainSpec p;
        p.steps = 150;
        p.warmup = 10;
        p.batch = find_preset("nano").batch;
        pretrain(*r.model, p);
        FinetuneSpec f;
        f.task = "reverse";
        f.steps = 100;
        f.batch = 8;
        f.train_examples = 1000;
        finetune(*r.model, f);
        const TaskInfo& task = find_task("reverse");
        r.test = task_examples(task, Split::test, 40, 99);
        r.val = task_examples(task, Split::validation, 32, 7);
        return r;
    }();
    return t;
}

}  // namespace tl::testing
