#include "model/params.hpp"

#include "core/error.hpp"
#include "model/moe.hpp"

namespace tl {

bool decays_by_default(ParamRole role) { return role == ParamRole::weight; }

ParamTable::ParamTable(const GptConfig& c) {
    const std::int64_t C = c.n_embd;
    add("transformer.wte.weight", {c.vocab_size, C}, ParamRole::token_embedding);
    add("transformer.wpe.weight", {c.n_positions, C}, ParamRole::position_embedding);
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const std::string p = "transformer.h." + std::to_string(l) + ".";
        add(p + "ln_1.weight", {C}, ParamRole::norm_weight);
        add(p + "ln_1.bias", {C}, ParamRole::norm_bias);
        add(p + "attn.c_attn.weight", {C, 3 * C}, ParamRole::weight);
        add(p + "attn.c_attn.bias", {3 * C}, ParamRole::bias);
        add(p + "attn.c_proj.weight", {C, C}, ParamRole::weight);
        add(p + "attn.c_proj.bias", {C}, ParamRole::bias);
        add(p + "ln_2.weight", {C}, ParamRole::norm_weight);
        add(p + "ln_2.bias", {C}, ParamRole::norm_bias);
        if (c.is_moe()) {  // [MoE] router (k, C), then k expert MLPs (model/moe.hpp)
            add(moe_gate_name(l), {c.num_local_experts, C}, ParamRole::weight);
            for (std::int64_t e = 0; e < c.num_local_experts; ++e) {
                add(moe_expert_name(l, e, "c_fc.weight"), {C, 4 * C}, ParamRole::weight);
                add(moe_expert_name(l, e, "c_fc.bias"), {4 * C}, ParamRole::bias);
                add(moe_expert_name(l, e, "c_proj.weight"), {4 * C, C}, ParamRole::weight);
                add(moe_expert_name(l, e, "c_proj.bias"), {C}, ParamRole::bias);
            }
            continue;
        }
        add(p + "mlp.c_fc.weight", {C, 4 * C}, ParamRole::weight);
        add(p + "mlp.c_fc.bias", {4 * C}, ParamRole::bias);
        add(p + "mlp.c_proj.weight", {4 * C, C}, ParamRole::weight);
        add(p + "mlp.c_proj.bias", {C}, ParamRole::bias);
    }
    add("transformer.ln_f.weight", {C}, ParamRole::norm_weight);
    add("transformer.ln_f.bias", {C}, ParamRole::norm_bias);
    TL_ASSERT(total_ == parameter_count(c), "[params] registry and parameter_count disagree");
}

void ParamTable::add(std::string name, Shape shape, ParamRole role) {
    ParamInfo p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.offset = total_;
    p.role = role;
    total_ += p.numel();
    entries_.push_back(std::move(p));
}

const ParamInfo& ParamTable::append(std::string name, Shape shape, ParamRole role) {
    TL_ASSERT(find(name) == nullptr, "[params] duplicate parameter " + name);
    add(std::move(name), std::move(shape), role);
    return entries_.back();
}

void ParamTable::truncate(std::size_t n_entries) {
    TL_ASSERT(n_entries <= entries_.size(), "[params] truncate past the end");
    entries_.resize(n_entries);
    total_ = entries_.empty() ? 0 : entries_.back().offset + entries_.back().numel();
}

const ParamInfo* ParamTable::find(std::string_view name) const {
    for (const auto& e : entries_)
        if (e.name == name) return &e;
    return nullptr;
}

const ParamInfo& ParamTable::at(std::string_view name) const {
    const ParamInfo* p = find(name);
    TL_ASSERT(p != nullptr, "[params] no parameter named " + std::string(name));
    return *p;
}

std::int64_t ParamTable::trainable_count() const {
    std::int64_t n = 0;
    for (const auto& e : entries_)
        if (e.is_trainable) n += e.numel();
    return n;
}

}  // namespace tl
