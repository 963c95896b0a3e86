// Pieces every PEFT module shares: freezing the base model, the table of GPT-2's linear sites, matrix views of
// named parameters, and per-slot saved buffers (ledger-counted) that follow the batch size.
// The modules themselves: lora.hpp, ia3.hpp, houlsby.hpp, freeze.hpp; the whole picture: docs/peft.md.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "model/gpt.hpp"

namespace tl {

// A Conv1D of a GPT-2 block: where its hook sits and its module name (Hugging Face's, under transformer.h.<l>.).
struct LinearSite {
    HookSite site;
    std::string_view module;  // "attn.c_attn"
};
inline constexpr LinearSite kLinearSites[] = {{HookSite::attn_qkv, "attn.c_attn"},
                                              {HookSite::attn_proj, "attn.c_proj"},
                                              {HookSite::mlp_fc, "mlp.c_fc"},
                                              {HookSite::mlp_proj, "mlp.c_proj"}};

std::string module_path(std::int64_t layer, std::string_view module);  // "transformer.h.0.attn.c_attn"

void freeze_base(Gpt& model);   // every base parameter frozen; adapter parameters untouched
void unfreeze_all(Gpt& model);  // every parameter trainable (what a plain model starts as)

// Matrix view (rows, numel/rows) of a named parameter or its gradient.
MatView param_mat(const Gpt& model, std::string_view name, std::int64_t rows);
MatView grad_mat(const Gpt& model, std::string_view name, std::int64_t rows);

// The elementwise PEFT ops (IA3 scaling) run on host memory: CPU only, a clear error elsewhere.
void require_cpu(const Gpt& model, std::string_view method);

// One tensor per slot (e.g. layer * sites + site), re-allocated when its shape changes.
class SavedBuffers {
public:
    const Tensor& get(Backend& backend, std::size_t slot, const Shape& shape, MemCategory category);

private:
    std::deque<Tensor> tensors_;  // a deque: growing keeps references to earlier slots valid
};

}  // namespace tl
