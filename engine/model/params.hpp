// The parameter registry: every tensor of the model with its Hugging Face GPT-2 name, shape (in HF's saved
// layout: Conv1D weights are (in, out)), offset in the flat parameter buffer, role, trainable flag and memory
// category. The optimizer, the PEFT methods, model_io and inspect all walk this table.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/memory_ledger.hpp"
#include "core/tensor.hpp"
#include "model/config.hpp"

namespace tl {

enum class ParamRole { token_embedding, position_embedding, norm_weight, norm_bias, weight, bias };

struct ParamInfo {
    std::string name;           // e.g. "transformer.h.0.attn.c_attn.weight"
    Shape shape;
    std::int64_t offset = 0;    // in floats, into the flat buffer
    ParamRole role = ParamRole::weight;
    bool is_trainable = true;
    bool is_in_store = false;   // [QLoRA] kept by the model's FrozenMatrixStore, not in the flat buffer: frozen
    MemCategory category = MemCategory::weights;
    std::int64_t numel() const { return shape_numel(shape); }
};

// AdamW's default: decay matrices only (not biases, LayerNorm parameters or embeddings).
bool decays_by_default(ParamRole role);

class ParamTable {
public:
    explicit ParamTable(const GptConfig& c);
    const std::vector<ParamInfo>& entries() const { return entries_; }
    std::vector<ParamInfo>& entries() { return entries_; }
    const ParamInfo* find(std::string_view name) const;
    const ParamInfo& at(std::string_view name) const;  // InternalError when missing: names are ours
    std::int64_t total() const { return total_; }
    std::int64_t trainable_count() const;
    // PEFT modules (Gpt::attach) append their parameters after the model's own; offsets continue the numbering.
    const ParamInfo& append(std::string name, Shape shape, ParamRole role);
    void truncate(std::size_t n_entries);  // drops the entries from n_entries on (Gpt::detach_adapters)

private:
    void add(std::string name, Shape shape, ParamRole role);
    std::vector<ParamInfo> entries_;
    std::int64_t total_ = 0;
};

}  // namespace tl
