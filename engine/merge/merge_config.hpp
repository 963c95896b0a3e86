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

}  // namespace tl
