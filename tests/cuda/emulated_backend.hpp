// A host Backend that stands in for the CUDA backend's tf32/bf16/fp16 GEMMs in cuda_parity's `--cpu` and
// `--ref` modes: it wraps the CPU backend (or the reference kernels) and rounds every GEMM operand, as the
// GPU's conversion does, before the wrapped FP32 op multiplies and accumulates; every other op is passed
// through in FP32. So the mixed-precision tolerances can be tried without a GPU against the same rounding the
// GPU does (bf16 and fp16: round to nearest even, as cuda_precision.cu's __float2bfloat16_rn /
// __float2half_rn; tf32: truncation, the worst the tensor cores may do). Test scaffolding only; the engine's
// backends are in engine/backend. Not the CPU's own low-precision simulation (backend/rounding_backend.hpp),
// which also rounds every op's output.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/error.hpp"
#include "formats/fast_round.hpp"

namespace tl::parity {

inline float truncate_to_tf32(float x) {  // keep 10 of the 23 mantissa bits, toward zero
    return std::isfinite(x) ? std::bit_cast<float>(std::bit_cast<std::uint32_t>(x) & 0xFFFFE000u) : x;
}
inline float keep_fp32(float x) { return x; }

// What the GPU's GEMMs read for each precision.
constexpr struct {
    GemmPrecision precision;
    float (*round)(float);
} kEmulatedOperand[] = {
    {GemmPrecision::fp32, keep_fp32},
    {GemmPrecision::tf32, truncate_to_tf32},
    {GemmPrecision::bf16, round_to_bf16},
    {GemmPrecision::fp16, round_to_fp16},
};

class EmulatedGemmBackend final : public Backend {
public:
    EmulatedGemmBackend(std::unique_ptr<Backend> inner, GemmPrecision p) : inner_(std::move(inner)), p_(p) {
        for (const auto& e : kEmulatedOperand)
            if (e.precision == p) round_ = e.round;
        TL_ASSERT(round_ != nullptr, "[emulated] unknown GEMM precision");
    }
    Device device() const override { return inner_->device(); }
    std::string name() const override {
        return inner_->name() + ", " + std::string(gemm_precision_name(p_)) + " GEMM operands emulated";
    }
    MemoryLedger& ledger() override { return inner_->ledger(); }
    const MemoryLedger& ledger() const override { return inner_->ledger(); }
    Buffer alloc(std::size_t bytes, MemCategory what) override { return inner_->alloc(bytes, what); }
    void fill_zero(VecView x) override { inner_->fill_zero(x); }
    void copy(VecView dst, CVecView src) override { inner_->copy(dst, src); }
    void copy_to_host(float* dst, CVecView src) override { inner_->copy_to_host(dst, src); }
    void copy_from_host(VecView dst, const float* src) override { inner_->copy_from_host(dst, src); }
    void upload_bytes(void* dst, const void* src, std::size_t bytes) override {
        inner_->upload_bytes(dst, src, bytes);
    }

    // ---- the GEMM ops: operands rounded (compact copies), FP32 arithmetic in the wrapped backend
    // --------------
    void gemm(const GemmArgs<float>& a) override {
        const Rounded ra(a.a, round_), rb(a.b, round_);
        inner_->gemm({a.c, ra.view(), rb.view(), a.trans_a, a.trans_b, a.alpha, a.beta});
    }
    void linear_forward(const LinearArgs<float>& a) override {
        const Rounded x(a.x, round_), w(a.w, round_);
        inner_->linear_forward({a.out, x.view(), w.view(), a.b});  // bias added in FP32
    }
    void linear_backward(const LinearGradArgs<float>& a) override {
        if (a.dx.data || a.dw.data) {
            const Rounded dout(a.dout, round_), x(a.x, round_), w(a.w, round_);
            inner_->linear_backward({a.dx, a.dw, VecView(), dout.view(), x.view(), w.view()});
        }
        if (a.db.data) inner_->linear_backward({MatView(), MatView(), a.db, a.dout, a.x, a.w});  // FP32 dout
    }
    void attention_forward(const AttentionArgs<float>& a) override;
    void attention_backward(const AttentionGradArgs<float>& a) override;

    // ---- everything else in FP32
    // ------------------------------------------------------------------------------
    void embedding_forward(const EmbeddingArgs<float>& a) override { inner_->embedding_forward(a); }
    void embedding_backward(const EmbeddingGradArgs<float>& a) override { inner_->embedding_backward(a); }
    void layernorm_forward(const LayerNormArgs<float>& a) override { inner_->layernorm_forward(a); }
    void layernorm_backward(const LayerNormGradArgs<float>& a) override { inner_->layernorm_backward(a); }
    void gelu_forward(const GeluArgs<float>& a) override { inner_->gelu_forward(a); }
    void gelu_backward(const GeluGradArgs<float>& a) override { inner_->gelu_backward(a); }
    void add(VecView out, CVecView a, CVecView b) override { inner_->add(out, a, b); }
    void add_inplace(VecView dst, CVecView src) override { inner_->add_inplace(dst, src); }
    void cross_entropy_forward(const CrossEntropyArgs<float>& a) override {
        inner_->cross_entropy_forward(a);
    }
    void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) override {
        inner_->cross_entropy_backward(a);
    }
    double sum_squares(CVecView x) override { return inner_->sum_squares(x); }
    void scale(VecView x, float s) override { inner_->scale(x, s); }
    void adamw(const AdamWArgs<float>& a) override { inner_->adamw(a); }
    void attention_decode(const AttentionDecodeArgs<float>& a) override { inner_->attention_decode(a); }

private:
    // A compact (ld = cols) rounded copy of a host matrix; padding is not read.
    struct Rounded {
        std::vector<float> v;
        std::int64_t rows, cols;
        Rounded(CMatView m, float (*round)(float))
            : v(std::size_t(m.rows * m.cols)), rows(m.rows), cols(m.cols) {
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t c = 0; c < cols; ++c) v[std::size_t(r * cols + c)] = round(m(r, c));
        }
        CMatView view() const { return {v.data(), rows, cols, cols}; }
        CMatView block(std::int64_t r, std::int64_t c, std::int64_t nr, std::int64_t nc) const {
            return {v.data() + r * cols + c, nr, nc, cols};
        }
    };

    std::unique_ptr<Backend> inner_;
    GemmPrecision p_;
    float (*round_)(float) = nullptr;
};

// As cuda_attention.cu: S = q_r k_r^T / sqrt(hs) and its FP32 softmax P (the wrapped op, on rounded qkv),
// then out = P_r v_r per (b, h) with P rounded too.
inline void EmulatedGemmBackend::attention_forward(const AttentionArgs<float>& a) {
    const Rounded qkv(a.qkv, round_);
    inner_->attention_forward({a.out, a.att, qkv.view(), a.B, a.T_, a.H});
    const std::int64_t T = a.T_, C = a.out.cols, hs = C / a.H;
    const Rounded p(CMatView(a.att, a.B * a.H * T, T, T), round_);
    for (std::int64_t b = 0; b < a.B; ++b)
        for (std::int64_t h = 0; h < a.H; ++h)
            inner_->gemm({MatView(a.out.data + b * T * a.out.ld + h * hs, T, hs, a.out.ld),
                          p.block((b * a.H + h) * T, 0, T, T), qkv.block(b * T, 2 * C + h * hs, T, hs),
                          Trans::no, Trans::no, 1.0f, 0.0f});
}

// dv = P_r^T dout_r, dP = dout_r v_r^T, dS = P (dP - rowsum(dP P)) / sqrt(hs) in FP32, dq = dS_r k_r, dk =
// dS_r^T q_r.
inline void EmulatedGemmBackend::attention_backward(const AttentionGradArgs<float>& a) {
    const std::int64_t T = a.T_, C = a.dout.cols, H = a.H, hs = C / H, TT = T * T;
    const Rounded qkv(a.qkv, round_), dout(a.dout, round_), p(CMatView(a.att, a.B * H * T, T, T), round_);
    const float scale = 1.0f / std::sqrt(float(hs));
    auto dqkv = [&](std::int64_t b, std::int64_t col) {
        return MatView(a.dqkv.data + b * T * a.dqkv.ld + col, T, hs, a.dqkv.ld);
    };
    for (std::int64_t b = 0; b < a.B; ++b)
        for (std::int64_t h = 0; h < H; ++h) {
            const std::int64_t bh = b * H + h;
            inner_->gemm({dqkv(b, 2 * C + h * hs), p.block(bh * T, 0, T, T), dout.block(b * T, h * hs, T, hs),
                          Trans::yes, Trans::no, 1.0f, 0.0f});
            inner_->gemm({MatView(a.datt + bh * TT, T, T, T), dout.block(b * T, h * hs, T, hs),
                          qkv.block(b * T, 2 * C + h * hs, T, hs), Trans::no, Trans::yes, 1.0f, 0.0f});
        }
    for (std::int64_t row = 0; row < a.B * H * T; ++row) {  // the softmax backward, FP32 as on the GPU
        const std::int64_t t = row % T;
        float* d = a.datt + row * T;
        const float* pr = a.att + row * T;
        float dot = 0.0f;
        for (std::int64_t u = 0; u <= t; ++u) dot += d[u] * pr[u];
        for (std::int64_t u = 0; u < T; ++u) d[u] = u <= t ? pr[u] * (d[u] - dot) * scale : 0.0f;
    }
    const Rounded ds(CMatView(a.datt, a.B * H * T, T, T), round_);
    for (std::int64_t b = 0; b < a.B; ++b)
        for (std::int64_t h = 0; h < H; ++h) {
            const std::int64_t bh = b * H + h;
            inner_->gemm({dqkv(b, h * hs), ds.block(bh * T, 0, T, T), qkv.block(b * T, C + h * hs, T, hs),
                          Trans::no, Trans::no, 1.0f, 0.0f});
            inner_->gemm({dqkv(b, C + h * hs), ds.block(bh * T, 0, T, T), qkv.block(b * T, h * hs, T, hs),
                          Trans::yes, Trans::no, 1.0f, 0.0f});
        }
}

}  // namespace tl::parity
