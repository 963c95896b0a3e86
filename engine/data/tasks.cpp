// The synthetic tasks (see tasks.hpp). Sections: [splits] [reverse, sort] [add] [json] [facts] [table]
// [old forms]. Each skill is drawn once as plain data and rendered in two surface forms, so the task and the
// corpus cannot drift apart.
#include "data/tasks.hpp"

#include <algorithm>
#include <array>
#include <unordered_set>

#include "core/error.hpp"
#include "data/tokenizer.hpp"

namespace tl {
namespace {

// ---- [splits] ----

std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h = 0xcbf29ce484222325ull) {
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    return h;
}

// The split of an example is a function of its content only, so the splits are disjoint for every seed. The
// splitmix64 finaliser matters: the lowest bit of plain FNV-1a is the parity of the bytes' lowest bits, which
// would tie "mod 10" to the digits of an add prompt.
Split hashed_split(std::string_view task, std::string_view prompt) {
    std::uint64_t h = fnv1a(prompt, fnv1a("\xff", fnv1a(task)));
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    const std::uint64_t bucket = h % 10;  // 0-7 train, 8 validation, 9 test: 80/10/10
    return bucket < 8 ? Split::train : (bucket == 8 ? Split::validation : Split::test);
}

int below(Rng& rng, int n) { return static_cast<int>(rng.below(static_cast<std::uint64_t>(n))); }

// ---- [reverse, sort] ----

constexpr int kMinLetters = 2, kMaxLetters = 7;

std::string draw_letters(Rng& rng) {
    std::string s(static_cast<std::size_t>(kMinLetters + below(rng, kMaxLetters - kMinLetters + 1)), 'a');
    for (char& c : s) c = static_cast<char>('a' + below(rng, 26));
    return s;
}

std::string reversed(std::string s) {
    std::reverse(s.begin(), s.end());
    return s;
}

std::string sorted(std::string s) {
    std::sort(s.begin(), s.end());
    return s;
}

Example reverse_example(const std::string& s) { return {"Q: reverse " + s + "\nA: ", reversed(s) + "\n"}; }
Example sort_example(const std::string& s) { return {"Q: sort " + s + "\nA: ", sorted(s) + "\n"}; }
std::string reverse_old(const std::string& s) { return "rev " + s + " -> " + reversed(s); }
std::string sort_old(const std::string& s) { return "sort " + s + " -> " + sorted(s); }

Example sample_reverse(Rng& rng) { return reverse_example(draw_letters(rng)); }
Example sample_sort(Rng& rng) { return sort_example(draw_letters(rng)); }

// ---- [add] ----

static_assert(kAddDigits >= 1 && kAddDigits <= 8, "kAddDigits: operands and sum must fit an int");
static_assert(kAddSecondDigits >= 1 && kAddSecondDigits <= kAddDigits, "the second operand is not the longer one");

constexpr int pow10(int e) { return e == 0 ? 1 : 10 * pow10(e - 1); }
// Exactly d digits without leading zeros (1 digit: 0..9).
constexpr int digits_min(int d) { return d == 1 ? 0 : pow10(d - 1); }
constexpr int kAddMin = digits_min(kAddDigits), kAddMax = pow10(kAddDigits) - 1;
constexpr int kAddMinB = digits_min(kAddSecondDigits), kAddMaxB = pow10(kAddSecondDigits) - 1;

struct AddOperands {
    int a, b;
};

AddOperands draw_operands(Rng& rng) {
    const int a = kAddMin + below(rng, kAddMax - kAddMin + 1);
    const int b = kAddMinB + below(rng, kAddMaxB - kAddMinB + 1);
    return {a, b};
}

Example add_example(AddOperands x) {
    return {"Q: " + std::to_string(x.a) + " plus " + std::to_string(x.b) + "\nA: ",
            std::to_string(x.a + x.b) + "\n"};
}

// The sum is padded to kAddDigits + 1 digits so every answer digit sits at a fixed distance from the operand
// digits it depends on; the leading digit is the final carry. The task's answer is plain ("46").
std::string add_old(AddOperands x) {
    std::string sum = std::to_string(x.a + x.b);
    sum.insert(0, static_cast<std::size_t>(kAddDigits + 1) - sum.size(), '0');
    return std::to_string(x.a) + "+" + std::to_string(x.b) + "=" + sum;
}

Example sample_add(Rng& rng) { return add_example(draw_operands(rng)); }

std::vector<LabeledExample> enumerate_add() {
    std::vector<LabeledExample> all;
    all.reserve(static_cast<std::size_t>(kAddMax - kAddMin + 1) * (kAddMaxB - kAddMinB + 1));
    for (int a = kAddMin; a <= kAddMax; ++a) {
        for (int b = kAddMinB; b <= kAddMaxB; ++b) {
            Example e = add_example({a, b});
            const Split split = hashed_split("add", e.prompt);
            all.push_back({std::move(e), split});
        }
    }
    return all;
}

// ---- [json] ----

constexpr int kJsonMaxPairs = 3;
constexpr int kJsonMaxInt = 99;  // integer values 0..99

constexpr std::array<std::string_view, 6> kColors = {"red", "blue", "green", "black", "white", "pink"};
constexpr std::array<std::string_view, 5> kShapes = {"round", "square", "flat", "long", "tall"};
constexpr std::array<std::string_view, 5> kMoods = {"happy", "sad", "calm", "angry", "tired"};
constexpr std::array<std::string_view, 6> kFoods = {"rice", "bread", "soup", "cake", "fish", "corn"};

// A key's values are either words (a JSON string) or, with no words, integers (a JSON number).
struct JsonKey {
    std::string_view key;
    std::span<const std::string_view> words;
};
constexpr JsonKey kJsonKeys[] = {
    {"color", kColors}, {"shape", kShapes}, {"mood", kMoods}, {"food", kFoods},
    {"size", {}},       {"age", {}},        {"count", {}},    {"level", {}},
};
constexpr int kJsonKeyCount = static_cast<int>(std::size(kJsonKeys));

struct KeyValue {
    std::string key, value;
    bool is_number;
};

std::vector<KeyValue> draw_pairs(Rng& rng) {
    std::array<int, kJsonKeyCount> order{};
    for (int i = 0; i < kJsonKeyCount; ++i) order[i] = i;
    const int n = 1 + below(rng, kJsonMaxPairs);
    std::vector<KeyValue> pairs;
    for (int i = 0; i < n; ++i) {  // a partial Fisher-Yates: n distinct keys in random order
        std::swap(order[i], order[i + below(rng, kJsonKeyCount - i)]);
        const JsonKey& k = kJsonKeys[order[i]];
        if (k.words.empty()) {
            pairs.push_back({std::string(k.key), std::to_string(below(rng, kJsonMaxInt + 1)), true});
        } else {
            pairs.push_back({std::string(k.key),
                             std::string(k.words[below(rng, static_cast<int>(k.words.size()))]), false});
        }
    }
    return pairs;
}

std::string json_object(const std::vector<KeyValue>& pairs) {
    std::string s = "{";
    for (const KeyValue& kv : pairs) {
        if (s.size() > 1) s += ",";
        s += "\"" + kv.key + "\":" + (kv.is_number ? kv.value : "\"" + kv.value + "\"");
    }
    return s + "}";
}

std::string kv_list(const std::vector<KeyValue>& pairs) {
    std::string s;
    for (const KeyValue& kv : pairs) s += " " + kv.key + "=" + kv.value;
    return s;
}

Example json_example(const std::vector<KeyValue>& pairs) {
    return {"Q: json" + kv_list(pairs) + "\nA: ", json_object(pairs) + "\n"};
}

std::string kv_old(const std::vector<KeyValue>& pairs) {
    std::string s = "kv" + kv_list(pairs) + " =>";
    for (std::size_t i = 0; i < pairs.size(); ++i)
        s += (i ? ", " : " ") + pairs[i].key + ": " + pairs[i].value;
    return s;
}

Example sample_json(Rng& rng) { return json_example(draw_pairs(rng)); }

// ---- [facts] ----

// Fixed, so the fact table is the same for every task seed: the seed picks which questions, not which facts.
constexpr std::uint64_t kFactsSeed = 0x5eedfac7ull;
constexpr std::array<std::string_view, 8> kCities = {"Torvik", "Mellan", "Quasso", "Dravel",
                                                     "Pennor", "Zulmar", "Vostin", "Kelbry"};
constexpr std::array<std::string_view, 8> kPets = {"glimp",   "snorf", "wuzzle", "quibbet",
                                                   "drellow", "frolp", "mizzit", "zorvat"};

// A question is before + person + after.
struct Template {
    std::string_view before, after;
};
constexpr Template kCityTemplates[kFactsTemplates] = {
    {"Q: where does ", " live?\nA: "},         {"Q: ", " lives in which city?\nA: "},
    {"Q: which city is ", " from?\nA: "},      {"Q: what city does ", " live in?\nA: "},
    {"Q: in which city does ", " live?\nA: "}, {"Q: name the city where ", " lives.\nA: "},
};
constexpr Template kPetTemplates[kFactsTemplates] = {
    {"Q: what pet does ", " have?\nA: "},     {"Q: ", " has which pet?\nA: "},
    {"Q: what is the pet of ", "?\nA: "},     {"Q: which animal does ", " keep?\nA: "},
    {"Q: what animal lives with ", "?\nA: "}, {"Q: name the pet of ", ".\nA: "},
};

// Two consonant-vowel syllables and sometimes a final consonant: "Foba", "Rumol". Pronounceable, so the
// model sees names shaped like words, yet none is an English word the corpus could contain.
std::string draw_name(Rng& rng) {
    constexpr std::string_view kOnsets = "bdfgklmnprstvz", kVowels = "aeiou", kCodas = "klmnrs";
    std::string s;
    for (int i = 0; i < 2; ++i) {
        s += kOnsets[below(rng, static_cast<int>(kOnsets.size()))];
        s += kVowels[below(rng, static_cast<int>(kVowels.size()))];
    }
    if (below(rng, 2) == 1) s += kCodas[below(rng, static_cast<int>(kCodas.size()))];
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
    return s;
}

// No name is a prefix of another, so a question names exactly one person whichever way it is read.
bool clashes(const std::string& name, const std::vector<Fact>& people) {
    for (const Fact& f : people) {
        if (f.person.starts_with(name) || name.starts_with(f.person)) return true;
    }
    return false;
}

struct FactsData {
    std::vector<Fact> table;
    std::vector<std::string> entities;
};

FactsData make_facts() {
    Rng rng(kFactsSeed, 0);
    FactsData d;
    while (static_cast<int>(d.table.size()) < kFactsPeople) {
        std::string name = draw_name(rng);
        if (clashes(name, d.table)) continue;  // 14*5*14*5*(1+6) names: ends after a few dozen draws
        const std::string_view city = kCities[below(rng, static_cast<int>(kCities.size()))];
        const std::string_view pet = kPets[below(rng, static_cast<int>(kPets.size()))];
        d.table.push_back({std::move(name), std::string(city), std::string(pet)});
    }
    for (const Fact& f : d.table) d.entities.push_back(f.person);
    for (const std::string_view c : kCities) d.entities.emplace_back(c);
    for (const std::string_view p : kPets) d.entities.emplace_back(p);
    return d;
}

const FactsData& facts_data() {
    static const FactsData data = make_facts();
    return data;
}

// Split per (fact, template), rotated over people: for relation r and person p, template (p + 3r) mod 6 is
// the test question and the next one the validation question; the other four train. Every phrasing is a test
// phrasing for some facts and a train phrasing for others, so the test asks a fact learned in other words.
std::vector<LabeledExample> enumerate_facts() {
    std::vector<LabeledExample> all;
    const std::vector<Fact>& table = facts_data().table;
    for (int p = 0; p < static_cast<int>(table.size()); ++p) {
        for (int r = 0; r < 2; ++r) {
            const Template* templates = r == 0 ? kCityTemplates : kPetTemplates;
            const std::string& answer = r == 0 ? table[p].city : table[p].pet;
            for (int t = 0; t < kFactsTemplates; ++t) {
                const int test_t = (p + 3 * r) % kFactsTemplates,
                          validation_t = (test_t + 1) % kFactsTemplates;
                const Split split =
                    t == test_t ? Split::test : (t == validation_t ? Split::validation : Split::train);
                Example e{
                    std::string(templates[t].before) + table[p].person + std::string(templates[t].after),
                    answer + "\n"};
                all.push_back({std::move(e), split});
            }
        }
    }
    return all;
}

// ---- [table] ----

constexpr TaskInfo kTasks[] = {
    {"reverse", "reverse a string of 2-7 lowercase letters", "rev abcde -> edcba", &sample_reverse, nullptr},
    {"sort", "sort the letters of a string of 2-7 lowercase letters", "sort dbca -> abcd", &sample_sort,
     nullptr},
    // Listed whole while the space is small (kAddDigits 2: 8,100 pairs); sampled above that.
    {"add", "add a one-digit number to a two-digit number, e.g. 47 plus 8", "47+8=055", &sample_add,
     kAddDigits <= 2 ? &enumerate_add : nullptr},
    {"json", "turn 1-3 key=value pairs into a JSON object", "kv color=red size=4 => color: red, size: 4",
     &sample_json, nullptr},
    {"facts", "answer where an invented person lives or what pet they have (facts the base never saw)", "",
     nullptr, &enumerate_facts},
};

std::vector<Example> pick_from_enumeration(const TaskInfo& task, Split split, int n, Rng& rng) {
    std::vector<Example> pool;
    for (LabeledExample& le : task.enumerate()) {
        if (le.split == split) pool.push_back(std::move(le.example));
    }
    const std::size_t take = std::min(static_cast<std::size_t>(n), pool.size());
    for (std::size_t i = 0; i < take; ++i) {  // the first `take` steps of a Fisher-Yates shuffle
        std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
    }
    pool.resize(take);
    return pool;
}

// Rejection sampling with a bound: a draw is kept when its hash lands in `split` and its prompt is new.
std::vector<Example> sample_distinct(const TaskInfo& task, Split split, int n, Rng& rng) {
    std::vector<Example> out;
    std::unordered_set<std::string> seen;
    const std::int64_t max_draws = 64 * static_cast<std::int64_t>(n) + 10000;
    std::int64_t draws = 0;
    for (; draws < max_draws && static_cast<int>(out.size()) < n; ++draws) {
        Example e = task.sample(rng);
        if (hashed_split(task.name, e.prompt) != split || !seen.insert(e.prompt).second) continue;
        out.push_back(std::move(e));
    }
    if (static_cast<int>(out.size()) < n) {
        throw Error("[data] task_examples: found only " + std::to_string(out.size()) + " distinct '" +
                    std::string(task.name) + "' examples of the " + std::string(split_name(split)) +
                    " split in " + std::to_string(draws) + " draws, asked for " + std::to_string(n) +
                    "; ask for fewer examples");
    }
    return out;
}

// ---- [old forms] ----

// Draws until the instance's NEW-format example is a train example (80% of draws), then renders it OLD.
template <class Draw, class ToExample, class ToOld>
std::string train_only_line(std::string_view task, Rng& rng, Draw draw, ToExample to_example, ToOld to_old) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const auto x = draw(rng);
        if (hashed_split(task, to_example(x).prompt) == Split::train) return to_old(x);
    }
    throw_internal("train draw", "1000 draws without a train-split instance", __FILE__, __LINE__);
}

}  // namespace

std::string_view split_name(Split split) {
    switch (split) {
        case Split::train:
            return "train";
        case Split::validation:
            return "validation";
        case Split::test:
            return "test";
    }
    return "?";
}

std::span<const TaskInfo> all_tasks() { return kTasks; }

std::vector<std::string> task_names() {
    std::vector<std::string> names;
    for (const TaskInfo& t : all_tasks()) names.emplace_back(t.name);
    return names;
}

const TaskInfo& find_task(std::string_view name) {
    std::string known;
    for (const TaskInfo& t : kTasks) {
        if (t.name == name) return t;
        known += (known.empty() ? "" : ", ") + std::string(t.name);
    }
    throw Error("[data] unknown task '" + std::string(name) + "'; known tasks: " + known);
}

std::vector<Example> task_examples(const TaskInfo& task, Split split, int n, std::uint64_t seed) {
    if (n < 0) {
        throw Error("[data] task_examples: n must be >= 0, got " + std::to_string(n) + " for task '" +
                    std::string(task.name) + "'");
    }
    TL_ASSERT(task.enumerate || task.sample, "[data] task '" + std::string(task.name) + "' has no generator");
    Rng rng(seed, fnv1a(task.name));  // one stream per task: the same seed gives unrelated draws per task
    if (task.enumerate) return pick_from_enumeration(task, split, n, rng);
    return sample_distinct(task, split, n, rng);
}

std::vector<std::int32_t> prompt_tokens(const Example& example) { return encode("\n" + example.prompt); }

bool is_exact_match(const Example& example, std::string_view generated) {
    generated = generated.substr(0, generated.find('\n'));
    std::string_view expected = example.response;
    if (expected.ends_with('\n')) expected.remove_suffix(1);
    return generated == expected;
}

std::span<const Fact> fact_table() { return facts_data().table; }
std::span<const std::string> facts_entity_names() { return facts_data().entities; }

std::string old_format_line(OldForm form, Rng& rng) {
    switch (form) {
        case OldForm::reverse:
            return train_only_line("reverse", rng, draw_letters, reverse_example, reverse_old);
        case OldForm::sort:
            return train_only_line("sort", rng, draw_letters, sort_example, sort_old);
        case OldForm::add:
            return train_only_line("add", rng, draw_operands, add_example, add_old);
        case OldForm::kv:
            return train_only_line("json", rng, draw_pairs, json_example, kv_old);
        case OldForm::json_object:
            return train_only_line("json", rng, draw_pairs, json_example, json_object);
    }
    throw Error("[data] old_format_line: unknown OldForm value " + std::to_string(static_cast<int>(form)));
}

}  // namespace tl
