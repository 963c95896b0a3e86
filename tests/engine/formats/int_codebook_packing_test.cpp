// Integer codes, code books and bit packing against independent oracles: the NF4 table rebuilt from its
// construction in the QLoRA paper (normal quantiles), torch.round's half-to-even, hand-computed packed bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "formats/format_table.hpp"
#include "formats/packing.hpp"

namespace tl {
namespace {

// Standard normal quantile by bisection on Phi(x) = erfc(-x / sqrt 2) / 2.
double normal_ppf(double p) {
    double lo = -10, hi = 10;
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

TEST(Codebook, Nf4IsTheQloraNormalQuantileConstruction) {
    // QLoRA (Dettmers et al. 2023, bitsandbytes create_normal_map): offset 0.9677083; 8 positive quantiles from
    // linspace(offset, 0.5, 9)[:-1], 7 negative from linspace(offset, 0.5, 8)[:-1], a zero, normalized to max 1.
    const double offset = 0.9677083;
    std::vector<double> v;
    for (int i = 0; i < 8; ++i) v.push_back(normal_ppf(offset + (0.5 - offset) * i / 8.0));
    for (int i = 0; i < 7; ++i) v.push_back(-normal_ppf(offset + (0.5 - offset) * i / 7.0));
    v.push_back(0.0);
    std::sort(v.begin(), v.end());
    const double top = v.back();
    ASSERT_EQ(std::size(kNf4Codebook), 16u);
    for (std::size_t i = 0; i < 16; ++i) EXPECT_NEAR(kNf4Codebook[i], v[i] / top, 2e-6) << i;
    const FormatFacts facts = format_facts(format_info(Format::nf4));
    EXPECT_EQ(facts.max, 1.0);
    EXPECT_EQ(facts.lowest, -1.0);
}

TEST(Codebook, EncodeIsTheNearestEntryAndTiesGoTowardZero) {
    const FormatInfo& f = format_info(Format::nf4);
    Rng rng(3);
    for (int i = 0; i < 20000; ++i) {
        const double x = 2.4 * (rng.uniform() - 0.5);
        std::size_t best = 0;  // brute force
        for (std::size_t k = 1; k < 16; ++k)
            if (std::fabs(x - kNf4Codebook[k]) < std::fabs(x - kNf4Codebook[best])) best = k;
        ASSERT_EQ(format_encode(f, x), best) << x;
    }
    const double mid = (double(kNf4Codebook[7]) + double(kNf4Codebook[8])) / 2;  // between 0 and 0.0796
    EXPECT_EQ(format_encode(f, mid), 7u);
    EXPECT_EQ(format_encode(f, 5.0), 15u);  // beyond the table: the end entry
    EXPECT_THROW(format_encode(f, NAN), Error);
}

TEST(IntCodes, RoundHalfToEvenAndSaturate) {
    const FormatInfo &i8 = format_info(Format::int8), &i4 = format_info(Format::int4);
    const FormatInfo& t = format_info(Format::ternary);
    auto value = [](const FormatInfo& f, double x) { return format_decode(f, format_encode(f, x)); };
    // torch.round / numpy.round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2, -3.5 -> -4
    EXPECT_EQ(value(i8, 0.5), 0.0);
    EXPECT_EQ(value(i8, 1.5), 2.0);
    EXPECT_EQ(value(i8, 2.5), 2.0);
    EXPECT_EQ(value(i8, -2.5), -2.0);
    EXPECT_EQ(value(i8, -3.5), -4.0);
    EXPECT_EQ(value(i8, 2.5000001), 3.0);
    EXPECT_EQ(value(i8, 300.0), 127.0);
    EXPECT_EQ(value(i8, -300.0), -128.0);
    EXPECT_EQ(value(i4, 7.6), 7.0);
    EXPECT_EQ(value(i4, -9.0), -8.0);
    EXPECT_EQ(format_encode(i4, -1.0), 0xFu);  // two's complement in 4 bits
    EXPECT_EQ(format_encode(i8, -1.0), 0xFFu);
    EXPECT_EQ(value(t, 0.5), 0.0);
    EXPECT_EQ(value(t, -0.51), -1.0);
    EXPECT_EQ(value(t, 40.0), 1.0);
    EXPECT_EQ(format_encode(t, -1.0), 0x3u);
    EXPECT_THROW(format_encode(i8, NAN), Error);
}

TEST(Packing, HandComputedLayouts) {
    const std::vector<std::uint32_t> two{0x1, 0x2};
    EXPECT_EQ(pack_codes(two, 4), (std::vector<std::uint8_t>{0x21}));  // element 0 in the low nibble
    const std::vector<std::uint32_t> three{1, 2, 3};                   // 001, 010, 011 low bits first
    EXPECT_EQ(pack_codes(three, 3), (std::vector<std::uint8_t>{0xD1, 0x00}));
    const std::vector<std::uint32_t> four{3, 0, 1, 2};
    EXPECT_EQ(pack_codes(four, 2), (std::vector<std::uint8_t>{0x93}));  // 11 00 01 10 -> 0b10010011
    const std::vector<std::uint32_t> halves{0xABCD};
    EXPECT_EQ(pack_codes(halves, 16), (std::vector<std::uint8_t>{0xCD, 0xAB}));  // little-endian
    EXPECT_EQ(packed_bytes(33, 4), 17u);
    EXPECT_EQ(packed_bytes(8, 3), 3u);
}

TEST(Packing, RoundTripsEveryWidth) {
    Rng rng(11);
    for (int bits = 1; bits <= 32; ++bits) {
        for (const std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(64), std::size_t(1001)}) {
            std::vector<std::uint32_t> codes(n);
            for (auto& c : codes) c = bits == 32 ? rng.next_u32() : rng.next_u32() & ((1u << bits) - 1);
            const std::vector<std::uint8_t> packed = pack_codes(codes, bits);
            ASSERT_EQ(packed.size(), packed_bytes(n, bits));
            ASSERT_EQ(unpack_codes(packed, bits, n), codes) << bits << " bits, " << n << " codes";
        }
    }
    const std::vector<std::uint32_t> too_wide{16};
    EXPECT_THROW(pack_codes(too_wide, 4), InternalError);
}

TEST(FormatTable, NamesAreUniqueAndFindable) {
    for (const FormatInfo& f : all_formats()) {
        EXPECT_EQ(&find_format(f.name), &format_info(f.id));
        EXPECT_EQ(&format_info(f.id), &f);
    }
    try {
        find_format("fp7");
        FAIL() << "no error for an unknown format";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown format 'fp7'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("nf4"), std::string::npos) << e.what();
    }
    EXPECT_THROW(format_encode(format_info(Format::palette4), 0.5), Error);
}

}  // namespace
}  // namespace tl
