// Where two task vectors disagree: for each block and each kind of tensor, the share of coordinates at which both
// fine-tunes moved the weight (after TIES' trim to the top `density` of each tensor) but in opposite directions.
// TIES' sign election exists to resolve exactly these coordinates; a map full of conflicts is why averaging two
// task vectors cancels both. The merge lab view draws it (matrix "sign_conflict").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "merge/state_dict.hpp"

namespace tl {

struct SignConflictMap {
    std::vector<std::string> rows;  // "h.0" .. "h.{L-1}", then "embeddings" (wte, wpe) and "ln_f"
    std::vector<std::string> cols;  // "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "biases+norms"
    std::vector<double> share;      // rows x cols, row-major: conflicts / coordinates both vectors keep (0 if none)
    std::vector<std::int64_t> both; // rows x cols: coordinates both vectors keep
    double overall = 0;             // conflicts / both, over every tensor
};

// a and b are two fine-tunes of base (same names and shapes; tl::Error naming the first tensor that differs).
// density in (0, 1]: each delta is trimmed to its top floor(density n) magnitudes first (1: no trim).
SignConflictMap sign_conflicts(const ModelState& base, const ModelState& a, const ModelState& b, double density);

}  // namespace tl
