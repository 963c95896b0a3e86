// The merging experiments on nano (engine/experiments/merge_experiments.cpp). Oracles: the parents and the base
// evaluated directly (obtain_finetuned / obtain_base + train/evaluate, not through a merge): every sweep's end
// points are those models (task arithmetic at lambda 0 and 1, slerp/linear at t = 0 and 1, TIES and DARE at
// density 1); the GPT-2 parameter-count formula for the ensemble's memory; SOLAR's stacked depth 2 (L - k)
// (its paper: 32 blocks, k = 8 -> 48); bad input.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "data/tasks.hpp"
#include "experiments/base_models.hpp"
#include "experiments/experiment.hpp"
#include "model/config.hpp"
#include "train/evaluate.hpp"

namespace tl {
namespace {

const std::map<std::string, std::string> kQuick = {
    {"preset", "nano"}, {"base_steps", "30"}, {"steps", "30"}, {"eval_n", "6"}, {"task_a", "reverse"},
    {"task_b", "add"}};

void use_own_cache() {
    static const std::filesystem::path cache = std::filesystem::temp_directory_path() / "tl_merge_experiments_test";
    setenv("XDG_CACHE_HOME", cache.c_str(), 1);
}

Result run_nano(const std::string& name, std::map<std::string, std::string> args) {
    use_own_cache();
    args.merge(std::map<std::string, std::string>(kQuick));
    RunContext ctx;
    ctx.threads = 1;
    return run_experiment(name, args, ctx);
}

struct Direct {
    EvalResult a_on_a, b_on_b, base_on_a, base_on_b, a_on_b;
};

// The parents and the base, loaded from the cache the experiments fill and evaluated without any merge code.
Direct evaluate_directly() {
    use_own_cache();
    auto backend = make_cpu_backend({1});
    RunContext ctx;
    BaseSpec bs{"nano", 30, 1};
    FinetuneSpec fs;
    fs.steps = 30;
    const auto test_a = task_examples(find_task("reverse"), Split::test, 6, 99);
    const auto test_b = task_examples(find_task("add"), Split::test, 6, 99);
    EvalOptions eo;
    Direct d;
    BaseModel base = obtain_base(*backend, bs, ctx);
    d.base_on_a = evaluate(*base.model, test_a, eo);
    d.base_on_b = evaluate(*base.model, test_b, eo);
    fs.task = "reverse";
    BaseModel a = obtain_finetuned(*backend, bs, fs, ctx);
    d.a_on_a = evaluate(*a.model, test_a, eo);
    d.a_on_b = evaluate(*a.model, test_b, eo);
    fs.task = "add";
    BaseModel b = obtain_finetuned(*backend, bs, fs, ctx);
    d.b_on_b = evaluate(*b.model, test_b, eo);
    return d;
}

double at(const Result& r, const std::string& series, double x) {
    const Series* s = r.find_series(series);
    EXPECT_NE(s, nullptr) << series;
    if (!s) return -1;
    for (std::size_t i = 0; i < s->x.size(); ++i)
        if (std::abs(s->x[i] - x) < 1e-12) return s->y[i];
    ADD_FAILURE() << series << " has no point at " << x;
    return -1;
}

TEST(MergeExperiments, TaskArithmeticEndsAreTheBaseAndTheParent) {
    const Result r = run_nano("merge_task_arithmetic", {{"lambdas", "-1,0,1"}});
    const Direct d = evaluate_directly();
    // lambda = 0 is the base for both arms; base + 1 * dA is fine-tune A.
    EXPECT_NEAR(at(r, "sum_loss_a", 0), d.base_on_a.loss, 1e-4);
    EXPECT_NEAR(at(r, "sum_loss_b", 0), d.base_on_b.loss, 1e-4);
    EXPECT_NEAR(at(r, "a_only_loss_a", 1), d.a_on_a.loss, 1e-4);
    EXPECT_NEAR(at(r, "a_only_acc_a", 1), 100 * d.a_on_a.accuracy, 1e-9);
    EXPECT_NEAR(at(r, "a_only_loss_b", 1), d.a_on_b.loss, 1e-4);
    // Negation moves away from task A: its loss rises above the base's (fine-tuning lowered it below).
    ASSERT_LT(d.a_on_a.loss, d.base_on_a.loss);
    EXPECT_GT(at(r, "a_only_loss_a", -1), d.base_on_a.loss);
}

TEST(MergeExperiments, SlerpAndLinearPathsStartAtAAndEndAtB) {
    const Result r = run_nano("merge_slerp_path", {{"points", "3"}});
    const Direct d = evaluate_directly();
    for (const char* m : {"slerp", "linear"}) {
        EXPECT_NEAR(at(r, std::string(m) + "_loss_a", 0), d.a_on_a.loss, 1e-4) << m;
        EXPECT_NEAR(at(r, std::string(m) + "_loss_b", 1), d.b_on_b.loss, 1e-4) << m;
        EXPECT_NEAR(at(r, std::string(m) + "_add", 1), 100 * d.b_on_b.accuracy, 1e-9) << m;
    }
    // The chord's midpoint is never longer than the arc's (|a + b| / 2 <= |a| = |b| on the sphere).
    EXPECT_LE(at(r, "linear_norm", 0.5), at(r, "slerp_norm", 0.5) + 1e-6);
}

TEST(MergeExperiments, DensityOneKeepsTheWholeTaskVector) {
    const Direct d = evaluate_directly();
    for (const char* name : {"merge_ties_density", "merge_dare_density"}) {
        const Result r = run_nano(name, {{"densities", "0.2,1"}});
        EXPECT_NEAR(at(r, "a_only_loss_a", 1), d.a_on_a.loss, 1e-4) << name;
        EXPECT_NEAR(r.scalar_or("full_vector_acc_a", -1), 100 * d.a_on_a.accuracy, 1e-9) << name;
        const double m = r.scalar_or("match_density", -1);
        EXPECT_TRUE(m == 0.2 || m == 1.0) << name << " match_density " << m;
    }
}

TEST(MergeExperiments, EnsembleHoldsTwoModelsAndRunsTwoForwards) {
    const Result r = run_nano("merge_ensemble_vs_merge", {});
    const Table* t = r.find_table("ensemble_vs_merge");
    ASSERT_NE(t, nullptr);
    const GptConfig& c = find_preset("nano").config;
    // GPT-2: wte V C + wpe P C + per block (12 C^2 + 13 C) + ln_f 2 C.
    const double n = double(c.vocab_size * c.n_embd + c.n_positions * c.n_embd +
                            c.n_layer * (12 * c.n_embd * c.n_embd + 13 * c.n_embd) + 2 * c.n_embd);
    ASSERT_EQ(t->rows.size(), 6u);
    for (const auto& row : t->rows) {
        const bool ens = std::get<std::string>(row[0]) == "ensemble";
        EXPECT_EQ(std::get<double>(row[3]), ens ? 2.0 : 1.0);
        EXPECT_EQ(std::get<double>(row[4]), ens ? 2 * n : n);
    }
    const Direct d = evaluate_directly();
    EXPECT_NEAR(std::get<double>(t->rows[0][1]), 100 * d.a_on_a.accuracy, 1e-9);
}

TEST(MergeExperiments, SolarStackingGivesTwiceLMinusOverlapBlocksAndKeepsTheParentBefore) {
    const Result r = run_nano("merge_stacking", {{"overlap", "1"}, {"more_steps", "5"}});
    const std::int64_t L = find_preset("nano").config.n_layer;
    EXPECT_EQ(r.scalar_or("layers_after", -1), double(2 * (L - 1)));  // SOLAR: [0, L-k) + [k, L)
    EXPECT_NEAR(r.scalar_or("loss_before", -1), evaluate_directly().a_on_a.loss, 1e-4);
    ASSERT_NE(r.find_series("stacked_train_loss"), nullptr);
    EXPECT_EQ(r.find_series("stacked_train_loss")->x.size(), 5u);
    const Result dup = run_nano("merge_stacking", {{"scheme", "duplicate"}, {"more_steps", "1"}});
    EXPECT_EQ(dup.scalar_or("layers_after", -1), double(2 * L));
}

TEST(MergeExperiments, MoeUpcycleStartsFromTheParentsAndReportsBalancedShares) {
    const Result r = run_nano("merge_moe_upcycle", {{"more_steps", "4"}});
    const Direct d = evaluate_directly();
    EXPECT_NEAR(r.scalar_or("parent_a_acc_a", -1), 100 * d.a_on_a.accuracy, 1e-9);
    EXPECT_NEAR(r.scalar_or("parent_b_acc_b", -1), 100 * d.b_on_b.accuracy, 1e-9);
    // Two experts of a GPT-2 MLP each, one router (2, C) per layer, on top of the dense model.
    const GptConfig c = find_preset("nano").config;
    EXPECT_EQ(r.scalar_or("moe_params", -1) - r.scalar_or("dense_params", -1),
              double(c.n_layer * ((8 * c.n_embd * c.n_embd + 5 * c.n_embd) + 2 * c.n_embd)));
    const Series *s0 = r.find_series("expert_share_0"), *s1 = r.find_series("expert_share_1");
    ASSERT_TRUE(s0 && s1);
    ASSERT_EQ(s0->y.size(), 4u);
    for (std::size_t i = 0; i < s0->y.size(); ++i) EXPECT_NEAR(s0->y[i] + s1->y[i], 1.0, 1e-12);
    for (double aux : r.find_series("router_aux_loss")->y) EXPECT_TRUE(aux > 0 && aux < 2);  // k = 2: at most 2
    ASSERT_NE(r.find_table("expert_use"), nullptr);
    EXPECT_EQ(r.find_table("expert_use")->rows.size(), 4u);  // two tasks x (upcycled, trained)
    EXPECT_THROW(run_nano("merge_moe_upcycle", {{"top_k", "3"}}), Error);
}

TEST(MergeExperiments, BadArgumentsAreClearErrors) {
    EXPECT_THROW(run_nano("merge_methods", {{"task_b", "reverse"}}), Error);
    EXPECT_THROW(run_nano("merge_task_arithmetic", {{"lambdas", "1,x"}}), Error);
    EXPECT_THROW(run_nano("merge_ties_density", {{"densities", "0,1"}}), Error);
    EXPECT_THROW(run_nano("merge_stacking", {{"overlap", "9"}}), Error);
    EXPECT_THROW(run_nano("merge_methods", {{"shared_task", "add"}}), Error);
}

}  // namespace
}  // namespace tl
