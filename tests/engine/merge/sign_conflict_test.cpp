// Sign conflicts between two task vectors, against counts done by hand on a few named tensors.
#include "merge/sign_conflict.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "model/config.hpp"

namespace tl {
namespace {

ModelState state(std::vector<std::pair<std::string, std::vector<float>>> tensors) {
    ModelState s;
    s.config = find_preset("nano").config;  // 2 blocks
    for (auto& [name, v] : tensors) s.tensors[name] = {{std::int64_t(v.size())}, std::move(v)};
    return s;
}

TEST(SignConflict, SharesPerBlockAndModuleMatchHandCounts) {
    const ModelState base = state({{"transformer.h.0.attn.c_attn.weight", {0, 0, 0, 0}},
                                   {"transformer.h.1.ln_1.bias", {1, 1}},
                                   {"transformer.wte.weight", {0, 0}},
                                   {"transformer.ln_f.weight", {0, 0}}});
    // c_attn: a moves +,+,-,0; b moves +,-,+,+: both moved at 3 coordinates, 2 of them opposite.
    // h.1 ln_1.bias: a +,+; b +,+ (no conflict).  wte: a +,0; b -,0 (1 of 1).  ln_f: nobody moves.
    const ModelState a = state({{"transformer.h.0.attn.c_attn.weight", {1, 2, -1, 0}},
                                {"transformer.h.1.ln_1.bias", {2, 3}},
                                {"transformer.wte.weight", {1, 0}},
                                {"transformer.ln_f.weight", {0, 0}}});
    const ModelState b = state({{"transformer.h.0.attn.c_attn.weight", {3, -1, 1, 5}},
                                {"transformer.h.1.ln_1.bias", {1.5f, 2}},
                                {"transformer.wte.weight", {-1, 0}},
                                {"transformer.ln_f.weight", {0, 0}}});
    const SignConflictMap m = sign_conflicts(base, a, b, 1.0);
    ASSERT_EQ(m.rows, (std::vector<std::string>{"h.0", "h.1", "embeddings", "ln_f"}));
    ASSERT_EQ(m.cols.size(), 5u);
    auto at = [&](std::size_t r, std::size_t c) { return m.share[r * m.cols.size() + c]; };
    EXPECT_DOUBLE_EQ(at(0, 0), 2.0 / 3.0);
    EXPECT_EQ(m.both[0], 3);
    EXPECT_DOUBLE_EQ(at(1, 4), 0.0);
    EXPECT_EQ(m.both[1 * 5 + 4], 2);
    EXPECT_DOUBLE_EQ(at(2, 0), 1.0);
    EXPECT_EQ(m.both[3 * 5 + 4], 0);
    EXPECT_DOUBLE_EQ(m.overall, 3.0 / 6.0);
    // Trimmed to the top half of each tensor: c_attn keeps a's {2, 1} at indices 1, 0 and b's {5, 3} at 3, 0:
    // both keep index 0 only (+, +): no conflict there. h.1: a keeps index 1, b index 1: agree. wte: floor(1) = 1
    // each: both keep index 0, opposite.
    const SignConflictMap t = sign_conflicts(base, a, b, 0.5);
    EXPECT_DOUBLE_EQ(t.share[0], 0.0);
    EXPECT_EQ(t.both[0], 1);
    EXPECT_DOUBLE_EQ(t.overall, 1.0 / 3.0);
}

TEST(SignConflict, BadInputSaysWhatIsWrong) {
    const ModelState base = state({{"transformer.ln_f.weight", {0, 0}}});
    const ModelState other = state({{"transformer.ln_f.weight", {0, 0, 0}}});
    EXPECT_THROW(sign_conflicts(base, base, other, 1.0), Error);
    EXPECT_THROW(sign_conflicts(base, base, base, 0.0), Error);
    EXPECT_THROW(sign_conflicts(base, base, base, 1.5), Error);
}

}  // namespace
}  // namespace tl
