// The committed 10-step loss curve of `nano` (tests/golden/nano_pretrain_10.json): a regression check that any
// change to initialisation, data, kernels or the optimizer is noticed. Correctness itself is checked elsewhere
// (gradient checks, PyTorch parity); when a change is intended, regenerate with TL_UPDATE_GOLDEN=1 and say why
// in the commit. The first loss is also checked against theory: at initialisation the logits are near zero, so
// the loss is near ln(257).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"
#include "train/recipes.hpp"
#include "train_fixture.hpp"

namespace tl {
namespace {

TEST(GoldenCurve, NanoPretrainTenSteps) {
    auto be = make_cpu_backend({1});
    Gpt model(*be, find_preset("nano").config);
    model.init_gpt2(7);
    PretrainSpec spec;
    spec.steps = 10;
    spec.seed = 7;
    spec.batch = 4;
    spec.lr = 3e-3f;
    const TrainSummary s = pretrain(model, spec);
    EXPECT_NEAR(s.losses[0], std::log(257.0), 0.05);
    EXPECT_LT(s.losses.back(), s.losses[0] - 0.5) << "ten steps at lr 3e-3 should lower the loss clearly";

    const std::string path = std::string(TL_SOURCE_DIR) + "/tests/golden/nano_pretrain_10.json";
    if (const char* u = std::getenv("TL_UPDATE_GOLDEN"); u && std::string(u) == "1") {
        const nlohmann::json j{{"preset", "nano"}, {"steps", 10}, {"seed", 7}, {"batch", 4}, {"lr", 3e-3},
                               {"threads", 1}, {"losses", s.losses}};
        write_file_atomic(path, j.dump(2) + "\n");
        GTEST_SKIP() << "rewrote " << path;
    }
    const auto j = nlohmann::json::parse(read_file_text(path, 1 << 20));
    const auto golden = j.at("losses").get<std::vector<double>>();
    ASSERT_EQ(golden.size(), s.losses.size());
    // Float sums may differ by instruction set (FMA) between machines: allow a relative 1e-4.
    for (std::size_t i = 0; i < golden.size(); ++i)
        EXPECT_NEAR(s.losses[i], golden[i], 1e-4 * golden[i]) << "step " << i + 1;
}

}  // namespace
}  // namespace tl
