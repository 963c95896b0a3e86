// The batch-1 product y = W x (a decode step): bound by reading W, so the kernel is built to stream the codes.
// Each warp owns kRowsPerWarp rows; each lane reads one 16-byte chunk of codes per row per step (32 int4/nf4 or
// 16 int8/fp8 weights) with a streaming load, the matching x values with 16-byte loads (x is small and stays in
// L1/L2, shared by every warp), decodes in registers, multiplies by the group's scale, and the warp adds its
// lanes' sums at the end. A lane's chunk never straddles a group (groups are multiples of 32 elements), so
// each chunk needs one scale. Batches above 1 run one grid row per row of X (W is read again for each).
#include "backend/cuda/cuda_common.cuh"
#include "core/error.hpp"
#include "quant/cuda/qkernel_common.cuh"
#include "quant/cuda/qmatmul.hpp"
#include "quant/cuda/qview.cuh"

namespace tl::cuda_quant {

namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kRowsPerWarp = 2;  // two rows share each x load; two loads of codes in flight per lane

template <QuantKind K, class T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    qgemv_kernel(QuantView w, const T* __restrict__ x, T* __restrict__ y) {
    constexpr int E = kChunk<K>;
    __shared__ float book[16];
    if constexpr (K == QuantKind::nf4) load_nf4_book(book);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const std::int64_t row0 = (std::int64_t(blockIdx.x) * kWarpsPerBlock + warp) * kRowsPerWarp;
    if (row0 >= w.rows) return;
    const T* xb = x + std::int64_t(blockIdx.y) * w.cols;
    const std::int64_t chunks = w.cols / E, chunks_per_group = w.group / E;

    float acc[kRowsPerWarp] = {};
    // Unrolled twice: both steps' code loads are issued before either step's math, so each warp keeps 2 KB of
    // codes in flight (the bandwidth of a GEMV is the bytes in flight over the memory latency).
#pragma unroll 2
    for (std::int64_t c = lane; c < chunks; c += 32) {
        uint4 raw[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            const std::int64_t row = row0 + r < w.rows ? row0 + r : row0;  // a missing row re-reads row0, unused
            raw[r] = __ldcs(reinterpret_cast<const uint4*>(w.codes + row * w.code_bytes_per_row) + c);
        }
        float xs[E];
        load_activations<T, E>(xb + c * E, xs);
        // 32-bit: a 64-bit division costs several times the instructions, once per step in the hot loop (a row's
        // chunk count, cols / 16 at most, always fits).
        const std::int64_t g = std::uint32_t(c) / std::uint32_t(chunks_per_group);
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            float wv[E];
            decode_chunk<K>(raw[r], wv, book);
            float part[4] = {};  // four chains: the FMAs overlap instead of waiting on one another
#pragma unroll
            for (int i = 0; i < E; ++i) part[i % 4] = fmaf(wv[i], xs[i], part[i % 4]);
            const float dot = (part[0] + part[1]) + (part[2] + part[3]);
            if (row0 + r < w.rows) acc[r] = fmaf(group_scale(w, row0 + r, g), dot, acc[r]);
        }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        const float total = cuda::warp_sum(acc[r]);
        if (lane == 0 && row0 + r < w.rows) y[std::int64_t(blockIdx.y) * w.rows + row0 + r] = from_float<T>(total);
    }
}

template <QuantKind K, class T>
void launch(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, cudaStream_t s) {
    const std::int64_t rows_per_block = kWarpsPerBlock * kRowsPerWarp;
    const dim3 grid{unsigned((w.rows() + rows_per_block - 1) / rows_per_block), unsigned(batch)};
    qgemv_kernel<K, T><<<grid, kWarpsPerBlock * 32, 0, s>>>(view_of(w), static_cast<const T*>(x), static_cast<T*>(y));
    TL_CUDA_CHECK_LAUNCH("qgemv");
}

template <class T>
void launch_kind(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, cudaStream_t s) {
    switch (w.kind()) {
        case QuantKind::int8: return launch<QuantKind::int8, T>(w, x, y, batch, s);
        case QuantKind::int4: return launch<QuantKind::int4, T>(w, x, y, batch, s);
        case QuantKind::nf4: return launch<QuantKind::nf4, T>(w, x, y, batch, s);
        case QuantKind::fp8_e4m3: return launch<QuantKind::fp8_e4m3, T>(w, x, y, batch, s);
    }
}

}  // namespace

void qgemv(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, ActType t, cudaStream_t s) {
    check_product_args("qgemv", w, x, y, batch, 65535);
    if (t == ActType::bf16)
        launch_kind<__nv_bfloat16>(w, x, y, batch, s);
    else
        launch_kind<__half>(w, x, y, batch, s);
}

}  // namespace tl::cuda_quant
