// Tests of the token side of data: the byte tokenizer, the pretraining corpus (what it must never contain)
// and batching (targets shifted by one, loss weights per target, whole examples, determinism). The tasks
// themselves are tested in tasks_test.cpp.
#include "data/batch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.hpp"
#include "data/tokenizer.hpp"

namespace tl {
namespace {

// ---- tokenizer ----

TEST(Tokenizer, BytesRoundTripAndEndOfTextIsShown) {
    const std::string text = "Q: reverse abc\nA: cba\n\xe2\x82\xac";  // with a 3-byte UTF-8 character
    const std::vector<std::int32_t> ids = encode(text);
    ASSERT_EQ(ids.size(), text.size());
    EXPECT_EQ(ids[0], 'Q');
    EXPECT_EQ(ids.back(), 0xac);  // a byte above 127 is its value, not a negative char
    EXPECT_EQ(decode(ids), text);
    const std::vector<std::int32_t> with_eot = {'h', 'i', kEndOfText};
    EXPECT_EQ(decode(with_eot), "hi<|endoftext|>");
    EXPECT_EQ(kVocabSize, 257);
}

TEST(Tokenizer, OutOfRangeIdsThrow) {
    const std::vector<std::int32_t> too_big = {'a', kVocabSize}, negative = {-1};
    EXPECT_THROW(decode(too_big), Error);
    EXPECT_THROW(decode(negative), Error);
}

// ---- corpus ----

TEST(Corpus, NeverHoldsATaskFormatOrAFactsEntity) {
    CorpusStream stream(1);
    const std::string text = stream.next_text(400'000);
    for (const std::string_view banned :
         {"Q: reverse", "Q: sort", " plus ", "Q: json", "Q: add", "<|endoftext|>"}) {
        EXPECT_EQ(text.find(banned), std::string::npos) << "corpus contains '" << banned << "'";
    }
    for (const std::string& name : facts_entity_names()) {
        EXPECT_EQ(text.find(name), std::string::npos) << "corpus names the facts entity " << name;
    }
    // ... but it does hold every skill in its old form, and the Q:/A: markers.
    for (const std::string_view expected :
         {"\nrev ", "\nsort ", " -> ", "\nkv ", " => ", "\n{\"", "\nQ: ", "\nA: ", "\nthe "}) {
        EXPECT_NE(text.find(expected), std::string::npos) << "corpus lacks '" << expected << "'";
    }
}

TEST(Corpus, StreamIsDeterministicPerSeedAndRowsContinueTheText) {
    CorpusStream a(5), b(5), c(6);
    EXPECT_EQ(a.next_text(5000), b.next_text(5000));
    CorpusStream d(5);
    EXPECT_NE(c.next_text(5000), d.next_text(5000));
    CorpusStream e(9), f(9);
    std::vector<std::int32_t> row(700);
    e.fill_row(row);
    std::vector<std::int32_t> row2(300);
    e.fill_row(row2);
    row.insert(row.end(), row2.begin(), row2.end());
    EXPECT_EQ(decode(row), f.next_text(1000));
}

TEST(Corpus, MixIsATableOfWeightsSummingToOne) {
    double sum = 0;
    Rng rng(3);
    for (const CorpusMixEntry& e : corpus_mix()) {
        EXPECT_GT(e.weight, 0.0) << e.name;
        sum += e.weight;
        EXPECT_FALSE(corpus_line(e.kind, rng).empty()) << e.name;
    }
    EXPECT_NEAR(sum, 1.0, 1e-9);
}

// ---- batching ----

std::vector<Example> some_examples(int n) { return task_examples(find_task("reverse"), Split::train, n, 42); }

std::string example_text(const Example& e) { return "\n" + e.prompt + e.response; }

// The T + 1 tokens of row b: the inputs and the last target.
std::vector<std::int32_t> row_slots(const Batch& batch, int b) {
    std::vector<std::int32_t> s(batch.tokens.begin() + b * batch.T, batch.tokens.begin() + (b + 1) * batch.T);
    s.push_back(batch.targets[(b + 1) * batch.T - 1]);
    return s;
}

void expect_targets_are_shifted_tokens(const Batch& batch) {
    ASSERT_EQ(batch.tokens.size(), static_cast<std::size_t>(batch.B * batch.T));
    ASSERT_EQ(batch.targets.size(), batch.tokens.size());
    ASSERT_EQ(batch.weights.size(), batch.tokens.size());
    for (int b = 0; b < batch.B; ++b) {
        for (int t = 0; t + 1 < batch.T; ++t)
            EXPECT_EQ(batch.targets[b * batch.T + t], batch.tokens[b * batch.T + t + 1]);
    }
}

// Walks a row against the examples it should hold, in order, checking each target's weight; returns how many
// examples the row held and advances `next`.
void expect_row_holds_whole_examples(const Batch& batch, int b, const std::vector<Example>& examples,
                                     std::size_t& next, float plw) {
    const std::vector<std::int32_t> slots = row_slots(batch, b);
    std::size_t pos = 0;
    while (next < examples.size()) {
        const std::vector<std::int32_t> ex = encode(example_text(examples[next]));
        if (pos + ex.size() > slots.size()) break;
        const std::size_t prompt_len = 1 + examples[next].prompt.size();
        for (std::size_t i = 0; i < ex.size(); ++i) {
            ASSERT_EQ(slots[pos + i], ex[i]) << "row " << b << " slot " << pos + i;
            if (pos + i == 0) continue;  // slot 0 is never a target
            const float w = batch.weights[b * batch.T + pos + i - 1];
            EXPECT_FLOAT_EQ(w, i < prompt_len ? plw : 1.0f) << "row " << b << " slot " << pos + i;
        }
        pos += ex.size();
        ++next;
    }
    for (; pos < slots.size(); ++pos) {
        EXPECT_EQ(slots[pos], kEndOfText) << "padding, row " << b << " slot " << pos;
        if (pos > 0) {
            EXPECT_EQ(batch.weights[b * batch.T + pos - 1], 0.0f)
                << "padding weight, row " << b << " slot " << pos;
        }
    }
}

void check_sequential_pass(float plw) {
    const std::vector<Example> examples = some_examples(97);
    ExampleBatcher batcher(examples, 3, 64, plw, ExampleBatcher::Order::sequential, 0);
    std::size_t next = 0;
    int batches = 0;
    while (!batcher.done()) {
        const Batch batch = batcher.next();
        expect_targets_are_shifted_tokens(batch);
        for (int b = 0; b < batch.B; ++b) expect_row_holds_whole_examples(batch, b, examples, next, plw);
        ASSERT_LT(++batches, 1000);
    }
    EXPECT_EQ(next, examples.size()) << "every example appears whole, once, in order";
    EXPECT_THROW(batcher.next(), Error);
}

TEST(ExampleBatcher, SequentialPassPacksWholeExamplesWithPromptWeightZero) { check_sequential_pass(0.0f); }
TEST(ExampleBatcher, PromptTargetsGetThePromptLossWeight) { check_sequential_pass(0.25f); }
TEST(ExampleBatcher, PromptLossWeightOneWeighsEveryTokenOfAnExample) { check_sequential_pass(1.0f); }

TEST(ExampleBatcher, ResetRepeatsTheSameBatches) {
    ExampleBatcher batcher(some_examples(40), 2, 48, 0.0f, ExampleBatcher::Order::sequential, 0);
    const Batch first = batcher.next();
    while (!batcher.done()) batcher.next();
    batcher.reset();
    EXPECT_FALSE(batcher.done());
    EXPECT_EQ(batcher.next().tokens, first.tokens);
}

// Splits packed rows back into examples (each starts with "\nQ: ").
std::vector<std::string> unpack(const Batch& batch) {
    std::vector<std::string> out;
    for (int b = 0; b < batch.B; ++b) {
        std::vector<std::int32_t> slots = row_slots(batch, b);
        slots.erase(std::find(slots.begin(), slots.end(), kEndOfText), slots.end());
        const std::string text = decode(slots);
        for (std::size_t start = 0; start < text.size();) {
            const std::size_t end = text.find("\nQ: ", start + 1);
            out.push_back(text.substr(start, end - start));
            start = end == std::string::npos ? text.size() : end;
        }
    }
    return out;
}

TEST(ExampleBatcher, ShuffledEpochsAreDeterministicPermutations) {
    const std::vector<Example> examples = some_examples(50);
    auto first_epochs = [&](std::uint64_t seed) {
        ExampleBatcher batcher(examples, 4, 64, 0.0f, ExampleBatcher::Order::shuffled, seed);
        std::vector<std::string> seen;
        while (seen.size() < 2 * examples.size()) {
            for (std::string& s : unpack(batcher.next())) seen.push_back(std::move(s));
        }
        EXPECT_GE(batcher.epoch(), 1);
        EXPECT_FALSE(batcher.done());
        seen.resize(2 * examples.size());
        return seen;
    };
    const std::vector<std::string> a = first_epochs(1);
    EXPECT_EQ(a, first_epochs(1));
    EXPECT_NE(a, first_epochs(2));
    std::multiset<std::string> expected;
    for (const Example& e : examples) expected.insert(example_text(e));
    EXPECT_EQ(std::multiset<std::string>(a.begin(), a.begin() + 50), expected)
        << "epoch 0: each example once";
    EXPECT_EQ(std::multiset<std::string>(a.begin() + 50, a.end()), expected) << "epoch 1: each example once";
    EXPECT_NE(std::vector<std::string>(a.begin(), a.begin() + 50),
              std::vector<std::string>(a.begin() + 50, a.end()))
        << "a fresh order each epoch";
}

TEST(ExampleBatcher, AnExampleOfTPlusOneTokensFitsAndOneMoreThrows) {
    const Example fits{"Q: " + std::string(10, 'x') + "\nA: ", "yy\n"};  // 1 + 17 + 3 = 21 tokens
    ExampleBatcher ok({fits}, 1, 20, 0.0f, ExampleBatcher::Order::sequential, 0);
    const Batch batch = ok.next();
    EXPECT_FLOAT_EQ(total_weight(batch), 3.0f) << "the response 'yy\\n' is the only weighted target";
    EXPECT_EQ(batch.targets.back(), '\n');
    try {
        ExampleBatcher too_long({fits}, 1, 19, 0.0f, ExampleBatcher::Order::sequential, 0);
        FAIL() << "expected tl::Error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("21 tokens"), std::string::npos) << msg;
        EXPECT_NE(msg.find("T = 19"), std::string::npos) << msg;
    }
}

TEST(ExampleBatcher, BadArgumentsThrow) {
    const auto seq = ExampleBatcher::Order::sequential;
    EXPECT_THROW(ExampleBatcher({}, 2, 32, 0.0f, seq, 0), Error);
    EXPECT_THROW(ExampleBatcher(some_examples(3), 0, 32, 0.0f, seq, 0), Error);
    EXPECT_THROW(ExampleBatcher(some_examples(3), 2, 0, 0.0f, seq, 0), Error);
    EXPECT_THROW(ExampleBatcher(some_examples(3), 2, 32, -0.5f, seq, 0), Error);
    EXPECT_THROW(ExampleBatcher(some_examples(3), 2, 32, 1.5f, seq, 0), Error);
    EXPECT_THROW(ExampleBatcher({Example{"Q: x\nA: ", ""}}, 2, 32, 0.0f, seq, 0), Error);
}

TEST(CorpusBatch, TargetsAreShiftedTokensWithWeightOne) {
    CorpusStream a(3), b(3);
    const Batch batch = corpus_batch(a, 4, 32);
    EXPECT_EQ(batch.B, 4);
    EXPECT_EQ(batch.T, 32);
    expect_targets_are_shifted_tokens(batch);
    EXPECT_FLOAT_EQ(total_weight(batch), 4.0f * 32.0f);
    // Row b is the stream's tokens b*(T+1) .. b*(T+1)+T.
    const std::string text = b.next_text(4 * 33);
    for (int r = 0; r < 4; ++r) EXPECT_EQ(decode(row_slots(batch, r)), text.substr(r * 33, 33));
    CorpusStream c(3);
    EXPECT_THROW(corpus_batch(c, 0, 32), Error);
}

}  // namespace
}  // namespace tl
