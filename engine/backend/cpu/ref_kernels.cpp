// Scalar reference kernels (see ref_kernels.hpp). Each op: shapes at the top, what is saved for backward,
// and whether gradients accumulate (+=, parameters) or overwrite (activations).
#include "backend/cpu/ref_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace tl::ref {

// ---------------------------------------------------------------------------------------------------------------
// gemm: C (M, N) = alpha op(A) op(B) + beta C. Accumulates in double whatever T is, so the reference is the
// more exact side of every comparison.
template <class T>
void gemm(const GemmArgs<T>& g) {
    const bool ta = g.trans_a == Trans::yes, tb = g.trans_b == Trans::yes;
    const std::int64_t M = ta ? g.a.cols : g.a.rows, K = ta ? g.a.rows : g.a.cols;
    const std::int64_t Kb = tb ? g.b.cols : g.b.rows, N = tb ? g.b.rows : g.b.cols;
    TL_ASSERT(K == Kb && g.c.rows == M && g.c.cols == N,
              "[gemm] shapes do not chain: op(A) " + std::to_string(M) + "x" + std::to_string(K) + ", op(B) " +
                  std::to_string(Kb) + "x" + std::to_string(N) + ", C " + std::to_string(g.c.rows) + "x" +
                  std::to_string(g.c.cols));
    for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j) {
            double acc = 0;
            for (std::int64_t k = 0; k < K; ++k)
                acc += double(ta ? g.a(k, i) : g.a(i, k)) * double(tb ? g.b(j, k) : g.b(k, j));
            const double prev = g.beta == T(0) ? 0.0 : double(g.beta) * double(g.c(i, j));
            g.c(i, j) = T(double(g.alpha) * acc + prev);
        }
}

// ---------------------------------------------------------------------------------------------------------------
// embedding: out (N, C) = wte[tokens] + wpe[pos0 + t].  Backward scatters: dwte[tok] += dout, dwpe[t] += dout.
template <class T>
void embedding_forward(const EmbeddingArgs<T>& a) {
    const std::int64_t C = a.out.cols;
    for (std::int64_t b = 0; b < a.B; ++b)
        for (std::int64_t t = 0; t < a.T_; ++t) {
            const std::int64_t n = b * a.T_ + t;
            const std::int32_t tok = a.tokens[n];
            TL_ASSERT(tok >= 0 && tok < a.wte.rows, "[embedding_forward] token id out of range");
            TL_ASSERT(a.pos0 + t < a.wpe.rows, "[embedding_forward] position beyond the context length");
            for (std::int64_t c = 0; c < C; ++c) a.out(n, c) = a.wte(tok, c) + a.wpe(a.pos0 + t, c);
        }
}

template <class T>
void embedding_backward(const EmbeddingGradArgs<T>& a) {
    const std::int64_t C = a.dout.cols;
    for (std::int64_t b = 0; b < a.B; ++b)
        for (std::int64_t t = 0; t < a.T_; ++t) {
            const std::int64_t n = b * a.T_ + t;
            const std::int32_t tok = a.tokens[n];
            for (std::int64_t c = 0; c < C; ++c) {
                if (a.dwte.data) a.dwte(tok, c) += a.dout(n, c);
                if (a.dwpe.data) a.dwpe(a.pos0 + t, c) += a.dout(n, c);
            }
        }
}

// ---------------------------------------------------------------------------------------------------------------
// layernorm: xhat = (x - mean) * rstd, rstd = 1/sqrt(var + eps) (biased variance), out = xhat * gamma + beta.
// Backward, with g = dout * gamma:  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
template <class T>
void layernorm_forward(const LayerNormArgs<T>& a) {
    const std::int64_t N = a.x.rows, C = a.x.cols;
    for (std::int64_t i = 0; i < N; ++i) {
        double mean = 0, var = 0;
        for (std::int64_t c = 0; c < C; ++c) mean += a.x(i, c);
        mean /= double(C);
        for (std::int64_t c = 0; c < C; ++c) var += (a.x(i, c) - mean) * (a.x(i, c) - mean);
        var /= double(C);
        const double rstd = 1.0 / std::sqrt(var + double(a.eps));
        for (std::int64_t c = 0; c < C; ++c)
            a.out(i, c) = T((a.x(i, c) - mean) * rstd * a.gamma[c] + a.beta[c]);
        a.mean[i] = T(mean);
        a.rstd[i] = T(rstd);
    }
}

template <class T>
void layernorm_backward(const LayerNormGradArgs<T>& a) {
    const std::int64_t N = a.x.rows, C = a.x.cols;
    for (std::int64_t i = 0; i < N; ++i) {
        const double mean = a.mean[i], rstd = a.rstd[i];
        double g_mean = 0, gx_mean = 0;
        for (std::int64_t c = 0; c < C; ++c) {
            const double xhat = (a.x(i, c) - mean) * rstd, g = double(a.dout(i, c)) * a.gamma[c];
            g_mean += g;
            gx_mean += g * xhat;
        }
        g_mean /= double(C);
        gx_mean /= double(C);
        for (std::int64_t c = 0; c < C; ++c) {
            const double xhat = (a.x(i, c) - mean) * rstd, g = double(a.dout(i, c)) * a.gamma[c];
            if (a.dgamma.data) a.dgamma[c] += T(a.dout(i, c) * xhat);
            if (a.dbeta.data) a.dbeta[c] += a.dout(i, c);
            a.dx(i, c) = T(rstd * (g - g_mean - xhat * gx_mean));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// linear (HF Conv1D layout): out (N, OC) = x (N, C) W (C, OC) + b.   dx = dout W^T, dW += x^T dout, db += sum dout.
template <class T>
void linear_forward(const LinearArgs<T>& a) {
    gemm<T>({a.out, a.x, a.w, Trans::no, Trans::no, T(1), T(0)});
    if (a.b.data)
        for (std::int64_t i = 0; i < a.out.rows; ++i)
            for (std::int64_t j = 0; j < a.out.cols; ++j) a.out(i, j) += a.b[j];
}

template <class T>
void linear_backward(const LinearGradArgs<T>& a) {
    if (a.dx.data) gemm<T>({a.dx, a.dout, a.w, Trans::no, Trans::yes, T(1), T(0)});
    if (a.dw.data) gemm<T>({a.dw, a.x, a.dout, Trans::yes, Trans::no, T(1), T(1)});
    if (a.db.data)
        for (std::int64_t i = 0; i < a.dout.rows; ++i)
            for (std::int64_t j = 0; j < a.dout.cols; ++j) a.db[j] += a.dout(i, j);
}

// ---------------------------------------------------------------------------------------------------------------
// attention, per batch b and head h, with q, k, v (T, hs) slices of qkv:
//   S = q k^T / sqrt(hs) masked to s <= t;  P = softmax_row(S) (saved as att);  out = P v.
// Backward: dP = dout v^T; dv = P^T dout; dS = P * (dP - rowsum(dP * P)); dq = dS k / sqrt(hs); dk = dS^T q / sqrt(hs).
template <class T>
void attention_forward(const AttentionArgs<T>& a) {
    const std::int64_t C = a.out.cols, hs = C / a.H, TT = a.T_;
    const double scale = 1.0 / std::sqrt(double(hs));
    for (std::int64_t b = 0; b < a.B; ++b)
        for (std::int64_t h = 0; h < a.H; ++h) {
            T* P = a.att + (b * a.H + h) * TT * TT;
            for (std::int64_t t = 0; t < TT; ++t) {
                const T* q = a.qkv.row(b * TT + t) + h * hs;
                double maxv = -INFINITY;
                std::vector<double> s(static_cast<std::size_t>(t + 1));
                for (std::int64_t u = 0; u <= t; ++u) {
                    const T* k = a.qkv.row(b * TT + u) + C + h * hs;
                    double dot = 0;
                    for (std::int64_t i = 0; i < hs; ++i) dot += double(q[i]) * k[i];
                    s[u] = dot * scale;
                    maxv = std::max(maxv, s[u]);
                }
                double sum = 0;
                for (std::int64_t u = 0; u <= t; ++u) sum += (s[u] = std::exp(s[u] - maxv));
                for (std::int64_t u = 0; u < TT; ++u) P[t * TT + u] = u <= t ? T(s[u] / sum) : T(0);
                T* o = a.out.row(b * TT + t) + h * hs;
                for (std::int64_t i = 0; i < hs; ++i) {
                    double acc = 0;
                    for (std::int64_t u = 0; u <= t; ++u) acc += double(P[t * TT + u]) * a.qkv(b * TT + u, 2 * C + h * hs + i);
                    o[i] = T(acc);
                }
            }
        }
}

template <class T>
void attention_backward(const AttentionGradArgs<T>& a) {
    const std::int64_t C = a.dout.cols, hs = C / a.H, TT = a.T_;
    const double scale = 1.0 / std::sqrt(double(hs));
    for (std::int64_t n = 0; n < a.dqkv.rows; ++n)
        for (std::int64_t j = 0; j < a.dqkv.cols; ++j) a.dqkv(n, j) = T(0);
    for (std::int64_t b = 0; b < a.B; ++b)
        for (std::int64_t h = 0; h < a.H; ++h) {
            const T* P = a.att + (b * a.H + h) * TT * TT;
            T* dS = a.datt + (b * a.H + h) * TT * TT;
            for (std::int64_t t = 0; t < TT; ++t) {
                const T* dout = a.dout.row(b * TT + t) + h * hs;
                double row_dot = 0;  // sum_u dP[u] P[u]
                for (std::int64_t u = 0; u <= t; ++u) {
                    const T* v = a.qkv.row(b * TT + u) + 2 * C + h * hs;
                    double dp = 0;
                    for (std::int64_t i = 0; i < hs; ++i) dp += double(dout[i]) * v[i];
                    dS[t * TT + u] = T(dp);
                    row_dot += dp * P[t * TT + u];
                    T* dv = a.dqkv.row(b * TT + u) + 2 * C + h * hs;
                    for (std::int64_t i = 0; i < hs; ++i) dv[i] += T(double(P[t * TT + u]) * dout[i]);
                }
                for (std::int64_t u = 0; u < TT; ++u)
                    dS[t * TT + u] = u <= t ? T(double(P[t * TT + u]) * (double(dS[t * TT + u]) - row_dot)) : T(0);
                T* dq = a.dqkv.row(b * TT + t) + h * hs;
                const T* q = a.qkv.row(b * TT + t) + h * hs;
                for (std::int64_t u = 0; u <= t; ++u) {
                    const T* k = a.qkv.row(b * TT + u) + C + h * hs;
                    T* dk = a.dqkv.row(b * TT + u) + C + h * hs;
                    const double ds = double(dS[t * TT + u]) * scale;
                    for (std::int64_t i = 0; i < hs; ++i) {
                        dq[i] += T(ds * k[i]);
                        dk[i] += T(ds * q[i]);
                    }
                }
            }
        }
}

// ---------------------------------------------------------------------------------------------------------------
// gelu (tanh): y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kGeluCubic = 0.044715;

template <class T>
void gelu_forward(const GeluArgs<T>& a) {
    for (std::int64_t i = 0; i < a.x.n; ++i) {
        const double x = a.x[i];
        a.out[i] = T(0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x))));
    }
}

template <class T>
void gelu_backward(const GeluGradArgs<T>& a) {
    for (std::int64_t i = 0; i < a.x.n; ++i) {
        const double x = a.x[i];
        const double th = std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
        const double d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * x * x);
        a.dx[i] = T(d * a.dout[i]);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// cross-entropy: loss_i = logsumexp(z_i) - z_i[y_i];  dz_i = w_i / norm (softmax(z_i) - onehot(y_i)).
template <class T>
static double log_sum_exp_row(const Mat<const T>& z, std::int64_t i) {
    double maxv = -INFINITY, sum = 0;
    for (std::int64_t j = 0; j < z.cols; ++j) maxv = std::max(maxv, double(z(i, j)));
    for (std::int64_t j = 0; j < z.cols; ++j) sum += std::exp(double(z(i, j)) - maxv);
    return maxv + std::log(sum);
}

template <class T>
void cross_entropy_forward(const CrossEntropyArgs<T>& a) {
    for (std::int64_t i = 0; i < a.logits.rows; ++i) {
        const std::int32_t y = a.targets[i];
        TL_ASSERT(y >= 0 && y < a.logits.cols, "[cross_entropy_forward] target id out of range");
        a.losses[i] = T(log_sum_exp_row(a.logits, i) - double(a.logits(i, y)));
    }
}

template <class T>
void cross_entropy_backward(const CrossEntropyGradArgs<T>& a) {
    for (std::int64_t i = 0; i < a.logits.rows; ++i) {
        const double w = double(a.weights[i]) / double(a.norm);
        if (w == 0) {  // prompt and padding tokens: no gradient at all
            for (std::int64_t j = 0; j < a.logits.cols; ++j) a.dlogits(i, j) = T(0);
            continue;
        }
        const double lse = log_sum_exp_row(a.logits, i);
        for (std::int64_t j = 0; j < a.logits.cols; ++j) {
            const double p = std::exp(double(a.logits(i, j)) - lse);
            a.dlogits(i, j) = T(w * (p - (j == a.targets[i] ? 1.0 : 0.0)));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
template <class T>
void adamw(const AdamWArgs<T>& a) {
    const double bc1 = 1.0 - std::pow(double(a.beta1), double(a.step));
    const double bc2 = 1.0 - std::pow(double(a.beta2), double(a.step));
    for (std::int64_t i = 0; i < a.params.n; ++i) {
        const double g = a.grads[i];
        const double m = a.beta1 * double(a.m[i]) + (1.0 - a.beta1) * g;
        const double v = a.beta2 * double(a.v[i]) + (1.0 - a.beta2) * g * g;
        a.m[i] = T(m);
        a.v[i] = T(v);
        const double update = (m / bc1) / (std::sqrt(v / bc2) + a.eps) + a.weight_decay * double(a.params[i]);
        a.params[i] = T(double(a.params[i]) - a.lr * update);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// attention_decode: the last row of attention_forward, computed from cached k, v.
template <class T>
void attention_decode(const AttentionDecodeArgs<T>& a) {
    const std::int64_t C = a.q.n, hs = C / a.H, len = a.k.rows;
    const double scale = 1.0 / std::sqrt(double(hs));
    std::vector<double> s(static_cast<std::size_t>(len));
    for (std::int64_t h = 0; h < a.H; ++h) {
        double maxv = -INFINITY, sum = 0;
        for (std::int64_t u = 0; u < len; ++u) {
            double dot = 0;
            for (std::int64_t i = 0; i < hs; ++i) dot += double(a.q[h * hs + i]) * a.k(u, h * hs + i);
            s[u] = dot * scale;
            maxv = std::max(maxv, s[u]);
        }
        for (std::int64_t u = 0; u < len; ++u) sum += (s[u] = std::exp(s[u] - maxv));
        for (std::int64_t i = 0; i < hs; ++i) {
            double acc = 0;
            for (std::int64_t u = 0; u < len; ++u) acc += s[u] * a.v(u, h * hs + i);
            a.out[h * hs + i] = T(acc / sum);
        }
    }
}

#define TL_INSTANTIATE(T)                                                  \
    template void gemm<T>(const GemmArgs<T>&);                             \
    template void embedding_forward<T>(const EmbeddingArgs<T>&);           \
    template void embedding_backward<T>(const EmbeddingGradArgs<T>&);      \
    template void layernorm_forward<T>(const LayerNormArgs<T>&);           \
    template void layernorm_backward<T>(const LayerNormGradArgs<T>&);      \
    template void linear_forward<T>(const LinearArgs<T>&);                 \
    template void linear_backward<T>(const LinearGradArgs<T>&);            \
    template void attention_forward<T>(const AttentionArgs<T>&);           \
    template void attention_backward<T>(const AttentionGradArgs<T>&);      \
    template void gelu_forward<T>(const GeluArgs<T>&);                     \
    template void gelu_backward<T>(const GeluGradArgs<T>&);                \
    template void cross_entropy_forward<T>(const CrossEntropyArgs<T>&);    \
    template void cross_entropy_backward<T>(const CrossEntropyGradArgs<T>&); \
    template void adamw<T>(const AdamWArgs<T>&);                           \
    template void attention_decode<T>(const AttentionDecodeArgs<T>&);
TL_INSTANTIATE(float)
TL_INSTANTIATE(double)
#undef TL_INSTANTIATE

}  // namespace tl::ref
