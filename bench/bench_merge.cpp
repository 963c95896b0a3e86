// bench_merge: merge throughput on two `small` models (and `medium`), per method and thread count, in GB/s of
// parameters processed (bytes of every input tensor read: the base and each model, float32). The whole-model
// merge includes planning and the output allocation, i.e. what `tunelab merge` spends between load and save.
// Also: TIES' top-k trim (nth_element) against a full sort, and LoRA svd combining. Read with docs/merging.md.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.hpp"
#include "merge/lora_merge.hpp"
#include "merge/merge.hpp"
#include "model/gpt.hpp"

namespace tl {
namespace {

ModelState random_model(const char* preset, std::uint64_t seed) {
    auto be = make_cpu_backend({1});
    Gpt g(*be, find_preset(preset).config);
    g.init_gpt2(seed);
    return state_of(g);
}

ModelState nudged(const ModelState& base, std::uint64_t seed) {
    ModelState s = base;
    Rng rng(seed);
    for (auto& [name, t] : s.tensors)
        for (auto& v : t.values) v += 0.01f * rng.normal();
    return s;
}

struct Models {
    ModelState base, a, b;
    explicit Models(const char* preset) : base(random_model(preset, 1)), a(nudged(base, 2)), b(nudged(base, 3)) {}
};

const Models& models_for(const char* preset) {
    static const Models small("small"), medium("medium");
    return std::string_view(preset) == "small" ? small : medium;
}

// Two models merged (plus the base for the task methods), as `tunelab merge --models A B [--base BASE]`.
void merge_two(benchmark::State& state, const char* preset, MergeMethod method) {
    const Models& m = models_for(preset);
    omp_set_num_threads(int(state.range(0)));
    MergeSpec s;
    s.method = method;
    const auto one = ParamSchedule::constant(1.0), half = ParamSchedule::constant(0.5);
    if (uses_base(method)) {
        s.models = {{&m.base, one, one, "base"}, {&m.a, one, half, "a"}, {&m.b, one, half, "b"}};
        s.base = 0;
    } else {
        s.models = {{&m.a, one, one, "a"}, {&m.b, one, one, "b"}};
    }
    if (method == MergeMethod::passthrough) s.models.pop_back();  // all layers of one model
    std::int64_t params = 0;
    for (const auto& [name, t] : m.a.tensors) params += t.numel();
    for (auto _ : state) benchmark::DoNotOptimize(merge_models(s));
    const double bytes = double(params) * 4.0 * double(s.models.size());
    state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
    state.counters["params"] = double(params);
}

std::vector<float> normal_floats(std::int64_t n) {
    std::vector<float> d(static_cast<std::size_t>(n));
    Rng rng(1);
    for (auto& x : d) x = rng.normal();
    return d;
}

// TIES trims each task vector to its top-k magnitudes: nth_element (what trim_top_k does) vs a full sort.
void trim_nth_element(benchmark::State& state) {
    const auto n = std::int64_t(state.range(0));
    const std::vector<float> d = normal_floats(n);
    std::vector<float> work, scratch;
    for (auto _ : state) {
        work = d;
        trim_top_k(work.data(), n, 0.2, scratch);
        benchmark::DoNotOptimize(work.data());
    }
    state.SetBytesProcessed(state.iterations() * n * 4);
}

void trim_full_sort(benchmark::State& state) {
    const auto n = std::int64_t(state.range(0));
    const std::vector<float> d = normal_floats(n);
    std::vector<float> work, mags;
    for (auto _ : state) {
        work = d;
        mags.resize(work.size());
        for (std::size_t i = 0; i < work.size(); ++i) mags[i] = std::fabs(work[i]);
        std::sort(mags.begin(), mags.end(), std::greater<float>());
        const float threshold = mags[std::size_t(0.2 * double(n)) - 1];
        for (auto& x : work)
            if (std::fabs(x) < threshold) x = 0;
        benchmark::DoNotOptimize(work.data());
    }
    state.SetBytesProcessed(state.iterations() * n * 4);
}

// LoRA svd combining of two rank-8 adapters on a small model's c_attn (256 -> 768), back to rank r.
void lora_svd(benchmark::State& state) {
    Rng rng(4);
    auto mat = [&](std::int64_t r, std::int64_t c) {
        TensorData t{{r, c}, std::vector<float>(std::size_t(r * c))};
        for (auto& v : t.values) v = rng.normal();
        return t;
    };
    LoraFactorSet a, b;
    a["c_attn"] = {mat(8, 256), mat(768, 8), 2.0};
    b["c_attn"] = {mat(8, 256), mat(768, 8), 2.0};
    const LoraFactorSet pair[] = {a, b};
    for (auto _ : state) benchmark::DoNotOptimize(merge_lora(pair, {LoraCombine::svd, {}, state.range(0)}));
}

}  // namespace

BENCHMARK_CAPTURE(merge_two, small_linear, "small", MergeMethod::linear)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(merge_two, small_slerp, "small", MergeMethod::slerp)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(merge_two, small_task_arithmetic, "small", MergeMethod::task_arithmetic)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(merge_two, small_ties, "small", MergeMethod::ties)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(merge_two, small_dare_ties, "small", MergeMethod::dare_ties)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(merge_two, small_passthrough, "small", MergeMethod::passthrough)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(merge_two, medium_ties, "medium", MergeMethod::ties)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(trim_nth_element)->Arg(1 << 16)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);
BENCHMARK(trim_full_sort)->Arg(1 << 16)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);
BENCHMARK(lora_svd)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond);

}  // namespace tl

BENCHMARK_MAIN();
