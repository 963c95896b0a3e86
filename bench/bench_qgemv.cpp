// bench_quant, part 2: weight-only quantized GEMV (batch 1, decode) and GEMM (a batch of rows, prefill)
// through the fused kernels of engine/quant/qgemv.hpp, against fp32, on a 16384 x 8192 matrix: 512 MiB in
// fp32, 64 MiB in int4 (+16 MiB of scales), all larger than this machine's 32 MiB last-level cache, so each
// call streams W from memory. Counters: GB/s of bytes moved (codes + scales + x + y), % of the machine's read
// bandwidth measured by `read_bandwidth` in the same process, and GFLOP/s. Run: build/bench/bench_quant
// --benchmark_filter='gemv|gemm|bandwidth'.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "core/rng.hpp"
#include "quant/qgemv.hpp"

namespace tl {
namespace {

constexpr std::int64_t kOut = 16384, kIn = 8192;

// Sums a 1 GiB buffer with AVX2 loads, split across threads; the best of 3 passes, in GB/s. This is the
// ceiling a memory-bound GEMV can reach on this machine (reads only: a GEMV's writes are negligible).
__attribute__((target("avx2"))) double measure_read_bandwidth(int threads) {
    static std::vector<float> buffer(std::size_t(1) << 28, 1.0f);  // 1 GiB, touched once here
    const std::int64_t n = std::int64_t(buffer.size());
    double best = 0;
    for (int pass = 0; pass < 3; ++pass) {
        const auto start = std::chrono::steady_clock::now();
        float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            const std::int64_t lo = n / 32 * t / nt * 32, hi = n / 32 * (t + 1) / nt * 32;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            for (std::int64_t i = lo; i < hi;
                 i += 32) {  // every float is read and added: nothing is dead code
                acc0 = _mm256_add_ps(acc0, _mm256_add_ps(_mm256_loadu_ps(buffer.data() + i),
                                                         _mm256_loadu_ps(buffer.data() + i + 8)));
                acc1 = _mm256_add_ps(acc1, _mm256_add_ps(_mm256_loadu_ps(buffer.data() + i + 16),
                                                         _mm256_loadu_ps(buffer.data() + i + 24)));
            }
            alignas(32) float lanes[8];
            _mm256_store_ps(lanes, _mm256_add_ps(acc0, acc1));
            for (float l : lanes) total += l;
        }
        benchmark::DoNotOptimize(total);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::max(best, double(n) * sizeof(float) / s / 1e9);
    }
    return best;
}

double read_bandwidth(int threads) {
    static std::map<int, double> measured;
    auto it = measured.find(threads);
    if (it == measured.end()) it = measured.emplace(threads, measure_read_bandwidth(threads)).first;
    return it->second;
}

void BM_ReadBandwidth(benchmark::State& state) {
    const int threads = int(state.range(0));
    double gbs = 0;
    for (auto _ : state) gbs = measure_read_bandwidth(threads);
    state.counters["GB/s"] = gbs;
}

// A quantized matrix with random codes and unit-ish scales: the kernels' speed does not depend on the values,
// and quantizing 134 M weights with the reference quantizer would take the benchmark's whole budget.
QuantizedTensor random_quantized(Format format, std::int64_t group) {
    QuantizedTensor q;
    q.scheme.format = format;
    q.scheme.granularity = group == 0 ? Granularity::per_channel : Granularity::per_group;
    q.scheme.group_size = group;
    q.rows = kOut;
    q.cols = kIn;
    const int bits = format == Format::int8 || format == Format::fp8_e4m3 ? 8 : 4;
    Rng rng(7);
    q.packed.resize(std::size_t(kOut * kIn * bits / 8));
    for (auto& b : q.packed) b = std::uint8_t(rng.below(256));
    q.scales.resize(std::size_t(q.num_blocks()));
    for (auto& s : q.scales) s = 0.01f * (1.0f + 0.1f * rng.normal());
    return q;
}

std::vector<float> random_vector(std::int64_t n) {
    Rng rng(8);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = rng.normal();
    return v;
}

void report(benchmark::State& state, double bytes_per_call, double flops_per_call, int threads) {
    state.counters["GB/s"] =
        benchmark::Counter(bytes_per_call, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GFLOP/s"] =
        benchmark::Counter(flops_per_call / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bandwidth_GB/s"] =
        read_bandwidth(threads);  // divide GB/s by this for the % of the ceiling
    state.counters["MiB"] = bytes_per_call / (1 << 20);
}

void BM_GemvFp32(benchmark::State& state) {
    const int threads = int(state.range(0));
    static const std::vector<float> w = random_vector(kOut * kIn);
    const std::vector<float> x = random_vector(kIn);
    std::vector<float> y(static_cast<std::size_t>(kOut));
    for (auto _ : state) gemv_fp32(w, kOut, kIn, x, y, threads);
    report(state, double(w.size() + x.size() + y.size()) * 4, 2.0 * kOut * kIn, threads);
}

void BM_Gemv(benchmark::State& state, Format format, std::int64_t group) {
    const int threads = int(state.range(0));
    const QuantizedTensor q = random_quantized(format, group);
    const std::vector<float> x = random_vector(kIn);
    std::vector<float> y(static_cast<std::size_t>(kOut));
    for (auto _ : state) qgemv(q, x, y, threads);
    report(state, double(q.packed.size()) + 4.0 * double(q.scales.size() + x.size() + y.size()),
           2.0 * kOut * kIn, threads);
}

// The same GEMV with x rounded to int8 per block of 32 and integer dot products (llama.cpp's way).
void BM_GemvQ8(benchmark::State& state, Format format, std::int64_t group) {
    const int threads = int(state.range(0));
    const QuantizedTensor q = random_quantized(format, group);
    const std::vector<float> x = random_vector(kIn);
    std::vector<float> y(static_cast<std::size_t>(kOut));
    for (auto _ : state) qgemv_q8(q, x, y, threads);
    report(state, double(q.packed.size()) + 4.0 * double(q.scales.size() + x.size() + y.size()),
           2.0 * kOut * kIn, threads);
}

// Prefill: a batch of rows through the tile-dequantizing GEMM; compute-bound, so GFLOP/s is the number to
// read.
void BM_Gemm(benchmark::State& state, Format format, std::int64_t group) {
    const int threads = int(state.range(0));
    const std::int64_t batch = state.range(1);
    const QuantizedTensor q = random_quantized(format, group);
    const std::vector<float> x = random_vector(batch * kIn);
    std::vector<float> y(static_cast<std::size_t>(batch * kOut));
    for (auto _ : state) qgemm(q, x, batch, y, threads);
    report(state, double(q.packed.size()) + 4.0 * double(q.scales.size() + x.size() + y.size()),
           2.0 * double(batch) * kOut * kIn, threads);
}

BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_GemvFp32)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemv, int8_channel, Format::int8, 0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemv, int4_g32, Format::int4, 32)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemv, nf4_g64, Format::nf4, 64)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemv, fp8_e4m3_channel, Format::fp8_e4m3, 0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_GemvQ8, int8_channel, Format::int8, 0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_GemvQ8, int4_g32, Format::int4, 32)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemm, int8_channel, Format::int8, 0)
    ->Args({2, 16})
    ->Args({2, 256})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemm, int4_g32, Format::int4, 32)
    ->Args({2, 16})
    ->Args({2, 256})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace tl
