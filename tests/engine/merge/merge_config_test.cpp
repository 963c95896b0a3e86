// mergekit YAML: the configs from mergekit's documentation shapes parse into the expected MergeConfig, schedules
// interpolate as mergekit's gradients do (anchors spread evenly over depth), and unknown keys are errors.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "merge/merge_config.hpp"

namespace tl {
namespace {

TEST(DepthGradient, InterpolatesAnchorsSpreadOverDepth) {
    const DepthGradient g{{0.0, 0.5, 0.3, 0.7, 1.0}};  // anchors at 0, .25, .5, .75, 1
    EXPECT_DOUBLE_EQ(g.at(0.0), 0.0);
    EXPECT_DOUBLE_EQ(g.at(0.25), 0.5);
    EXPECT_NEAR(g.at(0.375), 0.4, 1e-12);  // halfway between 0.5 and 0.3
    EXPECT_DOUBLE_EQ(g.at(1.0), 1.0);
    EXPECT_DOUBLE_EQ(DepthGradient{{0.42}}.at(0.7), 0.42);
}

TEST(MergeConfig, ReadsMergekitsSlerpExample) {
    const char* yaml = R"(
slices:
  - sources:
      - model: a
        layer_range: [0, 4]
      - model: b
        layer_range: [0, 4]
merge_method: slerp
base_model: a
parameters:
  t:
    - filter: attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: bfloat16
)";
    const MergeConfig c = parse_merge_config(yaml, "test.yaml");
    EXPECT_EQ(c.method, MergeMethod::slerp);
    EXPECT_EQ(c.base_model.value(), "a");
    ASSERT_EQ(c.slices.size(), 1u);
    ASSERT_EQ(c.slices[0].size(), 2u);
    EXPECT_EQ(c.slices[0][1].path, "b");
    EXPECT_EQ(c.slices[0][1].layers.end, 4);
    EXPECT_DOUBLE_EQ(c.t.value("transformer.h.0.attn.c_attn.weight", 0.25), 0.5);
    EXPECT_DOUBLE_EQ(c.t.value("transformer.h.0.mlp.c_fc.weight", 0.25), 0.5);
    EXPECT_DOUBLE_EQ(c.t.value("transformer.h.0.mlp.c_fc.weight", 0.0), 1.0);
    EXPECT_DOUBLE_EQ(c.t.value("transformer.ln_f.weight", 1.0), 0.5);
    ASSERT_EQ(c.notes.size(), 1u);
    EXPECT_NE(c.notes[0].find("bfloat16"), std::string::npos);
    EXPECT_EQ(config_model_paths(c), (std::vector<std::string>{"a", "b"}));
}

TEST(MergeConfig, ReadsMergekitsTiesExample) {
    const char* yaml = R"(
models:
  - model: base
  - model: math
    parameters:
      density: 0.5
      weight: [0, 1]
  - model: code
    parameters:
      density: 0.3
      weight: 0.7
merge_method: ties
base_model: base
parameters:
  normalize: true
  lambda: 0.9
)";
    const MergeConfig c = parse_merge_config(yaml, "ties.yaml");
    EXPECT_EQ(c.method, MergeMethod::ties);
    ASSERT_EQ(c.models.size(), 3u);
    EXPECT_FALSE(c.models[0].weight.has_value());
    EXPECT_DOUBLE_EQ(c.models[1].density->value("x", 0.3), 0.5);
    EXPECT_DOUBLE_EQ(c.models[1].weight->value("x", 0.5), 0.5);
    EXPECT_DOUBLE_EQ(c.models[2].weight->value("x", 0.5), 0.7);
    EXPECT_EQ(c.normalize, Normalize::yes);
    EXPECT_DOUBLE_EQ(c.lambda.value("x", 0), 0.9);
}

TEST(MergeConfig, UnknownKeysAndBadValuesAreErrors) {
    auto expect_error = [](const std::string& yaml, const std::string& fragment) {
        try {
            parse_merge_config(yaml, "bad.yaml");
            ADD_FAILURE() << "no error for:\n" << yaml;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    expect_error("merge_method: linear\nmodels:\n  - model: a\nmerge_speed: 3\n", "unknown key 'merge_speed'");
    expect_error("merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      wieght: 1\n", "unknown key 'wieght'");
    expect_error("merge_method: magic\nmodels:\n  - model: a\n", "unknown merge method 'magic'");
    expect_error("merge_method: linear\n", "give the models");
    expect_error("merge_method: slerp\nslices:\n  - sources:\n      - model: a\n        layer_range: [0]\n", "layer_range");
    expect_error("merge_method: linear\nmodels: [ {model: a, parameters: {weight: heavy}} ]\n", "must be a number");
    expect_error("merge_method: linear\nmodels: [\n", "not valid YAML");
}

}  // namespace
}  // namespace tl
