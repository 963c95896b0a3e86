// Evaluation on a task's examples: exact match of greedy generation (to the first '\n' or end-of-text), and the
// mean cross-entropy of the response tokens (so perplexity = exp(loss)).
#pragma once
#include <string>
#include <vector>

#include "data/tasks.hpp"
#include "model/gpt.hpp"

namespace tl {

struct EvalOptions {
    int max_new_tokens = 48;
    int loss_batch = 16;    // rows per forward for the loss
    int keep_samples = 5;   // how many (prompt, expected, got) to keep for display, in order
    int keep_misses = 10;   // and how many wrong answers besides, so a learner sees what goes wrong
};

struct EvalSample {
    std::string prompt, expected, got;
    bool is_correct = false;
};

struct EvalResult {
    double accuracy = 0;    // exact match, 0..1
    double loss = 0;        // mean CE per response token
    double perplexity = 0;
    int n = 0;
    std::vector<EvalSample> samples;  // the first keep_samples examples
    std::vector<EvalSample> misses;   // the first keep_misses wrong answers
};

EvalResult evaluate(Gpt& model, const std::vector<Example>& examples, const EvalOptions& options = {});
double response_loss(Gpt& model, const std::vector<Example>& examples, int rows_per_batch);
// Greedy completion of an example's prompt, decoded to text, without the terminator.
std::string complete(const Gpt& model, const Example& example, int max_new_tokens);

}  // namespace tl
