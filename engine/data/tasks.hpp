// Synthetic fine-tuning tasks with exact-match scoring: reverse, sort, add, json, facts. Each example is a
// prompt in the task's NEW format and a response; the corpus (corpus.hpp) holds the same skills in an OLD
// format. Not the batching (batch.hpp) nor the generation loop (model/generate.hpp). Design: docs/data.md.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.hpp"

namespace tl {

// A model sees "\n" + prompt and should continue with response. The response ends with its terminator '\n'.
struct Example {
    std::string prompt;
    std::string response;
};

enum class Split { train, validation, test };
std::string_view split_name(Split split);

struct LabeledExample {
    Example example;
    Split split;
};

// A task is a row of this table. Large example spaces are sampled (`sample`; an example's split is a hash of
// the task name and its prompt); small ones are listed whole (`enumerate`, which also assigns the splits).
struct TaskInfo {
    std::string_view name;
    std::string_view description;         // one line, for `tunelab tasks`
    std::string_view old_format_example;  // how the skill looks in the pretraining corpus; "" = never there
    Example (*sample)(Rng& rng);          // nullptr when the task only enumerates
    std::vector<LabeledExample> (*enumerate)();  // nullptr when the space is too large to list
};

std::span<const TaskInfo> all_tasks();
std::vector<std::string> task_names();  // all_tasks() by name, for choice parameters
const TaskInfo& find_task(std::string_view name);  // unknown name: tl::Error listing the known ones

// n distinct-prompt examples of one split, deterministic in (task, split, n, seed); different seeds give
// different examples (or, once a finite split is exhausted, the same examples in a different order). A split
// with fewer than n examples in existence (add, facts) returns all of them: check the size you got.
std::vector<Example> task_examples(const TaskInfo& task, Split split, int n, std::uint64_t seed);

// What generation is fed: "\n" + prompt. The leading "\n" is the same line break that precedes every line of
// the pretraining corpus, so a prompt starts where a line starts.
std::vector<std::int32_t> prompt_tokens(const Example& example);

// `generated` is the model's output up to (not including) the first '\n' or end-of-text; anything from a '\n'
// on is ignored, so passing the raw output also works. True when it equals the response without its '\n'.
bool is_exact_match(const Example& example, std::string_view generated);

// ---- add: the difficulty knobs ----
// The first operand has exactly kAddDigits digits, the second exactly kAddSecondDigits (1 digit: 0..9), so both
// formats are fixed-width without leading zeros. The corpus pads the sum to kAddDigits + 1 digits ("47+8=055").
// Why 2 + 1 and not 2 + 2: measured in docs/data.md (a tiny base did not learn 2 + 2 in a lesson's budget).
inline constexpr int kAddDigits = 2;
inline constexpr int kAddSecondDigits = 1;

// ---- facts: a table the pretraining corpus never mentions ----
inline constexpr int kFactsPeople = 40;    // invented people, made from a fixed seed (not the task seed)
inline constexpr int kFactsTemplates = 6;  // question phrasings per relation: 4 train, 1 validation, 1 test
struct Fact {
    std::string person;  // "Rumol"
    std::string city;    // where the person lives: "Dravel"
    std::string pet;     // the person's pet: "wuzzle"
};
std::span<const Fact> fact_table();
// Every person, city and pet name of the facts task: the corpus rejects any line containing one.
std::span<const std::string> facts_entity_names();

// ---- the same skills in their OLD surface form, as the pretraining corpus holds them ----
enum class OldForm {
    reverse,      // "rev abcde -> edcba"
    sort,         // "sort dbca -> abcd"
    add,          // "47+8=055", "95+9=104"
    kv,           // "kv color=red size=4 => color: red, size: 4"
    json_object,  // "{\"color\":\"red\",\"size\":4}" (no prompt: the syntax, not the task)
};
// One line (no '\n') of a random instance whose NEW-format example falls in the train split, so no validation
// or test item of a task appears in pretraining, in any surface form.
std::string old_format_line(OldForm form, Rng& rng);

}  // namespace tl
