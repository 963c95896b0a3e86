// PEFT experiment helpers and experiments. Oracles: closed-form singular values (2x2, rank-1, diagonal), the
// Eckart-Young energy share, the KV-cache decoder (complete()) for greedy decoding with LoRA unmerged, the
// trainable-count formulas of docs/peft.md and AdamW's 8 bytes per trainable parameter; soft_prompt_compare's
// counts against the same formulas, its cap on virtual tokens and its skipping of what does not fit nano.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/tasks.hpp"
#include "experiments/experiment.hpp"
#include "experiments/peft_measure.hpp"
#include "model/config.hpp"
#include "peft/lora.hpp"
#include "peft/soft_prompt.hpp"
#include "peft_fixture.hpp"
#include "train/evaluate.hpp"

namespace tl {
namespace {

TEST(PeftMeasure, SingularValuesOfA2x2MatchTheClosedForm) {
    // s1^2 + s2^2 = ||M||_F^2 and s1 s2 = |det M| give s1, s2 as roots of a quadratic.
    const float m[4] = {3.0f, 1.0f, -2.0f, 4.0f};
    const double fro = 9 + 1 + 4 + 16, det = std::abs(3.0 * 4 - 1.0 * -2);
    const double disc = std::sqrt(fro * fro - 4 * det * det);
    const std::vector<double> s = singular_values(m, 2, 2);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_NEAR(s[0], std::sqrt((fro + disc) / 2), 1e-12);
    EXPECT_NEAR(s[1], std::sqrt((fro - disc) / 2), 1e-12);
}

TEST(PeftMeasure, ARank1OuterProductHasOneSingularValueNormUTimesNormV) {
    const std::vector<float> u = {1, -2, 2}, v = {3, 0, 4, 0, 0};  // |u| = 3, |v| = 5
    std::vector<float> m(15);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 5; ++j) m[std::size_t(i * 5 + j)] = u[std::size_t(i)] * v[std::size_t(j)];
    const std::vector<double> s = singular_values(m.data(), 3, 5);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_NEAR(s[0], 15.0, 1e-9);
    EXPECT_NEAR(s[1], 0.0, 1e-9);
    EXPECT_NEAR(energy_fraction(s, 1), 1.0, 1e-12);
    EXPECT_EQ(rank_for_energy(s, 0.99), 1);
}

TEST(PeftMeasure, ADiagonalMatrixHasItsSortedAbsoluteDiagonal) {
    std::vector<float> m(4 * 6, 0.0f);  // 4 x 6, diagonal 1, -5, 3, 2
    const float d[4] = {1, -5, 3, 2};
    for (int i = 0; i < 4; ++i) m[std::size_t(i * 6 + i)] = d[i];
    const std::vector<double> s = singular_values(m.data(), 4, 6);
    const std::vector<double> want = {5, 3, 2, 1};
    ASSERT_EQ(s.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(s[i], want[i], 1e-12);
    // Energy: 25, 9, 4, 1 of 39.
    EXPECT_DOUBLE_EQ(energy_fraction(s, 0), 0.0);
    EXPECT_NEAR(energy_fraction(s, 1), 25.0 / 39, 1e-12);
    EXPECT_NEAR(energy_fraction(s, 2), 34.0 / 39, 1e-12);
    EXPECT_NEAR(energy_fraction(s, 9), 1.0, 1e-12);
    EXPECT_EQ(rank_for_energy(s, 0.5), 1);
    EXPECT_EQ(rank_for_energy(s, 0.9), 3);  // 38/39 = 0.974; 34/39 = 0.872
    EXPECT_EQ(rank_for_energy(s, 1.0), 4);
    EXPECT_DOUBLE_EQ(energy_fraction({0.0, 0.0}, 1), 1.0);
}

// Examples whose expected answers are what the KV-cache decoder writes for a reference model.
std::vector<Example> answers_of(const Gpt& reference, int n) {
    std::vector<Example> out;
    for (Example e : task_examples(find_task("reverse"), Split::test, n, 7)) {
        e.response = complete(reference, e, 12) + "\n";
        out.push_back(e);
    }
    return out;
}

// LoRA r 4 on a perturbed nano model, with B drawn nonzero so the adapter changes the outputs.
void attach_random_lora(Gpt& model) {
    LoraConfig cfg;
    cfg.r = 4;
    cfg.alpha = 8;
    LoraAdapter& lora = lora_attach(model, cfg, 11);
    Rng rng(21);
    for (const AdapterParam& p : lora.params()) {
        const VecView w = model.param(model.params().at(p.name));
        for (std::int64_t i = 0; i < w.n; ++i) w[i] += 0.5f * rng.normal();
    }
}

TEST(PeftMeasure, GreedyDecodingWithUnmergedLoraMatchesTheKvCacheDecoderOnTheMergedModel) {
    peft_test::PeftModel plain(5), unmerged(5), merged(5);
    attach_random_lora(unmerged.model());
    attach_random_lora(merged.model());
    lora_merge_and_detach(merged.model());
    const std::vector<Example> want = answers_of(merged.model(), 12);
    const std::vector<Example> base_answers = answers_of(plain.model(), 12);
    int differ = 0;
    for (std::size_t i = 0; i < want.size(); ++i) differ += want[i].response != base_answers[i].response;
    ASSERT_GT(differ, 0) << "the LoRA should change some answers, or this test checks nothing";
    EXPECT_DOUBLE_EQ(greedy_accuracy(unmerged.model(), want, 12), 1.0);
    EXPECT_DOUBLE_EQ(greedy_accuracy(plain.model(), base_answers, 12), 1.0);
    EXPECT_NEAR(greedy_accuracy(plain.model(), want, 12), 1.0 - double(differ) / double(want.size()), 1e-12);
}

TEST(PeftMeasure, ForwardLatencyIsPositiveAndRejectsBadArguments) {
    peft_test::PeftModel pm(5);
    EXPECT_GT(forward_latency_ms(pm.model(), 8, 5), 0.0);
    EXPECT_THROW(forward_latency_ms(pm.model(), 0, 5), InternalError);
}

// Runs an experiment on nano with a cache folder of its own.
Result run_nano(const std::string& name, std::map<std::string, std::string> args) {
    static const std::filesystem::path cache = std::filesystem::temp_directory_path() / "tl_peft_experiments_test";
    setenv("XDG_CACHE_HOME", cache.c_str(), 1);
    args.merge(std::map<std::string, std::string>{{"preset", "nano"}, {"base_steps", "30"}, {"eval_n", "6"}});
    RunContext ctx;
    ctx.threads = 1;
    return run_experiment(name, args, ctx);
}

double cell(const Table& t, std::size_t row, const std::string& column) {
    for (std::size_t c = 0; c < t.columns.size(); ++c)
        if (t.columns[c] == column) return std::get<double>(t.rows[row][c]);
    ADD_FAILURE() << "no column " << column;
    return 0;
}

TEST(PeftExperiments, MethodCompareCountsParametersAndOptimizerStateByTheFormulas) {
    const Result r = run_nano("method_compare", {{"steps", "4"}, {"a_steps", "4"}, {"methods", "full,lora,bitfit,ia3"},
                                                 {"rank", "2"}});
    const Table* t = r.find_table("methods");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->rows.size(), 4u);
    const GptConfig c = find_preset("nano").config;
    const double C = double(c.n_embd), L = double(c.n_layer);
    const double want[4] = {double(parameter_count(c)), 16 * 2 * C * L, 11 * C * L + C, 6 * C * L};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(cell(*t, i, "trainable"), want[i]) << i;
        EXPECT_EQ(cell(*t, i, "adapter_bytes"), 4 * want[i]) << i;
        EXPECT_NEAR(cell(*t, i, "optimizer_mib"), 8 * want[i] / (1024.0 * 1024.0), 1e-9) << i;  // AdamW m, v
        EXPECT_NEAR(cell(*t, i, "forgetting"), cell(*t, i, "task_a_before") - cell(*t, i, "task_a_after"), 1e-9);
        EXPECT_GT(cell(*t, i, "latency_ms"), 0.0);
    }
}

// The default methods are every method of the course; on nano, reverse's 31-token examples leave 8 virtual tokens
// no room in 32 positions, so the soft prompts are skipped and named, while add's 21-token examples hold 4.
TEST(PeftExperiments, MethodCompareRunsSoftPromptsWhereTheContextHoldsThem) {
    const Result skipped = run_nano("method_compare", {{"start", "base"}, {"steps", "2"}, {"methods", "bitfit,prompt,prefix"}});
    const Table* t = skipped.find_table("methods");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->rows.size(), 1u);
    ASSERT_NE(skipped.find_text("skipped_methods"), nullptr);
    const std::string why = skipped.find_text("skipped_methods")->body;
    EXPECT_NE(why.find("prompt, prefix"), std::string::npos) << why;
    EXPECT_NE(why.find("8 virtual tokens leave 24 of the 32 positions"), std::string::npos) << why;

    const Result all = run_nano("method_compare", {{"start", "base"}, {"steps", "2"}, {"task", "add"},
                                                   {"task_a", "add"}, {"virtual_tokens", "4"}, {"encoder_hidden", "8"}});
    t = all.find_table("methods");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->rows.size(), 9u);  // full, partial, bitfit, adapter, ia3, lora, prompt, ptuning, prefix
    EXPECT_EQ(all.find_text("skipped_methods"), nullptr);
    const GptConfig c = find_preset("nano").config;
    const std::int64_t n = 4, C = c.n_embd, L = c.n_layer;
    EXPECT_EQ(std::get<std::string>(t->rows[6][0]), "prompt");
    EXPECT_EQ(cell(*t, 6, "trainable"), double(n * C));
    EXPECT_EQ(cell(*t, 7, "trainable"), double(ptuning_param_count(n, C, 8)));
    EXPECT_EQ(cell(*t, 8, "trainable"), double(2 * n * L * C));
    for (std::size_t i = 6; i < 9; ++i) EXPECT_GT(cell(*t, i, "latency_ms"), 0.0) << i;
}

TEST(PeftExperiments, DeltaWSpectrumKeepsAllEnergyAtFullRankAndBeatsARandomMatrix) {
    const Result r = run_nano("delta_w_spectrum", {{"steps", "20"}, {"ranks", "1,2,32"}});
    const Matrix* e = r.find_matrix("energy");
    ASSERT_NE(e, nullptr);
    const GptConfig c = find_preset("nano").config;
    ASSERT_EQ(e->rows, 4 * c.n_layer + 1);  // four Conv1D weights per block, and the random control
    for (std::int64_t i = 0; i < e->rows; ++i) {
        const double* row = &e->values[std::size_t(i * e->cols)];
        EXPECT_LE(row[0], row[1] + 1e-12);
        EXPECT_NEAR(row[2], 1.0, 1e-9) << e->row_labels[std::size_t(i)];  // rank 32 = min(rows, cols) of nano
    }
    // A Gaussian 32 x 96 matrix: s1^2 ~ (sqrt 32 + sqrt 96)^2 = 239 of ~3072 (Marchenko-Pastur edge): ~8%.
    const double random_r1 = e->values[std::size_t((e->rows - 1) * e->cols)];
    EXPECT_GT(random_r1, 0.04);
    EXPECT_LT(random_r1, 0.15);
}

TEST(PeftExperiments, RankSweepSkipsRanksAboveNembdAndAddsTheFullReference) {
    const Result r = run_nano("lora_rank_sweep", {{"ranks", "2,64"}, {"steps", "2"}});
    const Table* t = r.find_table("ranks");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->rows.size(), 2u);  // r 2, then full; 64 > nano's n_embd 32 is skipped and named
    const double C = double(find_preset("nano").config.n_embd), L = double(find_preset("nano").config.n_layer);
    EXPECT_EQ(cell(*t, 0, "trainable"), 16 * 2 * C * L);
    EXPECT_EQ(cell(*t, 0, "alpha"), 4.0);  // alpha = 2r
    EXPECT_EQ(cell(*t, 1, "trainable"), double(parameter_count(find_preset("nano").config)));
    ASSERT_NE(r.find_text("skipped_ranks"), nullptr);
    EXPECT_NE(r.find_text("skipped_ranks")->body.find("64"), std::string::npos);
}

// nano: 32 positions, so 20 virtual tokens are capped at 8, and the 22-token hard prompt leaves add's 21-token
// examples no room: the hard-prompt variant is skipped and named.
TEST(PeftExperiments, SoftPromptCompareCountsByTheFormulasCapsAndSkipsWhatDoesNotFit) {
    const Result r = run_nano("soft_prompt_compare", {{"task", "add"}, {"steps", "3"}, {"virtual_tokens", "20"},
                                                      {"encoder_hidden", "8"}, {"rank", "2"},
                                                      {"prompt_init", "sample_vocab"},
                                                      {"variants", "zero_shot,hard_prompt,prompt,ptuning,lora"}});
    const Table* t = r.find_table("methods");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->rows.size(), 4u);
    const GptConfig c = find_preset("nano").config;
    const std::int64_t n = c.n_positions / 4, C = c.n_embd;
    EXPECT_EQ(r.scalar_or("virtual_tokens", 0), double(n));
    ASSERT_NE(r.find_text("virtual_tokens_capped"), nullptr);
    ASSERT_NE(r.find_text("skipped_variants"), nullptr);
    const double want[4] = {0, double(n * C), double(ptuning_param_count(n, C, 8)), 16 * 2 * double(C * c.n_layer)};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(cell(*t, i, "trainable"), want[i]) << i;
        EXPECT_EQ(cell(*t, i, "adapter_bytes"), 4 * want[i]) << i;
    }
    EXPECT_EQ(cell(*t, 0, "accuracy_after"), r.scalar_or("accuracy_before", -1));
}

TEST(PeftExperiments, BadRanksAndMethodsAreRejectedWithAMessage) {
    EXPECT_THROW(run_nano("soft_prompt_compare", {{"variants", "zero_shot,lasso"}}), Error);
    EXPECT_THROW(run_nano("soft_prompt_compare", {{"hard_prompt", ""}, {"prompt_init", "text"}}), Error);
    EXPECT_THROW(run_nano("lora_rank_sweep", {{"ranks", "0,4"}, {"steps", "1"}}), Error);
    EXPECT_THROW(run_nano("lora_alpha_sweep", {{"ranks", "two"}, {"steps", "1"}}), Error);
    EXPECT_THROW(run_nano("method_compare", {{"methods", "full,lasso"}, {"steps", "1"}, {"a_steps", "1"}}), Error);
}

}  // namespace
}  // namespace tl
