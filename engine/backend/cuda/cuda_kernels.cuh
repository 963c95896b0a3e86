// The CUDA backend's ops as plain functions, one per Backend method, with the contracts of core/ops.hpp
// (shapes, accumulate vs overwrite) and the reference kernels in backend/cpu/ref_kernels.cpp as the
// specification. cuda_backend.cu only dispatches to these. Sections by file: [gemm] cuda_gemm.cu,
// [precision] cuda_precision.cu, [rows] cuda_kernels.cu, [attention] cuda_attention.cu. Every pointer is
// device memory; every op runs on the legacy default stream.
#pragma once
#include "backend/cuda/cuda_common.cuh"
#include "core/ops.hpp"

namespace tl::cuda {

// ---- [gemm] cuda_gemm.cu ----------------------------------------------------------------------------------
// A row-major GEMM, optionally batched with fixed strides (in elements) between the matrices of each operand:
//   C_i (M, N) = alpha op(A_i) op(B_i) + beta C_i,   i < count,   X_i = x + i * stride_x.
// With beta == 0, C is not read (NaN in C stays out of the result), as in BLAS. A and B are in the operand
// format of ctx.precision (FP32 for fp32/tf32, 16-bit for bf16/fp16: see [precision]); C is always FP32.
struct GemmIn {
    const void* data;
    std::int64_t ld, stride;  // row stride; distance between consecutive matrices of the batch
    Trans trans;
};
struct GemmOut {
    float* data;
    std::int64_t ld, stride;
};
struct RowMajorGemm {
    std::int64_t M, N, K;
    GemmIn a, b;
    GemmOut c;
    float alpha, beta;
    std::int64_t count;  // batch size; 1 for a plain GEMM
};
void gemm_row_major(const Context& ctx, const RowMajorGemm& g, const char* op);

void gemm(const Context& ctx, const GemmArgs<float>& a);
void linear_forward(const Context& ctx, const LinearArgs<float>& a);
void linear_backward(const Context& ctx, const LinearGradArgs<float>& a);

// ---- [precision] cuda_precision.cu: the GEMMs' operand formats --------------------------------------------
// One row per GemmPrecision: what cuBLAS is given (operand type, compute type).
struct GemmMath {
    GemmPrecision precision;
    cudaDataType_t operand;  // A and B; C is CUDA_R_32F
    int operand_bytes;
    cublasComputeType_t compute;
};
const GemmMath& gemm_math(GemmPrecision p);

// A row-major matrix in the GEMM operand format: the FP32 original itself (fp32, tf32: no copy), or a 16-bit
// copy (bf16, fp16: round to nearest even) in scratch slot `slot`, whose rows are padded to a multiple of 8
// elements (16-byte aligned rows, as the tensor cores want). Valid until the slot is used again.
struct OperandMat {
    const void* data;
    std::int64_t ld;  // in elements of the operand format
    int elem_bytes;
    // Element (r, c) as a GEMM input; batch_rows: rows between consecutive matrices of a batch.
    GemmIn in(std::int64_t r, std::int64_t c, Trans t, std::int64_t batch_rows = 0) const {
        return {static_cast<const char*>(data) + (r * ld + c) * elem_bytes, ld, batch_rows * ld, t};
    }
};
OperandMat gemm_operand(const Context& ctx, CMatView m, int slot, const char* op);

// ---- [rows] cuda_kernels.cu: element-wise, per-row and per-column kernels ---------------------------------
void fill_zero(VecView x);
void embedding_forward(const EmbeddingArgs<float>& a);
void embedding_backward(const EmbeddingGradArgs<float>& a);
void layernorm_forward(const LayerNormArgs<float>& a);
void layernorm_backward(const Context& ctx, const LayerNormGradArgs<float>& a);
void scale_matrix(MatView c, float beta, const char* op);                           // c *= beta (0: c = 0)
void add_bias(MatView out, CVecView b, const char* op);                             // out[i, :] += b
void add_column_sums(const Context& ctx, VecView dst, CMatView x, const char* op);  // dst[j] += sum_i x[i, j]
void gelu_forward(const GeluArgs<float>& a);
void gelu_backward(const GeluGradArgs<float>& a);
void add(VecView out, CVecView a, CVecView b);
void add_inplace(VecView dst, CVecView src);
void cross_entropy_forward(const CrossEntropyArgs<float>& a);
void cross_entropy_backward(const CrossEntropyGradArgs<float>& a);
double sum_squares(const Context& ctx, CVecView x);
void scale(VecView x, float s);
void adamw(const AdamWArgs<float>& a);

// ---- [attention] cuda_attention.cu ------------------------------------------------------------------------
void attention_forward(const Context& ctx, const AttentionArgs<float>& a);
// The fused FP32 forward (cuda_attention_fused.cu) for heads of up to 128 dimensions and B, H within the grid's
// 65535; otherwise the GEMM path runs. Shapes checked by the caller.
bool fused_attention_fits(std::int64_t B, std::int64_t H, std::int64_t hs);
void attention_forward_fused(const AttentionArgs<float>& a, std::int64_t hs);
void attention_backward(const Context& ctx, const AttentionGradArgs<float>& a);
void attention_decode(const Context& ctx, const AttentionDecodeArgs<float>& a);

}  // namespace tl::cuda
