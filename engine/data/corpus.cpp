// The base corpus (see corpus.hpp): a weighted choice of line kinds, each line generated from the stream's
// Rng. Skill lines come from tasks.cpp (old_format_line), so the corpus and the tasks share one definition.
#include "data/corpus.hpp"

#include <array>

#include "core/error.hpp"
#include "data/tasks.hpp"

namespace tl {
namespace {

constexpr CorpusMixEntry kMix[] = {
    {CorpusLine::reverse, "reverse", kMixReverse},
    {CorpusLine::sort, "sort", kMixSort},
    {CorpusLine::add, "add", kMixAdd},
    {CorpusLine::kv, "kv", kMixKv},
    {CorpusLine::json_object, "json_object", kMixJsonObject},
    {CorpusLine::filler, "filler", kMixFiller},
    {CorpusLine::qa, "qa", kMixQa},
};
constexpr double kMixSum = kMixReverse + kMixSort + kMixAdd + kMixKv + kMixJsonObject + kMixFiller + kMixQa;
static_assert(kMixSum > 1.0 - 1e-9 && kMixSum < 1.0 + 1e-9, "the corpus mix weights must sum to 1");

constexpr std::uint64_t kCorpusStream = 0xc0de;  // the corpus's Rng stream, apart from the tasks' streams

// ---- filler: a tiny grammar of lowercase sentences, no digits, no names ----
constexpr std::array<std::string_view, 12> kAdjectives = {"small", "big",  "old",  "new",  "quiet", "loud",
                                                          "warm",  "cold", "slow", "fast", "brown", "happy"};
constexpr std::array<std::string_view, 16> kNouns = {"dog",   "cat",    "bird",  "tree",   "house",  "river",
                                                     "child", "farmer", "boat",  "road",   "garden", "window",
                                                     "book",  "apple",  "horse", "teacher"};
constexpr std::array<std::string_view, 10> kVerbs = {"saw",     "found",    "liked",   "moved",  "watched",
                                                     "painted", "followed", "carried", "helped", "opened"};
constexpr std::array<std::string_view, 6> kTimes = {"today",       "at night",  "in the morning",
                                                    "after lunch", "every day", "last week"};

template <std::size_t N>
std::string_view pick(Rng& rng, const std::array<std::string_view, N>& words) {
    return words[rng.below(N)];
}

std::string filler_line(Rng& rng) {
    std::string s;
    switch (rng.below(3)) {
        case 0:
            s = "the " + std::string(pick(rng, kAdjectives)) + " " + std::string(pick(rng, kNouns)) + " " +
                std::string(pick(rng, kVerbs)) + " the " + std::string(pick(rng, kNouns));
            break;
        case 1:
            s = "a " + std::string(pick(rng, kNouns)) + " was " + std::string(pick(rng, kAdjectives)) + " " +
                std::string(pick(rng, kTimes));
            break;
        default:
            s = "we " + std::string(pick(rng, kVerbs)) + " the " + std::string(pick(rng, kAdjectives)) + " " +
                std::string(pick(rng, kNouns)) + " " + std::string(pick(rng, kTimes));
            break;
    }
    return s + ".";
}

// ---- qa: unrelated questions, so "Q:" and "A:" are familiar markers before any task uses them. None asks
// about a person, a city or a pet, and none uses a task's words (reverse, sort, plus, json).
struct QaPair {
    std::string_view q, a;
};
constexpr QaPair kQa[] = {
    {"what color is grass?", "green"},
    {"what color is the sky?", "blue"},
    {"what color is snow?", "white"},
    {"what color is a banana?", "yellow"},
    {"how many legs does a dog have?", "four"},
    {"how many days are in a week?", "seven"},
    {"what do bees make?", "honey"},
    {"what is frozen water called?", "ice"},
    {"which farm animal says moo?", "cow"},
    {"what is the opposite of hot?", "cold"},
    {"what is the opposite of up?", "down"},
    {"what is a baby cat called?", "kitten"},
    {"what is a baby dog called?", "puppy"},
    {"what shape is a ball?", "round"},
    {"what season comes after winter?", "spring"},
    {"what is the first month of the year?", "january"},
    {"what day comes after monday?", "tuesday"},
    {"what falls from clouds?", "rain"},
    {"what do birds use to fly?", "wings"},
    {"what gives us light in the day?", "the sun"},
};

std::string qa_line(Rng& rng) {
    const QaPair& p = kQa[rng.below(std::size(kQa))];
    return "Q: " + std::string(p.q) + "\nA: " + std::string(p.a);
}

bool names_a_fact_entity(const std::string& line) {
    for (const std::string& name : facts_entity_names()) {
        if (line.find(name) != std::string::npos) return true;
    }
    return false;
}

CorpusLine draw_kind(Rng& rng) {
    const double u = rng.uniform();
    double cumulative = 0;
    for (const CorpusMixEntry& e : kMix) {
        cumulative += e.weight;
        if (u < cumulative) return e.kind;
    }
    return kMix[std::size(kMix) - 1].kind;  // u within rounding of 1
}

}  // namespace

std::span<const CorpusMixEntry> corpus_mix() { return kMix; }

std::string corpus_line(CorpusLine kind, Rng& rng) {
    switch (kind) {
        case CorpusLine::reverse:
            return old_format_line(OldForm::reverse, rng);
        case CorpusLine::sort:
            return old_format_line(OldForm::sort, rng);
        case CorpusLine::add:
            return old_format_line(OldForm::add, rng);
        case CorpusLine::kv:
            return old_format_line(OldForm::kv, rng);
        case CorpusLine::json_object:
            return old_format_line(OldForm::json_object, rng);
        case CorpusLine::filler:
            return filler_line(rng);
        case CorpusLine::qa:
            return qa_line(rng);
    }
    throw Error("[data] corpus_line: unknown CorpusLine value " + std::to_string(static_cast<int>(kind)));
}

// The stream starts with '\n' so that every line, the first included, follows a line break, as a task's
// "\n" + prompt does.
CorpusStream::CorpusStream(std::uint64_t seed) : rng_(seed, kCorpusStream), text_("\n") {}

char CorpusStream::next_byte() {
    if (pos_ == text_.size()) {
        text_.clear();
        pos_ = 0;
        while (text_.size() < 4096) {
            std::string line = corpus_line(draw_kind(rng_), rng_);
            // A random letter string can spell a pet's name ("glimp"); the facts must stay unseen, so redraw.
            if (names_a_fact_entity(line)) continue;
            text_ += line;
            text_ += '\n';
        }
    }
    return text_[pos_++];
}

void CorpusStream::fill_row(std::span<std::int32_t> tokens) {
    for (std::int32_t& t : tokens) t = static_cast<unsigned char>(next_byte());
}

std::string CorpusStream::next_text(std::size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = next_byte();
    return s;
}

}  // namespace tl
