// bench_peak: this machine's float32 ceilings, so that bench_train's FLOP/s can be stated as a utilisation.
//   fma_peak/threads:<t>          vector FMA chains in registers: the arithmetic peak, no memory traffic.
//   sgemm/<preset>/<op>/<MxNxK>   tl::cpu::gemm, the CPU backend's GEMM, at the shapes of one layer of the
//                                 preset: the ceiling for the training step's weight GEMMs.
// Not a model benchmark (that is bench_train). Run: build/bench/bench_peak [--benchmark_filter=fma];
// how to read it: docs/benchmarks.md.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_gemm.hpp"
#include "core/rng.hpp"

namespace tl {
namespace {

// [SECTION] FMA peak
// Intrinsics rather than `acc * m + a`: the build is ISO C++ (-std=c++20), where GCC does not contract a
// multiply and an add into an FMA, and auto-vectorised code need not use the widest registers. The widest
// vectors the build targets (-march=native, TL_NATIVE) win.
#if defined(__AVX512F__)
using FVec = __m512;
constexpr int kLanes = 16;
FVec fvec_set(float x) { return _mm512_set1_ps(x); }
FVec fvec_fma(FVec a, FVec b, FVec c) { return _mm512_fmadd_ps(a, b, c); }
#elif defined(__FMA__)
using FVec = __m256;
constexpr int kLanes = 8;
FVec fvec_set(float x) { return _mm256_set1_ps(x); }
FVec fvec_fma(FVec a, FVec b, FVec c) { return _mm256_fmadd_ps(a, b, c); }
#else  // no FMA unit: std::fma becomes a library call, so the number means little, but the tool still runs
using FVec = float;
constexpr int kLanes = 1;
FVec fvec_set(float x) { return x; }
FVec fvec_fma(FVec a, FVec b, FVec c) { return std::fma(a, b, c); }
#endif

// Through memory rather than _mm512_reduce_add_ps, which trips a false -Wuninitialized inside GCC 12's
// header. Outside the timed loop, so its speed does not matter.
float fvec_sum(FVec a) {
    float v[kLanes];
    std::memcpy(v, &a, sizeof v);
    float sum = 0;
    for (float x : v) sum += x;
    return sum;
}

// An FMA's result is ready ~4 cycles after issue and a core issues up to 2 a cycle, so >= 8 chains must be in
// flight to keep both units busy; 12 covers a 6-cycle latency and still fits AVX2's 16 ymm registers with the
// two constants.
constexpr int kChains = 12;
constexpr std::int64_t kSteps = 1 << 16;  // ~0.25 ms a call at 1 FMA/cycle: the OpenMP fork/join is noise

// kSteps dependent FMAs on each of kChains accumulators. acc -> acc * m + a converges (m < 1) to a / (1 - m),
// so values stay normal: no denormal or overflow slow path.
float fma_chains(float m_in, float a_in) {
    const FVec m = fvec_set(m_in), a = fvec_set(a_in);
    FVec acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = fvec_set(float(c));
    for (std::int64_t s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12  // = kChains: fully unrolled, acc[] lives in registers rather than on the stack
        for (int c = 0; c < kChains; ++c) acc[c] = fvec_fma(acc[c], m, a);
    }
    FVec total = acc[0];
    for (int c = 1; c < kChains; ++c) total = fvec_fma(acc[c], fvec_set(1.0f), total);
    return fvec_sum(total);
}

// Each thread runs its own chains. The sum is consumed and m, a are opaque, so the loop can be neither
// dropped nor folded into its closed form.
void fma_peak(benchmark::State& state) {
    const int threads = int(state.range(0));
    float m = 0.999f, a = 1e-3f;
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(a);
    for (auto _ : state) {
        float sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += fma_chains(m, a);
        benchmark::DoNotOptimize(sum);
    }
    const double flops = 2.0 * kLanes * kChains * double(kSteps) * threads;  // an FMA is 2 FLOPs per lane
    state.counters["FLOP/s"] =
        benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
    state.counters["lanes"] = kLanes;
}

// [SECTION] SGEMM at the presets' shapes
// N = B*T rows and C of the presets in engine/model/config.cpp (tiny: 16 x 128 tokens, small: 8 x 256).
struct PresetShape {
    const char* name;
    std::int64_t N, C;
};
constexpr PresetShape kPresets[] = {{"tiny", 16 * 128, 128}, {"small", 8 * 256, 256}};

// One product c (M, N) = op(a) (M, K) op(b) (K, N), as CpuBackend's linear_forward / linear_backward issue
// it: weights W are (C, OC) row-major, forward is x W, backward dx = dout W^T and dW += x^T dout (beta 1).
struct GemmShape {
    const char* op;
    std::int64_t M, N, K;
    Trans ta, tb;
    float beta;
};

std::vector<GemmShape> layer_gemms(std::int64_t N, std::int64_t C) {
    const Trans no = Trans::no, yes = Trans::yes;
    return {
        {"qkv", N, 3 * C, C, no, no, 0.0f},     // x (N, C) W (C, 3C)
        {"attproj", N, C, C, no, no, 0.0f},     // y (N, C) W (C, C)
        {"fc", N, 4 * C, C, no, no, 0.0f},      // x (N, C) W (C, 4C)
        {"fcproj", N, C, 4 * C, no, no, 0.0f},  // h (N, 4C) W (4C, C)
        {"fc_dx", N, C, 4 * C, no, yes, 0.0f},  // dout (N, 4C) W^T, W (C, 4C)
        {"fc_dW", C, 4 * C, N, yes, no, 1.0f},  // x^T dout, x (N, C), dout (N, 4C)
    };
}

// 64-byte aligned like CpuBackend::alloc, so the kernels see the same alignment as in training.
using Floats = std::unique_ptr<float[], decltype(&std::free)>;
Floats random_floats(std::int64_t n, std::uint64_t seed) {
    const std::size_t bytes = (std::size_t(n) * sizeof(float) + 63) / 64 * 64;
    Floats f(static_cast<float*>(std::aligned_alloc(64, bytes)), &std::free);
    Rng rng(seed);
    for (std::int64_t i = 0; i < n; ++i) f[i] = 0.1f * rng.normal();
    return f;
}

void sgemm(benchmark::State& state, const GemmShape& s) {
    const int threads = int(state.range(0));
    const bool ta = s.ta == Trans::yes, tb = s.tb == Trans::yes;
    Floats a = random_floats(s.M * s.K, 1), b = random_floats(s.K * s.N, 2), c = random_floats(s.M * s.N, 3);
    const CMatView op_a = ta ? CMatView(a.get(), s.K, s.M) : CMatView(a.get(), s.M, s.K);
    const CMatView op_b = tb ? CMatView(b.get(), s.N, s.K) : CMatView(b.get(), s.K, s.N);
    const GemmArgs<float> g{MatView(c.get(), s.M, s.N), op_a, op_b, s.ta, s.tb, 1.0f, s.beta};
    cpu::gemm(g, threads);  // untimed: OpenBLAS's first-call setup and the OpenMP pool's start
    for (auto _ : state) {
        cpu::gemm(g, threads);
        benchmark::ClobberMemory();
    }
    state.counters["FLOP/s"] =
        benchmark::Counter(2.0 * double(s.M * s.N * s.K), benchmark::Counter::kIsIterationInvariantRate,
                           benchmark::Counter::kIs1000);
}

// Wall time throughout (UseRealTime): with threads, CPU time would add up the cores.
void register_all() {
    auto* fma = benchmark::RegisterBenchmark("fma_peak", fma_peak)->ArgName("threads")->Arg(1);
    // Logical CPUs: with SMT, siblings share a core's FMA units, so the total is still the machine's peak.
    if (omp_get_num_procs() > 1) fma->Arg(omp_get_num_procs());
    fma->UseRealTime()->Unit(benchmark::kMicrosecond);

    for (const PresetShape& p : kPresets)
        for (const GemmShape& s : layer_gemms(p.N, p.C)) {
            const std::string name = std::string("sgemm/") + p.name + "/" + s.op + "/" + std::to_string(s.M) +
                                     "x" + std::to_string(s.N) + "x" + std::to_string(s.K);
            benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& st) { sgemm(st, s); })
                ->ArgName("threads")
                ->Arg(1)
                ->Arg(2)
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond);
        }
}

}  // namespace
}  // namespace tl

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    tl::register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
