// The MoE MLP, forward and backward. Routing (softmax, top-k, gather/scatter) runs in host loops; each
// expert's two linears and its GELU run on the Backend over the rows routed to it, so the heavy work is the
// same GEMMs as the dense MLP on fewer rows.
//
//   x (N, C), router G (k, C), k experts E_i(x) = gelu(x W_fc,i + b_fc,i) W_proj,i + b_proj,i, K = top_k
//   z = x G^T (N, k);  p_n = softmax(z_n);  S_n = the K experts of largest p_n (ties: lower index first)
//   g_nj = p_n,e / sum_{e' in S_n} p_n,e'  for the j-th chosen expert e  (= softmax of z_n over S_n: Mixtral)
//   y_n = sum_j g_nj E_{e_nj}(x_n)
// Load balancing (Switch Transformer, eq. 4): f_i = (rows routed to i) / (N K),  P_i = mean_n p_n,i,
//   aux = k sum_i f_i P_i   (1 when perfectly balanced; f is a count, so it carries no gradient)
//
// Backward, with o_nj = E_{e_nj}(x_n) and dy given:
//   d o_nj = g_nj dy_n;  d g_nj = dy_n . o_nj  ->  each expert's linear/gelu backward on its rows (dx via dx_e)
//   g = softmax over S_n of z  =>  dz_n,e_nj = g_nj (dg_nj - sum_j' g_nj' dg_nj'), 0 outside S_n
//   aux: d aux / d p_n,i = k f_i / N  =>  dz_n,i += s p_n,i (k f_i / N - sum_i' p_n,i' k f_i' / N)
//        (s = aux_scale, the aux term's weight in the loss)
//   dG += dz^T x;  dx += dz G
#include "model/moe.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"

namespace tl {

std::string moe_gate_name(std::int64_t layer) {
    return "transformer.h." + std::to_string(layer) + ".block_sparse_moe.gate.weight";
}

std::string moe_expert_name(std::int64_t layer, std::int64_t expert, std::string_view leaf) {
    return "transformer.h." + std::to_string(layer) + ".block_sparse_moe.experts." + std::to_string(expert) +
           "." + std::string(leaf);
}

MoeBlocks::MoeBlocks(Backend& backend, const GptConfig& config)
    : be_(backend),
      L_(config.n_layer),
      E_(config.num_local_experts),
      K_(config.num_experts_per_tok),
      C_(config.n_embd) {
    TL_ASSERT(config.is_moe(), "[moe] MoeBlocks for a dense config");
    if (backend.device() != Device::cpu)
        throw Error("[moe] the mixture-of-experts MLP runs on the CPU backend only (" + backend.name() +
                    " has no routing kernels yet); run this model with --device cpu");
    layers_.resize(std::size_t(L_));
    load_.assign(std::size_t(L_), std::vector<std::int64_t>(std::size_t(E_), 0));
}

void MoeBlocks::plan(std::int64_t N) {
    if (N == N_) return;
    auto act = [&](Shape s) { return be_.tensor(s, MemCategory::activations); };
    auto ws = [&](Shape s) { return be_.tensor(s, MemCategory::workspace); };
    for (Layer& L : layers_) {
        L = Layer{};
        L.logits = act({N, E_});
        for (std::int64_t e = 0; e < E_; ++e) {
            L.xe.push_back(act({N, C_})), L.he.push_back(act({N, 4 * C_}));
            L.ae.push_back(act({N, 4 * C_})), L.oe.push_back(act({N, C_}));
        }
        L.rows.resize(std::size_t(E_));
    }
    dz_ = ws({N, E_}), doe_ = ws({N, C_}), dae_ = ws({N, 4 * C_}), dhe_ = ws({N, 4 * C_}), dxe_ = ws({N, C_});
    N_ = N;
}

void MoeBlocks::reset_load() {
    for (auto& l : load_) std::fill(l.begin(), l.end(), 0);
}

double MoeBlocks::aux_loss() const {
    double s = 0;
    for (const Layer& L : layers_) s += L.stats.aux_loss;
    return s / double(L_);
}

void MoeBlocks::forward(std::int64_t layer, MatView y, CMatView x, const MoeWeights& w) {
    const std::int64_t N = x.rows, C = C_, E = E_, K = K_;
    TL_ASSERT(N <= N_ && x.cols == C && y.rows == N && y.cols == C && std::int64_t(w.experts.size()) == E &&
                  w.gate.rows == E && w.gate.cols == C,
              "[moe_forward] shape mismatch");
    Layer& L = layers_[std::size_t(layer)];
    const MatView p(L.logits.data(), N, E);
    be_.gemm({p, x, w.gate, Trans::no, Trans::yes, 1.0f, 0.0f});  // z = x G^T
    L.choice.assign(std::size_t(N * K), 0);
    L.gate.assign(std::size_t(N * K), 0.0f);
    for (auto& r : L.rows) r.clear();
    MoeLayerStats& st = L.stats;
    st.counts.assign(std::size_t(E), 0);
    st.mean_prob.assign(std::size_t(E), 0.0);
    std::vector<std::int32_t> order(static_cast<std::size_t>(E));
    for (std::int64_t n = 0; n < N; ++n) {
        float* pn = p.row(n);
        const float zmax = *std::max_element(pn, pn + E);
        double sum = 0;
        for (std::int64_t e = 0; e < E; ++e) sum += pn[e] = std::exp(pn[e] - zmax);
        for (std::int64_t e = 0; e < E; ++e)
            pn[e] = float(pn[e] / sum), st.mean_prob[std::size_t(e)] += pn[e];
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](std::int32_t a, std::int32_t b) {
            return pn[a] > pn[b] || (pn[a] == pn[b] && a < b);
        });
        double chosen = 0;
        for (std::int64_t j = 0; j < K; ++j) chosen += pn[order[std::size_t(j)]];
        for (std::int64_t j = 0; j < K; ++j) {
            const std::int32_t e = order[std::size_t(j)];
            L.choice[std::size_t(n * K + j)] = e;
            L.gate[std::size_t(n * K + j)] = float(pn[e] / chosen);
            L.rows[std::size_t(e)].push_back(n * K + j);
        }
    }
    for (std::int64_t r = 0; r < N; ++r)
        for (std::int64_t c = 0; c < C; ++c) y(r, c) = 0.0f;
    for (std::int64_t e = 0; e < E; ++e) {
        const auto& rows = L.rows[std::size_t(e)];
        const std::int64_t ne = std::int64_t(rows.size());
        st.counts[std::size_t(e)] = ne;
        load_[std::size_t(layer)][std::size_t(e)] += ne;
        if (ne == 0) continue;
        const MatView xe(L.xe[std::size_t(e)].data(), ne, C), he(L.he[std::size_t(e)].data(), ne, 4 * C);
        const MatView ae(L.ae[std::size_t(e)].data(), ne, 4 * C), oe(L.oe[std::size_t(e)].data(), ne, C);
        for (std::int64_t r = 0; r < ne; ++r) std::copy_n(x.row(rows[std::size_t(r)] / K), C, xe.row(r));
        const MoeExpertWeights& we = w.experts[std::size_t(e)];
        be_.linear_forward({he, xe, we.fc_w, we.fc_b});
        be_.gelu_forward({VecView(ae.data, ne * 4 * C), CVecView(he.data, ne * 4 * C)});
        be_.linear_forward({oe, ae, we.proj_w, we.proj_b});
        for (std::int64_t r = 0; r < ne; ++r) {
            const std::int64_t nj = rows[std::size_t(r)];
            const float g = L.gate[std::size_t(nj)];
            float* yn = y.row(nj / K);
            const float* o = oe.row(r);
            for (std::int64_t c = 0; c < C; ++c) yn[c] += g * o[c];
        }
    }
    double aux = 0;
    for (std::int64_t e = 0; e < E; ++e) {
        st.mean_prob[std::size_t(e)] /= double(N);
        aux += double(st.counts[std::size_t(e)]) / double(N * K) * st.mean_prob[std::size_t(e)];
    }
    st.aux_loss = double(E) * aux;
}

void MoeBlocks::backward(std::int64_t layer, MatView dx, CMatView dy, CMatView x, const MoeWeights& w,
                         const MoeGrads& g, double aux_scale) {
    const std::int64_t N = x.rows, C = C_, E = E_, K = K_;
    TL_ASSERT(dx.rows == N && dy.rows == N && dx.cols == C && dy.cols == C, "[moe_backward] shape mismatch");
    Layer& L = layers_[std::size_t(layer)];
    TL_ASSERT(std::int64_t(L.choice.size()) == N * K,
              "[moe_backward] no forward of this shape to go back through");
    const MatView dz(dz_.data(), N, E);
    std::fill_n(dz.data, N * E, 0.0f);
    for (std::int64_t r = 0; r < N; ++r)
        for (std::int64_t c = 0; c < C; ++c) dx(r, c) = 0.0f;
    std::vector<double> dgate(std::size_t(N * K), 0.0);
    for (std::int64_t e = 0; e < E; ++e) {
        const auto& rows = L.rows[std::size_t(e)];
        const std::int64_t ne = std::int64_t(rows.size());
        if (ne == 0) continue;
        const MatView xe(L.xe[std::size_t(e)].data(), ne, C), he(L.he[std::size_t(e)].data(), ne, 4 * C);
        const MatView ae(L.ae[std::size_t(e)].data(), ne, 4 * C), oe(L.oe[std::size_t(e)].data(), ne, C);
        const MatView doe(doe_.data(), ne, C), dae(dae_.data(), ne, 4 * C), dhe(dhe_.data(), ne, 4 * C);
        const MatView dxe(dxe_.data(), ne, C);
        for (std::int64_t r = 0; r < ne; ++r) {  // d o = g dy;  d g = dy . o
            const std::int64_t nj = rows[std::size_t(r)];
            const float gj = L.gate[std::size_t(nj)];
            const float* dyn = dy.row(nj / K);
            const float* o = oe.row(r);
            float* d = doe.row(r);
            double dot = 0;
            for (std::int64_t c = 0; c < C; ++c) d[c] = gj * dyn[c], dot += double(dyn[c]) * o[c];
            dgate[std::size_t(nj)] = dot;
        }
        const MoeExpertWeights& we = w.experts[std::size_t(e)];
        const MoeExpertGrads& ge = g.experts[std::size_t(e)];
        be_.linear_backward({dae, ge.proj_w, ge.proj_b, doe, ae, we.proj_w});
        be_.gelu_backward(
            {VecView(dhe.data, ne * 4 * C), CVecView(dae.data, ne * 4 * C), CVecView(he.data, ne * 4 * C)});
        be_.linear_backward({dxe, ge.fc_w, ge.fc_b, dhe, xe, we.fc_w});
        for (std::int64_t r = 0; r < ne; ++r) {
            float* dxn = dx.row(rows[std::size_t(r)] / K);
            const float* d = dxe.row(r);
            for (std::int64_t c = 0; c < C; ++c) dxn[c] += d[c];
        }
    }
    // Router: through the renormalised softmax over the chosen experts.
    for (std::int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (std::int64_t j = 0; j < K; ++j)
            s += double(L.gate[std::size_t(n * K + j)]) * dgate[std::size_t(n * K + j)];
        for (std::int64_t j = 0; j < K; ++j) {
            const std::size_t nj = std::size_t(n * K + j);
            dz(n, L.choice[nj]) += float(double(L.gate[nj]) * (dgate[nj] - s));
        }
    }
    // Load balancing: through the full softmax p (L.logits holds p after forward).
    if (aux_scale != 0) {
        std::vector<double> dp(static_cast<std::size_t>(E));
        for (std::int64_t e = 0; e < E; ++e)
            dp[std::size_t(e)] =
                aux_scale * double(E) * (double(L.stats.counts[std::size_t(e)]) / double(N * K)) / double(N);
        const CMatView p(L.logits.data(), N, E);
        for (std::int64_t n = 0; n < N; ++n) {
            double t = 0;
            for (std::int64_t e = 0; e < E; ++e) t += double(p(n, e)) * dp[std::size_t(e)];
            for (std::int64_t e = 0; e < E; ++e)
                dz(n, e) += float(double(p(n, e)) * (dp[std::size_t(e)] - t));
        }
    }
    if (g.gate.data) be_.gemm({g.gate, dz, x, Trans::yes, Trans::no, 1.0f, 1.0f});  // dG += dz^T x
    be_.gemm({dx, dz, w.gate, Trans::no, Trans::no, 1.0f, 1.0f});                   // dx += dz G
}

}  // namespace tl
