// The small harness of cuda_parity (a plain executable: the GPU machine has no GoogleTest): a Suite that runs
// named cases and prints one line each, the allclose/bitwise comparisons, and host/device array helpers
// (padded matrices, NaN poison, uploads). The cases are in op_parity.cpp and model_parity.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/rng.hpp"

namespace tl::parity {

using Vf = std::vector<float>;
inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
inline constexpr float kPadSentinel = 777.0f;  // in an output's row padding: a kernel must leave it alone

// One compared output of a case: what the CUDA backend gave against what the oracle gave.
struct Expect {
    std::string what;
    Vf want;
    double rtol, atol;  // |got - want| <= atol + rtol |want|; non-finite values must match exactly
};

struct Comparison {
    bool ok = true;
    double max_abs = 0, max_rel = 0;
    double worst_ratio = 0;  // max of |got - want| / (atol + rtol |want|): below 1 passes; the margin
    std::string detail;      // on failure: the first bad index and values
};

inline Comparison compare(const Vf& got, const Vf& want, double rtol, double atol) {
    Comparison c;
    if (got.size() != want.size()) {
        c.ok = false;
        c.detail = "sizes differ: " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
        return c;
    }
    std::int64_t first_bad = -1, bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double x = got[i], y = want[i];
        const bool finite = std::isfinite(x) && std::isfinite(y);
        const double abs_err = finite ? std::fabs(x - y) : 0.0;
        if (finite) {
            c.max_abs = std::max(c.max_abs, abs_err);
            const double allowed = atol + rtol * std::fabs(y);
            c.worst_ratio =
                std::max(c.worst_ratio, allowed > 0 ? abs_err / allowed : (abs_err > 0 ? 1e30 : 0.0));
            if (std::fabs(y) > atol) c.max_rel = std::max(c.max_rel, abs_err / std::fabs(y));
        }
        const bool ok =
            finite ? abs_err <= atol + rtol * std::fabs(y) : (std::isnan(x) && std::isnan(y)) || x == y;
        if (!ok) {
            if (first_bad < 0) first_bad = std::int64_t(i);
            ++bad;
        }
    }
    if (first_bad >= 0) {
        c.ok = false;
        char buf[200];
        std::snprintf(buf, sizeof buf, "%lld of %zu differ; first at %lld: got %.9g, want %.9g",
                      (long long)bad, got.size(), (long long)first_bad, double(got[std::size_t(first_bad)]),
                      double(want[std::size_t(first_bad)]));
        c.detail = buf;
    }
    return c;
}

inline bool bitwise_equal(const Vf& a, const Vf& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
        if (!both_nan && std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
    }
    return true;
}

class Suite {
public:
    // Runs body; an exception is a failed case (its message printed), never the end of the run.
    void run(const std::string& name, const std::function<void()>& body) {
        try {
            body();
        } catch (const std::exception& e) {
            fail_line(name, std::string("threw: ") + e.what());
        }
    }

    // run1[i] against expects[i]; run2 (a second run on fresh buffers) must equal run1 bit for bit.
    void check(const std::string& name, const std::vector<Vf>& run1, const std::vector<Vf>& run2,
               const std::vector<Expect>& expects) {
        std::string failures;
        double worst_abs = 0, worst_rel = 0, worst_ratio = 0;
        for (std::size_t i = 0; i < expects.size(); ++i) {
            const Expect& e = expects[i];
            const Comparison c = i < run1.size() ? compare(run1[i], e.want, e.rtol, e.atol)
                                                 : Comparison{false, 0, 0, 0, "no output"};
            worst_abs = std::max(worst_abs, c.max_abs);
            worst_rel = std::max(worst_rel, c.max_rel);
            worst_ratio = std::max(worst_ratio, c.worst_ratio);
            if (!c.ok)
                failures += "      " + e.what + " (rtol " + fmt(e.rtol) + ", atol " + fmt(e.atol) +
                            "): " + c.detail + "\n";
        }
        if (!run2.empty()) {
            for (std::size_t i = 0; i < run1.size(); ++i)
                if (i >= run2.size() || !bitwise_equal(run1[i], run2[i]))
                    failures += "      not deterministic: output " + std::to_string(i) +
                                " differs between two runs on the same inputs\n";
        }
        const std::string stats = "err/tol " + fmt(worst_ratio) + " (max abs " + fmt(worst_abs) + ", rel " +
                                  fmt(worst_rel) + ")" + (run2.empty() ? "" : ", 2 runs bitwise equal");
        if (failures.empty())
            pass_line(name, stats);
        else
            fail_line(name, stats + "\n" + failures);
    }

    // A check that is not an output comparison (a count, a flag).
    void expect_true(const std::string& name, bool ok, const std::string& detail) {
        if (ok)
            pass_line(name, detail);
        else
            fail_line(name, detail);
    }

    int passed() const { return passed_; }
    int failed() const { return failed_; }

    static std::string fmt(double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2g", v);
        return buf;
    }

private:
    void pass_line(const std::string& name, const std::string& detail) {
        ++passed_;
        std::printf("PASS  %-52s %s\n", name.c_str(), detail.c_str());
        std::fflush(stdout);
    }
    void fail_line(const std::string& name, const std::string& detail) {
        ++failed_;
        std::printf("FAIL  %-52s %s\n", name.c_str(), detail.c_str());
        std::fflush(stdout);
    }
    int passed_ = 0, failed_ = 0;
};

// ---- host arrays ------------------------------------------------------------------------------------------
inline Vf randn(Rng& rng, std::int64_t n, float scale = 1.0f, float shift = 0.0f) {
    Vf v(static_cast<std::size_t>(n));
    for (auto& x : v) x = scale * rng.normal() + shift;
    return v;
}

inline std::vector<std::int32_t> random_ids(Rng& rng, std::int64_t n, std::int64_t below) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (auto& t : ids) t = std::int32_t(rng.below(std::uint64_t(below)));
    return ids;
}

// A (rows, cols) row-major matrix with row stride ld = cols + pad; the padding holds pad_value. Inputs pad
// with NaN (a kernel that reads padding poisons its result), outputs with kPadSentinel (one that writes it is
// caught).
struct HostMat {
    Vf v;
    std::int64_t rows = 0, cols = 0, ld = 0;
    MatView view() { return {v.data(), rows, cols, ld}; }
    CMatView cview() const { return {v.data(), rows, cols, ld}; }
};

inline HostMat host_mat(const Vf& body, std::int64_t rows, std::int64_t cols, std::int64_t pad,
                        float pad_value) {
    HostMat m{Vf(std::size_t(rows * (cols + pad)), pad_value), rows, cols, cols + pad};
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
            m.v[std::size_t(r * m.ld + c)] = body[std::size_t(r * cols + c)];
    return m;
}
inline HostMat input_mat(Rng& rng, std::int64_t rows, std::int64_t cols, std::int64_t pad, float scale = 1.0f,
                         float shift = 0.0f) {
    return host_mat(randn(rng, rows * cols, scale, shift), rows, cols, pad, kNaN);
}
inline HostMat poisoned_mat(std::int64_t rows, std::int64_t cols, std::int64_t pad) {
    return host_mat(Vf(std::size_t(rows * cols), kNaN), rows, cols, pad, kPadSentinel);
}
inline HostMat start_mat(Rng& rng, std::int64_t rows, std::int64_t cols, std::int64_t pad) {  // accumulators
    return host_mat(randn(rng, rows * cols), rows, cols, pad, kPadSentinel);
}

// ---- device arrays: one per GPU run, freed with it --------------------------------------------------------
class DeviceArrays {
public:
    explicit DeviceArrays(Backend& be) : be_(be) {}
    float* put(const Vf& host) {
        float* p = alloc_floats(std::int64_t(host.size()));
        be_.copy_from_host(VecView(p, std::int64_t(host.size())), host.data());
        return p;
    }
    MatView put(const HostMat& m) { return {put(m.v), m.rows, m.cols, m.ld}; }
    VecView put_vec(const Vf& host) { return {put(host), std::int64_t(host.size())}; }
    const std::int32_t* put_ids(const std::vector<std::int32_t>& ids) {
        Buffer b =
            be_.alloc(sizeof(std::int32_t) * std::max<std::size_t>(ids.size(), 1), MemCategory::workspace);
        be_.upload_bytes(b.data(), ids.data(), sizeof(std::int32_t) * ids.size());
        auto* p = static_cast<const std::int32_t*>(b.data());
        keep_.push_back(std::move(b));
        return p;
    }
    Vf get(const float* p, std::size_t n) {
        Vf out(n);
        be_.copy_to_host(out.data(), CVecView(p, std::int64_t(n)));
        return out;
    }
    Vf get(const MatView& m) { return get(m.data, std::size_t(m.rows * m.ld)); }  // padding included
    Vf get(const VecView& v) { return get(v.data, std::size_t(v.n)); }

private:
    float* alloc_floats(std::int64_t n) {
        Buffer b =
            be_.alloc(sizeof(float) * std::size_t(std::max<std::int64_t>(n, 1)), MemCategory::workspace);
        auto* p = static_cast<float*>(b.data());
        keep_.push_back(std::move(b));
        return p;
    }
    Backend& be_;
    std::vector<Buffer> keep_;
};

// Two GPU runs of the same case on fresh buffers: the determinism check compares them.
inline std::pair<std::vector<Vf>, std::vector<Vf>> twice(const std::function<std::vector<Vf>()>& gpu_run) {
    std::vector<Vf> first = gpu_run();
    std::vector<Vf> second = gpu_run();
    return {std::move(first), std::move(second)};
}

void run_op_cases(Suite& suite, Backend& gpu);
void run_fused_attention_cases(Suite& suite, Backend& fused);  // op_parity.cpp
void run_fused_attention_model_cases(Suite& suite, Backend& fused);  // model_parity.cpp
void run_model_cases(Suite& suite, Backend& gpu);

// The backend under test in a GEMM precision: the GPU's (make_cuda_backend), or in --cpu / --ref the host
// stand-in that rounds GEMM operands as the GPU does (emulated_backend.hpp).
using MakeBackend = std::function<std::unique_ptr<Backend>(GemmPrecision)>;
void run_precision_op_cases(Suite& suite, const MakeBackend& make);     // precision_parity.cpp
void run_precision_model_cases(Suite& suite, const MakeBackend& make);  // model_parity.cpp

}  // namespace tl::parity
