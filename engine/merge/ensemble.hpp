// Output ensembling, the baseline that merging replaces: run every model on the same tokens and average their
// next-token distributions (softmax probabilities) at each position. Costs k forwards per token where a merged
// model costs one; evaluate_ensemble scores it like train/evaluate.hpp scores a single model.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "data/tasks.hpp"
#include "model/gpt.hpp"

namespace tl {

// tokens (B, T) -> probs (B*T, V): (1/k) sum_m softmax(logits_m). All models must share vocab and n_positions.
std::vector<float> ensemble_probs(std::span<Gpt* const> models, const std::int32_t* tokens, std::int64_t B,
                                  std::int64_t T);

struct EnsembleEval {
    double accuracy = 0;    // exact match of greedy decoding on the averaged distribution
    double loss = 0;        // mean -log p_avg(target) over response tokens
    double perplexity = 0;
    int n = 0;
};

EnsembleEval evaluate_ensemble(std::span<Gpt* const> models, const std::vector<Example>& examples,
                               int max_new_tokens = 48);

}  // namespace tl
