// Predicted vs measured: runs a few real training steps of a tunelab model through tl::train on the CPU backend,
// reads the MemoryLedger's peak per category, and sets it beside the detailed prediction (memory_model.hpp) and
// the course's formula. Only methods the engine can run are measured (kMeasurableMethods in measure.cpp).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "memory/memory_model.hpp"
#include "model/config.hpp"

namespace tl::memory {

struct MeasureSpec {
    GptConfig config;
    std::string name = "model";   // shown in reports
    MethodSpec method;
    std::int64_t batch = 4, seq = 0;  // seq 0: the config's n_positions
    std::int64_t steps = 2;           // optimizer steps actually run
    std::uint64_t seed = 1;
    int threads = 1;
    Device device = Device::cpu;  // cuda: the ledger counts the GPU's allocations (the same categories)
};

struct Measurement {
    std::array<std::int64_t, kMemCategoryCount> peak{};  // per category, bytes
    std::int64_t peak_total = 0;
    std::int64_t trainable = 0;
    std::int64_t steps = 0;
};

// True when the engine can run the method today (so measure_training accepts it).
bool is_measurable(MethodKind m);
// Trains spec.steps steps on the reverse task; tl::Error for a method the engine cannot run yet.
Measurement measure_training(const MeasureSpec& spec);

struct CategoryRow {
    MemCategory category;
    double predicted = 0;
    std::optional<std::int64_t> measured;
};

struct Comparison {
    std::string model;
    std::string method;
    CourseFormula course;       // N = parameter count, M = the engine's 4 bytes (fp32)
    Prediction prediction;      // detailed, engine setup
    std::optional<Measurement> measurement;
    std::vector<CategoryRow> rows;  // one per MemoryLedger category
};

// Predicts (always) and measures (when the method is measurable and `measure` is yes).
enum class Measure { yes, no };
Comparison compare_on_engine(const MeasureSpec& spec, Measure measure);

}  // namespace tl::memory
