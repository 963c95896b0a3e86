// How one stored weight code becomes a number, written once for the host and the GPU: the CUDA kernels
// (quant/cuda) and the host-side reading of the same layout (quant_layout.hpp) call these functions, so the CPU
// tests that check the layout against formats/quantizer.hpp's dequantize() check the kernels' decoding too.
// C++17 and header-only: nvcc compiles it as device code, g++ as plain inline functions.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define TL_HD __host__ __device__ __forceinline__
#else
#define TL_HD inline
#endif

namespace tl::qdecode {

TL_HD float bits_to_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
#endif
}

// An int4 code stored as an unsigned nibble n = value + 8 (0..15): value = n - 8, exactly. The float is
// built by putting n in the low mantissa bits of 2^23 (no int-to-float conversion instruction) and subtracting.
TL_HD float int4_value(std::uint32_t nibble) { return bits_to_float(0x4B000000u | nibble) - 8388616.0f; }

// An int8 code stored as two's complement: flipping the sign bit gives value + 128 as an unsigned byte.
TL_HD float int8_value(std::uint32_t byte) { return bits_to_float(0x4B000000u | (byte ^ 0x80u)) - 8388736.0f; }

// OCP FP8 E4M3 ("FN": no infinities, S.1111.111 is NaN): bias 7, subnormals m x 2^-9.
TL_HD float fp8_e4m3_value(std::uint32_t byte) {
    const std::uint32_t sign = (byte & 0x80u) << 24, e = (byte >> 3) & 0xFu, m = byte & 7u;
    if (e == 15 && m == 7) return bits_to_float(sign | 0x7FC00000u);
    if (e == 0) {
        const float v = float(m) * 0.001953125f;  // 2^-9
        return sign ? -v : v;
    }
    return bits_to_float(sign | ((e + 120u) << 23) | (m << 20));
}

// The NF4 code book (formats/codebook.hpp's kNf4Codebook; quant_layout_test checks the two agree). A table
// local to the function, so device code can use it too (kernels copy it to shared memory once per block).
TL_HD float nf4_value(std::uint32_t code) {
    constexpr float book[16] = {
        -1.0f,                 -0.6961928009986877f,  -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f,  0.16093020141124725f,  0.24611230194568634f,  0.33791524171829224f,
        0.44070982933044434f,  0.5626170039176941f,   0.7229568362236023f,   1.0f};
    return book[code & 0xFu];
}

// IEEE binary16 bits to float (scales are stored as fp16 when not double-quantized).
TL_HD float fp16_value(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) {
        const float v = float(m) * 5.9604644775390625e-8f;  // 2^-24
        return sign ? -v : v;
    }
    if (e == 31) return bits_to_float(sign | 0x7F800000u | (m << 13));
    return bits_to_float(sign | ((e + 112u) << 23) | (m << 13));
}

// How the per-group scales are stored.
enum class ScaleMode : int {
    fp16,     // one fp16 per group
    dq_fp8,   // QLoRA's double quantization: an fp8 E4M3 code per group, one fp32 per block of codes, a mean
    dq_int8,  // the same with int8 codes
};

// A double-quantized scale: code value x its block's fp32 scale + the mean, rounded once (fma).
TL_HD float dq_scale(ScaleMode mode, std::uint32_t code, float block_scale, float mean) {
    const float v = mode == ScaleMode::dq_fp8 ? fp8_e4m3_value(code) : int8_value(code);
#if defined(__CUDA_ARCH__)
    return __fmaf_rn(v, block_scale, mean);
#else
    return __builtin_fmaf(v, block_scale, mean);
#endif
}

}  // namespace tl::qdecode
