// Quantizers against closed forms: the bits-per-weight numbers of the literature (int4 g32 fp16 = 4.5, QLoRA's
// double quantization = 4.127), per-element error bounds of rounding to a scaled grid, BitNet b1.58's absmean
// formula, brute-force nearest NF4 entries, k-means on well separated clusters, and scheme validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/quantizer.hpp"

namespace tl {
namespace {

std::vector<float> normal_matrix(std::int64_t n, std::uint64_t seed, float sigma = 0.02f) {
    Rng rng(seed);
    std::vector<float> x(static_cast<std::size_t>(n));
    for (auto& v : x) v = sigma * rng.normal();
    return x;
}

double sse(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return s;
}

double nearest_nf4(double u) {  // brute force over the published table
    double best = kNf4Codebook[0];
    for (const float v : kNf4Codebook)
        if (std::fabs(u - v) < std::fabs(u - best)) best = v;
    return best;
}

QuantScheme group_scheme(Format f, std::int64_t g) {
    QuantScheme s;
    s.format = f, s.granularity = Granularity::per_group, s.group_size = g;
    return s;
}

TEST(BitsPerWeight, MatchesTheLiterature) {
    EXPECT_DOUBLE_EQ(bits_per_weight(group_scheme(Format::int4, 32), 4096, 4096), 4.5);  // 4 + 16/32
    QuantScheme nf4 = group_scheme(Format::nf4, 64);
    nf4.scale_format = Format::fp32;
    EXPECT_DOUBLE_EQ(bits_per_weight(nf4, 4096, 4096), 4.5);  // QLoRA: 32/64 = 0.5 bits of constants
    nf4.double_quant = DoubleQuant::fp8_e4m3;                  // QLoRA: 8/64 + 32/(64*256) = 0.127
    const double n = 4096.0 * 4096.0;
    EXPECT_DOUBLE_EQ(bits_per_weight(nf4, 4096, 4096), 4 + 8.0 / 64 + 32.0 / (64 * 256) + 32 / n);
    EXPECT_NEAR(bits_per_weight(nf4, 4096, 4096) - 4, 0.127, 5e-4);
    QuantScheme asym = group_scheme(Format::int4, 128);
    asym.symmetry = Symmetry::asymmetric;  // fp16 scale + a 4-bit zero point per group
    EXPECT_DOUBLE_EQ(bits_per_weight(asym, 64, 256), 4 + 16.0 / 128 + 4.0 / 128);
    QuantScheme chan;
    chan.format = Format::int8, chan.granularity = Granularity::per_channel, chan.scale_format = Format::fp32;
    EXPECT_DOUBLE_EQ(bits_per_weight(chan, 100, 4096), 8 + 32.0 / 4096);
    QuantScheme bf16;
    bf16.format = Format::bf16;
    EXPECT_DOUBLE_EQ(bits_per_weight(bf16, 10, 10), 16.0);  // not scaled: nothing charged
    QuantScheme pal;
    pal.format = Format::palette4;
    EXPECT_DOUBLE_EQ(bits_per_weight(pal, 64, 64), 4 + 16.0 * 16 / (64 * 64));
}

TEST(BitsPerWeight, StoredTensorsMatchTheAccounting) {
    const auto x = normal_matrix(48 * 200, 5);
    std::vector<QuantScheme> schemes{group_scheme(Format::int4, 32), group_scheme(Format::nf4, 64),
                                     group_scheme(Format::fp4_e2m1, 32), group_scheme(Format::palette3, 100)};
    schemes[1].double_quant = DoubleQuant::fp8_e4m3;
    schemes[1].double_quant_block = 16;
    schemes.push_back(group_scheme(Format::int8, 30));
    schemes.back().symmetry = Symmetry::asymmetric;
    for (const QuantScheme& s : schemes) {
        const QuantizedTensor q = quantize(x, 48, 200, s);
        EXPECT_DOUBLE_EQ(q.storage_bits() / double(q.numel()), bits_per_weight(s, 48, 200)) << describe(s);
        EXPECT_EQ(q.packed.size(), (x.size() * std::size_t(format_info(s.format).bits) + 7) / 8) << describe(s);
    }
}

TEST(Quantizer, Int8PerChannelIsRoundingToTheScaledGrid) {
    const std::int64_t rows = 16, cols = 96;
    const auto x = normal_matrix(rows * cols, 7);
    QuantScheme s;
    s.format = Format::int8, s.granularity = Granularity::per_channel, s.scale_format = Format::fp32;
    const QuantizedTensor q = quantize(x, rows, cols, s);
    const std::vector<float> y = dequantize(q);
    for (std::int64_t r = 0; r < rows; ++r) {
        float absmax = 0;
        for (std::int64_t c = 0; c < cols; ++c) absmax = std::max(absmax, std::fabs(x[std::size_t(r * cols + c)]));
        const float scale = absmax / 127.0f;
        EXPECT_FLOAT_EQ(q.scales[std::size_t(r)], scale);
        for (std::int64_t c = 0; c < cols; ++c) {
            const std::size_t i = std::size_t(r * cols + c);
            const double want = std::nearbyint(double(x[i]) / q.scales[std::size_t(r)]) * q.scales[std::size_t(r)];
            ASSERT_NEAR(y[i], want, 1e-7) << i;
            ASSERT_LE(std::fabs(y[i] - x[i]), 0.5 * scale * (1 + 1e-6)) << i;
        }
    }
}

TEST(Quantizer, Fp16ScalesNeverMoveAValueMoreThanHalfAStepPlusTheClip) {
    const auto x = normal_matrix(8 * 256, 8);
    const QuantizedTensor q = quantize(x, 8, 256, group_scheme(Format::int4, 32));
    const std::vector<float> y = dequantize(q);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double s = q.scales[i / 32];
        EXPECT_EQ(s, format_round(format_info(Format::fp16), s));  // stored as fp16
        const double clip = std::max(0.0, std::fabs(x[i]) - 7 * s);
        ASSERT_LE(std::fabs(double(y[i]) - x[i]), 0.5 * s + clip + 1e-9) << i;
    }
}

TEST(Quantizer, Fp8PerTensorErrorIsHalfAnUlp) {
    const auto x = normal_matrix(4096, 9, 3.0f);
    QuantScheme s;
    s.format = Format::fp8_e4m3, s.scale_format = Format::fp32;
    const QuantizedTensor q = quantize(x, 1, 4096, s);
    const std::vector<float> y = dequantize(q);
    const double scale = q.scales[0];
    for (std::size_t i = 0; i < x.size(); ++i)  // relative 2^-4 in normals, 2^-10 * scale among subnormals
        ASSERT_LE(std::fabs(double(y[i]) - x[i]), std::max(std::fabs(x[i]) * 0.0625, scale * std::ldexp(1, -10)) + 1e-12);
}

TEST(Quantizer, Nf4IsTheNearestScaledTableEntry) {
    const auto x = normal_matrix(4 * 128, 10);
    QuantScheme s = group_scheme(Format::nf4, 64);
    s.scale_format = Format::fp32;
    const QuantizedTensor q = quantize(x, 4, 128, s);
    const std::vector<float> y = dequantize(q);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double sc = q.scales[i / 64], best = nearest_nf4(x[i] / sc);
        ASSERT_NEAR(y[i], best * sc, std::fabs(best * sc) * 0x1p-23 + 1e-12) << i;  // y is a float
    }
}

TEST(Quantizer, TernaryAbsmeanIsBitNetB158) {
    const auto w = normal_matrix(32 * 64, 12);
    QuantScheme s;
    s.format = Format::ternary, s.clip = ClipMethod::absmean, s.scale_format = Format::fp32;
    const std::vector<float> y = dequantize(quantize(w, 32, 64, s));
    double gamma = 0;  // W~ = RoundClip(W / gamma, -1, 1) * gamma, gamma = mean |W|
    for (const float v : w) gamma += std::fabs(v);
    gamma = float(gamma / double(w.size()));
    for (std::size_t i = 0; i < w.size(); ++i) {
        const double t = std::clamp(std::nearbyint(w[i] / gamma), -1.0, 1.0);
        ASSERT_NEAR(y[i], t * gamma, 1e-9) << i;
    }
}

TEST(Quantizer, AsymmetricKeepsZeroExactAndUsesTheWholeRange) {
    std::vector<float> x(64);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = -1.0f + 4.0f * float(i) / 63.0f;  // [-1, 3]
    x[10] = 0.0f;
    QuantScheme s;
    s.format = Format::int4, s.symmetry = Symmetry::asymmetric, s.scale_format = Format::fp32;
    const QuantizedTensor q = quantize(x, 1, 64, s);
    EXPECT_FLOAT_EQ(q.scales[0], 4.0f / 15.0f);
    EXPECT_EQ(q.zero_points[0], 4);  // round(1 / (4/15)) = round(3.75)
    const std::vector<float> y = dequantize(q);
    EXPECT_EQ(y[10], 0.0f);
    for (std::size_t i = 0; i < x.size(); ++i)
        EXPECT_LE(std::fabs(y[i] - x[i]), 0.5 * q.scales[0] + std::max(0.0, double(x[i]) - (15 - 4) * q.scales[0]) + 1e-6);
}

TEST(Quantizer, MseClippingBeatsAbsmaxWithOutliers) {
    auto x = normal_matrix(64 * 128, 13);
    for (std::size_t i = 0; i < x.size(); i += 128) x[i] = 0.5f;  // one outlier per group of 128
    QuantScheme amax = group_scheme(Format::int4, 128), mse = amax;
    mse.clip = ClipMethod::mse;
    const auto ya = dequantize(quantize(x, 64, 128, amax)), ym = dequantize(quantize(x, 64, 128, mse));
    EXPECT_LT(sse(x, ym), sse(x, ya));
    for (std::int64_t r = 0; r < 64; ++r) {  // and never worse, block by block (ratio 1.0 is a candidate)
        const std::vector<float> xr(x.begin() + r * 128, x.begin() + (r + 1) * 128);
        const std::vector<float> ar(ya.begin() + r * 128, ya.begin() + (r + 1) * 128);
        const std::vector<float> mr(ym.begin() + r * 128, ym.begin() + (r + 1) * 128);
        EXPECT_LE(sse(xr, mr), sse(xr, ar) * (1 + 1e-12));
    }
}

TEST(Quantizer, DoubleQuantizedScalesStayCloseAndAreUsedConsistently) {
    const auto x = normal_matrix(64 * 256, 14);
    QuantScheme s = group_scheme(Format::nf4, 64);
    s.scale_format = Format::fp32;
    const QuantizedTensor plain = quantize(x, 64, 256, s);
    s.double_quant = DoubleQuant::fp8_e4m3;
    const QuantizedTensor dq = quantize(x, 64, 256, s);
    ASSERT_EQ(dq.scales.size(), plain.scales.size());
    ASSERT_EQ(dq.scale_scales.size(), 1u);  // 256 scales, one block of 256
    double absdev = 0;
    for (const float sc : plain.scales) absdev = std::max(absdev, std::fabs(sc - double(dq.scale_mean)));
    for (std::size_t b = 0; b < dq.scales.size(); ++b)  // e4m3 keeps 3 mantissa bits: half an ulp <= 2^-4 of max
        EXPECT_LE(std::fabs(dq.scales[b] - plain.scales[b]), absdev * 0.0625 + 1e-9) << b;
    // Elements were encoded with the double-quantized scales: the nearest entry for *those* scales.
    const auto y = dequantize(dq);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double sc = dq.scales[i / 64], best = nearest_nf4(x[i] / sc);
        ASSERT_NEAR(y[i], best * sc, std::fabs(best * sc) * 0x1p-23 + 1e-12) << i;  // y is a float
    }
}

TEST(Quantizer, PaletteFindsSeparatedClusters) {
    const float centres[4] = {-3.0f, -1.0f, 0.5f, 2.0f};
    Rng rng(15);
    std::vector<float> x(4000);
    double sums[4] = {0, 0, 0, 0};
    for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] = centres[i % 4] + 0.05f * rng.normal();
        sums[i % 4] += x[i];
    }
    QuantScheme s;
    s.format = Format::palette2;
    const QuantizedTensor q = quantize(x, 1, 4000, s);
    ASSERT_EQ(q.codebooks.size(), 4u);
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(q.codebooks[std::size_t(k)], sums[k] / 1000.0, 2e-3) << k;
    const auto y = dequantize(q);
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], q.codebooks[i % 4]) << i;
}

TEST(FakeQuantize, EqualsDequantizeOfQuantizeAndIsIdempotent) {
    auto x = normal_matrix(16 * 64, 16);
    QuantScheme s = group_scheme(Format::int4, 32);
    s.scale_format = Format::fp32;
    const auto want = dequantize(quantize(x, 16, 64, s));
    fake_quantize(x, 16, 64, s);
    EXPECT_EQ(x, want);
    fake_quantize(x, 16, 64, s);
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], want[i], 1e-7f * std::fabs(want[i])) << i;
    auto b = normal_matrix(1000, 17, 1.0f);
    const auto orig = b;
    QuantScheme bf;
    bf.format = Format::bf16;
    fake_quantize(b, 1, 1000, bf);  // bf16 by bit manipulation: round half to even on the top 16 bits
    for (std::size_t i = 0; i < b.size(); ++i) {
        const std::uint32_t u = std::bit_cast<std::uint32_t>(orig[i]);
        const std::uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
        ASSERT_EQ(b[i], std::bit_cast<float>(r)) << i;
    }
}

TEST(QuantScheme, RejectsNonsenseWithClearErrors) {
    const std::vector<float> x(64, 1.0f);
    auto expect_error = [&](QuantScheme s, const char* fragment) {
        try {
            quantize(x, 8, 8, s);
            ADD_FAILURE() << "no error for " << describe(s);
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    QuantScheme s = group_scheme(Format::nf4, 64);
    s.symmetry = Symmetry::asymmetric;
    expect_error(s, "asymmetric");
    expect_error(group_scheme(Format::int4, 0), "group_size");
    s = group_scheme(Format::int4, 8);
    s.symmetry = Symmetry::asymmetric, s.clip = ClipMethod::absmean;
    expect_error(s, "absmean");
    s = QuantScheme{};
    s.format = Format::bf16, s.clip = ClipMethod::mse;
    expect_error(s, "not scaled");
    s = QuantScheme{};
    s.scale_format = Format::int8;
    expect_error(s, "floating-point");
    EXPECT_THROW(quantize(x, 8, 9, QuantScheme{}), Error);
}

TEST(Quantizer, AllZeroBlocksStayZero) {
    std::vector<float> x(64, 0.0f);
    for (const Format f : {Format::int8, Format::int4, Format::nf4, Format::fp8_e4m3, Format::ternary}) {
        QuantScheme s = group_scheme(f, 16);
        if (f == Format::ternary) s.clip = ClipMethod::absmean;
        EXPECT_EQ(dequantize(quantize(x, 2, 32, s)), x) << describe(s);
    }
}

}  // namespace
}  // namespace tl

namespace tl {
namespace {

double sqnr_db(const std::vector<float>& x, const std::vector<float>& y) {
    double sig = 0;
    for (const float v : x) sig += double(v) * v;
    return 10 * std::log10(sig / sse(x, y));
}

// Max (1960), "Quantizing for minimum distortion": optimal N-level quantizers of a unit Gaussian have mean squared
// error 0.1175 (N=4), 0.03454 (N=8), 0.009497 (N=16). k-means on many Gaussian samples must find them.
TEST(Quantizer, PalettesReachTheLloydMaxDistortionOfAGaussian) {
    const auto x = normal_matrix(200000, 21, 1.0f);
    const std::pair<Format, double> cases[] = {
        {Format::palette2, 0.1175}, {Format::palette3, 0.03454}, {Format::palette4, 0.009497}};
    for (const auto& [f, mse] : cases) {
        QuantScheme s;
        s.format = f;
        const auto y = dequantize(quantize(x, 1, std::int64_t(x.size()), s));
        EXPECT_NEAR(sqnr_db(x, y), -10 * std::log10(mse), 0.05) << describe(s);
    }
}

// BitNet b1.58 on N(0,1): gamma = E|x| = sqrt(2/pi); x -> 0 below gamma/2, else sign(x) gamma. The distortion is
// an integral against the normal density, done here by the trapezoid rule.
TEST(Quantizer, TernaryAbsmeanDistortionOfAGaussianMatchesTheIntegral) {
    const double pi = std::acos(-1.0), gamma = std::sqrt(2 / pi);
    double mse = 0;
    const double h = 1e-4;
    for (double t = -12; t <= 12; t += h) {
        const double e = std::fabs(t) < gamma / 2 ? t : std::fabs(t) - gamma;
        mse += h * e * e * std::exp(-t * t / 2) / std::sqrt(2 * pi);
    }
    const auto x = normal_matrix(400000, 22, 1.0f);
    QuantScheme s;
    s.format = Format::ternary, s.clip = ClipMethod::absmean, s.scale_format = Format::fp32;
    const auto y = dequantize(quantize(x, 1, std::int64_t(x.size()), s));
    EXPECT_NEAR(sqnr_db(x, y), -10 * std::log10(mse), 0.03);
}

TEST(QuantScheme, NamesRoundTrip) {
    for (const Granularity g : {Granularity::per_tensor, Granularity::per_channel, Granularity::per_group})
        EXPECT_EQ(parse_granularity(name_of(g)), g);
    for (const ClipMethod c : {ClipMethod::absmax, ClipMethod::absmean, ClipMethod::mse}) EXPECT_EQ(parse_clip(name_of(c)), c);
    for (const Symmetry m : {Symmetry::symmetric, Symmetry::asymmetric}) EXPECT_EQ(parse_symmetry(name_of(m)), m);
    for (const DoubleQuant d : {DoubleQuant::none, DoubleQuant::int8, DoubleQuant::fp8_e4m3})
        EXPECT_EQ(parse_double_quant(name_of(d)), d);
    EXPECT_THROW(parse_clip("percentile"), Error);
}

}  // namespace
}  // namespace tl
