// The Backend interface: one method per op pass, arguments as structs of views (core/ops.hpp). The CPU backend
// (backend/cpu) and the CUDA backend implement it; a method a backend lacks throws "[cuda] <op> not implemented",
// never a silent fallback. Every buffer comes from alloc() and is counted in the backend's MemoryLedger.
#pragma once
#include <memory>
#include <string_view>

#include "core/ops.hpp"
#include "core/tensor.hpp"

namespace tl {

class Backend {
public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;
    virtual std::string name() const = 0;

    virtual Buffer alloc(std::size_t bytes, MemCategory what) = 0;
    Tensor tensor(const Shape& shape, MemCategory what);  // zero-filled float32
    virtual void fill_zero(VecView x) = 0;
    virtual void copy(VecView dst, CVecView src) = 0;
    virtual void copy_to_host(float* dst, CVecView src) = 0;
    virtual void copy_from_host(VecView dst, const float* src) = 0;
    virtual void upload_bytes(void* dst, const void* src, std::size_t bytes) = 0;  // host -> this device
    // Waits until every op queued so far has finished (a GPU runs ops asynchronously): call it before
    // stopping a timer. The CPU backend finishes each op before returning, so the default does nothing.
    virtual void synchronize() {}

    virtual void gemm(const GemmArgs<float>& a) = 0;
    virtual void embedding_forward(const EmbeddingArgs<float>& a) = 0;
    virtual void embedding_backward(const EmbeddingGradArgs<float>& a) = 0;
    virtual void layernorm_forward(const LayerNormArgs<float>& a) = 0;
    virtual void layernorm_backward(const LayerNormGradArgs<float>& a) = 0;
    virtual void linear_forward(const LinearArgs<float>& a) = 0;
    virtual void linear_backward(const LinearGradArgs<float>& a) = 0;
    virtual void attention_forward(const AttentionArgs<float>& a) = 0;
    virtual void attention_backward(const AttentionGradArgs<float>& a) = 0;
    virtual void gelu_forward(const GeluArgs<float>& a) = 0;
    virtual void gelu_backward(const GeluGradArgs<float>& a) = 0;
    virtual void add(VecView out, CVecView a, CVecView b) = 0;  // residual forward: out = a + b
    virtual void add_inplace(VecView dst, CVecView src) = 0;    // residual backward: dst += src
    virtual void cross_entropy_forward(const CrossEntropyArgs<float>& a) = 0;
    virtual void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) = 0;
    virtual double sum_squares(CVecView x) = 0;  // for the global gradient norm
    virtual void scale(VecView x, float s) = 0;  // gradient clipping
    virtual void adamw(const AdamWArgs<float>& a) = 0;
    virtual void attention_decode(const AttentionDecodeArgs<float>& a) = 0;  // one new token against a KV cache

    // Fused element-wise work. The defaults run the two ops in turn, so a backend (or a wrapper) that does not
    // fuse still computes the same thing; the CPU backend fuses them, with the same arithmetic per element.
    // lin.out = lin.x lin.w + lin.b (kept: GELU's backward reads it), then act = gelu(lin.out).
    virtual void linear_gelu_forward(const LinearArgs<float>& lin, VecView act) {
        linear_forward(lin);
        gelu_forward({act, CVecView(lin.out.data, lin.out.rows * lin.out.cols)});
    }
    // sum = a + b (the residual stream), then ln normalises it: ln.x must view `sum`.
    virtual void add_layernorm_forward(VecView sum, CVecView a, CVecView b, const LayerNormArgs<float>& ln) {
        add(sum, a, b);
        layernorm_forward(ln);
    }

    // Virtual so a wrapper (backend/timed_backend.hpp) can hand out the ledger of the backend it wraps.
    virtual MemoryLedger& ledger() { return ledger_; }
    virtual const MemoryLedger& ledger() const { return ledger_; }

protected:
    MemoryLedger ledger_;
};

struct CpuOptions {
    int threads = 0;  // 0: all cores
};

// The arithmetic of the CUDA backend's GEMMs (gemm, linear_*, attention's products); everything else, the
// master weights, gradients and optimizer state stay FP32 whatever this says. fp32: true FP32 (cuBLAS
// CUBLAS_COMPUTE_32F). tf32: FP32 operands read by the tensor cores as TF32 (10-bit mantissa), FP32
// accumulation. bf16 / fp16: the FP32 operands converted (round to nearest) to 16-bit copies, multiplied on
// the tensor cores with FP32 accumulation and an FP32 result, as autocast does. The CPU simulates bf16/fp16
// differently (backend/rounding_backend.hpp): it also rounds every op's output.
enum class GemmPrecision { fp32, tf32, bf16, fp16 };

std::string_view gemm_precision_name(GemmPrecision p);
GemmPrecision parse_gemm_precision(std::string_view name);  // tl::Error listing fp32, tf32, bf16, fp16

// How the CUDA backend runs causal attention forward: per-head cuBLAS GEMMs around a softmax kernel (in the GEMM
// precision), or one fused FP32 kernel (cuda_attention_fused.cu; heads up to 128 wide, wider ones use the GEMMs).
// Backward is the GEMM path either way.
enum class CudaAttention { gemm, fused };

struct CudaOptions {
    int device = 0;                            // which GPU (cudaSetDevice)
    GemmPrecision gemm = GemmPrecision::fp32;  // the GEMMs' arithmetic, fixed for the backend's life
    CudaAttention attention = CudaAttention::gemm;  // gemm until a GPU run has checked and timed the fused kernel
};

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& opt = {});
// Throws tl::Error saying why when the build has no CUDA or the machine has no usable GPU.
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& opt = {});

}  // namespace tl
