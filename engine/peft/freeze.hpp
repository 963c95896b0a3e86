// Methods that add no parameters, only set trainable flags in the ParamTable (the optimizer keeps state for
// trainable parameters only, so the saving is real):
//   BitFit (Ben Zaken et al. 2021): every bias (Conv1D and LayerNorm), L*11C + C parameters;
//   partial: the last k blocks and the final LayerNorm, k*(12C^2 + 13C) + 2C parameters.
#pragma once
#include <cstdint>

#include "model/gpt.hpp"

namespace tl {

void bitfit_apply(Gpt& model);
void partial_apply(Gpt& model, std::int64_t last_k_blocks);  // tl::Error unless 1 <= k <= n_layer

}  // namespace tl
