// Whole-model PTQ: choose the tensors, transpose Conv1D weights to (out, in), quantize with engine/formats,
// write the dequantized values back. See model_quant.hpp; docs/quantization.md for what the numbers mean.
#include "quant/model_quant.hpp"

#include "core/error.hpp"

namespace tl {

std::vector<QuantTarget> quant_targets(const Gpt& model, EmbeddingPolicy embeddings) {
    std::vector<QuantTarget> out;
    for (const ParamInfo& p : model.params().entries()) {
        if (p.offset >= model.base_param_count()) break;  // adapters: not ours
        const bool is_embedding =
            p.role == ParamRole::token_embedding || p.role == ParamRole::position_embedding;
        if (is_embedding && embeddings == EmbeddingPolicy::keep_fp32) continue;
        if (!is_embedding && p.role != ParamRole::weight) continue;
        TL_ASSERT(p.shape.size() == 2, "[quant] a weight that is not a matrix: " + p.name);
        QuantTarget t{p.name, p.shape[0], p.shape[1], !is_embedding, is_embedding};
        if (t.is_transposed) std::swap(t.rows, t.cols);
        out.push_back(std::move(t));
    }
    return out;
}

QuantPlan uniform_plan(const Gpt& model, const QuantScheme& scheme, EmbeddingPolicy embeddings) {
    QuantPlan plan;
    for (QuantTarget& t : quant_targets(model, embeddings)) plan.push_back({std::move(t), scheme});
    validate_plan(plan);
    return plan;
}

void validate_plan(const QuantPlan& plan) {
    for (const PlanEntry& e : plan) {
        try {
            validate_scheme(e.scheme, e.target.rows, e.target.cols);
        } catch (const Error& err) {
            throw Error(std::string(err.what()) + " (tensor " + e.target.name + ", " +
                        std::to_string(e.target.rows) + " x " + std::to_string(e.target.cols) + ")");
        }
    }
}

namespace {

std::vector<float> to_target_layout(const QuantTarget& t, std::vector<float> stored) {
    if (!t.is_transposed) return stored;
    std::vector<float> out(stored.size());  // stored (cols, rows) -> out (rows, cols)
    for (std::int64_t i = 0; i < t.cols; ++i)
        for (std::int64_t o = 0; o < t.rows; ++o)
            out[std::size_t(o * t.cols + i)] = stored[std::size_t(i * t.rows + o)];
    return out;
}

}  // namespace

std::vector<float> read_target(const Gpt& model, const QuantTarget& t) {
    const ParamInfo& p = model.params().at(t.name);
    std::vector<float> stored(std::size_t(p.numel()));
    model.backend().copy_to_host(stored.data(), model.param(p));
    return to_target_layout(t, std::move(stored));
}

std::vector<float> read_target_grad(const Gpt& model, const QuantTarget& t) {
    TL_ASSERT(model.has_grads(), "[quant] read_target_grad: call enable_grads() first");
    const ParamInfo& p = model.params().at(t.name);
    std::vector<float> stored(std::size_t(p.numel()));
    model.backend().copy_to_host(stored.data(), model.grad(p));
    return to_target_layout(t, std::move(stored));
}

void write_target(Gpt& model, const QuantTarget& t, const std::vector<float>& values) {
    const ParamInfo& p = model.params().at(t.name);
    TL_ASSERT(std::int64_t(values.size()) == p.numel(), "[quant] write_target: size mismatch for " + t.name);
    std::vector<float> stored = values;
    if (t.is_transposed)
        for (std::int64_t i = 0; i < t.cols; ++i)
            for (std::int64_t o = 0; o < t.rows; ++o)
                stored[std::size_t(i * t.rows + o)] = values[std::size_t(o * t.cols + i)];
    model.backend().copy_from_host(model.param(p), stored.data());
}

double QuantFootprint::bits_per_quantized_weight() const {
    return quantized_params ? quantized_bits / double(quantized_params) : 32.0;
}
double QuantFootprint::bits_per_weight() const {
    const double n = double(quantized_params + other_params);
    return n > 0 ? (quantized_bits + 32.0 * double(other_params)) / n : 0;
}
double QuantFootprint::bytes() const { return (quantized_bits + 32.0 * double(other_params)) / 8.0; }

QuantFootprint footprint(const Gpt& model, const QuantPlan& plan) {
    QuantFootprint f;
    for (const PlanEntry& e : plan) {
        f.quantized_params += e.target.rows * e.target.cols;
        f.quantized_bits +=
            bits_per_weight(e.scheme, e.target.rows, e.target.cols) * double(e.target.rows * e.target.cols);
    }
    f.other_params = model.base_param_count() - f.quantized_params;
    return f;
}

void apply_ptq(Gpt& model, const QuantPlan& plan) {
    validate_plan(plan);
    for (const PlanEntry& e : plan) {
        std::vector<float> w = read_target(model, e.target);
        fake_quantize(w, e.target.rows, e.target.cols, e.scheme);
        write_target(model, e.target, w);
    }
}

std::unique_ptr<Gpt> clone_model(const Gpt& model) {
    TL_ASSERT(!model.has_adapters(), "[quant] clone_model: detach the PEFT modules first");
    auto copy = std::make_unique<Gpt>(model.backend(), model.config());
    model.backend().copy(copy->weights().vec(), CVecView(model.weights().data(), model.weights().numel()));
    return copy;
}

std::unique_ptr<Gpt> clone_model_onto(const Gpt& model, Backend& backend) {
    TL_ASSERT(!model.has_adapters() && !model.store(), "[quant] clone_model_onto: a plain fp32 model only");
    auto copy = std::make_unique<Gpt>(backend, model.config());
    std::vector<float> host(std::size_t(model.weights().numel()));
    model.backend().copy_to_host(host.data(), model.weights().vec());
    backend.copy_from_host(copy->weights().vec(), host.data());
    return copy;
}

QuantScheme make_scheme(const std::string& format, const std::string& granularity, std::int64_t group_size) {
    QuantScheme s;
    const FormatInfo& f = find_format(format);
    s.format = f.id;
    s.granularity = parse_granularity(granularity);
    s.group_size = s.granularity == Granularity::per_group ? group_size : 0;
    if (f.scaling == Scaling::none && f.kind != FormatKind::palette) s.granularity = Granularity::per_tensor;
    if (s.granularity != Granularity::per_group) s.group_size = 0;
    if (f.id == Format::ternary) s.clip = ClipMethod::absmean;  // BitNet b1.58: {-1, 0, 1} x mean|W|
    return s;
}

std::string short_name(const QuantScheme& s) {
    const FormatInfo& f = format_info(s.format);
    std::string out(f.name);
    if (f.scaling == Scaling::none && f.kind != FormatKind::palette) return out;
    // Appended piece by piece: `" " + std::string(..)` trips GCC 12's -Wrestrict false positive (PR 105651).
    out.append(" ").append(name_of(s.granularity));
    if (s.granularity == Granularity::per_group) out.append("(").append(std::to_string(s.group_size)).append(")");
    return out;
}

}  // namespace tl
