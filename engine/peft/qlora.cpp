#include "peft/qlora.hpp"

#include <array>
#include <map>

#include "core/error.hpp"
#include "formats/format_table.hpp"

namespace tl {

namespace {

const char* const kStoredMatrices[] = {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                                       "mlp.c_proj.weight"};

// One matrix as QLoRA stores it, in the quantizer's orientation: rows are output features, groups run along the
// input. GPT-2's Conv1D keeps (in, out), so decoding transposes back.
struct Nf4Matrix {
    std::int64_t rows = 0, cols = 0;
    std::vector<std::uint8_t> codes;        // two NF4 codes per byte, element 0 in the low nibble
    std::vector<std::uint8_t> scale_codes;  // double quantization: one 8-bit code per group
    std::vector<float> scale_scales;        // double quantization: one per double_quant_block groups
    float scale_mean = 0;                   // double quantization
    std::vector<float> scales;              // without double quantization: fp32, one per group

    std::int64_t bytes() const {
        return std::int64_t(codes.size() + scale_codes.size() + 4 * (scale_scales.size() + scales.size())) +
               (scale_codes.empty() ? 0 : 4);
    }
};

std::int64_t groups_per_row(std::int64_t cols, std::int64_t group) { return (cols + group - 1) / group; }

class Nf4Store final : public FrozenMatrixStore {
public:
    Nf4Store(Backend& backend, const QloraBaseOptions& o) : backend_(backend), options_(o) {
        if (o.double_quant == DoubleQuant::none) return;
        // The 256 values an 8-bit scale code can stand for, decoded once (decode runs per layer per pass).
        const FormatInfo& f = format_info(o.double_quant == DoubleQuant::int8 ? Format::int8 : Format::fp8_e4m3);
        for (std::uint32_t c = 0; c < 256; ++c) scale_unit_[c] = format_decode(f, c);
    }
    ~Nf4Store() override { backend_.ledger().on_free(MemCategory::quant_storage, std::size_t(bytes_)); }

    void add(const std::string& name, const QuantizedTensor& q) {
        Nf4Matrix m;
        m.rows = q.rows, m.cols = q.cols;
        m.codes = q.packed;
        if (q.scheme.double_quant == DoubleQuant::none) {
            m.scales = q.scales;
        } else {
            for (std::uint32_t c : q.scale_codes) m.scale_codes.push_back(std::uint8_t(c));
            m.scale_scales = q.scale_scales;
            m.scale_mean = q.scale_mean;
        }
        bytes_ += m.bytes();
        backend_.ledger().on_alloc(MemCategory::quant_storage, std::size_t(m.bytes()));
        matrices_.emplace(name, std::move(m));
    }

    std::string describe() const override { return tl::describe(qlora_scheme(options_)); }
    bool holds(std::string_view name) const override { return matrices_.count(std::string(name)) > 0; }
    std::int64_t storage_bytes() const override { return bytes_; }

    // The same arithmetic as the quantizer's dequantize (formats/quantizer.cpp), in double then rounded once, so
    // the decoded weights are bit-identical to dequantize(quantize(W)) (tests/engine/peft/qlora_test.cpp).
    void decode(std::string_view name, std::span<float> out) const override {
        const Nf4Matrix& m = matrices_.at(std::string(name));
        TL_ASSERT(std::int64_t(out.size()) == m.rows * m.cols, "[qlora] decode: output size mismatch");
        const std::span<const float> book = format_info(Format::nf4).codebook;
        const std::int64_t G = options_.group_size, groups = groups_per_row(m.cols, G);
        std::array<float, 16> lut{};
        for (std::int64_t r = 0; r < m.rows; ++r)
            for (std::int64_t g = 0; g < groups; ++g) {
                const std::int64_t b = r * groups + g;
                const double scale = group_scale(m, b);
                for (std::size_t c = 0; c < 16; ++c) lut[c] = float(double(book[c]) * scale);
                for (std::int64_t k = g * G; k < std::min(m.cols, (g + 1) * G); ++k) {
                    const std::int64_t i = r * m.cols + k;
                    const std::uint8_t byte = m.codes[std::size_t(i / 2)];
                    out[std::size_t(k * m.rows + r)] = lut[(i % 2 == 0) ? (byte & 0xF) : (byte >> 4)];
                }
            }
    }

private:
    double group_scale(const Nf4Matrix& m, std::int64_t b) const {
        if (m.scale_codes.empty()) return double(m.scales[std::size_t(b)]);
        const double unit = scale_unit_[m.scale_codes[std::size_t(b)]];
        const double s2 = double(m.scale_scales[std::size_t(b / options_.double_quant_block)]);
        return double(float(unit * s2 + double(m.scale_mean)));
    }

    Backend& backend_;
    QloraBaseOptions options_;
    std::array<double, 256> scale_unit_{};
    std::map<std::string, Nf4Matrix> matrices_;
    std::int64_t bytes_ = 0;
};

}  // namespace

QuantScheme qlora_scheme(const QloraBaseOptions& o) {
    QuantScheme s;
    s.format = Format::nf4;
    s.granularity = Granularity::per_group;
    s.group_size = o.group_size;
    s.scale_format = Format::fp32;
    s.double_quant = o.double_quant;
    s.double_quant_block = o.double_quant_block;
    return s;
}

std::int64_t qlora_matrix_bytes(std::int64_t rows, std::int64_t cols, const QloraBaseOptions& o) {
    const std::int64_t n = rows * cols, groups = rows * groups_per_row(cols, o.group_size);
    if (o.double_quant == DoubleQuant::none) return (n + 1) / 2 + 4 * groups;
    return (n + 1) / 2 + groups + 4 * ((groups + o.double_quant_block - 1) / o.double_quant_block) + 4;
}

namespace {

// Each block matrix of the model quantized with the QLoRA scheme (in the quantizer's (out, in) orientation).
template <class Fn>
void quantize_block_matrices(const Gpt& model, const QloraBaseOptions& o, Fn&& fn) {
    if (model.store()) throw Error("[qlora] the base is already quantized (" + model.store()->describe() + ")");
    if (model.config().is_moe())
        throw Error("[qlora] QLoRA's 4-bit base is for dense models; this one is a mixture of experts");
    const QuantScheme scheme = qlora_scheme(o);
    std::vector<float> stored, oriented;
    for (std::int64_t l = 0; l < model.config().n_layer; ++l)
        for (const char* suffix : kStoredMatrices) {
            const ParamInfo& p = model.params().at("transformer.h." + std::to_string(l) + "." + suffix);
            const std::int64_t in = p.shape[0], out = p.shape[1];  // Conv1D: (in, out)
            validate_scheme(scheme, out, in);
            stored.resize(std::size_t(p.numel()));
            model.backend().copy_to_host(stored.data(), model.param(p));
            oriented.resize(stored.size());
            for (std::int64_t i = 0; i < in; ++i)
                for (std::int64_t j = 0; j < out; ++j)
                    oriented[std::size_t(j * in + i)] = stored[std::size_t(i * out + j)];
            fn(p, quantize(oriented, out, in, scheme));
        }
}

}  // namespace

void qlora_quantize_base(Gpt& model, const QloraBaseOptions& o) {
    auto store = std::make_unique<Nf4Store>(model.backend(), o);
    quantize_block_matrices(model, o, [&](const ParamInfo& p, const QuantizedTensor& q) { store->add(p.name, q); });
    model.move_to_store(std::move(store));
}

void qlora_round_base(Gpt& model, const QloraBaseOptions& o) {
    Nf4Store one(model.backend(), o);  // decodes each matrix as the model's store would
    std::vector<float> values;
    quantize_block_matrices(model, o, [&](const ParamInfo& p, const QuantizedTensor& q) {
        one.add(p.name, q);
        values.resize(std::size_t(p.numel()));
        one.decode(p.name, values);
        model.backend().copy_from_host(model.param(p), values.data());
    });
}

}  // namespace tl
