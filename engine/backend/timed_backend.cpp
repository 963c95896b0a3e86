// TimedBackend: the forwarding methods and the sorted report. What it is and why: timed_backend.hpp.
#include "backend/timed_backend.hpp"

#include <algorithm>

namespace tl {

static_assert(static_cast<int>(TimedOp::add_layernorm_forward) + 1 == kTimedOpCount,
              "[timed_backend] kTimedOpNames must have one name per TimedOp");

std::vector<OpTiming> TimedBackend::timings() const {
    std::vector<OpTiming> out;
    for (int i = 0; i < kTimedOpCount; ++i) {
        const Slot& s = slots_[static_cast<std::size_t>(i)];
        if (s.calls == 0) continue;
        out.push_back({kTimedOpNames[i], s.calls, std::chrono::duration<double>(s.time).count()});
    }
    std::sort(out.begin(), out.end(), [](const OpTiming& a, const OpTiming& b) {
        return a.seconds != b.seconds ? a.seconds > b.seconds : a.name < b.name;
    });
    return out;
}

void TimedBackend::reset() { slots_ = {}; }

// The forwarding methods: one line each, so a reader can check at a glance that each goes to its own op.
Buffer TimedBackend::alloc(std::size_t bytes, MemCategory what) {
    return timed(TimedOp::alloc, [&] { return inner_.alloc(bytes, what); });
}
void TimedBackend::fill_zero(VecView x) {
    timed(TimedOp::fill_zero, [&] { inner_.fill_zero(x); });
}
void TimedBackend::copy(VecView dst, CVecView src) {
    timed(TimedOp::copy, [&] { inner_.copy(dst, src); });
}
void TimedBackend::copy_to_host(float* dst, CVecView src) {
    timed(TimedOp::copy_to_host, [&] { inner_.copy_to_host(dst, src); });
}
void TimedBackend::copy_from_host(VecView dst, const float* src) {
    timed(TimedOp::copy_from_host, [&] { inner_.copy_from_host(dst, src); });
}
void TimedBackend::upload_bytes(void* dst, const void* src, std::size_t bytes) {
    timed(TimedOp::upload_bytes, [&] { inner_.upload_bytes(dst, src, bytes); });
}

void TimedBackend::gemm(const GemmArgs<float>& a) {
    timed(TimedOp::gemm, [&] { inner_.gemm(a); });
}
void TimedBackend::embedding_forward(const EmbeddingArgs<float>& a) {
    timed(TimedOp::embedding_forward, [&] { inner_.embedding_forward(a); });
}
void TimedBackend::embedding_backward(const EmbeddingGradArgs<float>& a) {
    timed(TimedOp::embedding_backward, [&] { inner_.embedding_backward(a); });
}
void TimedBackend::layernorm_forward(const LayerNormArgs<float>& a) {
    timed(TimedOp::layernorm_forward, [&] { inner_.layernorm_forward(a); });
}
void TimedBackend::layernorm_backward(const LayerNormGradArgs<float>& a) {
    timed(TimedOp::layernorm_backward, [&] { inner_.layernorm_backward(a); });
}
void TimedBackend::linear_forward(const LinearArgs<float>& a) {
    timed(TimedOp::linear_forward, [&] { inner_.linear_forward(a); });
}
void TimedBackend::linear_backward(const LinearGradArgs<float>& a) {
    timed(TimedOp::linear_backward, [&] { inner_.linear_backward(a); });
}
void TimedBackend::attention_forward(const AttentionArgs<float>& a) {
    timed(TimedOp::attention_forward, [&] { inner_.attention_forward(a); });
}
void TimedBackend::attention_backward(const AttentionGradArgs<float>& a) {
    timed(TimedOp::attention_backward, [&] { inner_.attention_backward(a); });
}
void TimedBackend::gelu_forward(const GeluArgs<float>& a) {
    timed(TimedOp::gelu_forward, [&] { inner_.gelu_forward(a); });
}
void TimedBackend::gelu_backward(const GeluGradArgs<float>& a) {
    timed(TimedOp::gelu_backward, [&] { inner_.gelu_backward(a); });
}
void TimedBackend::add(VecView out, CVecView a, CVecView b) {
    timed(TimedOp::add, [&] { inner_.add(out, a, b); });
}
void TimedBackend::linear_gelu_forward(const LinearArgs<float>& lin, VecView act) {
    timed(TimedOp::linear_gelu_forward, [&] { inner_.linear_gelu_forward(lin, act); });
}
void TimedBackend::add_layernorm_forward(VecView sum, CVecView a, CVecView b, const LayerNormArgs<float>& ln) {
    timed(TimedOp::add_layernorm_forward, [&] { inner_.add_layernorm_forward(sum, a, b, ln); });
}
void TimedBackend::add_inplace(VecView dst, CVecView src) {
    timed(TimedOp::add_inplace, [&] { inner_.add_inplace(dst, src); });
}
void TimedBackend::cross_entropy_forward(const CrossEntropyArgs<float>& a) {
    timed(TimedOp::cross_entropy_forward, [&] { inner_.cross_entropy_forward(a); });
}
void TimedBackend::cross_entropy_backward(const CrossEntropyGradArgs<float>& a) {
    timed(TimedOp::cross_entropy_backward, [&] { inner_.cross_entropy_backward(a); });
}
double TimedBackend::sum_squares(CVecView x) {
    return timed(TimedOp::sum_squares, [&] { return inner_.sum_squares(x); });
}
void TimedBackend::scale(VecView x, float s) {
    timed(TimedOp::scale, [&] { inner_.scale(x, s); });
}
void TimedBackend::adamw(const AdamWArgs<float>& a) {
    timed(TimedOp::adamw, [&] { inner_.adamw(a); });
}
void TimedBackend::attention_decode(const AttentionDecodeArgs<float>& a) {
    timed(TimedOp::attention_decode, [&] { inner_.attention_decode(a); });
}

}  // namespace tl
