// Weight-only quantized products, the kernels a quantized model's decode and prefill run: y = W x (GEMV,
// batch 1) and Y = X W^T (GEMM, a batch of rows) with W (out, in) stored as a QuantizedTensor
// (formats/quantizer.hpp) and dequantized on the fly. A GEMV at batch 1 is bound by memory bandwidth, so
// reading 4- or 8-bit codes instead of fp32 weights is what makes it faster; the arithmetic stays fp32.
// bench_quant measures them against fp32 and the machine's bandwidth (docs/benchmarks.md);
// tests/engine/quant/qgemv_test.cpp checks them against dequantize() followed by a double-precision product.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "formats/quantizer.hpp"

namespace tl {

// Whether the fused kernels take this tensor: int8, int4, nf4, fp8_e4m3 or fp8_e5m2; symmetric; per channel,
// or per group of a multiple of 16 along the row; no palette; cols a multiple of 16. Others: dequantize
// first.
bool qgemv_supports(const QuantizedTensor& w);

// y (w.rows) = W x (w.cols), rows split across `threads` (0: all cores). AVX2 kernels when the CPU has AVX2
// and FMA, else a portable loop with the same result up to float rounding. tl::Error when !qgemv_supports(w)
// or the sizes differ.
void qgemv(const QuantizedTensor& w, std::span<const float> x, std::span<float> y, int threads = 0);

// Which inner loop qgemv_q8 runs: `automatic` picks the fastest this CPU has; the others are there so that
// tests can check each against the same oracle (tl::Error when the CPU lacks it: ask qgemv_q8_has_kernel).
enum class Q8Kernel { automatic, avx512_vnni, avx2, portable };
bool qgemv_q8_has_kernel(Q8Kernel kernel);

// The same product with x rounded to int8 in blocks of 32 (scale = the block's absmax / 127) and integer dot
// products, as llama.cpp runs its quantized GEMVs: no code is converted to float, so the kernel keeps up with
// memory. The result differs from qgemv's by x's rounding (relative error ~ 2^-9 per element, averaging out
// over a row). int8 and int4 only, per channel or per group of a multiple of 32. int4 codes enter as unsigned
// nibbles (w + 8) and each dot product starts from -8 x the sum of the x codes it meets, computed once per
// call with x's rounding; vpdpbusd where the CPU has AVX512-VNNI, else maddubs (AVX2), else a portable loop.
bool qgemv_q8_supports(const QuantizedTensor& w);
void qgemv_q8(const QuantizedTensor& w, std::span<const float> x, std::span<float> y, int threads = 0,
              Q8Kernel kernel = Q8Kernel::automatic);

// x rounded as qgemv_q8 rounds it (for tests and for the accuracy comparison): each block of 32 becomes
// scale * round(x / scale), scale = absmax / 127.
std::vector<float> round_activations_q8(std::span<const float> x);

// Y (batch, w.rows) = X (batch, w.cols) W^T: W is dequantized a tile of rows at a time into an fp32 buffer
// that stays in cache, and each tile goes through the CPU backend's SGEMM; W is never whole in fp32.
void qgemm(const QuantizedTensor& w, std::span<const float> x, std::int64_t batch, std::span<float> y,
           int threads = 0);

// The fp32 reference GEMV of the same loop structure (bench_quant's baseline): y = W x, W (rows, cols)
// row-major.
void gemv_fp32(std::span<const float> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
               std::span<float> y, int threads = 0);

}  // namespace tl
