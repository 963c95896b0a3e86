// bench_peft: the training step of each fine-tuning method on `tiny` (one corpus batch, forward + backward + clip
// + AdamW), and the latency of one batch-1 forward for the base, LoRA merged, LoRA unmerged, IA3 unmerged and the
// Houlsby adapter: the course claims merging removes LoRA's extra latency. Numbers and the machine: docs/peft.md.
#include <benchmark/benchmark.h>

#include <optional>
#include <vector>

#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "model/config.hpp"
#include "model/gpt.hpp"
#include "optim/adamw.hpp"
#include "peft/ia3.hpp"
#include "peft/lora.hpp"
#include "train/recipes.hpp"
#include "train/trainer.hpp"

namespace tl {
namespace {

constexpr Method kMethods[] = {Method::full, Method::partial, Method::bitfit, Method::adapter, Method::ia3,
                               Method::lora};

// One fine-tuning step with the method attached, as train() runs it. Arg 0: method index, arg 1: threads.
void peft_train_step(benchmark::State& state) {
    const Method method = kMethods[state.range(0)];
    const Preset& p = find_preset("tiny");
    auto be = make_cpu_backend({int(state.range(1))});
    Gpt model(*be, p.config);
    model.init_gpt2(1);
    apply_method(model, method, PeftOptions{}, 1);  // lora r 8 on c_attn, c_proj, c_fc; partial: last block
    model.enable_grads();
    AdamW opt(model, AdamWConfig{});
    CorpusStream corpus(1);
    const Batch b = corpus_batch(corpus, p.batch, int(p.config.n_positions));
    const float norm = total_weight(b);
    auto step = [&] {
        model.zero_grads();
        model.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
        model.backward(b.weights.data(), norm);
        clip_grad_norm(model, 1.0f);
        opt.step(1e-4f);
    };
    step();  // plans the buffers outside the timed loop
    for (auto _ : state) step();
    state.SetLabel(method_name(method));
    state.counters["trainable"] = double(model.params().trainable_count());
    state.counters["tokens/s"] =
        benchmark::Counter(double(b.B) * double(b.T), benchmark::Counter::kIsIterationInvariantRate);
}

enum class Variant { base, lora_merged, lora_unmerged, ia3_unmerged, adapter };

// One forward of a single row of T tokens (arg 1), no targets. Arg 0: the variant, arg 2: threads.
void peft_latency(benchmark::State& state) {
    const Variant v = Variant(state.range(0));
    const std::int64_t T = state.range(1);
    const Preset& p = find_preset("tiny");
    auto be = make_cpu_backend({int(state.range(2))});
    Gpt model(*be, p.config);
    model.init_gpt2(1);
    PeftOptions opt;
    if (v == Variant::lora_merged || v == Variant::lora_unmerged) apply_method(model, Method::lora, opt, 1);
    if (v == Variant::lora_merged) lora_merge_and_detach(model);
    if (v == Variant::ia3_unmerged) apply_method(model, Method::ia3, opt, 1);
    if (v == Variant::adapter) apply_method(model, Method::adapter, opt, 1);
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(T));
    for (std::int64_t i = 0; i < T; ++i) tokens[std::size_t(i)] = std::int32_t('a' + i % 26);
    model.forward(tokens.data(), nullptr, 1, T);
    for (auto _ : state) model.forward(tokens.data(), nullptr, 1, T);
    const char* names[] = {"base", "lora merged", "lora unmerged", "ia3 unmerged", "adapter"};
    state.SetLabel(names[int(v)]);
}

void train_args(benchmark::internal::Benchmark* b) {
    for (int threads : {1, 2})
        for (int m = 0; m < int(std::size(kMethods)); ++m) b->Args({m, threads});
}

void latency_args(benchmark::internal::Benchmark* b) {
    for (int threads : {1, 2})
        for (int T : {32, 128})
            for (int v = 0; v < 5; ++v) b->Args({v, T, threads});
}

BENCHMARK(peft_train_step)->Apply(train_args)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(peft_latency)->Apply(latency_args)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace tl

BENCHMARK_MAIN();
