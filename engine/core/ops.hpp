// The argument structs of every op of the GPT-2 trainer, templated on the scalar so the reference kernels run in
// float (the specification) and in double (gradient checks). Shapes use STYLE.md's letters:
// B batch, T time, C channels, OC out channels, V vocab, H heads, hs = C/H, N = B*T rows.
// Convention: parameter gradients accumulate (+=); activation gradients overwrite.
#pragma once
#include <cstdint>

#include "core/tensor.hpp"

namespace tl {

enum class Trans { no, yes };

// C = alpha * op(A) op(B) + beta * C, op(A) (M, K), op(B) (K, N), C (M, N).
template <class T>
struct GemmArgs {
    Mat<T> c;
    Mat<const T> a, b;
    Trans trans_a = Trans::no, trans_b = Trans::no;
    T alpha = 1, beta = 0;
};

// out[b,t,:] = wte[tokens[b,t], :] + wpe[pos0 + t, :]     out (N, C), tokens (N), wte (V, C), wpe (maxT, C)
template <class T>
struct EmbeddingArgs {
    Mat<T> out;
    const std::int32_t* tokens = nullptr;
    Mat<const T> wte, wpe;
    std::int64_t B = 0, T_ = 0, pos0 = 0;
};
template <class T>
struct EmbeddingGradArgs {
    Mat<T> dwte, dwpe;  // += (tied wte also receives the lm head's gradient)
    Mat<const T> dout;
    const std::int32_t* tokens = nullptr;
    std::int64_t B = 0, T_ = 0, pos0 = 0;
};

// out = (x - mean) * rstd * gamma + beta per row;  x, out (N, C); saves mean, rstd (N).
template <class T>
struct LayerNormArgs {
    Mat<T> out;
    Vec<T> mean, rstd;
    Mat<const T> x;
    Vec<const T> gamma, beta;
    T eps = T(1e-5);
};
template <class T>
struct LayerNormGradArgs {
    Mat<T> dx;                // overwrite
    Vec<T> dgamma, dbeta;     // +=
    Mat<const T> dout, x;
    Vec<const T> mean, rstd, gamma;
};

// Hugging Face GPT-2 Conv1D layout: out = x W + b.   x (N, C), W (C, OC), b (OC) or empty, out (N, OC).
template <class T>
struct LinearArgs {
    Mat<T> out;
    Mat<const T> x, w;
    Vec<const T> b;
};
template <class T>
struct LinearGradArgs {
    Mat<T> dx;        // overwrite; skipped when dx.data is null (first layer of a frozen stack)
    Mat<T> dw;        // +=; skipped when null (frozen weight)
    Vec<T> db;        // +=; skipped when null
    Mat<const T> dout, x, w;
};

// Causal self-attention with 1/sqrt(hs) scaling.  qkv (N, 3C) laid out [q | k | v], each (N, C) = H heads of hs;
// out (N, C); saves att (B, H, T, T) softmax probabilities (rows t, columns s <= t; s > t is written as 0).
template <class T>
struct AttentionArgs {
    Mat<T> out;
    T* att = nullptr;
    Mat<const T> qkv;
    std::int64_t B = 0, T_ = 0, H = 0;
};
template <class T>
struct AttentionGradArgs {
    Mat<T> dqkv;           // overwrite
    T* datt = nullptr;     // scratch (B, H, T, T)
    Mat<const T> dout, qkv;
    const T* att = nullptr;
    std::int64_t B = 0, T_ = 0, H = 0;
};

// One decoding step of causal attention against a KV cache (generation):
//   q (1, C) for the new token; k, v (len, C) the cached keys/values of positions 0..len-1 (the new one included);
//   out (1, C) = per head softmax(q k^T / sqrt(hs)) v.
template <class T>
struct AttentionDecodeArgs {
    Vec<T> out;
    Vec<const T> q;
    Mat<const T> k, v;
    std::int64_t H = 0;
};

// GELU, tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <class T>
struct GeluArgs {
    Vec<T> out;
    Vec<const T> x;
};
template <class T>
struct GeluGradArgs {
    Vec<T> dx;  // overwrite
    Vec<const T> dout, x;
};

// Softmax cross-entropy with per-token loss weights.
//   forward:  losses[i] = -log softmax(logits[i])[targets[i]]      (unweighted, per token)
//   backward: dlogits[i] = weights[i] / norm * (softmax(logits[i]) - onehot(targets[i]))   (overwrite)
// norm is the sum of weights over every micro-batch of the optimizer step, so accumulation is exact.
template <class T>
struct CrossEntropyArgs {
    Vec<T> losses;
    Mat<const T> logits;
    const std::int32_t* targets = nullptr;
};
template <class T>
struct CrossEntropyGradArgs {
    Mat<T> dlogits;
    Mat<const T> logits;
    const std::int32_t* targets = nullptr;
    Vec<const T> weights;
    T norm = 1;
};

// AdamW (Loshchilov & Hutter) on one contiguous span, bias-corrected, decoupled weight decay:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd p)
template <class T>
struct AdamWArgs {
    Vec<T> params, m, v;
    Vec<const T> grads;
    T lr = 0, beta1 = T(0.9), beta2 = T(0.999), eps = T(1e-8), weight_decay = 0;
    std::int64_t step = 1;  // 1-based, for bias correction
};

}  // namespace tl
