// DeviceQuantMatrix (upload, download, ownership), the batch dispatch of qmatmul, and gpu_available.
#include <utility>

#include "backend/cuda/cuda_common.cuh"
#include "core/error.hpp"
#include "quant/cuda/qmatmul.hpp"

namespace tl::cuda_quant {

namespace {

template <class T>
T* upload(const std::vector<T>& host, const char* op) {
    if (host.empty()) return nullptr;
    void* p = nullptr;
    TL_CUDA_CHECK_OP(op, cudaMalloc(&p, host.size() * sizeof(T)));
    TL_CUDA_CHECK_OP(op, cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return static_cast<T*>(p);
}

template <class T>
void download_into(std::vector<T>& host, const T* device, std::size_t count, const char* op) {
    host.resize(count);
    if (count > 0) TL_CUDA_CHECK_OP(op, cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost));
}

}  // namespace

const char* name_of(ActType t) { return t == ActType::bf16 ? "bf16" : "fp16"; }

DeviceQuantMatrix::DeviceQuantMatrix(const QuantLayout& w)
    : kind_(w.kind), mode_(w.scale_mode), rows_(w.rows), cols_(w.cols), group_(w.group), dq_block_(w.dq_block),
      scale_mean_(w.scale_mean), bytes_(w.bytes()) {
    check_quant_layout(w);  // the kernels trust every size below
    try {
        codes_ = upload(w.codes, "DeviceQuantMatrix");
        scales_ = upload(w.scales, "DeviceQuantMatrix");
        scale_codes_ = upload(w.scale_codes, "DeviceQuantMatrix");
        scale_scales_ = upload(w.scale_scales, "DeviceQuantMatrix");
        scale_scale_count_ = std::int64_t(w.scale_scales.size());
    } catch (...) {
        release();
        throw;
    }
}

DeviceQuantMatrix::DeviceQuantMatrix(QuantKind kind, std::int64_t rows, std::int64_t cols, std::int64_t group)
    : kind_(kind), rows_(rows), cols_(cols), group_(group) {
    check_quant_shape("[cuda] DeviceQuantMatrix", rows, cols, group);
    const int bits = kind == QuantKind::int4 || kind == QuantKind::nf4 ? 4 : 8;
    const std::size_t code_bytes = std::size_t(rows * cols * bits / 8), scales = std::size_t(rows * (cols / group));
    bytes_ = code_bytes + 2 * scales;
    try {
        TL_CUDA_CHECK_OP("DeviceQuantMatrix", cudaMalloc(reinterpret_cast<void**>(&codes_), code_bytes));
        TL_CUDA_CHECK_OP("DeviceQuantMatrix", cudaMalloc(reinterpret_cast<void**>(&scales_), 2 * scales));
    } catch (...) {
        release();
        throw;
    }
}

DeviceQuantMatrix::~DeviceQuantMatrix() { release(); }

void DeviceQuantMatrix::release() noexcept {
    cudaFree(codes_);
    cudaFree(scales_);
    cudaFree(scale_codes_);
    cudaFree(scale_scales_);
    codes_ = nullptr, scales_ = nullptr, scale_codes_ = nullptr, scale_scales_ = nullptr;
}

DeviceQuantMatrix::DeviceQuantMatrix(DeviceQuantMatrix&& o) noexcept { *this = std::move(o); }

DeviceQuantMatrix& DeviceQuantMatrix::operator=(DeviceQuantMatrix&& o) noexcept {
    if (this != &o) {
        release();
        kind_ = o.kind_, mode_ = o.mode_, rows_ = o.rows_, cols_ = o.cols_, group_ = o.group_;
        dq_block_ = o.dq_block_, scale_mean_ = o.scale_mean_, bytes_ = o.bytes_;
        codes_ = std::exchange(o.codes_, nullptr), scales_ = std::exchange(o.scales_, nullptr);
        scale_codes_ = std::exchange(o.scale_codes_, nullptr), scale_scales_ = std::exchange(o.scale_scales_, nullptr);
        scale_scale_count_ = o.scale_scale_count_;
    }
    return *this;
}

QuantLayout DeviceQuantMatrix::download() const {
    QuantLayout w;
    w.kind = kind_, w.scale_mode = mode_, w.rows = rows_, w.cols = cols_, w.group = group_;
    w.dq_block = dq_block_, w.scale_mean = scale_mean_;
    const std::size_t groups = std::size_t(rows_ * (cols_ / group_));
    download_into(w.codes, codes_, std::size_t(rows_ * w.code_bytes_per_row()), "download");
    if (mode_ == qdecode::ScaleMode::fp16) {
        download_into(w.scales, scales_, groups, "download");
    } else {
        download_into(w.scale_codes, scale_codes_, groups, "download");
        download_into(w.scale_scales, scale_scales_, std::size_t(scale_scale_count_), "download");
    }
    return w;
}

void qmatmul(const DeviceQuantMatrix& w, const void* x, void* y, std::int64_t batch, ActType t, cudaStream_t s) {
    if (batch == 1)
        qgemv(w, x, y, batch, t, s);
    else
        qgemm(w, x, y, batch, t, s);
}

bool gpu_available(std::string* why) {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        if (why)
            *why = err != cudaSuccess ? std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) + ")"
                                      : std::string("no CUDA device");
        cudaGetLastError();  // clear the sticky error for later calls
        return false;
    }
    return true;
}

}  // namespace tl::cuda_quant
