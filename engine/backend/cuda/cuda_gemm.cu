// GEMM and linear layers on cuBLAS (FP32 SGEMM, no TF32). Same contracts as ref::gemm / ref::linear_* in
// backend/cpu/ref_kernels.cpp; the bias and bias-gradient kernels are in cuda_kernels.cu. Attention's
// per-head GEMMs go through gemm_row_major too (cuda_attention.cu).
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

void gemm_row_major(cublasHandle_t blas, const RowMajorGemm& g, const char* op) {
    if (g.M == 0 || g.N == 0 || g.count == 0) return;
    TL_ASSERT(g.K > 0, std::string("[") + op + "] gemm_row_major needs K > 0");
    TL_ASSERT(fits_int(g.M) && fits_int(g.N) && fits_int(g.K) && fits_int(g.a.ld) && fits_int(g.b.ld) &&
                  fits_int(g.c.ld) && fits_int(g.count),
              std::string("[") + op + "] a GEMM dimension exceeds cuBLAS's 32-bit int");
    const int m = int(g.N), n = int(g.M), k = int(g.K);
    const int ld_first = int(g.b.ld), ld_second = int(g.a.ld), ldc = int(g.c.ld);
    if (g.count == 1) {
        TL_CUBLAS_CHECK_OP(
            op, cublasSgemm(blas, cublas_op(g.b.trans), cublas_op(g.a.trans), m, n, k, &g.alpha, g.b.data,
                            ld_first, g.a.data, ld_second, &g.beta, g.c.data, ldc));
        return;
    }
    TL_CUBLAS_CHECK_OP(
        op, cublasSgemmStridedBatched(blas, cublas_op(g.b.trans), cublas_op(g.a.trans), m, n, k, &g.alpha,
                                      g.b.data, ld_first, g.b.stride, g.a.data, ld_second, g.a.stride,
                                      &g.beta, g.c.data, ldc, g.c.stride, int(g.count)));
}

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
    if (K == 0) {  // an empty sum: C = beta C, as the reference gives
        scale_matrix(g.c, g.beta, "gemm");
        return;
    }
    gemm_row_major(ctx.blas,
                   {M,
                    N,
                    K,
                    {g.a.data, g.a.ld, 0, g.trans_a},
                    {g.b.data, g.b.ld, 0, g.trans_b},
                    {g.c.data, g.c.ld, 0},
                    g.alpha,
                    g.beta,
                    1},
                   "gemm");
}

// -----------------------------------------------------------------------------------------------------------
// linear (HF Conv1D layout): out (N, OC) = x (N, C) W (C, OC) + b.   Overwrites out.
void linear_forward(const Context& ctx, const LinearArgs<float>& a) {
    if (a.x.cols != a.w.rows || a.out.rows != a.x.rows || a.out.cols != a.w.cols ||
        (a.b.data && a.b.n != a.w.cols))
        throw Error("[cuda linear_forward] shapes: x " + dims(a.x.rows, a.x.cols) + ", W " +
                    dims(a.w.rows, a.w.cols) + ", b " + std::to_string(a.b.n) + ", out " +
                    dims(a.out.rows, a.out.cols));
    gemm(ctx, {a.out, a.x, a.w, Trans::no, Trans::no, 1.0f, 0.0f});
    if (a.b.data) add_bias(a.out, a.b, "linear_forward");
}

// dx = dout W^T (overwrite), dW += x^T dout, db += sum_rows dout; each skipped when its pointer is null.
void linear_backward(const Context& ctx, const LinearGradArgs<float>& a) {
    const std::int64_t N = a.dout.rows, OC = a.dout.cols, C = a.w.rows;
    if (a.w.cols != OC || a.x.rows != N || a.x.cols != C ||
        (a.dx.data && (a.dx.rows != N || a.dx.cols != C)) ||
        (a.dw.data && (a.dw.rows != C || a.dw.cols != OC)) || (a.db.data && a.db.n != OC))
        throw Error("[cuda linear_backward] shapes: dout " + dims(N, OC) + ", x " + dims(a.x.rows, a.x.cols) +
                    ", W " + dims(a.w.rows, a.w.cols));
    if (a.dx.data) gemm(ctx, {a.dx, a.dout, a.w, Trans::no, Trans::yes, 1.0f, 0.0f});
    if (a.dw.data) gemm(ctx, {a.dw, a.x, a.dout, Trans::yes, Trans::no, 1.0f, 1.0f});
    if (a.db.data) add_column_sums(ctx, a.db, a.dout, "linear_backward");
}

}  // namespace tl::cuda
