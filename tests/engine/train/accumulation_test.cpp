// Gradient accumulation: 4 micro-batches of 4 rows give the same gradients and the same update as one batch of
// 16 rows, because the loss is normalised by the number of weighted tokens over the whole step.
#include <gtest/gtest.h>

#include "optim/adamw.hpp"
#include "testing/expect_allclose.hpp"
#include "train/trainer.hpp"
#include "train_fixture.hpp"

namespace tl {
namespace {

std::vector<float> grads_of(const Gpt& m) {
    std::vector<float> g(std::size_t(m.params().total()));
    m.backend().copy_to_host(g.data(), m.grads().vec());
    return g;
}

TEST(GradAccumulation, FourMicroBatchesOfFourEqualOneBatchOfSixteen) {
    auto be = make_cpu_backend({1});
    const GptConfig cfg = find_preset("nano").config;
    const Batch big = testing::reverse_batches(1, 16, int(cfg.n_positions), 5)[0];
    const float norm = total_weight(big);
    ASSERT_GT(norm, 0);

    Gpt one(*be, cfg), four(*be, cfg);
    one.init_gpt2(2);
    four.init_gpt2(2);
    one.enable_grads();
    four.enable_grads();
    one.zero_grads();
    four.zero_grads();
    one.forward(big.tokens.data(), big.targets.data(), 16, big.T);
    one.backward(big.weights.data(), norm);
    for (int k = 0; k < 4; ++k) {
        const Batch part = testing::slice_rows(big, 4 * k, 4);
        four.forward(part.tokens.data(), part.targets.data(), 4, part.T);
        four.backward(part.weights.data(), norm);
    }
    TL_EXPECT_ALLCLOSE(grads_of(four), grads_of(one), 1e-4, 1e-7);
}

TEST(GradAccumulation, TrainerUpdatesMatch) {
    const GptConfig cfg = find_preset("nano").config;
    const std::vector<Batch> bigs = testing::reverse_batches(3, 16, int(cfg.n_positions), 6);
    auto run = [&](int accum) {
        auto be = make_cpu_backend({1});
        Gpt model(*be, cfg);
        model.init_gpt2(4);
        TrainConfig tc;
        tc.steps = 3;
        tc.grad_accum = accum;
        tc.clip_norm = 1.0f;
        int next = 0;
        const int rows = 16 / accum;
        const TrainSummary s = train(model, tc, [&] {
            const Batch& b = bigs[std::size_t(next / accum)];
            const Batch part = testing::slice_rows(b, (next % accum) * rows, rows);
            ++next;
            return part;
        });
        return std::make_pair(s.losses, testing::weights_of(model));
    };
    const auto a = run(1), b = run(4);
    TL_EXPECT_ALLCLOSE(b.first, a.first, 1e-5, 1e-6);
    TL_EXPECT_ALLCLOSE(b.second, a.second, 1e-4, 1e-6);
}

}  // namespace
}  // namespace tl
