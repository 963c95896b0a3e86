// The base corpus for pretraining: an endless, seeded stream of '\n'-separated lines that holds the tasks'
// skills in their OLD surface form, plus filler sentences and unrelated Q:/A: pairs. It never holds a task's
// NEW format nor any facts entity. Why: docs/data.md. Next: batch.hpp (corpus_batch cuts it into rows).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/rng.hpp"

namespace tl {

enum class CorpusLine { reverse, sort, add, kv, json_object, filler, qa };

// The mix: the probability that the next line is of each kind (they sum to 1). Lines differ in length, so the
// share of tokens differs [measured, in brackets]; add gets the most: it is the hardest skill to learn.
inline constexpr double kMixReverse = 0.17;     // [16%] "rev abcde -> edcba"
inline constexpr double kMixSort = 0.17;        // [16%] "sort dbca -> abcd"
inline constexpr double kMixAdd = 0.41;         // [21%] "47+8=055"
inline constexpr double kMixKv = 0.08;          // [19%] "kv color=red size=4 => color: red, size: 4"
inline constexpr double kMixJsonObject = 0.05;  // [ 7%] "{\"color\":\"red\",\"size\":4}"
inline constexpr double kMixFiller = 0.08;      // [13%] "the old dog watched the boat."
inline constexpr double kMixQa = 0.04;          // [ 8%] "Q: what color is grass?\nA: green"

struct CorpusMixEntry {
    CorpusLine kind;
    std::string_view name;
    double weight;
};
std::span<const CorpusMixEntry> corpus_mix();

// One line of the given kind, without its trailing '\n' (a qa line holds one '\n', between Q and A).
std::string corpus_line(CorpusLine kind, Rng& rng);

class CorpusStream {
public:
    explicit CorpusStream(std::uint64_t seed);

    // Writes the next tokens.size() tokens of the stream; rows that follow each other continue the text.
    void fill_row(std::span<std::int32_t> tokens);
    // The next n bytes of the same stream, as text (for inspection and tests).
    std::string next_text(std::size_t n);

private:
    char next_byte();

    Rng rng_;
    std::string text_;  // lines generated but not yet handed out, from pos_
    std::size_t pos_ = 0;
};

}  // namespace tl
