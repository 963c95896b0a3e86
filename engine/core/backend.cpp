#include "core/backend.hpp"

#include <string>

#include "core/error.hpp"

namespace tl {

namespace {

constexpr struct {
    GemmPrecision p;
    std::string_view name;
} kGemmPrecisions[] = {
    {GemmPrecision::fp32, "fp32"},
    {GemmPrecision::tf32, "tf32"},
    {GemmPrecision::bf16, "bf16"},
    {GemmPrecision::fp16, "fp16"},
};

}  // namespace

std::string_view gemm_precision_name(GemmPrecision p) {
    for (const auto& e : kGemmPrecisions)
        if (e.p == p) return e.name;
    return "?";
}

GemmPrecision parse_gemm_precision(std::string_view name) {
    for (const auto& e : kGemmPrecisions)
        if (e.name == name) return e.p;
    throw Error("[backend] unknown GEMM precision '" + std::string(name) +
                "'; available: fp32, tf32, bf16, fp16");
}

Tensor Backend::tensor(const Shape& shape, MemCategory what) {
    const auto n = shape_numel(shape);
    Tensor t(alloc(static_cast<std::size_t>(n) * sizeof(float), what), shape);
    fill_zero(t.vec());
    return t;
}

}  // namespace tl
