#include "train/evaluate.hpp"

#include <cmath>

#include "data/batch.hpp"
#include "data/tokenizer.hpp"
#include "model/generate.hpp"

namespace tl {

std::string complete(const Gpt& model, const Example& example, int max_new_tokens) {
    SampleOptions opt;
    opt.max_new_tokens = max_new_tokens;
    opt.stop_tokens = {std::int32_t('\n'), kEndOfText};
    const std::vector<std::int32_t> out = generate(model, prompt_tokens(example), opt);
    return decode(out);
}

double response_loss(Gpt& model, const std::vector<Example>& examples, int rows_per_batch) {
    ExampleBatcher batcher(examples, rows_per_batch, int(model.context()), 0.0f,  // soft prompts take n positions
                           ExampleBatcher::Order::sequential, 0);
    double weighted = 0, weight = 0;
    std::vector<float> losses;
    while (!batcher.done()) {
        const Batch b = batcher.next();
        model.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
        losses.resize(b.weights.size());
        model.backend().copy_to_host(losses.data(), model.losses());
        for (std::size_t i = 0; i < losses.size(); ++i) {
            weighted += double(b.weights[i]) * losses[i];
            weight += b.weights[i];
        }
    }
    return weight > 0 ? weighted / weight : 0.0;
}

EvalResult evaluate(Gpt& model, const std::vector<Example>& examples, const EvalOptions& options) {
    EvalResult r;
    r.n = int(examples.size());
    if (examples.empty()) return r;
    int correct = 0;
    for (const Example& ex : examples) {
        const std::string got = complete(model, ex, options.max_new_tokens);
        const bool ok = is_exact_match(ex, got);
        correct += ok;
        std::string expected = ex.response;
        if (!expected.empty() && expected.back() == '\n') expected.pop_back();
        if (int(r.samples.size()) < options.keep_samples) r.samples.push_back({ex.prompt, expected, got, ok});
        if (!ok && int(r.misses.size()) < options.keep_misses) r.misses.push_back({ex.prompt, expected, got, ok});
    }
    r.accuracy = double(correct) / double(examples.size());
    r.loss = response_loss(model, examples, options.loss_batch);
    r.perplexity = std::exp(r.loss);
    return r;
}

}  // namespace tl
