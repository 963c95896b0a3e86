#include "backend/cpu/cpu_gemm.hpp"

#include <omp.h>

#ifdef TL_WITH_OPENBLAS
#include <cblas.h>
#else
#include <Eigen/Core>
#endif

#include <algorithm>

#include "core/error.hpp"

namespace tl::cpu {

namespace {

// Below this many multiply-adds a second thread costs more in wake-up than it saves (a 128^3 product is ~40
// us on one core).
constexpr std::int64_t kMinParallelMacs = 128 * 128 * 128;

// A slab boundary on a multiple of 16 floats keeps each thread's slab aligned for the AVX-512 kernels.
std::int64_t slab_start(std::int64_t n, int part, int parts) {
    if (part == parts) return n;
    return std::min(n, (n * part / parts + 8) / 16 * 16);
}

#ifdef TL_WITH_OPENBLAS
// OpenBLAS's own pool is set to one thread, once: all parallelism is ours (cmake/TunelabBlas.cmake says why).
void ensure_blas_is_serial() {
    static const bool done = [] {
        openblas_set_num_threads(1);
        return true;
    }();
    (void)done;
}

void serial_sgemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                  const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                  std::int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n),
                int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
#else
// The build without OpenBLAS (TL_OPENBLAS=OFF: binaries carried to a GPU machine that lacks it): the same
// slabs through Eigen, single-threaded inside each slab.
void ensure_blas_is_serial() { Eigen::setNbThreads(1); }

void serial_sgemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                  const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                  std::int64_t ldc) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using View = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<> >;
    Eigen::Map<RowMajor, 0, Eigen::OuterStride<> > C(c, m, n, Eigen::OuterStride<>(ldc));
    const View A(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
    const View B(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
    if (beta == 0.0f)
        C.setZero();
    else if (beta != 1.0f)
        C *= beta;
    if (!ta && !tb)
        C.noalias() += alpha * (A * B);
    else if (!ta && tb)
        C.noalias() += alpha * (A * B.transpose());
    else if (ta && !tb)
        C.noalias() += alpha * (A.transpose() * B);
    else
        C.noalias() += alpha * (A.transpose() * B.transpose());
}
#endif

}  // namespace

void gemm(const GemmArgs<float>& g, int threads) { gemm(g, threads, nullptr, nullptr); }

void gemm(const GemmArgs<float>& g, int threads, GemmEpilogue epilogue, void* state) {
    const bool ta = g.trans_a == Trans::yes, tb = g.trans_b == Trans::yes;
    const std::int64_t M = ta ? g.a.cols : g.a.rows, K = ta ? g.a.rows : g.a.cols;
    const std::int64_t Kb = tb ? g.b.cols : g.b.rows, N = tb ? g.b.rows : g.b.cols;
    TL_ASSERT(K == Kb && g.c.rows == M && g.c.cols == N, "[gemm] shapes do not agree");
    if (M == 0 || N == 0) return;
    ensure_blas_is_serial();

    // One slab: rows [m0, m1) and columns [n0, n1) of c. Row m of op(a) starts at a + m*lda (or a + m when
    // transposed); column n of op(b) at b + n (or b + n*ldb when transposed).
    auto slab = [&](std::int64_t m0, std::int64_t m1, std::int64_t n0, std::int64_t n1) {
        if (m1 <= m0 || n1 <= n0) return;
        const float* a = g.a.data + (ta ? m0 : m0 * g.a.ld);
        const float* b = g.b.data + (tb ? n0 * g.b.ld : n0);
        serial_sgemm(ta, tb, m1 - m0, n1 - n0, K, g.alpha, a, g.a.ld, b, g.b.ld, g.beta,
                     g.c.data + m0 * g.c.ld + n0, g.c.ld);
        // The whole slab in one SGEMM call, as without an epilogue: cutting it into row blocks that stay in L2
        // changed OpenBLAS's kernel choice and so the last bits (measured), which would invalidate cached models.
        if (epilogue) epilogue(g, m0, m1, n0, n1, state);
    };

    const int parts = M * N * K < kMinParallelMacs ? 1 : threads;
    if (parts <= 1) {
        slab(0, M, 0, N);
        return;
    }
    const bool by_rows = M >= N;
#pragma omp parallel num_threads(parts)
    {
        const int p = omp_get_thread_num(), n = omp_get_num_threads();
        if (by_rows)
            slab(slab_start(M, p, n), slab_start(M, p + 1, n), 0, N);
        else
            slab(0, M, slab_start(N, p, n), slab_start(N, p + 1, n));
    }
}

}  // namespace tl::cpu
