// Experiments of lesson 04 (quantization), all starting from a base fine-tuned on a task (obtain_finetuned):
// ptq_sweep (formats x granularity x embeddings), qat_vs_ptq (one scheme: PTQ, QAT recovery curve, weight
// histograms), bitnet (ternary PTQ vs ternary QAT), mixed_bit (bits by sensitivity vs uniform),
// activation_quant (W8A8 and narrower activations, per token). engine/quant.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

#include "backend/rounding_backend.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "experiments/dashboard_recorder.hpp"
#include "experiments/experiment_backend.hpp"
#include "quant/mixed_bit.hpp"
#include "quant/qat.hpp"
#include "quant/quality.hpp"
#include "train/evaluate.hpp"

namespace tl {

namespace {

// [SECTION] shared: the starting model, arguments, result rows

struct Start {
    std::unique_ptr<Backend> backend;
    BaseModel model;  // the fp32 fine-tuned model
    FinetunedSpec spec;
    std::vector<Example> test, val;
};

bool obtain_start(const ExperimentArgs& a, RunContext& ctx, Start& s) {
    s.backend = experiment_backend(ctx);
    s.spec.base = base_spec_from(a);
    s.spec.task = a.choice("task");
    s.spec.steps = a.integer("ft_steps");
    s.spec.lr = float(a.real("lr"));
    s.spec.seed = std::uint64_t(a.integer("seed"));
    ctx.progress(0, 1, "fine-tuned model (cached after the first run)");
    s.model = obtain_finetuned(*s.backend, s.spec, ctx);
    const TaskInfo& task = find_task(s.spec.task);
    s.test = task_examples(task, Split::test, int(a.integer("eval_n")), 99);
    s.val = task_examples(task, Split::validation, 32, 7);
    return !s.model.curve.is_cancelled;
}

std::vector<std::string> names_of_formats() {
    std::vector<std::string> out;
    for (const FormatInfo& f : all_formats()) out.emplace_back(f.name);
    return out;
}

const std::vector<std::string> kGranularities = {"per_tensor", "per_channel", "per_group"};

void add_start_params(std::vector<ParamSpec>& p) {
    add_base_params(p);
    p.push_back({"task", ParamKind::choice, "reverse", 0, 0, task_names(),
                 "the task the model was fine-tuned on"});
    p.push_back(
        {"ft_steps", ParamKind::integer, "300", 1, 100000, {}, "fine-tuning steps of the starting model"});
    p.push_back({"lr", ParamKind::log_real, "0.003", 1e-5, 1e-1, {}, "fine-tuning peak learning rate"});
    p.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "fine-tuning data order seed"});
    p.push_back({"eval_n", ParamKind::integer, "100", 1, 10000, {}, "test examples scored"});
}

void add_scheme_params(std::vector<ParamSpec>& p, const std::string& format, const std::string& granularity) {
    p.push_back({"format", ParamKind::choice, format, 0, 0, names_of_formats(), "weight format"});
    p.push_back({"granularity", ParamKind::choice, granularity, 0, 0, kGranularities, "one scale per ..."});
    p.push_back({"group_size", ParamKind::integer, "32", 1, 4096, {}, "per_group: weights per scale"});
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) out.push_back(item);
    }
    if (out.empty()) throw Error("[quant] an empty list: give comma-separated names, e.g. int8,int4");
    return out;
}

EmbeddingPolicy parse_embeddings(const std::string& s) {
    return s == "keep_fp32" ? EmbeddingPolicy::keep_fp32 : EmbeddingPolicy::quantize;
}
std::string embeddings_name(EmbeddingPolicy e) {
    return e == EmbeddingPolicy::keep_fp32 ? "keep_fp32" : "quantize";
}

const std::vector<std::string> kQualityColumns = {"model", "bits_per_weight", "accuracy", "loss", "kl"};

std::vector<Cell> quality_row(const std::string& label, double bpw, const QuantQuality& q) {
    return {label, bpw, 100 * q.accuracy, q.loss, q.kl};
}

void add_quality_scalars(Result& r, const std::string& suffix, const QuantQuality& q) {
    r.scalars.push_back({"accuracy_" + suffix, 100 * q.accuracy, "%"});
    r.scalars.push_back({"loss_" + suffix, q.loss, ""});
    r.scalars.push_back({"kl_" + suffix, q.kl, "nats"});
}

// [SECTION] ptq_sweep

Result run_ptq_sweep(const ExperimentArgs& a, RunContext& ctx) {
    Result r;
    Start s;
    if (!obtain_start(a, ctx, s)) return r.is_cancelled = true, r;
    Gpt& fp = *s.model.model;
    const ReferenceDist ref = capture_reference(fp, s.test);
    const QuantQuality base = measure_quality(fp, ref);
    add_quality_scalars(r, "fp32", base);
    std::vector<EmbeddingPolicy> embs = {EmbeddingPolicy::keep_fp32, EmbeddingPolicy::quantize};
    if (a.choice("embeddings") != "both") embs = {parse_embeddings(a.choice("embeddings"))};
    const auto formats = split_list(a.text("formats")), grans = split_list(a.text("granularities"));
    Table t{"ptq",
            {"format", "granularity", "embeddings", "bits_per_weight", "model_bits_per_weight", "accuracy",
             "loss", "kl", "accuracy_drop"},
            {}};
    t.rows.push_back({std::string("fp32"), std::string("-"), std::string("-"), 32.0, 32.0,
                      100 * base.accuracy, base.loss, 0.0, 0.0});
    std::int64_t done = 0;
    const auto total = std::int64_t(formats.size() * grans.size() * embs.size());
    for (const std::string& entry : formats)
        for (const std::string& g0 : grans) {
            // "palette3@per_tensor": this format at this granularity only (a per-row palette costs bits)
            const auto at = entry.find('@');
            const std::string f = entry.substr(0, at),
                              g = at == std::string::npos ? g0 : entry.substr(at + 1);
            if (at != std::string::npos && g0 != grans.front()) continue;
            QuantScheme scheme = make_scheme(f, g, a.integer("group_size"));
            if (scheme.granularity != parse_granularity(g))
                continue;  // unscaled formats: once, as per_tensor
            // QLoRA's double quantization of the group scales (bench_quant --device cuda times these schemes)
            if (scheme.granularity == Granularity::per_group)
                scheme.double_quant = parse_double_quant(a.choice("double_quant"));
            for (const EmbeddingPolicy e : embs) {
                if (ctx.is_cancelled()) return r.is_cancelled = true, r;
                ctx.progress(done++, total, short_name(scheme) + ", embeddings " + embeddings_name(e));
                auto q = clone_model(fp);
                const QuantPlan plan = uniform_plan(*q, scheme, e);
                apply_ptq(*q, plan);
                const QuantQuality m = measure_quality(*q, ref);
                const QuantFootprint fpr = footprint(*q, plan);
                t.rows.push_back({f, std::string(name_of(scheme.granularity)), embeddings_name(e),
                                  fpr.bits_per_quantized_weight(), fpr.bits_per_weight(), 100 * m.accuracy,
                                  m.loss, m.kl, 100 * (base.accuracy - m.accuracy)});
                ctx.point("accuracy", fpr.bits_per_quantized_weight(), 100 * m.accuracy);
            }
        }
    r.tables.push_back(std::move(t));
    return r;
}

// [SECTION] qat_vs_ptq and bitnet

// A histogram of values on [-lim, lim] in `bins` bins.
Histogram histogram_of(const std::string& name, const std::vector<float>& v, double lim, int bins) {
    Histogram h{name, {}, std::vector<double>(std::size_t(bins), 0.0)};
    for (int i = 0; i <= bins; ++i) h.edges.push_back(-lim + 2 * lim * i / bins);
    for (const float x : v) {
        const int b = std::clamp(int((x + lim) / (2 * lim) * bins), 0, bins - 1);
        h.counts[std::size_t(b)] += 1;
    }
    return h;
}

enum class QatStart { finetuned, base };

// The model QAT and its fp32 control start from: the fine-tuned model, or the base (then training teaches the
// task).
std::unique_ptr<Gpt> starting_model(Start& s, QatStart start, RunContext& ctx) {
    if (start == QatStart::finetuned) return clone_model(*s.model.model);
    return std::move(obtain_base(*s.backend, s.spec.base, ctx).model);
}

struct QatRun {
    std::unique_ptr<Gpt> qat, control, control_ptq;  // QAT; the same training in fp32; that, quantized after
    TrainSummary summary;
};

// QAT under the plan, and the control: identical training (data, steps, lr) without the quantizer, then PTQ.
// Without the control, QAT gets credit for the extra training itself (large on an under-trained model).
// With `act` (a RoundingBackend quantizing activations) the QAT model runs on it: weights and activations train
// quantized together; the control stays fp32 in both.
QatRun train_qat_and_control(const ExperimentArgs& a, RunContext& ctx, Start& s, const QuantPlan& plan,
                             QatStart start, SteMode ste, Backend* act, Result& r) {
    FinetuneSpec spec;
    spec.task = s.spec.task;
    spec.steps = a.integer("steps");
    spec.seed = s.spec.seed + 1;  // fresh data order for the extra training
    spec.lr = float(a.real("qat_lr"));
    QatRun run;
    run.qat = starting_model(s, start, ctx);
    if (act) run.qat = clone_model_onto(*run.qat, *act);
    Gpt& q = *run.qat;
    DashboardRecorder rec(r, ctx, "QAT " + short_name(plan.front().scheme),
                          std::max<std::int64_t>(1, spec.steps / 10),
                          [&] { return response_loss(q, s.val, 16); });
    run.summary = qat_finetune(q, spec, plan, ste, &rec, ctx.cancel);
    if (run.summary.is_cancelled) return run;
    ctx.progress(0, 1, "the fp32 control: the same training without the quantizer");
    run.control = starting_model(s, start, ctx);
    run.summary.is_cancelled = finetune(*run.control, spec, nullptr, ctx.cancel).is_cancelled;
    run.control_ptq = act ? clone_model_onto(*run.control, *act) : clone_model(*run.control);
    apply_ptq(*run.control_ptq, plan);
    return run;
}

void add_weight_histograms(Result& r, const QuantTarget& h, const std::vector<const Gpt*>& models,
                           const std::vector<std::string>& names) {
    std::vector<std::vector<float>> w;
    double lim = 0;
    for (const Gpt* m : models) {
        w.push_back(read_target(*m, h));
        for (const float x : w.back()) lim = std::max(lim, double(std::fabs(x)));
    }
    for (std::size_t i = 0; i < w.size(); ++i) r.histograms.push_back(histogram_of(names[i], w[i], lim, 61));
    r.texts.push_back({"histogram_tensor", h.name});
}

// PTQ of the fine-tuned model vs QAT (from the fine-tuned model, or fine-tuning the base under QAT), with the
// fp32 control, the QAT run's dashboard and the histograms of one MLP matrix before and after.
// act_bits > 0: the PTQ and QAT rows also round every linear input to that many bits per token (BitNet's 8-bit
// absmax activations); the fp32 rows do not.
Result qat_comparison(const ExperimentArgs& a, RunContext& ctx, const QuantScheme& scheme,
                      EmbeddingPolicy emb, QatStart start, SteMode ste, int act_bits) {
    Result r;
    Start s;
    if (!obtain_start(a, ctx, s)) return r.is_cancelled = true, r;
    Gpt& fp = *s.model.model;
    const ReferenceDist ref = capture_reference(fp, s.test);
    const QuantPlan plan = uniform_plan(fp, scheme, emb);
    const double bpw = footprint(fp, plan).bits_per_quantized_weight();
    RoundingBackend act(*s.backend);
    act.set_activation_bits(act_bits);
    auto ptq = act_bits ? clone_model_onto(fp, act) : clone_model(fp);
    apply_ptq(*ptq, plan);
    QatRun run = train_qat_and_control(a, ctx, s, plan, start, ste, act_bits ? &act : nullptr, r);
    if (run.summary.is_cancelled) return r.is_cancelled = true, r;
    ctx.progress(0, 1, "scoring");
    const std::string n = short_name(scheme) + (act_bits ? " A" + std::to_string(act_bits) : ""),
                      steps = std::to_string(a.integer("steps"));
    Table t{"quality", kQualityColumns, {}};
    const std::vector<std::tuple<std::string, std::string, Gpt*, double>> rows = {
        {"fp32", "fp32 (fine-tuned)", &fp, 32.0},
        {"ptq", "PTQ " + n, ptq.get(), bpw},
        {"fp32_control", (start == QatStart::base ? "fp32 base fine-tuned " : "fp32 + ") + steps + " steps",
         run.control.get(), 32.0},
        {"ptq_control", "PTQ " + n + " after those steps", run.control_ptq.get(), bpw},
        {"qat", "QAT " + n + ", " + steps + " steps", run.qat.get(), bpw}};
    for (const auto& [key, label, model, bits] : rows) {
        const QuantQuality q = measure_quality(*model, ref);
        add_quality_scalars(r, key, q);
        t.rows.push_back(quality_row(label, bits, q));
        const double v = response_loss(*model, s.val, 16);
        if (key != "qat")
            r.series.push_back(
                {key + "_val_loss", "step", "loss", {0.0, double(run.summary.losses.size())}, {v, v}});
    }
    r.tables.push_back(std::move(t));
    r.scalars.push_back({"bits_per_weight", bpw, "bits"});
    r.scalars.push_back({"qat_seconds", run.summary.seconds, "s"});
    r.scalars.push_back({"activation_bits", act_bits ? double(act_bits) : 32.0, "bits"});
    const QuantTarget& h =
        plan[std::min<std::size_t>(plan.size() - 1, emb == EmbeddingPolicy::quantize ? 4 : 2)].target;
    add_weight_histograms(r, h, {&fp, ptq.get(), run.qat.get()},
                          {"weights_fp32", "weights_ptq", "weights_qat"});
    return r;
}

Result run_qat_vs_ptq(const ExperimentArgs& a, RunContext& ctx) {
    const QuantScheme scheme =
        make_scheme(a.choice("format"), a.choice("granularity"), a.integer("group_size"));
    return qat_comparison(a, ctx, scheme, parse_embeddings(a.choice("embeddings")),
                          a.choice("start") == "base" ? QatStart::base : QatStart::finetuned,
                          a.choice("ste") == "clipped" ? SteMode::clipped : SteMode::identity,
                          a.choice("activations") == "int8" ? 8 : 0);
}

Result run_bitnet(const ExperimentArgs& a, RunContext& ctx) {
    const QuantScheme scheme = make_scheme("ternary", a.choice("granularity"), a.integer("group_size"));
    return qat_comparison(a, ctx, scheme, parse_embeddings(a.choice("embeddings")),
                          a.choice("start") == "base" ? QatStart::base : QatStart::finetuned,
                          SteMode::identity, a.choice("activations") == "int8" ? 8 : 0);
}

// [SECTION] mixed_bit

Result run_mixed_bit(const ExperimentArgs& a, RunContext& ctx) {
    Result r;
    Start s;
    if (!obtain_start(a, ctx, s)) return r.is_cancelled = true, r;
    Gpt& fp = *s.model.model;
    const std::int64_t gs = a.integer("group_size");
    const std::string g = a.choice("granularity");
    const QuantScheme low = make_scheme(a.choice("low"), g, gs), mid = make_scheme(a.choice("mid"), g, gs),
                      high = make_scheme(a.choice("high"), g, gs);
    const auto targets = quant_targets(fp, parse_embeddings(a.choice("embeddings")));
    ctx.progress(0, 1, "sensitivity of each tensor");
    double base_loss = 0;
    const std::vector<Sensitivity> sens = measure_sensitivity(fp, targets, low, high, s.val, &base_loss);
    const double budget = a.real("budget");
    const QuantPlan mixed = allocate_bits(sens, low, high, budget, Priority::most_sensitive);
    const QuantPlan control = allocate_bits(sens, low, high, budget, Priority::least_sensitive);
    auto uniform = [&](const QuantScheme& q) {
        QuantPlan p;
        for (const QuantTarget& t : targets) p.push_back({t, q});
        return p;
    };
    const ReferenceDist ref = capture_reference(fp, s.test);
    Table plans{"plans", kQualityColumns, {}};
    plans.rows.push_back(quality_row("fp32", 32, measure_quality(fp, ref)));
    const std::vector<std::pair<std::string, QuantPlan>> runs = {
        {"uniform " + short_name(low), uniform(low)},
        {"uniform " + short_name(mid), uniform(mid)},
        {"uniform " + short_name(high), uniform(high)},
        {"mixed by sensitivity", mixed},
        {"mixed, least sensitive first (control)", control}};
    for (std::size_t i = 0; i < runs.size(); ++i) {
        if (ctx.is_cancelled()) return r.is_cancelled = true, r;
        ctx.progress(std::int64_t(i), std::int64_t(runs.size()), runs[i].first);
        auto q = clone_model(fp);
        apply_ptq(*q, runs[i].second);
        plans.rows.push_back(quality_row(runs[i].first,
                                         footprint(*q, runs[i].second).bits_per_quantized_weight(),
                                         measure_quality(*q, ref)));
    }
    Table st{"sensitivity", {"tensor", "params", "loss_increase_low", "loss_increase_high", "chosen"}, {}};
    for (std::size_t i = 0; i < sens.size(); ++i)
        st.rows.push_back({sens[i].target.name, double(sens[i].target.rows * sens[i].target.cols),
                           sens[i].loss_low - base_loss, sens[i].loss_high - base_loss,
                           short_name(mixed[i].scheme)});
    r.tables.push_back(std::move(plans));
    r.tables.push_back(std::move(st));
    r.scalars.push_back({"budget_bits_per_weight", budget, "bits"});
    r.scalars.push_back({"mixed_bits_per_weight", footprint(fp, mixed).bits_per_quantized_weight(), "bits"});
    return r;
}

// [SECTION] activation_quant

// Weights and/or activations in integers: the weights by PTQ (one scheme), the inputs of every linear op rounded
// per token on the fly (RoundingBackend::set_activation_bits; the LM head stays fp32). Rows: fp32, weights only,
// activations only and both, for each activation width.
std::vector<int> parse_bits(const std::string& text) {
    std::vector<int> out;
    for (const std::string& item : split_list(text)) {
        int b = 0;
        try {
            b = std::stoi(item);
        } catch (const std::exception&) {
            throw Error("[quant] act_bits: '" + item + "' is not a bit width; give e.g. 8,6,4");
        }
        if (b < 2 || b > 16) throw Error("[quant] act_bits: " + item + " is outside 2..16");
        out.push_back(b);
    }
    return out;
}

Result run_activation_quant(const ExperimentArgs& a, RunContext& ctx) {
    const std::vector<int> act_bits = parse_bits(a.text("act_bits"));
    Result r;
    Start s;
    if (!obtain_start(a, ctx, s)) return r.is_cancelled = true, r;
    Gpt& fp = *s.model.model;
    const ReferenceDist ref = capture_reference(fp, s.test);
    const QuantScheme w = make_scheme(a.choice("format"), a.choice("granularity"), a.integer("group_size"));
    const QuantPlan plan = uniform_plan(fp, w, EmbeddingPolicy::keep_fp32);
    const double bpw = footprint(fp, plan).bits_per_quantized_weight();
    RoundingBackend rb(*s.backend);  // fp32: rounds nothing but the activations it is told to
    const std::string wn = "W" + short_name(w);
    Table t{"quality", {"model", "weight_bits", "activation_bits", "accuracy", "loss", "kl"}, {}};
    auto score = [&](const std::string& key, const std::string& label, bool quantize_weights, int bits) {
        if (ctx.is_cancelled()) return;
        ctx.progress(std::int64_t(t.rows.size()), std::int64_t(2 + 2 * act_bits.size()), label);
        auto m = clone_model_onto(fp, rb);
        if (quantize_weights) apply_ptq(*m, plan);
        rb.set_activation_bits(bits);
        const QuantQuality q = measure_quality(*m, ref);
        rb.set_activation_bits(0);
        t.rows.push_back({label, quantize_weights ? bpw : 32.0, bits ? double(bits) : 32.0, 100 * q.accuracy, q.loss,
                          q.kl});
        add_quality_scalars(r, key, q);
    };
    score("fp32", "fp32", false, 0);
    score("w", wn + ", fp32 activations", true, 0);
    for (int b : act_bits) {
        score("a" + std::to_string(b), "fp32 weights, int" + std::to_string(b) + " activations per token", false, b);
        score("wa" + std::to_string(b), wn + ", int" + std::to_string(b) + " activations per token", true, b);
    }
    r.is_cancelled = ctx.is_cancelled();
    r.tables.push_back(std::move(t));
    r.scalars.push_back({"weight_bits_per_weight", bpw, "bits"});
    return r;
}

}  // namespace

void register_quant_experiments(ExperimentRegistry& reg) {
    const std::vector<std::string> emb = {"keep_fp32", "quantize"};
    ExperimentInfo sweep{
        "ptq_sweep",
        "PTQ: formats x granularity x embeddings",
        "Post-training quantization of a fine-tuned model's weights in each format and granularity, "
        "with and without the embeddings: exact-match accuracy, loss, KL to the fp32 model's "
        "next-token distribution, and bits per weight (scales included).",
        {},
        60,
        run_ptq_sweep};
    add_start_params(sweep.params);
    sweep.params.push_back({"formats",
                            ParamKind::text,
                            "int8,int4,nf4,fp4_e2m1,palette3@per_tensor,palette2@per_tensor,ternary",
                            0,
                            0,
                            {},
                            "comma-separated formats; format@granularity pins one granularity"});
    sweep.params.push_back(
        {"granularities", ParamKind::text, "per_channel", 0, 0, {}, "comma-separated granularities"});
    sweep.params.push_back(
        {"group_size", ParamKind::integer, "32", 1, 4096, {}, "per_group: weights per scale"});
    sweep.params.push_back({"double_quant",
                            ParamKind::choice,
                            "none",
                            0,
                            0,
                            {"none", "fp8_e4m3", "int8"},
                            "per_group: store the scales double-quantized (QLoRA) instead of as fp16"});
    sweep.params.push_back({"embeddings",
                            ParamKind::choice,
                            "both",
                            0,
                            0,
                            {"both", "keep_fp32", "quantize"},
                            "quantize the token/position embeddings too"});
    reg.add(std::move(sweep));

    ExperimentInfo qat{
        "qat_vs_ptq",
        "QAT vs PTQ for one weight format",
        "Quantizes the fine-tuned model after the fact (PTQ) and trains it through the quantizer "
        "(QAT: fake quantization forward, straight-through estimator backward, fp32 master weights); "
        "the recovery curve, accuracy, loss, KL and weight histograms before and after.",
        {},
        70,
        run_qat_vs_ptq};
    add_start_params(qat.params);
    add_scheme_params(qat.params, "palette2", "per_tensor");
    qat.params.push_back(
        {"embeddings", ParamKind::choice, "keep_fp32", 0, 0, emb, "quantize the embeddings too"});
    qat.params.push_back(
        {"steps", ParamKind::integer, "100", 1, 100000, {}, "QAT steps (and the fp32 control's)"});
    qat.params.push_back({"qat_lr", ParamKind::log_real, "0.001", 1e-5, 1e-1, {}, "QAT peak learning rate"});
    qat.params.push_back({"start",
                          ParamKind::choice,
                          "finetuned",
                          0,
                          0,
                          {"finetuned", "base"},
                          "QAT from the fine-tuned model, or fine-tune the base under QAT"});
    qat.params.push_back({"ste",
                          ParamKind::choice,
                          "identity",
                          0,
                          0,
                          {"identity", "clipped"},
                          "straight-through estimator: pass every gradient, or block saturated weights"});
    qat.params.push_back({"activations", ParamKind::choice, "fp32", 0, 0, {"fp32", "int8"},
                          "also round every linear input to int8 per token (PTQ and QAT rows)"});
    reg.add(std::move(qat));

    ExperimentInfo bit{
        "bitnet",
        "BitNet b1.58: ternary after the fact vs trained ternary",
        "Every matrix in {-1, 0, 1} x mean|W| (absmean) with 8-bit absmax activations per token: ternarizing the "
        "fine-tuned model (PTQ) vs training that way (QAT). Embeddings stay fp32 as in BitNet.",
        {},
        70,
        run_bitnet};
    add_start_params(bit.params);
    bit.params.push_back({"granularity", ParamKind::choice, "per_tensor", 0, 0, kGranularities,
                          "one absmean scale per ... (BitNet: per tensor)"});
    bit.params.push_back(
        {"group_size", ParamKind::integer, "32", 1, 4096, {}, "per_group: weights per scale"});
    bit.params.push_back(
        {"embeddings", ParamKind::choice, "keep_fp32", 0, 0, emb, "quantize the embeddings too"});
    bit.params.push_back(
        {"steps", ParamKind::integer, "100", 1, 100000, {}, "QAT steps (and the fp32 control's)"});
    bit.params.push_back({"qat_lr", ParamKind::log_real, "0.001", 1e-5, 1e-1, {}, "QAT peak learning rate"});
    bit.params.push_back({"start",
                          ParamKind::choice,
                          "finetuned",
                          0,
                          0,
                          {"finetuned", "base"},
                          "QAT from the fine-tuned model, or fine-tune the base under QAT"});
    bit.params.push_back({"activations", ParamKind::choice, "int8", 0, 0, {"int8", "fp32"},
                          "BitNet b1.58's 8-bit absmax activations per token (PTQ and QAT rows), or fp32"});
    reg.add(std::move(bit));

    ExperimentInfo mix{
        "mixed_bit",
        "Mixed-bit by layer sensitivity vs uniform",
        "Measures each tensor's loss increase when only it is quantized, gives the most sensitive "
        "the high width within an average bits-per-weight budget, and compares with uniform low, "
        "middle and high widths and with the opposite allocation.",
        {},
        40,
        run_mixed_bit};
    add_start_params(mix.params);
    mix.params.push_back({"low", ParamKind::choice, "palette2", 0, 0, names_of_formats(), "the low width"});
    mix.params.push_back(
        {"mid", ParamKind::choice, "palette3", 0, 0, names_of_formats(), "the uniform middle"});
    mix.params.push_back({"high", ParamKind::choice, "palette4", 0, 0, names_of_formats(), "the high width"});
    mix.params.push_back(
        {"granularity", ParamKind::choice, "per_tensor", 0, 0, kGranularities, "one scale/palette per ..."});
    mix.params.push_back(
        {"group_size", ParamKind::integer, "32", 1, 4096, {}, "per_group: weights per scale"});
    mix.params.push_back({"budget", ParamKind::real, "3.5", 1, 16, {}, "average bits per quantized weight"});
    mix.params.push_back(
        {"embeddings", ParamKind::choice, "quantize", 0, 0, emb, "quantize the embeddings too"});
    reg.add(std::move(mix));

    ExperimentInfo act{
        "activation_quant",
        "Activations in integers too: W8A8 and below",
        "Rounds the input of every linear layer to int8 (and narrower) per token on the fly, with the weights "
        "in fp32 or quantized by PTQ: fp32, weights only, activations only, both. The LM head stays fp32.",
        {},
        25,
        run_activation_quant};
    add_start_params(act.params);
    add_scheme_params(act.params, "int8", "per_channel");
    act.params.push_back({"act_bits", ParamKind::text, "8,6,4", 0, 0, {}, "activation widths, comma-separated (2..16)"});
    reg.add(std::move(act));
}

}  // namespace tl
