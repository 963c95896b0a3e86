// expect_allclose: compares two arrays elementwise with |a-b| <= atol + rtol*|b| and, on failure, reports the
// first mismatching index and the max abs / rel error, so a kernel bug points at a place.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace tl::testing {

template <class A, class B>
::testing::AssertionResult allclose(const A* a, const B* b, std::int64_t n, double rtol, double atol) {
    std::int64_t first_bad = -1, bad_count = 0;
    double max_abs = 0, max_rel = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
        const double abs_err = std::fabs(x - y);
        const double rel_err = abs_err / std::max(std::fabs(y), 1e-30);
        max_abs = std::max(max_abs, abs_err);
        if (std::fabs(y) > atol) max_rel = std::max(max_rel, rel_err);
        const bool ok = std::isfinite(x) && std::isfinite(y) ? abs_err <= atol + rtol * std::fabs(y) : x == y;
        if (!ok) {
            if (first_bad < 0) first_bad = i;
            ++bad_count;
        }
    }
    if (first_bad < 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << bad_count << " of " << n << " elements differ; first at index " << first_bad << ": "
           << static_cast<double>(a[first_bad]) << " vs " << static_cast<double>(b[first_bad])
           << "; max abs err " << max_abs << ", max rel err " << max_rel << " (rtol " << rtol << ", atol " << atol
           << ")";
}

template <class A, class B>
::testing::AssertionResult allclose(const std::vector<A>& a, const std::vector<B>& b, double rtol, double atol) {
    if (a.size() != b.size())
        return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
    return allclose(a.data(), b.data(), static_cast<std::int64_t>(a.size()), rtol, atol);
}

}  // namespace tl::testing

#define TL_EXPECT_ALLCLOSE(a, b, rtol, atol) EXPECT_TRUE(::tl::testing::allclose((a), (b), (rtol), (atol)))
