// Batches 2..256 (prefill): Y (batch, rows) = X (batch, cols) W^T on tensor cores (WMMA, 16x16x16, bf16 or fp16
// inputs, fp32 accumulators). A block owns 64 rows of W x 16/32/64 rows of X. Per 64-wide step along K it
// decodes its 64 x 64 tile of W (codes x group scale, rounded to the activation type: the only rounding the
// weights see) into shared memory, copies the X tile beside it, and each of its 4 warps multiplies 16 rows of W
// by the whole X tile. The next step's codes and X are loaded into registers before the current step's
// multiplies, so the global loads overlap the math. When there are too few tiles to fill the GPU (few output
// rows), K is split across blocks and a second kernel adds the fp32 partial sums in a fixed order.
#include <mma.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "backend/cuda/cuda_common.cuh"
#include "core/error.hpp"
#include "quant/cuda/qkernel_common.cuh"
#include "quant/cuda/qmatmul.hpp"
#include "quant/cuda/qview.cuh"

namespace tl::cuda_quant {

namespace {

namespace wmma = nvcuda::wmma;

constexpr int kThreads = 128;  // 4 warps
constexpr int BM = 64, BK = 64;
constexpr int LDW = BK + 8, LDX = BK + 8;  // padded rows: 144 bytes, 16-byte aligned, fewer bank conflicts

template <QuantKind K, class T, int NB>
struct Tile {
    static constexpr int E = kChunk<K>;
    static constexpr int kBits = E == 32 ? 4 : 8;
    static constexpr int BN = 16 * NB;
    static constexpr int LDC = BN + 4;
    static constexpr int kCodeChunks = BM * BK / E;         // 16-byte chunks of W per step: 128 or 256
    static constexpr int kCodePerThread = kCodeChunks / kThreads;
    static constexpr int kXChunks = BN * BK / 8;             // 16-byte chunks of X per step
    static constexpr int kXPerThread = kXChunks / kThreads;  // NB
};

template <QuantKind K, class T, int NB>
__global__ void __launch_bounds__(kThreads)
    qgemm_kernel(QuantView w, const T* __restrict__ x, std::int64_t batch, std::int64_t k_per_split,
                 T* __restrict__ y, float* __restrict__ partial) {
    using Tl = Tile<K, T, NB>;
    constexpr int E = Tl::E, BN = Tl::BN, LDC = Tl::LDC, kBits = Tl::kBits;
    __shared__ __align__(32) T ws[BM * LDW];
    __shared__ __align__(32) T xs[BN * LDX];
    __shared__ __align__(32) float cs[BM * LDC];
    __shared__ float book[16];
    if constexpr (K == QuantKind::nf4) load_nf4_book(book);

    const int tid = threadIdx.x, warp = tid / 32;
    // The batch tile is blockIdx.x, the fastest-varying: the blocks that run together share one W tile, so W
    // comes from DRAM about once however many batch tiles there are (X, at most a few MB, stays in L2).
    const std::int64_t n0 = std::int64_t(blockIdx.x) * BN, m0 = std::int64_t(blockIdx.y) * BM;
    const std::int64_t k_begin = std::int64_t(blockIdx.z) * k_per_split;
    const std::int64_t k_end = k_begin + k_per_split < w.cols ? k_begin + k_per_split : w.cols;
    constexpr int chunks_per_tile_row = BK / E;

    uint4 wraw[Tl::kCodePerThread], xraw[Tl::kXPerThread];
    auto load = [&](std::int64_t k0) {
#pragma unroll
        for (int i = 0; i < Tl::kCodePerThread; ++i) {
            const int idx = tid + i * kThreads, r = idx / chunks_per_tile_row, j = idx % chunks_per_tile_row;
            const std::int64_t row = m0 + r;
            const std::int64_t byte = (k0 + j * E) * kBits / 8;
            // __ldg, not the streaming __ldcs of qgemv: every batch tile reads this W tile again.
            wraw[i] = row < w.rows ? __ldg(reinterpret_cast<const uint4*>(w.codes + row * w.code_bytes_per_row + byte))
                                   : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int i = 0; i < Tl::kXPerThread; ++i) {
            const int idx = tid + i * kThreads, n = idx / 8, j = idx % 8;
            xraw[i] = n0 + n < batch ? __ldg(reinterpret_cast<const uint4*>(x + (n0 + n) * w.cols + k0 + j * 8))
                                     : make_uint4(0, 0, 0, 0);
        }
    };
    auto store = [&](std::int64_t k0) {
#pragma unroll
        for (int i = 0; i < Tl::kCodePerThread; ++i) {
            const int idx = tid + i * kThreads, r = idx / chunks_per_tile_row, j = idx % chunks_per_tile_row;
            const std::int64_t row = m0 + r;
            float v[E];
            decode_chunk<K>(wraw[i], v, book);
            const float scale = row < w.rows ? group_scale(w, row, (k0 + j * E) / w.group) : 0.0f;
            alignas(16) T out[E];
#pragma unroll
            for (int e = 0; e < E; ++e) out[e] = from_float<T>(v[e] * scale);
            uint4* dst = reinterpret_cast<uint4*>(ws + r * LDW + j * E);
#pragma unroll
            for (int q = 0; q < E / 8; ++q) dst[q] = reinterpret_cast<const uint4*>(out)[q];
        }
#pragma unroll
        for (int i = 0; i < Tl::kXPerThread; ++i) {
            const int idx = tid + i * kThreads, n = idx / 8, j = idx % 8;
            *reinterpret_cast<uint4*>(xs + n * LDX + j * 8) = xraw[i];
        }
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NB];
#pragma unroll
    for (int j = 0; j < NB; ++j) wmma::fill_fragment(acc[j], 0.0f);

    if (k_begin < k_end) load(k_begin);
    for (std::int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
        store(k0);
        __syncthreads();
        if (k0 + BK < k_end) load(k0 + BK);  // in flight while the tensor cores work on this step
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
            wmma::load_matrix_sync(a, ws + warp * 16 * LDW + kk, LDW);
#pragma unroll
            for (int j = 0; j < NB; ++j) {
                // X's tile is (n, k) row-major, i.e. the K x N operand column-major.
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
                wmma::load_matrix_sync(b, xs + j * 16 * LDX + kk, LDX);
                wmma::mma_sync(acc[j], a, b, acc[j]);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int j = 0; j < NB; ++j)
        wmma::store_matrix_sync(cs + warp * 16 * LDC + j * 16, acc[j], LDC, wmma::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < BM * BN; idx += kThreads) {
        const int r = idx % BM, n = idx / BM;  // consecutive threads: consecutive rows of W = contiguous in Y
        const std::int64_t row = m0 + r, col = n0 + n;
        if (row >= w.rows || col >= batch) continue;
        const float v = cs[r * LDC + n];
        if (partial == nullptr)
            y[col * w.rows + row] = from_float<T>(v);
        else
            partial[(std::int64_t(blockIdx.z) * batch + col) * w.rows + row] = v;
    }
}

// y = the sum of the splits' partial products, in split order (deterministic).
template <class T>
__global__ void add_splits_kernel(const float* __restrict__ partial, int splits, std::int64_t count, T* __restrict__ y) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        float s = 0;
        for (int z = 0; z < splits; ++z) s += partial[z * count + i];
        y[i] = from_float<T>(s);
    }
}

int sm_count() {
    static const int count = [] {
        int device = 0, n = 0;
        TL_CUDA_CHECK_OP("qgemm", cudaGetDevice(&device));
        TL_CUDA_CHECK_OP("qgemm", cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
        return n;
    }();
    return count;
}

// The split-K partial sums: one buffer per stream (two streams must not share one), grown on demand and kept
// (freeing would synchronise; cudaFree of a smaller one waits for the kernels still reading it). The lock makes
// the lookup and growth safe from several host threads.
float* split_workspace(std::size_t floats, cudaStream_t s) {
    struct Slot {
        float* buffer = nullptr;
        std::size_t capacity = 0;
    };
    static std::mutex lock;
    static std::unordered_map<cudaStream_t, Slot> slots;
    const std::lock_guard<std::mutex> hold(lock);
    Slot& slot = slots[s];
    if (floats > slot.capacity) {
        TL_CUDA_CHECK_OP("qgemm", cudaFree(slot.buffer));
        slot = Slot{};
        TL_CUDA_CHECK_OP("qgemm", cudaMalloc(reinterpret_cast<void**>(&slot.buffer), floats * sizeof(float)));
        slot.capacity = floats;
    }
    return slot.buffer;
}

template <QuantKind K, class T, int NB>
void launch(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, cudaStream_t s) {
    constexpr int BN = 16 * NB;
    const std::int64_t row_tiles = (w.rows() + BM - 1) / BM, batch_tiles = (batch + BN - 1) / BN;
    const std::int64_t k_steps = w.cols() / BK, tiles = row_tiles * batch_tiles;
    // Enough blocks for two per SM, each split at least 4 steps of K long.
    const std::int64_t want = (2 * sm_count() + tiles - 1) / tiles;
    const int splits = int(std::max<std::int64_t>(1, std::min(want, k_steps / 4)));
    const std::int64_t k_per_split = (k_steps + splits - 1) / splits * BK;
    const int used_splits = int((w.cols() + k_per_split - 1) / k_per_split);
    float* partial = used_splits > 1 ? split_workspace(std::size_t(used_splits * batch * w.rows()), s) : nullptr;
    const dim3 grid{unsigned(batch_tiles), unsigned(row_tiles), unsigned(used_splits)};
    qgemm_kernel<K, T, NB><<<grid, kThreads, 0, s>>>(view_of(w), static_cast<const T*>(x), batch, k_per_split,
                                                     static_cast<T*>(y), partial);
    TL_CUDA_CHECK_LAUNCH("qgemm");
    if (partial != nullptr) {
        const std::int64_t count = batch * w.rows();
        add_splits_kernel<T><<<cuda::grid_stride_blocks(count, 256), 256, 0, s>>>(partial, used_splits, count,
                                                                                    static_cast<T*>(y));
        TL_CUDA_CHECK_LAUNCH("qgemm (adding the K splits)");
    }
}

template <QuantKind K, class T>
void launch_width(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, cudaStream_t s) {
    if (batch <= 16) return launch<K, T, 1>(w, x, y, batch, s);
    if (batch <= 32) return launch<K, T, 2>(w, x, y, batch, s);
    return launch<K, T, 4>(w, x, y, batch, s);
}

template <class T>
void launch_kind(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, cudaStream_t s) {
    switch (w.kind()) {
        case QuantKind::int8: return launch_width<QuantKind::int8, T>(w, x, y, batch, s);
        case QuantKind::int4: return launch_width<QuantKind::int4, T>(w, x, y, batch, s);
        case QuantKind::nf4: return launch_width<QuantKind::nf4, T>(w, x, y, batch, s);
        case QuantKind::fp8_e4m3: return launch_width<QuantKind::fp8_e4m3, T>(w, x, y, batch, s);
    }
}

}  // namespace

void qgemm(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, ActType t, cudaStream_t s) {
    check_product_args("qgemm", w, x, y, batch, std::int64_t(65535) * 16);
    if ((w.rows() + BM - 1) / BM > 65535)  // gridDim.y holds the row tiles
        throw Error("[cuda] qgemm: at most " + std::to_string(65535 * BM) + " rows; got " + std::to_string(w.rows()));
    if (t == ActType::bf16)
        launch_kind<__nv_bfloat16>(w, x, y, batch, s);
    else
        launch_kind<__half>(w, x, y, batch, s);
}

}  // namespace tl::cuda_quant
