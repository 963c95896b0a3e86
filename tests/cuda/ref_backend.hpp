// A Backend that runs the scalar reference kernels (tl::ref) on host memory: cuda_parity's `--ref` mode puts
// it in the GPU's place, so the whole-model tolerances can be tried here, without a GPU, against a backend
// whose sums run in another order (double accumulation) than the CPU backend's — the situation the CUDA
// backend is in. Test scaffolding only; the engine's backends are in engine/backend.
#pragma once
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "backend/cpu/ref_kernels.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"

namespace tl::parity {

class RefBackend final : public Backend {
public:
    Device device() const override { return Device::cpu; }
    std::string name() const override { return "reference kernels (host)"; }
    Buffer alloc(std::size_t bytes, MemCategory what) override {
        void* p = std::malloc(bytes == 0 ? 1 : bytes);
        if (!p) throw Error("[ref] out of memory");
        return Buffer(p, bytes, what, &ledger_, &std::free);
    }
    void fill_zero(VecView x) override { std::memset(x.data, 0, sizeof(float) * std::size_t(x.n)); }
    void copy(VecView dst, CVecView src) override {
        std::memcpy(dst.data, src.data, sizeof(float) * std::size_t(src.n));
    }
    void copy_to_host(float* dst, CVecView src) override {
        std::memcpy(dst, src.data, sizeof(float) * std::size_t(src.n));
    }
    void copy_from_host(VecView dst, const float* src) override {
        std::memcpy(dst.data, src, sizeof(float) * std::size_t(dst.n));
    }
    void upload_bytes(void* dst, const void* src, std::size_t bytes) override {
        std::memcpy(dst, src, bytes);
    }

    void gemm(const GemmArgs<float>& a) override { ref::gemm(a); }
    void embedding_forward(const EmbeddingArgs<float>& a) override { ref::embedding_forward(a); }
    void embedding_backward(const EmbeddingGradArgs<float>& a) override { ref::embedding_backward(a); }
    void layernorm_forward(const LayerNormArgs<float>& a) override { ref::layernorm_forward(a); }
    void layernorm_backward(const LayerNormGradArgs<float>& a) override { ref::layernorm_backward(a); }
    void linear_forward(const LinearArgs<float>& a) override { ref::linear_forward(a); }
    void linear_backward(const LinearGradArgs<float>& a) override { ref::linear_backward(a); }
    void attention_forward(const AttentionArgs<float>& a) override { ref::attention_forward(a); }
    void attention_backward(const AttentionGradArgs<float>& a) override { ref::attention_backward(a); }
    void gelu_forward(const GeluArgs<float>& a) override { ref::gelu_forward(a); }
    void gelu_backward(const GeluGradArgs<float>& a) override { ref::gelu_backward(a); }
    void add(VecView out, CVecView a, CVecView b) override {
        for (std::int64_t i = 0; i < out.n; ++i) out[i] = a[i] + b[i];
    }
    void add_inplace(VecView dst, CVecView src) override {
        for (std::int64_t i = 0; i < dst.n; ++i) dst[i] += src[i];
    }
    void cross_entropy_forward(const CrossEntropyArgs<float>& a) override { ref::cross_entropy_forward(a); }
    void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) override {
        ref::cross_entropy_backward(a);
    }
    double sum_squares(CVecView x) override {
        double s = 0;
        for (std::int64_t i = 0; i < x.n; ++i) s += double(x[i]) * x[i];
        return s;
    }
    void scale(VecView x, float s) override {
        for (std::int64_t i = 0; i < x.n; ++i) x[i] *= s;
    }
    void adamw(const AdamWArgs<float>& a) override { ref::adamw(a); }
    void attention_decode(const AttentionDecodeArgs<float>& a) override { ref::attention_decode(a); }
};

}  // namespace tl::parity
