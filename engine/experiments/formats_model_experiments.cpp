// Formats on a real model: where the cached base's weights and one training step's gradients fall on a float
// format's grid (log2|x| histograms, overflow and flush-to-zero counts), and what happens when a checkpoint is
// read in the wrong format (bf16 bits decoded as fp16; bf16 values cast to fp16 when magnitudes are large).
// The formats: engine/formats; the story: docs/formats.md and lessons/03-formats.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "data/tokenizer.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "experiments/experiment_backend.hpp"
#include "formats/format_table.hpp"
#include "model/generate.hpp"

namespace tl {

namespace {

constexpr std::uint64_t kHeldOutSalt = 0x51ED270B27A3F4C1ull;  // a corpus stream training never draws
constexpr int kBinsPerBinade = 1;  // one bin per power of two: a binade of the format

std::vector<std::string> float_format_names() {
    std::vector<std::string> out;
    for (const FormatInfo& f : all_formats())
        if (f.kind == FormatKind::floating) out.emplace_back(f.name);
    return out;
}

std::vector<float> host_copy(const Gpt& m, VecView v) {
    std::vector<float> out(std::size_t(v.n));
    m.backend().copy_to_host(out.data(), v);
    return out;
}

// The parameters a `tensor`/`layer` choice names: one tensor of a block, an embedding, or all base tensors.
std::vector<const ParamInfo*> chosen_params(const Gpt& m, const std::string& tensor, std::int64_t layer) {
    std::vector<const ParamInfo*> out;
    const auto& entries = m.params().entries();
    if (tensor == "all") {
        for (const ParamInfo& p : entries)
            if (p.offset < m.base_param_count()) out.push_back(&p);
        return out;
    }
    if (tensor == "wte" || tensor == "wpe") return {&m.params().at("transformer." + tensor + ".weight")};
    const std::int64_t n_layer = m.config().n_layer;
    if (layer >= n_layer)
        throw Error("[experiments] layer " + std::to_string(layer) + " does not exist: this preset has layers 0.." +
                    std::to_string(n_layer - 1) + "; choose a smaller layer");
    return {&m.params().at("transformer.h." + std::to_string(layer) + "." + tensor + ".weight")};
}

// What happens to values in a format: overflow (beyond max by more than half the top gap, or to inf/NaN),
// flush to zero (nonzero, rounds to 0), subnormal (rounds into (0, min_normal)).
struct GridCounts {
    double count = 0, zero = 0, overflow = 0, flush = 0, subnormal = 0, max_abs = 0, min_abs = 0;
};

GridCounts count_on_grid(const FormatInfo& f, const std::vector<float>& v) {
    const FormatFacts facts = format_facts(f);
    const double below_max = format_decode(f, format_encode(f, facts.max) - 1);
    const double half_top_gap = (facts.max - below_max) / 2;
    GridCounts c;
    c.count = double(v.size());
    c.min_abs = INFINITY;
    for (const float x : v) {
        const double a = std::fabs(double(x));
        if (a == 0) {
            c.zero += 1;
            continue;
        }
        c.max_abs = std::max(c.max_abs, a), c.min_abs = std::min(c.min_abs, a);
        const double r = std::fabs(format_round(f, a));
        if (!std::isfinite(r) || a - facts.max > half_top_gap) c.overflow += 1;
        else if (r == 0) c.flush += 1;
        else if (r < facts.min_normal) c.subnormal += 1;
    }
    if (!std::isfinite(c.min_abs)) c.min_abs = 0;
    return c;
}

// log2|x| of the nonzero values, kBinsPerBinade bins per power of two, over the data's span widened to the
// format's [min_subnormal, max] where that stays within 2^-64..2^64 (so fp32 does not draw 280 empty binades).
Histogram log2_histogram(const std::string& name, const std::vector<float>& v, const FormatFacts& facts) {
    double lo = INFINITY, hi = -INFINITY;
    for (const float x : v)
        if (x != 0) {
            const double l = std::log2(std::fabs(double(x)));
            lo = std::min(lo, l), hi = std::max(hi, l);
        }
    if (!std::isfinite(lo)) lo = hi = 0;
    lo = std::min(std::floor(lo), std::max(-64.0, std::floor(std::log2(facts.min_subnormal)) - 1));
    hi = std::max(std::floor(hi) + 1, std::min(64.0, std::ceil(std::log2(facts.max)) + 1));
    Histogram h{name, {}, {}};
    const auto bins = std::size_t((hi - lo) * kBinsPerBinade);
    for (std::size_t i = 0; i <= bins; ++i) h.edges.push_back(lo + double(i) / kBinsPerBinade);
    h.counts.assign(bins, 0.0);
    for (const float x : v)
        if (x != 0) {
            const double l = std::log2(std::fabs(double(x)));
            const auto i = std::size_t(std::floor((l - lo) * kBinsPerBinade));
            h.counts[std::min(i, bins - 1)] += 1;
        }
    return h;
}

void add_grid_scalars(Result& r, const std::string& k, const GridCounts& c) {
    r.scalars.push_back({k + "_count", c.count, ""});
    r.scalars.push_back({k + "_zero", c.zero, ""});
    r.scalars.push_back({k + "_overflow", c.overflow, ""});
    r.scalars.push_back({k + "_flush_to_zero", c.flush, ""});
    r.scalars.push_back({k + "_subnormal", c.subnormal, ""});
    r.scalars.push_back({k + "_max_abs", c.max_abs, ""});
    r.scalars.push_back({k + "_min_abs_nonzero", c.min_abs, ""});
}

// One training step's gradients (mean next-token loss on a corpus batch) of every base parameter, flat.
void one_step_grads(Gpt& m, std::uint64_t seed) {
    CorpusStream stream(seed);
    const Batch b = corpus_batch(stream, 8, int(m.config().n_positions));
    m.enable_grads();
    m.zero_grads();
    m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    m.backward(b.weights.data(), total_weight(b));
}

Result run_model_value_histograms(const ExperimentArgs& a, RunContext& ctx) {
    auto backend = experiment_backend(ctx);
    BaseModel base = obtain_base(*backend, base_spec_from(a), ctx);
    Result r;
    if (base.curve.is_cancelled) {
        r.is_cancelled = true;
        return r;
    }
    Gpt& m = *base.model;
    const FormatInfo& f = find_format(a.choice("format"));
    const auto params = chosen_params(m, a.choice("tensor"), a.integer("layer"));
    ctx.progress(0, 1, "one training step for the gradients");
    one_step_grads(m, std::uint64_t(a.integer("seed")) ^ kHeldOutSalt);
    const double wscale = std::ldexp(1.0, int(a.integer("weight_scale_log2")));
    const double gscale = std::ldexp(1.0, int(a.integer("loss_scale_log2")));
    std::vector<float> w, g;
    for (const ParamInfo* p : params) {
        for (const float x : host_copy(m, m.param(*p))) w.push_back(float(x * wscale));
        for (const float x : host_copy(m, m.grad(*p))) g.push_back(float(x * gscale));
    }
    ctx.progress(1, 1, "done");
    const FormatFacts facts = format_facts(f);
    r.texts.push_back({"tensor", params.size() == 1 ? params[0]->name : "all base tensors"});
    r.scalars.push_back({"format_max", facts.max, ""});
    r.scalars.push_back({"format_min_normal", facts.min_normal, ""});
    r.scalars.push_back({"format_min_subnormal", facts.min_subnormal, ""});
    r.scalars.push_back({"log2_format_max", std::log2(facts.max), ""});
    r.scalars.push_back({"log2_format_min_normal", std::log2(facts.min_normal), ""});
    r.scalars.push_back({"log2_format_min_subnormal", std::log2(facts.min_subnormal), ""});
    add_grid_scalars(r, "weights", count_on_grid(f, w));
    add_grid_scalars(r, "grads", count_on_grid(f, g));
    r.histograms.push_back(log2_histogram("weights_log2", w, facts));
    r.histograms.push_back(log2_histogram("grads_log2", g, facts));
    return r;
}

// ---- wrong_format_load ---------------------------------------------------------------------------------------

// Multiplies everything that writes the residual stream (embeddings, attention and MLP output projections) by s
// and divides the final LayerNorm's affine by s. Every LayerNorm input scales by s, which LayerNorm removes, and
// the tied output head's s cancels ln_f's 1/s: the same function, with larger weights.
void rescale_preserving(const ParamTable& t, std::vector<float>& w, double s) {
    for (const ParamInfo& p : t.entries()) {
        const std::string& n = p.name;
        const bool writes_residual = n.find(".wte.") != std::string::npos || n.find(".wpe.") != std::string::npos ||
                                     n.find("attn.c_proj") != std::string::npos ||
                                     n.find("mlp.c_proj") != std::string::npos;
        const bool is_final_norm = n.find("ln_f") != std::string::npos;
        if (!writes_residual && !is_final_norm) continue;
        const double k = writes_residual ? s : 1 / s;
        for (std::int64_t j = 0; j < p.numel(); ++j) w[std::size_t(p.offset + j)] = float(w[std::size_t(p.offset + j)] * k);
    }
}

struct LoadEval {
    double loss = 0, accuracy = 0;
    bool is_finite = true;
    std::vector<std::int32_t> top1;
    std::string sample;
};

std::string printable(const std::string& s) {
    std::string out;
    for (const unsigned char c : s) out += (c >= 32 && c < 127) || c == '\n' ? char(c) : '?';
    return out;
}

LoadEval evaluate_load(Gpt& m, const std::vector<float>& flat, const Batch& b) {
    m.backend().copy_from_host(m.weights().vec(), flat.data());
    m.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    const CMatView lg = m.logits();
    std::vector<float> logits(std::size_t(lg.rows * lg.cols)), losses(std::size_t(m.rows()));
    m.backend().copy_to_host(logits.data(), CVecView(lg.data, lg.rows * lg.cols));
    m.backend().copy_to_host(losses.data(), m.losses());
    LoadEval e;
    double sum = 0, hits = 0;
    for (std::int64_t i = 0; i < lg.rows; ++i) {
        const float* row = logits.data() + i * lg.cols;
        const bool finite = std::all_of(row, row + lg.cols, [](float x) { return std::isfinite(x); });
        const auto best = std::int32_t(std::max_element(row, row + lg.cols) - row);
        e.top1.push_back(finite ? best : -1);
        hits += finite && best == b.targets[std::size_t(i)] ? 1 : 0;
        sum += losses[std::size_t(i)];
        e.is_finite = e.is_finite && finite && std::isfinite(losses[std::size_t(i)]);
    }
    e.loss = sum / double(lg.rows);
    e.accuracy = 100 * hits / double(lg.rows);
    SampleOptions opt;
    opt.max_new_tokens = 40;
    const std::string prompt = "reverse: stone -> ";
    e.sample = printable(prompt + decode(generate(m, encode(prompt), opt)));
    return e;
}

void add_eval(Result& r, const std::string& k, const LoadEval& e) {
    if (e.is_finite) r.scalars.push_back({"loss_" + k, e.loss, ""});
    r.scalars.push_back({"loss_" + k + "_is_finite", e.is_finite ? 1.0 : 0.0, ""});
    r.scalars.push_back({"accuracy_" + k, e.accuracy, "%"});
    r.texts.push_back({"sample_" + k, e.sample});
}

// Per tensor and in total: how many loaded values differ from the correct load, how many are inf/NaN.
struct LoadDiff {
    Table per_tensor{"tensors", {"tensor", "max_abs_stored", "max_abs_loaded", "changed", "nonfinite"}, {}};
    double changed = 0, nonfinite = 0, max_abs = 0;
};

LoadDiff compare_loads(const ParamTable& t, const std::vector<float>& correct, const std::vector<float>& loaded) {
    LoadDiff d;
    for (const ParamInfo& p : t.entries()) {
        double mc = 0, ml = 0, ch = 0, nf = 0;
        for (std::int64_t j = 0; j < p.numel(); ++j) {
            const float c = correct[std::size_t(p.offset + j)], l = loaded[std::size_t(p.offset + j)];
            mc = std::max(mc, double(std::fabs(c)));
            if (std::isfinite(l)) ml = std::max(ml, double(std::fabs(l)));
            else nf += 1;
            ch += c != l ? 1 : 0;  // NaN != anything: counted as changed
        }
        d.per_tensor.rows.push_back({p.name, mc, ml, ch, nf});
        d.changed += ch, d.nonfinite += nf, d.max_abs = std::max(d.max_abs, mc);
    }
    return d;
}

Result run_wrong_format_load(const ExperimentArgs& a, RunContext& ctx) {
    auto backend = experiment_backend(ctx);
    BaseModel base = obtain_base(*backend, base_spec_from(a), ctx);
    Result r;
    if (base.curve.is_cancelled) {
        r.is_cancelled = true;
        return r;
    }
    Gpt& m = *base.model;
    std::vector<float> original(std::size_t(m.weights().numel()));
    m.backend().copy_to_host(original.data(), m.weights().vec());
    std::vector<float> scaled = original;
    rescale_preserving(m.params(), scaled, std::ldexp(1.0, int(a.integer("magnitude_log2"))));
    // The checkpoint: bf16 codes. The correct load decodes them as bf16; the wrong one as the chosen mode says.
    const FormatInfo& bf16 = format_info(Format::bf16);
    const FormatInfo& fp16 = format_info(Format::fp16);
    const std::string& mode = a.choice("load");
    std::vector<float> correct(scaled.size()), loaded(scaled.size());
    for (std::size_t i = 0; i < scaled.size(); ++i) {
        const std::uint32_t code = format_encode(bf16, scaled[i]);
        correct[i] = float(format_decode(bf16, code));
        loaded[i] = mode == "bf16_bits_as_fp16" ? float(format_decode(fp16, code))
                    : mode == "fp16"            ? float(format_round(fp16, correct[i]))
                                                : correct[i];
    }
    LoadDiff diff = compare_loads(m.params(), correct, loaded);
    CorpusStream held(std::uint64_t(a.integer("base_seed")) ^ kHeldOutSalt);
    const Batch b = corpus_batch(held, 8, int(m.config().n_positions));
    ctx.progress(0, 3, "evaluating the original fp32 weights");
    const LoadEval ref = evaluate_load(m, original, b);
    ctx.progress(1, 3, "evaluating the correct load");
    const LoadEval ok = evaluate_load(m, correct, b);
    ctx.progress(2, 3, "evaluating the load as " + mode);
    const LoadEval bad = evaluate_load(m, loaded, b);
    ctx.progress(3, 3, "done");
    double agree = 0;
    for (std::size_t i = 0; i < ok.top1.size(); ++i) agree += ok.top1[i] == bad.top1[i] ? 1 : 0;
    r.scalars.push_back({"weights_total", double(scaled.size()), ""});
    r.scalars.push_back({"weights_changed", diff.changed, ""});
    r.scalars.push_back({"weights_nonfinite", diff.nonfinite, ""});
    r.scalars.push_back({"max_abs_weight_stored", diff.max_abs, ""});
    add_eval(r, "fp32", ref);
    add_eval(r, "correct", ok);
    add_eval(r, "loaded", bad);
    r.scalars.push_back({"top1_agreement", 100 * agree / double(ok.top1.size()), "%"});
    r.tables.push_back(std::move(diff.per_tensor));
    return r;
}

}  // namespace

void register_formats_model_experiments(ExperimentRegistry& reg) {
    ExperimentInfo h{"model_value_histograms", "A real model's weights and gradients on a format's grid",
                     "The cached base's weights of one tensor and the gradients of one training step as histograms "
                     "of log2|x|, with the format's min subnormal, min normal and max, and how many values would "
                     "overflow, flush to zero or land among the subnormals.",
                     {}, 2, run_model_value_histograms};
    add_base_params(h.params);
    h.params.push_back({"format", ParamKind::choice, "fp16", 0, 0, float_format_names(), "the float format"});
    h.params.push_back({"tensor", ParamKind::choice, "mlp.c_fc", 0, 0,
                        {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "ln_1", "ln_2", "wte", "wpe", "all"},
                        "which weights (of the chosen layer, or an embedding, or all)"});
    h.params.push_back({"layer", ParamKind::integer, "0", 0, 63, {}, "transformer block"});
    h.params.push_back({"weight_scale_log2", ParamKind::integer, "0", -60, 60, {}, "weights multiplied by 2^k"});
    h.params.push_back({"loss_scale_log2", ParamKind::integer, "0", -20, 40, {},
                        "gradients multiplied by 2^k (loss scaling)"});
    h.params.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "the training batch for the gradients"});
    reg.add(std::move(h));

    ExperimentInfo w{"wrong_format_load", "Load a checkpoint in the wrong format",
                     "Stores the base's weights as bf16, then reads them correctly, as fp16 bit patterns, or cast "
                     "to fp16; next-token loss and accuracy on held-out text, agreement with the correct load and "
                     "a generated sample. magnitude_log2 first rescales the model (same function, larger weights).",
                     {}, 3, run_wrong_format_load};
    add_base_params(w.params);
    w.params.push_back({"load", ParamKind::choice, "bf16_bits_as_fp16", 0, 0, {"bf16", "bf16_bits_as_fp16", "fp16"},
                        "bf16: correct; bf16_bits_as_fp16: the same 16 bits decoded as fp16; fp16: values cast"});
    w.params.push_back({"magnitude_log2", ParamKind::integer, "0", 0, 40, {},
                        "scale the residual-stream weights by 2^k (and ln_f by 2^-k) before storing"});
    reg.add(std::move(w));
}

}  // namespace tl
