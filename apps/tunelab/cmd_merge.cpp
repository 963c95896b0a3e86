// `tunelab merge`: merge model folders with linear, slerp, task_arithmetic, ties, dare_linear/dare_ties,
// passthrough or moe (sparse upcycling: merge/moe_merge.hpp), from flags or from a mergekit YAML config (--config;
// a mergekit-moe YAML, which has `experts:`, runs the upcycling). Thin: builds a MergeConfig, loads the models,
// calls engine/merge (merge.hpp) and writes the result atomically. The methods are described in docs/merging.md.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "common.hpp"
#include "core/error.hpp"
#include "merge/merge_config.hpp"
#include "data/tasks.hpp"
#include "merge/moe_merge.hpp"

namespace tl::cli {

namespace {

struct MergeOptions {
    std::string method, base, out, config, normalize;
    std::vector<std::string> models;
    std::vector<double> weights, t, lambda, density;
    std::uint64_t seed = 0;
    int threads = 0;
    // moe
    std::int64_t top_k = 2;
    std::string router = "random";
    std::vector<std::string> prompts;  // per model: a task name or a text file (one prompt per line)
    float aux_coef = 0.01f;
};

// A --prompts value: a task name (its training prompts), else a text file with one prompt per line.
std::vector<std::string> prompts_of(const std::string& arg) {
    for (const TaskInfo& t : all_tasks())
        if (t.name == arg) return task_prompts(arg);
    std::ifstream in(arg);
    if (!in) throw Error("[cli] --prompts " + arg + " is neither a task name (see `tunelab tasks`) nor a readable file");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back("\n" + line);
    if (out.empty()) throw Error("[cli] --prompts file " + arg + " holds no prompts (one per line)");
    return out;
}

// One upcycling run, from the flags or from a mergekit-moe YAML: the expert folders with their prompts (empty for a
// random router).
struct MoeRun {
    std::string base;
    std::vector<std::string> models;
    std::vector<std::vector<std::string>> prompts;  // per model, or empty
    std::int64_t top_k = 2;
    RouterInit router = RouterInit::random;
    float aux_coef = 0.01f;
    std::uint64_t seed = 0;
};

void run_moe(const MoeRun& run, const std::string& out) {
    check_output_folder(out);
    const auto start = std::chrono::steady_clock::now();
    const ModelState base = read_model_state(run.base);
    std::vector<ModelState> states;
    for (const std::string& m : run.models) states.push_back(read_model_state(m));
    MoeMergeSpec spec;
    spec.base = &base;
    spec.top_k = run.top_k;
    spec.router = run.router;
    spec.aux_loss_coef = run.aux_coef;
    spec.seed = run.seed;
    for (std::size_t i = 0; i < states.size(); ++i)
        spec.experts.push_back({&states[i], run.prompts.empty() ? std::vector<std::string>{} : run.prompts[i],
                                run.models[i]});
    const ModelState merged = moe_merge(spec);
    write_model_state(out, merged);
    std::int64_t params = 0;
    for (const auto& [name, t] : merged.tensors) params += t.numel();
    std::printf("upcycled %zu models into a mixture of experts (top-%lld, %s router): %lld parameters, %lld layers; "
                "%.3f s\n",
                states.size(), (long long)run.top_k, std::string(router_init_name(run.router)).c_str(),
                (long long)params, (long long)merged.config.n_layer,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::printf("saved %s (train it with: tunelab finetune --base %s --task TASK --out DIR)\n", out.c_str(),
                out.c_str());
}

// `--method moe`: sparse upcycling, outside the tensor-by-tensor pipeline of merge_models (it runs the base).
void run_moe_merge(const MergeOptions& o) {
    if (o.base.empty()) throw Error("[cli] merge --method moe needs --base DIR (attention and embeddings come from it)");
    if (o.models.empty()) throw Error("[cli] merge --method moe needs --models DIR... (one expert per model)");
    if (!o.prompts.empty() && o.prompts.size() != o.models.size())
        throw Error("[cli] --prompts has " + std::to_string(o.prompts.size()) + " values for " +
                    std::to_string(o.models.size()) + " --models; give one (task name or file) per model");
    MoeRun run{o.base, o.models, {}, o.top_k, parse_router_init(o.router), o.aux_coef, o.seed};
    if (run.router == RouterInit::hidden && o.prompts.empty())
        throw Error("[cli] --router hidden needs --prompts, one task name or prompt file per model");
    for (const std::string& p : o.prompts) run.prompts.push_back(prompts_of(p));
    run_moe(run, o.out);
}

// `--config` with a mergekit-moe YAML (it has `experts:`).
void run_moe_config(const std::string& file, const std::string& out) {
    const MoeConfig c = read_moe_config(file);
    for (const std::string& n : c.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
    MoeRun run{c.base_model, {}, {}, c.top_k, c.router, 0.01f, 0};
    for (const MoeConfig::Expert& e : c.experts) {
        run.models.push_back(e.path);
        run.prompts.push_back(e.prompts);
    }
    if (run.router == RouterInit::random) run.prompts.clear();
    run_moe(run, out);
}

ParamSchedule schedule_of(const std::vector<double>& values) { return {{}, DepthGradient{values}}; }

// The flags as a MergeConfig, so both ways of asking run the same code.
MergeConfig config_from_flags(const MergeOptions& o) {
    if (o.method.empty()) throw Error("[cli] merge needs --method (or --config FILE.yaml)");
    if (o.models.empty()) throw Error("[cli] merge needs --models DIR... (or --config FILE.yaml)");
    MergeConfig c;
    c.method = parse_merge_method(o.method);
    if (!o.base.empty()) c.base_model = o.base;
    if (!o.weights.empty() && o.weights.size() != o.models.size())
        throw Error("[cli] --weights has " + std::to_string(o.weights.size()) + " values for " +
                    std::to_string(o.models.size()) + " --models; give one weight per model");
    if (o.density.size() > 1 && o.density.size() != o.models.size())
        throw Error("[cli] --density takes one value, or one per model; got " + std::to_string(o.density.size()) +
                    " for " + std::to_string(o.models.size()) + " models");
    for (std::size_t i = 0; i < o.models.size(); ++i) {
        ConfigModel m{o.models[i], {}, {}};
        if (!o.weights.empty()) m.weight = ParamSchedule::constant(o.weights[i]);
        if (!o.density.empty()) m.density = ParamSchedule::constant(o.density.size() == 1 ? o.density[0] : o.density[i]);
        c.models.push_back(std::move(m));
    }
    if (!o.t.empty()) c.t = schedule_of(o.t);  // several values: a per-layer gradient
    if (!o.lambda.empty()) c.lambda = schedule_of(o.lambda);
    if (o.normalize == "yes") c.normalize = Normalize::yes;
    if (o.normalize == "no") c.normalize = Normalize::no;
    c.seed = o.seed;
    if (c.base_model && c.method == MergeMethod::linear)
        c.notes.push_back("--base is not used by linear (it averages the --models)");
    return c;
}

void run_merge(const MergeOptions& o, bool has_flags) {
    if (!o.config.empty() && has_flags)
        throw Error("[cli] give either --config FILE.yaml or the method flags (--method, --models, ...), not both");
    if (o.config.empty() && o.method == "moe") return run_moe_merge(o);
    if (!o.config.empty() && is_moe_config(o.config)) return run_moe_config(o.config, o.out);
    const MergeConfig c = o.config.empty() ? config_from_flags(o) : read_merge_config(o.config);
    check_output_folder(o.out);  // before any work
    for (const std::string& n : c.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
    const auto start = std::chrono::steady_clock::now();
    std::map<std::string, ModelState> states;
    for (const std::string& p : config_model_paths(c)) states.emplace(p, read_model_state(p));
    MergeSpec spec = spec_from_config(c, states);
    spec.threads = o.threads;
    const auto merge_start = std::chrono::steady_clock::now();
    const ModelState merged = merge_models(spec);
    const double merge_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - merge_start).count();
    write_model_state(o.out, merged);
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::int64_t params = 0;
    for (const auto& [name, t] : merged.tensors) params += t.numel();
    const std::size_t merged_count = spec.models.size() - (uses_base(spec.method) ? 1 : 0);
    std::printf("merged %zu models%s with %s: %lld parameters, %lld layers; merge %.3f s, total %.3f s\n",
                merged_count, uses_base(spec.method) ? " onto the base" : "",
                std::string(merge_method_name(spec.method)).c_str(), (long long)params,
                (long long)merged.config.n_layer, merge_s, total_s);
    std::printf("saved %s (evaluate it with: tunelab eval --model %s --task TASK)\n", o.out.c_str(), o.out.c_str());
}

}  // namespace

void add_merge_command(CLI::App& app) {
    auto o = std::make_shared<MergeOptions>();
    CLI::App* cmd = app.add_subcommand("merge", "Merge model folders (linear, slerp, task_arithmetic, ties, dare, "
                                                "passthrough), from flags or a mergekit YAML config");
    cmd->add_option("--method", o->method,
                    "linear, slerp, task_arithmetic, ties, dare_linear, dare_ties (= dare), passthrough or moe");
    cmd->add_option("--models", o->models, "model folders to merge")->expected(1, -1);
    cmd->add_option("--weights", o->weights, "one weight per model (linear, task methods)")->expected(1, -1);
    cmd->add_option("--base", o->base, "base model folder: task vectors are model - base; slerp's t = 0 end");
    cmd->add_option("--t", o->t, "slerp factor in [0, 1]; several values: a gradient over depth")->expected(1, -1);
    cmd->add_option("--lambda", o->lambda, "task vector scale (< 0 removes a skill); several: a gradient")
        ->expected(1, -1);
    cmd->add_option("--density", o->density, "kept fraction in (0, 1] for ties/dare; one, or one per model")
        ->expected(1, -1);
    cmd->add_option("--normalize", o->normalize, "divide by the weight sum: yes or no (default: the method's)")
        ->check(CLI::IsMember({"yes", "no"}));
    cmd->add_option("--seed", o->seed, "seed for DARE's random drops")->capture_default_str();
    cmd->add_option("--config", o->config, "a mergekit YAML config instead of the flags");
    cmd->add_option("--out", o->out, "model folder to write")->required();
    cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)")->check(CLI::Range(0, 1024));
    cmd->add_option("--top-k", o->top_k, "moe: experts per token, 1..number of --models")->capture_default_str();
    cmd->add_option("--router", o->router, "moe: router init, random or hidden")->capture_default_str();
    cmd->add_option("--prompts", o->prompts, "moe --router hidden: per model, a task name or a prompt file")
        ->expected(1, -1);
    cmd->add_option("--aux-coef", o->aux_coef, "moe: load-balancing loss coefficient (router_aux_loss_coef)")
        ->capture_default_str();
    cmd->callback([o, cmd] {
        std::size_t flags = 0;
        for (const char* f : {"--method", "--models", "--weights", "--base", "--t", "--lambda", "--density"})
            flags += cmd->count(f);
        run_merge(*o, flags > 0);
    });
}

}  // namespace tl::cli
