// Code books (see codebook.hpp): nearest-entry encoding and the 1-D k-means that fits a palette.
#include "formats/codebook.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"

namespace tl {

std::uint32_t codebook_encode(std::span<const float> book, double x) {
    TL_ASSERT(!book.empty(), "[formats] empty code book");
    if (std::isnan(x)) throw Error("[formats] code-book formats have no NaN; got a NaN to encode. Remove NaNs first.");
    const auto it = std::lower_bound(book.begin(), book.end(), x, [](float v, double y) { return double(v) < y; });
    if (it == book.begin()) return 0;
    if (it == book.end()) return std::uint32_t(book.size() - 1);
    const auto hi = std::size_t(it - book.begin()), lo = hi - 1;
    const double d_lo = x - double(book[lo]), d_hi = double(book[hi]) - x;
    if (d_lo < d_hi) return std::uint32_t(lo);
    if (d_hi < d_lo) return std::uint32_t(hi);
    return std::uint32_t(std::fabs(book[lo]) <= std::fabs(book[hi]) ? lo : hi);
}

std::vector<float> kmeans_codebook(std::span<const float> data, int k, int max_iters) {
    if (k < 1 || data.empty())
        throw Error("[formats] k-means needs k >= 1 and some data; got k = " + std::to_string(k) + ", " +
                    std::to_string(data.size()) + " values");
    std::vector<float> sorted(data.begin(), data.end());
    std::sort(sorted.begin(), sorted.end());
    const auto n = sorted.size();
    std::vector<double> centre(static_cast<std::size_t>(k));
    for (int i = 0; i < k; ++i) centre[std::size_t(i)] = sorted[std::min(n - 1, std::size_t((i + 0.5) * double(n) / k))];
    // Sorted data and sorted centres: each cluster is a contiguous run, split at the midpoints between centres.
    std::vector<std::size_t> start(std::size_t(k) + 1, 0), prev;
    for (int iter = 0; iter < max_iters; ++iter) {
        std::sort(centre.begin(), centre.end());
        start[0] = 0;
        start[std::size_t(k)] = n;
        for (std::size_t c = 1; c < std::size_t(k); ++c) {
            const double mid = 0.5 * (centre[c - 1] + centre[c]);
            start[c] = std::size_t(std::upper_bound(sorted.begin(), sorted.end(), mid,
                                                    [](double m, float v) { return m < double(v); }) -
                                   sorted.begin());
        }
        if (start == prev) break;
        prev = start;
        for (std::size_t c = 0; c < std::size_t(k); ++c) {
            if (start[c + 1] == start[c]) continue;  // empty cluster keeps its centre
            double sum = 0;
            for (std::size_t i = start[c]; i < start[c + 1]; ++i) sum += sorted[i];
            centre[c] = sum / double(start[c + 1] - start[c]);
        }
    }
    std::vector<float> out(centre.begin(), centre.end());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace tl
