// The GPU's layout of a weight-only quantized matrix W (rows = outputs, cols = inputs), built on the host from a
// QuantizedTensor (formats/quantizer.hpp) and uploaded as is by quant/cuda. It keeps the stored form: 8- or 4-bit
// codes, fp16 scales or QLoRA's double-quantized ones, nothing decoded ahead. Differences from the quantizer's own
// packing: int4 codes are unsigned nibbles (value + 8) so the kernels convert them without sign extension.
// dequantize_layout() reads it back on the host with the kernels' own decode functions (quant_decode.hpp);
// tests/engine/quant/quant_layout_test.cpp checks that against dequantize(). C++17: the CUDA files include it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "quant/quant_decode.hpp"

namespace tl {

struct QuantizedTensor;  // formats/quantizer.hpp (C++20: not included here)

enum class QuantKind : int { int8, int4, nf4, fp8_e4m3 };

struct QuantLayout {
    QuantKind kind = QuantKind::int8;
    qdecode::ScaleMode scale_mode = qdecode::ScaleMode::fp16;
    std::int64_t rows = 0, cols = 0;
    std::int64_t group = 0;                   // elements per scale along a row (cols when per channel)
    std::vector<std::uint8_t> codes;          // row-major; 4-bit: element 2i in the low nibble of byte i
    std::vector<std::uint16_t> scales;        // fp16 bits, rows x groups_per_row (fp16 mode)
    std::vector<std::uint8_t> scale_codes;    // double-quantized modes: one per group, row-major
    std::vector<float> scale_scales;          // one per dq_block codes
    std::int64_t dq_block = 256;
    float scale_mean = 0;

    int bits() const { return kind == QuantKind::int4 || kind == QuantKind::nf4 ? 4 : 8; }
    std::int64_t groups_per_row() const { return cols / group; }
    std::int64_t code_bytes_per_row() const { return cols * bits() / 8; }
    // Every byte a kernel reads for the weights: codes + scales (+ the fp32 block scales and mean).
    std::size_t bytes() const;
};

const char* name_of(QuantKind k);

// The layout of `q`, or tl::Error saying why the GPU kernels cannot take it and what would: the format must be
// int8, int4, nf4 or fp8_e4m3, symmetric, per channel or per group of a multiple of 32 elements that divides
// the row; the row a multiple of 64 elements; scales stored as fp16 or double-quantized (int8 or fp8_e4m3 codes).
QuantLayout make_quant_layout(const QuantizedTensor& q);

// tl::Error from `op` unless (rows, cols, group) is a shape the kernels take: rows >= 1, cols a multiple of 64,
// group a multiple of 32 that divides cols.
void check_quant_shape(const std::string& op, std::int64_t rows, std::int64_t cols, std::int64_t group);

// tl::Error unless w is a layout the kernels can read safely: the shape rules above, and codes, scales and
// double-quantized block scales of exactly the sizes that shape implies (a hand-built or damaged layout must
// not become an out-of-bounds read on the GPU).
void check_quant_layout(const QuantLayout& w);

// W as floats (rows x cols), each element decoded as the kernels decode it: value(code) x scale in float.
std::vector<float> dequantize_layout(const QuantLayout& w);
// One row of it (for error checks of large matrices on a sample of rows).
void dequantize_layout_row(const QuantLayout& w, std::int64_t row, float* out);

// A valid layout with random codes and scales, for benchmarks of shapes too large to quantize on the host
// quickly: codes uniform over the format's finite values, scales ~ N(0, 0.02) magnitudes' absmax / unit max.
QuantLayout random_quant_layout(QuantKind kind, qdecode::ScaleMode scale_mode, std::int64_t rows, std::int64_t cols,
                                std::int64_t group, std::uint64_t seed);

}  // namespace tl
