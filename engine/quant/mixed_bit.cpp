// Sensitivity per tensor and a greedy bit allocation under a budget (mixed_bit.hpp).
#include "quant/mixed_bit.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"
#include "train/evaluate.hpp"

namespace tl {

std::vector<Sensitivity> measure_sensitivity(Gpt& model, const std::vector<QuantTarget>& targets,
                                             const QuantScheme& low, const QuantScheme& high,
                                             const std::vector<Example>& examples, double* base_loss) {
    constexpr int kRows = 16;
    if (base_loss) *base_loss = response_loss(model, examples, kRows);
    std::vector<Sensitivity> out;
    for (const QuantTarget& t : targets) {
        Sensitivity s{t, 0, 0, bits_per_weight(low, t.rows, t.cols), bits_per_weight(high, t.rows, t.cols)};
        const std::vector<float> original = read_target(model, t);
        for (auto [scheme, loss] : {std::pair{&low, &s.loss_low}, std::pair{&high, &s.loss_high}}) {
            std::vector<float> w = original;
            fake_quantize(w, t.rows, t.cols, *scheme);
            write_target(model, t, w);
            *loss = response_loss(model, examples, kRows);
        }
        write_target(model, t, original);
        out.push_back(std::move(s));
    }
    return out;
}

QuantPlan allocate_bits(const std::vector<Sensitivity>& s, const QuantScheme& low, const QuantScheme& high,
                        double budget, Priority priority) {
    double n = 0, bits = 0;
    for (const Sensitivity& x : s) {
        const double k = double(x.target.rows * x.target.cols);
        n += k, bits += k * x.bpw_low;
    }
    if (n > 0 && bits / n > budget + 1e-9)
        throw Error("[quant] a budget of " + std::to_string(budget) +
                    " bits/weight is below the low scheme's " + std::to_string(bits / n) +
                    "; raise the budget or choose fewer bits for the low scheme");
    auto density = [](const Sensitivity& x) {
        const double extra = double(x.target.rows * x.target.cols) * std::max(1e-9, x.bpw_high - x.bpw_low);
        return (x.loss_low - x.loss_high) / extra;
    };
    std::vector<std::size_t> order(s.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return priority == Priority::most_sensitive ? density(s[a]) > density(s[b])
                                                    : density(s[a]) < density(s[b]);
    });
    std::vector<bool> is_high(s.size(), false);
    for (const std::size_t i : order) {
        const double k = double(s[i].target.rows * s[i].target.cols);
        const double next = bits + k * (s[i].bpw_high - s[i].bpw_low);
        if (next / n <= budget + 1e-9) is_high[i] = true, bits = next;
    }
    QuantPlan plan;
    for (std::size_t i = 0; i < s.size(); ++i) plan.push_back({s[i].target, is_high[i] ? high : low});
    return plan;
}

}  // namespace tl
