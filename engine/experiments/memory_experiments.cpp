// Experiments of the memory lessons: predicted vs measured memory of a tunelab model (a few real CPU training
// steps under the MemoryLedger), activations across batch sizes, and the detailed model on a real model's shape
// ("does it fit my GPU?").
// The arithmetic and the measurement: engine/memory (memory_model.hpp, measure.hpp); the story: docs/memory.md.
#include "experiments/all_experiments.hpp"
#include "memory/measure.hpp"

namespace tl {

namespace {

using namespace tl::memory;

std::vector<std::string> method_choices() {
    return {"full", "partial", "lora", "qlora", "adapters", "prompt-tuning", "prefix-tuning", "bitfit", "ia3"};
}

MethodSpec method_from(const ExperimentArgs& a) {
    MethodSpec m;
    m.kind = parse_method_kind(a.choice("method"));
    m.lora_rank = a.integer("rank");
    return m;
}

void add_course(Result& r, const CourseFormula& c) {
    r.scalars.push_back({"course_inference_bytes", c.inference_bytes(), "bytes"});
    r.scalars.push_back({"course_training_bytes", c.training_bytes(), "bytes"});
}

void add_terms(Result& r, const Prediction& p) {
    Table t{"terms", {"term", "category", "bytes", "formula"}, {}};
    for (const Term& term : p.terms)
        t.rows.push_back({term.name, std::string(mem_category_name(term.category)), term.bytes, term.formula});
    r.tables.push_back(std::move(t));
    r.scalars.push_back({"params", double(p.total_params), ""});
    r.scalars.push_back({"trainable", double(p.trainable), ""});
    r.scalars.push_back({"predicted_total_bytes", p.total(), "bytes"});
}

// The measurement both engine experiments share: preset, method and rank, sequence length, threads.
MeasureSpec measure_spec_from(const ExperimentArgs& a, const RunContext& ctx) {
    MeasureSpec spec;
    spec.config = find_preset(a.choice("preset")).config;
    spec.name = a.choice("preset");
    spec.method = method_from(a);
    spec.seq = a.integer("seq");
    spec.threads = ctx.threads;
    spec.device = ctx.device == "cuda" ? Device::cuda : Device::cpu;
    return spec;
}

Result run_memory_breakdown(const ExperimentArgs& a, RunContext& ctx) {
    MeasureSpec spec = measure_spec_from(a, ctx);
    spec.batch = a.integer("batch");
    spec.steps = a.integer("measure_steps");
    ctx.progress(0, 1, "training under the memory ledger");
    const Comparison c = compare_on_engine(spec, Measure::yes);
    ctx.progress(1, 1, "done");
    Result r;
    Table cats{"categories", {"category", "predicted_bytes", "measured_bytes"}, {}};
    for (const CategoryRow& row : c.rows)
        cats.rows.push_back({std::string(mem_category_name(row.category)), row.predicted,
                             row.measured ? Cell(double(*row.measured)) : Cell(std::string("-"))});
    r.tables.push_back(std::move(cats));
    add_terms(r, c.prediction);
    add_course(r, c.course);
    if (c.measurement) r.scalars.push_back({"measured_peak_bytes", double(c.measurement->peak_total), "bytes"});
    return r;
}

// Activations grow with batch x sequence: the breakdown at batch 1, 2, 4 ... max_batch, measured and predicted,
// as series against the tokens per step (B x T), with the course's N x 3 x M as a flat line.
Result run_memory_batch_sweep(const ExperimentArgs& a, RunContext& ctx) {
    MeasureSpec spec = measure_spec_from(a, ctx);
    spec.steps = 1;
    const std::int64_t seq = spec.seq > 0 ? spec.seq : spec.config.n_positions;
    Result r;
    Series measured_act{"measured_activations", "tokens per step", "bytes", {}, {}};
    Series predicted_act{"predicted_activations", "tokens per step", "bytes", {}, {}};
    Series measured_total{"measured_peak", "tokens per step", "bytes", {}, {}};
    Series course{"course_training", "tokens per step", "bytes", {}, {}};
    const std::int64_t max_batch = a.integer("max_batch");
    int done = 0, total = 0;
    for (std::int64_t b = 1; b <= max_batch; b *= 2) ++total;
    for (std::int64_t b = 1; b <= max_batch && !ctx.is_cancelled(); b *= 2) {
        ctx.progress(done++, total, "batch " + std::to_string(b));
        spec.batch = b;
        const Comparison c = compare_on_engine(spec, Measure::yes);
        const double tokens = double(b * seq);
        const int act = int(MemCategory::activations);
        predicted_act.x.push_back(tokens), predicted_act.y.push_back(c.prediction.by_category(MemCategory::activations));
        course.x.push_back(tokens), course.y.push_back(c.course.training_bytes());
        if (c.measurement) {
            measured_act.x.push_back(tokens), measured_act.y.push_back(double(c.measurement->peak[std::size_t(act)]));
            measured_total.x.push_back(tokens), measured_total.y.push_back(double(c.measurement->peak_total));
        }
    }
    r.is_cancelled = ctx.is_cancelled();
    ctx.progress(total, total, "done");
    r.series = {std::move(measured_act), std::move(predicted_act), std::move(measured_total), std::move(course)};
    return r;
}

Result run_memory_real_model(const ExperimentArgs& a, RunContext&) {
    const ArchShape& s = find_real_model(a.choice("model")).shape;
    TrainSetup t = typical_setup(method_from(a), a.integer("batch"), a.integer("seq"));
    t.precision = parse_precision(a.choice("precision"));
    t.recompute = a.choice("recompute") == "full" ? Recompute::full : Recompute::none;
    t.zero = ZeroStage(a.integer("zero"));
    t.gpus = a.integer("gpus");
    const Prediction p = predict_training(s, t);
    Result r;
    Table cats{"categories", {"category", "predicted_bytes"}, {}};
    for (int c = 0; c < kMemCategoryCount; ++c)
        cats.rows.push_back({std::string(kMemCategoryNames[c]), p.by_category(MemCategory(c))});
    r.tables.push_back(std::move(cats));
    add_terms(r, p);
    add_course(r, CourseFormula{double(p.total_params), precision_info(t.precision).param_bytes});
    const double gpu = a.real("gpu_gb") * 1e9;
    r.scalars.push_back({"gpu_bytes", gpu, "bytes"});
    r.scalars.push_back({"fits", p.total() <= gpu ? 1.0 : 0.0, ""});
    return r;
}

}  // namespace

void register_memory_experiments(ExperimentRegistry& r) {
    r.add({.name = "memory_breakdown",
           .title = "Memory by category: course formula, detailed prediction, measured",
           .description = "Trains a tunelab preset a few steps under the MemoryLedger and sets each category's "
                          "peak beside the detailed model's prediction and the course's N x 3 x M.",
           .params = {{"preset", ParamKind::choice, "tiny", 0, 0, {"nano", "tiny", "small", "medium"}, "model size"},
                      {"method", ParamKind::choice, "full", 0, 0, method_choices(), "fine-tuning method"},
                      {"rank", ParamKind::integer, "8", 1, 128, {}, "LoRA rank"},
                      {"batch", ParamKind::integer, "4", 1, 64, {}, "rows per step"},
                      {"seq", ParamKind::integer, "0", 0, 256, {}, "tokens per row (0: the preset's context)"},
                      // Not `steps`: the peaks are reached in the first step, and --quick sets steps=60.
                      {"measure_steps", ParamKind::integer, "2", 1, 20, {}, "training steps actually run"}},
           .estimated_seconds = 2,
           .run = run_memory_breakdown});
    r.add({.name = "memory_batch_sweep",
           .title = "Activations grow with batch x sequence",
           .description = "The measured and predicted activation bytes and the measured peak of one real training "
                          "step at batch 1, 2, 4 ... max_batch, against the course's N x 3 x M, which does not move.",
           .params = {{"preset", ParamKind::choice, "tiny", 0, 0, {"nano", "tiny", "small", "medium"}, "model size"},
                      {"method", ParamKind::choice, "full", 0, 0, method_choices(), "fine-tuning method"},
                      {"rank", ParamKind::integer, "8", 1, 128, {}, "LoRA rank"},
                      {"seq", ParamKind::integer, "0", 0, 256, {}, "tokens per row (0: the preset's context)"},
                      {"max_batch", ParamKind::integer, "16", 1, 64, {}, "largest batch (powers of two up to it)"}},
           .estimated_seconds = 4,
           .run = run_memory_batch_sweep});
    r.add({.name = "memory_real_model",
           .title = "Does it fit? A real model's fine-tuning memory on one GPU",
           .description = "The detailed memory model on a real model's shape (Llama 1B-70B, Mistral 7B) for a "
                          "method, precision, batch and ZeRO stage, against a GPU's memory.",
           .params = {{"model", ParamKind::choice, "7b", 0, 0, {"1b", "7b", "8b", "mistral-7b", "13b", "70b", "gpt2"},
                       "model shape"},
                      {"method", ParamKind::choice, "qlora", 0, 0, method_choices(), "fine-tuning method"},
                      {"rank", ParamKind::integer, "64", 1, 1024, {}, "LoRA rank"},
                      {"precision", ParamKind::choice, "mixed-bf16", 0, 0, {"fp32", "mixed-bf16", "mixed-fp16", "bf16"},
                       "training precision"},
                      {"batch", ParamKind::integer, "1", 1, 512, {}, "sequences per GPU"},
                      {"seq", ParamKind::integer, "512", 1, 131072, {}, "tokens per sequence"},
                      {"recompute", ParamKind::choice, "none", 0, 0, {"none", "full"}, "activation recomputation"},
                      {"zero", ParamKind::integer, "0", 0, 3, {}, "ZeRO stage"},
                      {"gpus", ParamKind::integer, "1", 1, 4096, {}, "data-parallel GPUs"},
                      {"gpu_gb", ParamKind::real, "24", 1, 1000, {}, "GPU memory, GB"}},
           .estimated_seconds = 0.1,
           .run = run_memory_real_model});
}

}  // namespace tl
