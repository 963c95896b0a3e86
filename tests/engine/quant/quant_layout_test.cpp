// The GPU layout (quant/quant_layout.hpp) read back with the kernels' own decode functions must give what the
// quantizer's reference dequantize() gives, element for element: the oracle is formats/quantizer.cpp, which
// decodes through the format table (formats/format_table.cpp), not through quant_decode.hpp.
#include "quant/quant_layout.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/codebook.hpp"
#include "formats/format_table.hpp"
#include "formats/quantizer.hpp"

namespace tl {
namespace {

std::vector<float> normal_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(std::size_t(rows * cols));
    for (auto& x : v) x = 0.05f * rng.normal();
    v[3] = 0.9f, v[7] = -1.3f;  // outliers, so some groups have a large scale
    return v;
}

QuantScheme scheme(Format f, Granularity g, std::int64_t group, DoubleQuant dq = DoubleQuant::none) {
    QuantScheme s;
    s.format = f, s.granularity = g, s.group_size = group, s.double_quant = dq;
    return s;
}

// Every code of every decodable format, against the format table (the quantizer's decoder).
TEST(QuantDecode, EveryCodeMatchesTheFormatTable) {
    for (std::uint32_t c = 0; c < 256; ++c) {
        const double int8 = format_decode(format_info(Format::int8), c);
        EXPECT_EQ(qdecode::int8_value(c), float(int8)) << c;
        const double fp8 = format_decode(format_info(Format::fp8_e4m3), c);
        if (std::isnan(fp8))
            EXPECT_TRUE(std::isnan(qdecode::fp8_e4m3_value(c))) << c;
        else
            EXPECT_EQ(qdecode::fp8_e4m3_value(c), float(fp8)) << c;
    }
    for (std::uint32_t n = 0; n < 16; ++n) {
        // int4 two's complement code c is stored as nibble c ^ 8 = value + 8.
        EXPECT_EQ(qdecode::int4_value(n ^ 8u), float(format_decode(format_info(Format::int4), n))) << n;
        EXPECT_EQ(qdecode::nf4_value(n), kNf4Codebook[n]) << n;
    }
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const double want = format_decode(format_info(Format::fp16), h);
        const float got = qdecode::fp16_value(std::uint16_t(h));
        if (std::isnan(want))
            EXPECT_TRUE(std::isnan(got)) << h;
        else
            ASSERT_EQ(got, float(want)) << h;
    }
}

void expect_layout_matches(const QuantScheme& s, std::int64_t rows, std::int64_t cols) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> w = normal_matrix(rows, cols, 7);
    const QuantizedTensor q = quantize(w, rows, cols, s);
    const QuantLayout layout = make_quant_layout(q);
    const std::vector<float> want = dequantize(q), got = dequantize_layout(layout);
    ASSERT_EQ(got.size(), want.size());
    const bool dq = s.double_quant != DoubleQuant::none;
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (!dq) {
            ASSERT_EQ(got[i], want[i]) << "element " << i;
        } else {
            // The quantizer rounds code x block scale + mean once from double, the kernels with one fma in
            // float: the scale may differ in its last bit, so the element by at most 2 ulp of itself.
            ASSERT_NEAR(got[i], want[i], 2.5e-7 * std::fabs(want[i])) << "element " << i;
        }
    }
    // The bytes the kernels read are the bytes the scheme charges (bits_per_weight's closed form).
    EXPECT_DOUBLE_EQ(double(layout.bytes()) * 8, bits_per_weight(s, rows, cols) * double(rows * cols));
}

TEST(QuantLayout, DequantizesLikeTheQuantizer) {
    using G = Granularity;
    expect_layout_matches(scheme(Format::int8, G::per_channel, 0), 13, 128);
    expect_layout_matches(scheme(Format::int8, G::per_group, 32), 5, 192);
    expect_layout_matches(scheme(Format::int4, G::per_group, 32), 9, 128);
    expect_layout_matches(scheme(Format::int4, G::per_group, 64), 7, 256);
    expect_layout_matches(scheme(Format::int4, G::per_group, 128), 3, 384);
    expect_layout_matches(scheme(Format::int4, G::per_channel, 0), 6, 64);
    expect_layout_matches(scheme(Format::nf4, G::per_group, 64), 11, 128);
    expect_layout_matches(scheme(Format::nf4, G::per_group, 64, DoubleQuant::fp8_e4m3), 40, 512);
    expect_layout_matches(scheme(Format::int4, G::per_group, 32, DoubleQuant::int8), 33, 256);
    expect_layout_matches(scheme(Format::fp8_e4m3, G::per_channel, 0), 10, 128);
    expect_layout_matches(scheme(Format::fp8_e4m3, G::per_group, 128), 4, 256);
}

TEST(QuantLayout, RefusesWhatTheKernelsCannotTake) {
    using G = Granularity;
    const std::vector<float> w = normal_matrix(4, 128, 3);
    auto refuses = [&](QuantScheme s, std::int64_t cols, const char* says) {
        const QuantizedTensor q = quantize(std::span(w).first(std::size_t(4 * cols)), 4, cols, s);
        try {
            make_quant_layout(q);
            ADD_FAILURE() << describe(s) << " was accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
        }
    };
    refuses(scheme(Format::fp8_e5m2, G::per_channel, 0), 128, "int8, int4, nf4 or fp8_e4m3");
    refuses(scheme(Format::int4, G::per_tensor, 0), 128, "per_tensor");
    refuses(scheme(Format::int4, G::per_group, 16), 128, "multiple of 32");
    refuses(scheme(Format::int4, G::per_group, 32), 96, "multiple of 64");
    QuantScheme asym = scheme(Format::int4, G::per_group, 32);
    asym.symmetry = Symmetry::asymmetric;
    refuses(asym, 128, "symmetric");
    QuantScheme bf16_scales = scheme(Format::int4, G::per_group, 32);
    bf16_scales.scale_format = Format::bf16;
    refuses(bf16_scales, 128, "fp16");
}

// A layout whose vectors do not match its shape is refused before a kernel could read past them.
TEST(QuantLayout, CheckRefusesSizesThatDoNotMatchTheShape) {
    for (const auto mode : {qdecode::ScaleMode::fp16, qdecode::ScaleMode::dq_fp8}) {
        const QuantLayout good = random_quant_layout(QuantKind::int4, mode, 5, 128, 32, 7);
        EXPECT_NO_THROW(check_quant_layout(good));
        auto refuses = [&](auto&& damage, const char* says) {
            QuantLayout w = good;
            damage(w);
            try {
                check_quant_layout(w);
                ADD_FAILURE() << "accepted a layout that should mention '" << says << "'";
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
            }
        };
        refuses([](QuantLayout& w) { w.codes.pop_back(); }, "codes holds 319 entries; the shape needs 320");
        refuses([](QuantLayout& w) { w.cols = 96; }, "multiple of 64");
        refuses([](QuantLayout& w) { w.group = 48; }, "multiple of 32");
        refuses([](QuantLayout& w) { w.rows = 6; }, "the shape needs");
        if (mode == qdecode::ScaleMode::fp16) {
            refuses([](QuantLayout& w) { w.scales.resize(3); }, "scales holds 3");
        } else {
            refuses([](QuantLayout& w) { w.scale_codes.push_back(0); }, "scale_codes holds 21");
            refuses([](QuantLayout& w) { w.scale_scales.clear(); }, "scale_scales holds 0");
            refuses([](QuantLayout& w) { w.dq_block = 0; }, "dq_block");
        }
    }
}

// Random layouts (the benchmarks' large shapes): finite everywhere, scales positive, the intended ranges.
TEST(QuantLayout, RandomLayoutsAreValid) {
    for (const auto kind : {QuantKind::int8, QuantKind::int4, QuantKind::nf4, QuantKind::fp8_e4m3})
        for (const auto mode : {qdecode::ScaleMode::fp16, qdecode::ScaleMode::dq_fp8}) {
            const QuantLayout w = random_quant_layout(kind, mode, 17, 256, 64, 5);
            const std::vector<float> v = dequantize_layout(w);
            double absmax = 0;
            for (const float x : v) {
                ASSERT_TRUE(std::isfinite(x)) << name_of(kind);
                absmax = std::max(absmax, double(std::fabs(x)));
            }
            EXPECT_GT(absmax, 0.01) << name_of(kind);
            EXPECT_LT(absmax, 0.2) << name_of(kind);
        }
}

}  // namespace
}  // namespace tl
