// Buffer (owned, ledger-counted bytes on a device), Tensor (a float32 Buffer with a shape) and the small
// non-owning views kernels take (Mat, Vec). Kernels never own memory; the model and trainer plan buffers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/memory_ledger.hpp"

namespace tl {

enum class Device { cpu, cuda };

// Row-major matrix view with a leading dimension (row stride, in elements), so a column block of a wider
// matrix (one head's slice of qkv, say) is a view too.
template <class T>
struct Mat {
    T* data = nullptr;
    std::int64_t rows = 0, cols = 0, ld = 0;
    Mat() = default;
    Mat(T* d, std::int64_t r, std::int64_t c) : data(d), rows(r), cols(c), ld(c) {}
    Mat(T* d, std::int64_t r, std::int64_t c, std::int64_t stride) : data(d), rows(r), cols(c), ld(stride) {}
    template <class U>  // Mat<float> -> Mat<const float>
    Mat(const Mat<U>& o) : data(o.data), rows(o.rows), cols(o.cols), ld(o.ld) {}
    T& operator()(std::int64_t r, std::int64_t c) const { return data[r * ld + c]; }
    T* row(std::int64_t r) const { return data + r * ld; }
    bool is_contiguous() const { return ld == cols; }
};

template <class T>
struct Vec {
    T* data = nullptr;
    std::int64_t n = 0;
    Vec() = default;
    Vec(T* d, std::int64_t len) : data(d), n(len) {}
    template <class U>
    Vec(const Vec<U>& o) : data(o.data), n(o.n) {}
    T& operator[](std::int64_t i) const { return data[i]; }
};

using MatView = Mat<float>;
using CMatView = Mat<const float>;
using VecView = Vec<float>;
using CVecView = Vec<const float>;

// Owned device bytes, returned to the device and the ledger on destruction.
class Buffer {
public:
    using FreeFn = void (*)(void*);
    Buffer() = default;
    Buffer(void* data, std::size_t bytes, MemCategory category, MemoryLedger* ledger, FreeFn free_fn);
    Buffer(Buffer&& o) noexcept;
    Buffer& operator=(Buffer&& o) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { release(); }

    void* data() const { return data_; }
    std::size_t bytes() const { return bytes_; }
    MemCategory category() const { return category_; }

private:
    void release() noexcept;
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
    MemCategory category_ = MemCategory::workspace;
    MemoryLedger* ledger_ = nullptr;
    FreeFn free_fn_ = nullptr;
};

using Shape = std::vector<std::int64_t>;
std::int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

// A float32 tensor in a Buffer. Views of it are what kernels take.
class Tensor {
public:
    Tensor() = default;
    Tensor(Buffer buf, Shape shape) : buf_(std::move(buf)), shape_(std::move(shape)) {}
    float* data() const { return static_cast<float*>(buf_.data()); }
    const Shape& shape() const { return shape_; }
    std::int64_t numel() const { return shape_numel(shape_); }
    std::int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i)); }
    VecView vec() const { return {data(), numel()}; }
    // The tensor as (rows, numel/rows).
    MatView mat(std::int64_t rows) const { return {data(), rows, rows ? numel() / rows : 0}; }
    bool empty() const { return buf_.data() == nullptr; }

private:
    Buffer buf_;
    Shape shape_;
};

}  // namespace tl
