// The per-tensor merge math. Accumulations run in double; every output is written once (overwrite).
#include "merge/merge_ops.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace tl {

void linear_merge(float* out, const TensorInputs& in, Normalize normalize) {
    TL_ASSERT(in.xs.size() == in.weights.size() && !in.xs.empty(), "[merge] linear: inputs and weights differ");
    double wsum = 0;
    for (double w : in.weights) wsum += w;
    const double scale = normalize == Normalize::yes ? 1.0 / wsum : 1.0;
    for (std::int64_t j = 0; j < in.n; ++j) {
        double acc = 0;
        for (std::size_t i = 0; i < in.xs.size(); ++i) acc += in.weights[i] * in.xs[i][j];
        out[j] = float(acc * scale);
    }
}

void slerp_merge(float* out, const float* a, const float* b, std::int64_t n, double t) {
    double aa = 0, bb = 0, ab = 0;
    for (std::int64_t j = 0; j < n; ++j) {
        aa += double(a[j]) * a[j];
        bb += double(b[j]) * b[j];
        ab += double(a[j]) * b[j];
    }
    double ca = 1 - t, cb = t;  // linear fallback
    if (aa > 0 && bb > 0) {
        const double dot = std::clamp(ab / std::sqrt(aa * bb), -1.0, 1.0);
        if (std::fabs(dot) <= kSlerpParallelDot) {
            const double theta = std::acos(dot), s = std::sin(theta);
            ca = std::sin((1 - t) * theta) / s;
            cb = std::sin(t * theta) / s;
        }
    }
    for (std::int64_t j = 0; j < n; ++j) out[j] = float(ca * a[j] + cb * b[j]);
}

void trim_top_k(float* delta, std::int64_t n, double density, std::vector<float>& scratch) {
    const auto k = std::int64_t(std::floor(density * double(n)));
    if (k >= n) return;
    if (k <= 0) {
        std::fill(delta, delta + n, 0.0f);
        return;
    }
    scratch.resize(std::size_t(n));
    for (std::int64_t j = 0; j < n; ++j) scratch[std::size_t(j)] = std::fabs(delta[j]);
    // The k-th largest magnitude: everything above it stays, and entries equal to it fill up to k in index order.
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
    const float threshold = scratch[std::size_t(k - 1)];
    std::int64_t above = 0;
    for (std::int64_t j = 0; j < n; ++j) above += std::fabs(delta[j]) > threshold;
    std::int64_t ties_left = k - above;
    for (std::int64_t j = 0; j < n; ++j) {
        const float m = std::fabs(delta[j]);
        if (m > threshold) continue;
        if (m == threshold && ties_left > 0) {
            --ties_left;
            continue;
        }
        delta[j] = 0.0f;
    }
}

void dare_drop(float* delta, std::int64_t n, double density, std::uint64_t seed, std::uint64_t stream) {
    if (density >= 1.0) return;
    const auto rescale = float(1.0 / density);
    // keep when u < density, u = word / 2^32: compare the raw word against density * 2^32.
    const double cut = density * 4294967296.0;
    for (std::int64_t block = 0; block * 4 < n; ++block) {
        const auto words = Rng::philox(seed, stream, std::uint64_t(block));
        for (std::int64_t w = 0; w < 4 && block * 4 + w < n; ++w) {
            float& d = delta[block * 4 + w];
            d = double(words[std::size_t(w)]) < cut ? d * rescale : 0.0f;
        }
    }
}

void task_arithmetic_merge(float* out, const TensorInputs& in, const TaskArithmeticArgs& args) {
    const std::size_t k = in.xs.size();
    TL_ASSERT(in.base && k > 0 && in.weights.size() == k, "[merge] task arithmetic: base, inputs or weights missing");
    TL_ASSERT(args.sparsify == Sparsify::none || args.density.size() == k, "[merge] densities do not match inputs");
    TL_ASSERT(args.sparsify != Sparsify::random || args.streams.size() == k, "[merge] DARE needs one stream per input");
    // Weighted task vectors, sparsified: w_i * sparsify(x_i - base).
    std::vector<std::vector<float>> deltas(k, std::vector<float>(std::size_t(in.n)));
    std::vector<float> scratch;
    for (std::size_t i = 0; i < k; ++i) {
        float* d = deltas[i].data();
        for (std::int64_t j = 0; j < in.n; ++j) d[j] = in.xs[i][j] - in.base[j];
        if (args.sparsify == Sparsify::magnitude) trim_top_k(d, in.n, args.density[i], scratch);
        if (args.sparsify == Sparsify::random) dare_drop(d, in.n, args.density[i], args.seed, args.streams[i]);
        for (std::int64_t j = 0; j < in.n; ++j) d[j] = float(in.weights[i] * d[j]);
    }
    for (std::int64_t j = 0; j < in.n; ++j) {
        // Sign election (TIES "sum"): the sign of the total weighted mass; 0 counts as +.
        double total = 0;
        for (std::size_t i = 0; i < k; ++i) total += deltas[i][std::size_t(j)];
        const double sign = total >= 0 ? 1.0 : -1.0;
        double mixed = 0, divisor = 0;
        for (std::size_t i = 0; i < k; ++i) {
            const double d = deltas[i][std::size_t(j)];
            const bool agrees = args.consensus == Consensus::none || (d != 0 && (d > 0) == (sign > 0));
            if (!agrees) continue;
            mixed += d;
            divisor += in.weights[i];
        }
        if (args.normalize == Normalize::yes) mixed /= std::fabs(divisor) < 1e-8 ? 1.0 : divisor;
        out[j] = float(in.base[j] + args.lambda * mixed);
    }
}

}  // namespace tl
