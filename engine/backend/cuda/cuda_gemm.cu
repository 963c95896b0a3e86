// GEMM and linear layers on cuBLAS (cublasGemmEx in the backend's GemmPrecision: FP32, TF32 or 16-bit
// operands with FP32 accumulation and output; the operand conversion is in cuda_precision.cu). Same contracts
// as ref::gemm / ref::linear_* in backend/cpu/ref_kernels.cpp; the bias and bias-gradient kernels are in
// cuda_kernels.cu. Attention's per-head GEMMs go through gemm_row_major too (cuda_attention.cu).
//
// Row-major views on a column-major library: a row-major X (r, c) with row stride ld is, read column-major,
// X^T (c, r) with leading dimension ld. So C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in
// column-major: one cuBLAS call with the operands swapped (m = N, n = M, first operand B, second A) and the
// same trans flags.
#include <climits>
#include <string>

#include "backend/cuda/cuda_kernels.cuh"
#include "core/error.hpp"

namespace tl::cuda {

namespace {

cublasOperation_t cublas_op(Trans t) { return t == Trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N; }

std::string dims(std::int64_t r, std::int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }

bool fits_int(std::int64_t v) { return v >= 0 && v <= INT_MAX; }

}  // namespace

void gemm_row_major(const Context& ctx, const RowMajorGemm& g, const char* op) {
    if (g.M == 0 || g.N == 0 || g.count == 0) return;
    TL_ASSERT(g.K > 0, std::string("[") + op + "] gemm_row_major needs K > 0");
    TL_ASSERT(fits_int(g.M) && fits_int(g.N) && fits_int(g.K) && fits_int(g.a.ld) && fits_int(g.b.ld) &&
                  fits_int(g.c.ld) && fits_int(g.count),
              std::string("[") + op + "] a GEMM dimension exceeds cuBLAS's 32-bit int");
    const GemmMath& math = gemm_math(ctx.precision);
    const int m = int(g.N), n = int(g.M), k = int(g.K);
    const int ld_first = int(g.b.ld), ld_second = int(g.a.ld), ldc = int(g.c.ld);
    if (g.count == 1) {
        TL_CUBLAS_CHECK_OP(
            op, cublasGemmEx(ctx.blas, cublas_op(g.b.trans), cublas_op(g.a.trans), m, n, k, &g.alpha,
                             g.b.data, math.operand, ld_first, g.a.data, math.operand, ld_second, &g.beta,
                             g.c.data, CUDA_R_32F, ldc, math.compute, CUBLAS_GEMM_DEFAULT));
        return;
    }
    TL_CUBLAS_CHECK_OP(
        op, cublasGemmStridedBatchedEx(ctx.blas, cublas_op(g.b.trans), cublas_op(g.a.trans), m, n, k,
                                       &g.alpha, g.b.data, math.operand, ld_first, g.b.stride, g.a.data,
                                       math.operand, ld_second, g.a.stride, &g.beta, g.c.data, CUDA_R_32F,
                                       ldc, g.c.stride, int(g.count), math.compute, CUBLAS_GEMM_DEFAULT));
}

namespace {

// C (M, N) = alpha op(A) op(B) + beta C, with A and B already in the operand format.
void gemm_operands(const Context& ctx, MatView c, std::int64_t K, const GemmIn& a, const GemmIn& b,
                   float alpha, float beta, const char* op) {
    if (K == 0) {  // an empty sum: C = beta C, as the reference gives
        scale_matrix(c, beta, op);
        return;
    }
    gemm_row_major(ctx, {c.rows, c.cols, K, a, b, {c.data, c.ld, 0}, alpha, beta, 1}, op);
}

}  // namespace

// C (M, N) = alpha op(A) op(B) + beta C.
void gemm(const Context& ctx, const GemmArgs<float>& g) {
    const bool ta = g.trans_a == Trans::yes, tb = g.trans_b == Trans::yes;
    const std::int64_t M = ta ? g.a.cols : g.a.rows, K = ta ? g.a.rows : g.a.cols;
    const std::int64_t Kb = tb ? g.b.cols : g.b.rows, N = tb ? g.b.rows : g.b.cols;
    if (K != Kb || g.c.rows != M || g.c.cols != N)
        throw Error("[cuda gemm] shapes do not chain: op(A) " + dims(M, K) + ", op(B) " + dims(Kb, N) +
                    ", C " + dims(g.c.rows, g.c.cols));
    TL_ASSERT(g.a.ld >= g.a.cols && g.b.ld >= g.b.cols && g.c.ld >= g.c.cols,
              "[cuda gemm] a row stride (ld) is smaller than its row");
    if (K == 0 || M == 0 || N == 0) {  // nothing to convert; C = beta C (or empty)
        gemm_operands(ctx, g.c, 0, {}, {}, g.alpha, g.beta, "gemm");
        return;
    }
    const OperandMat a = gemm_operand(ctx, g.a, 0, "gemm"), b = gemm_operand(ctx, g.b, 1, "gemm");
    gemm_operands(ctx, g.c, K, a.in(0, 0, g.trans_a), b.in(0, 0, g.trans_b), g.alpha, g.beta, "gemm");
}

// -----------------------------------------------------------------------------------------------------------
// linear (HF Conv1D layout): out (N, OC) = x (N, C) W (C, OC) + b.   Overwrites out. The bias is added in
// FP32 after the GEMM, whatever the GEMM precision.
void linear_forward(const Context& ctx, const LinearArgs<float>& a) {
    if (a.x.cols != a.w.rows || a.out.rows != a.x.rows || a.out.cols != a.w.cols ||
        (a.b.data && a.b.n != a.w.cols))
        throw Error("[cuda linear_forward] shapes: x " + dims(a.x.rows, a.x.cols) + ", W " +
                    dims(a.w.rows, a.w.cols) + ", b " + std::to_string(a.b.n) + ", out " +
                    dims(a.out.rows, a.out.cols));
    gemm(ctx, {a.out, a.x, a.w, Trans::no, Trans::no, 1.0f, 0.0f});
    if (a.b.data) add_bias(a.out, a.b, "linear_forward");
}

// dx = dout W^T (overwrite), dW += x^T dout, db += sum_rows dout; each skipped when its pointer is null. dout
// is converted once for both GEMMs (bf16/fp16); db sums the FP32 dout.
void linear_backward(const Context& ctx, const LinearGradArgs<float>& a) {
    const std::int64_t N = a.dout.rows, OC = a.dout.cols, C = a.w.rows;
    if (a.w.cols != OC || a.x.rows != N || a.x.cols != C ||
        (a.dx.data && (a.dx.rows != N || a.dx.cols != C)) ||
        (a.dw.data && (a.dw.rows != C || a.dw.cols != OC)) || (a.db.data && a.db.n != OC))
        throw Error("[cuda linear_backward] shapes: dout " + dims(N, OC) + ", x " + dims(a.x.rows, a.x.cols) +
                    ", W " + dims(a.w.rows, a.w.cols));
    const bool is_empty = N == 0 || OC == 0 || C == 0;
    if (is_empty) {  // empty sums give dx = 0 and leave dW alone, as the reference does
        if (a.dx.data) gemm(ctx, {a.dx, a.dout, a.w, Trans::no, Trans::yes, 1.0f, 0.0f});
        if (a.dw.data) gemm(ctx, {a.dw, a.x, a.dout, Trans::yes, Trans::no, 1.0f, 1.0f});
    } else if (a.dx.data || a.dw.data) {
        const OperandMat dout = gemm_operand(ctx, a.dout, 0, "linear_backward");
        if (a.dx.data) {  // dx (N, C) = dout (N, OC) W^T (OC, C)
            const OperandMat w = gemm_operand(ctx, a.w, 1, "linear_backward");
            gemm_operands(ctx, a.dx, OC, dout.in(0, 0, Trans::no), w.in(0, 0, Trans::yes), 1.0f, 0.0f,
                          "linear_backward");
        }
        if (a.dw.data) {  // dW (C, OC) += x^T (C, N) dout (N, OC)
            const OperandMat x = gemm_operand(ctx, a.x, 1, "linear_backward");
            gemm_operands(ctx, a.dw, N, x.in(0, 0, Trans::yes), dout.in(0, 0, Trans::no), 1.0f, 1.0f,
                          "linear_backward");
        }
    }
    if (a.db.data) add_column_sums(ctx, a.db, a.dout, "linear_backward");
}

}  // namespace tl::cuda
