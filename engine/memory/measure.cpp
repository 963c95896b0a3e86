// Measuring a real training run's memory: a fresh CPU backend (so its ledger holds this run only), a model, the
// method's preparation, a few tl::train steps on corpus batches, then the ledger's per-category peaks.
// Adding a method the engine learns to run (prompt tuning, say) is one row of kMeasurableMethods.
#include "memory/measure.hpp"

#include "core/backend.hpp"
#include "core/error.hpp"
#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "model/gpt.hpp"
#include "train/recipes.hpp"
#include "train/trainer.hpp"

namespace tl::memory {

namespace {

// The engine's recipes (train/recipes.hpp) freeze and attach what each method needs; this maps our method
// description onto theirs. A method without a row here is predicted only.
struct MeasurableMethod {
    MethodKind kind;
    tl::Method engine_method;
};

constexpr MeasurableMethod kMeasurableMethods[] = {
    {MethodKind::full, tl::Method::full},         {MethodKind::lora, tl::Method::lora},
    {MethodKind::partial, tl::Method::partial},   {MethodKind::bitfit, tl::Method::bitfit},
    {MethodKind::ia3, tl::Method::ia3},           {MethodKind::adapters, tl::Method::adapter},
    {MethodKind::qlora, tl::Method::qlora},
};

PeftOptions peft_options(const MethodSpec& m) {
    PeftOptions o;
    o.rank = int(m.lora_rank);
    o.targets = m.lora_targets == LoraTargets::all_linear ? std::vector<std::string>{"c_attn", "c_proj", "c_fc"}
                                                          : std::vector<std::string>{"c_attn", "attn.c_proj"};
    o.layers = m.partial_layers;
    o.bottleneck = m.adapter_size;
    return o;
}

const MeasurableMethod* find_measurable(MethodKind m) {
    for (const MeasurableMethod& row : kMeasurableMethods)
        if (row.kind == m) return &row;
    return nullptr;
}

std::int64_t seq_of(const MeasureSpec& s) { return s.seq > 0 ? s.seq : s.config.n_positions; }

void check_spec(const MeasureSpec& s) {
    validate_config(s.config, "memory measurement");
    if (s.batch < 1 || s.batch > 4096) throw Error("[memory] --batch must be in 1..4096, got " + std::to_string(s.batch));
    if (seq_of(s) < 1 || seq_of(s) > s.config.n_positions)
        throw Error("[memory] --seq must be in 1..n_positions (" + std::to_string(s.config.n_positions) + "), got " +
                    std::to_string(s.seq));
    if (s.steps < 1 || s.steps > 1000) throw Error("[memory] --steps must be in 1..1000, got " + std::to_string(s.steps));
}

}  // namespace

bool is_measurable(MethodKind m) { return find_measurable(m) != nullptr; }

Measurement measure_training(const MeasureSpec& spec) {
    check_spec(spec);
    const MeasurableMethod* method = find_measurable(spec.method.kind);
    if (!method)
        throw Error("[memory] the engine cannot run method '" + std::string(method_name(spec.method.kind)) +
                    "' yet; its prediction is available (tunelab memory --real, or without measuring)");
    auto backend = spec.device == Device::cuda ? make_cuda_backend({}) : make_cpu_backend({spec.threads});
    Gpt model(*backend, spec.config);
    model.init_gpt2(spec.seed);
    apply_method(model, method->engine_method, peft_options(spec.method), spec.seed);
    // Peaks from here on: QLoRA loads the fp32 base before quantizing it (bitsandbytes quantizes while loading, so
    // its fp32 copy never exists whole); for the other methods the setup's buffers persist and nothing changes.
    backend->ledger().reset_peaks();
    CorpusStream corpus(spec.seed);
    const int B = int(spec.batch), T = int(seq_of(spec));
    TrainConfig cfg;
    cfg.steps = spec.steps;
    const TrainSummary summary = train(model, cfg, [&] { return corpus_batch(corpus, B, T); });
    Measurement m;
    const MemoryLedger& ledger = backend->ledger();
    for (int c = 0; c < kMemCategoryCount; ++c) m.peak[std::size_t(c)] = ledger.peak(MemCategory(c));
    m.peak_total = ledger.peak_total();
    m.trainable = model.params().trainable_count();
    m.steps = std::int64_t(summary.losses.size());
    return m;
}

Comparison compare_on_engine(const MeasureSpec& spec, Measure measure) {
    check_spec(spec);
    const ArchShape shape = shape_of(spec.config, spec.name);
    Comparison out;
    out.model = spec.name;
    out.method = std::string(method_name(spec.method.kind));
    out.course = {double(count_params(shape).total()), 4.0};
    out.prediction = predict_training(shape, engine_setup(spec.method, spec.batch, seq_of(spec)));
    if (measure == Measure::yes && is_measurable(spec.method.kind)) out.measurement = measure_training(spec);
    for (int c = 0; c < kMemCategoryCount; ++c) {
        CategoryRow row{MemCategory(c), out.prediction.by_category(MemCategory(c)), std::nullopt};
        if (out.measurement) row.measured = out.measurement->peak[std::size_t(c)];
        out.rows.push_back(row);
    }
    return out;
}

}  // namespace tl::memory
