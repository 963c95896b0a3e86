// Weight-only quantized matrix products on an NVIDIA GPU: Y (batch, rows) = X (batch, cols) W^T with W stored
// as int8 / int4 / nf4 / fp8 E4M3 codes and fp16 or double-quantized per-group scales (quant_layout.hpp),
// dequantized on the fly, and X, Y in bf16 or fp16 with fp32 accumulation. Batch 1 (a decode step) runs a
// GEMV that reads each code once and is bound by memory bandwidth; batch 2..256 (prefill) runs a tensor-core
// GEMM that dequantizes a tile of W into shared memory per step. bench_quant --device cuda measures them
// against cuBLAS and the memory roofline; tests/cuda/quant_parity checks them against a float64 product of the
// CPU quantizer's dequantize(). docs/quantization.md (GPU kernels) explains the design. C++17.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "quant/quant_layout.hpp"

namespace tl::cuda_quant {

enum class ActType { bf16, fp16 };
const char* name_of(ActType t);

// A QuantLayout in device memory (cudaMalloc'd; freed with the object). Move-only.
class DeviceQuantMatrix {
public:
    explicit DeviceQuantMatrix(const QuantLayout& layout);
    // Empty codes and scales of this kind and shape, for quantize() to fill (fp16 scales).
    DeviceQuantMatrix(QuantKind kind, std::int64_t rows, std::int64_t cols, std::int64_t group);
    ~DeviceQuantMatrix();
    DeviceQuantMatrix(DeviceQuantMatrix&& other) noexcept;
    DeviceQuantMatrix& operator=(DeviceQuantMatrix&& other) noexcept;
    DeviceQuantMatrix(const DeviceQuantMatrix&) = delete;
    DeviceQuantMatrix& operator=(const DeviceQuantMatrix&) = delete;

    QuantKind kind() const { return kind_; }
    qdecode::ScaleMode scale_mode() const { return mode_; }
    std::int64_t rows() const { return rows_; }
    std::int64_t cols() const { return cols_; }
    std::int64_t group() const { return group_; }
    std::size_t bytes() const { return bytes_; }  // every byte of W a product reads (codes + scales)
    QuantLayout download() const;                 // back to the host (tests)

    // The raw parts, for the kernels.
    const std::uint8_t* codes() const { return codes_; }
    const std::uint16_t* scales() const { return scales_; }
    const std::uint8_t* scale_codes() const { return scale_codes_; }
    const float* scale_scales() const { return scale_scales_; }
    float scale_mean() const { return scale_mean_; }
    std::int64_t dq_block() const { return dq_block_; }
    std::uint8_t* mutable_codes() { return codes_; }
    std::uint16_t* mutable_scales() { return scales_; }

private:
    void release() noexcept;
    QuantKind kind_ = QuantKind::int8;
    qdecode::ScaleMode mode_ = qdecode::ScaleMode::fp16;
    std::int64_t rows_ = 0, cols_ = 0, group_ = 0, dq_block_ = 256;
    float scale_mean_ = 0;
    std::size_t bytes_ = 0;
    std::uint8_t* codes_ = nullptr;
    std::uint16_t* scales_ = nullptr;
    std::uint8_t* scale_codes_ = nullptr;
    float* scale_scales_ = nullptr;
    std::int64_t scale_scale_count_ = 0;
};

// Y = X W^T; x (batch, w.cols()) and y (batch, w.rows()) device pointers of type `t`, row-major, x 16-byte aligned.
// Picks qgemv for batch 1 and qgemm otherwise. tl::Error("[cuda] ...") on a CUDA failure.
void qmatmul(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, ActType t,
             cudaStream_t stream = nullptr);
// The two kernels by name (the benchmark times each at every batch). qgemv takes any batch and reads W once
// per row of X; it is the fast one only at batch 1.
void qgemv(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, ActType t,
           cudaStream_t stream = nullptr);
void qgemm(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, ActType t,
           cudaStream_t stream = nullptr);

// W dequantized into out (rows, cols) of type t: what the "dequantize, then a cuBLAS GEMM" path runs.
void dequantize(const DeviceQuantMatrix& w, void* out, ActType t, cudaStream_t stream = nullptr);

// The GPU quantizer: w (rows, cols) fp32 on the device -> codes and fp16 scales in `out` (made with the
// kind/shape constructor), symmetric absmax per group, as formats/quantizer.cpp does it: scale = absmax /
// unit max rounded to fp16, code = round-half-even(x / scale) clamped (int8, int4), or the nearest NF4 entry.
// The codes and scales equal the CPU quantizer's (quant_parity checks it). int8, int4 and nf4.
void quantize(const float* w, DeviceQuantMatrix& out, cudaStream_t stream = nullptr);

// Whether a usable GPU is present; `why` gets CUDA's reason when not.
bool gpu_available(std::string* why = nullptr);

}  // namespace tl::cuda_quant
