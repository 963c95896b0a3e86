// The fused quantized GEMV/GEMM against the quantizer's own dequantize() followed by a double-precision
// product: the kernels share no code with that path except the format's decode table. Formats int8, int4, nf4
// and fp8, per channel and per group, odd row counts, 1 and 2 threads.
#include "quant/qgemv.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/format_table.hpp"

namespace tl {
namespace {

std::vector<float> randn(Rng& rng, std::int64_t n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = rng.normal();
    return v;
}

// y = dequantize(W) x in double.
std::vector<double> oracle(const QuantizedTensor& q, const std::vector<float>& x, std::int64_t batch) {
    const std::vector<float> w = dequantize(q);
    std::vector<double> y(std::size_t(batch * q.rows), 0.0);
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t r = 0; r < q.rows; ++r) {
            double s = 0;
            for (std::int64_t i = 0; i < q.cols; ++i)
                s += double(w[std::size_t(r * q.cols + i)]) * x[std::size_t(b * q.cols + i)];
            y[std::size_t(b * q.rows + r)] = s;
        }
    return y;
}

// fp32 sums of 192 products of ~unit values: errors of a few 1e-6 relative to the row's magnitude.
void expect_close(const std::vector<float>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i)
        EXPECT_NEAR(got[i], want[i], 1e-4 * (1.0 + std::fabs(want[i]))) << i;
}

struct Case {
    Format format;
    Granularity granularity;
    std::int64_t group;
};

class Qgemv : public ::testing::TestWithParam<Case> {};

TEST_P(Qgemv, MatchesDequantizeThenProduct) {
    const Case c = GetParam();
    const std::int64_t rows = 37, cols = 192;  // odd rows; 192 = 6 groups of 32, 3 of 64
    Rng rng(41);
    const std::vector<float> w = randn(rng, rows * cols);
    QuantScheme s;
    s.format = c.format;
    s.granularity = c.granularity;
    s.group_size = c.group;
    const QuantizedTensor q = quantize(w, rows, cols, s);
    ASSERT_TRUE(qgemv_supports(q));
    for (const int threads : {1, 2}) {
        SCOPED_TRACE(::testing::Message() << "threads " << threads);
        const std::vector<float> x = randn(rng, cols);
        std::vector<float> y(std::size_t(rows), NAN);
        qgemv(q, x, y, threads);
        expect_close(y, oracle(q, x, 1));

        const std::int64_t batch = 5;
        const std::vector<float> xs = randn(rng, batch * cols);
        std::vector<float> ys(std::size_t(batch * rows), NAN);
        qgemm(q, xs, batch, ys, threads);
        expect_close(ys, oracle(q, xs, batch));
    }
}

INSTANTIATE_TEST_SUITE_P(Formats, Qgemv,
                         ::testing::Values(Case{Format::int8, Granularity::per_channel, 0},
                                           Case{Format::int8, Granularity::per_group, 64},
                                           Case{Format::int4, Granularity::per_group, 32},
                                           Case{Format::int4, Granularity::per_channel, 0},
                                           Case{Format::nf4, Granularity::per_group, 64},
                                           Case{Format::fp8_e4m3, Granularity::per_channel, 0},
                                           Case{Format::fp8_e5m2, Granularity::per_group, 32}));

// The int8-activation kernels against dequantize(W) times x rounded the same way (round_activations_q8), in
// double: the integer dot products are exact, so only the scales' float products differ. Every kernel this
// CPU has; 192 columns (6 blocks: pairs only) and 480 (15: a unit of 8 blocks, 3 pairs and a last single
// block).
TEST(QgemvQ8, MatchesDequantizedWeightsTimesRoundedActivations) {
    struct Q8Case {
        Case c;
        std::int64_t cols;
    };
    for (const Q8Case qc : {Q8Case{{Format::int8, Granularity::per_channel, 0}, 192},
                            Q8Case{{Format::int8, Granularity::per_group, 64}, 192},
                            Q8Case{{Format::int4, Granularity::per_group, 32}, 192},
                            Q8Case{{Format::int4, Granularity::per_channel, 0}, 192},
                            Q8Case{{Format::int4, Granularity::per_group, 32}, 480},
                            Q8Case{{Format::int4, Granularity::per_group, 96}, 480}}) {
        const Case c = qc.c;
        SCOPED_TRACE(::testing::Message()
                     << format_info(c.format).name << " group " << c.group << " cols " << qc.cols);
        const std::int64_t rows = 37, cols = qc.cols;
        Rng rng(44);
        const std::vector<float> w = randn(rng, rows * cols), x = randn(rng, cols);
        QuantScheme s;
        s.format = c.format;
        s.granularity = c.granularity;
        s.group_size = c.group;
        const QuantizedTensor q = quantize(w, rows, cols, s);
        ASSERT_TRUE(qgemv_q8_supports(q));
        const std::vector<float> xr = round_activations_q8(x);
        double worst = 0;
        for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, double(std::fabs(xr[i] - x[i])));
        EXPECT_GT(worst, 0.0);  // x really was rounded...
        EXPECT_LT(worst,
                  0.5 * 4.5 / 127);  // ...to within half a step of the largest block's scale (|x| < 4.5)
        const std::vector<double> want = oracle(q, xr, 1);
        for (const Q8Kernel kernel :
             {Q8Kernel::automatic, Q8Kernel::avx512_vnni, Q8Kernel::avx2, Q8Kernel::portable}) {
            if (!qgemv_q8_has_kernel(kernel)) continue;
            for (const int threads : {1, 2}) {
                SCOPED_TRACE(::testing::Message() << "kernel " << int(kernel) << " threads " << threads);
                std::vector<float> y(std::size_t(rows), NAN);
                qgemv_q8(q, x, y, threads, kernel);
                expect_close(y, want);
            }
        }
    }
}

TEST(QgemvFp32, MatchesDoubleProduct) {
    Rng rng(42);
    const std::int64_t rows = 29, cols = 101;  // a ragged tail after the 32-wide body
    const std::vector<float> w = randn(rng, rows * cols), x = randn(rng, cols);
    std::vector<float> y(std::size_t(rows), NAN);
    gemv_fp32(w, rows, cols, x, y, 2);
    for (std::int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (std::int64_t i = 0; i < cols; ++i) s += double(w[std::size_t(r * cols + i)]) * x[std::size_t(i)];
        EXPECT_NEAR(y[std::size_t(r)], s, 1e-4 * (1.0 + std::fabs(s)));
    }
}

TEST(QgemvErrors, UnsupportedSchemeAndShapesSaySo) {
    Rng rng(43);
    const std::vector<float> w = randn(rng, 8 * 48);
    QuantScheme asym;
    asym.format = Format::int4;
    asym.granularity = Granularity::per_group;
    asym.group_size = 16;
    asym.symmetry = Symmetry::asymmetric;
    const QuantizedTensor a = quantize(w, 8, 48, asym);
    EXPECT_FALSE(qgemv_supports(a));
    std::vector<float> x(48), y(8);
    EXPECT_THROW(qgemv(a, x, y), Error);

    QuantScheme sym = asym;
    sym.symmetry = Symmetry::symmetric;
    const QuantizedTensor q = quantize(w, 8, 48, sym);
    std::vector<float> short_x(47);
    EXPECT_THROW(qgemv(q, short_x, y), Error);
    EXPECT_THROW(qgemm(q, x, 2, y), Error);  // Y too small for a batch of 2
}

}  // namespace
}  // namespace tl
