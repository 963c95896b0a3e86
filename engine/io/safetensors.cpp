// safetensors reading and writing. Reading trusts nothing: the length prefix, every header field and the
// layout of the data buffer are checked (with overflow-safe arithmetic) before any tensor byte is copied out.
// [SECTION] little-endian scalars and f16/bf16   [SECTION] header validation   [SECTION] public API
#include "io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "core/error.hpp"
#include "io/atomic_file.hpp"

namespace tl {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(std::string_view source, const std::string& what) {
    throw Error("[io] " + std::string(source) + ": " + what);
}

// -----------------------------------------------------------------------------------------------------------
// [SECTION] little-endian scalars and f16/bf16
// Bytes are assembled explicitly so the format stays little-endian whatever the host is.
// -----------------------------------------------------------------------------------------------------------

template <class U>
U load_le(const std::uint8_t* p) {
    U v = 0;
    for (std::size_t i = sizeof(U); i-- > 0;) v = static_cast<U>((v << 8) | p[i]);
    return v;
}

template <class U>
void store_le(std::uint8_t* p, U v) {
    for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every f16 value is exact in f32.
float f16_bits_to_f32(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h >> 15) << 31;
    const std::uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    if (exp == 0) {  // zero or subnormal: man * 2^-24, which f32 holds as a normal number
        const float mag = std::ldexp(static_cast<float>(man), -24);
        return sign ? -mag : mag;
    }
    if (exp == 31) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));  // inf / NaN (payload kept)
    return std::bit_cast<float>(sign | ((exp + 127 - 15) << 23) | (man << 13));    // rebias the exponent
}

// bfloat16 is the top half of an f32.
float bf16_bits_to_f32(std::uint16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

struct ToF32Row {
    DType dtype;
    float (*load)(const std::uint8_t*);
};
constexpr ToF32Row kToF32[] = {
    {DType::f32, [](const std::uint8_t* p) { return std::bit_cast<float>(load_le<std::uint32_t>(p)); }},
    {DType::f16, [](const std::uint8_t* p) { return f16_bits_to_f32(load_le<std::uint16_t>(p)); }},
    {DType::bf16, [](const std::uint8_t* p) { return bf16_bits_to_f32(load_le<std::uint16_t>(p)); }},
    {DType::f64,
     [](const std::uint8_t* p) {
         return static_cast<float>(std::bit_cast<double>(load_le<std::uint64_t>(p)));
     }},
};

// numel * dtype_bytes, or nullopt when that does not fit in 64 bits. Dimensions must be non-negative.
// A zero dimension makes the tensor empty however large the others are, so it is checked first.
std::optional<std::uint64_t> checked_nbytes(const Shape& shape, DType dtype) {
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    std::uint64_t n = dtype_bytes(dtype);
    for (const std::int64_t d : shape) {
        TL_ASSERT(d > 0, "[io] checked_nbytes: negative dimension should have been rejected");
        const auto ud = static_cast<std::uint64_t>(d);
        if (n > std::numeric_limits<std::uint64_t>::max() / ud) return std::nullopt;
        n *= ud;
    }
    return n;
}

std::string dtype_desc(DType dtype) {
    return std::string(dtype_info(dtype).safetensors) + " (" + std::to_string(dtype_bytes(dtype)) + " bytes)";
}

// The byte count an in-memory tensor must have; tl::Error for a negative dimension or an overflowing shape.
std::uint64_t expected_nbytes(const SafeTensor& t, std::string_view context) {
    for (const std::int64_t d : t.shape)
        if (d < 0)
            fail(context,
                 "tensor '" + t.name + "': shape " + shape_str(t.shape) + " has a negative dimension");
    const auto n = checked_nbytes(t.shape, t.dtype);
    if (!n)
        fail(context, "tensor '" + t.name + "': shape " + shape_str(t.shape) + " of " + dtype_desc(t.dtype) +
                          " has more bytes than 64 bits can count");
    return *n;
}

// -----------------------------------------------------------------------------------------------------------
// [SECTION] header validation
// -----------------------------------------------------------------------------------------------------------

constexpr int kMaxJsonDepth = 8;  // a valid header needs 3 (top object, entry object, shape array)

// What a JSON value is, for error messages: its kind and (shortened) text.
std::string describe(const json& v) {
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    const std::string kind = v.is_number_float() ? "a non-integer number"
                             : v.is_number()     ? "an integer"
                                                 : std::string(v.type_name());
    return kind + " " + text;
}

// A JSON integer >= 0, or nullopt for anything else (negative, fractional, too big for u64, not a number).
std::optional<std::uint64_t> as_u64(const json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
        return static_cast<std::uint64_t>(v.get<std::int64_t>());
    return std::nullopt;
}

// nlohmann::json keeps the last of two equal keys without a word; a tensor named twice must be an error, so
// the parser callback tracks the keys of every open object.
json parse_header_json(std::string_view text, std::string_view src) {
    std::vector<std::set<std::string>> open_objects;
    auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
        if (depth > kMaxJsonDepth)
            fail(src, "header JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                          " levels; a safetensors header needs 3. The file is corrupt or not safetensors");
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        if (event == json::parse_event_t::object_end) open_objects.pop_back();
        if (event == json::parse_event_t::key &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
            const std::string key = parsed.get<std::string>();
            fail(src,
                 open_objects.size() == 1
                     ? "tensor name '" + key + "' appears twice in the header; tensor names must be unique"
                     : "key '" + key +
                           "' appears twice in one header object (inside an entry or __metadata__)");
        }
        return true;
    };
    try {
        return json::parse(text, on_event);
    } catch (const json::parse_error& e) {
        fail(src, "header is not valid JSON (" + std::string(e.what()) +
                      "); the file is corrupt or not safetensors");
    }
}

std::map<std::string, std::string> parse_metadata(const json& v, std::string_view src) {
    if (!v.is_object()) fail(src, "__metadata__ is " + describe(v) + ", expected an object of string values");
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : v.items()) {
        if (!value.is_string())
            fail(src,
                 "__metadata__ value for key '" + key + "' is " + describe(value) + ", expected a string");
        out.emplace(key, value.get<std::string>());
    }
    return out;
}

// One header entry, validated on its own; check_tiling() then checks the entries against each other.
struct Entry {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;
    std::uint64_t begin = 0, end = 0;
};

DType parse_dtype(const json& v, const std::string& who, std::string_view src) {
    const auto dt = v.is_string() ? dtype_from_safetensors(v.get<std::string>()) : std::nullopt;
    if (dt) return *dt;
    std::string known;
    for (const auto& row : kDTypes) known += (known.empty() ? "" : ", ") + std::string(row.safetensors);
    fail(src, who + ": unknown dtype (got " + describe(v) + "); tunelab reads " + known);
}

Shape parse_shape(const json& v, const std::string& who, std::string_view src) {
    if (!v.is_array())
        fail(src, who + ": shape is " + describe(v) + ", expected an array of non-negative integers");
    Shape shape;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const json& d = v[i];
        const std::string at = who + ": shape[" + std::to_string(i) + "] is ";
        if (d.is_number_integer() && !as_u64(d))
            fail(src, at + describe(d) + ", negative; dimensions must be >= 0");
        const auto u = as_u64(d);
        if (!u) fail(src, at + describe(d) + ", expected a non-negative integer");
        if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            fail(src, at + std::to_string(*u) + ", too large for a dimension (max 2^63 - 1)");
        shape.push_back(static_cast<std::int64_t>(*u));
    }
    return shape;
}

std::pair<std::uint64_t, std::uint64_t> parse_offsets(const json& v, const std::string& who,
                                                      std::string_view src) {
    if (!v.is_array() || v.size() != 2)
        fail(src, who + ": data_offsets is " + describe(v) +
                      "; it must be [begin, end], two non-negative integers");
    const auto begin = as_u64(v[0]), end = as_u64(v[1]);
    if (!begin || !end)
        fail(src, who + ": data_offsets " + v.dump() + " must hold two non-negative integers");
    if (*begin > *end)
        fail(src, who + ": data_offsets begin " + std::to_string(*begin) + " > end " + std::to_string(*end));
    return {*begin, *end};
}

Entry parse_entry(const std::string& name, const json& v, std::uint64_t buffer_size, std::string_view src) {
    if (name.empty())
        fail(src, "the header has an entry with an empty tensor name; every tensor needs a name");
    const std::string who = "tensor '" + name + "'";
    if (!v.is_object())
        fail(src, who + ": entry is " + describe(v) + ", expected an object {dtype, shape, data_offsets}");
    const auto fields = v.items();
    const auto unknown = std::find_if(fields.begin(), fields.end(), [](const auto& field) {
        return field.key() != "dtype" && field.key() != "shape" && field.key() != "data_offsets";
    });
    if (unknown != fields.end())
        fail(src, who + ": unknown field '" + unknown.key() +
                      "'; an entry has only dtype, shape and data_offsets");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!v.contains(key)) fail(src, who + ": missing field '" + key + "'");

    Entry e{name, parse_dtype(v["dtype"], who, src), parse_shape(v["shape"], who, src), 0, 0};
    std::tie(e.begin, e.end) = parse_offsets(v["data_offsets"], who, src);
    const std::string range = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    if (e.end > buffer_size)
        fail(src, who + ": " + range + " go past the end of the data buffer (" + std::to_string(buffer_size) +
                      " bytes); the file is truncated or its header is corrupt");
    const auto nbytes = checked_nbytes(e.shape, e.dtype);
    if (!nbytes)
        fail(src, who + ": shape " + shape_str(e.shape) + " of " + dtype_desc(e.dtype) +
                      " overflows a 64-bit byte count; the header is corrupt");
    if (*nbytes != e.end - e.begin)
        fail(src, who + ": shape " + shape_str(e.shape) + " of " + dtype_desc(e.dtype) + " needs " +
                      std::to_string(*nbytes) + " bytes but " + range + " span " +
                      std::to_string(e.end - e.begin));
    return e;
}

// "[begin, end)". append(), not operator+: GCC 12 gives a false -Wrestrict on `"[" + std::string&&`.
std::string half_open(std::uint64_t begin, std::uint64_t end) {
    std::string s = "[";
    s.append(std::to_string(begin)).append(", ").append(std::to_string(end)).append(")");
    return s;
}

// Sorted by begin, the ranges must tile [0, buffer_size) exactly: an overlap means two tensors share bytes, a
// gap or trailing bytes mean the header does not describe the file (both are how corruption shows).
void check_tiling(std::vector<Entry>& entries, std::uint64_t buffer_size, std::string_view src) {
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    const Entry* prev = nullptr;
    for (const Entry& e : entries) {
        if (e.begin < covered)  // covered > 0 implies prev is set
            fail(src, "tensors '" + prev->name + "' " + half_open(prev->begin, prev->end) + " and '" +
                          e.name + "' " + half_open(e.begin, e.end) + " overlap");
        if (e.begin > covered)
            fail(src, "gap: bytes " + half_open(covered, e.begin) + " before tensor '" + e.name +
                          "' belong to no tensor; the header does not describe the data buffer");
        covered = e.end;
        prev = &e;
    }
    if (covered != buffer_size)
        fail(src, "the data buffer is " + std::to_string(buffer_size) + " bytes but the tensors cover only " +
                      std::to_string(covered) + "; " + std::to_string(buffer_size - covered) +
                      " trailing bytes belong to no tensor");
}

std::vector<std::uint8_t> serialize_impl(const SafeTensorsFile& f, std::string_view ctx) {
    // ordered_json keeps insertion order, so the header lists tensors in the order of their bytes.
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!f.metadata.empty()) header["__metadata__"] = f.metadata;
    std::set<std::string_view> seen;
    std::uint64_t offset = 0;
    for (const SafeTensor& t : f.tensors) {
        if (t.name.empty()) fail(ctx, "cannot write a tensor with an empty name");
        if (t.name == "__metadata__")
            fail(ctx, "'__metadata__' is reserved by the format; rename that tensor");
        if (!seen.insert(t.name).second)
            fail(ctx, "tensor name '" + t.name + "' appears twice; names must be unique");
        const std::uint64_t nbytes = expected_nbytes(t, ctx);
        if (nbytes != t.bytes.size())
            fail(ctx, "tensor '" + t.name + "': shape " + shape_str(t.shape) + " of " + dtype_desc(t.dtype) +
                          " needs " + std::to_string(nbytes) + " bytes but it holds " +
                          std::to_string(t.bytes.size()));
        header[t.name] = {{"dtype", std::string(dtype_info(t.dtype).safetensors)},
                          {"shape", t.shape},
                          {"data_offsets", nlohmann::ordered_json::array({offset, offset + nbytes})}};
        offset += nbytes;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const json::type_error& e) {
        fail(ctx, "a tensor name or metadata string is not valid UTF-8 (" + std::string(e.what()) + ")");
    }
    text.append((8 - text.size() % 8) % 8, ' ');  // so the data buffer starts 8-byte aligned
    if (text.size() > kMaxSafetensorsHeaderBytes)
        fail(ctx, "header would be " + std::to_string(text.size()) + " bytes, over the " +
                      std::to_string(kMaxSafetensorsHeaderBytes) +
                      "-byte limit readers accept; use less metadata");

    std::vector<std::uint8_t> out(8);
    out.reserve(8 + text.size() + offset);
    store_le<std::uint64_t>(out.data(), text.size());
    out.insert(out.end(), text.begin(), text.end());
    for (const SafeTensor& t : f.tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    return out;
}

}  // namespace

// -----------------------------------------------------------------------------------------------------------
// [SECTION] public API
// -----------------------------------------------------------------------------------------------------------

SafeTensor SafeTensor::from_f32(std::string name, Shape shape, const float* data) {
    SafeTensor t{std::move(name), DType::f32, std::move(shape), {}};
    const std::uint64_t nbytes = expected_nbytes(t, "SafeTensor::from_f32");
    if (nbytes > 0 && data == nullptr)
        fail("SafeTensor::from_f32",
             "tensor '" + t.name + "': data is null but shape " + shape_str(t.shape) + " has elements");
    t.bytes.resize(static_cast<std::size_t>(nbytes));
    for (std::size_t i = 0; i < nbytes / 4; ++i)
        store_le(t.bytes.data() + 4 * i, std::bit_cast<std::uint32_t>(data[i]));
    return t;
}

std::vector<float> SafeTensor::to_f32() const {
    const ToF32Row* row = nullptr;
    for (const ToF32Row& r : kToF32)
        if (r.dtype == dtype) row = &r;
    if (!row)
        fail("to_f32",
             "tensor '" + name + "' is " + std::string(dtype_info(dtype).safetensors) +
                 "; only F32, F16, BF16 and F64 convert to float. Check the file holds weights, not ids");
    const std::uint64_t nbytes = expected_nbytes(*this, "to_f32");
    if (nbytes != bytes.size())
        fail("to_f32", "tensor '" + name + "': shape " + shape_str(shape) + " of " + dtype_desc(dtype) +
                           " needs " + std::to_string(nbytes) + " bytes but it holds " +
                           std::to_string(bytes.size()));
    const std::size_t width = dtype_bytes(dtype), n = bytes.size() / width;
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = row->load(bytes.data() + i * width);
    return out;
}

const SafeTensor* SafeTensorsFile::find(std::string_view name) const {
    for (const SafeTensor& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

const SafeTensor& SafeTensorsFile::at(std::string_view name) const {
    if (const SafeTensor* t = find(name)) return *t;
    std::string some;  // a few names, so a prefix mismatch ("transformer." vs none) is visible at a glance
    for (std::size_t i = 0; i < tensors.size() && i < 6; ++i) some += (i ? ", " : "") + tensors[i].name;
    if (tensors.size() > 6) some += ", ...";
    throw Error("[io] tensor '" + std::string(name) + "' missing; the file has " +
                std::to_string(tensors.size()) + " tensors (" + some + ")");
}

SafeTensorsFile parse_safetensors(std::span<const std::uint8_t> bytes, std::string_view src) {
    if (bytes.size() < 8)
        fail(src,
             "file is " + std::to_string(bytes.size()) +
                 " bytes, shorter than the 8-byte header length; it is empty, truncated or not safetensors");
    const std::uint64_t header_len = load_le<std::uint64_t>(bytes.data());
    const std::uint64_t after_len = bytes.size() - 8;  // compared, never added to: header_len may be 2^63
    if (header_len > after_len)
        fail(src, "header length " + std::to_string(header_len) + " but only " + std::to_string(after_len) +
                      " bytes follow the length field; the file is truncated or not safetensors");
    if (header_len > kMaxSafetensorsHeaderBytes)
        fail(src, "header length " + std::to_string(header_len) + " is over the " +
                      std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit; the file is corrupt");

    const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);
    const json header = parse_header_json(std::string_view(text, header_len), src);
    if (!header.is_object())
        fail(src,
             "header JSON is " + describe(header) + ", expected an object mapping tensor names to entries");

    const std::span<const std::uint8_t> data = bytes.subspan(8 + header_len);
    SafeTensorsFile out;
    std::vector<Entry> entries;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__")
            out.metadata = parse_metadata(value, src);
        else
            entries.push_back(parse_entry(key, value, data.size(), src));
    }
    check_tiling(entries, data.size(), src);
    out.tensors.reserve(entries.size());
    for (Entry& e : entries) {
        auto first = data.begin() + static_cast<std::ptrdiff_t>(e.begin);
        out.tensors.push_back(
            {std::move(e.name), e.dtype, std::move(e.shape),
             std::vector<std::uint8_t>(first, first + static_cast<std::ptrdiff_t>(e.end - e.begin))});
    }
    return out;
}

SafeTensorsFile read_safetensors(const std::filesystem::path& path) {
    const std::vector<std::uint8_t> bytes = read_file_bytes(path, kMaxSafetensorsFileBytes);
    return parse_safetensors(bytes, path.string());
}

std::vector<std::uint8_t> serialize_safetensors(const SafeTensorsFile& f) {
    return serialize_impl(f, "serialize_safetensors");
}

void write_safetensors(const std::filesystem::path& path, const SafeTensorsFile& f) {
    write_file_atomic(path, serialize_impl(f, path.string()));
}

}  // namespace tl
