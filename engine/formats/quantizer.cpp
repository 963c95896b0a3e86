// Quantizers (see quantizer.hpp). Three passes: (1) each block's raw scale from its clipping rule, (2) the scales
// as stored (rounded to the scale format, or double-quantized), (3) zero points from the stored scales, then the
// element codes. Encoding with the stored scale is what makes dequantize(quantize(x)) honest.
#include "formats/quantizer.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "formats/packing.hpp"

namespace tl {

namespace {

struct Block {
    std::int64_t begin, end;  // a contiguous run of the row-major matrix
};

std::vector<Block> blocks_of(const QuantScheme& s, std::int64_t rows, std::int64_t cols) {
    std::vector<Block> out;
    switch (s.granularity) {
        case Granularity::per_tensor: out.push_back({0, rows * cols}); break;
        case Granularity::per_channel:
            for (std::int64_t r = 0; r < rows; ++r) out.push_back({r * cols, (r + 1) * cols});
            break;
        case Granularity::per_group:
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t c = 0; c < cols; c += s.group_size)
                    out.push_back({r * cols + c, r * cols + std::min(cols, c + s.group_size)});
            break;
    }
    return out;
}

std::int64_t block_count(const QuantScheme& s, std::int64_t rows, std::int64_t cols) {
    switch (s.granularity) {
        case Granularity::per_tensor: return 1;
        case Granularity::per_channel: return rows;
        case Granularity::per_group: return rows * ((cols + s.group_size - 1) / s.group_size);
    }
    return 1;
}

// One block's decoding parameters: x = (code value - zero) * scale, or the palette entry itself.
struct BlockParams {
    double scale = 1;
    std::int32_t zero = 0;
    std::span<const float> book;  // codebook / palette formats
};

// How element codes map to numbers under a scheme: the format's codec, with the scheme's integer range.
struct ElementCodec {
    const FormatInfo& fmt;
    IntRange ints;  // integers: symmetric -hi..hi (so +-x round-trip alike), asymmetric 0..2^bits-1
    bool is_scaled;

    ElementCodec(const FormatInfo& f, Symmetry sym)
        : fmt(f),
          ints(sym == Symmetry::asymmetric ? IntRange{f.ints.bits, 0, (1 << f.ints.bits) - 1}
                                           : IntRange{f.ints.bits, -f.ints.hi, f.ints.hi}),
          is_scaled(f.scaling == Scaling::scaled) {}

    double unit_max() const { return fmt.kind == FormatKind::integer ? double(ints.hi) : format_unit_max(fmt); }

    std::uint32_t encode(double x, const BlockParams& p) const {
        const double u = is_scaled ? (p.scale == 0 ? 0.0 : x / p.scale) + p.zero : x;
        switch (fmt.kind) {
            case FormatKind::floating:
                return minifloat_encode(fmt.fp, u, is_scaled ? Overflow::saturate : fmt.overflow);
            case FormatKind::integer: return int_encode(ints, u);
            case FormatKind::codebook:
            case FormatKind::palette: return codebook_encode(p.book, u);
        }
        return 0;
    }
    double decode(std::uint32_t c, const BlockParams& p) const {
        double u = 0;
        switch (fmt.kind) {
            case FormatKind::floating: u = minifloat_decode(fmt.fp, c); break;
            case FormatKind::integer: u = int_decode(ints, c); break;
            case FormatKind::codebook:
            case FormatKind::palette: u = p.book[c]; break;
        }
        return is_scaled ? (u - p.zero) * p.scale : u;
    }
};

double store_scale(const QuantScheme& s, double scale) {
    const FormatInfo& sf = format_info(s.scale_format);
    return minifloat_decode(sf.fp, minifloat_encode(sf.fp, scale, Overflow::saturate));
}

// Raw (unstored) scale of a block, and for asymmetric schemes the low end of its range.
struct RawScale {
    double scale = 0, lo = 0;
};

RawScale raw_scale(const ElementCodec& ec, const QuantScheme& s, std::span<const float> v, double ratio) {
    if (s.symmetry == Symmetry::asymmetric) {  // the range always holds 0, so 0 stays exact
        const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
        const double lo = ratio * std::min(0.0, double(*mn)), hi = ratio * std::max(0.0, double(*mx));
        return {(hi - lo) / double(ec.ints.hi), lo};
    }
    double absmax = 0;
    for (const float x : v) absmax = std::max(absmax, double(std::fabs(x)));
    return {ratio * absmax / ec.unit_max(), 0};
}

BlockParams finish(const ElementCodec& ec, const RawScale& r, double stored_scale, std::span<const float> book) {
    BlockParams p{stored_scale, 0, book};
    if (ec.fmt.kind == FormatKind::integer && ec.ints.lo == 0 && stored_scale != 0)
        p.zero = int_round_clamp(ec.ints, -r.lo / stored_scale);
    return p;
}

double block_sse(const ElementCodec& ec, std::span<const float> v, const BlockParams& p) {
    double sse = 0;
    for (const float x : v) {
        const double e = double(x) - ec.decode(ec.encode(x, p), p);
        sse += e * e;
    }
    return sse;
}

RawScale choose_raw_scale(const ElementCodec& ec, const QuantScheme& s, std::span<const float> v) {
    switch (s.clip) {
        case ClipMethod::absmax: return raw_scale(ec, s, v, 1.0);
        case ClipMethod::absmean: {
            double sum = 0;
            for (const float x : v) sum += std::fabs(x);
            return {sum / double(v.size()), 0};
        }
        case ClipMethod::mse: {
            RawScale best = raw_scale(ec, s, v, 1.0);
            double best_sse = block_sse(ec, v, finish(ec, best, store_scale(s, best.scale), ec.fmt.codebook));
            for (int pct = 99; pct >= 30; --pct) {
                const RawScale r = raw_scale(ec, s, v, pct / 100.0);
                const double sse = block_sse(ec, v, finish(ec, r, store_scale(s, r.scale), ec.fmt.codebook));
                if (sse < best_sse) best = r, best_sse = sse;
            }
            return best;
        }
    }
    return {};
}

// QLoRA's double quantization: the scales minus their mean, in 8 bits, with one fp32 scale per block of them.
void store_scales_double(QuantizedTensor& q, const std::vector<RawScale>& raw) {
    const QuantScheme& s = q.scheme;
    const ElementCodec ec2(format_info(s.double_quant == DoubleQuant::int8 ? Format::int8 : Format::fp8_e4m3),
                           Symmetry::symmetric);
    double sum = 0;
    for (const auto& r : raw) sum += r.scale;
    q.scale_mean = float(sum / double(raw.size()));
    for (std::size_t b0 = 0; b0 < raw.size(); b0 += std::size_t(s.double_quant_block)) {
        const std::size_t b1 = std::min(raw.size(), b0 + std::size_t(s.double_quant_block));
        double absmax = 0;
        for (std::size_t b = b0; b < b1; ++b) absmax = std::max(absmax, std::fabs(raw[b].scale - q.scale_mean));
        const BlockParams p2{double(float(absmax / ec2.unit_max())), 0, {}};
        q.scale_scales.push_back(float(p2.scale));
        for (std::size_t b = b0; b < b1; ++b) {
            const std::uint32_t code = ec2.encode(raw[b].scale - q.scale_mean, p2);
            q.scale_codes.push_back(code);
            q.scales.push_back(float(ec2.decode(code, p2) + q.scale_mean));
        }
    }
}

BlockParams params_of(const QuantizedTensor& q, const ElementCodec& ec, std::size_t b) {
    BlockParams p;
    if (ec.is_scaled) p.scale = q.scales[b];
    if (!q.zero_points.empty()) p.zero = q.zero_points[b];
    const auto k = std::size_t(1) << ec.fmt.bits;
    p.book = ec.fmt.kind == FormatKind::palette ? std::span<const float>(q.codebooks).subspan(b * k, k)
                                                : ec.fmt.codebook;
    return p;
}

}  // namespace

std::int64_t QuantizedTensor::num_blocks() const { return block_count(scheme, rows, cols); }

double QuantizedTensor::storage_bits() const {
    const FormatInfo& f = format_info(scheme.format);
    double bits = double(numel()) * f.bits + double(zero_points.size()) * f.bits + double(codebooks.size()) * 16;
    if (scheme.double_quant == DoubleQuant::none)
        bits += double(scales.size()) * format_info(scheme.scale_format).bits;
    else
        bits += double(scale_codes.size()) * 8 + double(scale_scales.size()) * 32 + 32;  // + the fp32 mean
    return bits;
}

void validate_scheme(const QuantScheme& s, std::int64_t rows, std::int64_t cols) {
    const FormatInfo& f = format_info(s.format);
    const std::string what = "[quant] " + describe(s) + ": ";
    if (rows < 1 || cols < 1)
        throw Error(what + "the matrix must be non-empty; got " + std::to_string(rows) + " x " + std::to_string(cols));
    if (s.granularity == Granularity::per_group && s.group_size < 1)
        throw Error(what + "per_group needs group_size >= 1; got " + std::to_string(s.group_size));
    if (s.symmetry == Symmetry::asymmetric && !(f.kind == FormatKind::integer && f.ints.bits >= 4))
        throw Error(what + "asymmetric (zero point) quantization is for int8 and int4 only; use symmetric");
    if (s.symmetry == Symmetry::asymmetric && s.clip == ClipMethod::absmean)
        throw Error(what + "absmean clipping is symmetric by definition; use absmax or mse with asymmetric");
    if (f.scaling == Scaling::none && (s.clip != ClipMethod::absmax || s.double_quant != DoubleQuant::none))
        throw Error(what + std::string(f.name) + " is not scaled, so clipping and double quantization do not apply;"
                                                 " use clip absmax and no double quantization");
    if (format_info(s.scale_format).kind != FormatKind::floating)
        throw Error(what + "scales must be stored in a floating-point format (fp32, bf16, fp16, fp8_e4m3 ...)");
    if (s.double_quant != DoubleQuant::none && s.double_quant_block < 1)
        throw Error(what + "double_quant_block must be >= 1; got " + std::to_string(s.double_quant_block));
}

namespace {

// The names of each enum, in enumerator order: one table serves name_of and parse_*.
constexpr std::string_view kGranularityNames[] = {"per_tensor", "per_channel", "per_group"};
constexpr std::string_view kSymmetryNames[] = {"symmetric", "asymmetric"};
constexpr std::string_view kClipNames[] = {"absmax", "absmean", "mse"};
constexpr std::string_view kDoubleQuantNames[] = {"none", "int8", "fp8_e4m3"};

template <class E, std::size_t N>
E parse_name(const std::string_view (&names)[N], std::string_view s, const char* what) {
    std::string known;
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == s) return E(i);
        known += (known.empty() ? "" : ", ") + std::string(names[i]);
    }
    throw Error("[quant] unknown " + std::string(what) + " '" + std::string(s) + "'; valid: " + known);
}

}  // namespace

std::string_view name_of(Granularity g) { return kGranularityNames[int(g)]; }
std::string_view name_of(Symmetry s) { return kSymmetryNames[int(s)]; }
std::string_view name_of(ClipMethod c) { return kClipNames[int(c)]; }
std::string_view name_of(DoubleQuant d) { return kDoubleQuantNames[int(d)]; }
Granularity parse_granularity(std::string_view s) { return parse_name<Granularity>(kGranularityNames, s, "granularity"); }
Symmetry parse_symmetry(std::string_view s) { return parse_name<Symmetry>(kSymmetryNames, s, "symmetry"); }
ClipMethod parse_clip(std::string_view s) { return parse_name<ClipMethod>(kClipNames, s, "clip method"); }
DoubleQuant parse_double_quant(std::string_view s) {
    return parse_name<DoubleQuant>(kDoubleQuantNames, s, "double quantization");
}

std::string describe(const QuantScheme& s) {
    std::string out = std::string(format_info(s.format).name) + " " + std::string(name_of(s.granularity));
    if (s.granularity == Granularity::per_group) out.append("(").append(std::to_string(s.group_size)).append(")");
    out.append(" ").append(name_of(s.symmetry)).append(" ").append(name_of(s.clip));
    out += ", " + std::string(format_info(s.scale_format).name) + " scales";
    if (s.double_quant != DoubleQuant::none)
        out += " double-quantized to " + std::string(name_of(s.double_quant)) + " in blocks of " +
               std::to_string(s.double_quant_block);
    return out;
}

QuantizedTensor quantize(std::span<const float> x, std::int64_t rows, std::int64_t cols, const QuantScheme& s) {
    validate_scheme(s, rows, cols);
    if (std::int64_t(x.size()) != rows * cols)
        throw Error("[quant] quantize: " + std::to_string(x.size()) + " values for a " + std::to_string(rows) + " x " +
                    std::to_string(cols) + " matrix");
    QuantizedTensor q;
    q.scheme = s, q.rows = rows, q.cols = cols;
    const ElementCodec ec(format_info(s.format), s.symmetry);
    const std::vector<Block> blocks = blocks_of(s, rows, cols);
    auto values = [&](const Block& b) { return x.subspan(std::size_t(b.begin), std::size_t(b.end - b.begin)); };
    if (ec.is_scaled) {
        std::vector<RawScale> raw;
        for (const Block& b : blocks) raw.push_back(choose_raw_scale(ec, s, values(b)));
        if (s.double_quant == DoubleQuant::none)
            for (const auto& r : raw) q.scales.push_back(float(store_scale(s, r.scale)));
        else
            store_scales_double(q, raw);
        if (s.symmetry == Symmetry::asymmetric)
            for (std::size_t b = 0; b < blocks.size(); ++b)
                q.zero_points.push_back(finish(ec, raw[b], q.scales[b], {}).zero);
    }
    if (ec.fmt.kind == FormatKind::palette)
        for (const Block& b : blocks)
            for (const float c : kmeans_codebook(values(b), 1 << ec.fmt.bits))
                q.codebooks.push_back(float(format_round(format_info(Format::fp16), c)));
    std::vector<std::uint32_t> codes(x.size());
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        const BlockParams p = params_of(q, ec, b);
        for (std::int64_t i = blocks[b].begin; i < blocks[b].end; ++i) codes[std::size_t(i)] = ec.encode(x[std::size_t(i)], p);
    }
    q.packed = pack_codes(codes, ec.fmt.bits);
    return q;
}

void dequantize_into(const QuantizedTensor& q, std::span<float> out) {
    if (std::int64_t(out.size()) != q.numel())
        throw Error("[quant] dequantize: output has " + std::to_string(out.size()) + " values, the tensor " +
                    std::to_string(q.numel()));
    const ElementCodec ec(format_info(q.scheme.format), q.scheme.symmetry);
    const std::vector<std::uint32_t> codes = unpack_codes(q.packed, ec.fmt.bits, out.size());
    const std::vector<Block> blocks = blocks_of(q.scheme, q.rows, q.cols);
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        const BlockParams p = params_of(q, ec, b);
        for (std::int64_t i = blocks[b].begin; i < blocks[b].end; ++i)
            out[std::size_t(i)] = float(ec.decode(codes[std::size_t(i)], p));
    }
}

std::vector<float> dequantize(const QuantizedTensor& q) {
    std::vector<float> out(std::size_t(q.numel()));
    dequantize_into(q, out);
    return out;
}

void fake_quantize(std::span<float> x, std::int64_t rows, std::int64_t cols, const QuantScheme& s) {
    dequantize_into(quantize(x, rows, cols, s), x);
}

double bits_per_weight(const QuantScheme& s, std::int64_t rows, std::int64_t cols) {
    validate_scheme(s, rows, cols);
    const FormatInfo& f = format_info(s.format);
    const double n = double(rows) * double(cols), blocks = double(block_count(s, rows, cols));
    double bits = n * f.bits;
    if (f.scaling == Scaling::scaled && s.double_quant == DoubleQuant::none)
        bits += blocks * format_info(s.scale_format).bits;
    if (f.scaling == Scaling::scaled && s.double_quant != DoubleQuant::none)
        bits += blocks * 8 + std::ceil(blocks / double(s.double_quant_block)) * 32 + 32;
    if (s.symmetry == Symmetry::asymmetric) bits += blocks * f.bits;
    if (f.kind == FormatKind::palette) bits += blocks * double(1 << f.bits) * 16;
    return bits / n;
}

}  // namespace tl
