// The lesson parser on good and malformed files: structure, run blocks, params, and the file:line in errors.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "lesson/lesson.hpp"

namespace tl {
namespace {

// A registry of one fake experiment, so the parser tests do not depend on the engine's experiments.
ExperimentRegistry fake_registry() {
    ExperimentRegistry r;
    r.add({"toy", "Toy", "A toy experiment.",
           {{"steps", ParamKind::integer, "10", 1, 100, {}, "steps"},
            {"lr", ParamKind::log_real, "0.01", 1e-5, 1, {}, "lr"},
            {"task", ParamKind::choice, "a", 0, 0, {"a", "b", "c"}, "task"}},
           1,
           [](const ExperimentArgs& a, RunContext&) {
               Result res;
               res.scalars.push_back({"steps_times_two", 2.0 * double(a.integer("steps")), ""});
               return res;
           }});
    return r;
}

const char* kGood = R"(# The title

Intro paragraph with `code`.

## First step

Some *prose* that
wraps.

- item one
- item two

```run toy
steps: 20
param lr: log_real 0.001 .. 0.1 = 0.01 "learning rate"
param task: choice a|b = b "which task"
view: dashboard
takeaway: it works
```

## Second step

```python
print("not a run block")
```
)";

TEST(LessonParser, ReadsTitleStepsProseAndRunBlocks) {
    const Lesson l = parse_lesson(kGood, "good.md", fake_registry());
    EXPECT_EQ(l.title, "The title");
    ASSERT_EQ(l.intro.size(), 1u);
    EXPECT_EQ(l.intro[0], "Intro paragraph with `code`.");
    ASSERT_EQ(l.steps.size(), 2u);
    EXPECT_EQ(l.steps[0].title, "First step");
    ASSERT_EQ(l.steps[0].paragraphs.size(), 3u);
    EXPECT_EQ(l.steps[0].paragraphs[0], "Some prose that wraps.");
    EXPECT_EQ(l.steps[0].paragraphs[1], "- item one");
    ASSERT_EQ(l.steps[0].runs.size(), 1u);
    const RunBlock& b = l.steps[0].runs[0];
    EXPECT_EQ(b.experiment, "toy");
    EXPECT_EQ(b.view, "dashboard");
    EXPECT_EQ(b.takeaway, "it works");
    EXPECT_EQ(b.line, 13);
    ASSERT_EQ(b.params.size(), 2u);
    EXPECT_EQ(b.params[0].kind, ParamKind::log_real);
    EXPECT_DOUBLE_EQ(b.params[0].min, 0.001);
    EXPECT_DOUBLE_EQ(b.params[0].max, 0.1);
    EXPECT_EQ(b.params[0].label, "learning rate");
    EXPECT_EQ(b.params[1].choices, (std::vector<std::string>{"a", "b"}));
    const auto args = b.arguments({{"lr", "0.05"}});
    EXPECT_EQ(args.at("steps"), "20");
    EXPECT_EQ(args.at("lr"), "0.05");
    EXPECT_EQ(args.at("task"), "b");
    EXPECT_TRUE(l.steps[1].runs.empty());
    EXPECT_EQ(l.steps[1].paragraphs.size(), 1u);  // the python block is kept as verbatim prose
}

// Each malformed file must fail with the file, the line and what was expected.
struct Malformed {
    const char* name;
    std::string text;
    std::string expected_in_message;
};

class LessonParserRejects : public ::testing::TestWithParam<Malformed> {};

TEST_P(LessonParserRejects, WithFileLineAndReason) {
    const Malformed& m = GetParam();
    try {
        parse_lesson(m.text, "bad.md", fake_registry());
        FAIL() << "accepted: " << m.name;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(m.expected_in_message), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("bad.md"), std::string::npos) << e.what();
    }
}

const std::string kHead = "# T\n\n## S\n\n";

INSTANTIATE_TEST_SUITE_P(
    Files, LessonParserRejects,
    ::testing::Values(
        Malformed{"no_title", "## S\n\ntext\n", "expected a '# Title'"},
        Malformed{"no_steps", "# T\n\ntext\n", "at least one '## Step'"},
        Malformed{"unknown_experiment", kHead + "```run nope\n```\n", "bad.md:5: [experiment] unknown experiment 'nope'"},
        Malformed{"no_experiment_name", kHead + "```run\n```\n", "bad.md:5: a run block needs an experiment name"},
        Malformed{"unknown_argument", kHead + "```run toy\nwidth: 3\n```\n", "has no argument 'width'"},
        Malformed{"bad_value", kHead + "```run toy\nsteps: many\n```\n", "'many' is not an integer"},
        Malformed{"out_of_range", kHead + "```run toy\nsteps: 1000\n```\n", "1000 is outside 1..100"},
        Malformed{"not_key_value", kHead + "```run toy\nsteps 10\n```\n", "bad.md:6: expected 'key: value'"},
        Malformed{"bad_kind", kHead + "```run toy\nparam steps: float 1 .. 2 = 1\n```\n", "bad.md:6: unknown parameter kind 'float'"},
        Malformed{"no_default", kHead + "```run toy\nparam steps: integer 1 .. 2\n```\n", "needs '= DEFAULT'"},
        Malformed{"no_range", kHead + "```run toy\nparam steps: integer = 2\n```\n", "needs a range 'MIN .. MAX'"},
        Malformed{"min_above_max", kHead + "```run toy\nparam steps: integer 9 .. 2 = 3\n```\n", "MIN > MAX"},
        Malformed{"range_beyond_experiment", kHead + "```run toy\nparam steps: integer 1 .. 500 = 3\n```\n", "500 is outside 1..100"},
        Malformed{"bad_choice", kHead + "```run toy\nparam task: choice a|z = a\n```\n", "'z' is not one of: a, b, c"},
        Malformed{"one_choice", kHead + "```run toy\nparam task: choice a = a\n```\n", "at least two options"},
        Malformed{"twice", kHead + "```run toy\nsteps: 2\nsteps: 3\n```\n", "given twice"},
        Malformed{"fixed_and_param", kHead + "```run toy\nsteps: 2\nparam steps: integer 1 .. 5 = 2\n```\n", "both a fixed argument and a param"},
        Malformed{"run_before_step", "# T\n\n```run toy\n```\n\n## S\n", "must be inside a step"}),
    [](const ::testing::TestParamInfo<Malformed>& i) { return std::string(i.param.name); });

TEST(LessonCatalog, EveryShippedLessonParses) {
    const auto entries = list_lessons(lessons_root());
    ASSERT_FALSE(entries.empty()) << "no lessons under " << lessons_root();
    for (const LessonEntry& e : entries) {
        const Lesson en = load_lesson(e.dir / "lesson.md", experiments());
        EXPECT_FALSE(en.steps.empty()) << e.id;
        if (e.has_korean) {
            const Lesson ko = load_lesson(e.dir / "lesson.ko.md", experiments());
            ASSERT_EQ(ko.steps.size(), en.steps.size()) << e.id << ": the Korean lesson has other steps";
            // A translation changes prose, labels and takeaways only: the same experiments with the same arguments.
            for (std::size_t k = 0; k < en.steps.size(); ++k) {
                const auto& a = en.steps[k].runs;
                const auto& b = ko.steps[k].runs;
                ASSERT_EQ(a.size(), b.size()) << e.id << " step " << k + 1;
                for (std::size_t i = 0; i < a.size(); ++i) {
                    EXPECT_EQ(a[i].experiment, b[i].experiment) << e.id << " step " << k + 1;
                    EXPECT_EQ(a[i].arguments(), b[i].arguments()) << e.id << " step " << k + 1;
                    EXPECT_EQ(a[i].view, b[i].view) << e.id << " step " << k + 1;
                    ASSERT_EQ(a[i].params.size(), b[i].params.size()) << e.id << " step " << k + 1;
                    for (std::size_t j = 0; j < a[i].params.size(); ++j) {
                        EXPECT_EQ(a[i].params[j].name, b[i].params[j].name) << e.id;
                        EXPECT_EQ(a[i].params[j].min, b[i].params[j].min) << e.id;
                        EXPECT_EQ(a[i].params[j].max, b[i].params[j].max) << e.id;
                        EXPECT_EQ(a[i].params[j].choices, b[i].params[j].choices) << e.id;
                    }
                }
            }
        }
    }
}

}  // namespace
}  // namespace tl
