// Shared by the quantized-product kernels (qgemv.cu, qgemm.cu, qconvert.cu): the kernel-side view of a
// DeviceQuantMatrix, the 16-byte chunk decoders (one vector load of codes -> 16 or 32 floats), the group
// scale reader, and the 16-bit activation types. Decoding goes through quant_decode.hpp, the functions the
// host-side layout tests check against the quantizer.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "quant/quant_decode.hpp"
#include "quant/quant_layout.hpp"

namespace tl::cuda_quant {

// Kernel arguments: the device pointers of a DeviceQuantMatrix and its shape, passed by value.
struct QuantView {
    const std::uint8_t* codes;
    const std::uint16_t* scales;       // fp16 bits (fp16 mode)
    const std::uint8_t* scale_codes;   // double-quantized modes
    const float* scale_scales;
    float scale_mean;
    qdecode::ScaleMode scale_mode;
    std::int64_t rows, cols, group, dq_block;
    std::int64_t code_bytes_per_row, groups_per_row;
};

// The scale of group g of row r.
__device__ __forceinline__ float group_scale(const QuantView& w, std::int64_t r, std::int64_t g) {
    const std::int64_t flat = r * w.groups_per_row + g;
    if (w.scale_mode == qdecode::ScaleMode::fp16) return __half2float(__ushort_as_half(__ldg(w.scales + flat)));
    return qdecode::dq_scale(w.scale_mode, __ldg(w.scale_codes + flat), __ldg(w.scale_scales + flat / w.dq_block),
                             w.scale_mean);
}

// How many weights one 16-byte load of codes holds.
template <QuantKind K>
constexpr int kChunk = (K == QuantKind::int4 || K == QuantKind::nf4) ? 32 : 16;

// Decodes one 16-byte chunk of codes into kChunk<K> floats (unscaled). `nf4` points to the code book in shared
// memory (16 floats; unused by the other formats).
template <QuantKind K>
__device__ __forceinline__ void decode_chunk(const uint4& raw, float* out, const float* nf4) {
    const std::uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const std::uint32_t v = words[i];
        if constexpr (K == QuantKind::int4) {
#pragma unroll
            for (int j = 0; j < 8; ++j) out[i * 8 + j] = qdecode::int4_value((v >> (4 * j)) & 0xFu);
        } else if constexpr (K == QuantKind::nf4) {
#pragma unroll
            for (int j = 0; j < 8; ++j) out[i * 8 + j] = nf4[(v >> (4 * j)) & 0xFu];
        } else if constexpr (K == QuantKind::int8) {
#pragma unroll
            for (int j = 0; j < 4; ++j) out[i * 4 + j] = qdecode::int8_value((v >> (8 * j)) & 0xFFu);
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) out[i * 4 + j] = qdecode::fp8_e4m3_value((v >> (8 * j)) & 0xFFu);
        }
    }
}

// Loads the NF4 code book into shared memory (every thread of the block must call it, before any early exit).
__device__ __forceinline__ void load_nf4_book(float* book) {
    if (threadIdx.x < 16) book[threadIdx.x] = qdecode::nf4_value(threadIdx.x);
    __syncthreads();
}

// The 16-bit activation types and their conversions.
template <class T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }

// n consecutive 16-bit activations (n a multiple of 8, 16-byte aligned) as floats, in 16-byte loads.
template <class T, int N>
__device__ __forceinline__ void load_activations(const T* x, float* out) {
    static_assert(N % 8 == 0, "16-byte loads");
#pragma unroll
    for (int i = 0; i < N / 8; ++i) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(x) + i);
        const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int j = 0; j < 8; ++j) out[i * 8 + j] = to_float(v[j]);
    }
}

}  // namespace tl::cuda_quant
