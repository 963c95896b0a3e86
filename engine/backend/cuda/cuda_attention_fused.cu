// Causal attention forward in one kernel (CudaOptions::attention = fused): per (query tile, head, batch) a block
// walks the key tiles twice through shared memory. Pass 1 computes the scaled scores S = q k^T / sqrt(hs) of its
// 16 query rows against each 32-key tile, parks them in att, and keeps each row's running max and sum of exp
// (the online softmax of flash attention, rescaling the sum when the max grows). Pass 2 turns the parked scores
// into probabilities P = exp(S - max) / sum, writes them to att (backward needs them: this is not the
// memory-saving flash attention, the (B, H, T, T) probabilities stay), and accumulates out = P v against each
// 32-row tile of v. Everything FP32 whatever the GEMM precision. One launch replaces the GEMM path's 2 H GEMMs
// and its softmax kernel. Heads of up to 128 dimensions; wider ones take the GEMM path. Contract:
// ref::attention_forward (ref_kernels.cpp).
#include <cmath>

#include "backend/cuda/cuda_kernels.cuh"

namespace tl::cuda {

namespace {

constexpr int kQueryRows = 16;              // rows of a block: 4 warps x 4 rows
constexpr int kRowsPerWarp = 4;
constexpr int kKeyTile = 32;                // keys per tile: one per lane
constexpr int kMaxHead = 128;               // hs <= 128: each lane holds at most 4 output dimensions
constexpr int kThreads = kQueryRows / kRowsPerWarp * kWarp;

__global__ void __launch_bounds__(kThreads)
    attention_fused_kernel(float* __restrict__ out, long long ld_out, float* __restrict__ att,
                           const float* __restrict__ qkv, long long ld_qkv, int T, int H, int hs, float scale) {
    __shared__ float q[kQueryRows][kMaxHead];
    __shared__ float tile[kKeyTile][kMaxHead + 1];  // k in pass 1, v in pass 2; +1: lanes read rows conflict-free
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int t0 = blockIdx.x * kQueryRows, h = blockIdx.y, b = blockIdx.z;
    const long long C = (long long)H * hs;
    const float* base = qkv + (long long)b * T * ld_qkv;
    float* att_bh = att + ((long long)b * H + h) * T * T;
    const int last_row = min(t0 + kQueryRows, T) - 1;  // the block's last query row: keys beyond it are masked

    for (int i = threadIdx.x; i < kQueryRows * hs; i += kThreads) {
        const int r = i / hs, d = i % hs;
        q[r][d] = t0 + r < T ? base[(long long)(t0 + r) * ld_qkv + (long long)h * hs + d] : 0.0f;
    }
    float m[kRowsPerWarp], l[kRowsPerWarp];
    for (int i = 0; i < kRowsPerWarp; ++i) m[i] = -INFINITY, l[i] = 0.0f;

    // Pass 1: scores, parked in att, with each row's running max and sum of exp.
    for (int u0 = 0; u0 <= last_row; u0 += kKeyTile) {
        __syncthreads();  // the previous tile (and q's loading) done
        for (int i = threadIdx.x; i < kKeyTile * hs; i += kThreads) {
            const int j = i / hs, d = i % hs;
            tile[j][d] = u0 + j < T ? base[(long long)(u0 + j) * ld_qkv + C + (long long)h * hs + d] : 0.0f;
        }
        __syncthreads();
        for (int i = 0; i < kRowsPerWarp; ++i) {
            const int r = warp * kRowsPerWarp + i, t = t0 + r, u = u0 + lane;
            if (t >= T) continue;  // warp-uniform
            float s = -INFINITY;
            if (u <= t) {
                float dot = 0.0f;
                for (int d = 0; d < hs; ++d) dot = fmaf(q[r][d], tile[lane][d], dot);
                s = dot * scale;
                att_bh[(long long)t * T + u] = s;
            }
            // Finite: tile 0 holds key 0 <= t, so m is finite from the first tile on, and fmaxf(m, -inf) = m.
            const float m_new = fmaxf(m[i], warp_max(s));
            const float e = u <= t ? expf(s - m_new) : 0.0f;
            l[i] = l[i] * expf(m[i] - m_new) + warp_sum(e);
            m[i] = m_new;
        }
    }

    // Pass 2: probabilities into att, out = P v.
    float acc[kRowsPerWarp][kMaxHead / kWarp] = {};
    for (int u0 = 0; u0 <= last_row; u0 += kKeyTile) {
        __syncthreads();
        for (int i = threadIdx.x; i < kKeyTile * hs; i += kThreads) {
            const int j = i / hs, d = i % hs;
            tile[j][d] = u0 + j < T ? base[(long long)(u0 + j) * ld_qkv + 2 * C + (long long)h * hs + d] : 0.0f;
        }
        __syncthreads();
        for (int i = 0; i < kRowsPerWarp; ++i) {
            const int r = warp * kRowsPerWarp + i, t = t0 + r, u = u0 + lane;
            if (t >= T) continue;
            float p = 0.0f;
            if (u <= t) {
                p = expf(att_bh[(long long)t * T + u] - m[i]) / l[i];
                att_bh[(long long)t * T + u] = p;
            }
            const int keys = min(kKeyTile, t - u0 + 1);  // this tile's keys at or before t
            for (int j = 0; j < keys; ++j) {
                const float pj = __shfl_sync(kFullMask, p, j);
#pragma unroll
                for (int k = 0; k < kMaxHead / kWarp; ++k) {
                    const int d = lane + k * kWarp;
                    if (d < hs) acc[i][k] = fmaf(pj, tile[j][d], acc[i][k]);
                }
            }
        }
    }

    // The output rows, and zeros above the diagonal of att.
    for (int i = 0; i < kRowsPerWarp; ++i) {
        const int t = t0 + warp * kRowsPerWarp + i;
        if (t >= T) continue;
#pragma unroll
        for (int k = 0; k < kMaxHead / kWarp; ++k) {
            const int d = lane + k * kWarp;
            if (d < hs) out[((long long)b * T + t) * ld_out + (long long)h * hs + d] = acc[i][k];
        }
        for (int u = t + 1 + lane; u < T; u += kWarp) att_bh[(long long)t * T + u] = 0.0f;
    }
}

}  // namespace

bool fused_attention_fits(std::int64_t B, std::int64_t H, std::int64_t hs) {
    return hs >= 1 && hs <= kMaxHead && B <= 65535 && H <= 65535;  // gridDim.y = H, gridDim.z = B
}

void attention_forward_fused(const AttentionArgs<float>& a, std::int64_t hs) {
    const std::int64_t T = a.T_;
    const dim3 grid{unsigned((T + kQueryRows - 1) / kQueryRows), unsigned(a.H), unsigned(a.B)};
    attention_fused_kernel<<<grid, kThreads>>>(a.out.data, a.out.ld, a.att, a.qkv.data, a.qkv.ld, int(T), int(a.H),
                                               int(hs), 1.0f / std::sqrt(float(hs)));
    TL_CUDA_CHECK_LAUNCH("attention_forward (fused)");
}

}  // namespace tl::cuda
