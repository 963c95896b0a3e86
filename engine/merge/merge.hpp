// Model merging on whole state dicts: linear, slerp, task arithmetic, TIES, DARE (linear or TIES combining) and
// passthrough (layer stacking / depth up-scaling), with per-layer schedules and mergekit-style layer slices.
// Pure: reads ModelStates, returns a new one. The per-tensor math is merge_ops.hpp; YAML configs: merge_config.hpp.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "merge/merge_ops.hpp"
#include "merge/schedule.hpp"
#include "merge/state_dict.hpp"

namespace tl {

enum class MergeMethod { linear, slerp, task_arithmetic, ties, dare_linear, dare_ties, passthrough };

std::string_view merge_method_name(MergeMethod m);
MergeMethod parse_merge_method(std::string_view name);  // tl::Error listing the methods
bool uses_base(MergeMethod m);                          // the task-vector methods need a base model

struct MergeModel {
    const ModelState* state = nullptr;
    ParamSchedule weight = ParamSchedule::constant(1.0);
    ParamSchedule density = ParamSchedule::constant(1.0);  // kept fraction, (0, 1]: TIES and DARE
    std::string label;                                     // names the model in error messages
};

struct LayerRange {
    std::int64_t begin = 0, end = 0;  // [begin, end), like mergekit's layer_range
};

struct SliceSource {
    int model = 0;  // index into MergeSpec::models
    LayerRange layers;
};

// One run of output layers: layer o of the slice merges layer (begin + o) of every source.
struct LayerSlice {
    std::vector<SliceSource> sources;
};

enum class LineageCheck { same_pretraining, skip };

struct MergeSpec {
    MergeMethod method = MergeMethod::linear;
    std::vector<MergeModel> models;  // every model the merge reads, the base included
    int base = -1;                   // index into models: required by task methods; slerp's t = 0 end
    ParamSchedule t = ParamSchedule::constant(0.5);
    ParamSchedule lambda = ParamSchedule::constant(1.0);
    std::optional<Normalize> normalize;  // default: yes for linear, ties, dare_ties; no otherwise (as mergekit)
    std::uint64_t seed = 0;              // DARE's drop masks
    // Empty: every model's layers side by side (passthrough: all layers of each model, stacked in order).
    std::vector<LayerSlice> slices;
    // Models whose tunelab.json records different pretraining runs have unrelated weights: refuse them.
    LineageCheck lineage = LineageCheck::same_pretraining;
    int threads = 0;  // tensors merged in parallel; 0: all cores
};

// tl::Error ("[merge] ...") for: no models, shapes that differ, different bases, t outside [0, 1], density
// outside (0, 1], zero weight sums under normalisation, bad slices, a method's missing base.
ModelState merge_models(const MergeSpec& spec);

}  // namespace tl
