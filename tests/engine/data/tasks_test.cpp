// Tests of the synthetic tasks: splits disjoint and deterministic, answers right by an independent check,
// facts consistent across phrasings, exact-match semantics, the old surface forms.
// The corpus, tokenizer and batching are tested in batch_test.cpp.
#include "data/tasks.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

#include "core/error.hpp"

namespace tl {
namespace {

constexpr std::string_view kQuestionEnd = "\nA: ";

// "Q: <verb> <arg>\nA: " -> "<arg>"; fails the test when the prompt has another shape.
std::string argument_of(const Example& e, std::string_view head) {
    EXPECT_TRUE(e.prompt.starts_with(head)) << e.prompt;
    EXPECT_TRUE(e.prompt.ends_with(kQuestionEnd)) << e.prompt;
    return e.prompt.substr(head.size(), e.prompt.size() - head.size() - kQuestionEnd.size());
}

std::string answer_of(const Example& e) {
    EXPECT_TRUE(e.response.ends_with('\n')) << e.response;
    EXPECT_EQ(e.response.find('\n'), e.response.size() - 1) << "one terminator, at the end: " << e.response;
    return e.response.substr(0, e.response.size() - 1);
}

class EveryTask : public ::testing::TestWithParam<std::string_view> {
protected:
    const TaskInfo& task() const { return find_task(GetParam()); }
};

TEST_P(EveryTask, SplitsAreDisjointAcrossSeedsAndHaveNoDuplicates) {
    std::map<Split, std::set<std::string>> prompts;
    for (const std::uint64_t seed : {1u, 2u}) {
        for (const auto& [split, n] :
             {std::pair{Split::train, 3000}, {Split::validation, 600}, {Split::test, 600}}) {
            const std::vector<Example> ex = task_examples(task(), split, n, seed);
            EXPECT_FALSE(ex.empty());
            std::set<std::string> within;
            for (const Example& e : ex) {
                EXPECT_TRUE(within.insert(e.prompt).second) << "duplicate prompt in one split: " << e.prompt;
                prompts[split].insert(e.prompt);
            }
        }
    }
    for (const auto& [a, b] : {std::pair{Split::train, Split::validation},
                               {Split::train, Split::test},
                               {Split::validation, Split::test}}) {
        for (const std::string& p : prompts[a]) {
            EXPECT_EQ(prompts[b].count(p), 0u) << p << " is in " << split_name(a) << " and " << split_name(b);
        }
    }
}

TEST_P(EveryTask, DeterministicPerSeedAndDifferentAcrossSeeds) {
    auto prompts = [&](std::uint64_t seed) {
        std::vector<std::string> v;
        for (const Example& e : task_examples(task(), Split::train, 200, seed))
            v.push_back(e.prompt + e.response);
        return v;
    };
    EXPECT_EQ(prompts(7), prompts(7));
    EXPECT_NE(prompts(7), prompts(8));
}

TEST_P(EveryTask, ExamplesHaveTheFormatAndFitTheContext) {
    for (const Split split : {Split::train, Split::validation, Split::test}) {
        for (const Example& e : task_examples(task(), split, 500, 3)) {
            EXPECT_TRUE(e.prompt.starts_with("Q: ")) << e.prompt;
            EXPECT_TRUE(e.prompt.ends_with(kQuestionEnd)) << e.prompt;
            EXPECT_GE(answer_of(e).size(), 1u);
            // "\n" + prompt + response must leave room in T = 128 (a row holds T + 1 tokens).
            EXPECT_LE(1 + e.prompt.size() + e.response.size(), 100u) << e.prompt;
            EXPECT_EQ(prompt_tokens(e).size(), 1 + e.prompt.size());
            EXPECT_EQ(prompt_tokens(e).front(), '\n');
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Data, EveryTask, ::testing::Values("reverse", "sort", "add", "json", "facts"),
                         [](const auto& info) { return std::string(info.param); });

TEST(Tasks, TableListsEveryTaskWithADescription) {
    std::set<std::string_view> names;
    for (const TaskInfo& t : all_tasks()) {
        names.insert(t.name);
        EXPECT_FALSE(t.description.empty()) << t.name;
        EXPECT_TRUE(t.sample || t.enumerate) << t.name;
    }
    EXPECT_EQ(names, (std::set<std::string_view>{"reverse", "sort", "add", "json", "facts"}));
}

TEST(Tasks, UnknownTaskNamesTheKnownOnes) {
    try {
        find_task("multiply");
        FAIL() << "expected tl::Error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("[data]"), std::string::npos) << msg;
        EXPECT_NE(msg.find("multiply"), std::string::npos) << msg;
        EXPECT_NE(msg.find("reverse"), std::string::npos) << msg;
        EXPECT_NE(msg.find("facts"), std::string::npos) << msg;
    }
    EXPECT_THROW(task_examples(find_task("add"), Split::train, -1, 0), Error);
    EXPECT_TRUE(task_examples(find_task("add"), Split::train, 0, 0).empty());
}

TEST(Tasks, ReverseAnswersAreTheReversedInput) {
    for (const Example& e : task_examples(find_task("reverse"), Split::train, 1000, 11)) {
        std::string s = argument_of(e, "Q: reverse ");
        EXPECT_GE(s.size(), 2u);
        EXPECT_LE(s.size(), 7u);
        EXPECT_TRUE(std::all_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; })) << s;
        std::reverse(s.begin(), s.end());
        EXPECT_EQ(answer_of(e), s);
    }
}

TEST(Tasks, SortAnswersAreTheSortedInput) {
    for (const Example& e : task_examples(find_task("sort"), Split::train, 1000, 11)) {
        std::string s = argument_of(e, "Q: sort ");
        EXPECT_GE(s.size(), 2u);
        EXPECT_LE(s.size(), 7u);
        std::sort(s.begin(), s.end());
        EXPECT_EQ(answer_of(e), s);
    }
}

TEST(Tasks, AddAnswersAreTheSumOfFixedWidthOperands) {
    std::size_t total = 0;
    for (const Split split : {Split::train, Split::validation, Split::test}) {
        const std::vector<Example> ex = task_examples(find_task("add"), split, 1'000'000, 5);
        total += ex.size();
        for (const Example& e : ex) {
            const std::string args = argument_of(e, "Q: ");
            const std::size_t plus = args.find(" plus ");
            ASSERT_NE(plus, std::string::npos) << e.prompt;
            const std::string a = args.substr(0, plus), b = args.substr(plus + 6);
            EXPECT_EQ(a.size(), static_cast<std::size_t>(kAddDigits)) << e.prompt;
            EXPECT_EQ(b.size(), static_cast<std::size_t>(kAddSecondDigits)) << e.prompt;
            EXPECT_EQ(answer_of(e), std::to_string(std::stol(a) + std::stol(b))) << e.prompt;
        }
    }
    if (kAddDigits == 2 && kAddSecondDigits == 1) {
        EXPECT_EQ(total, 90u * 10u) << "every pair 10..99 x 0..9, each in one split";
    }
}

// Rebuilds the object from the pairs with a different method than the generator: a stream, and "is it an
// integer" decided by parsing rather than by the key.
std::string expected_json(const std::string& pairs) {
    std::istringstream in(pairs);
    std::ostringstream out;
    out << '{';
    std::string item;
    bool first = true;
    while (in >> item) {
        const std::size_t eq = item.find('=');
        const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
        std::size_t parsed = 0;
        const bool is_int = !value.empty() && std::isdigit(static_cast<unsigned char>(value[0])) &&
                            (std::stoi(value, &parsed), parsed == value.size());
        out << (first ? "" : ",") << '"' << key << "\":" << (is_int ? value : '"' + value + '"');
        first = false;
    }
    out << '}';
    return out.str();
}

TEST(Tasks, JsonAnswersRebuildFromThePairs) {
    std::set<std::size_t> pair_counts;
    for (const Example& e : task_examples(find_task("json"), Split::train, 1000, 11)) {
        const std::string pairs = argument_of(e, "Q: json ");
        const auto n = static_cast<std::size_t>(std::count(pairs.begin(), pairs.end(), '='));
        pair_counts.insert(n);
        std::set<std::string> keys;
        std::istringstream in(pairs);
        for (std::string item; in >> item;) keys.insert(item.substr(0, item.find('=')));
        EXPECT_EQ(keys.size(), n) << "keys are distinct: " << pairs;
        EXPECT_EQ(answer_of(e), expected_json(pairs)) << e.prompt;
    }
    EXPECT_EQ(pair_counts, (std::set<std::size_t>{1, 2, 3}));
}

// The person is the one capitalised word after "Q:"; the relation is which question vocabulary is used.
std::pair<std::string, std::string> person_and_relation(const Example& e) {
    std::istringstream in(e.prompt.substr(3));
    std::string word, person;
    while (in >> word) {
        if (std::isupper(static_cast<unsigned char>(word[0])) && word != "A:") {
            person = word.substr(0, word.find_first_of("?."));
        }
    }
    const bool pet =
        e.prompt.find("pet") != std::string::npos || e.prompt.find("animal") != std::string::npos;
    return {person, pet ? "pet" : "city"};
}

TEST(Tasks, FactsAreConsistentAcrossPhrasingsAndSplitPerTemplate) {
    std::map<std::pair<std::string, std::string>, std::set<std::string>> answers;
    std::map<std::pair<std::string, std::string>, std::map<Split, int>> per_split;
    std::map<Split, std::set<std::string>> phrasings;  // the question with the person's name blanked out
    for (const Split split : {Split::train, Split::validation, Split::test}) {
        for (const Example& e : task_examples(find_task("facts"), split, 100000, 1)) {
            const auto key = person_and_relation(e);
            ASSERT_FALSE(key.first.empty()) << e.prompt;
            answers[key].insert(answer_of(e));
            ++per_split[key][split];
            std::string phrasing = e.prompt;
            phrasing.replace(phrasing.find(key.first), key.first.size(), "_");
            phrasings[split].insert(phrasing);
        }
    }
    std::map<std::string, const Fact*> by_person;
    for (const Fact& f : fact_table()) by_person[f.person] = &f;
    EXPECT_EQ(by_person.size(), static_cast<std::size_t>(kFactsPeople));
    EXPECT_EQ(answers.size(), 2u * kFactsPeople);
    for (const auto& [key, set] : answers) {
        ASSERT_EQ(set.size(), 1u) << key.first << " " << key.second << ": one answer for every phrasing";
        ASSERT_TRUE(by_person.count(key.first)) << key.first;
        const Fact& f = *by_person[key.first];
        EXPECT_EQ(*set.begin(), key.second == "city" ? f.city : f.pet) << key.first;
        EXPECT_EQ(per_split[key][Split::train], kFactsTemplates - 2) << key.first;
        EXPECT_EQ(per_split[key][Split::validation], 1) << key.first;
        EXPECT_EQ(per_split[key][Split::test], 1) << key.first;
    }
    // The test asks in phrasings that train uses for other facts.
    for (const std::string& p : phrasings[Split::test]) EXPECT_EQ(phrasings[Split::train].count(p), 1u) << p;
}

TEST(Tasks, FactNamesAreDistinctAndNoneIsAPrefixOfAnother) {
    const auto table = fact_table();
    for (const Fact& a : table) {
        for (const Fact& b : table) {
            if (&a != &b) {
                EXPECT_FALSE(a.person.starts_with(b.person)) << a.person << " / " << b.person;
            }
        }
    }
}

TEST(Tasks, ExactMatchComparesTheTextBeforeTheFirstNewline) {
    const Example e{"Q: reverse abc\nA: ", "cba\n"};
    EXPECT_TRUE(is_exact_match(e, "cba"));
    EXPECT_TRUE(is_exact_match(e, "cba\nQ: anything after the line break is ignored"));
    EXPECT_FALSE(is_exact_match(e, "cb"));
    EXPECT_FALSE(is_exact_match(e, "cbaa"));
    EXPECT_FALSE(is_exact_match(e, " cba"));
    EXPECT_FALSE(is_exact_match(e, ""));
    EXPECT_FALSE(is_exact_match(e, "\ncba"));
    EXPECT_EQ(split_name(Split::validation), "validation");
}

TEST(OldForms, LinesHaveTheOldSurfaceAndCorrectAnswers) {
    Rng rng(9);
    for (int i = 0; i < 300; ++i) {
        const std::string rev = old_format_line(OldForm::reverse, rng);
        ASSERT_TRUE(rev.starts_with("rev ")) << rev;
        std::string in = rev.substr(4, rev.find(" -> ") - 4);
        std::reverse(in.begin(), in.end());
        EXPECT_EQ(rev.substr(rev.find(" -> ") + 4), in) << rev;

        const std::string srt = old_format_line(OldForm::sort, rng);
        ASSERT_TRUE(srt.starts_with("sort ")) << srt;
        in = srt.substr(5, srt.find(" -> ") - 5);
        std::sort(in.begin(), in.end());
        EXPECT_EQ(srt.substr(srt.find(" -> ") + 4), in) << srt;

        const std::string add = old_format_line(OldForm::add, rng);  // "47+8=055", sum padded
        const std::size_t plus = add.find('+'), eq = add.find('=');
        ASSERT_EQ(plus, static_cast<std::size_t>(kAddDigits)) << add;
        ASSERT_EQ(add.size(), eq + 1 + kAddDigits + 1) << add;
        EXPECT_EQ(std::stol(add.substr(eq + 1)),
                  std::stol(add.substr(0, plus)) + std::stol(add.substr(plus + 1)));

        const std::string kv = old_format_line(OldForm::kv, rng);
        ASSERT_TRUE(kv.starts_with("kv ")) << kv;
        EXPECT_NE(kv.find(" => "), std::string::npos) << kv;
        const std::string obj = old_format_line(OldForm::json_object, rng);
        EXPECT_TRUE(obj.starts_with("{\"") && obj.ends_with("}")) << obj;
        for (const std::string* line : {&rev, &srt, &add, &kv, &obj}) {
            EXPECT_EQ(line->find('\n'), std::string::npos) << *line;
        }
    }
}

TEST(OldForms, KvLineListsThePairsAgain) {
    Rng rng(4);
    for (int i = 0; i < 200; ++i) {
        const std::string kv = old_format_line(OldForm::kv, rng);  // "kv a=1 b=x => a: 1, b: x"
        const std::size_t arrow = kv.find(" => ");
        std::istringstream in(kv.substr(3, arrow - 3));
        std::string expected;
        for (std::string item; in >> item;) {
            const std::size_t eq = item.find('=');
            expected += (expected.empty() ? "" : ", ") + item.substr(0, eq) + ": " + item.substr(eq + 1);
        }
        EXPECT_EQ(kv.substr(arrow + 4), expected) << kv;
    }
}

// The corpus holds only instances whose task example is in the train split: no held-out sum is pretrained.
TEST(OldForms, AddLinesComeOnlyFromTrainSplitPairs) {
    std::set<std::string> held_out;
    for (const Split split : {Split::validation, Split::test}) {
        for (const Example& e : task_examples(find_task("add"), split, 1'000'000, 0))
            held_out.insert(e.prompt);
    }
    ASSERT_FALSE(held_out.empty());
    Rng rng(21);
    for (int i = 0; i < 5000; ++i) {
        const std::string add = old_format_line(OldForm::add, rng);
        const std::size_t plus = add.find('+'), eq = add.find('=');
        const std::string prompt = "Q: " + add.substr(0, plus) + " plus " +
                                   add.substr(plus + 1, eq - plus - 1) + std::string(kQuestionEnd);
        EXPECT_EQ(held_out.count(prompt), 0u) << add;
    }
}

}  // namespace
}  // namespace tl
