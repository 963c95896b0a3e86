// Ensembling against the model's own cross-entropy kernel: for one model, -log p(target) must equal the
// forward's per-token loss; for two, p(target) is the mean of exp(-loss_m). evaluate_ensemble of one model
// matches train/evaluate (KV-cache generation and batched loss: a different code path).
#include <gtest/gtest.h>

#include <cmath>

#include "data/tasks.hpp"
#include "merge/ensemble.hpp"
#include "train/evaluate.hpp"

namespace tl {
namespace {

std::vector<float> target_losses(Gpt& m, const std::vector<std::int32_t>& tok, const std::vector<std::int32_t>& tgt,
                                 std::int64_t B, std::int64_t T) {
    m.forward(tok.data(), tgt.data(), B, T);
    std::vector<float> l(std::size_t(B * T));
    m.backend().copy_to_host(l.data(), m.losses());
    return l;
}

TEST(Ensemble, AveragesTheMembersProbabilities) {
    auto be = make_cpu_backend({1});
    const GptConfig c = find_preset("nano").config;
    Gpt a(*be, c), b(*be, c);
    a.init_gpt2(1);
    b.init_gpt2(2);
    const std::int64_t B = 2, T = 8, V = c.vocab_size;
    std::vector<std::int32_t> tok(std::size_t(B * T)), tgt(std::size_t(B * T));
    for (std::size_t i = 0; i < tok.size(); ++i) tok[i] = std::int32_t((i * 37) % 256), tgt[i] = std::int32_t((i * 11 + 3) % 257);
    const auto la = target_losses(a, tok, tgt, B, T), lb = target_losses(b, tok, tgt, B, T);

    Gpt* one[] = {&a};
    const auto p1 = ensemble_probs(one, tok.data(), B, T);
    Gpt* two[] = {&a, &b};
    const auto p2 = ensemble_probs(two, tok.data(), B, T);
    for (std::int64_t r = 0; r < B * T; ++r) {
        const auto q1 = p1[std::size_t(r * V + tgt[std::size_t(r)])];
        const auto q2 = p2[std::size_t(r * V + tgt[std::size_t(r)])];
        EXPECT_NEAR(-std::log(q1), la[std::size_t(r)], 1e-4) << "row " << r;
        EXPECT_NEAR(q2, 0.5 * (std::exp(-la[std::size_t(r)]) + std::exp(-lb[std::size_t(r)])), 1e-6) << "row " << r;
        double sum = 0;
        for (std::int64_t v = 0; v < V; ++v) sum += p2[std::size_t(r * V + v)];
        EXPECT_NEAR(sum, 1.0, 1e-5);
    }
}

TEST(Ensemble, OfOneModelEvaluatesLikeTheModel) {
    auto be = make_cpu_backend({1});
    Gpt a(*be, find_preset("nano").config);
    a.init_gpt2(3);
    const std::vector<Example> ex = task_examples(find_task("reverse"), Split::test, 6, 1);
    Gpt* one[] = {&a};
    const EnsembleEval e = evaluate_ensemble(one, ex, 8);
    EvalOptions opt;
    opt.max_new_tokens = 8;
    const EvalResult r = evaluate(a, ex, opt);
    EXPECT_EQ(e.n, r.n);
    EXPECT_DOUBLE_EQ(e.accuracy, r.accuracy);
    EXPECT_NEAR(e.loss, r.loss, 1e-4 * r.loss);
}

}  // namespace
}  // namespace tl
