// bench_quant: CPU throughput of the format codecs and quantizers (engine/formats) on a 1024 x 1024 N(0, 0.02²)
// matrix, in GB/s of float32 input, with the scheme's accuracy (SQNR, dB) and bits per weight as counters.
// The reference point for the scalar codec is the CPU's own F16C conversion (one instruction per 8 values).
// These are the reference (specification) codecs, not tuned kernels. Read with docs/formats.md.
// `bench_quant --device cuda [--quick] [--act bf16|fp16] [--reps N]` runs the GPU benchmarks instead
// (bench_quant_cuda.cpp: quantized GEMV/GEMM against cuBLAS and the memory roofline; docs/benchmarks.md).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_quant_cuda.hpp"
#include "core/error.hpp"

#include "core/rng.hpp"
#include "formats/quantizer.hpp"

namespace tl {
namespace {

constexpr std::int64_t kRows = 1024, kCols = 1024;

const std::vector<float>& weights() {
    static const std::vector<float> w = [] {
        Rng rng(1);
        std::vector<float> v(std::size_t(kRows * kCols));
        for (auto& x : v) x = 0.02f * rng.normal();
        return v;
    }();
    return w;
}

void set_bytes(benchmark::State& state) {
    state.SetBytesProcessed(std::int64_t(state.iterations()) * kRows * kCols * std::int64_t(sizeof(float)));
    state.SetItemsProcessed(std::int64_t(state.iterations()) * kRows * kCols);
}

// Scalar round-to-format of every value (encode + decode), the generic minifloat / integer / code-book path.
void BM_FormatRound(benchmark::State& state, Format f) {
    const FormatInfo& info = format_info(f);
    const std::vector<float>& w = weights();
    std::vector<float> out(w.size());
    const float scale = f == Format::bf16 || f == Format::fp16 || f == Format::tf32 ? 1.0f : 1.0f / 0.1f;
    for (auto _ : state) {
        for (std::size_t i = 0; i < w.size(); ++i) out[i] = float(format_round(info, w[i] * scale));
        benchmark::DoNotOptimize(out.data());
    }
    set_bytes(state);
}

__attribute__((target("avx,f16c"))) void BM_F16cRoundTrip(benchmark::State& state) {
    const std::vector<float>& w = weights();
    std::vector<float> out(w.size());
    for (auto _ : state) {
        for (std::size_t i = 0; i + 8 <= w.size(); i += 8) {
            const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(&w[i]), _MM_FROUND_TO_NEAREST_INT);
            _mm256_storeu_ps(&out[i], _mm256_cvtph_ps(h));
        }
        benchmark::DoNotOptimize(out.data());
    }
    set_bytes(state);
}

QuantScheme scheme(Format f, Granularity g, std::int64_t group, ClipMethod clip, DoubleQuant dq) {
    QuantScheme s;
    s.format = f, s.granularity = g, s.group_size = group, s.clip = clip, s.double_quant = dq;
    return s;
}

void BM_FakeQuantize(benchmark::State& state, QuantScheme s) {
    const std::vector<float>& w = weights();
    std::vector<float> x;
    for (auto _ : state) {
        x = w;
        fake_quantize(x, kRows, kCols, s);
        benchmark::DoNotOptimize(x.data());
    }
    double sig = 0, err = 0;
    for (std::size_t i = 0; i < w.size(); ++i) sig += double(w[i]) * w[i], err += (double(x[i]) - w[i]) * (double(x[i]) - w[i]);
    state.counters["sqnr_db"] = 10 * std::log10(sig / err);
    state.counters["bits_per_weight"] = bits_per_weight(s, kRows, kCols);
    state.SetLabel(describe(s));
    set_bytes(state);
}

void BM_Dequantize(benchmark::State& state, QuantScheme s) {
    const QuantizedTensor q = quantize(weights(), kRows, kCols, s);
    std::vector<float> out(weights().size());
    for (auto _ : state) {
        dequantize_into(q, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(describe(s));
    set_bytes(state);
}

using G = Granularity;
using C = ClipMethod;
using D = DoubleQuant;
BENCHMARK(BM_F16cRoundTrip)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FormatRound, fp16, Format::fp16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FormatRound, bf16, Format::bf16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FormatRound, fp8_e4m3, Format::fp8_e4m3)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FormatRound, int8, Format::int8)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FormatRound, nf4, Format::nf4)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FakeQuantize, int8_channel, scheme(Format::int8, G::per_channel, 0, C::absmax, D::none))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FakeQuantize, int4_g32, scheme(Format::int4, G::per_group, 32, C::absmax, D::none))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FakeQuantize, int4_g32_mse, scheme(Format::int4, G::per_group, 32, C::mse, D::none))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FakeQuantize, nf4_g64_dq, scheme(Format::nf4, G::per_group, 64, C::absmax, D::fp8_e4m3))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FakeQuantize, fp8_e4m3_tensor, scheme(Format::fp8_e4m3, G::per_tensor, 0, C::absmax, D::none))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FakeQuantize, ternary_absmean, scheme(Format::ternary, G::per_tensor, 0, C::absmean, D::none))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FakeQuantize, palette4, scheme(Format::palette4, G::per_tensor, 0, C::absmax, D::none))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Dequantize, int4_g32, scheme(Format::int4, G::per_group, 32, C::absmax, D::none))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Dequantize, nf4_g64_dq, scheme(Format::nf4, G::per_group, 64, C::absmax, D::fp8_e4m3))
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tl

// Our flags come out of argv before Google Benchmark reads the rest (--benchmark_out=... and the like).
int main(int argc, char** argv) {
    std::string device = "cpu";
    tl::bench::CudaQuantOptions cuda;
    std::vector<char*> rest = {argv[0]};
    bool has_filter = false;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto value = [&]() -> std::string {
                if (i + 1 >= argc) throw tl::Error("[bench_quant] " + a + " needs a value");
                return argv[++i];
            };
            if (a == "--device") {
                device = value();
            } else if (a == "--quick") {
                cuda.quick = true;
            } else if (a == "--act") {
                cuda.act = value();
            } else if (a == "--reps") {
                const std::string v = value();
                char* end = nullptr;
                cuda.reps = int(std::strtol(v.c_str(), &end, 10));
                if (end == v.c_str() || *end != 0) throw tl::Error("[bench_quant] --reps needs an integer; got '" + v + "'");
            } else {
                has_filter = has_filter || a.rfind("--benchmark_filter", 0) == 0;
                rest.push_back(argv[i]);
            }
        }
        if (device != "cpu" && device != "cuda")
            throw tl::Error("[bench_quant] --device must be cpu or cuda; got '" + device + "'");
        if (device == "cuda") tl::bench::register_cuda_quant_benchmarks(cuda);
    } catch (const tl::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    // Each device runs only its own cases unless a filter says otherwise.
    static char cpu_filter[] = "--benchmark_filter=^BM_", cuda_filter[] = "--benchmark_filter=^cuda/";
    if (!has_filter) rest.push_back(device == "cuda" ? cuda_filter : cpu_filter);
    int n = int(rest.size());
    benchmark::Initialize(&n, rest.data());
    if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
