// Shared by every file of the CUDA backend: the error macros (TL_CUDA_CHECK, TL_CUBLAS_CHECK,
// TL_CUDA_CHECK_LAUNCH), the grown-on-demand scratch buffers, the op context (cuBLAS handle, scratch, GEMM
// precision), and the warp/block reductions the row kernels use. Not a kernel file: the kernels are in
// cuda_kernels.cu, cuda_gemm.cu, cuda_precision.cu and cuda_attention.cu; their
// declarations in cuda_kernels.cuh. Plain C++17 (nvcc 13 through CMake 3.25 compiles .cu files as C++17), and
// no Eigen.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/backend.hpp"

namespace tl::cuda {

// Both throw tl::Error("[cuda] <op>: <call> failed: <CUDA's name and text for the error>").
[[noreturn]] void throw_cuda_error(const char* op, const char* call, cudaError_t err);
[[noreturn]] void throw_cublas_error(const char* op, const char* call, cublasStatus_t status);

}  // namespace tl::cuda

// `op` names the Backend method being run, so a failure says which op broke, not only which CUDA call.
#define TL_CUDA_CHECK_OP(op, call)                                                      \
    do {                                                                                \
        const cudaError_t tl_err_ = (call);                                             \
        if (tl_err_ != cudaSuccess) ::tl::cuda::throw_cuda_error((op), #call, tl_err_); \
    } while (0)
#define TL_CUDA_CHECK(call) TL_CUDA_CHECK_OP(__func__, call)
#define TL_CUBLAS_CHECK_OP(op, call)                                                                      \
    do {                                                                                                  \
        const cublasStatus_t tl_status_ = (call);                                                         \
        if (tl_status_ != CUBLAS_STATUS_SUCCESS) ::tl::cuda::throw_cublas_error((op), #call, tl_status_); \
    } while (0)
// After every kernel launch: a bad launch configuration is reported here, with the op's name. Errors inside a
// running kernel (an illegal address) surface at the next synchronising call, usually copy_to_host.
#define TL_CUDA_CHECK_LAUNCH(op) TL_CUDA_CHECK_OP(op, cudaGetLastError())

namespace tl::cuda {

// One growable device buffer for an op's temporaries (reduction partials, decode scores), allocated through
// the backend so the ledger counts it under `workspace`. Growing frees the old buffer; cudaFree waits for the
// kernels still using it, so no op can see a freed pointer. Every op runs on the legacy default stream.
class Scratch {
public:
    explicit Scratch(Backend& backend) : backend_(backend) {}
    void* get(std::size_t bytes) {
        if (bytes > buf_.bytes() || buf_.data() == nullptr) {
            buf_ = Buffer();  // free first: the old and the new need not both fit
            buf_ = backend_.alloc((bytes + 255) / 256 * 256, MemCategory::workspace);
        }
        return buf_.data();
    }

private:
    Backend& backend_;
    Buffer buf_;
};

// Scratch buffers for 16-bit copies of GEMM operands (bf16, fp16), alive at once within one op: a GEMM's two
// operands; attention backward's qkv, dout and probabilities.
constexpr int kOperandSlots = 3;

// What every op needs besides its arguments.
struct Context {
    cublasHandle_t blas = nullptr;
    Scratch* scratch = nullptr;                     // reduction partials, decode scores
    Scratch* operands[kOperandSlots] = {};          // 16-bit GEMM operands (cuda_precision.cu)
    GemmPrecision precision = GemmPrecision::fp32;  // the GEMMs' arithmetic (core/backend.hpp)
    CudaAttention attention = CudaAttention::gemm;  // attention forward: GEMMs + softmax, or the fused kernel
};

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

inline unsigned blocks_for(std::int64_t n, int threads_per_block) {
    return static_cast<unsigned>((n + threads_per_block - 1) / threads_per_block);
}

// Grid for a grid-stride loop over n elements: enough blocks to fill the GPU, never more than needed.
inline unsigned grid_stride_blocks(std::int64_t n, int threads_per_block) {
    const std::int64_t want = (n + threads_per_block - 1) / threads_per_block;
    return static_cast<unsigned>(want < 1 ? 1 : (want > 65536 ? 65536 : want));
}

// Butterfly reductions: every lane ends with the same value, bit for bit (each step adds the same two values,
// and IEEE addition commutes), so the result does not depend on which lane reads it.
template <class T>
__device__ inline T warp_sum(T v) {
    for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
    return v;
}
__device__ inline float warp_max(float v) {
    for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
}

// Block reductions for blockDim.x a multiple of 32 (at most 1024); smem holds 32 values. Every thread returns
// the total. The leading __syncthreads lets one smem array serve several reductions in a row.
template <class T>
__device__ inline T block_sum(T v, T* smem) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    v = lane < warps ? smem[lane] : T(0);
    return warp_sum(v);
}
__device__ inline float block_max(float v, float* smem) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    v = lane < warps ? smem[lane] : -INFINITY;
    return warp_max(v);
}

}  // namespace tl::cuda
