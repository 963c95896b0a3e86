// State dicts: a model as named tensors (name -> shape + floats on the host), the form every merge method takes
// and returns. Reading and writing model folders goes through model/model_io (atomic folder writes); this file
// only converts, and knows how GPT-2 layer names are numbered. The methods: merge.hpp, merge_ops.hpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.hpp"
#include "model/config.hpp"
#include "model/model_io.hpp"

namespace tl {

struct TensorData {
    Shape shape;
    std::vector<float> values;  // shape_numel(shape) floats, row-major
    std::int64_t numel() const { return std::int64_t(values.size()); }
};

using StateDict = std::map<std::string, TensorData>;

// A model as plain data: its GPT-2 config, its tensors and tunelab.json's metadata.
struct ModelState {
    GptConfig config;
    StateDict tensors;
    ModelMeta meta;
};

ModelState state_of(const Gpt& model, const ModelMeta& meta = {});
ModelState read_model_state(const std::filesystem::path& dir);  // tl::Error naming the folder and the problem
// Copies the tensors into a model of the same config (tl::Error on a missing tensor or a shape mismatch).
void copy_state_into(Gpt& model, const ModelState& state);
// Validates names and shapes against the config (tl::Error on mismatch), then saves atomically via model_io.
void write_model_state(const std::filesystem::path& dir, const ModelState& state);

// "transformer.h.12.attn.c_attn.weight" -> 12; names outside the blocks -> nullopt.
std::optional<std::int64_t> layer_index(std::string_view name);
// Replaces the block number of a block tensor's name (TL_ASSERT that it is one).
std::string with_layer_index(std::string_view name, std::int64_t layer);
// Where a tensor sits in depth, in [0, 1], for per-layer schedules: block l of L at l / (L - 1); the
// embeddings (before the first block) at 0; the final LayerNorm (after the last block) at 1.
double depth_position(std::string_view name, std::int64_t n_layer);

}  // namespace tl
