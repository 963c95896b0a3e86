// Shared PEFT helpers (see peft_common.hpp).
#include "peft/peft_common.hpp"

#include "core/error.hpp"

namespace tl {

std::string module_path(std::int64_t layer, std::string_view module) {
    return "transformer.h." + std::to_string(layer) + "." + std::string(module);
}

void freeze_base(Gpt& model) {
    for (ParamInfo& p : model.params().entries())
        if (p.offset < model.base_param_count()) p.is_trainable = false;
}

void unfreeze_all(Gpt& model) {
    for (ParamInfo& p : model.params().entries()) p.is_trainable = !p.is_in_store;  // a stored matrix stays frozen
}

MatView param_mat(const Gpt& model, std::string_view name, std::int64_t rows) {
    const VecView v = model.param(model.params().at(name));
    return {v.data, rows, v.n / rows};
}

MatView grad_mat(const Gpt& model, std::string_view name, std::int64_t rows) {
    const VecView v = model.grad(model.params().at(name));
    return {v.data, rows, v.n / rows};
}

void require_cpu(const Gpt& model, std::string_view method) {
    if (model.backend().device() != Device::cpu)
        throw Error("[peft] " + std::string(method) + " runs on the CPU backend only (backend: " +
                    model.backend().name() + "); use --device cpu");
}

const Tensor& SavedBuffers::get(Backend& backend, std::size_t slot, const Shape& shape, MemCategory category) {
    if (tensors_.size() <= slot) tensors_.resize(slot + 1);
    Tensor& t = tensors_[slot];
    if (t.empty() || t.shape() != shape) t = backend.tensor(shape, category);
    return t;
}

}  // namespace tl
