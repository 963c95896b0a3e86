// Sparse upcycling (merge method `moe`): a mixture-of-experts model built from a base and 1..k dense models,
// as mergekit-moe builds a Mixtral: attention, LayerNorms and embeddings from the base, expert i's MLPs from
// model i, and a router per layer, random or initialised from hidden states ("hidden" gate mode). Pure:
// ModelStates in, one out; the model it describes runs in model/moe.hpp. The story: docs/merging.md ("MoE
// upcycling").
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "merge/merge.hpp"
#include "merge/state_dict.hpp"

namespace tl {

enum class RouterInit {
    random,  // N(0, 0.02) per entry (GPT-2's init): routing starts near uniform; train it afterwards
    hidden,  // row i of layer l = the unit-normalised mean ln_2 output of the base model on expert i's
             // prompts
};
std::string_view router_init_name(RouterInit r);
RouterInit parse_router_init(std::string_view name);  // tl::Error listing random, hidden

struct MoeExpert {
    const ModelState* state = nullptr;  // a dense model of the base's shape; its MLPs become expert i
    std::vector<std::string> prompts;   // text this expert should get (mergekit's positive_prompts): hidden
    std::string label;                  // names the model in error messages
};

struct MoeMergeSpec {
    const ModelState* base = nullptr;  // attention, LayerNorms, embeddings; the model run for the hidden init
    std::vector<MoeExpert> experts;    // 1..64
    std::int64_t top_k = 2;            // experts per token (num_experts_per_tok), 1..experts
    RouterInit router = RouterInit::random;
    float aux_loss_coef = 0.01f;  // router_aux_loss_coef of the result (Switch Transformer's alpha)
    std::uint64_t seed = 0;       // the random router
    LineageCheck lineage = LineageCheck::same_pretraining;
};

// tl::Error ("[merge] ...") for: no base, no experts or more than 64, top_k outside 1..experts, models of
// other shapes, MoE inputs, different pretraining runs, a hidden router without prompts for every expert.
ModelState moe_merge(const MoeMergeSpec& spec);

// Prompts for the hidden router from a synthetic task: "\n" + prompt of n training examples (what the model
// sees).
std::vector<std::string> task_prompts(std::string_view task, int n = 16);

// The hidden-state router rows: (L) x (k * C), row i of layer l = normalise(mean over the tokens of expert
// i's prompts of the base's ln_2 output in layer l). Exposed for tests and the experiment.
std::vector<std::vector<float>> hidden_router_rows(const ModelState& base,
                                                   const std::vector<MoeExpert>& experts);

}  // namespace tl
