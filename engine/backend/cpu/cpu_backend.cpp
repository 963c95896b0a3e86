// The CPU backend: OpenBLAS GEMMs split across OpenMP threads (cpu_gemm), OpenMP loops, fused row kernels.
// Every method has the contract of the matching reference kernel (ref_kernels.cpp) and is tested against it
// (tests/engine/backend/cpu_vs_ref_test.cpp). Determinism: every reduction has a fixed order for a given
// thread count.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_attention.hpp"
#include "backend/cpu/cpu_gemm.hpp"
#include "backend/cpu/ref_kernels.hpp"
#include "backend/cpu/row_math.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"

namespace tl {
namespace {

using cpu::kParallelFloats;

void free_aligned(void* p) { std::free(p); }

// GELU tanh with row_math's tanh: vectorised (std::tanh per element was a third of a training step) and the
// same for an element wherever it lies.
void gelu_span(const float* x, float* out, std::int64_t n) {
    constexpr float k0 = 0.7978845608028654f, k1 = 0.044715f;
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = 0.5f * x[i] * (1.0f + cpu::tanh_approx(k0 * (x[i] + k1 * x[i] * x[i] * x[i])));
}

// Row i of a LayerNorm, its reductions in fixed lanes (row_math.hpp): the result does not depend on where the
// row lies.
void layernorm_row(const LayerNormArgs<float>& a, std::int64_t i) {
    const std::int64_t C = a.x.cols;
    const float* gamma = a.gamma.data;
    const float* beta = a.beta.data;
    const float* x = a.x.row(i);
    const float mean = cpu::row_sum(x, C) / float(C);
    const float var = cpu::lane_sum(C, [&](std::int64_t c) { return (x[c] - mean) * (x[c] - mean); }) / float(C);
    const float rstd = 1.0f / std::sqrt(var + a.eps);
    float* out = a.out.row(i);
    for (std::int64_t c = 0; c < C; ++c) out[c] = (x[c] - mean) * rstd * gamma[c] + beta[c];
    a.mean[i] = mean;
    a.rstd[i] = rstd;
}

class CpuBackend final : public Backend {
public:
    // The thread count is this backend's, not the process's: every parallel loop and GEMM split names it, so
    // two backends with different counts do not interfere.
    explicit CpuBackend(const CpuOptions& opt)
        : threads_(opt.threads > 0 ? opt.threads : omp_get_num_procs()) {}

    Device device() const override { return Device::cpu; }
    std::string name() const override { return "cpu (" + std::to_string(threads_) + " threads)"; }

    Buffer alloc(std::size_t bytes, MemCategory what) override {
        const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, rounded);
        if (!p) throw Error("[cpu] out of memory allocating " + std::to_string(bytes) + " bytes");
        return Buffer(p, bytes, what, &ledger_, &free_aligned);
    }
    void fill_zero(VecView x) override { std::memset(x.data, 0, sizeof(float) * std::size_t(x.n)); }
    void copy(VecView dst, CVecView src) override {
        TL_ASSERT(dst.n == src.n, "[cpu copy] sizes differ");
        std::memcpy(dst.data, src.data, sizeof(float) * std::size_t(src.n));
    }
    void copy_to_host(float* dst, CVecView src) override {
        std::memcpy(dst, src.data, sizeof(float) * std::size_t(src.n));
    }
    void copy_from_host(VecView dst, const float* src) override {
        std::memcpy(dst.data, src, sizeof(float) * std::size_t(dst.n));
    }

    void upload_bytes(void* dst, const void* src, std::size_t bytes) override {
        std::memcpy(dst, src, bytes);
    }
    void attention_decode(const AttentionDecodeArgs<float>& a) override { ref::attention_decode(a); }

    void gemm(const GemmArgs<float>& g) override { cpu::gemm(g, threads_); }

    void embedding_forward(const EmbeddingArgs<float>& a) override { ref::embedding_forward(a); }

    // Parallel over channels: each thread owns whole columns, so the scatter-add order is fixed.
    void embedding_backward(const EmbeddingGradArgs<float>& a) override {
        const std::int64_t N = a.B * a.T_, C = a.dout.cols;
#pragma omp parallel for schedule(static) num_threads(threads_) if (N * C >= kParallelFloats)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t n = 0; n < N; ++n) {
                const float g = a.dout(n, c);
                if (a.dwte.data) a.dwte(a.tokens[n], c) += g;
                if (a.dwpe.data) a.dwpe(a.pos0 + n % a.T_, c) += g;
            }
    }

    // Row reductions in fixed lanes (row_math.hpp): the result does not depend on where the row lies.
    void layernorm_forward(const LayerNormArgs<float>& a) override {
        const std::int64_t N = a.x.rows, C = a.x.cols;
#pragma omp parallel for schedule(static) num_threads(threads_) if (N * C >= kParallelFloats)
        for (std::int64_t i = 0; i < N; ++i) layernorm_row(a, i);
    }

    // One pass over the rows computes dx and, per fixed block of kNormRows rows, partial dgamma and dbeta;
    // the partials are then added in block order. The blocks do not depend on the thread count, so neither
    // does the result.
    void layernorm_backward(const LayerNormGradArgs<float>& a) override {
        const std::int64_t N = a.x.rows, C = a.x.cols, blocks = (N + kNormRows - 1) / kNormRows;
        const bool param_grads = a.dgamma.data || a.dbeta.data;
        float* partials = param_grads ? scratch<float>(norm_scratch_, std::size_t(2 * blocks * C)) : nullptr;
        if (param_grads) std::fill(partials, partials + 2 * blocks * C, 0.0f);
        const float* gamma = a.gamma.data;
#pragma omp parallel for schedule(static) num_threads(threads_) if (N * C >= kParallelFloats)
        for (std::int64_t blk = 0; blk < blocks; ++blk) {
            float* dg = partials + 2 * blk * C;
            float* db = dg + C;
            for (std::int64_t i = blk * kNormRows; i < std::min(N, (blk + 1) * kNormRows); ++i) {
                const float* x = a.x.row(i);
                const float* dout = a.dout.row(i);
                const float mean = a.mean[i], rstd = a.rstd[i];
                const float g_mean = cpu::row_dot(dout, gamma, C) / float(C);
                const float gx_mean =
                    cpu::lane_sum(
                        C, [&](std::int64_t c) { return dout[c] * gamma[c] * ((x[c] - mean) * rstd); }) /
                    float(C);
                float* dx = a.dx.row(i);
                for (std::int64_t c = 0; c < C; ++c)
                    dx[c] = rstd * (dout[c] * gamma[c] - g_mean - (x[c] - mean) * rstd * gx_mean);
                if (!param_grads) continue;
                for (std::int64_t c = 0; c < C; ++c) {
                    dg[c] += dout[c] * ((x[c] - mean) * rstd);
                    db[c] += dout[c];
                }
            }
        }
        if (!param_grads) return;
        for (std::int64_t blk = 0; blk < blocks; ++blk)
            for (std::int64_t c = 0; c < C; ++c) {
                if (a.dgamma.data) a.dgamma[c] += partials[2 * blk * C + c];
                if (a.dbeta.data) a.dbeta[c] += partials[(2 * blk + 1) * C + c];
            }
    }

    // out = x w + b: the bias is written first and the GEMM accumulates onto it (one pass over out, not two).
    void linear_forward(const LinearArgs<float>& a) override {
        const bool bias = write_bias(a);
        cpu::gemm({a.out, a.x, a.w, Trans::no, Trans::no, 1.0f, bias ? 1.0f : 0.0f}, threads_);
    }

    void linear_backward(const LinearGradArgs<float>& a) override {
        if (a.dx.data) cpu::gemm({a.dx, a.dout, a.w, Trans::no, Trans::yes, 1.0f, 0.0f}, threads_);
        if (a.dw.data) cpu::gemm({a.dw, a.x, a.dout, Trans::yes, Trans::no, 1.0f, 1.0f}, threads_);
        if (a.db.data) column_sums_into(a.db, a.dout);
    }

    void attention_forward(const AttentionArgs<float>& a) override { cpu::attention_forward(a, threads_); }
    void attention_backward(const AttentionGradArgs<float>& a) override {
        cpu::attention_backward(a, threads_);
    }

    void gelu_forward(const GeluArgs<float>& a) override {
        for_chunks(a.x.n, [&](std::int64_t lo, std::int64_t n) { gelu_span(a.x.data + lo, a.out.data + lo, n); });
    }

    // The GELU runs on each thread's finished slab of the GEMM's output (cpu::gemm's epilogue), by the thread
    // that wrote it, instead of a second parallel pass over the whole (N, 4C) tensor; per element the same
    // arithmetic as the two ops.
    void linear_gelu_forward(const LinearArgs<float>& a, VecView act) override {
        TL_ASSERT(act.n == a.out.rows * a.out.cols && a.out.ld == a.out.cols, "[cpu] linear_gelu: act shape");
        const bool bias = write_bias(a);
        auto epilogue = [](const GemmArgs<float>& g, std::int64_t m0, std::int64_t m1, std::int64_t n0,
                           std::int64_t n1, void* state) {
            float* act_data = static_cast<float*>(state);
            for (std::int64_t i = m0; i < m1; ++i)
                gelu_span(g.c.data + i * g.c.ld + n0, act_data + i * g.c.cols + n0, n1 - n0);
        };
        cpu::gemm({a.out, a.x, a.w, Trans::no, Trans::no, 1.0f, bias ? 1.0f : 0.0f}, threads_, epilogue, act.data);
    }

    // The residual add and the LayerNorm in one pass over each row (the sum is written and normalised while
    // the row is in L1).
    void add_layernorm_forward(VecView sum, CVecView a, CVecView b, const LayerNormArgs<float>& ln) override {
        TL_ASSERT(ln.x.data == sum.data && ln.x.ld == ln.x.cols && sum.n == ln.x.rows * ln.x.cols,
                  "[cpu] add_layernorm: ln.x must view sum");
        const std::int64_t N = ln.x.rows, C = ln.x.cols;
#pragma omp parallel for schedule(static) num_threads(threads_) if (N * C >= kParallelFloats)
        for (std::int64_t i = 0; i < N; ++i) {
            float* row = sum.data + i * C;
            const float* ra = a.data + i * C;
            const float* rb = b.data + i * C;
#pragma omp simd
            for (std::int64_t c = 0; c < C; ++c) row[c] = ra[c] + rb[c];
            layernorm_row(ln, i);
        }
    }

    void gelu_backward(const GeluGradArgs<float>& a) override {
        constexpr float k0 = 0.7978845608028654f, k1 = 0.044715f;
        for_chunks(a.x.n, [&](std::int64_t lo, std::int64_t n) {
            const float* x = a.x.data + lo;
            const float* dout = a.dout.data + lo;
            float* dx = a.dx.data + lo;
            for (std::int64_t i = 0; i < n; ++i) {
                const float xi = x[i], th = cpu::tanh_approx(k0 * (xi + k1 * xi * xi * xi));
                dx[i] = dout[i] * (0.5f * (1.0f + th) +
                                   0.5f * xi * (1.0f - th * th) * k0 * (1.0f + 3.0f * k1 * xi * xi));
            }
        });
    }

    void add(VecView out, CVecView a, CVecView b) override {
#pragma omp parallel for simd schedule(static) num_threads(threads_) if (out.n >= kParallelFloats)
        for (std::int64_t i = 0; i < out.n; ++i) out.data[i] = a.data[i] + b.data[i];
    }
    void add_inplace(VecView dst, CVecView src) override {
#pragma omp parallel for simd schedule(static) num_threads(threads_) if (dst.n >= kParallelFloats)
        for (std::int64_t i = 0; i < dst.n; ++i) dst.data[i] += src.data[i];
    }

    // Targets are checked before the parallel loop: an exception cannot leave an OpenMP region.
    static void check_targets(const std::int32_t* targets, std::int64_t n, std::int64_t V) {
        for (std::int64_t i = 0; i < n; ++i)
            TL_ASSERT(targets[i] >= 0 && targets[i] < V, "[cross_entropy] target id out of range");
    }

    // Both passes use row_math's vectorised exp in float (a double std::exp per logit was most of their
    // time).
    void cross_entropy_forward(const CrossEntropyArgs<float>& a) override {
        check_targets(a.targets, a.logits.rows, a.logits.cols);
#pragma omp parallel for schedule(static) \
    num_threads(threads_) if (a.logits.rows * a.logits.cols >= kParallelFloats)
        for (std::int64_t i = 0; i < a.logits.rows; ++i) {
            const std::int32_t y = a.targets[i];
            a.losses[i] = log_sum_exp(a.logits.row(i), a.logits.cols) - a.logits(i, y);
        }
    }

    void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) override {
        check_targets(a.targets, a.logits.rows, a.logits.cols);
        const std::int64_t V = a.logits.cols;
#pragma omp parallel for schedule(static) \
    num_threads(threads_) if (a.logits.rows * a.logits.cols >= kParallelFloats)
        for (std::int64_t i = 0; i < a.logits.rows; ++i) {
            float* d = a.dlogits.row(i);
            const float w = a.weights[i] / a.norm;
            if (w == 0.0f) {
                std::fill(d, d + V, 0.0f);
                continue;
            }
            const float* z = a.logits.row(i);
            const float lse = log_sum_exp(z, V);
            for (std::int64_t j = 0; j < V; ++j) d[j] = w * cpu::exp_approx(z[j] - lse);
            d[a.targets[i]] -= w;
        }
    }

    // Fixed chunks summed in order: the same result for any thread count. Small tensors (most of a model's 50
    // or so) stay on the calling thread: waking a second one costs more than it saves.
    double sum_squares(CVecView x) override {
        const std::int64_t chunks = (x.n + kSumChunk - 1) / kSumChunk;
        double* partials = scratch<double>(sum_scratch_, std::size_t(std::max<std::int64_t>(chunks, 1)));
#pragma omp parallel for schedule(static) num_threads(threads_) if (chunks > 1)
        for (std::int64_t c = 0; c < chunks; ++c) {
            double s = 0;
            for (std::int64_t i = c * kSumChunk; i < std::min(x.n, (c + 1) * kSumChunk); ++i)
                s += double(x[i]) * x[i];
            partials[c] = s;
        }
        double total = 0;
        for (std::int64_t c = 0; c < chunks; ++c) total += partials[c];
        return total;
    }

    void scale(VecView x, float s) override {
#pragma omp parallel for simd schedule(static) num_threads(threads_) if (x.n >= kParallelFloats)
        for (std::int64_t i = 0; i < x.n; ++i) x.data[i] *= s;
    }

    // One fused pass per parameter tensor, vectorised (the pointers are copied to locals so the compiler sees
    // no aliasing through the argument struct).
    void adamw(const AdamWArgs<float>& a) override {
        const float bc1 = 1.0f - float(std::pow(double(a.beta1), double(a.step)));
        const float bc2 = 1.0f - float(std::pow(double(a.beta2), double(a.step)));
        const float b1 = a.beta1, b2 = a.beta2, lr = a.lr, eps = a.eps, wd = a.weight_decay;
        const float inv_bc1 = 1.0f / bc1, inv_bc2 = 1.0f / bc2;
        float* __restrict p = a.params.data;
        float* __restrict m = a.m.data;
        float* __restrict v = a.v.data;
        const float* __restrict g = a.grads.data;
#pragma omp parallel for simd schedule(static) num_threads(threads_) if (a.params.n >= kParallelFloats)
        for (std::int64_t i = 0; i < a.params.n; ++i) {
            const float mi = b1 * m[i] + (1.0f - b1) * g[i];
            const float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            m[i] = mi;
            v[i] = vi;
            p[i] -= lr * ((mi * inv_bc1) / (std::sqrt(vi * inv_bc2) + eps) + wd * p[i]);
        }
    }

private:
    // dst[c] += sum over rows of m(:, c), rows in order; threads own column ranges, so the order is fixed.
    void column_sums_into(VecView dst, CMatView m) const {
        constexpr std::int64_t kCols = 64;
        const std::int64_t blocks = (m.cols + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) num_threads(threads_) if (m.rows * m.cols >= kParallelFloats)
        for (std::int64_t blk = 0; blk < blocks; ++blk) {
            const std::int64_t c0 = blk * kCols, n = std::min(kCols, m.cols - c0);
            float acc[kCols] = {};
            for (std::int64_t i = 0; i < m.rows; ++i) {
                const float* row = m.row(i) + c0;
                for (std::int64_t c = 0; c < n; ++c) acc[c] += row[c];
            }
            for (std::int64_t c = 0; c < n; ++c) dst[c0 + c] += acc[c];
        }
    }

    // Splits [0, n) into fixed chunks processed in parallel; f(first, count).
    template <class F>
    void for_chunks(std::int64_t n, const F& f) const {
        constexpr std::int64_t kChunk = 1 << 13;
        const std::int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(threads_) if (chunks > 1)
        for (std::int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(kChunk, n - c * kChunk));
    }

    // Writes the bias into every row of out, so that the GEMM accumulates onto it (beta = 1): one pass over
    // out, not two. False when there is no bias.
    bool write_bias(const LinearArgs<float>& a) const {
        if (!a.b.data) return false;
#pragma omp parallel for schedule(static) num_threads(threads_) if (a.out.rows * a.out.cols >= kParallelFloats)
        for (std::int64_t i = 0; i < a.out.rows; ++i)
            std::memcpy(a.out.row(i), a.b.data, sizeof(float) * std::size_t(a.b.n));
        return true;
    }

    static float log_sum_exp(const float* z, std::int64_t n) {
        const float maxv = cpu::row_max(z, n);
        return maxv +
               std::log(cpu::lane_sum(n, [&](std::int64_t j) { return cpu::exp_approx(z[j] - maxv); }));
    }

    static constexpr std::int64_t kSumChunk = 1 << 14;
    static constexpr std::int64_t kNormRows = 64;

    // Scratch of the backend's own reductions (per-block partial sums): grown on first use, then reused, so a
    // training step allocates nothing. Host memory outside the ledger, on purpose: it is a few KiB (32 KiB
    // for `tiny`), and the ledger counts the model's memory as the course explains it, matched to the byte by
    // the detailed memory model (tests/engine/memory).
    template <class T>
    static T* scratch(std::vector<T>& v, std::size_t count) {
        if (v.size() < count) v.resize(count);
        return v.data();
    }
    std::vector<double> sum_scratch_;  // sum_squares' per-chunk sums
    std::vector<float> norm_scratch_;  // layernorm_backward's per-block dgamma and dbeta
    int threads_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& opt) { return std::make_unique<CpuBackend>(opt); }

}  // namespace tl
