// Merge configurations: the subset of mergekit's YAML that tunelab's methods cover (merge_method, base_model,
// models with parameters weight/density, parameters t/lambda/normalize, slices of sources with layer_range,
// dtype and tokenizer_source accepted and ignored with a note), so one config runs in both tools. Unknown keys
// are errors. The CLI flags build the same MergeConfig. Model paths are as written (relative to the cwd).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "merge/merge.hpp"
#include "merge/moe_merge.hpp"

namespace tl {

struct ConfigModel {
    std::string path;
    std::optional<ParamSchedule> weight, density;  // unset: the global parameters' value, else 1
};

struct ConfigSource {
    std::string path;
    LayerRange layers;
    std::optional<ParamSchedule> weight, density;
};

struct MergeConfig {
    MergeMethod method = MergeMethod::linear;
    std::optional<std::string> base_model;
    std::vector<ConfigModel> models;
    std::vector<std::vector<ConfigSource>> slices;  // mergekit's slices[].sources[]
    ParamSchedule t = ParamSchedule::constant(0.5);
    ParamSchedule lambda = ParamSchedule::constant(1.0);
    std::optional<ParamSchedule> weight, density;   // global defaults
    std::optional<Normalize> normalize;
    std::uint64_t seed = 0;
    std::vector<std::string> notes;                 // accepted but ignored settings, for the user
};

MergeConfig parse_merge_config(std::string_view yaml_text, std::string_view source_name);
MergeConfig read_merge_config(const std::filesystem::path& file);

// Every model folder the config reads, each once, in order of first mention (base first when given).
std::vector<std::string> config_model_paths(const MergeConfig& c);
// The MergeSpec for loaded models (states[path] for every path of config_model_paths). Pointers into states.
MergeSpec spec_from_config(const MergeConfig& c, const std::map<std::string, ModelState>& states);

// mergekit-moe's own YAML (a separate tool and schema in mergekit): base_model, gate_mode (hidden or random;
// cheap_embed is an error that says so), experts_per_token (default 2), experts with source_model and
// positive_prompts (negative_prompts: an error), dtype noted and ignored. Unknown keys are errors.
struct MoeConfig {
    std::string base_model;
    RouterInit router = RouterInit::hidden;  // mergekit-moe's default gate_mode
    std::int64_t top_k = 2;
    struct Expert {
        std::string path;
        std::vector<std::string> prompts;
    };
    std::vector<Expert> experts;
    std::vector<std::string> notes;
};

// True when the YAML is a mergekit-moe config (it has experts, gate_mode or experts_per_token), false for a
// mergekit one; tl::Error when the
// file cannot be read or is not YAML.
bool is_moe_config(const std::filesystem::path& file);
MoeConfig parse_moe_config(std::string_view yaml_text, std::string_view source_name);
MoeConfig read_moe_config(const std::filesystem::path& file);

}  // namespace tl
