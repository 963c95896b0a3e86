// bench_train: training and inference throughput of the presets on the CPU backend, as tokens/s and GFLOP/s;
// generation (KV cache, batch 1) as new tokens/s; the peak resident memory of training.
// FLOPs per token use the standard estimate 6N (forward + backward matmuls) + 12 L T C (attention), per
// Kaplan et al. 2020 / the PaLM appendix; inference is a third of the training matmuls.
// `bench_train --breakdown` instead prints which op costs what share of a training step (through a
// TimedBackend). How to run and read it, and the numbers measured: docs/benchmarks.md.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/timed_backend.hpp"
#include "core/error.hpp"
#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "model/config.hpp"
#include "model/generate.hpp"
#include "model/gpt.hpp"
#include "optim/adamw.hpp"

namespace tl {
namespace {

double train_flops_per_token(const GptConfig& c) {
    return 6.0 * double(parameter_count(c)) + 12.0 * double(c.n_layer * c.n_positions * c.n_embd);
}

// The process's peak resident set so far, in MiB (ru_maxrss is KiB on Linux). A process-wide high-water mark,
// not one benchmark's: it is that benchmark's only when nothing bigger ran before it in the process.
double peak_rss_mib() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / 1024.0;
}

// One training step as train_step runs it: forward, backward, clip, AdamW.
struct Trainer {
    Gpt model;
    std::optional<AdamW> opt;  // built once the model has its gradient buffer
    Batch batch;
    float norm = 0;
    Trainer(Backend& be, const Preset& p) : model(be, p.config) {
        model.init_gpt2(1);
        model.enable_grads();
        opt.emplace(model, AdamWConfig{});
        CorpusStream corpus(1);
        batch = corpus_batch(corpus, p.batch, int(p.config.n_positions));
        norm = total_weight(batch);
    }
    void step() {
        model.zero_grads();
        model.forward(batch.tokens.data(), batch.targets.data(), batch.B, batch.T);
        model.backward(batch.weights.data(), norm);
        clip_grad_norm(model, 1.0f);
        opt->step(1e-4f);
    }
    void warm_up() {  // the first step plans the buffers; later ones find them
        for (int i = 0; i < 3; ++i) step();
    }
    double seconds_per_step(int steps) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) step();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
    }
};

void train_step(benchmark::State& state, const char* preset_name) {
    const Preset& p = find_preset(preset_name);
    auto be = make_cpu_backend({int(state.range(0))});
    Trainer t(*be, p);
    t.step();  // plans the buffers outside the timed loop
    for (auto _ : state) t.step();
    const Batch& b = t.batch;
    const double tokens = double(b.B) * b.T;
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["FLOP/s"] = benchmark::Counter(tokens * train_flops_per_token(p.config),
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
    // The process's peak, not this benchmark's alone: it is training's when train_step is the first benchmark
    // its process runs (it is registered first, and compare_pytorch.py runs each preset and thread count in a
    // process of its own, through --benchmark_filter). In an unfiltered run a row also holds earlier peaks.
    state.counters["peak_RSS_MiB"] = peak_rss_mib();
}

void forward_only(benchmark::State& state, const char* preset_name) {
    const Preset& p = find_preset(preset_name);
    auto be = make_cpu_backend({int(state.range(0))});
    Gpt model(*be, p.config);
    model.init_gpt2(1);
    CorpusStream corpus(1);
    const Batch b = corpus_batch(corpus, p.batch, int(p.config.n_positions));
    model.forward(b.tokens.data(), nullptr, b.B, b.T);  // plans the buffers outside the timed loop
    for (auto _ : state) model.forward(b.tokens.data(), nullptr, b.B, b.T);
    const double tokens = double(b.B) * b.T;
    state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["FLOP/s"] = benchmark::Counter(tokens * train_flops_per_token(p.config) / 3,
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
}

// Greedy generation at batch 1 with the KV cache, as a user calls it: a 1-token prompt, then up to 128 new
// tokens. The last new token is sampled but never fed back, so the model sees prompt + new - 1 positions:
// 128 new tokens fit both presets (tiny's T is 128). Each iteration is a whole generate() (its KvDecoder's
// allocation included), so tokens/s is new tokens per second of the whole call.
void generate(benchmark::State& state, const char* preset_name) {
    constexpr std::int64_t kMaxNewTokens = 128;
    const Preset& p = find_preset(preset_name);
    auto be = make_cpu_backend({int(state.range(0))});
    Gpt model(*be, p.config);
    model.init_gpt2(1);
    std::vector<std::int32_t> prompt(1);
    CorpusStream(1).fill_row(prompt);
    const int n_new = int(std::min(kMaxNewTokens, p.config.n_positions - std::int64_t(prompt.size()) + 1));
    SampleOptions greedy;  // temperature 0: argmax; no stop tokens
    greedy.max_new_tokens = n_new;
    if (tl::generate(model, prompt, greedy).size() != std::size_t(n_new)) {  // also the warm-up
        state.SkipWithError("generate() stopped before max_new_tokens");
        return;
    }
    for (auto _ : state) benchmark::DoNotOptimize(tl::generate(model, prompt, greedy));
    state.counters["tokens/s"] = benchmark::Counter(n_new, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["new_tokens"] = n_new;
    state.SetLabel("batch 1, 1-token prompt, " + std::to_string(n_new) + " new tokens, greedy, KV cache");
}

BENCHMARK_CAPTURE(train_step, tiny, "tiny")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, small, "small")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(forward_only, tiny, "tiny")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(forward_only, small, "small")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(generate, tiny, "tiny")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(generate, small, "small")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// [SECTION] --breakdown: the share of a training step each op takes -------------------------------------

// What each Backend method does in a GPT-2 training step, so a row names its work, not just its call.
// The GEMMs against weights are all in gemm and linear_*; attention_* hold the per-head (T, T) products
// (small GEMMs inside the op) with the softmax; no other row does matrix products.
constexpr struct {
    std::string_view op, what;
} kOpRoles[] = {
    {"linear_forward", "GEMM x W + b: qkv, attn proj, fc proj"},
    {"linear_gelu_forward", "GEMM x W + b for c_fc, GELU on each thread slab"},
    {"linear_backward", "GEMMs dx = dout W^T, dW += x^T dout; db"},
    {"gemm", "GEMMs of the tied LM head: logits, dwte, dx"},
    {"attention_forward", "per head: GEMMs Q K^T and att V, causal softmax"},
    {"attention_backward", "per head: GEMMs for dV, datt, dQ, dK; softmax bwd"},
    {"gelu_forward", "GELU tanh on (N, 4C)"},
    {"gelu_backward", "GELU tanh backward on (N, 4C)"},
    {"layernorm_forward", "ln_1 per layer, ln_f"},
    {"add_layernorm_forward", "residual add + ln_2, one pass per row"},
    {"layernorm_backward", "dx, dgamma, dbeta"},
    {"cross_entropy_forward", "log-sum-exp over V per token"},
    {"cross_entropy_backward", "softmax - onehot over V"},
    {"embedding_forward", "wte[token] + wpe[t]"},
    {"embedding_backward", "scatter-add into dwte, dwpe"},
    {"add", "residual stream x + MLP branch"},
    {"add_inplace", "residual gradient dresid += dbranch"},
    {"adamw", "AdamW update, one call per parameter tensor"},
    {"sum_squares", "gradient norm for clipping"},
    {"scale", "gradient clipping (only when norm > 1)"},
    {"fill_zero", "zero_grads"},
    {"upload_bytes", "tokens, targets, loss weights to the device"},
    {"alloc", "buffer allocation (0 per step once planned)"},
};

std::string_view op_role(std::string_view op) {
    for (const auto& r : kOpRoles)
        if (r.op == op) return r.what;
    return "";
}

struct BreakdownOptions {
    std::string preset = "tiny";
    int steps = 20;
    std::vector<int> threads = {1, 2};
};

void print_breakdown(const Preset& p, int threads, int steps) {
    auto cpu = make_cpu_backend({threads});
    TimedBackend timed(*cpu);
    Trainer t(timed, p);
    Trainer plain(*cpu, p);  // the same steps without the wrapper, to state its cost
    t.warm_up();
    plain.warm_up();
    timed.reset();
    double step_s = 0, plain_s = 0;
    for (int i = 0; i < steps; ++i) {  // alternating, so drift on a shared machine hits both alike
        step_s += t.seconds_per_step(1) / steps;
        plain_s += plain.seconds_per_step(1) / steps;
    }

    const double tokens = double(t.batch.B) * t.batch.T;
    std::printf("\n### %s (batch %d, T %d), %d thread%s: %.1f ms/step, %.0f tokens/s over %d steps\n\n",
                std::string(p.name).c_str(), t.batch.B, t.batch.T, threads, threads == 1 ? "" : "s",
                1e3 * step_s, tokens / step_s, steps);
    std::printf("| op | what it does | calls/step | ms/step | share |\n|---|---|---:|---:|---:|\n");
    double ops_s = 0, gemm_s = 0, attention_s = 0;
    for (const OpTiming& o : timed.timings()) {
        const double per_step = o.seconds / steps;
        ops_s += per_step;
        if (o.name == "gemm" || o.name.starts_with("linear_")) gemm_s += per_step;
        if (o.name.starts_with("attention_")) attention_s += per_step;
        std::printf("| %s | %s | %g | %.2f | %.1f%% |\n", std::string(o.name).c_str(),
                    std::string(op_role(o.name)).c_str(), double(o.calls) / steps, 1e3 * per_step,
                    100 * per_step / step_s);
    }
    const double other_s = step_s - ops_s;
    std::printf("| (host) | between ops: model bookkeeping, timer | | %.2f | %.1f%% |\n", 1e3 * other_s,
                100 * other_s / step_s);
    std::printf(
        "\nWeight GEMMs (gemm + linear_*): %.2f ms/step, %.1f%%. Attention (attention_*): %.2f ms/step, "
        "%.1f%%. Everything else: %.1f%%.\n",
        1e3 * gemm_s, 100 * gemm_s / step_s, 1e3 * attention_s, 100 * attention_s / step_s,
        100 * (step_s - gemm_s - attention_s) / step_s);
    std::printf("The same steps without the TimedBackend: %.1f ms/step (the wrapper's cost: %+.1f%%).\n",
                1e3 * plain_s, 100 * (step_s - plain_s) / plain_s);
}

// Takes --breakdown[=PRESET], --breakdown_steps=N and --breakdown_threads=1,2 out of argv (Google Benchmark
// rejects flags it does not know). Returns whether --breakdown was given.
bool take_breakdown_flags(int& argc, char** argv, BreakdownOptions& opt) {
    bool is_breakdown = false;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--breakdown")
            is_breakdown = true;
        else if (a.starts_with("--breakdown="))
            is_breakdown = true, opt.preset = a.substr(12);
        else if (a.starts_with("--breakdown_steps="))
            opt.steps = std::atoi(argv[i] + 18);
        else if (a.starts_with("--breakdown_threads=")) {
            opt.threads.clear();
            std::string list(a.substr(20));
            for (std::size_t pos = 0; pos < list.size();) {
                const std::size_t comma = std::min(list.find(',', pos), list.size());
                opt.threads.push_back(std::atoi(list.substr(pos, comma - pos).c_str()));
                pos = comma + 1;
            }
        } else
            argv[kept++] = argv[i];
    }
    argc = kept;
    return is_breakdown;
}

}  // namespace
}  // namespace tl

int main(int argc, char** argv) {
    tl::BreakdownOptions opt;
    try {
        if (tl::take_breakdown_flags(argc, argv, opt)) {
            const bool is_bad_thread = std::ranges::any_of(opt.threads, [](int n) { return n < 1; });
            if (opt.steps < 1 || opt.threads.empty() || is_bad_thread)
                throw tl::Error(
                    "[bench_train] --breakdown_steps must be >= 1 and --breakdown_threads a list of "
                    "thread counts like 1,2");
            const tl::Preset& p = tl::find_preset(opt.preset);
            for (int threads : opt.threads) tl::print_breakdown(p, threads, opt.steps);
            return 0;
        }
    } catch (const tl::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
