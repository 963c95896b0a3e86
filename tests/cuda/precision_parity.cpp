// The CUDA backend's tf32, bf16 and fp16 GEMMs (CudaOptions::gemm) against the FP32 reference kernels: gemm,
// linear forward/backward and attention forward/backward, on N(0, 1) inputs with NaN-poisoned outputs, padded
// views and a second run for bitwise equality, as op_parity.cpp does for FP32. The tolerances are the
// rounding of the operands (written next to each case, in units of the precision's u); in `--cpu` / `--ref`
// the backend under test is emulated_backend.hpp, which rounds the operands the same way on the host: a trial
// of these tolerances without a GPU. The whole-model loss curves in these precisions are in model_parity.cpp.
#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/ref_kernels.hpp"
#include "parity_harness.hpp"

namespace tl::parity {
namespace {

// ---- tolerances, in units of u --------------------------------------------------------------------------
// u: the largest relative error of one operand's conversion. bf16 (8 significant bits) and fp16 (11) are
// rounded to nearest by cuda_precision.cu: 2^-8 and 2^-11. TF32 (11 significant bits) is read by the tensor
// cores, which may truncate rather than round: 2^-10. FP32 accumulation adds ~K 2^-24, nothing next to these.
// clang-format off
struct Mixed {
    GemmPrecision p;
    double u;
};
constexpr Mixed kMixed[] = {
    {GemmPrecision::tf32, 0x1p-10},  // ~1e-3
    {GemmPrecision::bf16, 0x1p-8},   // ~4e-3
    {GemmPrecision::fp16, 0x1p-11},  // ~5e-4
};
// clang-format on

// A GEMM summing K products of N(0, 1) operands: each product carries both operands' rounding (|d| <= u
// each), so the error is a sum of K independent terms of std <= sqrt(2) u |a b|: ~1.4 u sqrt(K) (the outputs
// are ~sqrt(K)), and its max over a few thousand outputs stays below ~6 u sqrt(K). atol 8 u sqrt(K) |alpha|
// is that with room, and still fails any wrong element (off by ~sqrt(K)) by decades; rtol 2u for the largest
// outputs. For bf16 at K = 13: rtol 7.8e-3, atol 0.11 on outputs ~4.7 (about 1e-2 of the scale); for tf32:
// 2e-3 and 0.028.
Expect gemm_expect(const std::string& what, const Vf& want, double u, std::int64_t K, double alpha = 1.0) {
    return {what, want, 2 * u, 8 * u * std::sqrt(double(K)) * std::fabs(alpha)};
}

// Attention forward: S = q k^T / sqrt(hs) (hs products, scaled back to O(1)) carries ~1.4 u; softmax turns it
// into a relative error of P of a few u, and P (<= 1) is rounded again for P v: out (a convex mix of v rows)
// within a few u. The emulation shows max |err| ~3u on out: atol 12u, rtol 4u. att (<= 1): 8u relative, 4u
// absolute.
Expect attention_out_expect(const Vf& want, double u) { return {"out", want, 4 * u, 12 * u}; }
Expect attention_att_expect(const Vf& want, double u) { return {"att", want, 8 * u, 4 * u}; }
// Backward: dv = P^T dout, dP = dout v^T, the softmax Jacobian (in FP32, on the FP32 P), then dq = dS k and
// dk = dS^T q of the rounded dS. P's rows sum to 1 and dS is small, so the errors stay a few u of dqkv's O(1)
// values and grow only slowly with T: the emulation shows max |err| ~4.5u at T = 17 and 64. atol 16u, rtol
// 4u.
Expect attention_grad_expect(const Vf& want, double u) { return {"dqkv", want, 4 * u, 16 * u}; }

// FP32 column sums (db): the same tolerance as the FP32 cases (op_parity.cpp kColumnSum): no rounding
// involved.
constexpr double kColumnSumRtol = 1e-5, kColumnSumAtol = 1e-4;

std::string tag(GemmPrecision p) { return std::string(gemm_precision_name(p)) + " "; }
std::string pad_tag(std::int64_t pad) { return pad ? " ld+" + std::to_string(pad) : ""; }

void gemm_case(Suite& s, Backend& gpu, Mixed m, std::int64_t M, std::int64_t K, std::int64_t N, Trans ta,
               Trans tb, float beta, std::int64_t pad) {
    const double u = m.u;
    const std::string name = tag(m.p) + "gemm " + std::to_string(M) + "x" + std::to_string(K) + "x" +
                             std::to_string(N) + (ta == Trans::yes ? " A^T" : "") +
                             (tb == Trans::yes ? " B^T" : "") + " beta " + Suite::fmt(beta) + pad_tag(pad);
    s.run(name, [&] {
        Rng rng(51, std::uint64_t(M * 1000 + pad));
        const bool tra = ta == Trans::yes, trb = tb == Trans::yes;
        const HostMat A = input_mat(rng, tra ? K : M, tra ? M : K, pad);
        const HostMat B = input_mat(rng, trb ? N : K, trb ? K : N, pad);
        const HostMat C0 = beta == 0.0f ? poisoned_mat(M, N, pad) : start_mat(rng, M, N, pad);
        HostMat C_ref = C0;
        const float alpha = 1.3f;
        ref::gemm<float>({C_ref.view(), A.cview(), B.cview(), ta, tb, alpha, beta});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView c = d.put(C0);
            gpu.gemm({c, d.put(A), d.put(B), ta, tb, alpha, beta});
            return std::vector<Vf>{d.get(c)};
        });
        s.check(name, r1, r2, {gemm_expect("C", C_ref.v, u, K, alpha)});
    });
}

void linear_case(Suite& s, Backend& gpu, Mixed m, std::int64_t N, std::int64_t C, std::int64_t OC,
                 std::int64_t pad) {
    const std::string shape =
        " N" + std::to_string(N) + " C" + std::to_string(C) + " OC" + std::to_string(OC) + pad_tag(pad);
    const std::string p = tag(m.p);
    const double u = m.u;
    Rng rng(56, std::uint64_t(N + pad));
    const HostMat x = input_mat(rng, N, C, pad), w = input_mat(rng, C, OC, pad),
                  dout = input_mat(rng, N, OC, pad);
    const Vf b = randn(rng, OC);
    s.run(p + "linear_forward" + shape, [&] {
        HostMat out_ref = poisoned_mat(N, OC, pad);
        ref::linear_forward<float>({out_ref.view(), x.cview(), w.cview(), CVecView(b.data(), OC)});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView out = d.put(poisoned_mat(N, OC, pad));
            gpu.linear_forward({out, d.put(x), d.put(w), d.put_vec(b)});
            return std::vector<Vf>{d.get(out)};
        });
        s.check(p + "linear_forward" + shape, r1, r2, {gemm_expect("out", out_ref.v, u, C)});  // K = C
    });
    s.run(p + "linear_backward" + shape, [&] {
        Rng r(57);
        const HostMat dw0 = start_mat(r, C, OC, pad);
        const Vf db0 = randn(r, OC);
        HostMat dx_ref = poisoned_mat(N, C, pad), dw_ref = dw0;
        Vf db_ref = db0;
        ref::linear_backward<float>(
            {dx_ref.view(), dw_ref.view(), VecView(db_ref.data(), OC), dout.cview(), x.cview(), w.cview()});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView dx = d.put(poisoned_mat(N, C, pad)), dw = d.put(dw0);
            const VecView db = d.put_vec(db0);
            gpu.linear_backward({dx, dw, db, d.put(dout), d.put(x), d.put(w)});
            return std::vector<Vf>{d.get(dx), d.get(dw), d.get(db)};
        });
        s.check(p + "linear_backward" + shape, r1, r2,
                {gemm_expect("dx", dx_ref.v, u, OC),  // K = OC
                 gemm_expect("dW", dw_ref.v, u, N),   // K = N
                 {"db", db_ref, kColumnSumRtol, kColumnSumAtol}});
    });
}

void attention_case(Suite& s, Backend& gpu, Mixed m, std::int64_t B, std::int64_t T, std::int64_t H,
                    std::int64_t C, std::int64_t pad) {
    const std::string shape = " B" + std::to_string(B) + " T" + std::to_string(T) + " H" + std::to_string(H) +
                              " C" + std::to_string(C) + pad_tag(pad);
    const std::string p = tag(m.p);
    const double u = m.u;
    Rng rng(58, std::uint64_t(B * T * H + pad));
    const std::int64_t N = B * T, A = B * H * T * T;
    const HostMat qkv = input_mat(rng, N, 3 * C, pad), dout = input_mat(rng, N, C, pad);
    HostMat out_ref = poisoned_mat(N, C, pad);
    Vf att_ref(std::size_t(A), kNaN);
    ref::attention_forward<float>({out_ref.view(), att_ref.data(), qkv.cview(), B, T, H});
    s.run(p + "attention_forward" + shape, [&] {
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView out = d.put(poisoned_mat(N, C, pad));
            float* att = d.put(Vf(std::size_t(A), kNaN));
            gpu.attention_forward({out, att, d.put(qkv), B, T, H});
            return std::vector<Vf>{d.get(out), d.get(att, std::size_t(A))};
        });
        s.check(p + "attention_forward" + shape, r1, r2,
                {attention_out_expect(out_ref.v, u), attention_att_expect(att_ref, u)});
    });
    s.run(p + "attention_backward" + shape, [&] {
        HostMat dqkv_ref = poisoned_mat(N, 3 * C, pad);
        Vf datt_ref(std::size_t(A), kNaN);
        ref::attention_backward<float>(
            {dqkv_ref.view(), datt_ref.data(), dout.cview(), qkv.cview(), att_ref.data(), B, T, H});
        const auto [r1, r2] = twice([&] {
            DeviceArrays d(gpu);
            const MatView dqkv = d.put(poisoned_mat(N, 3 * C, pad));
            float* datt = d.put(Vf(std::size_t(A), kNaN));
            gpu.attention_backward({dqkv, datt, d.put(dout), d.put(qkv), d.put(att_ref), B, T, H});
            return std::vector<Vf>{d.get(dqkv)};
        });
        s.check(p + "attention_backward" + shape, r1, r2, {attention_grad_expect(dqkv_ref.v, u)});
    });
}

void precision_op_cases(Suite& s, Backend& gpu, Mixed m) {
    for (const Trans ta : {Trans::no, Trans::yes})
        for (const Trans tb : {Trans::no, Trans::yes}) {
            gemm_case(s, gpu, m, 7, 13, 11, ta, tb, 0.0f, 0);
            gemm_case(s, gpu, m, 7, 13, 11, ta, tb, 0.5f, 3);
        }
    gemm_case(s, gpu, m, 65, 300, 67, Trans::no, Trans::yes, 0.0f, 0);  // K = 300: the bound grows as sqrt(K)
    gemm_case(s, gpu, m, 65, 300, 67, Trans::yes, Trans::no, 1.0f, 0);
    for (const std::int64_t pad : {0, 3}) linear_case(s, gpu, m, 7, 13, 11, pad);
    linear_case(s, gpu, m, 300, 70, 90, 0);
    attention_case(s, gpu, m, 3, 17, 3, 24, 3);
    attention_case(s, gpu, m, 2, 64, 4, 64, 0);
}

}  // namespace

void run_precision_op_cases(Suite& s, const MakeBackend& make) {
    for (const Mixed& m : kMixed) {
        std::unique_ptr<Backend> gpu;
        s.run(tag(m.p) + "backend", [&] { gpu = make(m.p); });
        if (gpu) precision_op_cases(s, *gpu, m);
    }
}

}  // namespace tl::parity
