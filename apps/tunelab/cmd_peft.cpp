// `tunelab merge-lora --base DIR --adapter DIR --out DIR`: loads a model folder and a LoRA PEFT folder, folds
// s (B A)^T into each targeted weight and writes a plain GPT-2 model folder (engine/peft/lora.hpp).
// With several --adapter folders they are first combined (engine/merge/lora_merge.hpp): cat stacks the factors
// (rank = the sum; exact), linear averages same-rank factors (cross terms appear), svd truncates the exact
// weighted sum back to --rank. --adapter-out writes the combined adapter as a PEFT LoRA folder; --out merges it.
#include <cstdio>

#include "common.hpp"
#include "core/error.hpp"
#include "merge/lora_merge.hpp"
#include "model/model_io.hpp"
#include "peft/lora_io.hpp"
#include "peft/peft_common.hpp"

namespace tl::cli {

namespace {

struct MergeLoraOptions {
    CommonOptions common;
    std::string base, out, adapter_out, combine = "cat";
    std::vector<std::string> adapters;
    std::vector<double> weights;
    std::int64_t rank = 0;
};

LoraCombine parse_combine(const std::string& s) {
    if (s == "cat") return LoraCombine::cat;
    if (s == "linear") return LoraCombine::linear;
    if (s == "svd") return LoraCombine::svd;
    throw Error("[cli] --combine must be cat, linear or svd; got '" + s + "'");
}

std::vector<float> host_values(const Gpt& model, const std::string& name) {
    const ParamInfo& p = model.params().at(name);
    std::vector<float> v(std::size_t(p.numel()));
    model.backend().copy_to_host(v.data(), model.param(p));
    return v;
}

// One adapter folder as factors: loaded onto the base (which validates names and shapes), read, detached again.
LoraFactorSet read_factors(const std::string& dir, Gpt& base, LoraConfig& config) {
    const LoraAdapter& lora = load_lora_adapter(dir, base);
    if (lora.config().variant == LoraVariant::dora)
        throw Error("[cli] " + dir + " is a DoRA adapter: its magnitudes do not combine as B A sums; merge it alone");
    config = lora.config();
    LoraFactorSet out;
    for (const LoraAdapter::Module& mod : lora.modules()) {
        LoraFactors f;
        f.A = {{config.r, mod.in}, host_values(base, mod.a_name())};
        f.B = {{mod.out, config.r}, host_values(base, mod.b_name())};
        f.scale = config.scale();
        out.emplace(mod.path, std::move(f));
    }
    base.detach_adapters();
    unfreeze_all(base);
    return out;
}

// Attaches the combined factors to `model` as a LoRA of their rank with scale 1 (alpha = r, standard scaling).
void attach_factors(Gpt& model, const LoraFactorSet& set, LoraConfig config) {
    config.r = int(set.begin()->second.rank());
    config.alpha = float(config.r);
    config.scaling = LoraScaling::standard;
    config.dropout = 0.0f;
    LoraAdapter& lora = lora_attach(model, config, 0);
    for (const LoraAdapter::Module& mod : lora.modules()) {
        const LoraFactors& f = set.at(mod.path);
        model.backend().copy_from_host(model.param(model.params().at(mod.a_name())), f.A.values.data());
        model.backend().copy_from_host(model.param(model.params().at(mod.b_name())), f.B.values.data());
    }
}

void run_merge_lora(const MergeLoraOptions& o) {
    if (o.out.empty() && o.adapter_out.empty()) throw Error("[cli] merge-lora needs --out DIR and/or --adapter-out DIR");
    const bool combines = o.adapters.size() > 1;
    if (!combines && (!o.adapter_out.empty() || !o.weights.empty() || o.rank != 0))
        throw Error("[cli] --adapter-out, --weights and --rank combine several adapters: give two or more --adapter");
    if (!o.weights.empty() && o.weights.size() != o.adapters.size())
        throw Error("[cli] --weights has " + std::to_string(o.weights.size()) + " values for " +
                    std::to_string(o.adapters.size()) + " adapters");
    const LoraMergeSpec spec{parse_combine(o.combine), o.weights, o.rank};
    if (spec.combine == LoraCombine::svd && o.rank < 1) throw Error("[cli] --combine svd needs --rank r (>= 1)");
    if (spec.combine != LoraCombine::svd && o.rank != 0) throw Error("[cli] --rank is for --combine svd only");
    if (!o.out.empty()) check_output_folder(o.out);
    if (!o.adapter_out.empty()) check_adapter_folder(o.adapter_out, "--adapter-out");
    auto backend = make_backend(o.common);
    LoadedModel base = load_model(o.base, *backend);
    if (!combines) {
        const LoraAdapter& lora = load_lora_adapter(o.adapters.front(), *base.model);
        std::printf("merging %s (r %d, alpha %g, scale %g, %zu modules) into %s\n", o.adapters.front().c_str(),
                    lora.config().r, double(lora.config().alpha), double(lora.config().scale()),
                    lora.modules().size(), o.base.c_str());
    } else {
        std::vector<LoraFactorSet> sets;
        LoraConfig config;
        for (const std::string& dir : o.adapters) sets.push_back(read_factors(dir, *base.model, config));
        const LoraFactorSet combined = merge_lora(sets, spec);  // tl::Error: other modules, ranks, shapes
        attach_factors(*base.model, combined, config);
        std::printf("combined %zu adapters with %s: rank %lld on %zu modules\n", o.adapters.size(), o.combine.c_str(),
                    (long long)combined.begin()->second.rank(), combined.size());
        if (!o.adapter_out.empty()) {
            save_lora_adapter(o.adapter_out, *base.model, o.base);
            std::printf("saved the combined adapter (PEFT folder) %s\n", o.adapter_out.c_str());
        }
    }
    if (o.out.empty()) return;
    lora_merge_and_detach(*base.model);
    for (const std::string& dir : o.adapters) base.meta.history.push_back({"merge-lora", dir, "lora", 0, 0, 0.0, 0.0});
    save_model(o.out, *base.model, base.meta);
    std::printf("saved %s\n", o.out.c_str());
}

}  // namespace

void add_merge_lora_command(CLI::App& app) {
    auto o = std::make_shared<MergeLoraOptions>();
    CLI::App* cmd = app.add_subcommand("merge-lora", "Merge LoRA adapters (PEFT folders) into their base, or combine them");
    cmd->add_option("--base", o->base, "model folder the adapters were trained on")->required();
    cmd->add_option("--adapter", o->adapters, "PEFT adapter folder; repeat (or comma-separate) to combine several")
        ->required()->delimiter(',');
    cmd->add_option("--combine", o->combine, "several adapters: cat (exact, rank = sum), linear (same ranks) or svd")
        ->capture_default_str();
    cmd->add_option("--weights", o->weights, "several adapters: one weight each (default 1)")->delimiter(',');
    cmd->add_option("--rank", o->rank, "--combine svd: the rank of the result");
    cmd->add_option("--out", o->out, "model folder to write (the base with the adapter(s) merged in)");
    cmd->add_option("--adapter-out", o->adapter_out, "several adapters: write the combined adapter (PEFT LoRA folder)");
    add_common_options(*cmd, o->common);
    cmd->callback([o] { run_merge_lora(*o); });
}

}  // namespace tl::cli
