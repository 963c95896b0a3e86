// bench_train: training and inference throughput of the presets on the CPU backend, as tokens/s and GFLOP/s;
// generation (KV cache, batch 1) as new tokens/s; the peak resident memory of training. `--device cuda
// [--precision fp32,tf32,bf16,fp16] [--attention gemm,fused]` instead times training and forward of tiny, small
// and medium on the GPU, one row per preset, GEMM precision and attention forward (benchmarks
// train_step/<preset>/cuda_<precision>[_fused], forward_only/...).
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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/timed_backend.hpp"
#include "core/backend.hpp"
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

// The CPU rows, registered in main unless --device cuda: train_step/<preset>/<threads>/real_time, ... (the
// names compare_pytorch.py filters on). train_step first: its peak_RSS_MiB is training's.
void register_cpu_benchmarks() {
    using Fn = void (*)(benchmark::State&, const char*);
    for (const auto& [name, fn] : {std::pair<const char*, Fn>{"train_step", train_step},
                                   {"forward_only", forward_only},
                                   {"generate", generate}})
        for (const char* preset : {"tiny", "small"})
            benchmark::RegisterBenchmark((std::string(name) + "/" + preset).c_str(), fn, preset)
                ->Arg(1)
                ->Arg(2)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
}

// [SECTION] --device cuda: training and forward on the GPU ------------------------------------------------
// The same Trainer step and forward as the CPU rows, in each GEMM precision. The GPU runs ops asynchronously,
// so each iteration is timed on the host clock up to a synchronize() (Google Benchmark's manual time), and
// tokens/s is computed from those times. peak_device_MiB: the backend's ledger (every cudaMalloc'd byte of
// the model, activations, gradients, optimizer and scratch), not the process's RSS.
using Clock = std::chrono::steady_clock;

double device_mib(const Backend& be) { return double(be.ledger().peak_total()) / (1024.0 * 1024.0); }

void set_gpu_counters(benchmark::State& state, const Preset& p, const Batch& b, double flops_per_token,
                      double seconds, const Backend& be) {
    const double tokens = double(b.B) * b.T * double(state.iterations());
    state.counters["tokens/s"] = seconds > 0 ? tokens / seconds : 0.0;
    state.counters["FLOP/s"] = benchmark::Counter(seconds > 0 ? tokens * flops_per_token / seconds : 0.0,
                                                  benchmark::Counter::kDefaults, benchmark::Counter::kIs1000);
    state.counters["peak_device_MiB"] = device_mib(be);
    state.SetLabel(std::string(p.name) + ", batch " + std::to_string(b.B) + " x T " + std::to_string(b.T) +
                   ", " + be.name());
}

void train_step_gpu(benchmark::State& state, Backend& be, const Preset& p) {
    be.ledger().reset_peaks();
    Trainer t(be, p);
    t.warm_up();  // plans the buffers and lets cuBLAS pick its kernels outside the timed loop
    be.synchronize();
    double seconds = 0;
    for (auto _ : state) {
        const auto start = Clock::now();
        t.step();
        be.synchronize();
        const double s = std::chrono::duration<double>(Clock::now() - start).count();
        state.SetIterationTime(s);
        seconds += s;
    }
    set_gpu_counters(state, p, t.batch, train_flops_per_token(p.config), seconds, be);
}

void forward_only_gpu(benchmark::State& state, Backend& be, const Preset& p) {
    be.ledger().reset_peaks();
    Gpt model(be, p.config);
    model.init_gpt2(1);
    CorpusStream corpus(1);
    const Batch b = corpus_batch(corpus, p.batch, int(p.config.n_positions));
    for (int i = 0; i < 3; ++i) model.forward(b.tokens.data(), nullptr, b.B, b.T);
    be.synchronize();
    double seconds = 0;
    for (auto _ : state) {
        const auto start = Clock::now();
        model.forward(b.tokens.data(), nullptr, b.B, b.T);
        be.synchronize();
        const double s = std::chrono::duration<double>(Clock::now() - start).count();
        state.SetIterationTime(s);
        seconds += s;
    }
    set_gpu_counters(state, p, b, train_flops_per_token(p.config) / 3, seconds, be);
}

using GpuBench = void (*)(benchmark::State&, Backend&, const Preset&);

// One backend per precision, made before any benchmark runs (so no GPU, or no CUDA in the build, is exit 2
// with the backend's message), kept for the process.
// Backends are ordered attention-major: backends[a * precisions.size() + i].
void register_gpu_benchmarks(const std::vector<std::unique_ptr<Backend>>& backends,
                             const std::vector<GemmPrecision>& precisions, const std::vector<CudaAttention>& attentions) {
    for (const char* preset : {"tiny", "small", "medium"}) {
        const Preset& p = find_preset(preset);
        for (std::size_t k = 0; k < backends.size(); ++k) {
            Backend* be = backends[k].get();
            const std::size_t i = k % precisions.size();
            const bool fused = attentions[k / precisions.size()] == CudaAttention::fused;
            const std::string tail = std::string("/") + preset + "/cuda_" +
                                     std::string(gemm_precision_name(precisions[i])) + (fused ? "_fused" : "");
            for (const auto& [name, fn] : {std::pair<const char*, GpuBench>{"train_step", train_step_gpu},
                                           {"forward_only", forward_only_gpu}})
                benchmark::RegisterBenchmark((name + tail).c_str(),
                                             [be, &p, fn = fn](benchmark::State& st) {
                                                 try {  // a CUDA error in a run fails that row only
                                                     fn(st, *be, p);
                                                 } catch (const std::exception& e) {
                                                     st.SkipWithError(e.what());
                                                 }
                                             })
                    ->Unit(benchmark::kMillisecond)
                    ->UseManualTime();
        }
    }
}

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

struct DeviceOptions {
    std::string device = "cpu";
    std::vector<GemmPrecision> precisions;  // empty: fp32 (--device cuda only)
    std::vector<CudaAttention> attentions;  // --attention gemm,fused (--device cuda only); empty: gemm
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

// Takes --device cpu|cuda and --precision fp32,tf32,bf16,fp16 (also as --device=cuda, --precision=bf16) out
// of argv. tl::Error for a bad value or --precision without --device cuda.
void take_device_flags(int& argc, char** argv, DeviceOptions& opt) {
    int kept = 1;
    std::string precisions, attentions;
    auto value = [&](int& i, std::string_view flag) -> std::string {
        const std::string_view a = argv[i];
        if (a.size() > flag.size() && a[flag.size()] == '=') return std::string(a.substr(flag.size() + 1));
        if (i + 1 >= argc) throw Error("[bench_train] " + std::string(flag) + " needs a value");
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--device" || a.starts_with("--device="))
            opt.device = value(i, "--device");
        else if (a == "--precision" || a.starts_with("--precision="))
            precisions = value(i, "--precision");
        else if (a == "--attention" || a.starts_with("--attention="))
            attentions = value(i, "--attention");
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    if (opt.device != "cpu" && opt.device != "cuda")
        throw Error("[bench_train] --device must be cpu or cuda, got '" + opt.device + "'");
    if (!precisions.empty() && opt.device != "cuda")
        throw Error("[bench_train] --precision is for --device cuda (the CPU rows are FP32); got " +
                    precisions);
    for (std::size_t pos = 0; pos < precisions.size();) {
        const std::size_t comma = std::min(precisions.find(',', pos), precisions.size());
        opt.precisions.push_back(parse_gemm_precision(precisions.substr(pos, comma - pos)));
        pos = comma + 1;
    }
    if (opt.precisions.empty()) opt.precisions.push_back(GemmPrecision::fp32);
    if (!attentions.empty() && opt.device != "cuda")
        throw Error("[bench_train] --attention is for --device cuda; got " + attentions);
    for (std::size_t pos = 0; pos < attentions.size();) {
        const std::size_t comma = std::min(attentions.find(',', pos), attentions.size());
        const std::string name = attentions.substr(pos, comma - pos);
        if (name != "gemm" && name != "fused")
            throw Error("[bench_train] --attention takes gemm and/or fused (comma-separated); got '" + name + "'");
        opt.attentions.push_back(name == "fused" ? CudaAttention::fused : CudaAttention::gemm);
        pos = comma + 1;
    }
    if (opt.attentions.empty()) opt.attentions.push_back(CudaAttention::gemm);
}

}  // namespace
}  // namespace tl

int main(int argc, char** argv) {
    tl::BreakdownOptions opt;
    tl::DeviceOptions dev;
    std::vector<std::unique_ptr<tl::Backend>> gpus;  // --device cuda: one per precision, alive for every run
    try {
        tl::take_device_flags(argc, argv, dev);
        if (dev.device == "cuda") {
            for (const tl::CudaAttention att : dev.attentions)
                for (const tl::GemmPrecision p : dev.precisions) gpus.push_back(tl::make_cuda_backend({0, p, att}));
            std::fprintf(stderr, "bench_train on %s\n", gpus.front()->name().c_str());
        }
        if (tl::take_breakdown_flags(argc, argv, opt)) {
            if (dev.device == "cuda")
                throw tl::Error(
                    "[bench_train] --breakdown times ops on the CPU only (GPU ops run asynchronously; use nsys "
                    "there)");
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
    if (dev.device == "cuda")
        tl::register_gpu_benchmarks(gpus, dev.precisions, dev.attentions);
    else
        tl::register_cpu_benchmarks();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
