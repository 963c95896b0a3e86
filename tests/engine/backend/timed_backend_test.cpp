// TimedBackend forwards, counts and shares the ledger: an op through the wrapper gives bitwise the result of
// the same op on the wrapped backend, each call is counted under its own name, and buffers allocated through
// the wrapper are the wrapped backend's (one ledger, read through either).
#include "backend/timed_backend.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "core/rng.hpp"

namespace tl {
namespace {

std::vector<float> randn(Rng& rng, std::int64_t n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = rng.normal();
    return v;
}

const OpTiming* find(const std::vector<OpTiming>& t, std::string_view name) {
    for (const OpTiming& o : t)
        if (o.name == name) return &o;
    return nullptr;
}

TEST(TimedBackend, LinearForwardIsBitwiseTheInnerBackends) {
    auto cpu = make_cpu_backend({1});
    TimedBackend timed(*cpu);
    Rng rng(3);
    const std::int64_t N = 5, C = 7, OC = 9;
    const auto x = randn(rng, N * C), w = randn(rng, C * OC), b = randn(rng, OC);
    std::vector<float> direct(std::size_t(N * OC)), through(std::size_t(N * OC));
    const LinearArgs<float> args{MatView(direct.data(), N, OC), CMatView(x.data(), N, C),
                                 CMatView(w.data(), C, OC), CVecView(b.data(), OC)};
    cpu->linear_forward(args);
    LinearArgs<float> args2 = args;
    args2.out = MatView(through.data(), N, OC);
    timed.linear_forward(args2);
    EXPECT_EQ(0, std::memcmp(direct.data(), through.data(), sizeof(float) * direct.size()));
    // A value-returning op hands the inner result back unchanged.
    EXPECT_EQ(cpu->sum_squares(CVecView(x.data(), N * C)), timed.sum_squares(CVecView(x.data(), N * C)));
}

TEST(TimedBackend, CountsEachCallUnderItsOwnNameAndResets) {
    auto cpu = make_cpu_backend({1});
    TimedBackend timed(*cpu);
    std::vector<float> a(100, 1.0f), b(100, 2.0f), out(100);
    for (int i = 0; i < 3; ++i)
        timed.add(VecView(out.data(), 100), CVecView(a.data(), 100), CVecView(b.data(), 100));
    timed.scale(VecView(out.data(), 100), 0.5f);
    EXPECT_EQ(out[0], 1.5f);

    const auto t = timed.timings();
    ASSERT_EQ(t.size(), 2u) << "only ops that were called are reported";
    ASSERT_NE(find(t, "add"), nullptr);
    EXPECT_EQ(find(t, "add")->calls, 3);
    EXPECT_EQ(find(t, "scale")->calls, 1);
    EXPECT_GE(t[0].seconds, t[1].seconds) << "sorted by time, most first";
    for (const OpTiming& o : t) EXPECT_GE(o.seconds, 0.0);

    timed.reset();
    EXPECT_TRUE(timed.timings().empty());
}

TEST(TimedBackend, AllocGoesToTheInnerBackendAndItsLedger) {
    auto cpu = make_cpu_backend({1});
    TimedBackend timed(*cpu);
    EXPECT_EQ(&timed.ledger(), &cpu->ledger());
    const Backend& as_const = timed;
    EXPECT_EQ(&as_const.ledger(), &cpu->ledger());
    EXPECT_EQ(timed.device(), cpu->device());

    const std::int64_t before = cpu->ledger().current(MemCategory::activations);
    {
        Tensor t = timed.tensor({3, 5}, MemCategory::activations);  // Backend::tensor: alloc + fill_zero
        EXPECT_EQ(cpu->ledger().current(MemCategory::activations), before + 60);  // 15 floats
        EXPECT_EQ(t.data()[14], 0.0f);
        const auto timings = timed.timings();
        ASSERT_NE(find(timings, "alloc"), nullptr);
        EXPECT_EQ(find(timings, "alloc")->calls, 1);
        EXPECT_EQ(find(timings, "fill_zero")->calls, 1);
    }
    EXPECT_EQ(cpu->ledger().current(MemCategory::activations), before) << "freed into the inner ledger";
}

}  // namespace
}  // namespace tl
