// Accuracy, loss and KL to a reference model (quality.hpp). The KL uses the same packing as response_loss, so
// both models see identical rows and the positions line up.
#include "quant/quality.hpp"

#include <cmath>

#include "core/error.hpp"
#include "data/batch.hpp"
#include "train/evaluate.hpp"

namespace tl {

namespace {

constexpr int kRows = 16;

// Calls f(log-softmax row) for every response position of the examples, in a fixed order.
template <class F>
void for_each_response_row(Gpt& model, const std::vector<Example>& examples, F&& f) {
    ExampleBatcher batcher(examples, kRows, int(model.config().n_positions), 0.0f,
                           ExampleBatcher::Order::sequential, 0);
    const std::int64_t V = model.config().vocab_size;
    std::vector<float> logits;
    std::vector<float> row(static_cast<std::size_t>(V));
    while (!batcher.done()) {
        const Batch b = batcher.next();
        model.forward(b.tokens.data(), nullptr, b.B, b.T);
        logits.resize(std::size_t(b.B) * std::size_t(b.T) * std::size_t(V));
        model.backend().copy_to_host(logits.data(),
                                     CVecView(model.logits().data, std::int64_t(logits.size())));
        for (std::size_t i = 0; i < b.weights.size(); ++i) {
            if (b.weights[i] <= 0) continue;
            const float* z = logits.data() + i * std::size_t(V);
            double mx = z[0], sum = 0;
            for (std::int64_t v = 1; v < V; ++v) mx = std::max(mx, double(z[v]));
            for (std::int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v]) - mx);
            const double lse = mx + std::log(sum);
            for (std::int64_t v = 0; v < V; ++v) row[std::size_t(v)] = float(double(z[v]) - lse);
            f(row);
        }
    }
}

}  // namespace

ReferenceDist capture_reference(Gpt& reference, const std::vector<Example>& examples) {
    ReferenceDist r;
    r.examples = examples;
    r.V = reference.config().vocab_size;
    for_each_response_row(reference, examples, [&](const std::vector<float>& row) {
        r.logp.insert(r.logp.end(), row.begin(), row.end());
        ++r.positions;
    });
    return r;
}

double kl_to_reference(Gpt& model, const ReferenceDist& ref) {
    if (model.config().vocab_size != ref.V)
        throw Error("[quant] KL: the model's vocabulary (" + std::to_string(model.config().vocab_size) +
                    ") differs from the reference's (" + std::to_string(ref.V) + ")");
    std::int64_t pos = 0;
    double total = 0;
    for_each_response_row(model, ref.examples, [&](const std::vector<float>& q) {
        TL_ASSERT(pos < ref.positions, "[quant] KL: more response positions than the reference");
        const float* p = ref.logp.data() + pos * ref.V;
        double kl = 0;
        for (std::int64_t v = 0; v < ref.V; ++v)
            kl += std::exp(double(p[v])) * (double(p[v]) - double(q[std::size_t(v)]));
        total += std::max(0.0, kl);  // rounding can leave -1e-9 for identical rows
        ++pos;
    });
    TL_ASSERT(pos == ref.positions, "[quant] KL: the position count changed between models");
    return pos ? total / double(pos) : 0.0;
}

QuantQuality measure_quality(Gpt& model, const ReferenceDist& ref) {
    EvalOptions eo;
    eo.keep_samples = 0;
    eo.keep_misses = 0;
    const EvalResult e = evaluate(model, ref.examples, eo);
    return {e.accuracy, e.loss, kl_to_reference(model, ref)};
}

}  // namespace tl
