// Determinism: the same seed and thread count give bitwise-identical losses and weights.
#include <gtest/gtest.h>

#include "train/recipes.hpp"
#include "train_fixture.hpp"

namespace tl {
namespace {

struct TrainRun {
    std::vector<double> losses;
    std::vector<float> weights;
};

TrainRun pretrain_nano(int threads, std::uint64_t seed) {
    auto be = make_cpu_backend({threads});
    Gpt model(*be, find_preset("nano").config);
    model.init_gpt2(seed);
    PretrainSpec spec;
    spec.steps = 6;
    spec.seed = seed;
    spec.batch = 4;
    const TrainSummary s = pretrain(model, spec);
    return {s.losses, testing::weights_of(model)};
}

TEST(Determinism, SameSeedSameThreadsIsBitwiseIdentical) {
    for (int threads : {1, 2}) {
        const TrainRun a = pretrain_nano(threads, 3), b = pretrain_nano(threads, 3);
        EXPECT_EQ(a.losses, b.losses) << threads << " threads";
        EXPECT_EQ(0, std::memcmp(a.weights.data(), b.weights.data(), a.weights.size() * sizeof(float)))
            << threads << " threads";
    }
}

TEST(Determinism, DifferentSeedsDiffer) {
    const TrainRun a = pretrain_nano(1, 3), b = pretrain_nano(1, 4);
    EXPECT_NE(a.losses, b.losses);
}

TEST(Determinism, FineTuningIsDeterministicToo) {
    auto run = [] {
        auto be = make_cpu_backend({2});
        Gpt model(*be, find_preset("nano").config);
        model.init_gpt2(1);
        FinetuneSpec spec;
        spec.task = "reverse";
        spec.steps = 4;
        spec.batch = 4;
        spec.train_examples = 200;
        const TrainSummary s = finetune(model, spec);
        return std::make_pair(s.losses, testing::weights_of(model));
    };
    const auto a = run(), b = run();
    EXPECT_EQ(a.first, b.first);
    EXPECT_EQ(a.second, b.second);
}

}  // namespace
}  // namespace tl
