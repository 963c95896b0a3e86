// Measurements the PEFT experiments share: the singular values of a weight change (core/svd.hpp) and the share
// of its energy the top r capture; exact-match accuracy by greedy decoding with full forwards (it works with PEFT
// modules attached, which the KV-cache decoder refuses); and forward latency at batch 1.
#pragma once
#include <cstdint>
#include <vector>

#include "data/tasks.hpp"
#include "model/gpt.hpp"

namespace tl {

// Singular values of the row-major (rows, cols) matrix m, largest first, computed in double precision.
std::vector<double> singular_values(const float* m, std::int64_t rows, std::int64_t cols);
// sum of the r largest s_i^2 over sum of all s_i^2: the share of ||M||_F^2 the best rank-r approximation keeps
// (Eckart-Young). 1 for a zero matrix; r is clamped to 0..size.
double energy_fraction(const std::vector<double>& sv, std::int64_t r);
// The smallest r whose energy_fraction reaches `share` (0 < share <= 1).
std::int64_t rank_for_energy(const std::vector<double>& sv, double share);

// Exact-match accuracy (0..1) of greedy generation, one full forward per new token (no KV cache), stopping at
// '\n', end-of-text, max_new_tokens or the context length. Equals evaluate()'s accuracy for a plain model.
double greedy_accuracy(Gpt& model, const std::vector<Example>& examples, int max_new_tokens = 48);

// Median wall time in milliseconds of a forward of one row of T tokens (no targets), after `reps / 5 + 1`
// warm-up forwards: what one decoding step without a KV cache costs.
double forward_latency_ms(Gpt& model, std::int64_t T, int reps);

}  // namespace tl
