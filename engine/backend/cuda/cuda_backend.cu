// The CUDA backend: device memory through cudaMalloc (counted in the MemoryLedger), copies, the device checks
// that turn "no GPU" into a clear error, and the dispatch of every op to its kernel file (cuda_kernels.cuh
// says which). FP32 everywhere but in the GEMMs, whose arithmetic is the CudaOptions::gemm precision chosen
// when the backend is made (fp32, tf32, bf16, fp16); no silent fallback to the CPU anywhere. Everything runs
// on the legacy default stream, so ops are ordered and a copy to the host waits for the work before it.
#include <cuda_runtime.h>

#include <array>
#include <string>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.cuh"
#include "core/backend.hpp"
#include "core/error.hpp"

namespace tl {

namespace cuda {

void throw_cuda_error(const char* op, const char* call, cudaError_t err) {
    throw Error(std::string("[cuda] ") + op + ": " + call + " failed: " + cudaGetErrorName(err) + " (" +
                cudaGetErrorString(err) + ")");
}

void throw_cublas_error(const char* op, const char* call, cublasStatus_t status) {
    throw Error(std::string("[cuda] ") + op + ": " + call + " failed: " + cublasGetStatusName(status) + " (" +
                cublasGetStatusString(status) + ")");
}

}  // namespace cuda

namespace {

void free_device(void* p) { cudaFree(p); }

// The cuBLAS handle as an RAII member.
class BlasHandle {
public:
    BlasHandle() {
        TL_CUBLAS_CHECK_OP("make_cuda_backend", cublasCreate(&handle_));
        // Default math: the compute type of each cublasGemmEx call (cuda_precision.cu) alone decides whether
        // TF32 is used, so fp32 GEMMs stay true FP32 and match the CPU to ~1e-6.
        const cublasStatus_t st = cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH);
        if (st != CUBLAS_STATUS_SUCCESS) {
            cublasDestroy(handle_);
            cuda::throw_cublas_error("make_cuda_backend", "cublasSetMathMode", st);
        }
    }
    ~BlasHandle() { cublasDestroy(handle_); }
    BlasHandle(const BlasHandle&) = delete;
    BlasHandle& operator=(const BlasHandle&) = delete;
    cublasHandle_t get() const { return handle_; }

private:
    cublasHandle_t handle_ = nullptr;
};

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(const CudaOptions& opt)
        : device_(opt.device),
          scratch_(*this),
          operands_{cuda::Scratch(*this), cuda::Scratch(*this), cuda::Scratch(*this)} {
        TL_CUDA_CHECK_OP("make_cuda_backend", cudaSetDevice(device_));
        cudaDeviceProp prop{};
        TL_CUDA_CHECK_OP("make_cuda_backend", cudaGetDeviceProperties(&prop, device_));
        name_ = std::string("cuda:") + std::to_string(device_) + " (" + prop.name + "), " +
                std::string(gemm_precision_name(opt.gemm)) + " GEMMs" +
                (opt.attention == CudaAttention::fused ? ", fused attention" : "");
        blas_ = std::make_unique<BlasHandle>();
        ctx_.blas = blas_->get();
        ctx_.scratch = &scratch_;
        for (int i = 0; i < cuda::kOperandSlots; ++i) ctx_.operands[i] = &operands_[std::size_t(i)];
        ctx_.precision = opt.gemm;
        ctx_.attention = opt.attention;
        cuda::gemm_math(opt.gemm);  // an unknown value fails here, not inside the first op
    }
    Device device() const override { return Device::cuda; }
    std::string name() const override { return name_; }

    Buffer alloc(std::size_t bytes, MemCategory what) override {
        void* p = nullptr;
        const cudaError_t err = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
        if (err != cudaSuccess) {
            cudaGetLastError();  // clear the error so later calls do not report it again
            throw Error("[cuda] out of device memory allocating " + std::to_string(bytes) + " bytes for " +
                        std::string(mem_category_name(what)) + ": " + cudaGetErrorString(err));
        }
        return Buffer(p, bytes, what, &ledger_, &free_device);
    }
    void fill_zero(VecView x) override { cuda::fill_zero(x); }
    void copy(VecView dst, CVecView src) override {
        TL_ASSERT(dst.n == src.n, "[cuda copy] sizes differ");
        if (src.n == 0) return;
        TL_CUDA_CHECK_OP("copy", cudaMemcpy(dst.data, src.data, sizeof(float) * std::size_t(src.n),
                                            cudaMemcpyDeviceToDevice));
    }
    void copy_to_host(float* dst, CVecView src) override {
        if (src.n == 0) return;
        TL_CUDA_CHECK_OP("copy_to_host", cudaMemcpy(dst, src.data, sizeof(float) * std::size_t(src.n),
                                                    cudaMemcpyDeviceToHost));
    }
    void copy_from_host(VecView dst, const float* src) override {
        if (dst.n == 0) return;
        TL_CUDA_CHECK_OP("copy_from_host", cudaMemcpy(dst.data, src, sizeof(float) * std::size_t(dst.n),
                                                      cudaMemcpyHostToDevice));
    }
    void upload_bytes(void* dst, const void* src, std::size_t bytes) override {
        if (bytes == 0) return;
        TL_CUDA_CHECK_OP("upload_bytes", cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    }
    void synchronize() override { TL_CUDA_CHECK_OP("synchronize", cudaDeviceSynchronize()); }

    void gemm(const GemmArgs<float>& a) override { cuda::gemm(ctx_, a); }
    void embedding_forward(const EmbeddingArgs<float>& a) override { cuda::embedding_forward(a); }
    void embedding_backward(const EmbeddingGradArgs<float>& a) override { cuda::embedding_backward(a); }
    void layernorm_forward(const LayerNormArgs<float>& a) override { cuda::layernorm_forward(a); }
    void layernorm_backward(const LayerNormGradArgs<float>& a) override { cuda::layernorm_backward(ctx_, a); }
    void linear_forward(const LinearArgs<float>& a) override { cuda::linear_forward(ctx_, a); }
    void linear_backward(const LinearGradArgs<float>& a) override { cuda::linear_backward(ctx_, a); }
    void attention_forward(const AttentionArgs<float>& a) override { cuda::attention_forward(ctx_, a); }
    void attention_backward(const AttentionGradArgs<float>& a) override { cuda::attention_backward(ctx_, a); }
    void gelu_forward(const GeluArgs<float>& a) override { cuda::gelu_forward(a); }
    void gelu_backward(const GeluGradArgs<float>& a) override { cuda::gelu_backward(a); }
    void add(VecView out, CVecView a, CVecView b) override { cuda::add(out, a, b); }
    void add_inplace(VecView dst, CVecView src) override { cuda::add_inplace(dst, src); }
    void cross_entropy_forward(const CrossEntropyArgs<float>& a) override { cuda::cross_entropy_forward(a); }
    void cross_entropy_backward(const CrossEntropyGradArgs<float>& a) override {
        cuda::cross_entropy_backward(a);
    }
    double sum_squares(CVecView x) override { return cuda::sum_squares(ctx_, x); }
    void scale(VecView x, float s) override { cuda::scale(x, s); }
    void adamw(const AdamWArgs<float>& a) override { cuda::adamw(a); }
    void attention_decode(const AttentionDecodeArgs<float>& a) override { cuda::attention_decode(ctx_, a); }

private:
    int device_;
    std::string name_;
    cuda::Scratch scratch_;  // declared before blas_: destroyed after it, before the ledger (in Backend)
    std::array<cuda::Scratch, cuda::kOperandSlots> operands_;  // 16-bit GEMM operands (bf16, fp16)
    std::unique_ptr<BlasHandle> blas_;
    cuda::Context ctx_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& opt) {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw Error(std::string("[cuda] no usable GPU: cudaGetDeviceCount failed with ") +
                    cudaGetErrorName(err) + " \"" + cudaGetErrorString(err) +
                    "\" (no driver, or no device); use --device cpu");
    }
    if (count == 0) throw Error("[cuda] no usable GPU: the driver reports 0 devices; use --device cpu");
    if (opt.device < 0 || opt.device >= count)
        throw Error("[cuda] GPU " + std::to_string(opt.device) + " asked for, but the driver reports " +
                    std::to_string(count) + " (0 .. " + std::to_string(count - 1) + ")");
    return std::make_unique<CudaBackend>(opt);
}

}  // namespace tl
