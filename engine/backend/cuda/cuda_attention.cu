// Causal self-attention on the GPU: cuBLAS strided-batched GEMMs per head (batched over b) plus a causal
// softmax kernel, keeping the (B, H, T, T) probabilities for backward as the CPU backend does
// (cpu_attention.cpp). Not flash attention: the T x T scores are materialised. Contracts: ref::attention_* in
// ref_kernels.cpp. The GEMMs run in the backend's GemmPrecision; softmax and its backward always in FP32.
//
// Layout: qkv (N, 3C) row-major with row stride ld; head h of batch b is the (T, hs) block starting at row
// b*T, column h*hs (q), C + h*hs (k), 2C + h*hs (v). For a fixed h, consecutive b are T*ld apart, and att's
// (T, T) blocks (b, h) are H*T*T apart: one strided-batched GEMM per head covers every b.
#include <cmath>
#include <string>

#include "backend/cuda/cuda_kernels.cuh"
#include "core/error.hpp"

namespace tl::cuda {

namespace {

constexpr int kSoftmaxWarps = 8;  // rows per block of the softmax kernels (one warp per row)
constexpr int kDecodeThreads = 128;

// In place on one row t of S (scaled scores): P[u] = exp(S[u] - max) / sum for u <= t, 0 for u > t.
__global__ void causal_softmax_kernel(float* att, long long rows, int T) {
    const long long row = (long long)blockIdx.x * kSoftmaxWarps + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;  // the whole warp leaves together
    const int t = int(row % T);
    float* p = att + row * T;
    float m = -INFINITY;
    for (int u = lane; u <= t; u += kWarp) m = fmaxf(m, p[u]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int u = lane; u <= t; u += kWarp) sum += expf(p[u] - m);
    const float inv = 1.0f / warp_sum(sum);
    for (int u = lane; u < T; u += kWarp) p[u] = u <= t ? expf(p[u] - m) * inv : 0.0f;
}

// Softmax backward, in place on dP (row t), scale folded in as the CPU backend does:
//   dS[u] = P[u] (dP[u] - sum_v dP[v] P[v]) / sqrt(hs)  for u <= t,  0 for u > t.
__global__ void causal_softmax_backward_kernel(float* datt, const float* att, long long rows, int T,
                                               float scale) {
    const long long row = (long long)blockIdx.x * kSoftmaxWarps + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    const int t = int(row % T);
    float* d = datt + row * T;
    const float* p = att + row * T;
    float dot = 0.0f;
    for (int u = lane; u <= t; u += kWarp) dot += d[u] * p[u];
    dot = warp_sum(dot);
    for (int u = lane; u < T; u += kWarp) d[u] = u <= t ? p[u] * (d[u] - dot) * scale : 0.0f;
}

// One block per head: scores over the len cached positions (kept in `scores`, global scratch H*len), softmax,
// then out[h*hs + i] = sum_u e_u v[u, h*hs + i] / sum_u e_u.
__global__ void attention_decode_kernel(float* out, const float* q, const float* k, long long ld_k,
                                        const float* v, long long ld_v, long long len, int hs, float scale,
                                        float* scores) {
    __shared__ float smem[kWarp];
    const long long head_col = (long long)blockIdx.x * hs;
    const float* qh = q + head_col;
    float* s = scores + (long long)blockIdx.x * len;
    float m = -INFINITY;
    for (long long u = threadIdx.x; u < len; u += blockDim.x) {
        const float* ku = k + u * ld_k + head_col;
        float dot = 0.0f;
        for (int i = 0; i < hs; ++i) dot += qh[i] * ku[i];
        s[u] = dot * scale;
        m = fmaxf(m, s[u]);
    }
    m = block_max(m, smem);  // its __syncthreads also publishes s[] to the block
    float sum = 0.0f;
    for (long long u = threadIdx.x; u < len; u += blockDim.x) {
        const float e = expf(s[u] - m);
        s[u] = e;
        sum += e;
    }
    sum = block_sum(sum, smem);
    for (int i = threadIdx.x; i < hs; i += blockDim.x) {
        float acc = 0.0f;
        for (long long u = 0; u < len; ++u) acc += s[u] * v[u * ld_v + head_col + i];
        out[head_col + i] = acc / sum;
    }
}

struct Dims {
    std::int64_t B, T, H, C, hs;
};

Dims check_dims(const char* op, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t C, CMatView qkv,
                std::int64_t out_rows, std::int64_t out_cols) {
    if (B < 0 || T < 0 || H < 1 || C % H != 0 || qkv.cols != 3 * C || qkv.rows != B * T ||
        out_rows != B * T || out_cols != C)
        throw Error(std::string("[cuda ") + op + "] shapes: B " + std::to_string(B) + ", T " +
                    std::to_string(T) + ", H " + std::to_string(H) + ", C " + std::to_string(C) + ", qkv " +
                    std::to_string(qkv.rows) + "x" + std::to_string(qkv.cols) + ", out/dout " +
                    std::to_string(out_rows) + "x" + std::to_string(out_cols) +
                    " (want qkv (B*T, 3C), out (B*T, C), C divisible by H)");
    return {B, T, H, C, C / H};
}

unsigned softmax_blocks(std::int64_t rows) { return blocks_for(rows, kSoftmaxWarps); }

}  // namespace

// Per head h, batched over b:  S = q k^T / sqrt(hs);  P = causal softmax(S) -> att;  out = P v.
// In bf16/fp16 qkv and P are converted once each (not per head); S, P and out stay FP32.
void attention_forward(const Context& ctx, const AttentionArgs<float>& a) {
    const Dims d = check_dims("attention_forward", a.B, a.T_, a.H, a.out.cols, a.qkv, a.out.rows, a.out.cols);
    if (d.B * d.T == 0 || d.C == 0) return;
    if (ctx.attention == CudaAttention::fused && fused_attention_fits(d.B, d.H, d.hs))
        return attention_forward_fused(a, d.hs);
    const std::int64_t T = d.T, TT = T * T, HT = d.H * T;
    const float scale = 1.0f / std::sqrt(float(d.hs));
    const OperandMat qkv = gemm_operand(ctx, a.qkv, 0, "attention_forward");
    for (std::int64_t h = 0; h < d.H; ++h) {
        gemm_row_major(ctx,
                       {T,
                        T,
                        d.hs,
                        qkv.in(0, h * d.hs, Trans::no, T),
                        qkv.in(0, d.C + h * d.hs, Trans::yes, T),
                        {a.att + h * TT, T, d.H * TT},
                        scale,
                        0.0f,
                        d.B},
                       "attention_forward");
    }
    const std::int64_t rows = d.B * HT;
    causal_softmax_kernel<<<softmax_blocks(rows), kSoftmaxWarps * kWarp>>>(a.att, rows, int(T));
    TL_CUDA_CHECK_LAUNCH("attention_forward");
    // att as a (B H T, T) matrix: head h of batch b is the (T, T) block at row (b H + h) T.
    const OperandMat p = gemm_operand(ctx, CMatView(a.att, rows, T, T), 1, "attention_forward");
    for (std::int64_t h = 0; h < d.H; ++h) {
        gemm_row_major(ctx,
                       {T,
                        d.hs,
                        T,
                        p.in(h * T, 0, Trans::no, HT),
                        qkv.in(0, 2 * d.C + h * d.hs, Trans::no, T),
                        {a.out.data + h * d.hs, a.out.ld, T * a.out.ld},
                        1.0f,
                        0.0f,
                        d.B},
                       "attention_forward");
    }
}

// dv = P^T dout;  dP = dout v^T;  dS = softmax backward (scaled);  dq = dS k;  dk = dS^T q.   dqkv
// overwritten: every element of each head's dq, dk, dv block is written once (beta 0). In bf16/fp16 qkv,
// dout, P and dS are converted once each; dP and dS are computed in FP32.
void attention_backward(const Context& ctx, const AttentionGradArgs<float>& a) {
    const Dims d =
        check_dims("attention_backward", a.B, a.T_, a.H, a.dout.cols, a.qkv, a.dout.rows, a.dout.cols);
    if (a.dqkv.rows != a.qkv.rows || a.dqkv.cols != a.qkv.cols)
        throw Error("[cuda attention_backward] dqkv " + std::to_string(a.dqkv.rows) + "x" +
                    std::to_string(a.dqkv.cols) + " differs from qkv's shape");
    if (d.B * d.T == 0 || d.C == 0) return;
    const std::int64_t T = d.T, TT = T * T, HT = d.H * T, ldd = a.dqkv.ld, rows = d.B * HT;
    const float scale = 1.0f / std::sqrt(float(d.hs));
    const OperandMat qkv = gemm_operand(ctx, a.qkv, 0, "attention_backward");
    const OperandMat dout = gemm_operand(ctx, a.dout, 1, "attention_backward");
    const OperandMat p = gemm_operand(ctx, CMatView(a.att, rows, T, T), 2, "attention_backward");
    for (std::int64_t h = 0; h < d.H; ++h) {
        gemm_row_major(ctx,  // dv (T, hs) = P^T (T, T) dout (T, hs)
                       {T,
                        d.hs,
                        T,
                        p.in(h * T, 0, Trans::yes, HT),
                        dout.in(0, h * d.hs, Trans::no, T),
                        {a.dqkv.data + 2 * d.C + h * d.hs, ldd, T * ldd},
                        1.0f,
                        0.0f,
                        d.B},
                       "attention_backward");
        gemm_row_major(ctx,  // dP (T, T) = dout (T, hs) v^T (hs, T)
                       {T,
                        T,
                        d.hs,
                        dout.in(0, h * d.hs, Trans::no, T),
                        qkv.in(0, 2 * d.C + h * d.hs, Trans::yes, T),
                        {a.datt + h * TT, T, d.H * TT},
                        1.0f,
                        0.0f,
                        d.B},
                       "attention_backward");
    }
    causal_softmax_backward_kernel<<<softmax_blocks(rows), kSoftmaxWarps * kWarp>>>(a.datt, a.att, rows,
                                                                                    int(T), scale);
    TL_CUDA_CHECK_LAUNCH("attention_backward");
    const OperandMat ds =
        gemm_operand(ctx, CMatView(a.datt, rows, T, T), 2, "attention_backward");  // P's slot
    for (std::int64_t h = 0; h < d.H; ++h) {
        gemm_row_major(ctx,  // dq (T, hs) = dS (T, T) k (T, hs)
                       {T,
                        d.hs,
                        T,
                        ds.in(h * T, 0, Trans::no, HT),
                        qkv.in(0, d.C + h * d.hs, Trans::no, T),
                        {a.dqkv.data + h * d.hs, ldd, T * ldd},
                        1.0f,
                        0.0f,
                        d.B},
                       "attention_backward");
        gemm_row_major(ctx,  // dk (T, hs) = dS^T (T, T) q (T, hs)
                       {T,
                        d.hs,
                        T,
                        ds.in(h * T, 0, Trans::yes, HT),
                        qkv.in(0, h * d.hs, Trans::no, T),
                        {a.dqkv.data + d.C + h * d.hs, ldd, T * ldd},
                        1.0f,
                        0.0f,
                        d.B},
                       "attention_backward");
    }
}

// One new token: per head, softmax(q k^T / sqrt(hs)) v over the len cached positions.
void attention_decode(const Context& ctx, const AttentionDecodeArgs<float>& a) {
    const std::int64_t C = a.q.n, H = a.H, len = a.k.rows;
    if (H < 1 || C % H != 0 || a.out.n != C || a.k.cols != C || a.v.cols != C || a.v.rows != len || len < 1)
        throw Error("[cuda attention_decode] shapes: q " + std::to_string(C) + ", H " + std::to_string(H) +
                    ", k " + std::to_string(a.k.rows) + "x" + std::to_string(a.k.cols) + ", v " +
                    std::to_string(a.v.rows) + "x" + std::to_string(a.v.cols) +
                    " (want k, v (len >= 1, C), C divisible by H)");
    const std::int64_t hs = C / H;
    auto* scores = static_cast<float*>(ctx.scratch->get(sizeof(float) * std::size_t(H * len)));
    attention_decode_kernel<<<unsigned(H), kDecodeThreads>>>(a.out.data, a.q.data, a.k.data, a.k.ld, a.v.data,
                                                             a.v.ld, len, int(hs),
                                                             1.0f / std::sqrt(float(hs)), scores);
    TL_CUDA_CHECK_LAUNCH("attention_decode");
}

}  // namespace tl::cuda
