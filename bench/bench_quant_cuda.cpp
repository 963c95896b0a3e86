// bench_quant --device cuda: weight-only quantized products on the GPU (engine/quant/cuda) against cuBLAS, the
// memory roofline and a float64 reference, for shapes from the tunelab presets up to 8192 x 8192 and the
// 28672 x 8192 / 8192 x 28672 MLP projections, at batches 1..256.
//
// Every case is timed with CUDA events around one launch, after an L2 flush (a memset of twice the L2), `reps`
// times; the median is reported (Google Benchmark's manual time holds the same launches). Counters per case:
//   time_us, gbps (bytes moved / time: W's codes and scales, X, Y), tflops (2 B N K / time), pct_roofline (gbps
//   over the copy bandwidth measured at start), pct_peak (tflops over the bf16 cuBLAS peak measured at start),
//   speedup_vs_bf16 (cuBLAS bf16 GEMM time on the same shape and batch over this time), err_bound_ratio (the
//   worst |y - ref| over the precision's bound, on sampled rows; <= 1 passes) and rel_rms_err.
// The weights of the large shapes are random valid layouts (quant_layout.hpp: random_quant_layout), not
// quantized on the host (that would take minutes); the cuBLAS baselines multiply the int4 g128 matrix's
// dequantized values, so every row of one shape multiplies comparable weights. bench/quant_report.py turns the
// JSON (--benchmark_out) into docs' tables and roofline plot.
#include "bench_quant_cuda.hpp"

#include <benchmark/benchmark.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/format_table.hpp"
#include "quant/cuda/act_bits.hpp"
#include "quant/cuda/qmatmul.hpp"
#include "quant/quant_layout.hpp"

namespace tl::bench {

namespace {

using cuda_quant::ActType;
using cuda_quant::DeviceQuantMatrix;
using qdecode::ScaleMode;

void check(cudaError_t e, const char* call) {
    if (e != cudaSuccess)
        throw Error(std::string("[bench_quant] ") + call + " failed: " + cudaGetErrorName(e) + " (" +
                    cudaGetErrorString(e) + ")");
}
void check(cublasStatus_t s, const char* call) {
    if (s != CUBLAS_STATUS_SUCCESS)
        throw Error(std::string("[bench_quant] ") + call + " failed: " + cublasGetStatusString(s));
}
#define BQ_CHECK(call) check((call), #call)

class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) { BQ_CHECK(cudaMalloc(&p_, std::max<std::size_t>(bytes, 16))); }
    ~DeviceBuffer() { cudaFree(p_); }
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(o.bytes_) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        std::swap(p_, o.p_), std::swap(bytes_, o.bytes_);
        return *this;
    }
    void* get() const { return p_; }
    std::size_t bytes() const { return bytes_; }
    template <class T>
    void upload(const std::vector<T>& v) {
        BQ_CHECK(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    template <class T>
    std::vector<T> download(std::size_t count, std::size_t offset = 0) const {
        std::vector<T> v(count);
        BQ_CHECK(cudaMemcpy(v.data(), static_cast<const T*>(p_) + offset, count * sizeof(T), cudaMemcpyDeviceToHost));
        return v;
    }

private:
    void* p_ = nullptr;
    std::size_t bytes_ = 0;
};

using cuda_quant::error_ratio;
using cuda_quant::from_bits;
using cuda_quant::round_to;
using cuda_quant::to_bits;
using cuda_quant::unit_roundoff;

cudaDataType cuda_type(ActType t) { return t == ActType::bf16 ? CUDA_R_16BF : CUDA_R_16F; }

// ---- the GPU, measured once -----------------------------------------------------------------------------------
struct Gpu {
    std::string name;
    int sms = 0;
    std::size_t l2 = 0;
    double copy_gbps = 0, bf16_tflops = 0;
    cublasHandle_t blas = nullptr;
    cublasLtHandle_t lt = nullptr;
    DeviceBuffer flush, lt_workspace;
    cudaEvent_t start = nullptr, stop = nullptr;
};
Gpu& gpu() {
    static Gpu g;
    return g;
}

// Milliseconds of the fastest of `reps` runs of launch (after one warm-up), timed with events.
double best_ms(const std::function<void()>& launch, int reps) {
    Gpu& g = gpu();
    launch();
    BQ_CHECK(cudaDeviceSynchronize());
    float best = 1e30f;
    for (int i = 0; i < reps; ++i) {
        BQ_CHECK(cudaEventRecord(g.start));
        launch();
        BQ_CHECK(cudaEventRecord(g.stop));
        BQ_CHECK(cudaEventSynchronize(g.stop));
        float ms = 0;
        BQ_CHECK(cudaEventElapsedTime(&ms, g.start, g.stop));
        best = std::min(best, ms);
    }
    return best;
}

// y (m x n, column-major) = op(A) x B with A stored k x m column-major (W row-major, m = out features),
// B k x n column-major (X row-major, n = batch): one cublasGemmEx, fp32 accumulation.
void cublas_gemm(const void* w, const void* x, void* y, std::int64_t rows, std::int64_t cols, std::int64_t batch,
                 cudaDataType type) {
    const float alpha = 1, beta = 0;
    BQ_CHECK(cublasGemmEx(gpu().blas, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(batch), int(cols), &alpha, w, type,
                          int(cols), x, type, int(cols), &beta, y, type, int(rows), CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT));
}

void measure_gpu() {
    Gpu& g = gpu();
    int device = 0;
    BQ_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    BQ_CHECK(cudaGetDeviceProperties(&prop, device));
    g.name = prop.name, g.sms = prop.multiProcessorCount, g.l2 = std::size_t(prop.l2CacheSize);
    BQ_CHECK(cublasCreate(&g.blas));
    BQ_CHECK(cublasLtCreate(&g.lt));
    BQ_CHECK(cudaEventCreate(&g.start));
    BQ_CHECK(cudaEventCreate(&g.stop));
    g.flush = DeviceBuffer(2 * g.l2);
    g.lt_workspace = DeviceBuffer(std::size_t(32) << 20);
    {  // copy bandwidth: device-to-device copies of 1 GiB (read + write counted)
        const std::size_t bytes = std::size_t(1) << 30;
        DeviceBuffer a(bytes), b(bytes);
        BQ_CHECK(cudaMemset(a.get(), 1, bytes));
        const double ms = best_ms([&] { BQ_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice)); }, 10);
        g.copy_gbps = 2.0 * double(bytes) / (ms * 1e-3) / 1e9;
    }
    {  // dense bf16 peak: cuBLAS 8192^3
        const std::int64_t n = 8192;
        DeviceBuffer a(std::size_t(n * n) * 2), b(std::size_t(n * n) * 2), c(std::size_t(n * n) * 2);
        BQ_CHECK(cudaMemset(a.get(), 0x3C, a.bytes()));  // bf16 0x3C3C ~ 0.0115
        BQ_CHECK(cudaMemset(b.get(), 0x3C, b.bytes()));
        const double ms = best_ms([&] { cublas_gemm(a.get(), b.get(), c.get(), n, n, n, CUDA_R_16BF); }, 10);
        g.bf16_tflops = 2.0 * double(n * n * n) / (ms * 1e-3) / 1e12;
    }
}

// ---- what is benchmarked --------------------------------------------------------------------------------------
struct Shape {
    const char* origin;
    std::int64_t rows, cols;  // W: rows = output features, cols = input features
};
struct QFormat {
    const char* name;
    QuantKind kind;
    ScaleMode mode;
    std::int64_t group;  // 0: per channel
};
const std::vector<QFormat>& qformats() {
    static const std::vector<QFormat> f = {
        {"int8_channel", QuantKind::int8, ScaleMode::fp16, 0},
        {"int4_g32", QuantKind::int4, ScaleMode::fp16, 32},
        {"int4_g64", QuantKind::int4, ScaleMode::fp16, 64},
        {"int4_g128", QuantKind::int4, ScaleMode::fp16, 128},
        {"nf4_g64_dq", QuantKind::nf4, ScaleMode::dq_fp8, 64},
        {"fp8_e4m3_channel", QuantKind::fp8_e4m3, ScaleMode::fp16, 0},
    };
    return f;
}
constexpr std::int64_t kMaxBatch = 256;
constexpr int kSampleRows = 64, kSampleBatch = 8;  // error check: these many rows x batch entries

// Everything one shape's cases need, built when the shape's first case runs and dropped for the next shape.
struct ShapeData {
    std::int64_t rows = 0, cols = 0;
    std::map<std::string, QuantLayout> host;  // format name -> layout (for the error check)
    std::map<std::string, DeviceQuantMatrix> device;
    // Per activation type (index: ActType): the int4 g128 matrix dequantized to it (the cuBLAS baselines'
    // W), and X (kMaxBatch, cols), on the host too for the error check.
    DeviceBuffer w16[2], x[2];
    std::vector<std::uint16_t> x_host[2];
    DeviceBuffer y, scratch;  // y (kMaxBatch, rows) of up to 4-byte values; scratch (rows, cols) 16-bit
    DeviceBuffer x8;          // random bytes: X for the cuBLASLt fp8 / int8 baselines
};

std::unique_ptr<ShapeData>& current_shape() {
    static std::unique_ptr<ShapeData> s;
    return s;
}

ShapeData& shape_data(const Shape& shape) {
    auto& cur = current_shape();
    if (cur && cur->rows == shape.rows && cur->cols == shape.cols) return *cur;
    cur.reset();  // free the previous shape's buffers first
    auto s = std::make_unique<ShapeData>();
    s->rows = shape.rows, s->cols = shape.cols;
    std::uint64_t seed = 100;
    for (const QFormat& f : qformats()) {
        QuantLayout layout = random_quant_layout(f.kind, f.mode, shape.rows, shape.cols,
                                                 f.group == 0 ? shape.cols : f.group, seed++);
        s->device.emplace(f.name, DeviceQuantMatrix(layout));
        s->host.emplace(f.name, std::move(layout));
    }
    Rng rng(7);
    std::vector<float> x(std::size_t(kMaxBatch * shape.cols));
    for (auto& v : x) v = rng.normal();
    for (const ActType t : {ActType::bf16, ActType::fp16}) {
        const int i = int(t);
        s->w16[i] = DeviceBuffer(std::size_t(shape.rows * shape.cols) * 2);
        cuda_quant::dequantize(s->device.at("int4_g128"), s->w16[i].get(), t);
        s->x_host[i].resize(x.size());
        for (std::size_t k = 0; k < x.size(); ++k) s->x_host[i][k] = to_bits(x[k], t);
        s->x[i] = DeviceBuffer(x.size() * 2);
        s->x[i].upload(s->x_host[i]);
    }
    s->scratch = DeviceBuffer(std::size_t(shape.rows * shape.cols) * 2);
    s->y = DeviceBuffer(std::size_t(kMaxBatch * shape.rows) * 4);
    std::vector<std::uint8_t> x8(std::size_t(kMaxBatch * shape.cols));
    for (auto& v : x8) v = std::uint8_t(rng.below(0x7E));  // finite, positive e4m3 and int8 values
    s->x8 = DeviceBuffer(x8.size());
    s->x8.upload(x8);
    BQ_CHECK(cudaDeviceSynchronize());
    cur = std::move(s);
    return *cur;
}

// ---- timing and counters --------------------------------------------------------------------------------------
// The benchmark loop: each iteration flushes L2, then times one launch with events; returns the median (ms).
double run_timed(benchmark::State& state, const std::function<void()>& launch) {
    Gpu& g = gpu();
    launch();  // warm-up (and a first error check)
    BQ_CHECK(cudaDeviceSynchronize());
    std::vector<double> ms;
    int i = 0;
    for (auto _ : state) {
        BQ_CHECK(cudaMemsetAsync(g.flush.get(), i++ & 0xFF, g.flush.bytes()));
        BQ_CHECK(cudaEventRecord(g.start));
        launch();
        BQ_CHECK(cudaEventRecord(g.stop));
        BQ_CHECK(cudaEventSynchronize(g.stop));
        float t = 0;
        BQ_CHECK(cudaEventElapsedTime(&t, g.start, g.stop));
        ms.push_back(t);
        state.SetIterationTime(double(t) * 1e-3);
    }
    std::sort(ms.begin(), ms.end());
    return ms.empty() ? 0.0 : ms[ms.size() / 2];
}

std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, double>& bf16_times() {
    static std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, double> m;
    return m;
}

void set_counters(benchmark::State& state, double ms, double bytes, std::int64_t rows, std::int64_t cols,
                  std::int64_t batch) {
    const Gpu& g = gpu();
    const double s = ms * 1e-3, flops = 2.0 * double(batch * rows * cols);
    state.counters["rows"] = double(rows);
    state.counters["cols"] = double(cols);
    state.counters["batch"] = double(batch);
    state.counters["bytes"] = bytes;
    state.counters["time_us"] = ms * 1e3;
    state.counters["gbps"] = bytes / s / 1e9;
    state.counters["tflops"] = flops / s / 1e12;
    state.counters["pct_roofline"] = 100 * bytes / s / 1e9 / g.copy_gbps;
    state.counters["pct_peak"] = 100 * flops / s / 1e12 / g.bf16_tflops;
    const auto it = bf16_times().find({rows, cols, batch});
    if (it != bf16_times().end()) state.counters["speedup_vs_bf16"] = it->second / ms;
}

// The worst error over its bound, and the relative RMS error, on sampled rows and batch entries of y (type t)
// against a float64 product; weight_row(r, out) gives row r of W as the kernel should have multiplied it.
void set_error_counters(benchmark::State& state, const ShapeData& d, std::int64_t batch, ActType t,
                        const std::function<void(std::int64_t, float*)>& weight_row) {
    const std::int64_t rows = d.rows, cols = d.cols;
    const std::vector<std::uint16_t> y = d.y.download<std::uint16_t>(std::size_t(batch * rows));
    const double u = unit_roundoff(t), acc = double(cols) * std::ldexp(1.0, -24);
    std::vector<float> w(static_cast<std::size_t>(cols));
    double worst = 0, err2 = 0, ref2 = 0;
    const std::int64_t row_step = std::max<std::int64_t>(1, rows / kSampleRows);
    const std::int64_t batch_step = std::max<std::int64_t>(1, batch / kSampleBatch);
    for (std::int64_t r = 0; r < rows; r += row_step) {
        weight_row(r, w.data());
        for (std::int64_t b = 0; b < batch; b += batch_step) {
            double ref = 0, mag = 0;
            for (std::int64_t k = 0; k < cols; ++k) {
                const double p = double(w[std::size_t(k)]) * from_bits(d.x_host[int(t)][std::size_t(b * cols + k)], t);
                ref += p, mag += std::fabs(p);
            }
            const double got = from_bits(y[std::size_t(b * rows + r)], t);
            const double bound = u * std::fabs(ref) + 2 * (u + acc) * mag;
            worst = std::max(worst, error_ratio(got, ref, bound));
            err2 += (got - ref) * (got - ref), ref2 += ref * ref;
        }
    }
    state.counters["err_bound_ratio"] = worst;
    state.counters["rel_rms_err"] = ref2 > 0 ? std::sqrt(err2 / ref2) : 0.0;
}

// ---- the cases ----------------------------------------------------------------------------------------------
enum class QKernel { gemv, gemm, dequant_cublas };

void bench_quantized(benchmark::State& state, Shape shape, std::int64_t batch, const QFormat& f, QKernel kernel,
                     ActType t) {
    ShapeData& d = shape_data(shape);
    const DeviceQuantMatrix& w = d.device.at(f.name);
    const void* x = d.x[int(t)].get();
    const double ms = run_timed(state, [&] {
        switch (kernel) {
            case QKernel::gemv: cuda_quant::qgemv(w, x, d.y.get(), batch, t); break;
            case QKernel::gemm: cuda_quant::qgemm(w, x, d.y.get(), batch, t); break;
            case QKernel::dequant_cublas:
                cuda_quant::dequantize(w, d.scratch.get(), t);
                cublas_gemm(d.scratch.get(), x, d.y.get(), shape.rows, shape.cols, batch, cuda_type(t));
                break;
        }
    });
    // dequantize + cuBLAS moves W's codes, writes and reads the 16-bit copy, then X and Y.
    const double w_bytes = double(w.bytes()) + (kernel == QKernel::dequant_cublas ? 4.0 * double(shape.rows * shape.cols) : 0.0);
    set_counters(state, ms, w_bytes + 2.0 * double(batch * (shape.rows + shape.cols)), shape.rows, shape.cols, batch);
    const QuantLayout& host = d.host.at(f.name);
    set_error_counters(state, d, batch, t, [&](std::int64_t r, float* out) {
        dequantize_layout_row(host, r, out);
        if (kernel == QKernel::dequant_cublas)  // that path multiplies W rounded to the activation type
            for (std::int64_t k = 0; k < shape.cols; ++k) out[k] = round_to(out[k], t);
    });
    state.SetLabel(f.name);
}

void bench_cublas(benchmark::State& state, Shape shape, std::int64_t batch, ActType t) {
    ShapeData& d = shape_data(shape);
    const double ms = run_timed(state, [&] {
        cublas_gemm(d.w16[int(t)].get(), d.x[int(t)].get(), d.y.get(), shape.rows, shape.cols, batch, cuda_type(t));
    });
    if (t == ActType::bf16) bf16_times()[{shape.rows, shape.cols, batch}] = ms;
    set_counters(state, ms, 2.0 * double(shape.rows * shape.cols + batch * (shape.rows + shape.cols)), shape.rows,
                 shape.cols, batch);
    const QuantLayout& host = d.host.at("int4_g128");
    set_error_counters(state, d, batch, t, [&](std::int64_t r, float* out) {
        dequantize_layout_row(host, r, out);
        for (std::int64_t k = 0; k < shape.cols; ++k) out[k] = round_to(out[k], t);
    });
    state.SetLabel(t == ActType::bf16 ? "cublas bf16" : "cublas fp16");
}

// cuBLASLt with 8-bit X as well as W (W8A8): fp8 E4M3 x E4M3 -> bf16, or int8 x int8 -> int32, in the "TN"
// layout both need. Cards without the type (fp8 before sm_89) skip with cuBLASLt's reason.
void bench_cublaslt(benchmark::State& state, Shape shape, std::int64_t batch, bool fp8) {
    ShapeData& d = shape_data(shape);
    Gpu& g = gpu();
    const void* w = d.device.at(fp8 ? "fp8_e4m3_channel" : "int8_channel").codes();
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    const cudaDataType in = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_8I, out = fp8 ? CUDA_R_16BF : CUDA_R_32I;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const std::size_t ws = g.lt_workspace.bytes();
    try {
        BQ_CHECK(cublasLtMatmulDescCreate(&op, fp8 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32I, fp8 ? CUDA_R_32F : CUDA_R_32I));
        BQ_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        BQ_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        BQ_CHECK(cublasLtMatrixLayoutCreate(&a, in, std::uint64_t(shape.cols), std::uint64_t(shape.rows), shape.cols));
        BQ_CHECK(cublasLtMatrixLayoutCreate(&b, in, std::uint64_t(shape.cols), std::uint64_t(batch), shape.cols));
        BQ_CHECK(cublasLtMatrixLayoutCreate(&c, out, std::uint64_t(shape.rows), std::uint64_t(batch), shape.rows));
        BQ_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        BQ_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        cublasLtMatmulHeuristicResult_t heuristic{};
        int found = 0;
        const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(g.lt, op, a, b, c, c, pref, 1, &heuristic, &found);
        if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
            state.SkipWithError((std::string("cuBLASLt has no ") + (fp8 ? "fp8" : "int8") + " algorithm here: " +
                                 cublasGetStatusString(st)).c_str());
        } else {
            const float alpha_f = 1, beta_f = 0;
            const std::int32_t alpha_i = 1, beta_i = 0;
            const void* alpha = fp8 ? static_cast<const void*>(&alpha_f) : &alpha_i;
            const void* beta = fp8 ? static_cast<const void*>(&beta_f) : &beta_i;
            const double ms = run_timed(state, [&] {
                BQ_CHECK(cublasLtMatmul(g.lt, op, alpha, w, a, d.x8.get(), b, beta, d.y.get(), c, d.y.get(), c,
                                        &heuristic.algo, g.lt_workspace.get(), ws, nullptr));
            });
            set_counters(state, ms, double(shape.rows * shape.cols + batch * shape.cols) +
                                        double(batch * shape.rows) * (fp8 ? 2 : 4),
                         shape.rows, shape.cols, batch);
            state.SetLabel(fp8 ? "cublaslt fp8 e4m3 (W8A8)" : "cublaslt int8 (W8A8)");
        }
    } catch (const Error& e) {
        state.SkipWithError(e.what());
    }
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(op);
}

// Every case of a shape and batch, under one name prefix.
void register_cases(const Shape& shape, std::int64_t batch, ActType t, int reps) {
    const std::string prefix = "cuda/" + std::to_string(shape.rows) + "x" + std::to_string(shape.cols) + "/b" +
                               std::to_string(batch) + "/";
    auto add = [&](const std::string& name, auto fn) {
        // A CUDA or cuBLAS failure skips its case with the reason instead of ending the run.
        auto guarded = [fn](benchmark::State& state) {
            try {
                fn(state);
            } catch (const std::exception& e) {
                state.SkipWithError(e.what());
            }
        };
        benchmark::RegisterBenchmark((prefix + name).c_str(), guarded)
            ->UseManualTime()
            ->Iterations(reps)
            ->Unit(benchmark::kMicrosecond);
    };
    // bf16 first: the others' speed-ups divide its time.
    add("cublas_bf16", [=](benchmark::State& s) { bench_cublas(s, shape, batch, ActType::bf16); });
    add("cublas_fp16", [=](benchmark::State& s) { bench_cublas(s, shape, batch, ActType::fp16); });
    add("cublaslt_fp8", [=](benchmark::State& s) { bench_cublaslt(s, shape, batch, true); });
    add("cublaslt_int8", [=](benchmark::State& s) { bench_cublaslt(s, shape, batch, false); });
    for (const QFormat& f : qformats()) {
        const QKernel k = batch == 1 ? QKernel::gemv : QKernel::gemm;
        add(std::string(batch == 1 ? "qgemv_" : "qgemm_") + f.name,
            [=, &f](benchmark::State& s) { bench_quantized(s, shape, batch, f, k, t); });
    }
    const QFormat& int4 = qformats()[3];
    if (batch > 1 && batch <= 8)  // where the GEMV stops paying: it reads W once per row of X
        add(std::string("qgemv_") + int4.name, [=, &int4](benchmark::State& s) {
            bench_quantized(s, shape, batch, int4, QKernel::gemv, t);
        });
    const QFormat& nf4 = qformats()[4];
    add(std::string("dequant_cublas_") + nf4.name,
        [=, &nf4](benchmark::State& s) { bench_quantized(s, shape, batch, nf4, QKernel::dequant_cublas, t); });
}

}  // namespace

void register_cuda_quant_benchmarks(const CudaQuantOptions& o) {
    std::string why;
    if (!cuda_quant::gpu_available(&why))
        throw Error("[bench_quant] --device cuda: no usable GPU (" + why + ")");
    if (o.act != "bf16" && o.act != "fp16")
        throw Error("[bench_quant] --act must be bf16 or fp16; got '" + o.act + "'");
    if (o.reps < 1) throw Error("[bench_quant] --reps must be >= 1");
    const ActType t = o.act == "bf16" ? ActType::bf16 : ActType::fp16;
    measure_gpu();
    const Gpu& g = gpu();
    benchmark::AddCustomContext("gpu", g.name);
    benchmark::AddCustomContext("gpu_sms", std::to_string(g.sms));
    benchmark::AddCustomContext("gpu_l2_bytes", std::to_string(g.l2));
    benchmark::AddCustomContext("copy_gbps", std::to_string(g.copy_gbps));
    benchmark::AddCustomContext("bf16_peak_tflops", std::to_string(g.bf16_tflops));
    benchmark::AddCustomContext("activations", o.act);
    std::printf("bench_quant --device cuda on %s (%d SMs, L2 %zu MiB): copy %.0f GB/s, dense bf16 %.0f TFLOP/s\n",
                g.name.c_str(), g.sms, g.l2 >> 20, g.copy_gbps, g.bf16_tflops);

    // The presets' own matrices (engine/model/config.cpp: tiny C=128, small 256, medium 512; the MLP is 4C
    // wide), then the sizes a 7B-70B model multiplies.
    const std::vector<Shape> all = {
        {"tiny mlp up", 512, 128},   {"small mlp up", 1024, 256},  {"medium mlp up", 2048, 512},
        {"medium mlp down", 512, 2048}, {"4096 square", 4096, 4096}, {"8192 square", 8192, 8192},
        {"70B mlp up", 28672, 8192}, {"70B mlp down", 8192, 28672},
    };
    const std::vector<Shape> quick = {all[0], all[2], all[5], all[7]};
    const std::vector<std::int64_t> batches =
        o.quick ? std::vector<std::int64_t>{1, 16, 256} : std::vector<std::int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256};
    for (const Shape& shape : o.quick ? quick : all)
        for (const std::int64_t batch : batches) register_cases(shape, batch, t, o.reps);
}

}  // namespace tl::bench
