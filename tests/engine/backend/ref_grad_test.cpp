// Gradient checks of every reference backward (backend/cpu/ref_kernels.hpp) against central differences, in
// double on tiny odd shapes: L = sum(G ∘ forward(x)) for a random G, analytic dL/dx from the backward with
// dout = G, numeric from (L(x+h) - L(x-h)) / 2h. Also the conventions of core/ops.hpp: parameter grads
// accumulate, activation grads overwrite. Not a speed or float test: the CPU backend is checked against these
// in cpu_vs_ref_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "backend/cpu/ref_kernels.hpp"
#include "core/rng.hpp"
#include "testing/expect_allclose.hpp"

namespace tl {
namespace {

using Vd = std::vector<double>;

constexpr double kH = 1e-6;  // central-difference step: truncation O(h^2) ~ 1e-12, round-off ~ 1e-16 |L| / h
constexpr double kRtol = 1e-6;
constexpr double kAtol = 1e-8;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Vd randn(Rng& rng, std::int64_t n, double scale = 1.0) {
    Vd v(static_cast<std::size_t>(n));
    for (auto& x : v) x = scale * double(rng.normal());
    return v;
}

double dot(const Vd& a, const Vd& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

Vd plus(const Vd& a, const Vd& b, double sb = 1.0) {
    Vd r(a);
    for (std::size_t i = 0; i < r.size(); ++i) r[i] += sb * b[i];
    return r;
}

// dL/dx[i] by central differences; loss_of reads x (perturbed in place, restored after each element).
Vd central_difference(const std::function<double()>& loss_of, Vd& x, double h = kH) {
    Vd g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double lp = loss_of();
        x[i] = x0 - h;
        const double lm = loss_of();
        x[i] = x0;
        g[i] = (lp - lm) / (2 * h);
    }
    return g;
}

Mat<double> mat(Vd& v, std::int64_t rows, std::int64_t cols) { return {v.data(), rows, cols}; }
Mat<const double> cmat(const Vd& v, std::int64_t rows, std::int64_t cols) { return {v.data(), rows, cols}; }
Vec<double> vec(Vd& v) { return {v.data(), std::int64_t(v.size())}; }
Vec<const double> cvec(const Vd& v) { return {v.data(), std::int64_t(v.size())}; }

// -----------------------------------------------------------------------------------------------------------
TEST(RefGrad, Embedding) {
    Rng rng(11);
    const std::int64_t B = 2, T = 3, C = 5, V = 7, maxT = 6, pos0 = 2, N = B * T;
    const std::vector<std::int32_t> tokens = {3, 0, 3, 6, 3, 1};  // repeats: the scatter must add
    Vd wte = randn(rng, V * C), wpe = randn(rng, maxT * C), G = randn(rng, N * C);
    auto loss = [&] {
        Vd out(std::size_t(N * C));
        ref::embedding_forward<double>(
            {mat(out, N, C), tokens.data(), cmat(wte, V, C), cmat(wpe, maxT, C), B, T, pos0});
        return dot(G, out);
    };
    Vd dwte(wte.size(), 0.0), dwpe(wpe.size(), 0.0);
    auto backward = [&] {
        ref::embedding_backward<double>(
            {mat(dwte, V, C), mat(dwpe, maxT, C), cmat(G, N, C), tokens.data(), B, T, pos0});
    };
    backward();
    TL_EXPECT_ALLCLOSE(dwte, central_difference(loss, wte), kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(dwpe, central_difference(loss, wpe), kRtol, kAtol);

    // Both are parameter grads: two calls from a non-zero start add twice.
    const Vd g_wte = dwte, g_wpe = dwpe;
    const Vd s_wte = randn(rng, V * C), s_wpe = randn(rng, maxT * C);
    dwte = s_wte, dwpe = s_wpe;
    backward();
    backward();
    TL_EXPECT_ALLCLOSE(dwte, plus(s_wte, g_wte, 2.0), 1e-14, 1e-14);
    TL_EXPECT_ALLCLOSE(dwpe, plus(s_wpe, g_wpe, 2.0), 1e-14, 1e-14);
}

// -----------------------------------------------------------------------------------------------------------
TEST(RefGrad, LayerNorm) {
    Rng rng(12);
    const std::int64_t N = 3, C = 7;
    Vd x = randn(rng, N * C, 2.0), gamma = randn(rng, C), beta = randn(rng, C), G = randn(rng, N * C);
    for (std::int64_t c = 0; c < C; ++c) x[std::size_t(c)] += 3.0;  // a row with a non-zero mean
    Vd mean(static_cast<std::size_t>(N)), rstd(static_cast<std::size_t>(N));
    auto loss = [&] {
        Vd out(std::size_t(N * C));
        ref::layernorm_forward<double>(
            {mat(out, N, C), vec(mean), vec(rstd), cmat(x, N, C), cvec(gamma), cvec(beta), 1e-5});
        return dot(G, out);
    };
    loss();  // saves mean, rstd at the unperturbed x
    const Vd mean0 = mean, rstd0 = rstd;
    Vd dx(x.size(), kNaN), dgamma(gamma.size(), 0.0), dbeta(beta.size(), 0.0);  // dx overwrites: poison it
    auto backward = [&] {
        ref::layernorm_backward<double>({mat(dx, N, C), vec(dgamma), vec(dbeta), cmat(G, N, C), cmat(x, N, C),
                                         cvec(mean0), cvec(rstd0), cvec(gamma)});
    };
    backward();
    TL_EXPECT_ALLCLOSE(dx, central_difference(loss, x), kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(dgamma, central_difference(loss, gamma), kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(dbeta, central_difference(loss, beta), kRtol, kAtol);

    const Vd dx1 = dx, g_gamma = dgamma, g_beta = dbeta;
    const Vd s_gamma = randn(rng, C), s_beta = randn(rng, C);
    dgamma = s_gamma, dbeta = s_beta;
    dx.assign(dx.size(), 123.0);
    backward();
    backward();
    TL_EXPECT_ALLCLOSE(dx, dx1, 0.0, 0.0);  // overwritten, not accumulated
    TL_EXPECT_ALLCLOSE(dgamma, plus(s_gamma, g_gamma, 2.0), 1e-14, 1e-14);
    TL_EXPECT_ALLCLOSE(dbeta, plus(s_beta, g_beta, 2.0), 1e-14, 1e-14);
}

// -----------------------------------------------------------------------------------------------------------
TEST(RefGrad, Linear) {
    Rng rng(13);
    const std::int64_t N = 3, C = 5, OC = 7;
    Vd x = randn(rng, N * C), w = randn(rng, C * OC), b = randn(rng, OC), G = randn(rng, N * OC);
    auto loss = [&] {
        Vd out(std::size_t(N * OC), kNaN);
        ref::linear_forward<double>({mat(out, N, OC), cmat(x, N, C), cmat(w, C, OC), cvec(b)});
        return dot(G, out);
    };
    Vd dx(x.size(), kNaN), dw(w.size(), 0.0), db(b.size(), 0.0);
    auto backward = [&] {
        ref::linear_backward<double>(
            {mat(dx, N, C), mat(dw, C, OC), vec(db), cmat(G, N, OC), cmat(x, N, C), cmat(w, C, OC)});
    };
    backward();
    TL_EXPECT_ALLCLOSE(dx, central_difference(loss, x), kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(dw, central_difference(loss, w), kRtol, kAtol);
    TL_EXPECT_ALLCLOSE(db, central_difference(loss, b), kRtol, kAtol);

    const Vd dx1 = dx, g_w = dw, g_b = db;
    const Vd s_w = randn(rng, C * OC), s_b = randn(rng, OC);
    dw = s_w, db = s_b;
    dx.assign(dx.size(), 123.0);
    backward();
    backward();
    TL_EXPECT_ALLCLOSE(dx, dx1, 0.0, 0.0);
    TL_EXPECT_ALLCLOSE(dw, plus(s_w, g_w, 2.0), 1e-14, 1e-14);
    TL_EXPECT_ALLCLOSE(db, plus(s_b, g_b, 2.0), 1e-14, 1e-14);
}

TEST(RefGrad, LinearWithoutBiasAndFrozenParts) {
    Rng rng(14);
    const std::int64_t N = 3, C = 5, OC = 7;
    Vd x = randn(rng, N * C), w = randn(rng, C * OC), G = randn(rng, N * OC);
    auto loss = [&] {
        Vd out(std::size_t(N * OC), kNaN);
        ref::linear_forward<double>({mat(out, N, OC), cmat(x, N, C), cmat(w, C, OC), {}});
        return dot(G, out);
    };
    // Null dx and db are skipped (first layer / no bias); dw alone still comes out right.
    Vd dw(w.size(), 0.0);
    ref::linear_backward<double>({{}, mat(dw, C, OC), {}, cmat(G, N, OC), cmat(x, N, C), cmat(w, C, OC)});
    TL_EXPECT_ALLCLOSE(dw, central_difference(loss, w), kRtol, kAtol);
    // Frozen weight: only dx.
    Vd dx(x.size(), kNaN);
    ref::linear_backward<double>({mat(dx, N, C), {}, {}, cmat(G, N, OC), cmat(x, N, C), cmat(w, C, OC)});
    TL_EXPECT_ALLCLOSE(dx, central_difference(loss, x), kRtol, kAtol);
}

// -----------------------------------------------------------------------------------------------------------
// gemm's backward is gemm, so the forward against a naive triple loop is the whole check. Operands are
// strided views (ld > cols) so the leading dimension is exercised; C's padding must stay untouched.
TEST(RefGrad, GemmAllTransposesAgainstTripleLoop) {
    const std::int64_t M = 3, K = 5, N = 4, pad = 2;
    for (const Trans ta : {Trans::no, Trans::yes})
        for (const Trans tb : {Trans::no, Trans::yes})
            for (const double beta : {0.0, 0.3}) {
                SCOPED_TRACE(::testing::Message() << "trans_a " << (ta == Trans::yes) << " trans_b "
                                                  << (tb == Trans::yes) << " beta " << beta);
                Rng rng(15);
                const std::int64_t ar = ta == Trans::yes ? K : M, ac = ta == Trans::yes ? M : K;
                const std::int64_t br = tb == Trans::yes ? N : K, bc = tb == Trans::yes ? K : N;
                const Vd a = randn(rng, ar * (ac + pad)), b = randn(rng, br * (bc + pad));
                Vd c = randn(rng, M * (N + pad));
                if (beta == 0.0)  // beta 0 must ignore C entirely, NaNs included
                    for (std::int64_t i = 0; i < M; ++i)
                        for (std::int64_t j = 0; j < N; ++j) c[std::size_t(i * (N + pad) + j)] = kNaN;
                Vd expect = c;
                const double alpha = 0.7;
                for (std::int64_t i = 0; i < M; ++i)
                    for (std::int64_t j = 0; j < N; ++j) {
                        double acc = 0;
                        for (std::int64_t k = 0; k < K; ++k) {
                            const double av = ta == Trans::yes ? a[std::size_t(k * (ac + pad) + i)]
                                                               : a[std::size_t(i * (ac + pad) + k)];
                            const double bv = tb == Trans::yes ? b[std::size_t(j * (bc + pad) + k)]
                                                               : b[std::size_t(k * (bc + pad) + j)];
                            acc += av * bv;
                        }
                        double& e = expect[std::size_t(i * (N + pad) + j)];
                        e = alpha * acc + (beta == 0.0 ? 0.0 : beta * e);
                    }
                ref::gemm<double>({Mat<double>(c.data(), M, N, N + pad),
                                   Mat<const double>(a.data(), ar, ac, ac + pad),
                                   Mat<const double>(b.data(), br, bc, bc + pad), ta, tb, alpha, beta});
                TL_EXPECT_ALLCLOSE(c, expect, 1e-14, 1e-14);  // padding compares equal too: not written
            }
}

// -----------------------------------------------------------------------------------------------------------
TEST(RefGrad, Attention) {
    Rng rng(16);
    const std::int64_t B = 2, T = 5, H = 2, C = 6, N = B * T;
    Vd qkv = randn(rng, N * 3 * C), G = randn(rng, N * C);
    Vd att(std::size_t(B * H * T * T), kNaN);
    auto loss = [&] {
        Vd out(std::size_t(N * C), kNaN);
        ref::attention_forward<double>({mat(out, N, C), att.data(), cmat(qkv, N, 3 * C), B, T, H});
        return dot(G, out);
    };
    loss();
    const Vd att0 = att;
    // att: causal softmax rows (sum 1 over s <= t, exactly 0 above the diagonal).
    for (std::int64_t bh = 0; bh < B * H; ++bh)
        for (std::int64_t t = 0; t < T; ++t) {
            double sum = 0;
            for (std::int64_t s = 0; s < T; ++s) {
                const double p = att0[std::size_t((bh * T + t) * T + s)];
                if (s > t)
                    EXPECT_EQ(p, 0.0);
                else
                    EXPECT_GT(p, 0.0);
                sum += p;
            }
            EXPECT_NEAR(sum, 1.0, 1e-14);
        }
    Vd dqkv(qkv.size(), kNaN), datt(att.size(), kNaN);  // both overwritten
    ref::attention_backward<double>(
        {mat(dqkv, N, 3 * C), datt.data(), cmat(G, N, C), cmat(qkv, N, 3 * C), att0.data(), B, T, H});
    TL_EXPECT_ALLCLOSE(dqkv, central_difference(loss, qkv), kRtol, kAtol);

    const Vd dqkv1 = dqkv;
    dqkv.assign(dqkv.size(), 123.0);
    ref::attention_backward<double>(
        {mat(dqkv, N, 3 * C), datt.data(), cmat(G, N, C), cmat(qkv, N, 3 * C), att0.data(), B, T, H});
    TL_EXPECT_ALLCLOSE(dqkv, dqkv1, 0.0, 0.0);
}

// Decoding position t against a cache of positions 0..t equals row t of the full causal forward.
TEST(RefGrad, AttentionDecodeEqualsForwardRows) {
    Rng rng(17);
    const std::int64_t B = 2, T = 5, H = 2, C = 6, N = B * T;
    const Vd qkv = randn(rng, N * 3 * C);
    Vd out(std::size_t(N * C)), att(std::size_t(B * H * T * T));
    ref::attention_forward<double>({mat(out, N, C), att.data(), cmat(qkv, N, 3 * C), B, T, H});
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < T; ++t) {
            const double* rows = qkv.data() + b * T * 3 * C;  // positions 0..t of batch row b
            Vd o(static_cast<std::size_t>(C), kNaN);
            ref::attention_decode<double>({vec(o), Vec<const double>(rows + t * 3 * C, C),
                                           Mat<const double>(rows + C, t + 1, C, 3 * C),
                                           Mat<const double>(rows + 2 * C, t + 1, C, 3 * C), H});
            SCOPED_TRACE(::testing::Message() << "b " << b << " t " << t);
            EXPECT_TRUE(testing::allclose(o.data(), out.data() + (b * T + t) * C, C, 1e-13, 1e-14));
        }
}

// -----------------------------------------------------------------------------------------------------------
TEST(RefGrad, Gelu) {
    Rng rng(18);
    const std::int64_t n = 11;
    Vd x = randn(rng, n, 2.0), G = randn(rng, n);
    x[0] = 0.0;  // the kink-free origin, and both tails
    x[1] = -4.5;
    x[2] = 4.5;
    auto loss = [&] {
        Vd out(static_cast<std::size_t>(n), kNaN);
        ref::gelu_forward<double>({vec(out), cvec(x)});
        return dot(G, out);
    };
    // gelu(x) = 0.5 x (1 + tanh(...)) at a few hand-checked points: 0, and gelu(x) - gelu(-x) = x.
    Vd y(static_cast<std::size_t>(n));
    ref::gelu_forward<double>({vec(y), cvec(x)});
    EXPECT_EQ(y[0], 0.0);
    EXPECT_NEAR(y[2] - y[1], 4.5, 1e-14);
    Vd dx(x.size(), kNaN);
    ref::gelu_backward<double>({vec(dx), cvec(G), cvec(x)});
    TL_EXPECT_ALLCLOSE(dx, central_difference(loss, x), kRtol, kAtol);
}

// -----------------------------------------------------------------------------------------------------------
// d(sum_i w_i loss_i / norm)/dlogits with non-uniform weights (one zero, as for a prompt token) and a norm
// that is not the sum of the weights (it covers other micro-batches too).
TEST(RefGrad, CrossEntropy) {
    Rng rng(19);
    const std::int64_t N = 4, V = 7;
    Vd z = randn(rng, N * V, 2.0);
    const std::vector<std::int32_t> y = {3, 0, 6, 3};
    const Vd w = {1.0, 0.5, 0.0, 2.0};
    const double norm = 5.5;
    Vd losses(static_cast<std::size_t>(N), kNaN);
    auto loss = [&] {
        ref::cross_entropy_forward<double>({vec(losses), cmat(z, N, V), y.data()});
        return dot(w, losses) / norm;
    };
    loss();
    for (std::int64_t i = 0; i < N; ++i) {  // -log softmax, written the naive way
        double s = 0;
        for (std::int64_t j = 0; j < V; ++j) s += std::exp(z[std::size_t(i * V + j)]);
        EXPECT_NEAR(losses[std::size_t(i)], std::log(s) - z[std::size_t(i * V + y[std::size_t(i)])], 1e-13);
    }
    Vd dz(z.size(), kNaN);
    ref::cross_entropy_backward<double>({mat(dz, N, V), cmat(z, N, V), y.data(), cvec(w), norm});
    TL_EXPECT_ALLCLOSE(dz, central_difference(loss, z), kRtol, kAtol);
    for (std::int64_t j = 0; j < V; ++j) EXPECT_EQ(dz[std::size_t(2 * V + j)], 0.0);  // weight 0: no gradient
}

TEST(RefGrad, CrossEntropyIsStableForLargeLogits) {
    const std::int64_t V = 3;
    const Vd z = {1000.0, 999.0, -1000.0};
    const std::int32_t y = 1;
    Vd loss(1), dz(static_cast<std::size_t>(V)), w = {1.0};
    ref::cross_entropy_forward<double>({vec(loss), cmat(z, 1, V), &y});
    EXPECT_NEAR(loss[0], std::log(1.0 + std::exp(1.0)), 1e-12);  // log(e^1 + e^0) - 0, shifted by 999
    ref::cross_entropy_backward<double>({mat(dz, 1, V), cmat(z, 1, V), &y, cvec(w), 1.0});
    const double p0 = std::exp(1.0) / (1.0 + std::exp(1.0));
    TL_EXPECT_ALLCLOSE(dz, (Vd{p0, 1.0 - p0 - 1.0, 0.0}), 1e-12, 1e-15);
}

// -----------------------------------------------------------------------------------------------------------
// AdamW against the formula of core/ops.hpp, worked out by hand for two elements:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd p)
TEST(RefGrad, AdamWStepOneFromZeroState) {
    // Step 1, m = v = 0: m = 0.1 g, v = 0.001 g^2, so m/(1-0.9) = g and v/(1-0.999) = g^2; the update is
    // g / (|g| + eps) + wd p, i.e. sign(g) up to eps.
    //   p = 0.5,  g = 0.1:  0.1/(0.1 + 1e-8) + 0.1*0.5 = 0.9999999000000099 + 0.05;  p' = 0.5 - 0.01
    //   * 1.0499999 p = -1.2, g = -0.3: -0.3/(0.3 + 1e-8) - 0.12 = -0.99999996666667 - 0.12;      p' = -1.2 +
    //   0.01 * 1.11999996...
    Vd p = {0.5, -1.2}, m = {0.0, 0.0}, v = {0.0, 0.0};
    const Vd g = {0.1, -0.3};
    ref::adamw<double>({vec(p), vec(m), vec(v), cvec(g), 0.01, 0.9, 0.999, 1e-8, 0.1, 1});
    TL_EXPECT_ALLCLOSE(m, (Vd{0.01, -0.03}), 1e-14, 0.0);
    TL_EXPECT_ALLCLOSE(v, (Vd{1e-5, 9e-5}), 1e-14, 0.0);
    const double u0 = 0.1 / (0.1 + 1e-8) + 0.05, u1 = -0.3 / (0.3 + 1e-8) - 0.12;
    TL_EXPECT_ALLCLOSE(p, (Vd{0.5 - 0.01 * u0, -1.2 - 0.01 * u1}), 1e-14, 0.0);
    EXPECT_NEAR(p[0], 0.489500001, 1e-12);
    EXPECT_NEAR(p[1], -1.1888000003333333, 1e-12);
}

TEST(RefGrad, AdamWStepThreeWithState) {
    // Step 3: bias corrections 1 - 0.9^3 = 0.271 and 1 - 0.999^3 = 0.002997001.
    Vd p = {0.5, -1.2}, m = {0.02, 0.01}, v = {0.001, 0.004};
    const Vd g = {0.1, -0.3};
    ref::adamw<double>({vec(p), vec(m), vec(v), cvec(g), 0.01, 0.9, 0.999, 1e-8, 0.1, 3});
    // m = 0.9*0.02 + 0.1*0.1 = 0.028;        v = 0.999*0.001 + 0.001*0.01 = 0.001009
    // m = 0.9*0.01 + 0.1*(-0.3) = -0.021;    v = 0.999*0.004 + 0.001*0.09 = 0.004086
    TL_EXPECT_ALLCLOSE(m, (Vd{0.028, -0.021}), 1e-14, 0.0);
    TL_EXPECT_ALLCLOSE(v, (Vd{0.001009, 0.004086}), 1e-14, 0.0);
    const double u0 = (0.028 / 0.271) / (std::sqrt(0.001009 / 0.002997001) + 1e-8) + 0.1 * 0.5;
    const double u1 = (-0.021 / 0.271) / (std::sqrt(0.004086 / 0.002997001) + 1e-8) + 0.1 * -1.2;
    TL_EXPECT_ALLCLOSE(p, (Vd{0.5 - 0.01 * u0, -1.2 - 0.01 * u1}), 1e-13, 0.0);
    // The same numbers, evaluated once by hand: u0 = 0.178068... + 0.05, u1 = -0.066366... - 0.12.
    EXPECT_NEAR(p[0], 0.49771932, 1e-8);
    EXPECT_NEAR(p[1], -1.19813634, 1e-8);
}

TEST(RefGrad, AdamWWithoutDecayOrGradientLeavesParameters) {
    Vd p = {0.5, -1.2}, m = {0.0, 0.0}, v = {0.0, 0.0};
    const Vd g = {0.0, 0.0};
    ref::adamw<double>({vec(p), vec(m), vec(v), cvec(g), 0.01, 0.9, 0.999, 1e-8, 0.0, 1});
    TL_EXPECT_ALLCLOSE(p, (Vd{0.5, -1.2}), 0.0, 0.0);
}

}  // namespace
}  // namespace tl
