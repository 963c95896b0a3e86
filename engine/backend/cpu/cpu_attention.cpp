#include "backend/cpu/cpu_attention.hpp"

#include <cmath>

#include "backend/cpu/eigen_maps.hpp"
#include "core/error.hpp"

namespace tl::cpu {

namespace {

struct HeadViews {
    CEMap q, k, v;
};

// q, k, v of head h in batch row b: (T, hs) blocks of qkv with row stride 3C.
HeadViews head_views(const CMatView& qkv, std::int64_t b, std::int64_t h, std::int64_t T, std::int64_t hs) {
    const std::int64_t C = qkv.cols / 3;
    const float* base = qkv.row(b * T) + h * hs;
    const Eigen::OuterStride<> stride(qkv.ld);
    return {CEMap(base, T, hs, stride), CEMap(base + C, T, hs, stride), CEMap(base + 2 * C, T, hs, stride)};
}

}  // namespace

void attention_forward(const AttentionArgs<float>& a, int threads) {
    const std::int64_t C = a.out.cols, hs = C / a.H, T = a.T_;
    TL_ASSERT(a.qkv.cols == 3 * C && C % a.H == 0 && a.qkv.rows == a.B * T, "[attention_forward] bad shapes");
    const float scale = 1.0f / std::sqrt(float(hs));
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t bh = 0; bh < a.B * a.H; ++bh) {
        const std::int64_t b = bh / a.H, h = bh % a.H;
        const HeadViews hv = head_views(a.qkv, b, h, T, hs);
        Eigen::Map<RowMajor> P(a.att + bh * T * T, T, T);
        P.noalias() = scale * (hv.q * hv.k.transpose());
        for (std::int64_t t = 0; t < T; ++t) {
            float* row = P.data() + t * T;
            float maxv = row[0];
            for (std::int64_t u = 1; u <= t; ++u) maxv = std::max(maxv, row[u]);
            double sum = 0;
            for (std::int64_t u = 0; u <= t; ++u) sum += (row[u] = std::exp(row[u] - maxv));
            const float inv = float(1.0 / sum);
            for (std::int64_t u = 0; u <= t; ++u) row[u] *= inv;
            for (std::int64_t u = t + 1; u < T; ++u) row[u] = 0.0f;
        }
        EMap out(a.out.row(b * T) + h * hs, T, hs, Eigen::OuterStride<>(a.out.ld));
        out.noalias() = P * hv.v;
    }
}

void attention_backward(const AttentionGradArgs<float>& a, int threads) {
    const std::int64_t C = a.dout.cols, hs = C / a.H, T = a.T_;
    const float scale = 1.0f / std::sqrt(float(hs));
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t bh = 0; bh < a.B * a.H; ++bh) {
        const std::int64_t b = bh / a.H, h = bh % a.H;
        const HeadViews hv = head_views(a.qkv, b, h, T, hs);
        Eigen::Map<const RowMajor> P(a.att + bh * T * T, T, T);
        Eigen::Map<RowMajor> dS(a.datt + bh * T * T, T, T);
        const Eigen::OuterStride<> dstride(a.dqkv.ld);
        float* dbase = a.dqkv.row(b * T) + h * hs;
        EMap dq(dbase, T, hs, dstride), dk(dbase + C, T, hs, dstride), dv(dbase + 2 * C, T, hs, dstride);
        CEMap dout(a.dout.row(b * T) + h * hs, T, hs, Eigen::OuterStride<>(a.dout.ld));

        dv.noalias() = P.transpose() * dout;
        dS.noalias() = dout * hv.v.transpose();  // dP
        for (std::int64_t t = 0; t < T; ++t) {
            float* ds = dS.data() + t * T;
            const float* p = P.data() + t * T;
            double row_dot = 0;
            for (std::int64_t u = 0; u <= t; ++u) row_dot += double(ds[u]) * p[u];
            for (std::int64_t u = 0; u <= t; ++u) ds[u] = p[u] * (ds[u] - float(row_dot)) * scale;
            for (std::int64_t u = t + 1; u < T; ++u) ds[u] = 0.0f;
        }
        dq.noalias() = dS * hv.k;
        dk.noalias() = dS.transpose() * hv.q;
    }
}

}  // namespace tl::cpu
