// bench_train: training and inference throughput of the presets on the CPU backend, as tokens/s and GFLOP/s.
// FLOPs per token use the standard estimate 6N (forward + backward matmuls) + 12 L T C (attention), per
// Kaplan et al. 2020 / the PaLM appendix; inference is a third of the training matmuls.
#include <benchmark/benchmark.h>

#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "model/config.hpp"
#include "model/gpt.hpp"
#include "optim/adamw.hpp"

namespace tl {
namespace {

double train_flops_per_token(const GptConfig& c) {
    return 6.0 * double(parameter_count(c)) + 12.0 * double(c.n_layer * c.n_positions * c.n_embd);
}

void train_step(benchmark::State& state, const char* preset_name) {
    const Preset& p = find_preset(preset_name);
    auto be = make_cpu_backend({int(state.range(0))});
    Gpt model(*be, p.config);
    model.init_gpt2(1);
    model.enable_grads();
    AdamW opt(model, {});
    CorpusStream corpus(1);
    const Batch b = corpus_batch(corpus, p.batch, int(p.config.n_positions));
    const float norm = total_weight(b);
    for (auto _ : state) {
        model.zero_grads();
        model.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
        model.backward(b.weights.data(), norm);
        clip_grad_norm(model, 1.0f);
        opt.step(1e-4f);
    }
    const double tokens = double(b.B) * b.T;
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["FLOP/s"] = benchmark::Counter(tokens * train_flops_per_token(p.config),
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
}

void forward_only(benchmark::State& state, const char* preset_name) {
    const Preset& p = find_preset(preset_name);
    auto be = make_cpu_backend({int(state.range(0))});
    Gpt model(*be, p.config);
    model.init_gpt2(1);
    CorpusStream corpus(1);
    const Batch b = corpus_batch(corpus, p.batch, int(p.config.n_positions));
    for (auto _ : state) model.forward(b.tokens.data(), nullptr, b.B, b.T);
    const double tokens = double(b.B) * b.T;
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["FLOP/s"] = benchmark::Counter(tokens * train_flops_per_token(p.config) / 3,
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
}

BENCHMARK_CAPTURE(train_step, tiny, "tiny")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, small, "small")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(forward_only, tiny, "tiny")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace tl

BENCHMARK_MAIN();
