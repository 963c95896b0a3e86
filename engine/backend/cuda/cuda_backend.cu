// The CUDA backend: device memory through cudaMalloc (counted in the MemoryLedger), copies, and the device checks
// that turn "no GPU" into a clear error. The op kernels mirror backend/cpu file by file as they land (issue 9);
// until then each op throws "[cuda] <op> not implemented" — never a silent fallback to the CPU.
#include <cuda_runtime.h>

#include <string>

#include "core/backend.hpp"
#include "core/error.hpp"

#define TL_CUDA_CHECK(call)                                                                          \
    do {                                                                                             \
        const cudaError_t err_ = (call);                                                             \
        if (err_ != cudaSuccess)                                                                     \
            throw ::tl::Error(std::string("[cuda] ") + #call + ": " + cudaGetErrorString(err_));     \
    } while (0)

namespace tl {
namespace {

void free_device(void* p) { cudaFree(p); }

[[noreturn]] void not_implemented(const char* op) {
    throw Error(std::string("[cuda] ") + op + " not implemented yet (the CUDA kernels are issue 9); use --device cpu");
}

__global__ void fill_zero_kernel(float* x, long long n) {
    const long long i = blockIdx.x * 256LL + threadIdx.x;
    if (i < n) x[i] = 0.0f;
}

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device) : device_(device) {
        TL_CUDA_CHECK(cudaSetDevice(device));
        cudaDeviceProp prop{};
        TL_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        name_ = std::string("cuda:") + std::to_string(device) + " (" + prop.name + ")";
    }
    Device device() const override { return Device::cuda; }
    std::string name() const override { return name_; }

    Buffer alloc(std::size_t bytes, MemCategory what) override {
        void* p = nullptr;
        TL_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
        return Buffer(p, bytes, what, &ledger_, &free_device);
    }
    void fill_zero(VecView x) override {
        if (x.n == 0) return;
        fill_zero_kernel<<<unsigned((x.n + 255) / 256), 256>>>(x.data, x.n);
        TL_CUDA_CHECK(cudaGetLastError());
    }
    void copy(VecView dst, CVecView src) override {
        TL_CUDA_CHECK(cudaMemcpy(dst.data, src.data, sizeof(float) * std::size_t(src.n), cudaMemcpyDeviceToDevice));
    }
    void copy_to_host(float* dst, CVecView src) override {
        TL_CUDA_CHECK(cudaMemcpy(dst, src.data, sizeof(float) * std::size_t(src.n), cudaMemcpyDeviceToHost));
    }
    void copy_from_host(VecView dst, const float* src) override {
        TL_CUDA_CHECK(cudaMemcpy(dst.data, src, sizeof(float) * std::size_t(dst.n), cudaMemcpyHostToDevice));
    }
    void upload_bytes(void* dst, const void* src, std::size_t bytes) override {
        TL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    }

    void gemm(const GemmArgs<float>&) override { not_implemented("gemm"); }
    void embedding_forward(const EmbeddingArgs<float>&) override { not_implemented("embedding_forward"); }
    void embedding_backward(const EmbeddingGradArgs<float>&) override { not_implemented("embedding_backward"); }
    void layernorm_forward(const LayerNormArgs<float>&) override { not_implemented("layernorm_forward"); }
    void layernorm_backward(const LayerNormGradArgs<float>&) override { not_implemented("layernorm_backward"); }
    void linear_forward(const LinearArgs<float>&) override { not_implemented("linear_forward"); }
    void linear_backward(const LinearGradArgs<float>&) override { not_implemented("linear_backward"); }
    void attention_forward(const AttentionArgs<float>&) override { not_implemented("attention_forward"); }
    void attention_backward(const AttentionGradArgs<float>&) override { not_implemented("attention_backward"); }
    void gelu_forward(const GeluArgs<float>&) override { not_implemented("gelu_forward"); }
    void gelu_backward(const GeluGradArgs<float>&) override { not_implemented("gelu_backward"); }
    void add(VecView, CVecView, CVecView) override { not_implemented("add"); }
    void add_inplace(VecView, CVecView) override { not_implemented("add_inplace"); }
    void cross_entropy_forward(const CrossEntropyArgs<float>&) override { not_implemented("cross_entropy_forward"); }
    void cross_entropy_backward(const CrossEntropyGradArgs<float>&) override {
        not_implemented("cross_entropy_backward");
    }
    double sum_squares(CVecView) override { not_implemented("sum_squares"); }
    void scale(VecView, float) override { not_implemented("scale"); }
    void adamw(const AdamWArgs<float>&) override { not_implemented("adamw"); }
    void attention_decode(const AttentionDecodeArgs<float>&) override { not_implemented("attention_decode"); }

private:
    int device_;
    std::string name_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess)
        throw Error(std::string("[cuda] no usable GPU: cudaGetDeviceCount failed with \"") + cudaGetErrorString(err) +
                    "\" (no driver or no device); use --device cpu");
    if (count == 0) throw Error("[cuda] no usable GPU: the driver reports 0 devices; use --device cpu");
    return std::make_unique<CudaBackend>(0);
}

}  // namespace tl
