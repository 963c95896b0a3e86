#include "quant/quant_layout.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/packing.hpp"
#include "formats/quantizer.hpp"

namespace tl {

namespace {

QuantKind kind_of(Format f, const std::string& what) {
    switch (f) {
        case Format::int8: return QuantKind::int8;
        case Format::int4: return QuantKind::int4;
        case Format::nf4: return QuantKind::nf4;
        case Format::fp8_e4m3: return QuantKind::fp8_e4m3;
        default:
            throw Error(what + "the GPU kernels take int8, int4, nf4 or fp8_e4m3 weights; got " +
                        std::string(format_info(f).name) + ". Quantize to one of those, or dequantize first.");
    }
}

// fp16 bits of a scale that the quantizer stored as fp16 (so the conversion is exact; checked).
std::uint16_t fp16_bits(float v, const std::string& what) {
    const std::uint32_t code = format_encode(format_info(Format::fp16), v);
    if (qdecode::fp16_value(std::uint16_t(code)) != v)
        throw Error(what + "a scale (" + std::to_string(v) + ") is not an fp16 value; store scales as fp16");
    return std::uint16_t(code);
}

float decode_code(QuantKind kind, std::uint32_t code) {
    switch (kind) {
        case QuantKind::int8: return qdecode::int8_value(code);
        case QuantKind::int4: return qdecode::int4_value(code);
        case QuantKind::nf4: return qdecode::nf4_value(code);
        case QuantKind::fp8_e4m3: return qdecode::fp8_e4m3_value(code);
    }
    return 0;
}

float scale_of(const QuantLayout& w, std::int64_t flat_group) {
    if (w.scale_mode == qdecode::ScaleMode::fp16) return qdecode::fp16_value(w.scales[std::size_t(flat_group)]);
    return qdecode::dq_scale(w.scale_mode, w.scale_codes[std::size_t(flat_group)],
                             w.scale_scales[std::size_t(flat_group / w.dq_block)], w.scale_mean);
}

}  // namespace

const char* name_of(QuantKind k) {
    switch (k) {
        case QuantKind::int8: return "int8";
        case QuantKind::int4: return "int4";
        case QuantKind::nf4: return "nf4";
        case QuantKind::fp8_e4m3: return "fp8_e4m3";
    }
    return "?";
}

std::size_t QuantLayout::bytes() const {
    return codes.size() + scales.size() * 2 + scale_codes.size() +
           (scale_mode == qdecode::ScaleMode::fp16 ? 0 : scale_scales.size() * 4 + 4);
}

QuantLayout make_quant_layout(const QuantizedTensor& q) {
    const QuantScheme& s = q.scheme;
    const std::string what = "[quant] GPU layout of " + describe(s) + ", " + std::to_string(q.rows) + " x " +
                             std::to_string(q.cols) + ": ";
    QuantLayout w;
    w.kind = kind_of(s.format, what);
    w.rows = q.rows, w.cols = q.cols;
    if (s.symmetry != Symmetry::symmetric) throw Error(what + "the GPU kernels take symmetric schemes only");
    if (s.granularity == Granularity::per_tensor)
        throw Error(what + "per_tensor scales are not supported by the GPU kernels; use per_channel (same bytes, "
                           "better accuracy) or per_group");
    w.group = s.granularity == Granularity::per_channel ? q.cols : s.group_size;
    if (q.cols % 64 != 0)
        throw Error(what + "the GPU kernels need a row length (input features) that is a multiple of 64");
    if (w.group % 32 != 0 || q.cols % w.group != 0)
        throw Error(what + "the group size must be a multiple of 32 that divides the row; got " +
                    std::to_string(w.group));
    switch (s.double_quant) {
        case DoubleQuant::none:
            if (s.scale_format != Format::fp16) throw Error(what + "store scales as fp16 (or double-quantize them)");
            w.scale_mode = qdecode::ScaleMode::fp16;
            break;
        case DoubleQuant::fp8_e4m3: w.scale_mode = qdecode::ScaleMode::dq_fp8; break;
        case DoubleQuant::int8: w.scale_mode = qdecode::ScaleMode::dq_int8; break;
    }

    // Codes: the quantizer's packing already puts element 2i in the low nibble; int4 nibbles move from two's
    // complement to value + 8 (flip the top bit of each nibble), int8 and fp8 bytes stay as they are.
    w.codes = q.packed;
    if (w.kind == QuantKind::int4)
        for (auto& b : w.codes) b ^= 0x88;
    if (w.scale_mode == qdecode::ScaleMode::fp16) {
        w.scales.reserve(q.scales.size());
        for (const float v : q.scales) w.scales.push_back(fp16_bits(v, what));
    } else {
        w.scale_codes.reserve(q.scale_codes.size());
        for (const auto c : q.scale_codes) w.scale_codes.push_back(std::uint8_t(c));
        w.scale_scales = q.scale_scales;
        w.dq_block = s.double_quant_block;
        w.scale_mean = q.scale_mean;
    }
    return w;
}

void check_quant_shape(const std::string& op, std::int64_t rows, std::int64_t cols, std::int64_t group) {
    if (rows < 1 || cols < 64 || cols % 64 != 0 || group < 32 || group % 32 != 0 || cols % group != 0)
        throw Error(op + ": need rows >= 1, cols a multiple of 64 and a group that is a multiple of 32 dividing "
                    "cols; got " + std::to_string(rows) + " x " + std::to_string(cols) + ", group " +
                    std::to_string(group));
}

void check_quant_layout(const QuantLayout& w) {
    check_quant_shape("[quant] QuantLayout", w.rows, w.cols, w.group);
    const std::string what = "[quant] QuantLayout " + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                             ", group " + std::to_string(w.group) + ": ";
    auto expect_size = [&](std::size_t got, std::int64_t want, const char* field) {
        if (got != std::size_t(want))
            throw Error(what + field + " holds " + std::to_string(got) + " entries; the shape needs " +
                        std::to_string(want));
    };
    const std::int64_t groups = w.rows * w.groups_per_row();
    expect_size(w.codes.size(), w.rows * w.code_bytes_per_row(), "codes");
    if (w.scale_mode == qdecode::ScaleMode::fp16) {
        expect_size(w.scales.size(), groups, "scales");
        return;
    }
    if (w.dq_block < 1) throw Error(what + "dq_block must be >= 1; got " + std::to_string(w.dq_block));
    expect_size(w.scale_codes.size(), groups, "scale_codes");
    expect_size(w.scale_scales.size(), (groups + w.dq_block - 1) / w.dq_block, "scale_scales");
}

void dequantize_layout_row(const QuantLayout& w, std::int64_t row, float* out) {
    const std::uint8_t* codes = w.codes.data() + row * w.code_bytes_per_row();
    for (std::int64_t c = 0; c < w.cols; ++c) {
        const std::uint32_t code = w.bits() == 8 ? codes[c] : (codes[c / 2] >> (4 * (c % 2))) & 0xFu;
        out[c] = decode_code(w.kind, code) * scale_of(w, row * w.groups_per_row() + c / w.group);
    }
}

std::vector<float> dequantize_layout(const QuantLayout& w) {
    std::vector<float> out(std::size_t(w.rows * w.cols));
    for (std::int64_t r = 0; r < w.rows; ++r) dequantize_layout_row(w, r, out.data() + r * w.cols);
    return out;
}

QuantLayout random_quant_layout(QuantKind kind, qdecode::ScaleMode scale_mode, std::int64_t rows, std::int64_t cols,
                                std::int64_t group, std::uint64_t seed) {
    QuantLayout w;
    w.kind = kind, w.scale_mode = scale_mode, w.rows = rows, w.cols = cols, w.group = group;
    check_quant_shape("[quant] random_quant_layout", rows, cols, group);
    Rng rng(seed);
    w.codes.resize(std::size_t(rows * w.code_bytes_per_row()));
    // 8 random bytes at a time: a 8192 x 28672 matrix has 235 M weights.
    for (std::size_t i = 0; i < w.codes.size(); i += 8) {
        std::uint64_t bits = rng.next_u64();
        for (std::size_t j = i; j < std::min(w.codes.size(), i + 8); ++j, bits >>= 8) w.codes[j] = std::uint8_t(bits);
    }
    if (kind == QuantKind::fp8_e4m3)
        for (auto& b : w.codes)
            if ((b & 0x7F) == 0x7F) b ^= 1;  // NaN -> the largest finite (448)
    if (kind == QuantKind::int8)
        for (auto& b : w.codes)
            if (b == 0x80) b = 0x81;  // -128 -> -127: the symmetric range
    const std::int64_t groups = rows * (cols / group);
    const double unit_max = kind == QuantKind::int8 ? 127 : kind == QuantKind::int4 ? 7
                            : kind == QuantKind::nf4 ? 1 : 448;
    auto scale = [&] { return float((0.02 * (2.0 + 0.5 * rng.normal())) / unit_max); };
    if (scale_mode == qdecode::ScaleMode::fp16) {
        w.scales.resize(std::size_t(groups));
        for (auto& s : w.scales) s = std::uint16_t(format_encode(format_info(Format::fp16), scale()));
    } else {
        w.scale_codes.resize(std::size_t(groups));
        for (auto& c : w.scale_codes) {
            c = std::uint8_t(rng.next_u64());
            if (scale_mode == qdecode::ScaleMode::dq_fp8 && (c & 0x7F) == 0x7F) c ^= 1;
            if (scale_mode == qdecode::ScaleMode::dq_int8 && c == 0x80) c = 0x81;
        }
        w.scale_scales.resize(std::size_t((groups + w.dq_block - 1) / w.dq_block));
        // |code value| x block scale stays below the mean: every scale positive.
        const double code_max = scale_mode == qdecode::ScaleMode::dq_fp8 ? 448 : 127;
        w.scale_mean = scale();
        for (auto& s : w.scale_scales) s = float(0.5 * w.scale_mean / code_max);
    }
    return w;
}

}  // namespace tl
