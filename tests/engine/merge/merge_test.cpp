// Whole-model merges on nano GPT-2 state dicts: the identities each method must satisfy (linear (1,0) is the
// first model, passthrough of all layers is the model, depth up-scaling renames blocks and sets n_layer, slerp
// per tensor), per-layer schedules, the folder round trip, and the bad-input errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "testing/expect_allclose.hpp"
#include "merge/merge.hpp"
#include "model/gpt.hpp"

namespace tl {
namespace {

ModelState nano(std::uint64_t seed) {
    auto be = make_cpu_backend({1});
    Gpt g(*be, find_preset("nano").config);
    g.init_gpt2(seed);
    return state_of(g);
}

// A "fine-tune" of base: every weight moved by N(0, scale).
ModelState finetuned(const ModelState& base, std::uint64_t seed, float scale = 0.01f) {
    ModelState s = base;
    Rng rng(seed);
    for (auto& [name, t] : s.tensors)
        for (auto& v : t.values) v += scale * rng.normal();
    return s;
}

void expect_same(const ModelState& a, const ModelState& b, double tol = 0) {
    ASSERT_EQ(a.config.n_layer, b.config.n_layer);
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (const auto& [name, t] : a.tensors) {
        ASSERT_TRUE(b.tensors.count(name)) << name;
        EXPECT_TRUE(testing::allclose(t.values, b.tensors.at(name).values, tol, tol)) << name;
    }
}

TEST(MergeModels, LinearWithWeightsOneZeroIsTheFirstModel) {
    const ModelState a = nano(1), b = nano(1);
    const ModelState b2 = finetuned(b, 5);
    MergeSpec s;
    s.method = MergeMethod::linear;
    s.models = {{&a, ParamSchedule::constant(1.0), ParamSchedule::constant(1.0), "a"},
                {&b2, ParamSchedule::constant(0.0), ParamSchedule::constant(1.0), "b"}};
    expect_same(merge_models(s), a);
}

TEST(MergeModels, PassthroughOfAllLayersOfOneModelIsThatModel) {
    const ModelState a = nano(2);
    MergeSpec s;
    s.method = MergeMethod::passthrough;
    s.models = {{&a, {}, {}, "a"}};
    s.models[0].weight = s.models[0].density = ParamSchedule::constant(1.0);
    s.slices = {{{{0, {0, a.config.n_layer}}}}};
    expect_same(merge_models(s), a);
}

TEST(MergeModels, PassthroughStacksLayerRangesAndRenames) {
    const ModelState a = nano(3), b = nano(3);  // nano has 2 layers
    const ModelState b2 = finetuned(b, 9);
    MergeSpec s;
    s.method = MergeMethod::passthrough;
    s.models = {{&a, ParamSchedule::constant(1), ParamSchedule::constant(1), "a"},
                {&b2, ParamSchedule::constant(1), ParamSchedule::constant(1), "b"}};
    s.slices = {{{{0, {0, 2}}}}, {{{1, {1, 2}}}}, {{{0, {1, 2}}}}};  // a.0 a.1 b.1 a.1
    const ModelState m = merge_models(s);
    EXPECT_EQ(m.config.n_layer, 4);
    const std::string w = ".attn.c_attn.weight";
    EXPECT_EQ(m.tensors.at("transformer.h.0" + w).values, a.tensors.at("transformer.h.0" + w).values);
    EXPECT_EQ(m.tensors.at("transformer.h.1" + w).values, a.tensors.at("transformer.h.1" + w).values);
    EXPECT_EQ(m.tensors.at("transformer.h.2" + w).values, b2.tensors.at("transformer.h.1" + w).values);
    EXPECT_EQ(m.tensors.at("transformer.h.3" + w).values, a.tensors.at("transformer.h.1" + w).values);
    EXPECT_EQ(m.tensors.at("transformer.wte.weight").values, a.tensors.at("transformer.wte.weight").values);
    EXPECT_EQ(m.tensors.size(), a.tensors.size() + 2 * 12);  // 12 tensors per block
}

TEST(MergeModels, SlerpScheduleRunsFromOneModelToTheOtherOverDepth) {
    const ModelState a = nano(4), b = finetuned(nano(4), 7, 0.1f);
    MergeSpec s;
    s.method = MergeMethod::slerp;
    s.models = {{&a, ParamSchedule::constant(1), ParamSchedule::constant(1), "a"},
                {&b, ParamSchedule::constant(1), ParamSchedule::constant(1), "b"}};
    s.base = 0;
    s.t = {{}, DepthGradient{{0.0, 1.0}}};  // layer 0 at t = 0 (a), layer 1 (the last) at t = 1 (b)
    const ModelState m = merge_models(s);
    const std::string w = ".mlp.c_fc.weight";
    TL_EXPECT_ALLCLOSE(m.tensors.at("transformer.h.0" + w).values, a.tensors.at("transformer.h.0" + w).values, 1e-6, 1e-7);
    TL_EXPECT_ALLCLOSE(m.tensors.at("transformer.h.1" + w).values, b.tensors.at("transformer.h.1" + w).values, 1e-6, 1e-7);
    // The embeddings sit at depth 0, the final LayerNorm at depth 1.
    EXPECT_EQ(m.tensors.at("transformer.wte.weight").values, a.tensors.at("transformer.wte.weight").values);
    TL_EXPECT_ALLCLOSE(m.tensors.at("transformer.ln_f.weight").values, b.tensors.at("transformer.ln_f.weight").values, 1e-6, 1e-7);
}

TEST(MergeModels, TaskArithmeticWithNegativeLambdaRemovesTheTaskVector) {
    const ModelState base = nano(5), ft = finetuned(base, 3);
    MergeSpec s;
    s.method = MergeMethod::task_arithmetic;
    s.models = {{&base, ParamSchedule::constant(1), ParamSchedule::constant(1), "base"},
                {&ft, ParamSchedule::constant(1), ParamSchedule::constant(1), "ft"}};
    s.base = 0;
    s.lambda = ParamSchedule::constant(-1.0);
    const ModelState m = merge_models(s);
    for (const auto& [name, t] : m.tensors) {  // oracle: 2 base - ft
        std::vector<float> want(t.values.size());
        for (std::size_t i = 0; i < want.size(); ++i)
            want[i] = 2 * base.tensors.at(name).values[i] - ft.tensors.at(name).values[i];
        EXPECT_TRUE(testing::allclose(t.values, want, 1e-5, 1e-6)) << name;
    }
}

TEST(MergeModels, FolderRoundTripKeepsTheMergedWeights) {
    const ModelState a = nano(6);
    const auto dir = std::filesystem::temp_directory_path() / ("tl_merge_rt_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    ModelState s = a;
    s.meta.preset = "nano";
    write_model_state(dir, s);
    expect_same(read_model_state(dir), a);
    std::filesystem::remove_all(dir);
}

MergeSpec two_model_spec(MergeMethod m, const ModelState& a, const ModelState& b) {
    MergeSpec s;
    s.method = m;
    s.models = {{&a, ParamSchedule::constant(1), ParamSchedule::constant(1), "a"},
                {&b, ParamSchedule::constant(1), ParamSchedule::constant(1), "b"}};
    s.base = 0;
    return s;
}

TEST(MergeModelsErrors, BadInputIsAClearError) {
    const ModelState a = nano(1), b = finetuned(a, 2);
    auto expect_error = [](const MergeSpec& s, const std::string& fragment) {
        try {
            merge_models(s);
            ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    MergeSpec s = two_model_spec(MergeMethod::slerp, a, b);
    s.t = ParamSchedule::constant(1.5);
    expect_error(s, "t must be in [0, 1]");
    s = two_model_spec(MergeMethod::ties, a, b);
    s.models[1].density = ParamSchedule::constant(0.0);
    expect_error(s, "density of b must be in (0, 1]");
    s.models[1].density = ParamSchedule::constant(1.2);
    expect_error(s, "density");
    s = two_model_spec(MergeMethod::ties, a, b);
    s.base = -1;
    expect_error(s, "needs a base model");

    auto be = make_cpu_backend({1});
    GptConfig wide = find_preset("nano").config;
    wide.n_embd = 64;
    Gpt g(*be, wide);
    const ModelState c = state_of(g);
    expect_error(two_model_spec(MergeMethod::linear, a, c), "different shape");

    ModelState p1 = a, p2 = b;  // fine-tunes of two different pretraining runs
    p1.meta.history = {{"pretrain", "corpus", "full", 100, 1, 1.0, 2.5}};
    p2.meta.history = {{"pretrain", "corpus", "full", 100, 2, 1.0, 2.6}};
    expect_error(two_model_spec(MergeMethod::task_arithmetic, p1, p2), "different base models");

    s = two_model_spec(MergeMethod::passthrough, a, b);
    s.slices = {{{{0, {1, 5}}}}};
    expect_error(s, "layer_range");
}

}  // namespace
}  // namespace tl
