// Batching (see batch.hpp): packing examples into rows with per-target loss weights, and corpus rows.
#include "data/batch.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>

#include "core/error.hpp"
#include "data/tokenizer.hpp"

namespace tl {
namespace {

void check_shape(const char* who, int B, int T) {
    if (B <= 0 || T <= 0) {
        throw Error(std::string("[data] ") + who + ": B and T must be positive, got B = " +
                    std::to_string(B) + ", T = " + std::to_string(T));
    }
}

Batch empty_batch(int B, int T) {
    const std::size_t n = static_cast<std::size_t>(B) * static_cast<std::size_t>(T);
    return Batch{B, T, std::vector<std::int32_t>(n), std::vector<std::int32_t>(n), std::vector<float>(n)};
}

}  // namespace

float total_weight(const Batch& batch) {
    double sum = 0;  // in double: B*T weights of 1 would lose integers in float past 2^24
    for (const float w : batch.weights) sum += w;
    return static_cast<float>(sum);
}

ExampleBatcher::ExampleBatcher(std::vector<Example> examples, int B, int T, float prompt_loss_weight,
                               Order order, std::uint64_t seed)
    : B_(B), T_(T), prompt_loss_weight_(prompt_loss_weight), order_(order), seed_(seed) {
    check_shape("ExampleBatcher", B, T);
    if (examples.empty()) throw Error("[data] ExampleBatcher: no examples given; pass at least one example");
    if (!std::isfinite(prompt_loss_weight) || prompt_loss_weight < 0.0f || prompt_loss_weight > 1.0f) {
        throw Error("[data] ExampleBatcher: prompt_loss_weight must be in [0, 1], got " +
                    std::to_string(prompt_loss_weight));
    }
    examples_.reserve(examples.size());
    for (std::size_t i = 0; i < examples.size(); ++i) {
        const Example& e = examples[i];
        if (e.response.empty()) {
            throw Error("[data] ExampleBatcher: example " + std::to_string(i) + " (prompt '" + e.prompt +
                        "') has an empty response; a response holds at least its terminator '\\n'");
        }
        Encoded enc{prompt_tokens(e), 0};
        enc.prompt_len = enc.tokens.size();
        const std::vector<std::int32_t> response = encode(e.response);
        enc.tokens.insert(enc.tokens.end(), response.begin(), response.end());
        if (enc.tokens.size() > static_cast<std::size_t>(T) + 1) {
            throw Error("[data] ExampleBatcher: example " + std::to_string(i) + " is " +
                        std::to_string(enc.tokens.size()) + " tokens (\"\\n\" + prompt + response, prompt '" +
                        e.prompt.substr(0, 60) + "'), but a row of T = " + std::to_string(T) +
                        " inputs holds " + std::to_string(T + 1) +
                        "; use a preset with a longer context or shorter examples");
        }
        examples_.push_back(std::move(enc));
    }
    start_epoch();
}

// Each epoch's permutation has its own Rng stream, so reset() and epoch k are reproducible on their own.
void ExampleBatcher::start_epoch() {
    permutation_.resize(examples_.size());
    std::iota(permutation_.begin(), permutation_.end(), std::size_t{0});
    if (order_ == Order::shuffled) {
        Rng rng(seed_, static_cast<std::uint64_t>(epoch_));
        for (std::size_t i = permutation_.size() - 1; i > 0; --i)
            std::swap(permutation_[i], permutation_[rng.below(i + 1)]);
    }
    cursor_ = 0;
}

bool ExampleBatcher::done() const { return order_ == Order::sequential && cursor_ == permutation_.size(); }

void ExampleBatcher::reset() {
    epoch_ = 0;
    start_epoch();
}

// One row: T + 1 slots; slot s holds a token and the weight it gets as a target. Inputs are slots 0..T-1,
// targets slots 1..T, so the first slot's weight is never used (no token predicts it).
void ExampleBatcher::pack_row(std::int32_t* tokens, std::int32_t* targets, float* weights) {
    const std::size_t slots = static_cast<std::size_t>(T_) + 1;
    std::vector<std::int32_t> row(slots, kEndOfText);
    std::vector<float> row_weight(slots, 0.0f);  // padding: weight 0
    std::size_t used = 0;
    while (!done()) {
        // A shuffled pass that ends mid-row continues the row with the next epoch's first examples.
        if (order_ == Order::shuffled && cursor_ == permutation_.size()) {
            ++epoch_;
            start_epoch();
        }
        const Encoded& e = examples_[permutation_[cursor_]];
        if (used + e.tokens.size() > slots) break;  // whole examples only: it opens the next row
        for (std::size_t i = 0; i < e.tokens.size(); ++i) {
            row[used + i] = e.tokens[i];
            row_weight[used + i] = i < e.prompt_len ? prompt_loss_weight_ : 1.0f;
        }
        used += e.tokens.size();
        ++cursor_;
    }
    for (int t = 0; t < T_; ++t) {
        tokens[t] = row[t];
        targets[t] = row[t + 1];
        weights[t] = row_weight[t + 1];
    }
}

Batch ExampleBatcher::next() {
    if (done()) {
        throw Error("[data] ExampleBatcher::next: the sequential pass over " +
                    std::to_string(examples_.size()) +
                    " examples is done; check done() before next(), or call reset() for another pass");
    }
    Batch batch = empty_batch(B_, T_);
    for (int b = 0; b < B_; ++b) {
        const std::size_t off = static_cast<std::size_t>(b) * T_;
        pack_row(batch.tokens.data() + off, batch.targets.data() + off, batch.weights.data() + off);
    }
    // A shuffled pass that ended exactly at a row's end starts its next epoch here, so epoch() is current.
    if (order_ == Order::shuffled && cursor_ == permutation_.size()) {
        ++epoch_;
        start_epoch();
    }
    return batch;
}

Batch corpus_batch(CorpusStream& stream, int B, int T) {
    check_shape("corpus_batch", B, T);
    Batch batch = empty_batch(B, T);
    std::vector<std::int32_t> row(static_cast<std::size_t>(T) + 1);
    for (int b = 0; b < B; ++b) {
        stream.fill_row(row);
        const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(b) * T;
        std::copy(row.begin(), row.end() - 1, batch.tokens.begin() + off);
        std::copy(row.begin() + 1, row.end(), batch.targets.begin() + off);
    }
    std::fill(batch.weights.begin(), batch.weights.end(), 1.0f);
    return batch;
}

}  // namespace tl
