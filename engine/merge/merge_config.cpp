// mergekit YAML -> MergeConfig (yaml-cpp), and MergeConfig + loaded models -> MergeSpec.
#include "merge/merge_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "io/atomic_file.hpp"

namespace tl {

namespace {

constexpr std::uint64_t kMaxConfigBytes = 1 << 20;

struct Ctx {
    std::string source;
    [[noreturn]] void fail(const std::string& what) const { throw Error("[merge] " + source + ": " + what); }
};

void check_keys(const YAML::Node& map, std::initializer_list<std::string_view> known, const std::string& where,
                const Ctx& ctx) {
    if (!map.IsMap()) ctx.fail(where + " must be a mapping");
    for (const auto& kv : map) {
        const std::string key = kv.first.as<std::string>();
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            std::string list;
            for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
            ctx.fail("unknown key '" + key + "' in " + where + "; tunelab reads: " + list);
        }
    }
}

double number(const YAML::Node& n, const std::string& what, const Ctx& ctx) {
    if (!n.IsScalar()) ctx.fail(what + " must be a number");
    try {
        return n.as<double>();
    } catch (const YAML::Exception&) {
        ctx.fail(what + " must be a number, got '" + n.Scalar() + "'");
    }
}

DepthGradient gradient(const YAML::Node& n, const std::string& what, const Ctx& ctx) {
    DepthGradient g;
    if (n.IsScalar()) {
        g.anchors = {number(n, what, ctx)};
    } else if (n.IsSequence() && n.size() > 0) {
        g.anchors.clear();
        for (const auto& v : n) g.anchors.push_back(number(v, what + " (a gradient list)", ctx));
    } else {
        ctx.fail(what + " must be a number or a non-empty list of numbers");
    }
    return g;
}

// A number, a gradient list, or a list of {filter, value} entries (the one without a filter is the default).
ParamSchedule schedule(const YAML::Node& n, const std::string& what, const Ctx& ctx) {
    if (!n.IsSequence() || n.size() == 0 || !n[0].IsMap()) return {{}, gradient(n, what, ctx)};
    ParamSchedule s;
    bool has_default = false;
    for (const auto& e : n) {
        check_keys(e, {"filter", "value"}, what + " entries", ctx);
        if (!e["value"]) ctx.fail(what + ": every entry needs a value");
        const DepthGradient g = gradient(e["value"], what, ctx);
        if (e["filter"]) {
            s.by_filter.emplace_back(e["filter"].as<std::string>(), g);
        } else {
            s.fallback = g;
            has_default = true;
        }
    }
    if (!has_default) ctx.fail(what + " needs an entry without a filter (the value for other tensors)");
    return s;
}

void model_parameters(const YAML::Node& p, std::optional<ParamSchedule>& weight,
                      std::optional<ParamSchedule>& density, const std::string& where, const Ctx& ctx) {
    if (!p) return;
    check_keys(p, {"weight", "density"}, where + " parameters", ctx);
    if (p["weight"]) weight = schedule(p["weight"], "weight", ctx);
    if (p["density"]) density = schedule(p["density"], "density", ctx);
}

void global_parameters(const YAML::Node& p, MergeConfig& c, const Ctx& ctx) {
    check_keys(p, {"t", "lambda", "normalize", "weight", "density", "int8_mask"}, "parameters", ctx);
    if (p["t"]) c.t = schedule(p["t"], "t", ctx);
    if (p["lambda"]) c.lambda = schedule(p["lambda"], "lambda", ctx);
    if (p["weight"]) c.weight = schedule(p["weight"], "weight", ctx);
    if (p["density"]) c.density = schedule(p["density"], "density", ctx);
    if (p["normalize"]) {
        try {
            c.normalize = p["normalize"].as<bool>() ? Normalize::yes : Normalize::no;
        } catch (const YAML::Exception&) {
            ctx.fail("parameters.normalize must be true or false");
        }
    }
    if (p["int8_mask"]) c.notes.push_back("parameters.int8_mask ignored: tunelab computes masks in float");
}

std::string model_path(const YAML::Node& n, const std::string& where, const Ctx& ctx) {
    if (!n || !n.IsScalar() || n.Scalar().empty()) ctx.fail(where + " needs a 'model' path");
    return n.Scalar();
}

void parse_slices(const YAML::Node& slices, MergeConfig& c, const Ctx& ctx) {
    if (!slices.IsSequence() || slices.size() == 0) ctx.fail("slices must be a non-empty list");
    for (const auto& sl : slices) {
        check_keys(sl, {"sources"}, "a slice", ctx);
        if (!sl["sources"] || !sl["sources"].IsSequence()) ctx.fail("every slice needs a list of sources");
        std::vector<ConfigSource> sources;
        for (const auto& src : sl["sources"]) {
            check_keys(src, {"model", "layer_range", "parameters"}, "a slice source", ctx);
            ConfigSource s;
            s.path = model_path(src["model"], "a slice source", ctx);
            const YAML::Node r = src["layer_range"];
            if (!r || !r.IsSequence() || r.size() != 2) ctx.fail("layer_range must be [begin, end]");
            s.layers = {std::int64_t(number(r[0], "layer_range", ctx)), std::int64_t(number(r[1], "layer_range", ctx))};
            model_parameters(src["parameters"], s.weight, s.density, "a slice source's", ctx);
            sources.push_back(std::move(s));
        }
        c.slices.push_back(std::move(sources));
    }
}

}  // namespace

MergeConfig parse_merge_config(std::string_view text, std::string_view source_name) {
    const Ctx ctx{std::string(source_name)};
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        ctx.fail(std::string("not valid YAML: ") + e.what());
    }
    check_keys(root, {"merge_method", "base_model", "models", "slices", "parameters", "dtype", "tokenizer_source",
                      "random_seed"},
               "the top level", ctx);
    MergeConfig c;
    if (!root["merge_method"]) ctx.fail("merge_method is missing");
    c.method = parse_merge_method(root["merge_method"].as<std::string>());
    if (root["base_model"]) c.base_model = model_path(root["base_model"], "base_model", ctx);
    if (root["models"] && root["slices"]) ctx.fail("give either models or slices, not both");
    if (root["models"]) {
        if (!root["models"].IsSequence() || root["models"].size() == 0) ctx.fail("models must be a non-empty list");
        for (const auto& m : root["models"]) {
            check_keys(m, {"model", "parameters"}, "a models entry", ctx);
            ConfigModel cm{model_path(m["model"], "a models entry", ctx), {}, {}};
            model_parameters(m["parameters"], cm.weight, cm.density, "a model's", ctx);
            c.models.push_back(std::move(cm));
        }
    }
    if (root["slices"]) parse_slices(root["slices"], c, ctx);
    if (c.models.empty() && c.slices.empty()) ctx.fail("give the models to merge under models or slices");
    if (root["parameters"]) global_parameters(root["parameters"], c, ctx);
    if (root["random_seed"]) c.seed = std::uint64_t(number(root["random_seed"], "random_seed", ctx));
    if (root["dtype"])
        c.notes.push_back("dtype " + root["dtype"].as<std::string>() + " ignored: tunelab merges and writes float32");
    if (root["tokenizer_source"])
        c.notes.push_back("tokenizer_source ignored: every tunelab model uses the same byte tokenizer");
    return c;
}

MergeConfig read_merge_config(const std::filesystem::path& file) {
    return parse_merge_config(read_file_text(file, kMaxConfigBytes), file.string());
}

namespace {

YAML::Node load_yaml(std::string_view text, const Ctx& ctx) {
    try {
        return YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        ctx.fail(std::string("not valid YAML: ") + e.what());
    }
}

std::vector<std::string> prompt_list(const YAML::Node& n, const std::string& where, const Ctx& ctx) {
    if (!n.IsSequence()) ctx.fail(where + " must be a list of strings");
    std::vector<std::string> out;
    for (const auto& p : n) {
        if (!p.IsScalar() || p.Scalar().empty()) ctx.fail(where + " must be a list of non-empty strings");
        out.push_back(p.Scalar());
    }
    return out;
}

}  // namespace

bool is_moe_config(const std::filesystem::path& file) {
    const Ctx ctx{file.string()};
    const YAML::Node root = load_yaml(read_file_text(file, kMaxConfigBytes), ctx);
    return root.IsMap() && (root["experts"] || root["gate_mode"] || root["experts_per_token"]);
}

MoeConfig parse_moe_config(std::string_view text, std::string_view source_name) {
    const Ctx ctx{std::string(source_name)};
    const YAML::Node root = load_yaml(text, ctx);
    check_keys(root, {"base_model", "gate_mode", "dtype", "experts_per_token", "experts"}, "the top level", ctx);
    MoeConfig c;
    if (!root["base_model"]) ctx.fail("base_model is missing (the model attention and embeddings come from)");
    c.base_model = model_path(root["base_model"], "base_model", ctx);
    if (root["gate_mode"]) {
        const std::string mode = root["gate_mode"].as<std::string>();
        if (mode == "cheap_embed")
            ctx.fail("gate_mode cheap_embed (token embeddings of the prompts) is not built in tunelab; use hidden "
                     "(hidden states of the prompts, mergekit-moe's default) or random");
        if (mode != "hidden" && mode != "random") ctx.fail("gate_mode must be hidden or random, got '" + mode + "'");
        c.router = parse_router_init(mode);
    }
    if (root["experts_per_token"]) c.top_k = std::int64_t(number(root["experts_per_token"], "experts_per_token", ctx));
    if (!root["experts"] || !root["experts"].IsSequence() || root["experts"].size() == 0)
        ctx.fail("experts must be a non-empty list");
    for (const auto& e : root["experts"]) {
        check_keys(e, {"source_model", "positive_prompts", "negative_prompts"}, "an experts entry", ctx);
        if (!e["source_model"]) ctx.fail("every experts entry needs a source_model");
        if (e["negative_prompts"])
            ctx.fail("negative_prompts are not built in tunelab's hidden router; give positive_prompts only");
        MoeConfig::Expert x{model_path(e["source_model"], "an experts entry", ctx), {}};
        if (e["positive_prompts"]) x.prompts = prompt_list(e["positive_prompts"], "positive_prompts", ctx);
        if (c.router == RouterInit::hidden && x.prompts.empty())
            ctx.fail("gate_mode hidden needs positive_prompts for every expert (" + x.path + " has none)");
        c.experts.push_back(std::move(x));
    }
    if (root["dtype"])
        c.notes.push_back("dtype " + root["dtype"].as<std::string>() + " ignored: tunelab merges and writes float32");
    return c;
}

MoeConfig read_moe_config(const std::filesystem::path& file) {
    return parse_moe_config(read_file_text(file, kMaxConfigBytes), file.string());
}

std::vector<std::string> config_model_paths(const MergeConfig& c) {
    std::vector<std::string> out;
    auto add = [&](const std::string& p) {
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    };
    if (c.base_model) add(*c.base_model);
    for (const auto& m : c.models) add(m.path);
    for (const auto& sl : c.slices)
        for (const auto& s : sl) add(s.path);
    return out;
}

MergeSpec spec_from_config(const MergeConfig& c, const std::map<std::string, ModelState>& states) {
    MergeSpec s;
    s.method = c.method;
    s.t = c.t;
    s.lambda = c.lambda;
    s.normalize = c.normalize;
    s.seed = c.seed;
    const bool base_listed = c.base_model && std::any_of(c.models.begin(), c.models.end(), [&](const ConfigModel& m) {
                                 return m.path == *c.base_model;
                             });
    // linear averages exactly the listed models (as mergekit): an unlisted base_model takes no part.
    const bool drop_base = c.method == MergeMethod::linear && c.slices.empty() && c.base_model && !base_listed;
    std::map<std::string, int> index;
    for (const std::string& p : config_model_paths(c)) {
        if (drop_base && p == *c.base_model) continue;
        auto it = states.find(p);
        TL_ASSERT(it != states.end(), "[merge] spec_from_config: model " + p + " was not loaded");
        index[p] = int(s.models.size());
        s.models.push_back({&it->second, c.weight.value_or(ParamSchedule::constant(1.0)),
                            c.density.value_or(ParamSchedule::constant(1.0)), p});
    }
    if (c.base_model && !drop_base) s.base = index.at(*c.base_model);
    auto apply = [&](const std::string& path, const auto& w, const auto& d) {
        MergeModel& m = s.models[std::size_t(index.at(path))];
        if (w) m.weight = *w;
        if (d) m.density = *d;
    };
    for (const ConfigModel& m : c.models) apply(m.path, m.weight, m.density);
    for (const auto& sl : c.slices) {
        LayerSlice slice;
        for (const ConfigSource& src : sl) {
            apply(src.path, src.weight, src.density);
            slice.sources.push_back({index.at(src.path), src.layers});
        }
        s.slices.push_back(std::move(slice));
    }
    if (c.method == MergeMethod::passthrough && c.slices.empty())  // stack the listed models, whole
        for (const ConfigModel& m : c.models) {
            const int i = index.at(m.path);
            s.slices.push_back({{{i, {0, s.models[std::size_t(i)].state->config.n_layer}}}});
        }
    return s;
}

}  // namespace tl
