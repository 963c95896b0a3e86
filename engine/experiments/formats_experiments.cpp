// Experiments of the numeric-format lessons: the format table, how one value rounds in a format (with the
// format's grid of relative gaps for the log-axis view), and quantization error vs bits per weight of a scheme
// on a synthetic weight matrix. The formats and quantizers: engine/formats; the story: docs/formats.md.
#include <algorithm>
#include <cmath>

#include "core/rng.hpp"
#include "experiments/all_experiments.hpp"
#include "formats/quantizer.hpp"

namespace tl {

namespace {

std::vector<std::string> format_names() {
    std::vector<std::string> out;
    for (const FormatInfo& f : all_formats()) out.emplace_back(f.name);
    return out;
}

Result run_format_table(const ExperimentArgs&, RunContext&) {
    Result r;
    Table t{"formats", {"format", "bits", "kind", "max", "min_normal", "min_subnormal", "epsilon", "note"}, {}};
    static const char* kKinds[] = {"float", "integer", "codebook", "palette"};
    for (const FormatInfo& f : all_formats()) {
        const FormatFacts x = format_facts(f);
        t.rows.push_back({std::string(f.name), double(f.bits), std::string(kKinds[int(f.kind)]), x.max, x.min_normal,
                          x.min_subnormal, x.epsilon, std::string(f.note)});
    }
    r.tables.push_back(std::move(t));
    return r;
}

// The relative gap from a value to the next representable one, (next - v) / v, for the log-axis "precision vs
// magnitude" plot: every positive code of formats up to 8 bits, about 4096 evenly spaced codes of wider ones
// (each measured against its true neighbour, code + 1, so a sampled grid never inflates the gap).
Series relative_gaps(const FormatInfo& f) {
    Series gap{"relative_gap", "value", "gap / value", {}, {}};
    if (f.kind == FormatKind::palette) return gap;
    const std::uint64_t codes = std::uint64_t(1) << f.bits, step = std::max<std::uint64_t>(1, codes >> 12);
    for (std::uint64_t c = 1; c + 1 < codes; c += step) {  // from code 1: the smallest positive value
        const double v = format_decode(f, std::uint32_t(c)), next = format_decode(f, std::uint32_t(c + 1));
        if (!std::isfinite(v) || !std::isfinite(next) || v <= 0 || next <= v) continue;
        gap.x.push_back(v);
        gap.y.push_back((next - v) / v);
    }
    return gap;
}

// The same value in every format with a fixed value table (palettes are fitted per tensor, so they are left out);
// integers and code books without a scale, which is why they need one.
Table round_in_every_format(double x) {
    Table t{"every_format", {"format", "nearest", "error", "relative_error", "bits"}, {}};
    for (const FormatInfo& f : all_formats()) {
        if (f.kind == FormatKind::palette) continue;
        const std::uint32_t code = format_encode(f, x);
        const double v = format_decode(f, code);
        const bool finite = std::isfinite(v);
        t.rows.push_back({std::string(f.name), finite ? Cell(v) : Cell(std::string(std::isnan(v) ? "NaN" : "inf")),
                          finite ? Cell(v - x) : Cell(std::string("-")),
                          finite && x != 0 ? Cell((v - x) / std::fabs(x)) : Cell(std::string("-")),
                          format_bits(f, code)});
    }
    return t;
}

Result run_format_rounding(const ExperimentArgs& a, RunContext&) {
    const FormatInfo& f = find_format(a.choice("format"));
    const double x = a.real("value");
    Result r;
    if (f.kind != FormatKind::palette) {
        const std::uint32_t code = format_encode(f, x);
        const double v = format_decode(f, code);
        r.scalars.push_back({"value", x, ""});
        r.scalars.push_back({"nearest", v, ""});
        r.scalars.push_back({"code", double(code), ""});
        r.scalars.push_back({"error", v - x, ""});
        if (x != 0) r.scalars.push_back({"relative_error", (v - x) / std::fabs(x), ""});
        r.texts.push_back({"bits", format_bits(f, code)});
    }
    const FormatFacts facts = format_facts(f);
    r.scalars.push_back({"bits_per_value", double(f.bits), "bits"});
    r.scalars.push_back({"max", facts.max, ""});
    if (f.kind == FormatKind::floating) {
        r.scalars.push_back({"min_normal", facts.min_normal, ""});
        r.scalars.push_back({"min_subnormal", facts.min_subnormal, ""});
        r.scalars.push_back({"epsilon", facts.epsilon, ""});
    }
    r.series.push_back(relative_gaps(f));
    r.tables.push_back(round_in_every_format(x));
    return r;
}

QuantScheme scheme_from(const ExperimentArgs& a) {
    QuantScheme s;
    s.format = find_format(a.choice("format")).id;
    s.granularity = parse_granularity(a.choice("granularity"));
    s.group_size = a.integer("group_size");
    s.symmetry = parse_symmetry(a.choice("symmetry"));
    s.clip = parse_clip(a.choice("clip"));
    s.scale_format = find_format(a.choice("scale_format")).id;
    s.double_quant = parse_double_quant(a.choice("double_quant"));
    return s;
}

Result run_quant_error(const ExperimentArgs& a, RunContext& ctx) {
    const QuantScheme s = scheme_from(a);
    const std::int64_t rows = a.integer("rows"), cols = a.integer("cols");
    Rng rng(std::uint64_t(a.integer("seed")));
    const double outliers = a.real("outlier_fraction");
    std::vector<float> w(std::size_t(rows * cols));
    for (auto& v : w) v = 0.02f * rng.normal() * (rng.uniform() < outliers ? 10.0f : 1.0f);
    ctx.progress(0, 1, "quantizing");
    const QuantizedTensor q = quantize(w, rows, cols, s);
    const std::vector<float> y = dequantize(q);
    ctx.progress(1, 1, "done");
    double err2 = 0, sig2 = 0, max_err = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        const double e = double(y[i]) - w[i];
        err2 += e * e, sig2 += double(w[i]) * w[i], max_err = std::max(max_err, std::fabs(e));
    }
    Result r;
    r.texts.push_back({"scheme", describe(s)});
    r.scalars.push_back({"bits_per_weight", bits_per_weight(s, rows, cols), "bits"});
    r.scalars.push_back({"rmse", std::sqrt(err2 / double(w.size())), ""});
    r.scalars.push_back({"max_abs_error", max_err, ""});
    r.scalars.push_back({"sqnr_db", 10 * std::log10(sig2 / std::max(err2, 1e-300)), "dB"});
    Histogram h{"weights", {}, {}};  // the weights over 64 bins, to draw the format's grid over
    double lo = *std::min_element(w.begin(), w.end()), hi = *std::max_element(w.begin(), w.end());
    for (int i = 0; i <= 64; ++i) h.edges.push_back(lo + (hi - lo) * i / 64.0);
    h.counts.assign(64, 0.0);
    for (const float v : w) h.counts[std::size_t(std::min(63.0, std::floor((v - lo) / (hi - lo) * 64)))] += 1;
    r.histograms.push_back(std::move(h));
    return r;
}

std::vector<ParamSpec> scheme_params() {
    return {{"format", ParamKind::choice, "int4", 0, 0, format_names(), "element format"},
            {"granularity", ParamKind::choice, "per_group", 0, 0, {"per_tensor", "per_channel", "per_group"},
             "one scale per tensor, per row, or per group"},
            {"group_size", ParamKind::integer, "32", 1, 4096, {}, "elements per group (per_group)"},
            {"symmetry", ParamKind::choice, "symmetric", 0, 0, {"symmetric", "asymmetric"}, "zero point or not"},
            {"clip", ParamKind::choice, "absmax", 0, 0, {"absmax", "absmean", "mse"}, "how each scale is chosen"},
            {"scale_format", ParamKind::choice, "fp16", 0, 0, {"fp32", "bf16", "fp16", "fp8_e4m3"}, "scale storage"},
            {"double_quant", ParamKind::choice, "none", 0, 0, {"none", "int8", "fp8_e4m3"},
             "quantize the scales too (QLoRA)"},
            {"rows", ParamKind::integer, "256", 1, 4096, {}, "weight matrix rows"},
            {"cols", ParamKind::integer, "256", 1, 4096, {}, "weight matrix columns"},
            {"outlier_fraction", ParamKind::real, "0.001", 0, 0.5, {}, "share of weights 10x larger"},
            {"seed", ParamKind::integer, "1", 0, 1e9, {}, "weights seed"}};
}

}  // namespace

void register_formats_experiments(ExperimentRegistry& r) {
    r.add({.name = "format_table",
           .title = "Numeric formats: bits, range and precision",
           .description = "Every format of the table (fp32 to fp4, int8/int4, ternary, nf4, palettes) with its "
                          "largest value, smallest normal and subnormal values and epsilon.",
           .params = {},
           .estimated_seconds = 0.01,
           .run = run_format_table});
    r.add({.name = "format_rounding",
           .title = "How a value rounds in a format",
           .description = "The nearest representable value, its bits and the rounding error, the format's "
                          "relative gap between neighbours across its range, and the value rounded in every format.",
           .params = {{"format", ParamKind::choice, "fp8_e4m3", 0, 0, format_names(), "the format"},
                      {"value", ParamKind::real, "0.1", -1e38, 1e38, {}, "the value to round"}},
           .estimated_seconds = 0.01,
           .run = run_format_rounding});
    r.add({.name = "quant_error",
           .title = "Quantization error vs bits per weight",
           .description = "Quantize a Gaussian weight matrix (with optional outliers) with a scheme: bits per "
                          "weight charged for scales and zero points, RMSE, max error and SQNR.",
           .params = scheme_params(),
           .estimated_seconds = 0.2,
           .run = run_quant_error});
    register_formats_model_experiments(r);  // model_value_histograms, wrong_format_load
}

}  // namespace tl
