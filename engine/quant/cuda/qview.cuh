// From a DeviceQuantMatrix to the kernels' QuantView, and the argument checks every product entry point runs.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "quant/cuda/qkernel_common.cuh"
#include "quant/cuda/qmatmul.hpp"

namespace tl::cuda_quant {

inline QuantView view_of(const DeviceQuantMatrix& w) {
    QuantView v;
    v.codes = w.codes(), v.scales = w.scales(), v.scale_codes = w.scale_codes(), v.scale_scales = w.scale_scales();
    v.scale_mean = w.scale_mean(), v.scale_mode = w.scale_mode();
    v.rows = w.rows(), v.cols = w.cols(), v.group = w.group(), v.dq_block = w.dq_block();
    v.code_bytes_per_row = w.cols() * (w.kind() == QuantKind::int4 || w.kind() == QuantKind::nf4 ? 4 : 8) / 8;
    v.groups_per_row = w.cols() / w.group();
    return v;
}

// tl::Error for a batch out of range or an x the 16-byte loads cannot read (y is written element by element).
inline void check_product_args(const char* op, const DeviceQuantMatrix& w, const void* x, const void* y,
                               std::int64_t batch, std::int64_t max_batch) {
    const std::string what = std::string("[cuda] ") + op + ": ";
    if (batch < 1 || batch > max_batch)
        throw Error(what + "batch must be in 1.." + std::to_string(max_batch) + "; got " + std::to_string(batch));
    if (x == nullptr || y == nullptr || reinterpret_cast<std::uintptr_t>(x) % 16 != 0)
        throw Error(what + "x and y must be non-null device pointers, x aligned to 16 bytes");
    if (w.codes() == nullptr) throw Error(what + "the matrix holds no codes (moved from?)");
}

}  // namespace tl::cuda_quant
