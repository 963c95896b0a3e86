// What quantization costs a model on a task: exact-match accuracy and response loss (train/evaluate), and the
// KL divergence from the unquantized model's next-token distribution to the quantized one's, at every
// response position of the test examples (teacher-forced). KL needs the reference's log-probabilities,
// captured once.
#pragma once
#include <vector>

#include "data/tasks.hpp"
#include "model/gpt.hpp"

namespace tl {

// log-softmax rows of the reference model at the response positions of `examples`, in batch order.
struct ReferenceDist {
    std::vector<Example> examples;
    std::int64_t V = 0, positions = 0;
    std::vector<float> logp;  // (positions, V)
};
ReferenceDist capture_reference(Gpt& reference, const std::vector<Example>& examples);

// mean over positions of  KL(P_ref || P_q) = sum_v P_ref(v) (log P_ref(v) - log P_q(v))   (nats, >= 0)
double kl_to_reference(Gpt& model, const ReferenceDist& ref);

struct QuantQuality {
    double accuracy = 0;  // exact match, 0..1
    double loss = 0;      // mean response cross-entropy
    double kl = 0;        // nats per response token
};
QuantQuality measure_quality(Gpt& model, const ReferenceDist& ref);

}  // namespace tl
