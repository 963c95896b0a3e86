// Every op of the CUDA backend against the scalar reference kernels (tl::ref, the specification), forward and
// backward, on fresh random inputs with odd shapes (N=7, C=13, OC=11; attention B=3, T=17, H=3, C=24; V=257)
// plus a few larger shapes that cross the kernels' tile and chunk sizes, and row-padded views (ld = cols + 3:
// input padding NaN, output padding a sentinel that must survive). Outputs are NaN-poisoned before each call;
// accumulating outputs start from the same random values on both sides. Each case runs twice on the GPU: the
// two runs must be bitwise equal (determinism). The whole-model checks are in model_parity.cpp.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/ref_kernels.hpp"
#include "parity_harness.hpp"

namespace tl::parity {
namespace {

// ---- FP32 tolerances --------------------------------------------------------------------------------------
// The reference accumulates in double and rounds once; the GPU computes in float in its own order (warp
// trees, cuBLAS tiles, FMA contraction). Inputs are N(0, 1) unless a case says otherwise, so outputs are O(1)
// and an absolute floor covers values that cancel to near zero, whose relative error means nothing.
struct Tol {
    double rtol, atol;
};
// Same float operations in the same order as the reference (adds, the embedding scatter): bit-identical.
constexpr Tol kExact{0.0, 0.0};
// GELU forward: a few ulp relative (the kernel uses 0.5 (1 + tanh u) = sigmoid(2u), which keeps its relative
// accuracy where 1 + tanh u cancels); 1e-6 floor for values near zero.
constexpr Tol kGeluForward{1e-5, 1e-6};
// GELU backward: dy/dx crosses zero near x = -0.75, where its two terms (~0.2 each) cancel, leaving a few ulp
// of 0.2 times |dout| (up to ~4) as absolute error: a 5e-6 floor.
constexpr Tol kGeluBackward{1e-5, 5e-6};
// Reductions along a row (layernorm over C <= 100, softmax and cross-entropy over V <= 1000) in float warp
// trees: |err| ~ sqrt(C) ulp of the row's scale, 1e-5 relative with a 1e-5 floor for outputs near zero.
constexpr Tol kRow{1e-5, 1e-5};
// cuBLAS SGEMM with K <= 24: a different summation order and FMA; worst case |err| <= K u sum|a b| ~ 7e-6.
constexpr Tol kGemm{1e-5, 1e-5};
// cuBLAS with K up to 300: the bound grows with K, and sums of 300 products of N(0, 1) values (~17) carry up
// to ~5e-5 absolute error between two float GEMMs (seen between the CPU backend and the reference): 4x room.
constexpr Tol kGemmLarge{1e-5, 2e-4};
// Column sums over N <= 1200 rows (dbias, dgamma, dbeta): the reference itself adds N floats in row order,
// the GPU in 64-row chunks; both carry ~u sqrt(sum of partial sums^2) ~ 1e-5 absolute, whatever the final
// value.
constexpr Tol kColumnSum{1e-5, 1e-4};
// Attention backward chains two GEMMs through the softmax Jacobian P (dP - rowsum(dP P)), whose subtraction
// cancels: one decade looser than a single GEMM.
constexpr Tol kAttentionBackward{1e-4, 1e-5};

Expect expect(const std::string& what, const Vf& want, Tol t) { return {what, want, t.rtol, t.atol}; }

std::string pad_tag(std::int64_t pad) { return pad ? " ld+" + std::to_string(pad) : ""; }

// ---- gemm -------------------------------------------------------------------------------------------------
void gemm_case(Suite& s, Backend& gpu, std::int64_t M, std::int64_t K, std::int64_t N, Trans ta, Trans tb,
               float beta, std::int64_t pad, Tol tol) {
    const std::string name = "gemm " + std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N) +
                             (ta == Trans::yes ? " A^T" : "") + (tb == Trans::yes ? " B^T" : "") + " beta " +
                             Suite::fmt(beta) + pad_tag(pad);
    s.run(name, [&] {
        Rng rng(21, std::uint64_t(M * 1000 + pad));
        const bool tra = ta == Trans::yes, trb = tb == Trans::yes;
        const HostMat A = input_mat(rng, tra ? K : M, tra ? M : K, pad);
        const HostMat B = input_mat(rng, trb ? N : K, trb ? K : N, pad);
        const HostMat C0 = beta == 0.0f ? poisoned_mat(M, N, pad) : start_mat(rng, M, N, pad);
        HostMat C_ref = C0;
        ref::gemm<float>({C_ref.view(), A.cview(), B.cview(), ta, tb, 1.3f, beta});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView c = d.put(C0);
            gpu.gemm({c, d.put(A), d.put(B), ta, tb, 1.3f, beta});
            return std::vector<Vf>{d.get(c)};
        });
        s.check(name, r1, r2, {expect("C", C_ref.v, tol)});
    });
}

void gemm_cases(Suite& s, Backend& gpu) {
    for (const std::int64_t pad : {0, 3})
        for (const Trans ta : {Trans::no, Trans::yes})
            for (const Trans tb : {Trans::no, Trans::yes})
                for (const float beta : {0.0f, 1.0f, 0.5f})
                    gemm_case(s, gpu, 7, 13, 11, ta, tb, beta, pad, kGemm);
    gemm_case(s, gpu, 65, 300, 67, Trans::no, Trans::yes, 0.0f, 0, kGemmLarge);
    gemm_case(s, gpu, 65, 300, 67, Trans::yes, Trans::no, 1.0f, 0, kGemmLarge);
}

// ---- embedding --------------------------------------------------------------------------------------------
void embedding_case(Suite& s, Backend& gpu, std::int64_t B, std::int64_t T, std::int64_t C, std::int64_t V,
                    std::int64_t maxT, std::int64_t pos0, std::int64_t pad) {
    const std::string shape = " B" + std::to_string(B) + " T" + std::to_string(T) + " C" + std::to_string(C) +
                              " V" + std::to_string(V) + " pos0 " + std::to_string(pos0) + pad_tag(pad);
    Rng rng(23, std::uint64_t(B * T + pad));
    const std::int64_t N = B * T;
    const auto tokens = random_ids(rng, N, V);  // more draws than ids: repeats
    const HostMat wte = input_mat(rng, V, C, pad), wpe = input_mat(rng, maxT, C, pad);
    const HostMat dout = input_mat(rng, N, C, pad);
    s.run("embedding_forward" + shape, [&] {
        HostMat out_ref = poisoned_mat(N, C, pad);
        ref::embedding_forward<float>({out_ref.view(), tokens.data(), wte.cview(), wpe.cview(), B, T, pos0});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView out = d.put(poisoned_mat(N, C, pad));
            gpu.embedding_forward({out, d.put_ids(tokens), d.put(wte), d.put(wpe), B, T, pos0});
            return std::vector<Vf>{d.get(out)};
        });
        s.check("embedding_forward" + shape, r1, r2, {expect("out", out_ref.v, kExact)});
    });
    s.run("embedding_backward" + shape, [&] {
        Rng r(24);
        const HostMat dwte0 = start_mat(r, V, C, pad), dwpe0 = start_mat(r, maxT, C, pad);
        HostMat dwte_ref = dwte0, dwpe_ref = dwpe0;
        ref::embedding_backward<float>(
            {dwte_ref.view(), dwpe_ref.view(), dout.cview(), tokens.data(), B, T, pos0});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView dwte = d.put(dwte0), dwpe = d.put(dwpe0);
            gpu.embedding_backward({dwte, dwpe, d.put(dout), d.put_ids(tokens), B, T, pos0});
            return std::vector<Vf>{d.get(dwte), d.get(dwpe)};
        });
        // Exact: the GPU adds each (id, channel)'s rows in increasing n, as the reference does.
        s.check("embedding_backward" + shape, r1, r2,
                {expect("dwte", dwte_ref.v, kExact), expect("dwpe", dwpe_ref.v, kExact)});
    });
}

// ---- layernorm --------------------------------------------------------------------------------------------
void layernorm_case(Suite& s, Backend& gpu, std::int64_t N, std::int64_t C, std::int64_t pad) {
    const std::string shape = " N" + std::to_string(N) + " C" + std::to_string(C) + pad_tag(pad);
    Rng rng(25, std::uint64_t(N * 100 + C + pad));
    const HostMat x = input_mat(rng, N, C, pad, 2.0f, 0.7f), dout = input_mat(rng, N, C, pad);
    const Vf gamma = randn(rng, C), beta = randn(rng, C);
    HostMat out_ref = poisoned_mat(N, C, pad);
    Vf mean_ref(std::size_t(N), kNaN), rstd_ref(std::size_t(N), kNaN);
    ref::layernorm_forward<float>({out_ref.view(), VecView(mean_ref.data(), N), VecView(rstd_ref.data(), N),
                                   x.cview(), CVecView(gamma.data(), C), CVecView(beta.data(), C), 1e-5f});
    s.run("layernorm_forward" + shape, [&] {
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView out = d.put(poisoned_mat(N, C, pad));
            const VecView mean = d.put_vec(Vf(std::size_t(N), kNaN)),
                          rstd = d.put_vec(Vf(std::size_t(N), kNaN));
            gpu.layernorm_forward({out, mean, rstd, d.put(x), d.put_vec(gamma), d.put_vec(beta), 1e-5f});
            return std::vector<Vf>{d.get(out), d.get(mean), d.get(rstd)};
        });
        s.check(
            "layernorm_forward" + shape, r1, r2,
            {expect("out", out_ref.v, kRow), expect("mean", mean_ref, kRow), expect("rstd", rstd_ref, kRow)});
    });
    // Backward, once with both parameter grads and once with dgamma null (a frozen weight): skipped, not
    // written.
    for (const bool has_dgamma : {true, false}) {
        const std::string name = "layernorm_backward" + shape + (has_dgamma ? "" : " (no dgamma)");
        s.run(name, [&] {
            const Vf dg0 = randn(rng, C), db0 = randn(rng, C);
            HostMat dx_ref = poisoned_mat(N, C, pad);
            Vf dg_ref = dg0, db_ref = db0;
            ref::layernorm_backward<float>({dx_ref.view(), has_dgamma ? VecView(dg_ref.data(), C) : VecView(),
                                            VecView(db_ref.data(), C), dout.cview(), x.cview(),
                                            CVecView(mean_ref.data(), N), CVecView(rstd_ref.data(), N),
                                            CVecView(gamma.data(), C)});
            const auto [r1, r2] = twice([&] {
                DeviceArrays d(gpu);
                const MatView dx = d.put(poisoned_mat(N, C, pad));
                const VecView dg = d.put_vec(dg0), db = d.put_vec(db0);
                gpu.layernorm_backward({dx, has_dgamma ? dg : VecView(), db, d.put(dout), d.put(x),
                                        d.put_vec(mean_ref), d.put_vec(rstd_ref), d.put_vec(gamma)});
                return std::vector<Vf>{d.get(dx), d.get(dg), d.get(db)};
            });
            s.check(name, r1, r2,
                    {expect("dx", dx_ref.v, kRow), expect("dgamma", dg_ref, kColumnSum),
                     expect("dbeta", db_ref, kColumnSum)});
        });
    }
}

// ---- linear -----------------------------------------------------------------------------------------------
void linear_case(Suite& s, Backend& gpu, std::int64_t N, std::int64_t C, std::int64_t OC, std::int64_t pad) {
    const std::string shape =
        " N" + std::to_string(N) + " C" + std::to_string(C) + " OC" + std::to_string(OC) + pad_tag(pad);
    const bool is_large = N > 100;
    Rng rng(26, std::uint64_t(N + pad));
    const HostMat x = input_mat(rng, N, C, pad), w = input_mat(rng, C, OC, pad),
                  dout = input_mat(rng, N, OC, pad);
    const Vf b = randn(rng, OC);
    for (const bool has_bias : {true, false}) {
        const std::string name = "linear_forward" + shape + (has_bias ? "" : " (no bias)");
        s.run(name, [&] {
            HostMat out_ref = poisoned_mat(N, OC, pad);
            ref::linear_forward<float>(
                {out_ref.view(), x.cview(), w.cview(), has_bias ? CVecView(b.data(), OC) : CVecView()});
            const auto [r1, r2] = twice([&] {
                DeviceArrays d(gpu);
                const MatView out = d.put(poisoned_mat(N, OC, pad));
                gpu.linear_forward({out, d.put(x), d.put(w), has_bias ? CVecView(d.put_vec(b)) : CVecView()});
                return std::vector<Vf>{d.get(out)};
            });
            s.check(name, r1, r2, {expect("out", out_ref.v, is_large ? kGemmLarge : kGemm)});
        });
    }
    // Which of dx, dW, db are asked for: all, dx only (frozen layer), dW only. Those not asked for stay
    // untouched.
    struct Which {
        const char* tag;
        bool dx, dw, db;
    };
    for (const Which wh : {Which{"", true, true, true}, Which{" (dx only)", true, false, false},
                           Which{" (dW only)", false, true, false}}) {
        const std::string name = "linear_backward" + shape + wh.tag;
        s.run(name, [&] {
            Rng r(27);
            const HostMat dw0 = start_mat(r, C, OC, pad);
            const Vf db0 = randn(r, OC);
            HostMat dx_ref = poisoned_mat(N, C, pad), dw_ref = dw0;
            Vf db_ref = db0;
            ref::linear_backward<float>({wh.dx ? dx_ref.view() : MatView(), wh.dw ? dw_ref.view() : MatView(),
                                         wh.db ? VecView(db_ref.data(), OC) : VecView(), dout.cview(),
                                         x.cview(), w.cview()});
            const auto [r1, r2] = twice([&] {
                DeviceArrays d(gpu);
                const MatView dx = d.put(poisoned_mat(N, C, pad)), dw = d.put(dw0);
                const VecView db = d.put_vec(db0);
                gpu.linear_backward({wh.dx ? dx : MatView(), wh.dw ? dw : MatView(), wh.db ? db : VecView(),
                                     d.put(dout), d.put(x), d.put(w)});
                return std::vector<Vf>{d.get(dx), d.get(dw), d.get(db)};
            });
            s.check(
                name, r1, r2,
                {expect("dx", dx_ref.v, is_large ? kGemmLarge : kGemm),
                 expect("dW", dw_ref.v, is_large ? kGemmLarge : kGemm), expect("db", db_ref, kColumnSum)});
        });
    }
}

// ---- attention --------------------------------------------------------------------------------------------
void attention_case(Suite& s, Backend& gpu, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t C,
                    std::int64_t pad, const std::string& label = "") {
    const std::string shape = " B" + std::to_string(B) + " T" + std::to_string(T) + " H" + std::to_string(H) +
                              " C" + std::to_string(C) + pad_tag(pad) + label;
    Rng rng(28, std::uint64_t(B * T * H + pad));
    const std::int64_t N = B * T, A = B * H * T * T;
    const HostMat qkv = input_mat(rng, N, 3 * C, pad), dout = input_mat(rng, N, C, pad);
    HostMat out_ref = poisoned_mat(N, C, pad);
    Vf att_ref(std::size_t(A), kNaN);
    ref::attention_forward<float>({out_ref.view(), att_ref.data(), qkv.cview(), B, T, H});
    s.run("attention_forward" + shape, [&] {
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView out = d.put(poisoned_mat(N, C, pad));
            float* att = d.put(Vf(std::size_t(A), kNaN));
            gpu.attention_forward({out, att, d.put(qkv), B, T, H});
            return std::vector<Vf>{d.get(out), d.get(att, std::size_t(A))};
        });
        // att includes the zeros above the diagonal, which must be written (the buffer starts as NaN).
        s.check("attention_forward" + shape, r1, r2,
                {expect("out", out_ref.v, kGemm), expect("att", att_ref, Tol{1e-5, 1e-6})});
    });
    s.run("attention_backward" + shape, [&] {
        HostMat dqkv_ref = poisoned_mat(N, 3 * C, pad);
        Vf datt_ref(std::size_t(A), kNaN);
        ref::attention_backward<float>(
            {dqkv_ref.view(), datt_ref.data(), dout.cview(), qkv.cview(), att_ref.data(), B, T, H});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView dqkv = d.put(poisoned_mat(N, 3 * C, pad));
            float* datt = d.put(Vf(std::size_t(A), kNaN));  // scratch: its contents are not compared
            gpu.attention_backward({dqkv, datt, d.put(dout), d.put(qkv), d.put(att_ref), B, T, H});
            return std::vector<Vf>{d.get(dqkv)};
        });
        s.check("attention_backward" + shape, r1, r2, {expect("dqkv", dqkv_ref.v, kAttentionBackward)});
    });
}

void attention_decode_case(Suite& s, Backend& gpu, std::int64_t H, std::int64_t C, std::int64_t len,
                           std::int64_t pad) {
    const std::string name = "attention_decode H" + std::to_string(H) + " C" + std::to_string(C) + " len " +
                             std::to_string(len) + pad_tag(pad);
    s.run(name, [&] {
        Rng rng(29, std::uint64_t(len + pad));
        const Vf q = randn(rng, C);
        const HostMat k = input_mat(rng, len, C, pad), v = input_mat(rng, len, C, pad);
        Vf out_ref(std::size_t(C), kNaN);
        ref::attention_decode<float>(
            {VecView(out_ref.data(), C), CVecView(q.data(), C), k.cview(), v.cview(), H});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const VecView out = d.put_vec(Vf(std::size_t(C), kNaN));
            gpu.attention_decode({out, d.put_vec(q), d.put(k), d.put(v), H});
            return std::vector<Vf>{d.get(out)};
        });
        s.check(name, r1, r2, {expect("out", out_ref, kGemm)});
    });
}

// ---- gelu, residual adds, scale ---------------------------------------------------------------------------
void elementwise_cases(Suite& s, Backend& gpu) {
    s.run("gelu_forward/backward n1001", [&] {
        Rng rng(30);
        const std::int64_t n = 1001;
        const Vf x = randn(rng, n, 3.0f), dout = randn(rng, n);
        Vf y_ref(std::size_t(n), kNaN), dx_ref(std::size_t(n), kNaN);
        ref::gelu_forward<float>({VecView(y_ref.data(), n), CVecView(x.data(), n)});
        ref::gelu_backward<float>(
            {VecView(dx_ref.data(), n), CVecView(dout.data(), n), CVecView(x.data(), n)});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const VecView y = d.put_vec(Vf(std::size_t(n), kNaN)), dx = d.put_vec(Vf(std::size_t(n), kNaN));
            const VecView xd = d.put_vec(x);
            gpu.gelu_forward({y, xd});
            gpu.gelu_backward({dx, d.put_vec(dout), xd});
            return std::vector<Vf>{d.get(y), d.get(dx)};
        });
        s.check("gelu_forward/backward n1001", r1, r2,
                {expect("y", y_ref, kGeluForward), expect("dx", dx_ref, kGeluBackward)});
    });
    s.run("add, add_inplace, scale n49159", [&] {
        Rng rng(31);
        const std::int64_t n = 3 * (1 << 14) + 7;
        const Vf a = randn(rng, n), b = randn(rng, n);
        Vf sum(static_cast<std::size_t>(n)), scaled(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = a[i] + b[i], scaled[i] = a[i] * 0.37f;
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const VecView out = d.put_vec(Vf(std::size_t(n), kNaN)), dst = d.put_vec(a), sc = d.put_vec(a);
            const VecView bd = d.put_vec(b);
            gpu.add(out, d.put_vec(a), bd);
            gpu.add_inplace(dst, bd);
            gpu.scale(sc, 0.37f);
            return std::vector<Vf>{d.get(out), d.get(dst), d.get(sc)};
        });
        s.check("add, add_inplace, scale n49159", r1, r2,
                {expect("add", sum, kExact), expect("add_inplace", sum, kExact),
                 expect("scale", scaled, kExact)});
    });
}

// ---- cross-entropy ----------------------------------------------------------------------------------------
void cross_entropy_case(Suite& s, Backend& gpu, std::int64_t V, std::int64_t pad) {
    const std::string shape = " N7 V" + std::to_string(V) + pad_tag(pad);
    s.run("cross_entropy_forward/backward" + shape, [&] {
        Rng rng(32, std::uint64_t(V + pad));
        const std::int64_t N = 7;
        const HostMat z =
            input_mat(rng, N, V, pad, 3.0f, 50.0f);  // a large common offset: needs the max shift
        const auto y = random_ids(rng, N, V);
        const Vf w = {1.0f, 0.0f, 0.5f, 2.0f, 1.0f, 0.0f, 0.25f};  // weight 0 rows get exactly zero gradient
        const float norm = 3.5f;  // not the sum of w: other micro-batches count too
        Vf l_ref(std::size_t(N), kNaN);
        HostMat d_ref = poisoned_mat(N, V, pad);
        ref::cross_entropy_forward<float>({VecView(l_ref.data(), N), z.cview(), y.data()});
        ref::cross_entropy_backward<float>({d_ref.view(), z.cview(), y.data(), CVecView(w.data(), N), norm});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const VecView losses = d.put_vec(Vf(std::size_t(N), kNaN));
            const MatView dz = d.put(poisoned_mat(N, V, pad)), zd = d.put(z);
            const std::int32_t* yd = d.put_ids(y);
            gpu.cross_entropy_forward({losses, zd, yd});
            gpu.cross_entropy_backward({dz, zd, yd, d.put_vec(w), norm});
            return std::vector<Vf>{d.get(losses), d.get(dz)};
        });
        // Losses: logsumexp of values ~50 minus z[y]; the kernel combines in double, so ~1e-6 absolute.
        // dlogits: w/norm (p - onehot), p from expf of (z - max) - log(sum): a few ulp relative.
        s.check("cross_entropy_forward/backward" + shape, r1, r2,
                {expect("losses", l_ref, kRow), expect("dlogits", d_ref.v, Tol{1e-5, 1e-6})});
    });
}

// ---- sum_squares, adamw -----------------------------------------------------------------------------------
void reduction_and_optimizer_cases(Suite& s, Backend& gpu) {
    for (const std::int64_t n : {std::int64_t(0), std::int64_t(5), std::int64_t(5 * (1 << 14) + 3)}) {
        const std::string name = "sum_squares n" + std::to_string(n);
        s.run(name, [&] {
            Rng rng(33, std::uint64_t(n));
            const Vf a = randn(rng, n);
            double exact = 0;
            for (float x : a) exact += double(x) * double(x);
            DeviceArrays d(gpu);
            const VecView ad = d.put_vec(a);
            const double one = gpu.sum_squares(ad), two = gpu.sum_squares(ad);
            // Double partials summed in a fixed tree: ~1e-15 relative; 1e-12 leaves room for the order.
            const bool close = std::fabs(one - exact) <= 1e-12 * exact;
            s.expect_true(name, close && std::memcmp(&one, &two, sizeof one) == 0,
                          "got " + std::to_string(one) + ", exact " + std::to_string(exact) +
                              (close ? "" : " (beyond 1e-12 relative)") +
                              (std::memcmp(&one, &two, sizeof one) == 0 ? ", 2 runs bitwise equal"
                                                                        : ", NOT DETERMINISTIC"));
        });
    }
    for (const std::int64_t step : {1, 7}) {
        const std::string name = "adamw n1001 step " + std::to_string(step);
        s.run(name, [&] {
            Rng rng(34, std::uint64_t(step));
            const std::int64_t n = 1001;
            const Vf g = randn(rng, n, 0.1f), p0 = randn(rng, n);
            const Vf m0 = step == 1 ? Vf(std::size_t(n), 0.0f) : randn(rng, n, 0.01f);
            Vf v0 = step == 1 ? Vf(std::size_t(n), 0.0f) : randn(rng, n, 0.001f);
            for (auto& x : v0) x = std::fabs(x);
            Vf p_ref = p0, m_ref = m0, v_ref = v0;
            const float lr = 1e-2f, wd = 0.1f;
            ref::adamw<float>({VecView(p_ref.data(), n), VecView(m_ref.data(), n), VecView(v_ref.data(), n),
                               CVecView(g.data(), n), lr, 0.9f, 0.999f, 1e-8f, wd, step});
            const auto [r1, r2] = twice([&] {
                DeviceArrays d(gpu);
                const VecView p = d.put_vec(p0), m = d.put_vec(m0), v = d.put_vec(v0);
                gpu.adamw({p, m, v, d.put_vec(g), lr, 0.9f, 0.999f, 1e-8f, wd, step});
                Vf delta = d.get(p);
                for (std::size_t i = 0; i < delta.size(); ++i) delta[i] -= p0[i];
                return std::vector<Vf>{d.get(m), d.get(v), delta};
            });
            // Compare the update p - p0 (~lr), not p: a wrong update could hide inside p's tolerance. Each
            // delta carries p's rounding (ulp(1) ~ 1.2e-7), hence its 1e-6 floor.
            Vf d_ref(static_cast<std::size_t>(n));
            for (std::size_t i = 0; i < d_ref.size(); ++i) d_ref[i] = p_ref[i] - p0[i];
            s.check(name, r1, r2,
                    {expect("m", m_ref, Tol{1e-5, 1e-9}), expect("v", v_ref, Tol{1e-5, 1e-12}),
                     expect("p - p0", d_ref, Tol{1e-5, 1e-6})});
        });
    }
}

// ---- memory methods ---------------------------------------------------------------------------------------
void memory_cases(Suite& s, Backend& gpu) {
    s.run("memory: tensor zero-filled and counted, copies, upload_bytes", [&] {
        const std::int64_t before = gpu.ledger().current(MemCategory::activations);
        std::string problems;
        {
            Tensor t = gpu.tensor({3, 5}, MemCategory::activations);
            if (gpu.ledger().current(MemCategory::activations) != before + 15 * 4) problems += " ledger;";
            Vf back(15, kNaN);
            gpu.copy_to_host(back.data(), t.vec());
            if (back != Vf(15, 0.0f)) problems += " tensor() not zero-filled;";
            Rng rng(35);
            const Vf src = randn(rng, 15);
            gpu.copy_from_host(t.vec(), src.data());
            Tensor u = gpu.tensor({15}, MemCategory::workspace);
            gpu.copy(u.vec(), t.vec());
            gpu.copy_to_host(back.data(), u.vec());
            if (back != src) problems += " copy round trip;";
            gpu.fill_zero(u.vec());
            gpu.copy_to_host(back.data(), u.vec());
            if (back != Vf(15, 0.0f)) problems += " fill_zero;";
            const std::int32_t ids[3] = {5, -1, 256};
            gpu.upload_bytes(u.data(), ids, sizeof(ids));
            gpu.copy_to_host(back.data(), u.vec());
            if (std::memcmp(back.data(), ids, sizeof(ids)) != 0) problems += " upload_bytes;";
        }
        if (gpu.ledger().current(MemCategory::activations) != before)
            problems += " not returned to the ledger;";
        s.expect_true("memory: tensor zero-filled and counted, copies, upload_bytes", problems.empty(),
                      problems.empty() ? gpu.name() : "problems:" + problems);
    });
}

}  // namespace

// The fused attention forward (CudaOptions::attention = fused) on shapes that cross its 16-row query tiles and
// 32-key tiles and cover head widths 8..128 (wider heads fall back to the GEMM path: 160 checks that); backward
// is the GEMM path's, run on the fused forward's probabilities.
void run_fused_attention_cases(Suite& s, Backend& fused) {
    for (const std::int64_t pad : {0, 3}) attention_case(s, fused, 3, 17, 3, 24, pad, " [fused]");
    attention_case(s, fused, 2, 1, 2, 8, 0, " [fused]");
    attention_case(s, fused, 2, 64, 4, 64, 0, " [fused]");
    attention_case(s, fused, 1, 100, 2, 256, 0, " [fused]");  // hs 128, T not a multiple of 16 or 32
    attention_case(s, fused, 2, 33, 1, 160, 0, " [fused]");   // hs 160: the GEMM path
}

void run_op_cases(Suite& s, Backend& gpu) {
    memory_cases(s, gpu);
    gemm_cases(s, gpu);
    embedding_case(s, gpu, 2, 7, 13, 11, 9, 2, 0);
    embedding_case(s, gpu, 2, 7, 13, 11, 9, 2, 3);
    embedding_case(s, gpu, 4, 300, 40, 257, 310, 5, 0);  // > one 1024-token tile, > one 32-column tile
    for (const std::int64_t pad : {0, 3}) layernorm_case(s, gpu, 7, 13, pad);
    layernorm_case(s, gpu, 1, 13, 0);    // a decode step's single row
    layernorm_case(s, gpu, 300, 70, 0);  // several 64-row chunks and 32-column tiles
    layernorm_case(s, gpu, 5, 1000, 0);  // a row much wider than a warp
    for (const std::int64_t pad : {0, 3}) linear_case(s, gpu, 7, 13, 11, pad);
    linear_case(s, gpu, 300, 70, 90, 0);
    for (const std::int64_t pad : {0, 3}) attention_case(s, gpu, 3, 17, 3, 24, pad);
    attention_case(s, gpu, 2, 1, 2, 8, 0);    // T = 1: a single visible position
    attention_case(s, gpu, 2, 64, 4, 64, 0);  // rows longer than a warp
    for (const std::int64_t pad : {0, 3}) attention_decode_case(s, gpu, 3, 24, 17, pad);
    attention_decode_case(s, gpu, 3, 24, 1, 0);
    attention_decode_case(s, gpu, 4, 128, 200, 0);
    elementwise_cases(s, gpu);
    for (const std::int64_t V : {13, 257, 1000})
        for (const std::int64_t pad : {0, 3}) cross_entropy_case(s, gpu, V, pad);
    reduction_and_optimizer_cases(s, gpu);
}

}  // namespace tl::parity
