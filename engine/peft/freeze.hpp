// Methods that add no parameters, only set trainable flags in the ParamTable (the optimizer keeps state for
// trainable parameters only, so the saving is real):
//   BitFit (Ben Zaken et al. 2021): every bias (Conv1D and LayerNorm), L*11C + C parameters;
//   partial: the last k blocks and the final LayerNorm, k*(12C^2 + 13C) + 2C parameters; or named modules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt.hpp"

namespace tl {

void bitfit_apply(Gpt& model);
void partial_apply(Gpt& model, std::int64_t last_k_blocks);  // tl::Error unless 1 <= k <= n_layer
// Partial by name: trains every base parameter whose Hugging Face name contains one of `modules` ("ln_f",
// "mlp.c_proj", "h.3.attn"), freezes the rest. tl::Error for an empty list or a module that matches nothing.
void partial_apply_named(Gpt& model, const std::vector<std::string>& modules);

}  // namespace tl
