// The result cache: a hit returns what was stored, a different argument or engine version misses, a damaged file
// is a miss (not a crash), cancelled results are never stored; and the Result JSON round-trips.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "lesson/runner.hpp"

namespace tl {
namespace {

namespace fs = std::filesystem;

Result sample_result() {
    Result r;
    r.experiment = "toy";
    r.args = {{"a", "1"}, {"b", "x"}};
    r.provenance = {"0.1.0+r1", "test machine", "2026-11-28T00:00:00Z", 1.5};
    r.scalars = {{"accuracy", 97.5, "%"}};
    r.series = {{"train_loss", "step", "loss", {1, 2, 3}, {2.5, 1.25, std::nan("")}}};
    r.tables = {{"samples", {"prompt", "n"}, {{std::string("abc"), 3.0}, {std::string("d"), 4.0}}}};
    r.matrices = {{"signs", 2, 2, {1, -1, 0, 1}, {"r0", "r1"}, {"c0", "c1"}}};
    r.histograms = {{"weights", {-1, 0, 1}, {5, 7}}};
    r.texts = {{"sample", "hello\nworld"}};
    return r;
}

class CacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("tl_cache_test_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST(ResultJson, RoundTripsEveryKind) {
    const Result a = sample_result();
    const Result b = result_from_json(to_json(a));
    EXPECT_EQ(b.experiment, "toy");
    EXPECT_EQ(b.args, a.args);
    EXPECT_EQ(b.provenance.machine, "test machine");
    EXPECT_DOUBLE_EQ(b.scalars.at(0).value, 97.5);
    ASSERT_EQ(b.series.at(0).y.size(), 3u);
    EXPECT_DOUBLE_EQ(b.series[0].y[1], 1.25);
    EXPECT_TRUE(std::isnan(b.series[0].y[2]));  // NaN survives as JSON null
    EXPECT_EQ(std::get<std::string>(b.tables.at(0).rows[0][0]), "abc");
    EXPECT_DOUBLE_EQ(std::get<double>(b.tables[0].rows[1][1]), 4.0);
    EXPECT_EQ(b.matrices.at(0).values, a.matrices[0].values);
    EXPECT_EQ(b.histograms.at(0).counts, a.histograms[0].counts);
    EXPECT_EQ(b.texts.at(0).body, "hello\nworld");
}

TEST(ResultJson, RejectsDamagedDocuments) {
    EXPECT_THROW(result_from_json("{"), Error);
    EXPECT_THROW(result_from_json("[]"), Error);
    std::string text = to_json(sample_result());
    const auto edges = text.find("\"edges\"");
    ASSERT_NE(edges, std::string::npos);
    text.replace(edges, 7, "\"edgez\"");
    EXPECT_THROW(result_from_json(text), Error);
}

TEST_F(CacheTest, HitMissAndVersionChange) {
    const ResultCache cache(dir_);
    const std::map<std::string, std::string> args{{"a", "1"}, {"b", "x"}};
    const std::string k1 = ResultCache::key("toy", args, "0.1.0+r1");
    EXPECT_FALSE(cache.get(k1).has_value());  // miss before put
    cache.put(k1, sample_result());
    ASSERT_TRUE(cache.get(k1).has_value());
    EXPECT_DOUBLE_EQ(cache.get(k1)->scalars.at(0).value, 97.5);
    EXPECT_FALSE(cache.get(ResultCache::key("toy", {{"a", "2"}, {"b", "x"}}, "0.1.0+r1")).has_value());
    EXPECT_FALSE(cache.get(ResultCache::key("toy", args, "0.1.0+r2")).has_value());  // new engine: a miss
    EXPECT_FALSE(cache.get(ResultCache::key("other", args, "0.1.0+r1")).has_value());
}

TEST_F(CacheTest, DamagedFileIsAMissAndCancelledIsNotStored) {
    const ResultCache cache(dir_);
    const std::string k = ResultCache::key("toy", {}, "v");
    fs::create_directories(dir_);
    std::ofstream(dir_ / (k + ".json")) << "{\"experiment\": 3";
    EXPECT_FALSE(cache.get(k).has_value());
    Result cancelled = sample_result();
    cancelled.is_cancelled = true;
    const std::string k2 = ResultCache::key("toy", {{"c", "1"}}, "v");
    cache.put(k2, cancelled);
    EXPECT_FALSE(fs::exists(dir_ / (k2 + ".json")));
}

TEST_F(CacheTest, RunBlockComputesOnceThenHits) {
    // finetune_task is too slow for a unit test; pretrain_base on nano for 3 steps is a real run of ~a second.
    setenv("XDG_CACHE_HOME", dir_.c_str(), 1);
    const ResultCache cache(dir_ / "results");
    RunBlock b;
    b.experiment = "pretrain_base";
    b.args = {{"preset", "nano"}, {"base_steps", "3"}};
    RunContext ctx;
    ctx.threads = 1;
    int points = 0;
    ctx.on_point = [&](const LivePoint&) { ++points; };
    const RunOutcome first = run_block(b, {}, ctx, cache, CachePolicy::use);
    EXPECT_FALSE(first.from_cache);
    EXPECT_GT(points, 0);
    ASSERT_NE(first.result.find_series("train_loss"), nullptr);
    EXPECT_EQ(first.result.find_series("train_loss")->y.size(), 3u);
    const RunOutcome second = run_block(b, {}, ctx, cache, CachePolicy::use);
    EXPECT_TRUE(second.from_cache);
    EXPECT_EQ(second.result.find_series("train_loss")->y, first.result.find_series("train_loss")->y);
    EXPECT_FALSE(run_block(b, {}, ctx, cache, CachePolicy::bypass).from_cache);
}

}  // namespace
}  // namespace tl
