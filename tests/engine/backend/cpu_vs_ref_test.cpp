// Every method of the CPU backend against the float reference kernels (the specification), forward and
// backward, on odd shapes, at 1 and 2 threads. Outputs are NaN-poisoned before each call, so an element the
// fast kernel forgets to write fails; accumulating outputs start from the same random values on both sides.
// Ends with the determinism promise of cpu_backend.cpp: same inputs and thread count, bitwise-identical
// outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "backend/cpu/ref_kernels.hpp"
#include "core/backend.hpp"
#include "core/rng.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

using Vf = std::vector<float>;

constexpr double kRtol = 1e-4;  // float kernels vs a reference that accumulates in double
constexpr double kAtol = 1e-5;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Vf randn(Rng& rng, std::int64_t n, float scale = 1.0f, float shift = 0.0f) {
    Vf v(static_cast<std::size_t>(n));
    for (auto& x : v) x = scale * rng.normal() + shift;
    return v;
}
Vf poison(std::int64_t n) { return Vf(static_cast<std::size_t>(n), kNaN); }

MatView mat(Vf& v, std::int64_t rows, std::int64_t cols) { return {v.data(), rows, cols}; }
CMatView cmat(const Vf& v, std::int64_t rows, std::int64_t cols) { return {v.data(), rows, cols}; }
VecView vec(Vf& v) { return {v.data(), std::int64_t(v.size())}; }
CVecView cvec(const Vf& v) { return {v.data(), std::int64_t(v.size())}; }

std::vector<std::int32_t> random_ids(Rng& rng, std::int64_t n, std::int64_t below) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (auto& t : ids) t = std::int32_t(rng.below(std::uint64_t(below)));
    return ids;
}

class CpuVsRef : public ::testing::TestWithParam<int> {
protected:
    // One backend at a time: the thread count is OpenMP's (process-wide) setting, applied by the constructor.
    void SetUp() override { be_ = make_cpu_backend({GetParam()}); }
    Backend& be() { return *be_; }
    std::unique_ptr<Backend> be_;
};

// -----------------------------------------------------------------------------------------------------------
TEST_P(CpuVsRef, GemmAllTransposes) {
    const std::int64_t M = 7, K = 13, N = 11;
    for (const Trans ta : {Trans::no, Trans::yes})
        for (const Trans tb : {Trans::no, Trans::yes})
            for (const float beta : {0.0f, 1.0f, 0.5f}) {
                SCOPED_TRACE(::testing::Message() << "trans_a " << (ta == Trans::yes) << " trans_b "
                                                  << (tb == Trans::yes) << " beta " << beta);
                Rng rng(21);
                const std::int64_t ar = ta == Trans::yes ? K : M, ac = ta == Trans::yes ? M : K;
                const std::int64_t br = tb == Trans::yes ? N : K, bc = tb == Trans::yes ? K : N;
                const Vf a = randn(rng, ar * ac), b = randn(rng, br * bc);
                Vf c_ref = beta == 0.0f ? poison(M * N) : randn(rng, M * N), c_cpu = c_ref;
                ref::gemm<float>({mat(c_ref, M, N), cmat(a, ar, ac), cmat(b, br, bc), ta, tb, 1.3f, beta});
                be().gemm({mat(c_cpu, M, N), cmat(a, ar, ac), cmat(b, br, bc), ta, tb, 1.3f, beta});
                TL_EXPECT_ALLCLOSE(c_cpu, c_ref, kRtol, kAtol);
            }
}

// Strided views (ld > cols), as a head's slice of qkv is: the padding between rows must not be written.
TEST_P(CpuVsRef, GemmStridedViews) {
    const std::int64_t M = 7, K = 13, N = 11, pad = 3;
    Rng rng(22);
    const Vf a = randn(rng, M * (K + pad)), b = randn(rng, N * (K + pad));
    Vf c_ref(std::size_t(M * (N + pad)), 7.0f);  // sentinel padding, poisoned body
    for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j) c_ref[std::size_t(i * (N + pad) + j)] = kNaN;
    Vf c_cpu = c_ref;
    const CMatView av(a.data(), M, K, K + pad), bv(b.data(), N, K, K + pad);
    ref::gemm<float>({MatView(c_ref.data(), M, N, N + pad), av, bv, Trans::no, Trans::yes, 1.0f, 0.0f});
    be().gemm({MatView(c_cpu.data(), M, N, N + pad), av, bv, Trans::no, Trans::yes, 1.0f, 0.0f});
    TL_EXPECT_ALLCLOSE(c_cpu, c_ref, kRtol, kAtol);
}

// Shapes big enough that cpu::gemm splits the output across threads: a tall one (cut into row slabs) and a wide
// one (column slabs), odd sizes, every transpose, into a strided output whose padding must stay untouched.
TEST_P(CpuVsRef, GemmSplitAcrossThreads) {
    const std::int64_t K = 67, pad = 5;
    for (const auto& [M, N] : {std::pair<std::int64_t, std::int64_t>{131, 45}, {45, 131}})
        for (const Trans ta : {Trans::no, Trans::yes})
            for (const Trans tb : {Trans::no, Trans::yes})
                for (const float beta : {0.0f, 1.0f}) {
                    SCOPED_TRACE(::testing::Message() << "M " << M << " N " << N << " trans_a " << (ta == Trans::yes)
                                                      << " trans_b " << (tb == Trans::yes) << " beta " << beta);
                    Rng rng(23);
                    const std::int64_t ar = ta == Trans::yes ? K : M, ac = ta == Trans::yes ? M : K;
                    const std::int64_t br = tb == Trans::yes ? N : K, bc = tb == Trans::yes ? K : N;
                    const Vf a = randn(rng, ar * ac), b = randn(rng, br * bc);
                    Vf c_ref = randn(rng, M * (N + pad));
                    if (beta == 0.0f)
                        for (std::int64_t r = 0; r < M; ++r) std::fill_n(c_ref.begin() + r * (N + pad), N, kNaN);
                    Vf c_cpu = c_ref;
                    ref::gemm<float>({MatView(c_ref.data(), M, N, N + pad), cmat(a, ar, ac), cmat(b, br, bc), ta, tb,
                                      0.7f, beta});
                    be().gemm({MatView(c_cpu.data(), M, N, N + pad), cmat(a, ar, ac), cmat(b, br, bc), ta, tb, 0.7f,
                               beta});
                    TL_EXPECT_ALLCLOSE(c_cpu, c_ref, kRtol, kAtol);  // padding included: compared whole
                }
}

// -----------------------------------------------------------------------------------------------------------
TEST_P(CpuVsRef, Embedding) {
    Rng rng(23);
    const std::int64_t B = 2, T = 7, C = 13, V = 11, maxT = 9, pos0 = 2, N = B * T;
    const auto tokens = random_ids(rng, N, V);  // 14 draws from 11 ids: repeats
    const Vf wte = randn(rng, V * C), wpe = randn(rng, maxT * C), dout = randn(rng, N * C);
    Vf out_ref = poison(N * C), out_cpu = poison(N * C);
    ref::embedding_forward<float>(
        {mat(out_ref, N, C), tokens.data(), cmat(wte, V, C), cmat(wpe, maxT, C), B, T, pos0});
    be().embedding_forward(
        {mat(out_cpu, N, C), tokens.data(), cmat(wte, V, C), cmat(wpe, maxT, C), B, T, pos0});
    TL_EXPECT_ALLCLOSE(out_cpu, out_ref, kRtol, kAtol);

    Vf dwte_ref = randn(rng, V * C), dwpe_ref = randn(rng, maxT * C), dwte_cpu = dwte_ref,
       dwpe_cpu = dwpe_ref;
    ref::embedding_backward<float>(
        {mat(dwte_ref, V, C), mat(dwpe_ref, maxT, C), cmat(dout, N, C), tokens.data(), B, T, pos0});
    be().embedding_backward(
        {mat(dwte_cpu, V, C), mat(dwpe_cpu, maxT, C), cmat(dout, N, C), tokens.data(), B, T, pos0});
    TL_EXPECT_ALLCLOSE(dwte_cpu, dwte_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(dwpe_cpu, dwpe_ref, kRtol, kAtol);
}

// -----------------------------------------------------------------------------------------------------------
// N 150 spans three of layernorm_backward's 64-row blocks, the last one ragged.
TEST_P(CpuVsRef, LayerNorm) {
  for (const auto& [N, C] : {std::pair<std::int64_t, std::int64_t>{7, 13}, {150, 37}}) {
    SCOPED_TRACE(::testing::Message() << "N " << N << " C " << C);
    Rng rng(24);
    const Vf x = randn(rng, N * C, 2.0f, 0.7f), gamma = randn(rng, C), beta = randn(rng, C),
             dout = randn(rng, N * C);
    Vf out_ref = poison(N * C), mean_ref = poison(N), rstd_ref = poison(N);
    Vf out_cpu = poison(N * C), mean_cpu = poison(N), rstd_cpu = poison(N);
    ref::layernorm_forward<float>(
        {mat(out_ref, N, C), vec(mean_ref), vec(rstd_ref), cmat(x, N, C), cvec(gamma), cvec(beta), 1e-5f});
    be().layernorm_forward(
        {mat(out_cpu, N, C), vec(mean_cpu), vec(rstd_cpu), cmat(x, N, C), cvec(gamma), cvec(beta), 1e-5f});
    TL_EXPECT_ALLCLOSE(out_cpu, out_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(mean_cpu, mean_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(rstd_cpu, rstd_ref, kRtol, kAtol);

    Vf dx_ref = poison(N * C), dx_cpu = poison(N * C);
    Vf dg_ref = randn(rng, C), db_ref = randn(rng, C), dg_cpu = dg_ref, db_cpu = db_ref;
    ref::layernorm_backward<float>({mat(dx_ref, N, C), vec(dg_ref), vec(db_ref), cmat(dout, N, C),
                                    cmat(x, N, C), cvec(mean_ref), cvec(rstd_ref), cvec(gamma)});
    be().layernorm_backward({mat(dx_cpu, N, C), vec(dg_cpu), vec(db_cpu), cmat(dout, N, C), cmat(x, N, C),
                             cvec(mean_ref), cvec(rstd_ref), cvec(gamma)});
    TL_EXPECT_ALLCLOSE(dx_cpu, dx_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(dg_cpu, dg_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(db_cpu, db_ref, kRtol, kAtol);
  }
}

// -----------------------------------------------------------------------------------------------------------
TEST_P(CpuVsRef, Linear) {
    Rng rng(25);
    const std::int64_t N = 7, C = 13, OC = 11;
    const Vf x = randn(rng, N * C), w = randn(rng, C * OC), b = randn(rng, OC), dout = randn(rng, N * OC);
    for (const bool has_bias : {true, false}) {
        SCOPED_TRACE(has_bias ? "with bias" : "without bias");
        const CVecView bv = has_bias ? cvec(b) : CVecView();
        Vf out_ref = poison(N * OC), out_cpu = poison(N * OC);
        ref::linear_forward<float>({mat(out_ref, N, OC), cmat(x, N, C), cmat(w, C, OC), bv});
        be().linear_forward({mat(out_cpu, N, OC), cmat(x, N, C), cmat(w, C, OC), bv});
        TL_EXPECT_ALLCLOSE(out_cpu, out_ref, kRtol, kAtol);
    }
    Vf dx_ref = poison(N * C), dx_cpu = poison(N * C);
    Vf dw_ref = randn(rng, C * OC), db_ref = randn(rng, OC), dw_cpu = dw_ref, db_cpu = db_ref;
    ref::linear_backward<float>({mat(dx_ref, N, C), mat(dw_ref, C, OC), vec(db_ref), cmat(dout, N, OC),
                                 cmat(x, N, C), cmat(w, C, OC)});
    be().linear_backward({mat(dx_cpu, N, C), mat(dw_cpu, C, OC), vec(db_cpu), cmat(dout, N, OC),
                          cmat(x, N, C), cmat(w, C, OC)});
    TL_EXPECT_ALLCLOSE(dx_cpu, dx_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(dw_cpu, dw_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(db_cpu, db_ref, kRtol, kAtol);

    // Null outputs are skipped, the others still written.
    Vf dw_only = poison(C * OC);
    std::fill(dw_only.begin(), dw_only.end(), 0.0f);
    be().linear_backward({{}, mat(dw_only, C, OC), {}, cmat(dout, N, OC), cmat(x, N, C), cmat(w, C, OC)});
    Vf dw_zero_ref(std::size_t(C * OC), 0.0f);
    ref::linear_backward<float>(
        {{}, mat(dw_zero_ref, C, OC), {}, cmat(dout, N, OC), cmat(x, N, C), cmat(w, C, OC)});
    TL_EXPECT_ALLCLOSE(dw_only, dw_zero_ref, kRtol, kAtol);
    Vf dx_only = poison(N * C);
    be().linear_backward({mat(dx_only, N, C), {}, {}, cmat(dout, N, OC), cmat(x, N, C), cmat(w, C, OC)});
    TL_EXPECT_ALLCLOSE(dx_only, dx_ref, kRtol, kAtol);
}

// -----------------------------------------------------------------------------------------------------------
// T 17 fits in one of the fast kernel's 32-row causal blocks; 32 fills one exactly; 70 takes three, the last
// ragged, with keys of earlier blocks reused.
TEST_P(CpuVsRef, Attention) {
  for (const std::int64_t T : {17, 32, 70}) {
    SCOPED_TRACE(::testing::Message() << "T " << T);
    Rng rng(26);
    const std::int64_t B = 3, H = 3, C = 24, N = B * T;
    const Vf qkv = randn(rng, N * 3 * C), dout = randn(rng, N * C);
    Vf out_ref = poison(N * C), att_ref = poison(B * H * T * T), out_cpu = out_ref, att_cpu = att_ref;
    ref::attention_forward<float>({mat(out_ref, N, C), att_ref.data(), cmat(qkv, N, 3 * C), B, T, H});
    be().attention_forward({mat(out_cpu, N, C), att_cpu.data(), cmat(qkv, N, 3 * C), B, T, H});
    TL_EXPECT_ALLCLOSE(out_cpu, out_ref, kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(att_cpu, att_ref, kRtol, kAtol);  // zeros above the diagonal included

    Vf dqkv_ref = poison(N * 3 * C), datt_ref = poison(B * H * T * T), dqkv_cpu = dqkv_ref,
       datt_cpu = datt_ref;
    ref::attention_backward<float>({mat(dqkv_ref, N, 3 * C), datt_ref.data(), cmat(dout, N, C),
                                    cmat(qkv, N, 3 * C), att_ref.data(), B, T, H});
    be().attention_backward({mat(dqkv_cpu, N, 3 * C), datt_cpu.data(), cmat(dout, N, C), cmat(qkv, N, 3 * C),
                             att_ref.data(), B, T, H});
    TL_EXPECT_ALLCLOSE(dqkv_cpu, dqkv_ref, kRtol, kAtol);
  }
}

TEST_P(CpuVsRef, AttentionDecode) {
    Rng rng(27);
    const std::int64_t H = 3, C = 24, len = 17;
    const Vf q = randn(rng, C), k = randn(rng, len * C), v = randn(rng, len * C);
    Vf out_ref = poison(C), out_cpu = poison(C);
    ref::attention_decode<float>({vec(out_ref), cvec(q), cmat(k, len, C), cmat(v, len, C), H});
    be().attention_decode({vec(out_cpu), cvec(q), cmat(k, len, C), cmat(v, len, C), H});
    TL_EXPECT_ALLCLOSE(out_cpu, out_ref, kRtol, kAtol);
}

// -----------------------------------------------------------------------------------------------------------
TEST_P(CpuVsRef, Gelu) {
  for (const std::int64_t n : {1001, 3 * 8192 + 5}) {  // one chunk; several, the last ragged
    Rng rng(28);
    const Vf x = randn(rng, n, 3.0f), dout = randn(rng, n);
    Vf y_ref = poison(n), y_cpu = poison(n), dx_ref = poison(n), dx_cpu = poison(n);
    ref::gelu_forward<float>({vec(y_ref), cvec(x)});
    be().gelu_forward({vec(y_cpu), cvec(x)});
    TL_EXPECT_ALLCLOSE(y_cpu, y_ref, kRtol, kAtol);
    ref::gelu_backward<float>({vec(dx_ref), cvec(dout), cvec(x)});
    be().gelu_backward({vec(dx_cpu), cvec(dout), cvec(x)});
    TL_EXPECT_ALLCLOSE(dx_cpu, dx_ref, kRtol, kAtol);
  }
}

// -----------------------------------------------------------------------------------------------------------
// The fused ops against the reference kernels run one after the other (the oracle), and bit for bit against the
// CPU backend's own unfused ops: fusing must not change an element's arithmetic (cached models stay valid).
// N 300 (not a multiple of the 16-row slab alignment) and a product large enough to split across threads.
TEST_P(CpuVsRef, FusedLinearGelu) {
    Rng rng(37);
    const std::int64_t N = 300, C = 64, OC = 4 * 65;
    const Vf x = randn(rng, N * C), w = randn(rng, C * OC, 0.3f), b = randn(rng, OC);
    for (const bool has_bias : {true, false}) {
        SCOPED_TRACE(has_bias ? "with bias" : "without bias");
        const CVecView bv = has_bias ? cvec(b) : CVecView();
        Vf pre_ref = poison(N * OC), act_ref = poison(N * OC);
        ref::linear_forward<float>({mat(pre_ref, N, OC), cmat(x, N, C), cmat(w, C, OC), bv});
        ref::gelu_forward<float>({vec(act_ref), cvec(pre_ref)});
        Vf pre = poison(N * OC), act = poison(N * OC);
        be().linear_gelu_forward({mat(pre, N, OC), cmat(x, N, C), cmat(w, C, OC), bv}, vec(act));
        TL_EXPECT_ALLCLOSE(pre, pre_ref, kRtol, kAtol);
        TL_EXPECT_ALLCLOSE(act, act_ref, kRtol, kAtol);
        Vf pre_unfused = poison(N * OC), act_unfused = poison(N * OC);
        be().linear_forward({mat(pre_unfused, N, OC), cmat(x, N, C), cmat(w, C, OC), bv});
        be().gelu_forward({vec(act_unfused), cvec(pre_unfused)});
        EXPECT_EQ(std::memcmp(pre.data(), pre_unfused.data(), pre.size() * sizeof(float)), 0);
        EXPECT_EQ(std::memcmp(act.data(), act_unfused.data(), act.size() * sizeof(float)), 0);
    }
}

TEST_P(CpuVsRef, FusedAddLayerNorm) {
    for (const auto& [N, C] : {std::pair<std::int64_t, std::int64_t>{7, 13}, {300, 130}}) {
        SCOPED_TRACE(::testing::Message() << "N " << N << " C " << C);
        Rng rng(38);
        const Vf a = randn(rng, N * C, 2.0f, 0.7f), b = randn(rng, N * C), gamma = randn(rng, C),
                 beta = randn(rng, C);
        Vf sum_ref = poison(N * C), out_ref = poison(N * C), mean_ref = poison(N), rstd_ref = poison(N);
        for (std::int64_t i = 0; i < N * C; ++i) sum_ref[std::size_t(i)] = a[std::size_t(i)] + b[std::size_t(i)];
        ref::layernorm_forward<float>({mat(out_ref, N, C), vec(mean_ref), vec(rstd_ref), cmat(sum_ref, N, C),
                                       cvec(gamma), cvec(beta), 1e-5f});
        Vf sum = poison(N * C), out = poison(N * C), mean = poison(N), rstd = poison(N);
        be().add_layernorm_forward(
            vec(sum), cvec(a), cvec(b),
            {mat(out, N, C), vec(mean), vec(rstd), cmat(sum, N, C), cvec(gamma), cvec(beta), 1e-5f});
        EXPECT_EQ(std::memcmp(sum.data(), sum_ref.data(), sum.size() * sizeof(float)), 0);  // one rounding
        TL_EXPECT_ALLCLOSE(out, out_ref, kRtol, kAtol);
        TL_EXPECT_ALLCLOSE(mean, mean_ref, kRtol, kAtol);
        TL_EXPECT_ALLCLOSE(rstd, rstd_ref, kRtol, kAtol);
        Vf sum_u = poison(N * C), out_u = poison(N * C), mean_u = poison(N), rstd_u = poison(N);
        be().add(vec(sum_u), cvec(a), cvec(b));
        be().layernorm_forward(
            {mat(out_u, N, C), vec(mean_u), vec(rstd_u), cmat(sum_u, N, C), cvec(gamma), cvec(beta), 1e-5f});
        EXPECT_EQ(std::memcmp(out.data(), out_u.data(), out.size() * sizeof(float)), 0);
        EXPECT_EQ(std::memcmp(rstd.data(), rstd_u.data(), rstd.size() * sizeof(float)), 0);
    }
}

// -----------------------------------------------------------------------------------------------------------
TEST_P(CpuVsRef, CrossEntropy) {
    for (const std::int64_t V : {13, 257}) {
        SCOPED_TRACE(::testing::Message() << "V " << V);
        Rng rng(29);
        const std::int64_t N = 7;
        const Vf z = randn(rng, N * V, 3.0f, 50.0f);  // a large common offset: needs the max shift
        const auto y = random_ids(rng, N, V);
        const Vf w = {1.0f, 0.0f, 0.5f, 2.0f, 1.0f, 0.0f, 0.25f};
        const float norm = 3.5f;  // not the sum of w: other micro-batches count too
        Vf l_ref = poison(N), l_cpu = poison(N);
        ref::cross_entropy_forward<float>({vec(l_ref), cmat(z, N, V), y.data()});
        be().cross_entropy_forward({vec(l_cpu), cmat(z, N, V), y.data()});
        TL_EXPECT_ALLCLOSE(l_cpu, l_ref, kRtol, kAtol);
        Vf d_ref = poison(N * V), d_cpu = poison(N * V);
        ref::cross_entropy_backward<float>({mat(d_ref, N, V), cmat(z, N, V), y.data(), cvec(w), norm});
        be().cross_entropy_backward({mat(d_cpu, N, V), cmat(z, N, V), y.data(), cvec(w), norm});
        TL_EXPECT_ALLCLOSE(d_cpu, d_ref, kRtol, kAtol);
    }
}

// -----------------------------------------------------------------------------------------------------------
// 40003 floats take the parallel path (small tensors stay on one thread).
TEST_P(CpuVsRef, AdamW) {
  for (const std::int64_t n : {1001, 40003}) {
    Rng rng(30);
    const Vf g = randn(rng, n, 0.1f);
    for (const std::int64_t step : {1, 7}) {
        SCOPED_TRACE(::testing::Message() << "n " << n << " step " << step);
        const Vf p0 = randn(rng, n),
                 m0 = step == 1 ? Vf(static_cast<std::size_t>(n), 0.0f) : randn(rng, n, 0.01f);
        Vf v0 = step == 1 ? Vf(static_cast<std::size_t>(n), 0.0f) : randn(rng, n, 0.001f);
        for (auto& x : v0) x = std::fabs(x);
        Vf p_ref = p0, m_ref = m0, v_ref = v0, p_cpu = p0, m_cpu = m0, v_cpu = v0;
        const float lr = 1e-2f, wd = 0.1f;
        ref::adamw<float>({vec(p_ref), vec(m_ref), vec(v_ref), cvec(g), lr, 0.9f, 0.999f, 1e-8f, wd, step});
        be().adamw({vec(p_cpu), vec(m_cpu), vec(v_cpu), cvec(g), lr, 0.9f, 0.999f, 1e-8f, wd, step});
        TL_EXPECT_ALLCLOSE(m_cpu, m_ref, kRtol, 1e-9);
        TL_EXPECT_ALLCLOSE(v_cpu, v_ref, kRtol, 1e-12);
        // Compare the updates, not the parameters: an update is ~lr, so a wrong one could hide inside p's
        // atol. Each delta carries p's rounding (ulp(1) ~ 1.2e-7), hence the atol.
        Vf d_ref(static_cast<std::size_t>(n)), d_cpu(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < std::size_t(n); ++i)
            d_ref[i] = p_ref[i] - p0[i], d_cpu[i] = p_cpu[i] - p0[i];
        TL_EXPECT_ALLCLOSE(d_cpu, d_ref, kRtol, 1e-6);
    }
  }
}

// -----------------------------------------------------------------------------------------------------------
TEST_P(CpuVsRef, ElementwiseAndReductions) {
    Rng rng(31);
    const std::int64_t n = 3 * (1 << 14) + 7;  // several of sum_squares' chunks and a ragged tail
    const Vf a = randn(rng, n), b = randn(rng, n);
    Vf out = poison(n);
    be().add(vec(out), cvec(a), cvec(b));
    Vf expect(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < expect.size(); ++i) expect[i] = a[i] + b[i];
    TL_EXPECT_ALLCLOSE(out, expect, 0.0, 0.0);

    Vf dst = a;
    be().add_inplace(vec(dst), cvec(b));
    TL_EXPECT_ALLCLOSE(dst, expect, 0.0, 0.0);

    Vf s = a;
    be().scale(vec(s), 0.37f);
    for (std::size_t i = 0; i < expect.size(); ++i) expect[i] = a[i] * 0.37f;
    TL_EXPECT_ALLCLOSE(s, expect, 0.0, 0.0);

    double ss = 0;
    for (float x : a) ss += double(x) * double(x);
    EXPECT_NEAR(be().sum_squares(cvec(a)), ss, 1e-12 * ss);
    EXPECT_EQ(be().sum_squares(CVecView(a.data(), 0)), 0.0);
}

// The memory methods: tensor() zero-fills and is counted, copies round-trip.
TEST_P(CpuVsRef, MemoryMethods) {
    EXPECT_EQ(be().device(), Device::cpu);
    const std::int64_t before = be().ledger().current(MemCategory::activations);
    {
        Tensor t = be().tensor({3, 5}, MemCategory::activations);
        EXPECT_EQ(be().ledger().current(MemCategory::activations), before + 15 * 4);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data()) % 64, 0u);
        const Vf zeros(15, 0.0f);
        EXPECT_TRUE(testing::allclose(t.data(), zeros.data(), 15, 0.0, 0.0));

        Rng rng(32);
        const Vf src = randn(rng, 15);
        be().copy_from_host(t.vec(), src.data());
        Vf back = poison(15);
        be().copy_to_host(back.data(), t.vec());
        TL_EXPECT_ALLCLOSE(back, src, 0.0, 0.0);

        Tensor u = be().tensor({15}, MemCategory::workspace);
        be().copy(u.vec(), t.vec());
        EXPECT_TRUE(testing::allclose(u.data(), src.data(), 15, 0.0, 0.0));
        be().fill_zero(u.vec());
        EXPECT_TRUE(testing::allclose(u.data(), zeros.data(), 15, 0.0, 0.0));

        const std::int32_t ids[3] = {5, -1, 256};
        be().upload_bytes(u.data(), ids, sizeof(ids));
        EXPECT_EQ(std::memcmp(u.data(), ids, sizeof(ids)), 0);
    }
    EXPECT_EQ(be().ledger().current(MemCategory::activations), before);
}

// -----------------------------------------------------------------------------------------------------------
// Determinism: run every op on fresh poisoned buffers, again and again; outputs must be bitwise identical.
// Shapes large enough that the threaded loops and the GEMM split really split the work. The buffers land at
// different addresses each run, so a kernel whose result depends on alignment (as Eigen's reductions do) fails.
std::vector<Vf> run_every_op(Backend& be) {
    Rng rng(33);
    const std::int64_t B = 4, T = 24, H = 4, C = 48, V = 101, N = B * T;
    std::vector<Vf> outs;
    const auto tokens = random_ids(rng, N, V), targets = random_ids(rng, N, V);
    const Vf wte = randn(rng, V * C), wpe = randn(rng, T * C);
    Vf x = poison(N * C);
    be.embedding_forward({mat(x, N, C), tokens.data(), cmat(wte, V, C), cmat(wpe, T, C), B, T, 0});
    const Vf gamma = randn(rng, C), beta = randn(rng, C);
    Vf ln = poison(N * C), mean = poison(N), rstd = poison(N);
    be.layernorm_forward(
        {mat(ln, N, C), vec(mean), vec(rstd), cmat(x, N, C), cvec(gamma), cvec(beta), 1e-5f});
    const Vf w = randn(rng, C * 3 * C, 0.2f), b = randn(rng, 3 * C);
    Vf qkv = poison(N * 3 * C);
    be.linear_forward({mat(qkv, N, 3 * C), cmat(ln, N, C), cmat(w, C, 3 * C), cvec(b)});
    Vf atty = poison(N * C), att = poison(B * H * T * T);
    be.attention_forward({mat(atty, N, C), att.data(), cmat(qkv, N, 3 * C), B, T, H});
    Vf act = poison(N * C);
    be.gelu_forward({vec(act), cvec(atty)});
    Vf logits = poison(N * V);
    be.gemm({mat(logits, N, V), cmat(act, N, C), cmat(wte, V, C), Trans::no, Trans::yes, 1.0f, 0.0f});
    Vf losses = poison(N), dlogits = poison(N * V);
    be.cross_entropy_forward({vec(losses), cmat(logits, N, V), targets.data()});
    const Vf weights = randn(rng, N, 1.0f, 1.0f);
    be.cross_entropy_backward({mat(dlogits, N, V), cmat(logits, N, V), targets.data(), cvec(weights), 17.0f});
    Vf dact = poison(N * C), dwte(std::size_t(V * C), 0.0f);
    be.gemm({mat(dact, N, C), cmat(dlogits, N, V), cmat(wte, V, C), Trans::no, Trans::no, 1.0f, 0.0f});
    be.gemm({mat(dwte, V, C), cmat(dlogits, N, V), cmat(act, N, C), Trans::yes, Trans::no, 1.0f, 1.0f});
    Vf datty = poison(N * C);
    be.gelu_backward({vec(datty), cvec(dact), cvec(atty)});
    Vf dqkv = poison(N * 3 * C), datt = poison(B * H * T * T);
    be.attention_backward(
        {mat(dqkv, N, 3 * C), datt.data(), cmat(datty, N, C), cmat(qkv, N, 3 * C), att.data(), B, T, H});
    Vf dln = poison(N * C), dw(w.size(), 0.0f), db(b.size(), 0.0f);
    be.linear_backward({mat(dln, N, C), mat(dw, C, 3 * C), vec(db), cmat(dqkv, N, 3 * C), cmat(ln, N, C),
                        cmat(w, C, 3 * C)});
    Vf dx = poison(N * C), dgamma(gamma.size(), 0.0f), dbeta(beta.size(), 0.0f);
    be.layernorm_backward({mat(dx, N, C), vec(dgamma), vec(dbeta), cmat(dln, N, C), cmat(x, N, C), cvec(mean),
                           cvec(rstd), cvec(gamma)});
    be.add_inplace(vec(dx), cvec(act));
    Vf dwpe(wpe.size(), 0.0f);
    be.embedding_backward({mat(dwte, V, C), mat(dwpe, T, C), cmat(dx, N, C), tokens.data(), B, T, 0});
    Vf p = w, m(w.size(), 0.0f), v(w.size(), 0.0f);
    be.adamw({vec(p), vec(m), vec(v), cvec(dw), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 1});
    Vf ss = {float(be.sum_squares(cvec(dw)))};
    outs = {x,     ln,   mean, rstd, qkv, atty, att,    act,   logits, losses, dlogits, dact, dwte,
            datty, dqkv, dln,  dw,   db,  dx,   dgamma, dbeta, dwpe,   p,      m,       v,    ss};
    return outs;
}

// Five runs, not two: a data race between threads (Debian's serial OpenBLAS, called from two threads at once,
// had one) shows up only now and then.
TEST_P(CpuVsRef, SameThreadsSameBits) {
    const std::vector<Vf> first = run_every_op(be());
    for (int run = 1; run < 5; ++run) {
        const std::vector<Vf> again = run_every_op(be());
        ASSERT_EQ(first.size(), again.size());
        for (std::size_t i = 0; i < first.size(); ++i) {
            SCOPED_TRACE(::testing::Message() << "run " << run << " output " << i);
            ASSERT_EQ(first[i].size(), again[i].size());
            for (float f : first[i])
                ASSERT_TRUE(std::isfinite(f)) << "an output was left unwritten or overflowed";
            EXPECT_EQ(std::memcmp(first[i].data(), again[i].data(), first[i].size() * sizeof(float)), 0);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Threads, CpuVsRef, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& p) {
                             return "threads" + std::to_string(p.param);
                         });

// sum_squares promises the same double for any thread count (fixed chunks summed in order).
TEST(CpuBackend, SumSquaresIndependentOfThreadCount) {
    Rng rng(34);
    const Vf a = randn(rng, 5 * (1 << 14) + 3);
    double one = 0, two = 0;
    one = make_cpu_backend({1})->sum_squares(cvec(a));
    two = make_cpu_backend({2})->sum_squares(cvec(a));
    EXPECT_EQ(std::memcmp(&one, &two, sizeof(double)), 0) << one << " vs " << two;
}

}  // namespace
}  // namespace tl
