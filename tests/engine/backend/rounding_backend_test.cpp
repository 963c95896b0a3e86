// RoundingBackend against an independent computation: inputs rounded by the formats codec (format_round), the
// FP32 op (the wrapped CPU backend, and the scalar reference kernels), outputs rounded by the codec again.
// Master weights stay FP32; parameter gradients get a rounded contribution added in FP32; fp16 flushes what
// falls below 2^-25 and overflows past 65504, and the counts say so.
#include "backend/rounding_backend.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/ref_kernels.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/format_table.hpp"

namespace tl {
namespace {

const FormatInfo& format_of(Precision p) {
    return format_info(p == Precision::bf16 ? Format::bf16 : Format::fp16);
}

std::vector<float> rounded(const std::vector<float>& v, Precision p) {
    std::vector<float> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = float(format_round(format_of(p), v[i]));
    return out;
}

std::vector<float> host(Backend& be, const Tensor& t) {
    std::vector<float> out(std::size_t(t.numel()));
    be.copy_to_host(out.data(), t.vec());
    return out;
}

Tensor upload(Backend& be, const std::vector<float>& v, MemCategory what) {
    Tensor t = be.tensor({std::int64_t(v.size())}, what);
    be.copy_from_host(t.vec(), v.data());
    return t;
}

std::vector<float> randn(Rng& rng, std::int64_t n, float scale) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = scale * rng.normal();
    return v;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

class RoundingOps : public ::testing::TestWithParam<Precision> {};

// out = round(x_r W_r + b_r): the wrapped op's FP32 result on the codec's rounded inputs, rounded by the
// codec.
TEST_P(RoundingOps, LinearForwardRoundsInputsAndOutput) {
    const Precision p = GetParam();
    auto cpu = make_cpu_backend({1});
    RoundingBackend rb(*cpu, p);
    Rng rng(11);
    const std::int64_t N = 6, C = 16, OC = 12;
    const auto x = rounded(randn(rng, N * C, 1.0f), p);  // activations arrive in the format (an op's output)
    const auto w = randn(rng, C * OC, 0.3f), b = randn(rng, OC, 0.1f);
    Tensor tw = upload(rb, w, MemCategory::weights), tb = upload(rb, b, MemCategory::weights);
    Tensor tx = upload(rb, x, MemCategory::activations), tout = rb.tensor({N * OC}, MemCategory::activations);
    rb.linear_forward({tout.mat(N), tx.mat(N), tw.mat(C), tb.vec()});
    const std::vector<float> got = host(rb, tout);

    const auto wr = rounded(w, p), br = rounded(b, p);
    std::vector<float> want(std::size_t(N * OC)), ref(std::size_t(N * OC));
    cpu->linear_forward({MatView(want.data(), N, OC), CMatView(x.data(), N, C), CMatView(wr.data(), C, OC),
                         CVecView(br.data(), OC)});
    EXPECT_TRUE(bitwise_equal(got, rounded(want, p)));
    // The reference kernel sums in another order: after rounding, the same values or one format ulp apart.
    ref::linear_forward<float>({MatView(ref.data(), N, OC), CMatView(x.data(), N, C),
                                CMatView(wr.data(), C, OC), CVecView(br.data(), OC)});
    const auto ref_r = rounded(ref, p);
    const double ulp = format_facts(format_of(p)).epsilon;
    int identical = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], ref_r[i], ulp * std::fabs(ref_r[i]) * 1.01) << i;
        identical += got[i] == ref_r[i];
    }
    EXPECT_GE(identical, int(got.size()) - 2);
    EXPECT_TRUE(bitwise_equal(host(rb, tw), w)) << "the FP32 master weights must not change";
}

// dx = round(dout_r W_r^T) overwrites; dW += round(x^T dout), the sum in FP32 on top of what dW held.
TEST_P(RoundingOps, LinearBackwardAddsRoundedContributionsInFp32) {
    const Precision p = GetParam();
    auto cpu = make_cpu_backend({1});
    RoundingBackend rb(*cpu, p);
    Rng rng(12);
    const std::int64_t N = 5, C = 8, OC = 10;
    const auto x = rounded(randn(rng, N * C, 1.0f), p), dout = rounded(randn(rng, N * OC, 0.01f), p);
    const auto w = randn(rng, C * OC, 0.3f), dw0 = randn(rng, C * OC, 1e-3f), db0 = randn(rng, OC, 1e-3f);
    Tensor tw = upload(rb, w, MemCategory::weights);
    Tensor tdw = upload(rb, dw0, MemCategory::grads), tdb = upload(rb, db0, MemCategory::grads);
    Tensor tx = upload(rb, x, MemCategory::activations), tdout = upload(rb, dout, MemCategory::activations);
    Tensor tdx = rb.tensor({N * C}, MemCategory::activations);
    rb.linear_backward({tdx.mat(N), tdw.mat(C), tdb.vec(), tdout.mat(N), tx.mat(N), tw.mat(C)});

    const auto wr = rounded(w, p);
    std::vector<float> dx(std::size_t(N * C)), dw(std::size_t(C * OC), 0.0f), db(std::size_t(OC), 0.0f);
    cpu->linear_backward({MatView(dx.data(), N, C), MatView(dw.data(), C, OC), VecView(db.data(), OC),
                          CMatView(dout.data(), N, OC), CMatView(x.data(), N, C),
                          CMatView(wr.data(), C, OC)});
    const auto dwr = rounded(dw, p), dbr = rounded(db, p);
    std::vector<float> dw_want(dw0), db_want(db0);
    for (std::size_t i = 0; i < dw_want.size(); ++i) dw_want[i] += dwr[i];
    for (std::size_t i = 0; i < db_want.size(); ++i) db_want[i] += dbr[i];
    EXPECT_TRUE(bitwise_equal(host(rb, tdx), rounded(dx, p)));
    EXPECT_TRUE(bitwise_equal(host(rb, tdw), dw_want));
    EXPECT_TRUE(bitwise_equal(host(rb, tdb), db_want));
    EXPECT_GT(rb.stats().backward.values, 0);
    EXPECT_EQ(rb.stats().forward.values, 0);
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundingOps, ::testing::Values(Precision::bf16, Precision::fp16),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

// [activation quantization] The oracle rounds in double: scale = fp32(absmax / (2^(b-1) - 1)) per row,
// q = round-half-even(x / scale) clamped to +-(2^(b-1) - 1), x_q = q * scale; then the plain CPU op on x_q.
std::vector<float> quantized_rows(const std::vector<float>& x, std::int64_t rows, std::int64_t cols, int bits) {
    const double qmax = std::pow(2.0, bits - 1) - 1;
    std::vector<float> out(x.size());
    for (std::int64_t r = 0; r < rows; ++r) {
        double m = 0;
        for (std::int64_t j = 0; j < cols; ++j) m = std::max(m, std::fabs(double(x[std::size_t(r * cols + j)])));
        const double scale = double(float(m / qmax));
        for (std::int64_t j = 0; j < cols; ++j) {
            const double v = double(x[std::size_t(r * cols + j)]) / scale;
            double q = std::floor(v + 0.5);
            if (q - v == 0.5 && std::fmod(q, 2.0) != 0) q -= 1;  // a tie goes to the even integer
            out[std::size_t(r * cols + j)] = float(std::clamp(q, -qmax, qmax) * scale);
        }
    }
    return out;
}

class ActivationBits : public ::testing::TestWithParam<int> {};

TEST_P(ActivationBits, LinearReadsPerTokenIntegerInputsAndTheSteKeepsDx) {
    const int bits = GetParam();
    auto cpu = make_cpu_backend({1});
    RoundingBackend rb(*cpu);
    rb.set_activation_bits(bits);
    Rng rng(21);
    const std::int64_t N = 7, C = 24, OC = 9;
    auto x = randn(rng, N * C, 1.0f);
    x[5] = 9.0f;  // an outlier: its row's scale grows, the other rows keep theirs
    const auto w = randn(rng, C * OC, 0.3f), b = randn(rng, OC, 0.1f), dout = randn(rng, N * OC, 0.1f);
    Tensor tw = upload(rb, w, MemCategory::weights), tb = upload(rb, b, MemCategory::weights);
    Tensor tx = upload(rb, x, MemCategory::activations), tout = rb.tensor({N * OC}, MemCategory::activations);
    Tensor tdw = rb.tensor({C * OC}, MemCategory::grads), tdb = rb.tensor({OC}, MemCategory::grads);
    Tensor tdout = upload(rb, dout, MemCategory::activations), tdx = rb.tensor({N * C}, MemCategory::activations);
    rb.linear_forward({tout.mat(N), tx.mat(N), tw.mat(C), tb.vec()});
    rb.linear_backward({tdx.mat(N), tdw.mat(C), tdb.vec(), tdout.mat(N), tx.mat(N), tw.mat(C)});

    const std::vector<float> xq = quantized_rows(x, N, C, bits);
    std::vector<float> out(std::size_t(N * OC)), dx(std::size_t(N * C)), dw(std::size_t(C * OC), 0.0f),
        db(std::size_t(OC), 0.0f), dx_plain(dx.size()), dw_plain(dw.size(), 0.0f), db_plain(db.size(), 0.0f);
    cpu->linear_forward({MatView(out.data(), N, OC), CMatView(xq.data(), N, C), CMatView(w.data(), C, OC),
                         CVecView(b.data(), OC)});
    cpu->linear_backward({MatView(dx.data(), N, C), MatView(dw.data(), C, OC), VecView(db.data(), OC),
                          CMatView(dout.data(), N, OC), CMatView(xq.data(), N, C), CMatView(w.data(), C, OC)});
    EXPECT_TRUE(bitwise_equal(host(rb, tout), out));
    EXPECT_TRUE(bitwise_equal(host(rb, tdw), dw)) << "dW comes from the rounded inputs the forward used";
    EXPECT_TRUE(bitwise_equal(host(rb, tdx), dx)) << "dx = dout W^T: the straight-through estimator";
    cpu->linear_backward({MatView(dx_plain.data(), N, C), MatView(dw_plain.data(), C, OC),
                          VecView(db_plain.data(), OC), CMatView(dout.data(), N, OC), CMatView(x.data(), N, C),
                          CMatView(w.data(), C, OC)});
    EXPECT_FALSE(bitwise_equal(dw_plain, dw)) << "the rounding must have changed something";
    int distinct = 0;  // at most 2^bits - 1 values per row
    for (std::int64_t r = 0; r < N; ++r) {
        std::vector<float> row(xq.begin() + r * C, xq.begin() + (r + 1) * C);
        std::sort(row.begin(), row.end());
        distinct = std::max(distinct, int(std::unique(row.begin(), row.end()) - row.begin()));
    }
    EXPECT_LE(distinct, (1 << bits) - 1);
    EXPECT_TRUE(bitwise_equal(host(rb, tx), x)) << "the saved activation itself is not rounded";
}

INSTANTIATE_TEST_SUITE_P(RoundingBackend, ActivationBits, ::testing::Values(8, 4, 3));

TEST(RoundingBackend, ActivationBitsOffIsThePlainOpAndBadWidthsAreErrors) {
    auto cpu = make_cpu_backend({1});
    RoundingBackend rb(*cpu);
    EXPECT_THROW(rb.set_activation_bits(1), Error);
    EXPECT_THROW(rb.set_activation_bits(17), Error);
    rb.set_activation_bits(8);
    rb.set_activation_bits(0);
    Rng rng(3);
    const std::int64_t N = 3, C = 5, OC = 4;
    const auto x = randn(rng, N * C, 1.0f), w = randn(rng, C * OC, 0.3f), b = randn(rng, OC, 0.1f);
    std::vector<float> want(std::size_t(N * OC));
    Tensor tw = upload(rb, w, MemCategory::weights), tb = upload(rb, b, MemCategory::weights);
    Tensor tx = upload(rb, x, MemCategory::activations), tout = rb.tensor({N * OC}, MemCategory::activations);
    rb.linear_forward({tout.mat(N), tx.mat(N), tw.mat(C), tb.vec()});
    cpu->linear_forward({MatView(want.data(), N, OC), CMatView(x.data(), N, C), CMatView(w.data(), C, OC),
                         CVecView(b.data(), OC)});
    EXPECT_TRUE(bitwise_equal(host(rb, tout), want));
}

// dlogits = w / norm (p - onehot): with logits (0, 0), +-0.5 / norm. norm = 2^26 gives +-2^-27, below fp16's
// flush threshold 2^-25. Loss scaling by S = 2^16 (norm / S) gives 2^-11: kept, and exact after unscaling.
TEST(RoundingBackend, Fp16FlushesSmallGradientsThatLossScalingKeeps) {
    auto cpu = make_cpu_backend({1});
    const std::vector<float> logits = {0.0f, 0.0f}, weights = {1.0f};
    const std::int32_t target = 0;
    auto dlogits = [&](Precision p, float norm, RoundingCounts* counts) {
        RoundingBackend rb(*cpu, p);
        std::vector<float> d(2);
        rb.cross_entropy_backward({MatView(d.data(), 1, 2), CMatView(logits.data(), 1, 2), &target,
                                   CVecView(weights.data(), 1), norm});
        if (counts) *counts = rb.stats().backward;
        return d;
    };
    RoundingCounts c;
    const auto fp32 = dlogits(Precision::fp32, 0x1p26f, &c);
    EXPECT_EQ(fp32[1], 0x1p-27f);
    EXPECT_EQ(c.fp16_flushed, 2) << "fp32 mode still says what fp16 would flush";
    const auto fp16 = dlogits(Precision::fp16, 0x1p26f, &c);
    EXPECT_EQ(fp16[0], 0.0f);
    EXPECT_EQ(fp16[1], 0.0f);
    EXPECT_EQ(c.flushed, 2);
    EXPECT_EQ(c.flushed_share(), 1.0);
    const float S = 0x1p16f;
    const auto scaled = dlogits(Precision::fp16, 0x1p26f / S, &c);
    EXPECT_EQ(c.flushed, 0);
    EXPECT_EQ(scaled[1] / S, 0x1p-27f);
    EXPECT_EQ(dlogits(Precision::bf16, 0x1p26f, nullptr)[1], 0x1p-27f) << "bf16 has fp32's range";
}

TEST(RoundingBackend, Fp16OverflowsToInfAndCountsIt) {
    auto cpu = make_cpu_backend({1});
    RoundingBackend rb(*cpu, Precision::fp16);
    std::vector<float> a = {60000.0f, 1.0f}, b = {10000.0f, 2.0f}, out(2);
    rb.add(VecView(out.data(), 2), CVecView(a.data(), 2), CVecView(b.data(), 2));
    EXPECT_TRUE(std::isinf(out[0]));
    EXPECT_EQ(out[1], 3.0f);
    EXPECT_EQ(rb.stats().forward.overflowed, 1);
    rb.set_precision(Precision::bf16);
    rb.add(VecView(out.data(), 2), CVecView(a.data(), 2), CVecView(b.data(), 2));
    EXPECT_EQ(out[0], 70144.0f) << "bf16: in range, 8 significant bits";
}

TEST(RoundingBackend, PrecisionScopeNeedsARoundingBackend) {
    auto cpu = make_cpu_backend({1});
    EXPECT_THROW(PrecisionScope(*cpu, Precision::bf16), Error);
    EXPECT_NO_THROW(PrecisionScope(*cpu, Precision::fp32));
    RoundingBackend rb(*cpu);
    {
        const PrecisionScope scope(rb, Precision::fp16);
        EXPECT_EQ(rb.precision(), Precision::fp16);
    }
    EXPECT_EQ(rb.precision(), Precision::fp32);
    EXPECT_THROW(parse_precision("fp8"), Error);
}

}  // namespace
}  // namespace tl
