// The experiment registry: named, parameterised runs that return a Result (lessons/lib/trace/result.hpp). One
// experiment serves the lesson step, the GUI slider, the CLI (`tunelab run NAME key=value ...`) and the benches.
// This header holds no engine types, so the lesson library and the viewer can include it.
//
// HOW TO ADD EXPERIMENTS FOR A MODULE (e.g. formats):
//   1. Write engine/experiments/<module>_experiments.cpp with
//        void register_<module>_experiments(ExperimentRegistry& r) {
//            r.add({.name = "format_table", .title = "...", .description = "...",
//                   .params = {{"format", ParamKind::choice, "bf16", 0, 0, {"fp32", "bf16", ...}, "which format"},
//                              {"steps", ParamKind::integer, "100", 1, 5000, {}, "training steps"}},
//                   .estimated_seconds = 2,
//                   .run = [](const ExperimentArgs& a, RunContext& ctx) { Result r; ...; return r; }});
//        }
//   2. Declare it in engine/experiments/all_experiments.hpp and call it in register_all_experiments()
//      (all_experiments.cpp); add the .cpp to tl_experiments' SOURCES in engine/CMakeLists.txt.
//   3. Inside run: read arguments with a.integer("steps"), a.real("lr"), a.choice("format"), a.text("x");
//      report progress with ctx.progress(done, total, "label"); stream live points (the GUI plots them while the
//      run goes on) with ctx.point("train_loss", step, loss); stop early when ctx.is_cancelled() (set
//      r.is_cancelled = true). Put everything a view or a table needs into the Result; keep names stable, the
//      lesson text and the views refer to them. Make backends with experiment_backend(ctx) (ctx.device, ctx.threads).
//   4. Name arguments by the shared conventions where they apply — `preset`, `base_steps`, `base_seed` (the base
//      model, see base_models.hpp), `steps`, `eval_n`, `task`, `lr`, `seed` — because `tunelab lesson --quick`
//      (tests and CI run every lesson that way) sets preset=nano base_steps=150 steps=60 eval_n=20 wherever an
//      experiment declares them. Make sure your experiment finishes in seconds under those settings.
//   5. An experiment must be a pure function of its arguments (seed included): results are cached on disk under a
//      hash of (name, arguments, engine version). Bump kEngineRevision (engine_version.hpp) when an engine change
//      alters results.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "trace/result.hpp"

namespace tl {

enum class ParamKind { integer, real, log_real, choice, text };

// One argument an experiment takes: its kind, default and valid range (inclusive) or choices.
struct ParamSpec {
    std::string name;
    ParamKind kind = ParamKind::integer;
    std::string default_value;
    double min = 0, max = 0;               // integer / real / log_real
    std::vector<std::string> choices;      // choice
    std::string help;
};

// Validated arguments: every declared parameter present (defaults filled in), in range, of its kind.
class ExperimentArgs {
public:
    ExperimentArgs() = default;
    ExperimentArgs(std::map<std::string, std::string> values, std::vector<ParamSpec> specs)
        : values_(std::move(values)), specs_(std::move(specs)) {}
    std::int64_t integer(const std::string& name) const;
    double real(const std::string& name) const;
    const std::string& choice(const std::string& name) const { return raw(name); }
    const std::string& text(const std::string& name) const { return raw(name); }
    const std::string& raw(const std::string& name) const;  // InternalError for an undeclared name: a bug
    const std::map<std::string, std::string>& values() const { return values_; }

private:
    std::map<std::string, std::string> values_;
    std::vector<ParamSpec> specs_;
};

struct Progress {
    std::int64_t done = 0, total = 0;
    std::string label;
};

struct LivePoint {
    std::string series;
    double x = 0, y = 0;
};

// What a running experiment may call back into. All callbacks are optional and run on the experiment's thread.
struct RunContext {
    std::function<void(const Progress&)> on_progress;
    std::function<void(const LivePoint&)> on_point;
    const std::atomic<bool>* cancel = nullptr;
    int threads = 0;  // 0: the machine's cores
    // "cpu" or "cuda": where experiments train and evaluate (experiment_backend.hpp). Results of a CUDA run are
    // cached apart from the CPU's. The simulated-precision experiments run on the CPU whatever this says.
    std::string device = "cpu";

    void progress(std::int64_t done, std::int64_t total, const std::string& label) const {
        if (on_progress) on_progress({done, total, label});
    }
    void point(const std::string& series, double x, double y) const {
        if (on_point) on_point({series, x, y});
    }
    bool is_cancelled() const { return cancel && cancel->load(); }
};

using ExperimentFn = std::function<Result(const ExperimentArgs&, RunContext&)>;

struct ExperimentInfo {
    std::string name;          // lower_snake, e.g. "lora_rank_sweep"
    std::string title;         // one line for lists
    std::string description;   // what it measures, in a sentence or two
    std::vector<ParamSpec> params;
    double estimated_seconds = 1;   // on 2 laptop cores with defaults, for the lesson list
    ExperimentFn run;
};

class ExperimentRegistry {
public:
    void add(ExperimentInfo info);                      // InternalError on a duplicate name
    const ExperimentInfo* find(const std::string& name) const;
    const ExperimentInfo& at(const std::string& name) const;  // tl::Error listing the known names
    const std::vector<ExperimentInfo>& all() const { return infos_; }

    // Fills defaults and validates kinds and ranges; tl::Error naming the experiment, argument and rule.
    ExperimentArgs resolve(const std::string& name, const std::map<std::string, std::string>& given) const;

private:
    std::vector<ExperimentInfo> infos_;
};

// Every experiment of the engine, registered once on first use (all_experiments.cpp).
const ExperimentRegistry& experiments();

// Runs an experiment: resolves the arguments, times it, fills the Result's experiment, args and provenance.
Result run_experiment(const std::string& name, const std::map<std::string, std::string>& given, RunContext& ctx);

std::string engine_version();  // "0.1.0+rN": the project version and kEngineRevision
std::string machine_description(int threads);

}  // namespace tl
