// The safetensors file format: an 8-byte little-endian header length N, N bytes of JSON header
// ({name: {"dtype", "shape", "data_offsets"}, "__metadata__": {string: string}}), then the raw data buffer.
// Every header field is validated before a byte is trusted. Not a model loader: mapping GPT-2 names to
// parameters lives in model/model_io. File-level atomicity comes from io/atomic_file.hpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.hpp"
#include "core/tensor.hpp"

namespace tl {

struct SafeTensor {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;                      // {} is a 0-d scalar (one element)
    std::vector<std::uint8_t> bytes;  // little-endian raw data, numel * dtype_bytes(dtype) long

    // Copies shape_numel(shape) floats from data (which may be null when that is 0).
    static SafeTensor from_f32(std::string name, Shape shape, const float* data);
    // Converts F32, F16, BF16 and F64 to float; tl::Error for integer and bool dtypes.
    std::vector<float> to_f32() const;
};

struct SafeTensorsFile {
    std::vector<SafeTensor> tensors;              // in data-offset order when read
    std::map<std::string, std::string> metadata;  // the header's "__metadata__"

    const SafeTensor* find(std::string_view name) const;  // nullptr if absent
    const SafeTensor& at(std::string_view name) const;    // tl::Error if absent
};

// source_name (usually the path) prefixes every error message.
SafeTensorsFile parse_safetensors(std::span<const std::uint8_t> bytes, std::string_view source_name);
// Reads the whole file (at most kMaxSafetensorsFileBytes) and parses it.
SafeTensorsFile read_safetensors(const std::filesystem::path& path);

// Header padded with spaces to a multiple of 8 bytes, tensors laid out in the order given.
std::vector<std::uint8_t> serialize_safetensors(const SafeTensorsFile& f);
void write_safetensors(const std::filesystem::path& path, const SafeTensorsFile& f);  // atomic replace

inline constexpr std::uint64_t kMaxSafetensorsFileBytes = std::uint64_t{16} << 30;  // 16 GiB
// The reference (Rust) implementation refuses headers over 100 MB too; real headers are a few hundred KB.
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = std::uint64_t{100} << 20;

}  // namespace tl
