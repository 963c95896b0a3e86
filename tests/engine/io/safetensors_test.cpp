// Tests for io/safetensors and io/atomic_file: round trips, a file built byte by byte from the spec, f16/bf16
// decoding against IEEE bit patterns, one test per malformed input (each checks the message names the
// problem), and atomic writes that fail without touching the previous file.
#include "io/safetensors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/atomic_file.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using tl::DType;
using tl::SafeTensor;
using tl::SafeTensorsFile;
using Bytes = std::vector<std::uint8_t>;

void append_u64_le(Bytes& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// A file whose length prefix says `header_len`, followed by `rest` (header text then data), written by hand.
Bytes with_len(std::uint64_t header_len, const std::string& rest, const Bytes& data = {}) {
    Bytes out;
    append_u64_le(out, header_len);
    out.insert(out.end(), rest.begin(), rest.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// A well-framed file: correct length prefix, the given header text and data buffer.
Bytes make_file(const std::string& header, const Bytes& data = {}) {
    return with_len(header.size(), header, data);
}

// The message of the tl::Error that parsing throws, or a marker no expected substring matches.
std::string parse_error(const Bytes& bytes) {
    try {
        tl::parse_safetensors(bytes, "bad.safetensors");
    } catch (const tl::Error& e) {
        return e.what();
    }
    return "<no tl::Error thrown>";
}

Bytes u16_bytes(std::initializer_list<std::uint16_t> values) {
    Bytes out;
    for (auto v : values) {
        out.push_back(static_cast<std::uint8_t>(v & 0xFF));
        out.push_back(static_cast<std::uint8_t>(v >> 8));
    }
    return out;
}

SafeTensor raw_tensor(std::string name, DType dtype, tl::Shape shape, Bytes bytes) {
    return SafeTensor{std::move(name), dtype, std::move(shape), std::move(bytes)};
}

// A fresh directory per test, removed afterwards.
class IoDirTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("tl_io_test_" + std::to_string(::getpid()) + "_" +
                                            info->test_suite_name() + "_" + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::vector<std::string> names_in(const fs::path& d) const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(d)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
    fs::path dir_;
};

// -----------------------------------------------------------------------------------------------------------
// Round trips and a hand-built file
// -----------------------------------------------------------------------------------------------------------

SafeTensorsFile sample_file() {
    SafeTensorsFile f;
    const float scalar = 3.5f;
    const float vec[5] = {1, -2, 0.25f, 1e-30f, -7e20f};
    float mat[6], cube[6];
    for (int i = 0; i < 6; ++i) {
        mat[i] = 0.5f * static_cast<float>(i) - 1.0f;
        cube[i] = static_cast<float>(i * i);
    }
    f.tensors.push_back(SafeTensor::from_f32("scalar", {}, &scalar));
    f.tensors.push_back(SafeTensor::from_f32("h.0.vec", {5}, vec));
    f.tensors.push_back(SafeTensor::from_f32("empty", {0, 4}, nullptr));
    f.tensors.push_back(SafeTensor::from_f32("h.0.mat", {2, 3}, mat));
    f.tensors.push_back(SafeTensor::from_f32("cube", {2, 1, 3}, cube));
    f.tensors.push_back(raw_tensor("half", DType::f16, {2}, u16_bytes({0x3C00, 0xC000})));
    f.tensors.push_back(raw_tensor("ids", DType::i64, {1}, {7, 0, 0, 0, 0, 0, 0, 0}));
    f.metadata = {{"format", "pt"}, {"step", "12"}, {"note", "unicode ok: é ✓"}};
    return f;
}

void expect_same(const SafeTensorsFile& a, const SafeTensorsFile& b) {
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
        SCOPED_TRACE(a.tensors[i].name);
        EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
        EXPECT_EQ(a.tensors[i].dtype, b.tensors[i].dtype);
        EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
        EXPECT_EQ(a.tensors[i].bytes, b.tensors[i].bytes);
    }
    EXPECT_EQ(a.metadata, b.metadata);
}

TEST(Safetensors, SerializeParseRoundTrip) {
    const SafeTensorsFile f = sample_file();
    const Bytes bytes = tl::serialize_safetensors(f);
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[static_cast<std::size_t>(i)];
    EXPECT_EQ(header_len % 8, 0u) << "header must be padded so the data buffer is 8-byte aligned";
    const SafeTensorsFile g = tl::parse_safetensors(bytes, "mem");
    expect_same(f, g);  // written in the given order, read back in offset order: the same order
    EXPECT_EQ(g.at("scalar").to_f32(), std::vector<float>{3.5f});
    EXPECT_EQ(g.at("h.0.vec").to_f32(), (std::vector<float>{1, -2, 0.25f, 1e-30f, -7e20f}));
    EXPECT_TRUE(g.at("empty").to_f32().empty());
    EXPECT_EQ(g.at("empty").shape, (tl::Shape{0, 4}));
    EXPECT_EQ(g.at("half").to_f32(), (std::vector<float>{1.0f, -2.0f}));
    EXPECT_EQ(tl::serialize_safetensors(g), bytes) << "serializing is deterministic";
}

TEST_F(IoDirTest, WriteReadRoundTripAndOverwrite) {
    const fs::path p = dir_ / "model.safetensors";
    tl::write_safetensors(p, sample_file());
    expect_same(tl::read_safetensors(p), sample_file());
    SafeTensorsFile small;
    const float one = 1.0f;
    small.tensors.push_back(SafeTensor::from_f32("only", {1}, &one));
    tl::write_safetensors(p, small);  // replaces the bigger file entirely
    expect_same(tl::read_safetensors(p), small);
    EXPECT_EQ(names_in(dir_), std::vector<std::string>{"model.safetensors"}) << "no temp file left behind";
}

TEST(Safetensors, ParsesHandBuiltFile) {
    // Entries deliberately out of offset order and not alphabetical; parse must return them by offset.
    const std::string header =
        R"({"z_first":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("c_scalar":{"dtype":"I32","shape":[],"data_offsets":[12,16]},)"
        R"("__metadata__":{"format":"pt","author":"hand"},)"
        R"("a_half":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]},)"
        R"("b_none":{"dtype":"BF16","shape":[0],"data_offsets":[16,16]}}    )";  // trailing pad is legal JSON
    const Bytes data = {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,          // F32 1.0, -2.0
                        0x00, 0x3C, 0x00, 0xB8,                                  // F16 1.0, -0.5
                        0x07, 0x00, 0x00, 0x00};                                 // I32 7
    const SafeTensorsFile f = tl::parse_safetensors(make_file(header, data), "hand");
    ASSERT_EQ(f.tensors.size(), 4u);
    EXPECT_EQ(f.tensors[0].name, "z_first");
    EXPECT_EQ(f.tensors[1].name, "a_half");
    EXPECT_EQ(f.tensors[2].name, "c_scalar");
    EXPECT_EQ(f.tensors[3].name, "b_none");
    EXPECT_EQ(f.at("z_first").to_f32(), (std::vector<float>{1.0f, -2.0f}));
    EXPECT_EQ(f.at("a_half").dtype, DType::f16);
    EXPECT_EQ(f.at("a_half").shape, (tl::Shape{1, 2}));
    EXPECT_EQ(f.at("a_half").to_f32(), (std::vector<float>{1.0f, -0.5f}));
    EXPECT_EQ(f.at("c_scalar").dtype, DType::i32);
    EXPECT_TRUE(f.at("c_scalar").shape.empty());
    EXPECT_EQ(f.at("c_scalar").bytes, (Bytes{7, 0, 0, 0}));
    EXPECT_TRUE(f.at("b_none").bytes.empty());
    EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"author", "hand"}}));
    EXPECT_EQ(f.find("nope"), nullptr);
    EXPECT_EQ(f.find("a_half"), &f.tensors[1]);
}

TEST(Safetensors, EmptyFileWithOnlyBraces) {
    const SafeTensorsFile f = tl::parse_safetensors(make_file("{}"), "x");
    EXPECT_TRUE(f.tensors.empty());
    EXPECT_TRUE(f.metadata.empty());
}

TEST(Safetensors, AtNamesTheMissingTensor) {
    const SafeTensorsFile f = sample_file();
    try {
        (void)f.at("wte.weight");
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("tensor 'wte.weight' missing"));
        EXPECT_THAT(e.what(), HasSubstr("scalar"));  // lists some names that are there
    }
}

// -----------------------------------------------------------------------------------------------------------
// Conversion to f32, checked against bit patterns from IEEE 754 (binary16) and the bfloat16 definition
// -----------------------------------------------------------------------------------------------------------

TEST(Safetensors, F16ToF32MatchesIeeeBitPatterns) {
    const SafeTensor t = raw_tensor(
        "h", DType::f16, {11},
        u16_bytes({0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x3555, 0x8000, 0x7C00, 0xFC00, 0x7E00}));
    const std::vector<float> v = t.to_f32();
    ASSERT_EQ(v.size(), 11u);
    EXPECT_EQ(v[0], 1.0f);                                  // 0 01111 0000000000
    EXPECT_EQ(v[1], -2.0f);                                 // 1 10000 0000000000
    EXPECT_EQ(v[2], std::ldexp(1.0f, -24));                 // smallest subnormal
    EXPECT_EQ(v[3], std::ldexp(1023.0f, -24));              // largest subnormal
    EXPECT_EQ(v[4], std::ldexp(1.0f, -14));                 // smallest normal
    EXPECT_EQ(v[5], 65504.0f);                              // largest finite
    EXPECT_EQ(v[6], std::ldexp(1.0f + 341.0f / 1024, -2));  // 0x3555 = 0.333251953125
    EXPECT_EQ(v[7], 0.0f);
    EXPECT_TRUE(std::signbit(v[7])) << "0x8000 is -0";
    EXPECT_EQ(v[8], std::numeric_limits<float>::infinity());
    EXPECT_EQ(v[9], -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(v[10]));
}

TEST(Safetensors, Bf16ToF32MatchesBitPatterns) {
    const SafeTensor t =
        raw_tensor("b", DType::bf16, {2, 4},
                   u16_bytes({0x3F80, 0xC000, 0x4049, 0x0001, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0}));
    const std::vector<float> v = t.to_f32();
    ASSERT_EQ(v.size(), 8u);
    EXPECT_EQ(v[0], 1.0f);
    EXPECT_EQ(v[1], -2.0f);
    EXPECT_EQ(v[2], 3.140625f);                      // 1.1001001b * 2
    EXPECT_EQ(v[3], std::ldexp(1.0f, -133));         // smallest bf16 subnormal
    EXPECT_EQ(v[4], std::ldexp(255.0f / 128, 127));  // largest finite bf16
    EXPECT_EQ(v[5], std::numeric_limits<float>::infinity());
    EXPECT_EQ(v[6], -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(v[7]));
}

TEST(Safetensors, F64AndF32ToF32AreLittleEndian) {
    Bytes f64;
    for (std::uint64_t bits : {0x3FF8000000000000ull, 0xBFD0000000000000ull})  // 1.5, -0.25
        append_u64_le(f64, bits);
    EXPECT_EQ(raw_tensor("d", DType::f64, {2}, f64).to_f32(), (std::vector<float>{1.5f, -0.25f}));
    EXPECT_EQ(raw_tensor("f", DType::f32, {}, {0x00, 0x00, 0x80, 0x3F}).to_f32(), std::vector<float>{1.0f});
}

TEST(Safetensors, ToF32RejectsIntegersAndWrongByteCounts) {
    try {
        (void)raw_tensor("ids", DType::i64, {1}, Bytes(8, 0)).to_f32();
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("'ids' is I64"));
    }
    try {
        (void)raw_tensor("w", DType::f32, {3}, Bytes(8, 0)).to_f32();
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("needs 12 bytes but it holds 8"));
    }
}

// -----------------------------------------------------------------------------------------------------------
// Malformed inputs: each must throw tl::Error whose message names the source and the specific problem
// -----------------------------------------------------------------------------------------------------------

struct BadCase {
    const char* name;
    Bytes bytes;
    std::vector<std::string> expected;  // substrings the message must contain
};

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets +
           "}";
}

// A header holding just that one entry.
std::string header_of(const std::string& name, const std::string& dtype, const std::string& shape,
                      const std::string& offsets) {
    return "{" + entry(name, dtype, shape, offsets) + "}";
}

// The length prefix and the JSON text itself.
std::vector<BadCase> framing_cases() {
    const std::string good = header_of("w", "\"F32\"", "[2]", "[0,8]");
    const Bytes d8(8, 0);
    Bytes truncated = make_file(good, d8);
    truncated.resize(8 + 10);
    return {
        {"EmptyFile", {}, {"0 bytes", "shorter than the 8-byte header length"}},
        {"SevenBytes", Bytes(7, 0), {"7 bytes", "shorter than the 8-byte header length"}},
        {"TruncatedHeader",
         truncated,
         {"header length " + std::to_string(good.size()), "only 10 bytes follow"}},
        {"HeaderLength2Pow63",
         with_len(std::uint64_t{1} << 63, "{}"),
         {"header length 9223372036854775808", "only 2 bytes follow"}},
        {"HeaderLengthMaxU64", with_len(~std::uint64_t{0}, "{}"), {"header length 18446744073709551615"}},
        {"HeaderLengthLargerThanFile",
         with_len(100, "{}", d8),
         {"header length 100 but only 10 bytes follow"}},
        {"HeaderNotJson", make_file("{not json}"), {"header is not valid JSON"}},
        {"HeaderInvalidUtf8", make_file("{\"\xff\xfe\":1}"), {"header is not valid JSON"}},
        {"HeaderZeroLength", make_file(""), {"header is not valid JSON"}},
        {"HeaderJsonArray", make_file("[1,2]"), {"header JSON is array", "expected an object"}},
        {"HeaderTooDeep", make_file("{\"w\":[[[[[[[[[[1]]]]]]]]]]}"), {"nests deeper than 8 levels"}},
    };
}

// One entry's fields, each checked on its own.
std::vector<BadCase> entry_cases() {
    const Bytes d4(4, 0), d8(8, 0);
    return {
        {"UnknownDtype",
         make_file(header_of("w", "\"F8\"", "[2]", "[0,2]"), Bytes(2, 0)),
         {"tensor 'w'", "unknown dtype (got string \"F8\")", "BF16"}},
        {"DtypeNotString",
         make_file(header_of("w", "4", "[1]", "[0,4]"), d4),
         {"tensor 'w'", "unknown dtype (got an integer 4)"}},
        {"ShapeNegative",
         make_file(header_of("w", "\"F32\"", "[2,-1]", "[0,8]"), d8),
         {"tensor 'w'", "shape[1] is an integer -1, negative"}},
        {"ShapeFloat",
         make_file(header_of("w", "\"F32\"", "[1.5]", "[0,4]"), d4),
         {"tensor 'w'", "shape[0] is a non-integer number 1.5, expected a non-negative integer"}},
        {"ShapeString",
         make_file(header_of("w", "\"F32\"", "[\"2\"]", "[0,8]"), d8),
         {"tensor 'w'", "shape[0] is string \"2\", expected a non-negative integer"}},
        {"ShapeNotArray",
         make_file(header_of("w", "\"F32\"", "2", "[0,8]"), d8),
         {"tensor 'w'", "shape is an integer 2, expected an array"}},
        {"ShapeDimAboveInt64",
         make_file(header_of("w", "\"U8\"", "[9223372036854775808]", "[0,1]"), Bytes(1)),
         {"tensor 'w'", "shape[0] is 9223372036854775808, too large"}},
        {"OffsetsOneElement",
         make_file(header_of("w", "\"F32\"", "[1]", "[0]"), d4),
         {"tensor 'w'", "data_offsets is array [0]; it must be [begin, end]"}},
        {"OffsetsThreeElements",
         make_file(header_of("w", "\"F32\"", "[1]", "[0,4,4]"), d4),
         {"tensor 'w'", "data_offsets is array [0,4,4]; it must be [begin, end]"}},
        {"OffsetsNegative",
         make_file(header_of("w", "\"F32\"", "[1]", "[-4,0]"), d4),
         {"tensor 'w'", "data_offsets [-4,0] must hold two non-negative integers"}},
        {"BeginAfterEnd",
         make_file(header_of("w", "\"F32\"", "[1]", "[8,4]"), d8),
         {"tensor 'w'", "data_offsets begin 8 > end 4"}},
    };
}

// Offsets against the buffer and each other, names, metadata.
std::vector<BadCase> layout_cases() {
    const Bytes d4(4, 0), d8(8, 0), d12(12, 0);
    return {
        {"OffsetsOutOfRange",
         make_file(header_of("w", "\"F32\"", "[4]", "[0,16]"), d8),
         {"tensor 'w'", "data_offsets [0, 16] go past the end of the data buffer (8 bytes)"}},
        {"OverlappingRanges",
         make_file(
             "{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," + entry("b", "\"F32\"", "[2]", "[4,12]") + "}",
             d12),
         {"tensors 'a' [0, 8) and 'b' [4, 12) overlap"}},
        {"HoleBetweenTensors",
         make_file(
             "{" + entry("a", "\"F32\"", "[1]", "[0,4]") + "," + entry("b", "\"F32\"", "[1]", "[8,12]") + "}",
             d12),
         {"gap: bytes [4, 8) before tensor 'b'"}},
        {"HoleBeforeFirstTensor",
         make_file(header_of("a", "\"F32\"", "[1]", "[4,8]"), d8),
         {"gap: bytes [0, 4) before tensor 'a'"}},
        {"TrailingBytes",
         make_file(header_of("a", "\"F32\"", "[1]", "[0,4]"), d8),
         {"data buffer is 8 bytes but the tensors cover only 4", "4 trailing bytes"}},
        {"TrailingBytesNoTensors", make_file("{}", d4), {"cover only 0", "4 trailing bytes"}},
        {"DtypeShapeBytesMismatch",
         make_file(header_of("w", "\"F32\"", "[3]", "[0,8]"), d8),
         {"tensor 'w'", "shape (3) of F32 (4 bytes) needs 12 bytes but data_offsets [0, 8] span 8"}},
        {"ShapeProductOverflow",
         make_file(header_of("w", "\"F32\"", "[1099511627776,1099511627776]", "[0,4]"), d4),
         {"tensor 'w'", "shape (1099511627776, 1099511627776)", "overflows a 64-bit byte count"}},
        {"DuplicateTensorNames",
         make_file(
             "{" + entry("w", "\"F32\"", "[1]", "[0,4]") + "," + entry("w", "\"F32\"", "[1]", "[4,8]") + "}",
             d8),
         {"tensor name 'w' appears twice"}},
        {"DuplicateFieldInEntry",
         make_file(R"({"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", d4),
         {"key 'dtype' appears twice in one header object"}},
        {"MetadataValueNotString",
         make_file(R"({"__metadata__":{"step":5}})"),
         {"__metadata__ value for key 'step' is an integer 5, expected a string"}},
        {"MetadataNotObject", make_file(R"({"__metadata__":["a"]})"), {"__metadata__ is array [\"a\"]"}},
        {"EmptyName", make_file(header_of("", "\"F32\"", "[1]", "[0,4]"), d4), {"empty tensor name"}},
        {"EntryNotObject",
         make_file(R"({"w":[1,2]})"),
         {"tensor 'w': entry is array [1,2], expected an object"}},
        {"EntryMissingField",
         make_file(R"({"w":{"dtype":"F32","shape":[1]}})", d4),
         {"tensor 'w': missing field 'data_offsets'"}},
        {"EntryUnknownField",
         make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"strides":[1]}})", d4),
         {"tensor 'w': unknown field 'strides'"}},
    };
}

std::vector<BadCase> bad_cases() {
    std::vector<BadCase> all = framing_cases();
    for (auto more : {entry_cases(), layout_cases()}) all.insert(all.end(), more.begin(), more.end());
    return all;
}

class SafetensorsMalformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsMalformed, ThrowsNamingTheProblem) {
    const std::string msg = parse_error(GetParam().bytes);
    EXPECT_THAT(msg, HasSubstr("[io] bad.safetensors: "));
    for (const std::string& s : GetParam().expected) EXPECT_THAT(msg, HasSubstr(s));
}

INSTANTIATE_TEST_SUITE_P(Cases, SafetensorsMalformed, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// -----------------------------------------------------------------------------------------------------------
// Serialize-side validation
// -----------------------------------------------------------------------------------------------------------

std::string serialize_error(const SafeTensorsFile& f) {
    try {
        tl::serialize_safetensors(f);
    } catch (const tl::Error& e) {
        return e.what();
    }
    return "<no tl::Error thrown>";
}

TEST(Safetensors, SerializeRejectsBadTensors) {
    const float x[2] = {1, 2};
    SafeTensorsFile dup;
    dup.tensors = {SafeTensor::from_f32("w", {2}, x), SafeTensor::from_f32("w", {1}, x)};
    EXPECT_THAT(serialize_error(dup), HasSubstr("tensor name 'w' appears twice"));

    SafeTensorsFile mismatch;
    mismatch.tensors = {raw_tensor("w", DType::f32, {3}, Bytes(8, 0))};
    EXPECT_THAT(serialize_error(mismatch),
                HasSubstr("tensor 'w': shape (3) of F32 (4 bytes) needs 12 bytes but it holds 8"));

    SafeTensorsFile unnamed;
    unnamed.tensors = {SafeTensor::from_f32("", {2}, x)};
    EXPECT_THAT(serialize_error(unnamed), HasSubstr("empty name"));

    SafeTensorsFile reserved;
    reserved.tensors = {SafeTensor::from_f32("__metadata__", {2}, x)};
    EXPECT_THAT(serialize_error(reserved), HasSubstr("'__metadata__' is reserved"));

    SafeTensorsFile negative;
    negative.tensors = {raw_tensor("w", DType::f32, {-1}, {})};
    EXPECT_THAT(serialize_error(negative), HasSubstr("negative dimension"));

    SafeTensorsFile bad_utf8;
    bad_utf8.tensors = {SafeTensor::from_f32("w\xff", {2}, x)};
    EXPECT_THAT(serialize_error(bad_utf8), HasSubstr("not valid UTF-8"));

    EXPECT_THROW(SafeTensor::from_f32("w", {2, -3}, x), tl::Error);
    EXPECT_THROW(SafeTensor::from_f32("w", {2}, nullptr), tl::Error);
}

// -----------------------------------------------------------------------------------------------------------
// Files: missing inputs, atomic writes that fail
// -----------------------------------------------------------------------------------------------------------

TEST_F(IoDirTest, ReadSafetensorsMissingFileIsClear) {
    const fs::path p = dir_ / "nope.safetensors";
    try {
        tl::read_safetensors(p);
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("[io] " + p.string() + ": file does not exist"));
    }
}

TEST_F(IoDirTest, ReadFileBytesChecksKindAndSize) {
    tl::write_file_atomic(dir_ / "t.txt", std::string_view("hello"));
    EXPECT_EQ(tl::read_file_text(dir_ / "t.txt", 5), "hello");
    EXPECT_EQ(tl::read_file_bytes(dir_ / "t.txt", 100), (Bytes{'h', 'e', 'l', 'l', 'o'}));
    try {
        tl::read_file_bytes(dir_ / "t.txt", 4);
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("file is 5 bytes, more than the 4-byte limit"));
    }
    try {
        tl::read_file_text(dir_, 100);
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("cannot read: it is a directory"));
    }
}

TEST_F(IoDirTest, AtomicWriteIntoMissingDirectoryFailsCleanly) {
    const fs::path p = dir_ / "no_such_dir" / "out.bin";
    try {
        tl::write_file_atomic(p, std::string_view("data"));
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("[io] " + p.string()));
        EXPECT_THAT(e.what(), HasSubstr(std::strerror(ENOENT)));
    }
    EXPECT_TRUE(names_in(dir_).empty()) << "nothing created, no temp file left";
}

TEST_F(IoDirTest, AtomicWriteOverDirectoryLeavesItIntact) {
    // rename() of a file over a non-empty directory fails even for root.
    const fs::path target = dir_ / "ckpt";
    fs::create_directories(target);
    tl::write_file_atomic(target / "inner.txt", std::string_view("keep"));
    try {
        tl::write_file_atomic(target, std::string_view("new"));
        FAIL() << "expected tl::Error";
    } catch (const tl::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("[io] " + target.string() + ": cannot replace it"));
    }
    EXPECT_TRUE(fs::is_directory(target));
    EXPECT_EQ(tl::read_file_text(target / "inner.txt", 100), "keep");
    EXPECT_EQ(names_in(dir_), std::vector<std::string>{"ckpt"}) << "temp file removed";
}

TEST_F(IoDirTest, AtomicWriteThatFailsMidwayKeepsPreviousFile) {
    // A file-size limit makes write() fail with EFBIG part way through, root or not: an interrupted save.
    const fs::path p = dir_ / "model.safetensors";
    tl::write_safetensors(p, sample_file());
    const Bytes before = tl::read_file_bytes(p, 1 << 20);

    rlimit old_limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    if (old_limit.rlim_cur != RLIM_INFINITY && old_limit.rlim_cur < 4096)
        GTEST_SKIP() << "file size limit too low";
    const auto old_handler =
        std::signal(SIGXFSZ, SIG_IGN);  // otherwise exceeding the limit kills the process
    rlimit small = old_limit;
    small.rlim_cur = 4096;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string msg = "<no tl::Error thrown>";
    try {
        tl::write_file_atomic(p, Bytes(std::size_t{64} << 10, 0xAB));
    } catch (const tl::Error& e) {
        msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);  // restore before any assertion prints
    std::signal(SIGXFSZ, old_handler);

    EXPECT_THAT(msg, HasSubstr("[io] " + p.string() + ": write to temporary file failed"));
    EXPECT_EQ(tl::read_file_bytes(p, 1 << 20), before) << "previous file must be untouched";
    EXPECT_EQ(names_in(dir_), std::vector<std::string>{"model.safetensors"}) << "temp file removed";
    expect_same(tl::read_safetensors(p), sample_file());
}

}  // namespace
