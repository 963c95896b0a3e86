// The CPU backend: Eigen GEMMs, OpenMP loops, fused row kernels. Every method has the contract of the matching
// reference kernel (ref_kernels.cpp) and is tested against it (tests/engine/backend/cpu_vs_ref_test.cpp).
// Determinism: every reduction has a fixed order for a given thread count.
#include <omp.h>

#include <Eigen/Core>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_attention.hpp"
#include "backend/cpu/eigen_maps.hpp"
#include "backend/cpu/ref_kernels.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"

namespace tl {
namespace {

using cpu::emap;

void free_aligned(void* p) { std::free(p); }

class CpuBackend final : public Backend {
public:
    // The thread count is this backend's, not the process's: every parallel loop names it, and Eigen's global
    // setting is set before each GEMM, so two backends with different counts do not interfere.
    explicit CpuBackend(const CpuOptions& opt) : threads_(opt.threads > 0 ? opt.threads : omp_get_num_procs()) {}

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
    void copy_to_host(float* dst, CVecView src) override { std::memcpy(dst, src.data, sizeof(float) * std::size_t(src.n)); }
    void copy_from_host(VecView dst, const float* src) override {
        std::memcpy(dst.data, src, sizeof(float) * std::size_t(dst.n));
    }

    void upload_bytes(void* dst, const void* src, std::size_t bytes) override { std::memcpy(dst, src, bytes); }
    void attention_decode(const AttentionDecodeArgs<float>& a) override { ref::attention_decode(a); }

    void gemm(const GemmArgs<float>& g) override {
        Eigen::setNbThreads(threads_);
        auto c = emap(g.c);
        const auto a = emap(g.a);
        const auto b = emap(g.b);
        if (g.beta == 0.0f) c.setZero();
        else if (g.beta != 1.0f) c *= g.beta;
        const bool ta = g.trans_a == Trans::yes, tb = g.trans_b == Trans::yes;
        if (!ta && !tb) c.noalias() += g.alpha * (a * b);
        else if (!ta && tb) c.noalias() += g.alpha * (a * b.transpose());
        else if (ta && !tb) c.noalias() += g.alpha * (a.transpose() * b);
        else c.noalias() += g.alpha * (a.transpose() * b.transpose());
    }

    void embedding_forward(const EmbeddingArgs<float>& a) override { ref::embedding_forward(a); }

    // Parallel over channels: each thread owns whole columns, so the scatter-add order is fixed.
    void embedding_backward(const EmbeddingGradArgs<float>& a) override {
        const std::int64_t N = a.B * a.T_, C = a.dout.cols;
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t n = 0; n < N; ++n) {
                const float g = a.dout(n, c);
                if (a.dwte.data) a.dwte(a.tokens[n], c) += g;
                if (a.dwpe.data) a.dwpe(a.pos0 + n % a.T_, c) += g;
            }
    }

    void layernorm_forward(const LayerNormArgs<float>& a) override {
        const std::int64_t N = a.x.rows, C = a.x.cols;
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < N; ++i) {
            const float* x = a.x.row(i);
            float mean = 0, var = 0;
            for (std::int64_t c = 0; c < C; ++c) mean += x[c];
            mean /= float(C);
            for (std::int64_t c = 0; c < C; ++c) var += (x[c] - mean) * (x[c] - mean);
            const float rstd = 1.0f / std::sqrt(var / float(C) + a.eps);
            float* out = a.out.row(i);
            for (std::int64_t c = 0; c < C; ++c) out[c] = (x[c] - mean) * rstd * a.gamma[c] + a.beta[c];
            a.mean[i] = mean;
            a.rstd[i] = rstd;
        }
    }

    void layernorm_backward(const LayerNormGradArgs<float>& a) override {
        const std::int64_t N = a.x.rows, C = a.x.cols;
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < N; ++i) {
            const float* x = a.x.row(i);
            const float* dout = a.dout.row(i);
            const float mean = a.mean[i], rstd = a.rstd[i];
            float g_mean = 0, gx_mean = 0;
            for (std::int64_t c = 0; c < C; ++c) {
                const float g = dout[c] * a.gamma[c];
                g_mean += g;
                gx_mean += g * (x[c] - mean) * rstd;
            }
            g_mean /= float(C);
            gx_mean /= float(C);
            float* dx = a.dx.row(i);
            for (std::int64_t c = 0; c < C; ++c)
                dx[c] = rstd * (dout[c] * a.gamma[c] - g_mean - (x[c] - mean) * rstd * gx_mean);
        }
        // Parameter grads: a column reduction over rows, in row order (deterministic), parallel over columns.
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t c = 0; c < C; ++c) {
            float dg = 0, db = 0;
            for (std::int64_t i = 0; i < N; ++i) {
                const float d = a.dout(i, c);
                dg += d * (a.x(i, c) - a.mean[i]) * a.rstd[i];
                db += d;
            }
            if (a.dgamma.data) a.dgamma[c] += dg;
            if (a.dbeta.data) a.dbeta[c] += db;
        }
    }

    void linear_forward(const LinearArgs<float>& a) override {
        Eigen::setNbThreads(threads_);
        auto out = emap(a.out);
        out.noalias() = emap(a.x) * emap(a.w);
        if (a.b.data) out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(a.b.data, a.b.n);
    }

    void linear_backward(const LinearGradArgs<float>& a) override {
        Eigen::setNbThreads(threads_);
        const auto dout = emap(a.dout);
        if (a.dx.data) emap(a.dx).noalias() = dout * emap(a.w).transpose();
        if (a.dw.data) emap(a.dw).noalias() += emap(a.x).transpose() * dout;
        if (a.db.data) Eigen::Map<Eigen::RowVectorXf>(a.db.data, a.db.n) += dout.colwise().sum();
    }

    void attention_forward(const AttentionArgs<float>& a) override { cpu::attention_forward(a, threads_); }
    void attention_backward(const AttentionGradArgs<float>& a) override { cpu::attention_backward(a, threads_); }

    // GELU through Eigen's vectorised tanh (a rational approximation within a few ulp): std::tanh per element
    // was a third of a training step.
    void gelu_forward(const GeluArgs<float>& a) override {
        constexpr float k0 = 0.7978845608028654f, k1 = 0.044715f;
        for_chunks(a.x.n, [&](std::int64_t lo, std::int64_t n) {
            Eigen::Map<const Eigen::ArrayXf> x(a.x.data + lo, n);
            Eigen::Map<Eigen::ArrayXf> out(a.out.data + lo, n);
            out = 0.5f * x * (1.0f + (k0 * (x + k1 * x.cube())).tanh());
        });
    }

    void gelu_backward(const GeluGradArgs<float>& a) override {
        constexpr float k0 = 0.7978845608028654f, k1 = 0.044715f;
        for_chunks(a.x.n, [&](std::int64_t lo, std::int64_t n) {
            Eigen::Map<const Eigen::ArrayXf> x(a.x.data + lo, n), dout(a.dout.data + lo, n);
            Eigen::Map<Eigen::ArrayXf> dx(a.dx.data + lo, n);
            const Eigen::ArrayXf th = (k0 * (x + k1 * x.cube())).tanh();
            dx = dout * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th.square()) * k0 * (1.0f + 3.0f * k1 * x.square()));
        });
    }

    void add(VecView out, CVecView a, CVecView b) override {
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < out.n; ++i) out[i] = a[i] + b[i];
    }
    void add_inplace(VecView dst, CVecView src) override {
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < dst.n; ++i) dst[i] += src[i];
    }

    // Targets are checked before the parallel loop: an exception cannot leave an OpenMP region.
    static void check_targets(const std::int32_t* targets, std::int64_t n, std::int64_t V) {
        for (std::int64_t i = 0; i < n; ++i)
            TL_ASSERT(targets[i] >= 0 && targets[i] < V, "[cross_entropy] target id out of range");
    }

    void cross_entropy_forward(const CrossEntropyArgs<float>& a) override {
        check_targets(a.targets, a.logits.rows, a.logits.cols);
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < a.logits.rows; ++i) {
            const std::int32_t y = a.targets[i];
            a.losses[i] = float(log_sum_exp(a.logits.row(i), a.logits.cols) - a.logits(i, y));
        }
    }

    void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) override {
        check_targets(a.targets, a.logits.rows, a.logits.cols);
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < a.logits.rows; ++i) {
            float* d = a.dlogits.row(i);
            const float w = a.weights[i] / a.norm;
            if (w == 0.0f) {
                std::memset(d, 0, sizeof(float) * std::size_t(a.logits.cols));
                continue;
            }
            const float* z = a.logits.row(i);
            const double lse = log_sum_exp(z, a.logits.cols);
            for (std::int64_t j = 0; j < a.logits.cols; ++j) d[j] = w * float(std::exp(z[j] - lse));
            d[a.targets[i]] -= w;
        }
    }

    // Fixed chunks summed in order: the same result for any thread count.
    double sum_squares(CVecView x) override {
        constexpr std::int64_t kChunk = 1 << 14;
        const std::int64_t chunks = (x.n + kChunk - 1) / kChunk;
        std::vector<double> partial(std::size_t(chunks), 0.0);
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t c = 0; c < chunks; ++c) {
            double s = 0;
            for (std::int64_t i = c * kChunk; i < std::min(x.n, (c + 1) * kChunk); ++i) s += double(x[i]) * x[i];
            partial[std::size_t(c)] = s;
        }
        double total = 0;
        for (double s : partial) total += s;
        return total;
    }

    void scale(VecView x, float s) override {
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < x.n; ++i) x[i] *= s;
    }

    void adamw(const AdamWArgs<float>& a) override {
        const float bc1 = 1.0f - float(std::pow(double(a.beta1), double(a.step)));
        const float bc2 = 1.0f - float(std::pow(double(a.beta2), double(a.step)));
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t i = 0; i < a.params.n; ++i) {
            const float g = a.grads[i];
            const float m = a.beta1 * a.m[i] + (1.0f - a.beta1) * g;
            const float v = a.beta2 * a.v[i] + (1.0f - a.beta2) * g * g;
            a.m[i] = m;
            a.v[i] = v;
            a.params[i] -= a.lr * ((m / bc1) / (std::sqrt(v / bc2) + a.eps) + a.weight_decay * a.params[i]);
        }
    }

private:
    // Splits [0, n) into fixed chunks processed in parallel; f(first, count).
    template <class F>
    void for_chunks(std::int64_t n, const F& f) const {
        constexpr std::int64_t kChunk = 1 << 13;
        const std::int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(threads_)
        for (std::int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(kChunk, n - c * kChunk));
    }

    static double log_sum_exp(const float* z, std::int64_t n) {
        float maxv = z[0];
        for (std::int64_t j = 1; j < n; ++j) maxv = std::max(maxv, z[j]);
        double sum = 0;
        for (std::int64_t j = 0; j < n; ++j) sum += std::exp(double(z[j] - maxv));
        return double(maxv) + std::log(sum);
    }
    int threads_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& opt) { return std::make_unique<CpuBackend>(opt); }

}  // namespace tl
