#include "core/tensor.hpp"

#include <utility>

namespace tl {

Buffer::Buffer(void* data, std::size_t bytes, MemCategory category, MemoryLedger* ledger, FreeFn free_fn)
    : data_(data), bytes_(bytes), category_(category), ledger_(ledger), free_fn_(free_fn) {
    if (ledger_) ledger_->on_alloc(category_, bytes_);
}

Buffer::Buffer(Buffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      bytes_(std::exchange(o.bytes_, 0)),
      category_(o.category_),
      ledger_(std::exchange(o.ledger_, nullptr)),
      free_fn_(std::exchange(o.free_fn_, nullptr)) {}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        release();
        data_ = std::exchange(o.data_, nullptr);
        bytes_ = std::exchange(o.bytes_, 0);
        category_ = o.category_;
        ledger_ = std::exchange(o.ledger_, nullptr);
        free_fn_ = std::exchange(o.free_fn_, nullptr);
    }
    return *this;
}

void Buffer::release() noexcept {
    if (data_ && free_fn_) free_fn_(data_);
    if (ledger_) ledger_->on_free(category_, bytes_);
    data_ = nullptr;
    bytes_ = 0;
    ledger_ = nullptr;
}

std::int64_t shape_numel(const Shape& s) {
    std::int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
}

std::string shape_str(const Shape& s) {
    std::string out = "(";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + ")";
}

}  // namespace tl
