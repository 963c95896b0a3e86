// Singular values (core/svd.hpp, in double), greedy exact-match accuracy with full forwards, and forward latency
// at batch 1, for the PEFT experiments (peft_experiments.cpp). See peft_measure.hpp.
#include "experiments/peft_measure.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "core/error.hpp"
#include "core/svd.hpp"
#include "data/tokenizer.hpp"

namespace tl {

std::vector<double> singular_values(const float* m, std::int64_t rows, std::int64_t cols) {
    TL_ASSERT(rows > 0 && cols > 0, "[experiments] singular_values of an empty matrix");
    const std::vector<double> a(m, m + rows * cols);
    return thin_svd(a.data(), rows, cols, SvdVectors::none).S;  // sorted, largest first
}

double energy_fraction(const std::vector<double>& sv, std::int64_t r) {
    const std::size_t k = std::size_t(std::clamp<std::int64_t>(r, 0, std::int64_t(sv.size())));
    double top = 0, all = 0;
    for (std::size_t i = 0; i < sv.size(); ++i) (i < k ? top : all) += sv[i] * sv[i];
    all += top;
    return all > 0 ? top / all : 1.0;
}

std::int64_t rank_for_energy(const std::vector<double>& sv, double share) {
    TL_ASSERT(share > 0 && share <= 1, "[experiments] rank_for_energy: share in (0, 1]");
    for (std::int64_t r = 0; r <= std::int64_t(sv.size()); ++r)
        if (energy_fraction(sv, r) >= share - 1e-12) return r;
    return std::int64_t(sv.size());
}

namespace {

std::int32_t argmax_last_row(const Gpt& model, std::int64_t T) {
    const std::int64_t V = model.config().vocab_size;
    std::vector<float> row(std::size_t(V), 0.0f);
    const CMatView logits = model.logits();
    model.backend().copy_to_host(row.data(), CVecView(logits.row(T - 1), V));
    return std::int32_t(std::max_element(row.begin(), row.end()) - row.begin());
}

}  // namespace

double greedy_accuracy(Gpt& model, const std::vector<Example>& examples, int max_new_tokens) {
    if (examples.empty()) return 0;
    const std::int64_t context = model.context();  // a soft prompt's virtual tokens take their positions
    int correct = 0;
    for (const Example& ex : examples) {
        std::vector<std::int32_t> tokens = prompt_tokens(ex);
        std::string got;
        for (int i = 0; i < max_new_tokens && std::int64_t(tokens.size()) <= context; ++i) {
            const std::int64_t T = std::int64_t(tokens.size());
            model.forward(tokens.data(), nullptr, 1, T);
            const std::int32_t next = argmax_last_row(model, T);
            if (next == '\n' || next == kEndOfText) break;
            got.push_back(char(next));
            tokens.push_back(next);
        }
        correct += is_exact_match(ex, got) ? 1 : 0;
    }
    return double(correct) / double(examples.size());
}

double forward_latency_ms(Gpt& model, std::int64_t T, int reps) {
    TL_ASSERT(reps > 0 && T >= 1 && T <= model.config().n_positions, "[experiments] forward_latency_ms arguments");
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(T));
    for (std::int64_t i = 0; i < T; ++i) tokens[std::size_t(i)] = std::int32_t('a' + i % 26);
    for (int i = 0; i < reps / 5 + 1; ++i) model.forward(tokens.data(), nullptr, 1, T);
    std::vector<double> ms(static_cast<std::size_t>(reps));
    for (double& m : ms) {
        const auto start = std::chrono::steady_clock::now();
        model.forward(tokens.data(), nullptr, 1, T);
        m = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    }
    std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
    return ms[std::size_t(reps / 2)];
}

}  // namespace tl
