// Shared helpers for the trainer tests: a nano model and a fixed list of batches.
#pragma once
#include <cstring>
#include <vector>

#include "data/batch.hpp"
#include "data/corpus.hpp"
#include "data/tasks.hpp"
#include "model/config.hpp"
#include "model/gpt.hpp"

namespace tl::testing {

inline std::vector<float> weights_of(const Gpt& m) {
    std::vector<float> w(std::size_t(m.params().total()));
    m.backend().copy_to_host(w.data(), m.weights().vec());
    return w;
}

// Fine-tuning batches of the reverse task (prompt tokens weight 0), deterministic.
inline std::vector<Batch> reverse_batches(int count, int rows, int T, std::uint64_t seed) {
    ExampleBatcher batcher(task_examples(find_task("reverse"), Split::train, 400, seed), rows, T, 0.0f,
                           ExampleBatcher::Order::shuffled, seed);
    std::vector<Batch> out;
    for (int i = 0; i < count; ++i) out.push_back(batcher.next());
    return out;
}

// Rows [first, first + n) of a batch.
inline Batch slice_rows(const Batch& b, int first, int n) {
    Batch s;
    s.B = n;
    s.T = b.T;
    const auto lo = std::size_t(first) * std::size_t(b.T), hi = lo + std::size_t(n) * std::size_t(b.T);
    s.tokens.assign(b.tokens.begin() + long(lo), b.tokens.begin() + long(hi));
    s.targets.assign(b.targets.begin() + long(lo), b.targets.begin() + long(hi));
    s.weights.assign(b.weights.begin() + long(lo), b.weights.begin() + long(hi));
    return s;
}

}  // namespace tl::testing
