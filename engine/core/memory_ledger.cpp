#include "core/memory_ledger.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace tl {

void MemoryLedger::on_alloc(MemCategory c, std::size_t bytes) {
    const auto b = static_cast<std::int64_t>(bytes);
    current_[index(c)] += b;
    current_total_ += b;
    peak_[index(c)] = std::max(peak_[index(c)], current_[index(c)]);
    peak_total_ = std::max(peak_total_, current_total_);
}

void MemoryLedger::on_free(MemCategory c, std::size_t bytes) {
    const auto b = static_cast<std::int64_t>(bytes);
    TL_ASSERT(current_[index(c)] >= b, "[memory] freeing more bytes than were allocated in a category");
    current_[index(c)] -= b;
    current_total_ -= b;
}

void MemoryLedger::reset_peaks() {
    peak_ = current_;
    peak_total_ = current_total_;
}

}  // namespace tl
