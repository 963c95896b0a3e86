// The base shipped in assets/models (scripts/build-base.sh): it is there for the lessons' default spec, it is
// what its dashboard says it is (its held-out loss recomputed here equals the recorded last val_loss), and a copy
// that does not match its spec or is damaged is never used. Pretraining is cancelled in every test, so a missing
// shipped base fails at once instead of pretraining for minutes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "core/backend.hpp"
#include "experiments/base_models.hpp"
#include "model/config.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;

class ShippedBase : public ::testing::Test {
protected:
    void SetUp() override {
        scratch_ = fs::temp_directory_path() / ("tl_shipped_base_test_" + std::to_string(::getpid()));
        fs::remove_all(scratch_);
        fs::create_directories(scratch_ / "cache");
        setenv("XDG_CACHE_HOME", (scratch_ / "cache").c_str(), 1);  // an empty cache: only the shipped copy
        ctx_.cancel = &cancelled_;
        ctx_.threads = 1;
    }
    void TearDown() override {
        unsetenv("TUNELAB_ASSETS");
        fs::remove_all(scratch_);
    }
    fs::path scratch_;
    std::atomic<bool> cancelled_{true};
    RunContext ctx_;
};

double last_y(const Result& r, const std::string& series) {
    for (const Series& s : r.series)
        if (s.name == series && !s.y.empty()) return s.y.back();
    ADD_FAILURE() << "no series " << series;
    return -1;
}

TEST_F(ShippedBase, DefaultSpecIsShippedAndMatchesItsDashboard) {
    const BaseSpec spec;  // tiny, 2000 steps, seed 1, lr 0.003: the lessons' default
    const fs::path dir = shipped_models_root() / base_model_dir(spec).filename();
    ASSERT_TRUE(fs::exists(dir / "model.safetensors"))
        << dir << " is missing: after a kModelRevision bump, run scripts/build-base.sh and commit assets/models";
    auto backend = make_cpu_backend({1});
    BaseModel b = obtain_base(*backend, spec, ctx_);
    ASSERT_TRUE(b.model) << "the shipped base was not loaded";
    EXPECT_TRUE(b.was_shipped);
    EXPECT_FALSE(b.curve.is_cancelled);
    EXPECT_EQ(b.model->params().total(), 842624);  // tiny's GPT-2: 12 L C^2 + 13 L C + (V + T) C + 2 C
    // The weights are the run the dashboard shows: the held-out loss is recomputed on this machine (another CPU's
    // OpenBLAS kernels round differently, hence a tolerance, not bit equality).
    const double val = base_validation_loss(*b.model, spec);
    EXPECT_NEAR(val, last_y(b.curve, "val_loss"), 2e-3);
    // And they are trained: a random init guesses uniformly over 257 bytes, ln 257 = 5.55.
    Gpt init(*backend, find_preset("tiny").config);
    init.init_gpt2(spec.seed);
    EXPECT_GT(base_validation_loss(init, spec), 5.0);
    EXPECT_LT(val, 1.0);
}

TEST_F(ShippedBase, CopyUnderAnotherSpecsNameIsIgnored) {
    const BaseSpec spec;
    BaseSpec other = spec;
    other.steps = 1999;
    const fs::path src = shipped_models_root() / base_model_dir(spec).filename();
    ASSERT_TRUE(fs::exists(src));
    fs::create_directories(scratch_ / "assets" / "models");
    fs::copy(src, scratch_ / "assets" / "models" / base_model_dir(other).filename(), fs::copy_options::recursive);
    setenv("TUNELAB_ASSETS", (scratch_ / "assets").c_str(), 1);
    auto backend = make_cpu_backend({1});
    const BaseModel b = obtain_base(*backend, other, ctx_);  // its record says 2000 steps: not this spec's run
    EXPECT_FALSE(b.was_shipped);
    EXPECT_TRUE(b.curve.is_cancelled);  // so it went on to pretrain (cancelled here)
}

TEST_F(ShippedBase, DamagedCopyIsIgnoredNotTrusted) {
    const BaseSpec spec;
    const fs::path src = shipped_models_root() / base_model_dir(spec).filename();
    ASSERT_TRUE(fs::exists(src));
    const fs::path copy = scratch_ / "assets" / "models" / base_model_dir(spec).filename();
    fs::create_directories(copy.parent_path());
    fs::copy(src, copy, fs::copy_options::recursive);
    fs::resize_file(copy / "model.safetensors", fs::file_size(copy / "model.safetensors") / 2);  // truncated
    setenv("TUNELAB_ASSETS", (scratch_ / "assets").c_str(), 1);
    auto backend = make_cpu_backend({1});
    const BaseModel b = obtain_base(*backend, spec, ctx_);
    EXPECT_FALSE(b.was_shipped);
    EXPECT_TRUE(b.curve.is_cancelled);
}

TEST_F(ShippedBase, UseShippedFalsePretrainsInstead) {
    BaseSpec spec;
    spec.use_shipped = false;
    auto backend = make_cpu_backend({1});
    const BaseModel b = obtain_base(*backend, spec, ctx_);
    EXPECT_FALSE(b.was_shipped);
    EXPECT_TRUE(b.curve.is_cancelled);
}

}  // namespace
}  // namespace tl
