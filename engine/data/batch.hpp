// Batches for next-token training: rows of T input tokens, their targets (the tokens one step later) and a
// loss weight per target. Packs task examples (ExampleBatcher) or cuts the pretraining corpus (corpus_batch).
// Not the loss itself (the backend's cross-entropy takes the weights). Next: train/trainer.hpp.
#pragma once
#include <cstdint>
#include <vector>

#include "data/corpus.hpp"
#include "data/tasks.hpp"

namespace tl {

// tokens, targets and weights are each B*T, row-major: row b, position t at b*T + t.
struct Batch {
    int B = 0, T = 0;
    std::vector<std::int32_t> tokens;   // inputs
    std::vector<std::int32_t> targets;  // targets[b*T + t] is the token that follows tokens[b*T + t]
    std::vector<float> weights;         // per TARGET: response 1, prompt prompt_loss_weight, padding 0
};

// The loss normaliser: a weighted mean divides by this, so gradient accumulation can sum it over
// micro-batches.
float total_weight(const Batch& batch);

// Packs whole examples, each "\n" + prompt + response, one after another into each row until the next does
// not fit, then pads the row with kEndOfText (weight 0). A row holds T + 1 tokens (T inputs, the last also a
// target), so an example of n tokens fits when n <= T + 1. Weights are per target token: response tokens 1,
// prompt tokens (the leading "\n" included) prompt_loss_weight, padding 0.
class ExampleBatcher {
public:
    enum class Order {
        shuffled,    // endless; a fresh permutation each epoch, deterministic from the seed (training)
        sequential,  // one pass in the given order, then done() (evaluation loss)
    };

    ExampleBatcher(std::vector<Example> examples, int B, int T, float prompt_loss_weight, Order order,
                   std::uint64_t seed);

    Batch next();                         // throws tl::Error once a sequential pass is done (call reset())
    bool done() const;                    // sequential: every example has been handed out; shuffled: never
    void reset();                         // back to the first batch: the same batches again
    int epoch() const { return epoch_; }  // shuffled: full passes handed out so far; sequential: 0
    std::size_t size() const { return examples_.size(); }

private:
    struct Encoded {
        std::vector<std::int32_t> tokens;  // "\n" + prompt + response
        std::size_t prompt_len;            // tokens of "\n" + prompt
    };
    void start_epoch();
    void pack_row(std::int32_t* tokens, std::int32_t* targets, float* weights);

    std::vector<Encoded> examples_;
    int B_, T_;
    float prompt_loss_weight_;
    Order order_;
    std::uint64_t seed_;
    std::vector<std::size_t> permutation_;
    std::size_t cursor_ = 0;  // next position in permutation_
    int epoch_ = 0;
};

// B rows of T + 1 consecutive corpus tokens each (T inputs, targets shifted by one); every weight is 1.
Batch corpus_batch(CorpusStream& stream, int B, int T);

}  // namespace tl
