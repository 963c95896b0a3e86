// MemoryLedger: current and peak bytes per memory category. Every buffer the engine allocates goes through a
// Backend, which records it here; the memory lessons compare these numbers with the course's formulas.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tl {

enum class MemCategory { weights, grads, optimizer, activations, kv_cache, quant_storage, workspace };
inline constexpr int kMemCategoryCount = 7;

inline constexpr std::string_view kMemCategoryNames[kMemCategoryCount] = {
    "weights", "grads", "optimizer", "activations", "kv_cache", "quant_storage", "workspace"};

constexpr std::string_view mem_category_name(MemCategory c) { return kMemCategoryNames[static_cast<int>(c)]; }

class MemoryLedger {
public:
    void on_alloc(MemCategory c, std::size_t bytes);
    void on_free(MemCategory c, std::size_t bytes);

    std::int64_t current(MemCategory c) const { return current_[index(c)]; }
    std::int64_t peak(MemCategory c) const { return peak_[index(c)]; }
    std::int64_t current_total() const { return current_total_; }
    // Peak of the sum over categories (not the sum of per-category peaks, which may not coexist).
    std::int64_t peak_total() const { return peak_total_; }
    // Start a new measurement window: peaks drop to the current values.
    void reset_peaks();

private:
    static int index(MemCategory c) { return static_cast<int>(c); }
    std::array<std::int64_t, kMemCategoryCount> current_{};
    std::array<std::int64_t, kMemCategoryCount> peak_{};
    std::int64_t current_total_ = 0;
    std::int64_t peak_total_ = 0;
};

}  // namespace tl
