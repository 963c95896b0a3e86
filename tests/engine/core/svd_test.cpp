// thin_svd against matrices built with known singular values: a = Q1 diag(s) Q2^T, where Q1 and Q2 are products
// of Givens rotations written out here (orthogonal by construction, no Eigen involved).
#include "core/svd.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace tl {
namespace {

using Mat = std::vector<double>;  // row-major

// An n x n orthogonal matrix: the identity rotated in every (i, j) plane by an angle that depends on (i, j, seed).
Mat rotations(std::int64_t n, double seed) {
    Mat q(std::size_t(n * n), 0.0);
    for (std::int64_t i = 0; i < n; ++i) q[std::size_t(i * n + i)] = 1.0;
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = i + 1; j < n; ++j) {
            const double t = seed + 0.37 * double(i) + 0.91 * double(j), c = std::cos(t), s = std::sin(t);
            for (std::int64_t r = 0; r < n; ++r) {  // q <- q G(i, j, t): mixes columns i and j
                const double a = q[std::size_t(r * n + i)], b = q[std::size_t(r * n + j)];
                q[std::size_t(r * n + i)] = c * a - s * b;
                q[std::size_t(r * n + j)] = s * a + c * b;
            }
        }
    return q;
}

// (rows, cols) = Q1[:, :k] diag(s) Q2[:, :k]^T
Mat with_singular_values(const std::vector<double>& s, std::int64_t rows, std::int64_t cols) {
    const std::int64_t k = std::int64_t(s.size());
    const Mat q1 = rotations(rows, 0.3), q2 = rotations(cols, 1.7);
    Mat a(std::size_t(rows * cols), 0.0);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
            for (std::int64_t i = 0; i < k; ++i)
                a[std::size_t(r * cols + c)] += q1[std::size_t(r * rows + i)] * s[std::size_t(i)] *
                                                q2[std::size_t(c * cols + i)];
    return a;
}

void expect_decomposes(const std::vector<double>& s_true, std::int64_t rows, std::int64_t cols) {
    const Mat a = with_singular_values(s_true, rows, cols);
    const Svd svd = thin_svd(a.data(), rows, cols, SvdVectors::thin);
    ASSERT_EQ(svd.k, std::min(rows, cols));
    std::vector<double> sorted = s_true;
    std::sort(sorted.rbegin(), sorted.rend());
    for (std::int64_t i = 0; i < svd.k; ++i) EXPECT_NEAR(svd.S[std::size_t(i)], sorted[std::size_t(i)], 1e-12) << i;
    for (std::int64_t r = 0; r < rows; ++r)  // U diag(S) V^T rebuilds a
        for (std::int64_t c = 0; c < cols; ++c) {
            double v = 0;
            for (std::int64_t i = 0; i < svd.k; ++i)
                v += svd.U[std::size_t(r * svd.k + i)] * svd.S[std::size_t(i)] * svd.V[std::size_t(c * svd.k + i)];
            EXPECT_NEAR(v, a[std::size_t(r * cols + c)], 1e-12);
        }
    for (std::int64_t i = 0; i < svd.k; ++i)  // the columns of U are orthonormal
        for (std::int64_t j = 0; j < svd.k; ++j) {
            double dot = 0;
            for (std::int64_t r = 0; r < rows; ++r) dot += svd.U[std::size_t(r * svd.k + i)] * svd.U[std::size_t(r * svd.k + j)];
            EXPECT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-12);
        }
}

TEST(Svd, RecoversKnownSingularValuesWideAndTall) {
    expect_decomposes({5.0, 0.5, 3.0}, 3, 7);
    expect_decomposes({2.0, 9.0, 1e-3, 4.0}, 8, 4);
}

TEST(Svd, ValuesOnlyMatchesTheThinDecomposition) {
    const Mat a = with_singular_values({1.0, 7.0, 2.5, 0.0}, 4, 6);
    const Svd values = thin_svd(a.data(), 4, 6, SvdVectors::none);
    EXPECT_TRUE(values.U.empty() && values.V.empty());
    const std::vector<double> expected = {7.0, 2.5, 1.0, 0.0};
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(values.S[i], expected[i], 1e-12);
}

}  // namespace
}  // namespace tl
