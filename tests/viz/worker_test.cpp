// The viewer's worker thread on a real (nano, few-step) pretraining run, no window: live points reach the UI's
// copy while the run goes on, the final Result replaces them, and Cancel stops a long run with a partial result.
// Caches go to a fresh XDG_CACHE_HOME so that the run really trains (a cached base would stream nothing).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "app/worker.hpp"

namespace tl::viz {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class WorkerTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("tunelab_worker_test_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        setenv("XDG_CACHE_HOME", dir_.c_str(), 1);
    }
    void TearDown() override { fs::remove_all(dir_); }

    static RunBlock pretrain(int steps, int seed) {
        RunBlock b;
        b.experiment = "pretrain_base";
        b.args = {{"preset", "nano"}, {"base_steps", std::to_string(steps)}, {"base_seed", std::to_string(seed)}};
        return b;
    }
    fs::path dir_;
};

TEST_F(WorkerTest, StreamsLivePointsThenTheFinalResult) {
    constexpr int kSteps = 40;
    Worker w(ResultCache(dir_ / "results"), 1);
    w.start(pretrain(kSteps, 7), {});
    WorkView v;
    std::size_t live_points = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(300);
    while (Clock::now() < deadline) {
        w.refresh(v);
        if (v.state != WorkState::running) break;
        if (const Series* s = v.result.find_series("train_loss")) {
            live_points = std::max(live_points, s->x.size());
            for (std::size_t i = 1; i < s->x.size(); ++i) ASSERT_LT(s->x[i - 1], s->x[i]);  // appended in order
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_EQ(v.state, WorkState::done) << v.error;
    EXPECT_GT(live_points, 0u) << "no live point reached the UI while the run went on";
    EXPECT_FALSE(v.is_from_cache);
    const Series* loss = v.result.find_series("train_loss");
    ASSERT_NE(loss, nullptr);
    ASSERT_EQ(loss->x.size(), std::size_t(kSteps));  // one point per optimizer step, steps 1..kSteps
    EXPECT_EQ(loss->x.front(), 1.0);
    EXPECT_EQ(loss->x.back(), double(kSteps));
    EXPECT_EQ(v.progress.done, kSteps);

    w.start(pretrain(kSteps, 7), {});  // the same arguments again: the result cache answers
    while (w.refresh(v), v.state == WorkState::running) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(v.state, WorkState::done);
    EXPECT_TRUE(v.is_from_cache);
}

TEST_F(WorkerTest, CancelStopsALongRunWithAPartialResult) {
    constexpr int kSteps = 100000;
    Worker w(ResultCache(dir_ / "results"), 1);
    w.start(pretrain(kSteps, 8), {});
    WorkView v;
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < deadline) {  // wait for the first steps
        w.refresh(v);
        const Series* s = v.result.find_series("train_loss");
        if (s && s->x.size() >= 3) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const auto t0 = Clock::now();
    w.cancel();
    while (w.refresh(v), v.state == WorkState::running) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
    EXPECT_EQ(v.state, WorkState::cancelled);
    EXPECT_TRUE(v.result.is_cancelled);
    const Series* loss = v.result.find_series("train_loss");
    ASSERT_NE(loss, nullptr);
    EXPECT_LT(loss->x.size(), std::size_t(kSteps));
}

}  // namespace
}  // namespace tl::viz
