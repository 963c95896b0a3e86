#include "backend/cpu/cpu_attention.hpp"

#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_gemm.hpp"
#include "backend/cpu/row_math.hpp"
#include "core/error.hpp"

namespace tl::cpu {

namespace {

// Causal attention touches only the lower triangle of the (T, T) score matrix. Rows are taken in blocks of
// kBlock: block i needs the keys of positions [0, end of block i), so the products skip the upper triangle
// except for the diagonal blocks' upper halves — at T 128 that is 10/16 of the full product's work, at T 256
// 36/64. The probabilities are still stored whole (zeros above the diagonal): training needs them in
// backward. (16 and 64 measured within noise of 32 on `tiny`.)
constexpr std::int64_t kBlock = 32;

// rows [r0, r0 + rows) and columns [c0, c0 + cols) of m.
template <class T>
Mat<T> sub(const Mat<T>& m, std::int64_t r0, std::int64_t c0, std::int64_t rows, std::int64_t cols) {
    return Mat<T>(m.data + r0 * m.ld + c0, rows, cols, m.ld);
}

// The (T, hs) blocks of head h in sequence b: its rows of qkv (row stride 3C), columns of q, k or v.
struct Head {
    const CMatView& qkv;
    std::int64_t row0, col0, C, hs;
    CMatView q(std::int64_t t0, std::int64_t n) const { return sub(qkv, row0 + t0, col0, n, hs); }
    CMatView k(std::int64_t t0, std::int64_t n) const { return sub(qkv, row0 + t0, C + col0, n, hs); }
    CMatView v(std::int64_t t0, std::int64_t n) const { return sub(qkv, row0 + t0, 2 * C + col0, n, hs); }
};

// Row t of scores (already scaled) becomes softmax over u <= t; entries above the diagonal become 0.
void causal_softmax_row(float* row, std::int64_t t, std::int64_t T) {
    const std::int64_t n = t + 1;
    const float maxv = row_max(row, n);
    for (std::int64_t u = 0; u < n; ++u) row[u] = exp_approx(row[u] - maxv);
    const float inv = 1.0f / row_sum(row, n);
    for (std::int64_t u = 0; u < n; ++u) row[u] *= inv;
    std::fill(row + t + 1, row + T, 0.0f);
}

// dS = P * (dP - rowsum(dP * P)) * scale on the live part of row t; zeros above the diagonal.
void causal_softmax_backward_row(float* ds_row, const float* p_row, std::int64_t t, std::int64_t T,
                                 float scale) {
    const std::int64_t n = t + 1;
    const float dot = row_dot(ds_row, p_row, n);
    for (std::int64_t u = 0; u < n; ++u) ds_row[u] = p_row[u] * (ds_row[u] - dot) * scale;
    std::fill(ds_row + t + 1, ds_row + T, 0.0f);
}

}  // namespace

// Threads take whole (sequence, head) pairs; every product inside is a serial OpenBLAS call (it measured
// faster than Eigen's at these 32-wide shapes: 23 against 29 ms per `tiny` step on one core).
void attention_forward(const AttentionArgs<float>& a, int threads) {
    const std::int64_t C = a.out.cols, hs = C / a.H, T = a.T_;
    TL_ASSERT(a.qkv.cols == 3 * C && C % a.H == 0 && a.qkv.rows == a.B * T, "[attention_forward] bad shapes");
    const float scale = 1.0f / std::sqrt(float(hs));
#pragma omp parallel for schedule(static) num_threads(threads) if (a.qkv.rows * a.qkv.cols >= kParallelFloats)
    for (std::int64_t bh = 0; bh < a.B * a.H; ++bh) {
        const std::int64_t b = bh / a.H, h = bh % a.H;
        const Head head{a.qkv, b * T, h * hs, C, hs};
        float* P = a.att + bh * T * T;
        for (std::int64_t t0 = 0; t0 < T; t0 += kBlock) {
            const std::int64_t rows = std::min(kBlock, T - t0), keys = t0 + rows;
            const MatView scores(P + t0 * T, rows, keys, T);
            gemm({scores, head.q(t0, rows), head.k(0, keys), Trans::no, Trans::yes, scale, 0.0f}, 1);
            for (std::int64_t t = t0; t < keys; ++t) causal_softmax_row(P + t * T, t, T);
            gemm({sub(a.out, b * T + t0, h * hs, rows, hs), scores, head.v(0, keys)}, 1);
        }
    }
}

void attention_backward(const AttentionGradArgs<float>& a, int threads) {
    const std::int64_t C = a.dout.cols, hs = C / a.H, T = a.T_;
    const float scale = 1.0f / std::sqrt(float(hs));
#pragma omp parallel for schedule(static) num_threads(threads) if (a.qkv.rows * a.qkv.cols >= kParallelFloats)
    for (std::int64_t bh = 0; bh < a.B * a.H; ++bh) {
        const std::int64_t b = bh / a.H, h = bh % a.H;
        const Head head{a.qkv, b * T, h * hs, C, hs};
        const float* P = a.att + bh * T * T;
        float* dS = a.datt + bh * T * T;
        auto dq = [&](std::int64_t t0, std::int64_t n) { return sub(a.dqkv, b * T + t0, h * hs, n, hs); };
        auto dk = [&](std::int64_t t0, std::int64_t n) { return sub(a.dqkv, b * T + t0, C + h * hs, n, hs); };
        auto dv = [&](std::int64_t t0, std::int64_t n) {
            return sub(a.dqkv, b * T + t0, 2 * C + h * hs, n, hs);
        };
        auto dout = [&](std::int64_t t0, std::int64_t n) { return sub(a.dout, b * T + t0, h * hs, n, hs); };

        // Row blocks: dP = dout V^T on the live columns, the softmax backward, then dQ = dS K.
        for (std::int64_t t0 = 0; t0 < T; t0 += kBlock) {
            const std::int64_t rows = std::min(kBlock, T - t0), keys = t0 + rows;
            const MatView dscores(dS + t0 * T, rows, keys, T);
            gemm({dscores, dout(t0, rows), head.v(0, keys), Trans::no, Trans::yes}, 1);
            for (std::int64_t t = t0; t < keys; ++t)
                causal_softmax_backward_row(dS + t * T, P + t * T, t, T, scale);
            gemm({dq(t0, rows), dscores, head.k(0, keys)}, 1);
        }
        // Column blocks: key u is used by queries t >= u only, so dV = P^T dout and dK = dS^T Q for keys
        // [u0, u0 + cols) sum over the query rows from u0 down.
        for (std::int64_t u0 = 0; u0 < T; u0 += kBlock) {
            const std::int64_t cols = std::min(kBlock, T - u0), queries = T - u0;
            gemm({dv(u0, cols), CMatView(P + u0 * T + u0, queries, cols, T), dout(u0, queries), Trans::yes},
                 1);
            gemm(
                {dk(u0, cols), CMatView(dS + u0 * T + u0, queries, cols, T), head.q(u0, queries), Trans::yes},
                1);
        }
    }
}

}  // namespace tl::cpu
