// The GEMM precisions of the CUDA backend as a table (what cuBLAS is given for each), and the conversion of
// an FP32 operand to its 16-bit copy for bf16/fp16. Not the GEMM calls themselves (cuda_gemm.cu) nor where
// attention converts its operands (cuda_attention.cu). Mixed precision as autocast runs it: only the GEMMs'
// inputs are 16-bit; their results, every other op, the weights, gradients and optimizer state stay FP32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "backend/cuda/cuda_kernels.cuh"
#include "core/error.hpp"

namespace tl::cuda {

namespace {

// clang-format off
constexpr GemmMath kGemmMath[] = {
//   precision             operand      bytes  compute
    {GemmPrecision::fp32, CUDA_R_32F,  4,     CUBLAS_COMPUTE_32F},            // true FP32 (no tensor cores)
    {GemmPrecision::tf32, CUDA_R_32F,  4,     CUBLAS_COMPUTE_32F_FAST_TF32},  // tensor cores read TF32
    {GemmPrecision::bf16, CUDA_R_16BF, 2,     CUBLAS_COMPUTE_32F},            // 16-bit in, FP32 accumulate
    {GemmPrecision::fp16, CUDA_R_16F,  2,     CUBLAS_COMPUTE_32F},            // 16-bit in, FP32 accumulate
};
// clang-format on

constexpr int kConvertThreads = 256;
constexpr std::int64_t kRowAlign = 8;  // 8 x 2 bytes: 16-byte rows

template <class T>
__device__ T from_float(float x);
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}
template <>
__device__ __half from_float<__half>(float x) {
    return __float2half_rn(x);  // beyond 65504: inf, which fp16's loss scaling detects and skips
}

// dst (rows, cols; row stride ld_dst) = src rounded to T. Padding columns of dst stay unwritten (cuBLAS reads
// only cols of each row).
template <class T>
__global__ void to_16bit_kernel(T* dst, long long ld_dst, const float* src, long long ld_src, long long rows,
                                long long cols) {
    const long long n = rows * cols, step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        const long long r = i / cols, c = i % cols;
        dst[r * ld_dst + c] = from_float<T>(src[r * ld_src + c]);
    }
}

}  // namespace

const GemmMath& gemm_math(GemmPrecision p) {
    for (const GemmMath& m : kGemmMath)
        if (m.precision == p) return m;
    throw Error("[cuda] unknown GEMM precision " + std::to_string(int(p)));
}

OperandMat gemm_operand(const Context& ctx, CMatView m, int slot, const char* op) {
    const GemmMath& math = gemm_math(ctx.precision);
    if (math.operand == CUDA_R_32F) return {m.data, m.ld, 4};
    TL_ASSERT(slot >= 0 && slot < kOperandSlots && ctx.operands[slot],
              std::string("[") + op + "] no scratch slot " + std::to_string(slot) + " for a 16-bit operand");
    const std::int64_t ld = (m.cols + kRowAlign - 1) / kRowAlign * kRowAlign;
    const std::size_t bytes = std::size_t(m.rows * ld) * std::size_t(math.operand_bytes);
    void* dst = ctx.operands[slot]->get(bytes == 0 ? 1 : bytes);
    const std::int64_t n = m.rows * m.cols;
    if (n > 0) {
        const unsigned blocks = grid_stride_blocks(n, kConvertThreads);
        if (math.operand == CUDA_R_16BF)
            to_16bit_kernel<<<blocks, kConvertThreads>>>(static_cast<__nv_bfloat16*>(dst), ld, m.data, m.ld,
                                                         m.rows, m.cols);
        else
            to_16bit_kernel<<<blocks, kConvertThreads>>>(static_cast<__half*>(dst), ld, m.data, m.ld, m.rows,
                                                         m.cols);
        TL_CUDA_CHECK_LAUNCH(op);
    }
    return {dst, ld, math.operand_bytes};
}

}  // namespace tl::cuda
