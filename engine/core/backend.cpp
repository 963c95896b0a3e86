#include "core/backend.hpp"

namespace tl {

Tensor Backend::tensor(const Shape& shape, MemCategory what) {
    const auto n = shape_numel(shape);
    Tensor t(alloc(static_cast<std::size_t>(n) * sizeof(float), what), shape);
    fill_zero(t.vec());
    return t;
}

}  // namespace tl
