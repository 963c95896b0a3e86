// Whole-matrix conversions: dequantize (codes x scales -> a bf16/fp16 matrix, the first half of the
// "dequantize, then cuBLAS" path) and the GPU quantizer (fp32 -> int8/int4/nf4 codes and fp16 scales), which
// follows formats/quantizer.cpp step for step so its codes equal the CPU's: the scale is absmax / unit max in
// double rounded once to fp16 (saturating), each code is round-half-even(x / scale) in double (integers) or the
// nearest NF4 entry with ties toward zero.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_common.cuh"
#include "core/error.hpp"
#include "quant/cuda/qkernel_common.cuh"
#include "quant/cuda/qmatmul.hpp"
#include "quant/cuda/qview.cuh"

namespace tl::cuda_quant {

namespace {

// One thread per 16-byte chunk of codes: decode, scale, round to T, store with 16-byte writes.
template <QuantKind K, class T>
__global__ void dequantize_kernel(QuantView w, T* __restrict__ out) {
    constexpr int E = kChunk<K>;
    __shared__ float book[16];
    if constexpr (K == QuantKind::nf4) load_nf4_book(book);
    const std::int64_t chunks_per_row = w.cols / E, total = w.rows * chunks_per_row;
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t row = i / chunks_per_row, c = i % chunks_per_row;
        const uint4 raw = __ldcs(reinterpret_cast<const uint4*>(w.codes + row * w.code_bytes_per_row) + c);
        float v[E];
        decode_chunk<K>(raw, v, book);
        const float scale = group_scale(w, row, c * E / w.group);
        alignas(16) T vals[E];
#pragma unroll
        for (int e = 0; e < E; ++e) vals[e] = from_float<T>(v[e] * scale);
        uint4* dst = reinterpret_cast<uint4*>(out + row * w.cols + c * E);
#pragma unroll
        for (int q = 0; q < E / 8; ++q) dst[q] = reinterpret_cast<const uint4*>(vals)[q];
    }
}

__device__ double unit_max(QuantKind k) { return k == QuantKind::int8 ? 127.0 : k == QuantKind::int4 ? 7.0 : 1.0; }

// The code of x under scale s (0 when the scale is 0, as the CPU quantizer does), as stored in the layout.
__device__ std::uint32_t encode(QuantKind k, float x, double s) {
    const double u = s == 0 ? 0.0 : double(x) / s;
    if (k == QuantKind::nf4) {
        std::uint32_t best = 0;
        double best_d = fabs(u - double(qdecode::nf4_value(0)));
        for (std::uint32_t i = 1; i < 16; ++i) {
            const double book = double(qdecode::nf4_value(i)), d = fabs(u - book);
            if (d < best_d || (d == best_d && fabs(book) < fabs(double(qdecode::nf4_value(best))))) best = i, best_d = d;
        }
        return best;
    }
    const double hi = unit_max(k), q = fmin(hi, fmax(-hi, rint(u)));  // rint: ties to even
    const int v = int(q);
    return k == QuantKind::int4 ? std::uint32_t(v + 8) : std::uint32_t(v) & 0xFFu;
}

// One warp per group: absmax, the fp16 scale, then the codes (4-bit: a lane writes whole bytes).
__global__ void quantize_kernel(const float* __restrict__ w, std::int64_t rows, std::int64_t cols, std::int64_t group,
                                QuantKind kind, std::uint8_t* __restrict__ codes, std::uint16_t* __restrict__ scales) {
    const int lane = threadIdx.x % 32;
    const std::int64_t groups_per_row = cols / group, groups = rows * groups_per_row;
    const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x / 32);
    for (std::int64_t g = blockIdx.x * std::int64_t(blockDim.x / 32) + threadIdx.x / 32; g < groups; g += warps) {
        const float* v = w + (g / groups_per_row) * cols + (g % groups_per_row) * group;
        float absmax = 0;
        for (std::int64_t i = lane; i < group; i += 32) absmax = fmaxf(absmax, fabsf(v[i]));
        absmax = cuda::warp_max(absmax);
        double raw = double(absmax) / unit_max(kind);
        raw = raw > 65504.0 ? 65504.0 : raw;  // the scale format saturates
        const __half stored = __double2half(raw);
        if (lane == 0) scales[g] = __half_as_ushort(stored);
        const double s = double(__half2float(stored));
        const std::int64_t first = (g / groups_per_row) * cols + (g % groups_per_row) * group;  // element index
        if (kind == QuantKind::int8) {
            for (std::int64_t i = lane; i < group; i += 32) codes[first + i] = std::uint8_t(encode(kind, v[i], s));
        } else {
            for (std::int64_t i = 2 * lane; i < group; i += 64)
                codes[(first + i) / 2] = std::uint8_t(encode(kind, v[i], s) | (encode(kind, v[i + 1], s) << 4));
        }
    }
}

template <class T>
void dequantize_as(const DeviceQuantMatrix& w, void* out, cudaStream_t s) {
    const QuantView v = view_of(w);
    const unsigned blocks = cuda::grid_stride_blocks(w.rows() * w.cols() / 16, 256);
    T* o = static_cast<T*>(out);
    switch (w.kind()) {
        case QuantKind::int8: dequantize_kernel<QuantKind::int8, T><<<blocks, 256, 0, s>>>(v, o); break;
        case QuantKind::int4: dequantize_kernel<QuantKind::int4, T><<<blocks, 256, 0, s>>>(v, o); break;
        case QuantKind::nf4: dequantize_kernel<QuantKind::nf4, T><<<blocks, 256, 0, s>>>(v, o); break;
        case QuantKind::fp8_e4m3: dequantize_kernel<QuantKind::fp8_e4m3, T><<<blocks, 256, 0, s>>>(v, o); break;
    }
    TL_CUDA_CHECK_LAUNCH("dequantize");
}

}  // namespace

void dequantize(const DeviceQuantMatrix& w, void* out, ActType t, cudaStream_t s) {
    if (out == nullptr || reinterpret_cast<std::uintptr_t>(out) % 16 != 0)
        throw Error("[cuda] dequantize: the output must be a device pointer aligned to 16 bytes");
    if (t == ActType::bf16)
        dequantize_as<__nv_bfloat16>(w, out, s);
    else
        dequantize_as<__half>(w, out, s);
}

void quantize(const float* w, DeviceQuantMatrix& out, cudaStream_t s) {
    if (out.kind() == QuantKind::fp8_e4m3 || out.scale_mode() != qdecode::ScaleMode::fp16)
        throw Error(std::string("[cuda] quantize: the GPU quantizer makes int8, int4 and nf4 codes with fp16 scales; "
                                "got ") + name_of(out.kind()) + ". Quantize on the host (formats/quantizer.hpp).");
    if (w == nullptr) throw Error("[cuda] quantize: the input must be a device pointer");
    const std::int64_t groups = out.rows() * (out.cols() / out.group());
    const unsigned blocks = cuda::grid_stride_blocks(groups * 32, 256);
    quantize_kernel<<<blocks, 256, 0, s>>>(w, out.rows(), out.cols(), out.group(), out.kind(), out.mutable_codes(),
                                           out.mutable_scales());
    TL_CUDA_CHECK_LAUNCH("quantize");
}

}  // namespace tl::cuda_quant
