// The DType table: one row per storage type tunelab reads or writes (safetensors names included).
// Numeric formats for quantization (fp8, nf4, ...) live in engine/formats, not here.
#pragma once
#include <cstddef>
#include <optional>
#include <string_view>

namespace tl {

enum class DType { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

struct DTypeInfo {
    DType id;
    std::string_view name;         // tunelab's name
    std::string_view safetensors;  // the safetensors header's "dtype" string
    std::size_t bytes;
};

inline constexpr DTypeInfo kDTypes[] = {
    //  id               name    safetensors  bytes
    {DType::f64, "f64", "F64", 8},     {DType::f32, "f32", "F32", 4},  {DType::f16, "f16", "F16", 2},
    {DType::bf16, "bf16", "BF16", 2},  {DType::i64, "i64", "I64", 8},  {DType::i32, "i32", "I32", 4},
    {DType::i16, "i16", "I16", 2},     {DType::i8, "i8", "I8", 1},     {DType::u8, "u8", "U8", 1},
    {DType::boolean, "bool", "BOOL", 1},
};

constexpr const DTypeInfo& dtype_info(DType d) {
    for (const auto& row : kDTypes)
        if (row.id == d) return row;
    return kDTypes[0];  // unreachable: every enumerator has a row
}
constexpr std::size_t dtype_bytes(DType d) { return dtype_info(d).bytes; }

inline std::optional<DType> dtype_from_safetensors(std::string_view s) {
    for (const auto& row : kDTypes)
        if (row.safetensors == s) return row.id;
    return std::nullopt;
}

}  // namespace tl
