// Quantizers built on the format table: a matrix (rows, cols), row-major, is cut into blocks (per tensor, per
// row = output channel, or per group of `group_size` along a row); each block gets a scale (and, asymmetric, an
// integer zero point) chosen by a clipping rule; scales are stored in a scale format or double-quantized.
// fake_quantize is the QAT building block (engine/quant builds PTQ/QAT on it). docs/formats.md explains.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/format_table.hpp"

namespace tl {

enum class Granularity { per_tensor, per_channel, per_group };
enum class Symmetry { symmetric, asymmetric };  // asymmetric: integer formats only (unsigned codes + zero point)
enum class ClipMethod {
    absmax,   // the block's largest magnitude maps to the format's max: nothing clips
    absmean,  // the scale is the block's mean magnitude (BitNet b1.58: ternary codes x mean|W|)
    mse,      // the clip ratio in [0.30, 1.00] (step 0.01) of absmax with the least squared error
};
enum class DoubleQuant { none, int8, fp8_e4m3 };  // QLoRA: (scale - mean) in 8 bits, blocks of 256 scales

struct QuantScheme {
    Format format = Format::int8;
    Granularity granularity = Granularity::per_tensor;
    std::int64_t group_size = 0;  // per_group: elements per group along a row (the last group may be shorter)
    Symmetry symmetry = Symmetry::symmetric;
    ClipMethod clip = ClipMethod::absmax;
    Format scale_format = Format::fp16;  // how each scale is stored when not double-quantized
    DoubleQuant double_quant = DoubleQuant::none;
    std::int64_t double_quant_block = 256;  // scales per second-level block
};

// A quantized matrix, as it would be stored. Scales are kept decoded (the values dequantization multiplies by);
// with double quantization, scale_codes / scale_scales / scale_mean are what is stored for them.
struct QuantizedTensor {
    QuantScheme scheme;
    std::int64_t rows = 0, cols = 0;
    std::vector<std::uint8_t> packed;       // element codes, packing.hpp layout
    std::vector<float> scales;              // one per block (empty when the format is not scaled)
    std::vector<std::int32_t> zero_points;  // one per block, asymmetric only
    std::vector<float> codebooks;           // palette formats: 2^bits fp16-rounded entries per block
    std::vector<std::uint32_t> scale_codes; // double quantization: 8-bit codes, one per scale
    std::vector<float> scale_scales;        // double quantization: one fp32 per double_quant_block scales
    float scale_mean = 0;                   // double quantization: subtracted before quantizing the scales

    std::int64_t numel() const { return rows * cols; }
    std::int64_t num_blocks() const;
    double storage_bits() const;            // everything above, each at its stored width
};

// Names of the scheme's choices ("per_group", "asymmetric", "mse", "fp8_e4m3"), and their parsers (tl::Error
// listing the valid names), for the CLI, experiments and result files.
std::string_view name_of(Granularity g);
std::string_view name_of(Symmetry s);
std::string_view name_of(ClipMethod c);
std::string_view name_of(DoubleQuant d);
Granularity parse_granularity(std::string_view s);
Symmetry parse_symmetry(std::string_view s);
ClipMethod parse_clip(std::string_view s);
DoubleQuant parse_double_quant(std::string_view s);

// tl::Error for a scheme that makes no sense for the shape (asymmetric nf4, group size 0, ...).
void validate_scheme(const QuantScheme& s, std::int64_t rows, std::int64_t cols);
std::string describe(const QuantScheme& s);  // "int4 per_group(32) symmetric absmax, fp16 scales"

QuantizedTensor quantize(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantScheme& s);
std::vector<float> dequantize(const QuantizedTensor& q);
void dequantize_into(const QuantizedTensor& q, std::span<float> out);

// Quantize then dequantize in place: what a QAT forward pass sees.
void fake_quantize(std::span<float> x, std::int64_t rows, std::int64_t cols, const QuantScheme& s);

// Bits per weight charged for the scheme: element bits + scales (or their double quantization) + zero points +
// palettes, divided by rows * cols. E.g. int4, groups of 32, fp16 scales: 4 + 16/32 = 4.5.
double bits_per_weight(const QuantScheme& s, std::int64_t rows, std::int64_t cols);

}  // namespace tl
