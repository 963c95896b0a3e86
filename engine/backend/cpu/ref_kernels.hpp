// Scalar reference kernels: the specification of every op of the GPT-2 trainer. Plain loops, no tricks, in
// float (what the fast kernels are tested against) and double (what the gradient checks run in).
// Argument structs and shape conventions: core/ops.hpp. The fast CPU kernels are in cpu_backend.cpp.
#pragma once
#include "core/ops.hpp"

namespace tl::ref {

template <class T> void gemm(const GemmArgs<T>& a);
template <class T> void embedding_forward(const EmbeddingArgs<T>& a);
template <class T> void embedding_backward(const EmbeddingGradArgs<T>& a);
template <class T> void layernorm_forward(const LayerNormArgs<T>& a);
template <class T> void layernorm_backward(const LayerNormGradArgs<T>& a);
template <class T> void linear_forward(const LinearArgs<T>& a);
template <class T> void linear_backward(const LinearGradArgs<T>& a);
template <class T> void attention_forward(const AttentionArgs<T>& a);
template <class T> void attention_backward(const AttentionGradArgs<T>& a);
template <class T> void gelu_forward(const GeluArgs<T>& a);
template <class T> void gelu_backward(const GeluGradArgs<T>& a);
template <class T> void cross_entropy_forward(const CrossEntropyArgs<T>& a);
template <class T> void cross_entropy_backward(const CrossEntropyGradArgs<T>& a);
template <class T> void adamw(const AdamWArgs<T>& a);
template <class T> void attention_decode(const AttentionDecodeArgs<T>& a);

}  // namespace tl::ref
