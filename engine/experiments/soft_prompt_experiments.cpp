// soft_prompt_compare (lesson 07-soft-prompts): hard and soft prompts on one task, from one start model, with
// the same data, seed and step budget: the start zero-shot, a hard prompt (a text before every prompt, no
// training), prompt tuning, P-tuning, prefix tuning, the hard prompt plus prompt tuning, and LoRA as the
// reference.
// Accuracy, loss, trainable parameters and time per variant, and the tuned prompt's nearest vocabulary
// tokens. Each variant runs on a fresh CPU backend from a copy of the start. The modules:
// engine/peft/soft_prompt.hpp; docs/peft.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "data/tasks.hpp"
#include "data/tokenizer.hpp"
#include "experiments/all_experiments.hpp"
#include "experiments/base_models.hpp"
#include "experiments/experiment_backend.hpp"
#include "merge/state_dict.hpp"
#include "train/evaluate.hpp"
#include "train/recipes.hpp"

namespace tl {

namespace {

enum class Training { none, finetune };
enum class HardPrompt { without, with };

struct VariantInfo {
    const char* name;  // the `variants` argument and the table's `method` column
    Method method;     // what trains (unused without training)
    Training training;
    HardPrompt hard;
};
constexpr VariantInfo kVariants[] = {
    {"zero_shot", Method::full, Training::none, HardPrompt::without},
    {"hard_prompt", Method::full, Training::none, HardPrompt::with},
    {"prompt", Method::prompt, Training::finetune, HardPrompt::without},
    {"ptuning", Method::ptuning, Training::finetune, HardPrompt::without},
    {"prefix", Method::prefix, Training::finetune, HardPrompt::without},
    {"hard+prompt", Method::prompt, Training::finetune, HardPrompt::with},
    {"lora", Method::lora, Training::finetune, HardPrompt::without},
};

std::vector<const VariantInfo*> parse_variants(const std::string& text) {
    std::vector<const VariantInfo*> out;
    std::stringstream in(text);
    for (std::string name; std::getline(in, name, ',');) {
        if (name.empty()) continue;
        const VariantInfo* found = nullptr;
        std::string known;
        for (const VariantInfo& v : kVariants) {
            if (name == v.name) found = &v;
            known += std::string(known.empty() ? "" : ",") + v.name;
        }
        if (!found)
            throw Error("[experiments] soft_prompt_compare: unknown variant '" + name +
                        "'; available: " + known);
        out.push_back(found);
    }
    if (out.empty())
        throw Error("[experiments] soft_prompt_compare needs variants, e.g. variants=zero_shot,prompt");
    return out;
}

std::int64_t example_tokens(const Example& e) {
    return std::int64_t(prompt_tokens(e).size() + encode(e.response).size());
}

// Every variant sees the same examples: those that fit the context with the virtual tokens and the hard
// prompt (on tiny all do; on nano, in `--quick` lessons, the longer ones are left out and counted).
struct ExampleSets {
    std::vector<Example> train, test;
    std::int64_t dropped_train = 0, dropped_test = 0;
};

ExampleSets fitting_examples(const ExperimentArgs& a, std::int64_t budget) {
    const TaskInfo& task = find_task(a.choice("task"));
    ExampleSets s;
    auto keep = [&](const std::vector<Example>& all, std::vector<Example>& kept, std::int64_t& dropped) {
        for (const Example& e : all) {
            if (example_tokens(e) <= budget)
                kept.push_back(e);
            else
                ++dropped;
        }
    };
    keep(task_examples(task, Split::train, 4000, std::uint64_t(a.integer("seed"))), s.train, s.dropped_train);
    keep(task_examples(task, Split::test, int(a.integer("eval_n")), 99), s.test, s.dropped_test);
    return s;
}

// A backslash and n in the argument stand for a line break: lesson blocks and command lines hold one line.
std::string unescape_newlines(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
            out += '\n';
            ++i;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::vector<Example> with_hard_prompt(std::vector<Example> examples, const std::string& hard) {
    for (Example& e : examples) e.prompt = hard + e.prompt;  // fed as "\n" + hard + prompt
    return examples;
}

// Prompts: the hard prompt's text and the virtual tokens every soft variant uses.
struct Prompts {
    std::string hard;
    std::int64_t virtual_tokens = 0;
};

FinetuneSpec spec_of(const ExperimentArgs& a, Method method, const Prompts& prompts) {
    FinetuneSpec spec;
    spec.task = a.choice("task");
    spec.method = method;
    spec.steps = a.integer("steps");
    spec.lr = a.real("lr") > 0 ? float(a.real("lr")) : default_lr(method);
    spec.batch = int(a.integer("batch"));
    spec.seed = std::uint64_t(a.integer("seed"));
    spec.peft.rank = int(a.integer("rank"));
    spec.peft.alpha = 2.0f * float(spec.peft.rank);  // alpha = 2r, as lora_rank_sweep
    SoftPromptConfig& sp = spec.peft.soft_prompt;
    sp.virtual_tokens = prompts.virtual_tokens;
    sp.init = parse_prompt_init(a.choice("prompt_init"));
    sp.init_text = prompts.hard;  // init=text starts the virtual tokens at the hard prompt's token embeddings
    sp.encoder_hidden = a.integer("encoder_hidden");
    spec.peft.prefix_projection = a.choice("prefix_projection") == "yes" ? PrefixProjection::mlp : PrefixProjection::none;
    return spec;
}

// Each virtual token's nearest vocabulary token by cosine similarity to the rows of wte: how Lester et al.
// read tuned prompts. Shown as bytes; line breaks, controls and end-of-text escaped.
std::string nearest_tokens(const Gpt& model) {
    const std::vector<float> P = soft_prompt_values(model);
    const std::int64_t C = model.config().n_embd, V = model.config().vocab_size, n = model.virtual_tokens();
    std::vector<float> wte(std::size_t(V * C));
    model.backend().copy_to_host(wte.data(), CVecView(model.wte().data, V * C));
    auto dot = [&](const float* x, const float* y) {
        double s = 0;
        for (std::int64_t c = 0; c < C; ++c) s += double(x[c]) * double(y[c]);
        return s;
    };
    std::string out;
    for (std::int64_t j = 0; j < n; ++j) {
        const float* p = P.data() + j * C;
        std::int64_t best = 0;
        double best_cos = -2;
        for (std::int64_t v = 0; v < V; ++v) {
            const float* w = wte.data() + v * C;
            const double cos = dot(p, w) / (std::sqrt(dot(p, p) * dot(w, w)) + 1e-30);
            if (cos > best_cos) best_cos = cos, best = v;
        }
        char buf[48];
        if (best == kEndOfText)
            std::snprintf(buf, sizeof buf, "<eot>");
        else if (best == '\n')
            std::snprintf(buf, sizeof buf, "\\n");
        else if (best < 32 || best > 126)
            std::snprintf(buf, sizeof buf, "<0x%02x>", unsigned(best));
        else
            std::snprintf(buf, sizeof buf, "%c", char(best));
        out += std::string(j ? " " : "") + "'" + buf + "' (" +
               std::to_string(int(std::lround(100 * best_cos))) + "%)";
    }
    return out;
}

struct VariantRun {
    EvalResult eval;
    float lr = 0;
    std::int64_t trainable = 0, total = 0, steps = 0, peak_bytes = 0;
    double train_seconds = 0, eval_seconds = 0;
    std::string nearest;  // soft prompts only
    bool is_cancelled = false;
};

VariantRun run_variant(const VariantInfo& v, const ModelState& start, const ExperimentArgs& a,
                       const ExampleSets& sets, const Prompts& prompts, RunContext& ctx) {
    const std::string& hard = prompts.hard;
    std::unique_ptr<Backend> be = experiment_backend(ctx);
    Gpt model(*be, start.config);
    copy_state_into(model, start);
    const bool has_hard = v.hard == HardPrompt::with;
    VariantRun r;
    r.total = model.params().total();
    if (v.training == Training::finetune) {
        const FinetuneSpec spec = spec_of(a, v.method, prompts);
        be->ledger().reset_peaks();
        apply_method(model, spec.method, spec.peft, spec.seed);
        r.lr = spec.lr;
        r.trainable = model.params().trainable_count();
        r.total = model.params().total();
        const TrainSummary s = finetune_on(
            model, spec, has_hard ? with_hard_prompt(sets.train, hard) : sets.train, nullptr, ctx.cancel);
        r.train_seconds = s.seconds;
        r.steps = std::int64_t(s.losses.size());
        r.is_cancelled = s.is_cancelled;
        r.peak_bytes = be->ledger().peak_total();
        if (v.method == Method::lora) lora_merge_and_detach(model);  // the KV-cache decoder runs plain GPT-2
    }
    if (soft_prompt_find(model)) r.nearest = nearest_tokens(model);
    EvalOptions eo;
    eo.keep_samples = 4;
    const auto t0 = std::chrono::steady_clock::now();
    r.eval = evaluate(model, has_hard ? with_hard_prompt(sets.test, hard) : sets.test, eo);
    r.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

// The start: the base, or the base fully fine-tuned on task_a (cached; the same model method_compare uses).
ModelState start_state(const ExperimentArgs& a, Backend& be, const ModelState& base, RunContext& ctx,
                       bool& cancelled) {
    if (a.choice("start") == "base") return base;
    const FinetuneSpec first = task_a_start_spec(a);
    ctx.progress(0, 1, "fine-tune the start on " + first.task);
    BaseModel m = obtain_finetuned(be, base_spec_from(a), first, ctx);
    cancelled = m.curve.is_cancelled;
    return state_of(*m.model);
}

// What every variant shares: the prompts, the examples that fit, and the variants that still run.
struct Plan {
    Prompts prompts;
    ExampleSets sets;
    std::vector<const VariantInfo*> variants;
};

// virtual_tokens is capped at a quarter of the context, so the task keeps three quarters of every row: 32 on
// tiny, 8 on nano (where `--quick` lessons run steps written for tiny). A row holds n_positions + 1 tokens,
// less the virtual tokens and the hard prompt where they are used; on a small preset the hard-prompt variants
// may not fit at all and are dropped. The result says when either applies.
Plan plan_run(const ExperimentArgs& a, std::vector<const VariantInfo*> variants, const std::string& hard,
              std::int64_t positions, Result& r) {
    const std::int64_t asked = a.integer("virtual_tokens");
    Plan p{{hard, std::min(asked, std::max<std::int64_t>(1, positions / 4))}, {}, std::move(variants)};
    if (p.prompts.virtual_tokens < asked)
        r.texts.push_back(
            {"virtual_tokens_capped", "virtual_tokens " + std::to_string(asked) + " lowered to " +
                                          std::to_string(p.prompts.virtual_tokens) + ", a quarter of " +
                                          std::to_string(positions) + " positions"});
    auto is_soft = [](const VariantInfo* v) {
        return v->method == Method::prompt || v->method == Method::ptuning || v->method == Method::prefix;
    };
    auto is_hard = [](const VariantInfo* v) { return v->hard == HardPrompt::with; };
    auto any = [&](auto pred) { return std::any_of(p.variants.begin(), p.variants.end(), pred); };
    const std::int64_t n = any(is_soft) ? p.prompts.virtual_tokens : 0;
    const std::int64_t hard_len = any(is_hard) ? std::int64_t(encode(hard).size()) : 0;
    std::int64_t budget = positions + 1 - n - hard_len;
    p.sets = fitting_examples(a, budget);
    if (p.sets.test.empty() && hard_len > 0) {
        std::erase_if(p.variants, is_hard);
        r.texts.push_back({"skipped_variants", "the hard prompt (" + std::to_string(hard_len) +
                                                   " tokens) leaves no test example room in " +
                                                   std::to_string(positions) + " positions"});
        budget = positions + 1 - n;
        p.sets = fitting_examples(a, budget);
    }
    if (p.sets.test.empty() || p.sets.train.empty())
        throw Error("[experiments] soft_prompt_compare: no example of '" + a.choice("task") + "' fits " +
                    std::to_string(positions) + " positions with " + std::to_string(n) +
                    " virtual tokens; lower virtual_tokens or use a preset with a longer context");
    if (p.sets.dropped_test > 0)
        r.texts.push_back({"dropped_examples", std::to_string(p.sets.dropped_train) + " train and " +
                                                   std::to_string(p.sets.dropped_test) +
                                                   " test examples longer than " + std::to_string(budget) +
                                                   " tokens left out"});
    return p;
}

// One row of the "methods" table and one column of "samples" per variant.
void add_variant(Result& r, Table& t, Table& samples, std::size_t i, const VariantInfo& v,
                 const VariantRun& m) {
    const double trainable = double(m.trainable);
    t.rows.push_back({std::string(v.name), trainable, 100.0 * trainable / double(m.total), 4.0 * trainable,
                      double(m.lr), 100 * m.eval.accuracy, m.eval.loss, double(m.steps), m.train_seconds,
                      m.steps > 0 ? 1000 * m.train_seconds / double(m.steps) : 0.0, m.eval_seconds,
                      double(m.peak_bytes) / (1024.0 * 1024.0)});
    r.series[0].x.push_back(double(i)), r.series[0].y.push_back(100 * m.eval.accuracy);
    samples.columns.push_back(v.name);
    for (std::size_t k = 0; k < samples.rows.size(); ++k)
        samples.rows[k].push_back(k < m.eval.samples.size() ? m.eval.samples[k].got : std::string());
    if (!m.nearest.empty()) r.texts.push_back({std::string("nearest_tokens_") + v.name, m.nearest});
    if (v.training == Training::none && v.hard == HardPrompt::without)
        r.scalars.push_back({"accuracy_before", 100 * m.eval.accuracy, "%"});
}

Result run_soft_prompt_compare(const ExperimentArgs& a, RunContext& ctx) {
    std::vector<const VariantInfo*> variants = parse_variants(a.text("variants"));
    const std::string hard = unescape_newlines(a.text("hard_prompt"));
    if (hard.empty() && a.choice("prompt_init") == "text")
        throw Error(
            "[experiments] soft_prompt_compare: prompt_init=text starts the soft prompt at hard_prompt's "
            "tokens, and hard_prompt is empty; give a hard_prompt or prompt_init=sample_vocab");
    std::unique_ptr<Backend> backend = experiment_backend(ctx);
    BaseModel base = obtain_base(*backend, base_spec_from(a), ctx);
    Result r;
    r.is_cancelled = base.curve.is_cancelled;
    if (r.is_cancelled) return r;
    const ModelState start = start_state(a, *backend, state_of(*base.model), ctx, r.is_cancelled);
    if (r.is_cancelled) return r;
    const Plan plan = plan_run(a, std::move(variants), hard, start.config.n_positions, r);

    Table t{"methods",
            {"method", "trainable", "trainable_percent", "adapter_bytes", "lr", "accuracy_after",
             "loss_after", "steps", "train_seconds", "ms_per_step", "eval_seconds", "peak_mib"},
            {}};
    Table samples{"samples", {"prompt", "expected"}, {}};
    for (std::size_t k = 0; k < plan.sets.test.size() && k < 4; ++k) {
        std::string expected = plan.sets.test[k].response;
        if (!expected.empty() && expected.back() == '\n') expected.pop_back();
        samples.rows.push_back({plan.sets.test[k].prompt, expected});
    }
    r.series.push_back({"accuracy", "method", "%", {}, {}});
    for (std::size_t i = 0; i < plan.variants.size() && !ctx.is_cancelled(); ++i) {
        const VariantInfo& v = *plan.variants[i];
        ctx.progress(std::int64_t(i), std::int64_t(plan.variants.size()), v.name);
        const VariantRun m = run_variant(v, start, a, plan.sets, plan.prompts, ctx);
        if (m.is_cancelled) break;
        add_variant(r, t, samples, i, v, m);
    }
    r.is_cancelled = ctx.is_cancelled();
    for (auto& row : samples.rows) row.resize(samples.columns.size(), std::string());
    r.scalars.push_back({"virtual_tokens", double(plan.prompts.virtual_tokens), "tokens"});
    r.scalars.push_back({"hard_prompt_tokens", double(encode(hard).size()), "tokens"});
    r.scalars.push_back({"test_examples", double(plan.sets.test.size()), ""});
    r.scalars.push_back({"total_params", double(parameter_count(start.config)), ""});
    r.texts.push_back({"hard_prompt", hard});
    r.tables.push_back(std::move(t));
    r.tables.push_back(std::move(samples));
    return r;
}

}  // namespace

void register_soft_prompt_experiments(ExperimentRegistry& reg) {
    std::vector<std::string> tasks;
    for (const TaskInfo& t : all_tasks()) tasks.emplace_back(t.name);
    std::string all_variants;
    for (const VariantInfo& v : kVariants)
        all_variants += std::string(all_variants.empty() ? "" : ",") + v.name;
    ExperimentInfo e{
        "soft_prompt_compare",
        "Hard prompts, soft prompts and LoRA on one task",
        "From one start model, on the same task, data, seed and steps: zero-shot, a hard prompt before "
        "every prompt, prompt tuning, P-tuning, prefix tuning, the hard prompt plus prompt tuning, and LoRA; accuracy, "
        "trainable parameters and time.",
        {},
        25,  // tiny at the defaults, the base cached: 20 s measured on 2 cores
        run_soft_prompt_compare};
    add_base_params(e.params);
    auto& p = e.params;
    p.push_back({"task", ParamKind::choice, "reverse", 0, 0, tasks, "the task to learn"});
    p.push_back({"start",
                 ParamKind::choice,
                 "base",
                 0,
                 0,
                 {"base", "task_a"},
                 "start from the base, or from a full fine-tune on task_a"});
    p.push_back(
        {"task_a", ParamKind::choice, "sort", 0, 0, tasks, "start=task_a: the task the start learned"});
    p.push_back({"a_steps", ParamKind::integer, "300", 1, 100000, {}, "start=task_a: its fine-tuning steps"});
    p.push_back(
        {"steps", ParamKind::integer, "60", 1, 100000, {}, "optimizer steps for every trained variant"});
    p.push_back({"lr", ParamKind::real, "0", 0, 1, {}, "peak learning rate; 0: each method's default"});
    p.push_back({"batch", ParamKind::integer, "16", 1, 256, {}, "rows per step"});
    p.push_back({"seed", ParamKind::integer, "1", 0, 1000000, {}, "data order and init seed"});
    p.push_back({"eval_n", ParamKind::integer, "100", 1, 10000, {}, "test examples scored"});
    p.push_back({"virtual_tokens",
                 ParamKind::integer,
                 "20",
                 1,
                 4096,
                 {},
                 "soft prompt length n (at most a quarter of the context)"});
    p.push_back({"prompt_init",
                 ParamKind::choice,
                 "text",
                 0,
                 0,
                 {"text", "sample_vocab", "random"},
                 "soft prompts' start: the hard prompt's tokens (prefix: their keys and values), random tokens, or N(0, 1)"});
    p.push_back({"encoder_hidden", ParamKind::integer, "0", 0, 65536, {}, "P-tuning (and prefix MLP) width (0: n_embd)"});
    p.push_back({"prefix_projection", ParamKind::choice, "no", 0, 0, {"no", "yes"},
                 "prefix: through the reparameterisation MLP (PEFT's prefix_projection)"});
    p.push_back({"rank", ParamKind::integer, "8", 1, 4096, {}, "LoRA rank (alpha = 2r)"});
    p.push_back({"hard_prompt",
                 ParamKind::text,
                 "Q: reverse abc\\nA: cba\\n",
                 0,
                 0,
                 {},
                 "text put before every prompt (\\n: a line break)"});
    p.push_back({"variants", ParamKind::text, all_variants, 0, 0, {}, "variants, comma-separated"});
    reg.add(std::move(e));
}

}  // namespace tl
