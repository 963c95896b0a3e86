// Ensembling by averaged probabilities. Greedy decoding re-runs the whole window each step (no KV cache): the
// ensemble is a baseline for small models, not a serving path.
#include "merge/ensemble.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "data/batch.hpp"
#include "data/tokenizer.hpp"

namespace tl {

std::vector<float> ensemble_probs(std::span<Gpt* const> models, const std::int32_t* tokens, std::int64_t B,
                                  std::int64_t T) {
    if (models.empty()) throw Error("[merge] ensemble of no models; give at least one");
    const GptConfig& c0 = models[0]->config();
    for (Gpt* m : models)
        if (m->config().vocab_size != c0.vocab_size || m->config().n_positions < T)
            throw Error("[merge] ensemble members must share the vocabulary and fit T = " + std::to_string(T));
    const std::int64_t V = c0.vocab_size, N = B * T;
    std::vector<double> acc(std::size_t(N * V), 0.0);
    std::vector<float> logits(std::size_t(N * V));
    for (Gpt* m : models) {
        m->forward(tokens, nullptr, B, T);
        m->backend().copy_to_host(logits.data(), CVecView(m->logits().data, N * V));
        for (std::int64_t r = 0; r < N; ++r) {
            const float* z = logits.data() + r * V;
            const float mx = *std::max_element(z, z + V);
            double sum = 0;
            for (std::int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v] - mx));
            for (std::int64_t v = 0; v < V; ++v) acc[std::size_t(r * V + v)] += std::exp(double(z[v] - mx)) / sum;
        }
    }
    std::vector<float> probs(acc.size());
    for (std::size_t i = 0; i < acc.size(); ++i) probs[i] = float(acc[i] / double(models.size()));
    return probs;
}

namespace {

std::string ensemble_complete(std::span<Gpt* const> models, const Example& ex, int max_new_tokens) {
    std::vector<std::int32_t> seq = prompt_tokens(ex);
    const std::int64_t ctx = models[0]->config().n_positions, V = models[0]->config().vocab_size;
    std::vector<std::int32_t> out;
    for (int i = 0; i < max_new_tokens; ++i) {
        const std::int64_t T = std::min<std::int64_t>(std::int64_t(seq.size()), ctx);
        const std::vector<float> p = ensemble_probs(models, seq.data() + seq.size() - T, 1, T);
        const float* last = p.data() + (T - 1) * V;
        const auto next = std::int32_t(std::max_element(last, last + V) - last);
        if (next == '\n' || next == kEndOfText) break;
        out.push_back(next);
        seq.push_back(next);
    }
    return decode(out);
}

double ensemble_loss(std::span<Gpt* const> models, const std::vector<Example>& examples) {
    const std::int64_t V = models[0]->config().vocab_size;
    ExampleBatcher batcher(examples, 16, int(models[0]->config().n_positions), 0.0f,
                           ExampleBatcher::Order::sequential, 0);
    double weighted = 0, weight = 0;
    while (!batcher.done()) {
        const Batch b = batcher.next();
        const std::vector<float> p = ensemble_probs(models, b.tokens.data(), b.B, b.T);
        for (std::size_t i = 0; i < b.weights.size(); ++i) {
            if (b.weights[i] == 0) continue;
            const double q = std::max(double(p[i * std::size_t(V) + std::size_t(b.targets[i])]), 1e-30);
            weighted += double(b.weights[i]) * -std::log(q);
            weight += b.weights[i];
        }
    }
    return weight > 0 ? weighted / weight : 0.0;
}

}  // namespace

EnsembleEval evaluate_ensemble(std::span<Gpt* const> models, const std::vector<Example>& examples,
                               int max_new_tokens) {
    if (models.empty()) throw Error("[merge] ensemble of no models; give at least one");
    EnsembleEval r;
    r.n = int(examples.size());
    if (examples.empty()) return r;
    int correct = 0;
    for (const Example& ex : examples) correct += is_exact_match(ex, ensemble_complete(models, ex, max_new_tokens));
    r.accuracy = double(correct) / double(examples.size());
    r.loss = ensemble_loss(models, examples);
    r.perplexity = std::exp(r.loss);
    return r;
}

}  // namespace tl
