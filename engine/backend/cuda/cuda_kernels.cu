// The CUDA backend's element-wise, per-row and per-column kernels: embedding, layernorm, bias and bias
// gradient, GELU, residual adds, cross-entropy, sum of squares, scale, AdamW. Each op mirrors its reference
// kernel in backend/cpu/ref_kernels.cpp (the specification); GEMMs are in cuda_gemm.cu, attention in
// cuda_attention.cu. Determinism: no float atomics anywhere. Every reduction has a fixed assignment of
// elements to threads and a fixed combining order, so the same inputs give the same bits on the same GPU.
#include <math_constants.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cuda/cuda_kernels.cuh"
#include "core/error.hpp"

namespace tl::cuda {

namespace {

constexpr int kThreads = 256;  // element-wise kernels and one-block-per-row kernels
constexpr int kRowWarps = 4;   // one-warp-per-row kernels: rows per block of 128 threads

#define TL_GRID_STRIDE(i, n)                                                                 \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)gridDim.x * blockDim.x)

std::string dims(std::int64_t r, std::int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }

// ---- element-wise -----------------------------------------------------------------------------------------
__global__ void fill_zero_kernel(float* x, long long n) { TL_GRID_STRIDE(i, n) x[i] = 0.0f; }

__global__ void scale_matrix_kernel(float* c, long long ld, long long rows, long long cols, float beta) {
    TL_GRID_STRIDE(i, rows * cols) {
        float& e = c[(i / cols) * ld + i % cols];
        e = beta == 0.0f ? 0.0f : beta * e;  // beta 0 never reads C (it may hold NaN)
    }
}

__global__ void add_bias_kernel(float* out, long long ld, long long rows, long long cols, const float* b) {
    TL_GRID_STRIDE(i, rows * cols) out[(i / cols) * ld + i % cols] += b[i % cols];
}

__global__ void add_kernel(float* out, const float* a, const float* b, long long n) {
    TL_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void add_inplace_kernel(float* dst, const float* src, long long n) {
    TL_GRID_STRIDE(i, n) dst[i] += src[i];
}

__global__ void scale_kernel(float* x, float s, long long n) { TL_GRID_STRIDE(i, n) x[i] *= s; }

// gelu (tanh): y = 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Computed through s = 0.5 (1 + tanh u) = sigmoid(2u) and t = 1 - s = sigmoid(-2u), both from e = exp(-2|u|)
// <= 1: y = x s and 1 - tanh^2 u = 4 s t. The same function, but without the cancellation of 1 + tanh u for u
// << 0, so the left tail keeps its relative accuracy (and exp never overflows).
constexpr float kSqrt2OverPi = 0.7978845608028654f, kGeluCubic = 0.044715f;

struct GeluParts {
    float s, t;  // sigmoid(2u), sigmoid(-2u)
};
__device__ inline GeluParts gelu_parts(float x) {
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    const float e = expf(-2.0f * fabsf(u));
    const float a = 1.0f / (1.0f + e), b = e * a;  // sigmoid(2|u|), sigmoid(-2|u|)
    return u >= 0.0f ? GeluParts{a, b} : GeluParts{b, a};
}

__global__ void gelu_forward_kernel(float* out, const float* x, long long n) {
    TL_GRID_STRIDE(i, n) {
        const float v = x[i];
        out[i] = v * gelu_parts(v).s;
    }
}

__global__ void gelu_backward_kernel(float* dx, const float* dout, const float* x, long long n) {
    TL_GRID_STRIDE(i, n) {
        const float v = x[i];
        const GeluParts p = gelu_parts(v);
        const float d = p.s + 2.0f * v * p.s * p.t * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
        dx[i] = d * dout[i];
    }
}

// AdamW as the CPU backend computes it (float; bias corrections bc1, bc2 computed on the host in double).
__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, long long n, float lr, float beta1,
                             float beta2, float eps, float wd, float bc1, float bc2) {
    TL_GRID_STRIDE(i, n) {
        const float gi = g[i];
        const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i]);
    }
}

// ---- embedding --------------------------------------------------------------------------------------------
// out[n, :] = wte[tokens[n], :] + wpe[pos0 + n % T, :]. An out-of-range id or position gives a NaN row (a
// kernel cannot throw; Gpt::forward checks ids on the host before they are uploaded).
__global__ void embedding_forward_kernel(float* out, long long ld_out, const int* tokens, const float* wte,
                                         long long ld_wte, long long V, const float* wpe, long long ld_wpe,
                                         long long max_T, long long N, long long C, long long T,
                                         long long pos0) {
    TL_GRID_STRIDE(i, N * C) {
        const long long n = i / C, c = i % C;
        const long long tok = tokens[n], pos = pos0 + n % T;
        const bool ok = tok >= 0 && tok < V && pos >= 0 && pos < max_T;
        out[n * ld_out + c] = ok ? wte[tok * ld_wte + c] + wpe[pos * ld_wpe + c] : CUDART_NAN_F;
    }
}

// dwte[tok, c] += dout[n, c] for every n in increasing order (the CPU backend's order, so the bits match it).
// Block (32 columns, 8 token groups); grid.y more groups. A thread owns the ids with id % groups == its group
// and scans every token, so each (id, c) has one owner that adds in n order: deterministic, no atomics.
constexpr int kEmbCols = 32, kEmbGroupsPerBlock = 8, kTokenTile = 1024;

__global__ void embedding_backward_wte_kernel(float* dwte, long long ld_dwte, long long V, const float* dout,
                                              long long ld_dout, const int* tokens, long long N,
                                              long long C) {
    __shared__ int tile[kTokenTile];
    const long long c = (long long)blockIdx.x * kEmbCols + threadIdx.x;
    const int groups = gridDim.y * kEmbGroupsPerBlock, group = blockIdx.y * kEmbGroupsPerBlock + threadIdx.y;
    const int tid = threadIdx.y * kEmbCols + threadIdx.x, block_threads = kEmbCols * kEmbGroupsPerBlock;
    for (long long base = 0; base < N; base += kTokenTile) {
        const int count = int(N - base < kTokenTile ? N - base : kTokenTile);
        __syncthreads();  // the previous tile is no longer read
        for (int i = tid; i < count; i += block_threads) tile[i] = tokens[base + i];
        __syncthreads();
        if (c >= C) continue;
        for (int i = 0; i < count; ++i) {
            const int tok = tile[i];
            if (tok >= 0 && tok < V && tok % groups == group)
                dwte[tok * ld_dwte + c] += dout[(base + i) * ld_dout + c];
        }
    }
}

// dwpe[pos0 + t, c] += dout[b*T + t, c] for b in increasing order (the CPU backend's order).
__global__ void embedding_backward_wpe_kernel(float* dwpe, long long ld_dwpe, long long max_T,
                                              const float* dout, long long ld_dout, long long B, long long T,
                                              long long C, long long pos0) {
    TL_GRID_STRIDE(i, T * C) {
        const long long t = i / C, c = i % C, pos = pos0 + t;
        if (pos < 0 || pos >= max_T) continue;
        float acc = dwpe[pos * ld_dwpe + c];
        for (long long b = 0; b < B; ++b) acc += dout[(b * T + t) * ld_dout + c];
        dwpe[pos * ld_dwpe + c] = acc;
    }
}

// ---- layernorm --------------------------------------------------------------------------------------------
// One warp per row. Forward: mean, biased variance, rstd = 1/sqrt(var + eps);
// out = (x - mean) rstd gamma + beta.
__global__ void layernorm_forward_kernel(float* out, long long ld_out, float* mean_out, float* rstd_out,
                                         const float* x, long long ld_x, const float* gamma,
                                         const float* beta, long long N, int C, float eps) {
    const long long row = (long long)blockIdx.x * kRowWarps + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= N) return;  // the whole warp leaves together
    const float* xr = x + row * ld_x;
    float sum = 0.0f;
    for (int c = lane; c < C; c += kWarp) sum += xr[c];
    const float mean = warp_sum(sum) / float(C);
    float var = 0.0f;
    for (int c = lane; c < C; c += kWarp) var += (xr[c] - mean) * (xr[c] - mean);
    const float rstd = 1.0f / sqrtf(warp_sum(var) / float(C) + eps);
    float* o = out + row * ld_out;
    for (int c = lane; c < C; c += kWarp) o[c] = (xr[c] - mean) * rstd * gamma[c] + beta[c];
    if (lane == 0) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)),  g = dout gamma,  xhat = (x - mean) rstd.   Overwrites dx.
__global__ void layernorm_backward_dx_kernel(float* dx, long long ld_dx, const float* dout, long long ld_dout,
                                             const float* x, long long ld_x, const float* mean_in,
                                             const float* rstd_in, const float* gamma, long long N, int C) {
    const long long row = (long long)blockIdx.x * kRowWarps + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= N) return;
    const float* xr = x + row * ld_x;
    const float* dr = dout + row * ld_dout;
    const float mean = mean_in[row], rstd = rstd_in[row];
    float g_mean = 0.0f, gx_mean = 0.0f;
    for (int c = lane; c < C; c += kWarp) {
        const float g = dr[c] * gamma[c];
        g_mean += g;
        gx_mean += g * (xr[c] - mean) * rstd;
    }
    g_mean = warp_sum(g_mean) / float(C);
    gx_mean = warp_sum(gx_mean) / float(C);
    float* o = dx + row * ld_dx;
    for (int c = lane; c < C; c += kWarp)
        o[c] = rstd * (dr[c] * gamma[c] - g_mean - (xr[c] - mean) * rstd * gx_mean);
}

// ---- column reductions (db of linear; dgamma, dbeta of layernorm) -----------------------------------------
// Two stages, deterministic. Stage 1: block (32 columns, 8 row lanes) per (column tile, chunk of 64 rows);
// lane y sums rows chunk + y, + 8, ...; the 8 lane sums are added in lane order -> partial[chunk, c].
// Stage 2: one thread per column adds the chunks' partials in chunk order, then dst[c] += total.
// kIsLayerNorm: a gets dout * xhat (dgamma) and b gets dout (dbeta); otherwise only b (db).
constexpr int kColTile = 32, kColRowLanes = 8, kRowsPerChunk = 64;

template <bool kIsLayerNorm>
__global__ void column_partials_kernel(float* part_a, float* part_b, const float* dout, long long ld_dout,
                                       const float* x, long long ld_x, const float* mean, const float* rstd,
                                       long long N, long long C) {
    __shared__ float sa[kColRowLanes][kColTile + 1], sb[kColRowLanes][kColTile + 1];
    const long long c = (long long)blockIdx.x * kColTile + threadIdx.x, chunk = blockIdx.y;
    const long long r_end = (chunk + 1) * kRowsPerChunk < N ? (chunk + 1) * kRowsPerChunk : N;
    float a = 0.0f, b = 0.0f;
    if (c < C)
        for (long long r = chunk * kRowsPerChunk + threadIdx.y; r < r_end; r += kColRowLanes) {
            const float d = dout[r * ld_dout + c];
            b += d;
            if (kIsLayerNorm) a += d * (x[r * ld_x + c] - mean[r]) * rstd[r];
        }
    sa[threadIdx.y][threadIdx.x] = a;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y != 0 || c >= C) return;
    float ta = 0.0f, tb = 0.0f;
    for (int y = 0; y < kColRowLanes; ++y) {
        ta += sa[y][threadIdx.x];
        tb += sb[y][threadIdx.x];
    }
    if (kIsLayerNorm) part_a[chunk * C + c] = ta;
    part_b[chunk * C + c] = tb;
}

__global__ void column_finish_kernel(float* dst_a, float* dst_b, const float* part_a, const float* part_b,
                                     long long chunks, long long C) {
    TL_GRID_STRIDE(c, C) {
        float ta = 0.0f, tb = 0.0f;
        for (long long k = 0; k < chunks; ++k) {
            if (dst_a) ta += part_a[k * C + c];
            tb += part_b[k * C + c];
        }
        if (dst_a) dst_a[c] += ta;
        if (dst_b) dst_b[c] += tb;
    }
}

// dst_a (may be null, layernorm only) and dst_b (may be null) accumulate the column sums of dout's rows.
void column_reduce(const Context& ctx, float* dst_a, float* dst_b, CMatView dout, const float* x,
                   long long ld_x, const float* mean, const float* rstd, bool is_layernorm, const char* op) {
    const std::int64_t N = dout.rows, C = dout.cols;
    if (N == 0 || C == 0 || (!dst_a && !dst_b)) return;
    const std::int64_t chunks = (N + kRowsPerChunk - 1) / kRowsPerChunk;
    TL_ASSERT(chunks <= 65535, std::string("[") + op + "] too many rows for the column reduction's grid");
    auto* part = static_cast<float*>(ctx.scratch->get(sizeof(float) * std::size_t(2 * chunks * C)));
    float* part_a = part;
    float* part_b = part + chunks * C;
    const dim3 grid(blocks_for(C, kColTile), unsigned(chunks)), block(kColTile, kColRowLanes);
    if (is_layernorm)
        column_partials_kernel<true>
            <<<grid, block>>>(part_a, part_b, dout.data, dout.ld, x, ld_x, mean, rstd, N, C);
    else
        column_partials_kernel<false>
            <<<grid, block>>>(part_a, part_b, dout.data, dout.ld, nullptr, 0, nullptr, nullptr, N, C);
    TL_CUDA_CHECK_LAUNCH(op);
    column_finish_kernel<<<grid_stride_blocks(C, kThreads), kThreads>>>(is_layernorm ? dst_a : nullptr, dst_b,
                                                                        part_a, part_b, chunks, C);
    TL_CUDA_CHECK_LAUNCH(op);
}

// ---- cross-entropy: one block per row ---------------------------------------------------------------------
// The row's max m and sum of exp(z - m), both known to every thread: logsumexp(z) = m + log(s).
__device__ inline float2 block_max_and_exp_sum(const float* z, long long V, float* smem) {
    float m = -INFINITY;
    for (long long j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, z[j]);
    m = block_max(m, smem);
    float s = 0.0f;
    for (long long j = threadIdx.x; j < V; j += blockDim.x) s += expf(z[j] - m);
    return make_float2(m, block_sum(s, smem));
}

// loss = logsumexp(z) - z[y]. An out-of-range target gives NaN (checked on the host by Gpt::forward).
__global__ void cross_entropy_forward_kernel(float* losses, const float* logits, long long ld, long long V,
                                             const int* targets) {
    __shared__ float smem[kWarp];
    const float* z = logits + (long long)blockIdx.x * ld;
    const float2 ms = block_max_and_exp_sum(z, V, smem);
    const float m = ms.x, s = ms.y;
    if (threadIdx.x != 0) return;
    const int y = targets[blockIdx.x];
    // The final combination in double: m and z[y] can be large (tens), their float difference would lose
    // digits.
    losses[blockIdx.x] = y >= 0 && y < V ? float(double(m) + log(double(s)) - double(z[y])) : CUDART_NAN_F;
}

// dlogits = w / norm (softmax(z) - onehot(y)), overwrite; rows with weight 0 get exactly zero.
__global__ void cross_entropy_backward_kernel(float* dlogits, long long ld_d, const float* logits,
                                              long long ld_z, long long V, const int* targets,
                                              const float* weights, float norm) {
    __shared__ float smem[kWarp];
    float* d = dlogits + (long long)blockIdx.x * ld_d;
    const float w = weights[blockIdx.x] / norm;
    if (w == 0.0f) {  // the same for the whole block, so no thread is left waiting at a barrier
        for (long long j = threadIdx.x; j < V; j += blockDim.x) d[j] = 0.0f;
        return;
    }
    const float* z = logits + (long long)blockIdx.x * ld_z;
    const float2 ms = block_max_and_exp_sum(z, V, smem);
    const float m = ms.x, log_s = logf(ms.y);
    const int y = targets[blockIdx.x];
    const bool ok = y >= 0 && y < V;
    for (long long j = threadIdx.x; j < V; j += blockDim.x) {
        const float p = expf((z[j] - m) - log_s);
        d[j] = ok ? w * (p - (j == y ? 1.0f : 0.0f)) : CUDART_NAN_F;
    }
}

// ---- sum of squares: fixed chunks -> partials in double -> summed by one block in a fixed order -----------
constexpr long long kSumChunk = 1 << 14;

__global__ void sum_squares_partials_kernel(double* part, const float* x, long long n) {
    __shared__ double smem[kWarp];
    const long long lo = (long long)blockIdx.x * kSumChunk, hi = lo + kSumChunk < n ? lo + kSumChunk : n;
    double acc = 0.0;
    for (long long i = lo + threadIdx.x; i < hi; i += blockDim.x) acc += double(x[i]) * double(x[i]);
    acc = block_sum(acc, smem);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ void sum_squares_finish_kernel(double* out, const double* part, long long chunks) {
    __shared__ double smem[kWarp];
    double acc = 0.0;
    for (long long k = threadIdx.x; k < chunks; k += blockDim.x) acc += part[k];
    acc = block_sum(acc, smem);
    if (threadIdx.x == 0) *out = acc;
}

#undef TL_GRID_STRIDE

}  // namespace

// ===========================================================================================================
// Host entry points (see cuda_kernels.cuh). Launch shapes: element-wise kernels grid-stride over n.

void fill_zero(VecView x) {
    if (x.n == 0) return;
    fill_zero_kernel<<<grid_stride_blocks(x.n, kThreads), kThreads>>>(x.data, x.n);
    TL_CUDA_CHECK_LAUNCH("fill_zero");
}

void scale_matrix(MatView c, float beta, const char* op) {
    if (c.rows * c.cols == 0) return;
    scale_matrix_kernel<<<grid_stride_blocks(c.rows * c.cols, kThreads), kThreads>>>(c.data, c.ld, c.rows,
                                                                                     c.cols, beta);
    TL_CUDA_CHECK_LAUNCH(op);
}

void add_bias(MatView out, CVecView b, const char* op) {
    TL_ASSERT(b.n == out.cols, std::string("[") + op + "] bias length differs from the output's columns");
    if (out.rows * out.cols == 0) return;
    add_bias_kernel<<<grid_stride_blocks(out.rows * out.cols, kThreads), kThreads>>>(
        out.data, out.ld, out.rows, out.cols, b.data);
    TL_CUDA_CHECK_LAUNCH(op);
}

void add_column_sums(const Context& ctx, VecView dst, CMatView x, const char* op) {
    TL_ASSERT(dst.n == x.cols, std::string("[") + op + "] column-sum length differs from the columns");
    column_reduce(ctx, nullptr, dst.data, x, nullptr, 0, nullptr, nullptr, false, op);
}

void embedding_forward(const EmbeddingArgs<float>& a) {
    const std::int64_t N = a.B * a.T_, C = a.out.cols;
    if (a.out.rows != N || a.wte.cols != C || a.wpe.cols != C)
        throw Error("[cuda embedding_forward] shapes: out " + dims(a.out.rows, a.out.cols) + ", wte " +
                    dims(a.wte.rows, a.wte.cols) + ", wpe " + dims(a.wpe.rows, a.wpe.cols) + ", B*T " +
                    std::to_string(N));
    if (a.pos0 + a.T_ > a.wpe.rows)
        throw Error("[cuda embedding_forward] positions " + std::to_string(a.pos0) + ".." +
                    std::to_string(a.pos0 + a.T_ - 1) + " exceed the context length " +
                    std::to_string(a.wpe.rows));
    if (N * C == 0) return;
    embedding_forward_kernel<<<grid_stride_blocks(N * C, kThreads), kThreads>>>(
        a.out.data, a.out.ld, a.tokens, a.wte.data, a.wte.ld, a.wte.rows, a.wpe.data, a.wpe.ld, a.wpe.rows, N,
        C, a.T_, a.pos0);
    TL_CUDA_CHECK_LAUNCH("embedding_forward");
}

void embedding_backward(const EmbeddingGradArgs<float>& a) {
    const std::int64_t N = a.B * a.T_, C = a.dout.cols;
    if (a.dout.rows != N || (a.dwte.data && a.dwte.cols != C) || (a.dwpe.data && a.dwpe.cols != C))
        throw Error("[cuda embedding_backward] shapes: dout " + dims(a.dout.rows, C) + ", dwte " +
                    dims(a.dwte.rows, a.dwte.cols) + ", dwpe " + dims(a.dwpe.rows, a.dwpe.cols));
    if (a.dwpe.data && a.pos0 + a.T_ > a.dwpe.rows)  // as forward: the kernel would skip them without a word
        throw Error("[cuda embedding_backward] positions " + std::to_string(a.pos0) + ".." +
                    std::to_string(a.pos0 + a.T_ - 1) + " exceed the context length " +
                    std::to_string(a.dwpe.rows));
    if (N * C == 0) return;
    if (a.dwte.data) {
        const std::int64_t groups = std::min<std::int64_t>(std::max<std::int64_t>(a.dwte.rows, 1), 256);
        const dim3 grid(blocks_for(C, kEmbCols), blocks_for(groups, kEmbGroupsPerBlock));
        embedding_backward_wte_kernel<<<grid, dim3(kEmbCols, kEmbGroupsPerBlock)>>>(
            a.dwte.data, a.dwte.ld, a.dwte.rows, a.dout.data, a.dout.ld, a.tokens, N, C);
        TL_CUDA_CHECK_LAUNCH("embedding_backward");
    }
    if (a.dwpe.data) {
        embedding_backward_wpe_kernel<<<grid_stride_blocks(a.T_ * C, kThreads), kThreads>>>(
            a.dwpe.data, a.dwpe.ld, a.dwpe.rows, a.dout.data, a.dout.ld, a.B, a.T_, C, a.pos0);
        TL_CUDA_CHECK_LAUNCH("embedding_backward");
    }
}

void layernorm_forward(const LayerNormArgs<float>& a) {
    const std::int64_t N = a.x.rows, C = a.x.cols;
    if (a.out.rows != N || a.out.cols != C || a.mean.n != N || a.rstd.n != N || a.gamma.n != C ||
        a.beta.n != C)
        throw Error("[cuda layernorm_forward] shapes: x " + dims(N, C) + ", out " +
                    dims(a.out.rows, a.out.cols) + ", mean " + std::to_string(a.mean.n) + ", gamma " +
                    std::to_string(a.gamma.n));
    if (N == 0) return;
    layernorm_forward_kernel<<<blocks_for(N, kRowWarps), kRowWarps * kWarp>>>(
        a.out.data, a.out.ld, a.mean.data, a.rstd.data, a.x.data, a.x.ld, a.gamma.data, a.beta.data, N,
        int(C), a.eps);
    TL_CUDA_CHECK_LAUNCH("layernorm_forward");
}

void layernorm_backward(const Context& ctx, const LayerNormGradArgs<float>& a) {
    const std::int64_t N = a.x.rows, C = a.x.cols;
    if (a.dx.rows != N || a.dx.cols != C || a.dout.rows != N || a.dout.cols != C || a.mean.n != N ||
        a.rstd.n != N || a.gamma.n != C || (a.dgamma.data && a.dgamma.n != C) ||
        (a.dbeta.data && a.dbeta.n != C))
        throw Error("[cuda layernorm_backward] shapes: x " + dims(N, C) + ", dx " +
                    dims(a.dx.rows, a.dx.cols) + ", dout " + dims(a.dout.rows, a.dout.cols));
    if (N == 0) return;
    layernorm_backward_dx_kernel<<<blocks_for(N, kRowWarps), kRowWarps * kWarp>>>(
        a.dx.data, a.dx.ld, a.dout.data, a.dout.ld, a.x.data, a.x.ld, a.mean.data, a.rstd.data, a.gamma.data,
        N, int(C));
    TL_CUDA_CHECK_LAUNCH("layernorm_backward");
    column_reduce(ctx, a.dgamma.data, a.dbeta.data, a.dout, a.x.data, a.x.ld, a.mean.data, a.rstd.data, true,
                  "layernorm_backward");
}

void gelu_forward(const GeluArgs<float>& a) {
    TL_ASSERT(a.out.n == a.x.n, "[cuda gelu_forward] out and x differ in length");
    if (a.x.n == 0) return;
    gelu_forward_kernel<<<grid_stride_blocks(a.x.n, kThreads), kThreads>>>(a.out.data, a.x.data, a.x.n);
    TL_CUDA_CHECK_LAUNCH("gelu_forward");
}

void gelu_backward(const GeluGradArgs<float>& a) {
    TL_ASSERT(a.dx.n == a.x.n && a.dout.n == a.x.n, "[cuda gelu_backward] dx, dout and x differ in length");
    if (a.x.n == 0) return;
    gelu_backward_kernel<<<grid_stride_blocks(a.x.n, kThreads), kThreads>>>(a.dx.data, a.dout.data, a.x.data,
                                                                            a.x.n);
    TL_CUDA_CHECK_LAUNCH("gelu_backward");
}

void add(VecView out, CVecView a, CVecView b) {
    TL_ASSERT(out.n == a.n && out.n == b.n, "[cuda add] lengths differ");
    if (out.n == 0) return;
    add_kernel<<<grid_stride_blocks(out.n, kThreads), kThreads>>>(out.data, a.data, b.data, out.n);
    TL_CUDA_CHECK_LAUNCH("add");
}

void add_inplace(VecView dst, CVecView src) {
    TL_ASSERT(dst.n == src.n, "[cuda add_inplace] lengths differ");
    if (dst.n == 0) return;
    add_inplace_kernel<<<grid_stride_blocks(dst.n, kThreads), kThreads>>>(dst.data, src.data, dst.n);
    TL_CUDA_CHECK_LAUNCH("add_inplace");
}

void cross_entropy_forward(const CrossEntropyArgs<float>& a) {
    TL_ASSERT(a.losses.n == a.logits.rows,
              "[cuda cross_entropy_forward] losses length differs from the rows");
    if (a.logits.rows == 0) return;
    cross_entropy_forward_kernel<<<unsigned(a.logits.rows), kThreads>>>(
        a.losses.data, a.logits.data, a.logits.ld, a.logits.cols, a.targets);
    TL_CUDA_CHECK_LAUNCH("cross_entropy_forward");
}

void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) {
    TL_ASSERT(
        a.dlogits.rows == a.logits.rows && a.dlogits.cols == a.logits.cols && a.weights.n == a.logits.rows,
        "[cuda cross_entropy_backward] dlogits, logits and weights disagree in shape");
    if (a.logits.rows == 0) return;
    cross_entropy_backward_kernel<<<unsigned(a.logits.rows), kThreads>>>(
        a.dlogits.data, a.dlogits.ld, a.logits.data, a.logits.ld, a.logits.cols, a.targets, a.weights.data,
        a.norm);
    TL_CUDA_CHECK_LAUNCH("cross_entropy_backward");
}

double sum_squares(const Context& ctx, CVecView x) {
    if (x.n == 0) return 0.0;
    const long long chunks = (x.n + kSumChunk - 1) / kSumChunk;
    auto* part = static_cast<double*>(ctx.scratch->get(sizeof(double) * std::size_t(chunks + 1)));
    sum_squares_partials_kernel<<<unsigned(chunks), kThreads>>>(part, x.data, x.n);
    TL_CUDA_CHECK_LAUNCH("sum_squares");
    sum_squares_finish_kernel<<<1, kThreads>>>(part + chunks, part, chunks);
    TL_CUDA_CHECK_LAUNCH("sum_squares");
    double total = 0.0;
    TL_CUDA_CHECK_OP("sum_squares",
                     cudaMemcpy(&total, part + chunks, sizeof(double), cudaMemcpyDeviceToHost));
    return total;
}

void scale(VecView x, float s) {
    if (x.n == 0) return;
    scale_kernel<<<grid_stride_blocks(x.n, kThreads), kThreads>>>(x.data, s, x.n);
    TL_CUDA_CHECK_LAUNCH("scale");
}

void adamw(const AdamWArgs<float>& a) {
    TL_ASSERT(a.m.n == a.params.n && a.v.n == a.params.n && a.grads.n == a.params.n,
              "[cuda adamw] params, m, v and grads differ in length");
    if (a.params.n == 0) return;
    const float bc1 = 1.0f - float(std::pow(double(a.beta1), double(a.step)));
    const float bc2 = 1.0f - float(std::pow(double(a.beta2), double(a.step)));
    adamw_kernel<<<grid_stride_blocks(a.params.n, kThreads), kThreads>>>(
        a.params.data, a.m.data, a.v.data, a.grads.data, a.params.n, a.lr, a.beta1, a.beta2, a.eps,
        a.weight_decay, bc1, bc2);
    TL_CUDA_CHECK_LAUNCH("adamw");
}

}  // namespace tl::cuda
