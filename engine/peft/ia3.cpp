// IA3 forward/backward pairs (see ia3.hpp). A column block y[:, c0:c0+n] (N, n) is scaled by l (n):
//   forward:  y'[i,j] = l[j] y[i,j]           saves y (the unscaled block)
//   backward: dl[j] += sum_i dy'[i,j] y[i,j]  (accumulates);   dy[i,j] = l[j] dy'[i,j]  (overwrites dy' in place)
#include "peft/ia3.hpp"

#include <vector>

#include "core/error.hpp"

namespace tl {

namespace {

void scale_cols_forward(MatView y, std::int64_t c0, CVecView l, MatView saved) {
    for (std::int64_t i = 0; i < y.rows; ++i)
        for (std::int64_t j = 0; j < l.n; ++j) {
            saved(i, j) = y(i, c0 + j);
            y(i, c0 + j) *= l[j];
        }
}

void scale_cols_backward(MatView dy, std::int64_t c0, CVecView l, VecView dl, CMatView saved) {
    for (std::int64_t i = 0; i < dy.rows; ++i)
        for (std::int64_t j = 0; j < l.n; ++j) {
            dl[j] += dy(i, c0 + j) * saved(i, j);
            dy(i, c0 + j) *= l[j];
        }
}

}  // namespace

Ia3Adapter::Ia3Adapter(const Gpt& model) : L_(model.config().n_layer), C_(model.config().n_embd) {
    require_cpu(model, "ia3");
}

std::vector<AdapterParam> Ia3Adapter::params() const {
    std::vector<AdapterParam> out;
    for (std::int64_t l = 0; l < L_; ++l) {
        out.push_back({k_name(l), {C_}, ParamRole::norm_weight});
        out.push_back({v_name(l), {C_}, ParamRole::norm_weight});
        out.push_back({ff_name(l), {4 * C_}, ParamRole::norm_weight});
    }
    return out;
}

void Ia3Adapter::init(Gpt& model, std::uint64_t) {
    for (std::int64_t l = 0; l < L_; ++l)
        for (const std::string& n : {k_name(l), v_name(l), ff_name(l)}) {
            const VecView v = model.param(model.params().at(n));
            const std::vector<float> ones(std::size_t(v.n), 1.0f);
            model.backend().copy_from_host(v, ones.data());
        }
}

bool Ia3Adapter::acts_at(HookSite site) const { return site == HookSite::attn_qkv || site == HookSite::mlp_hidden; }

void Ia3Adapter::forward(Gpt& model, const HookForward& h) {
    const std::int64_t N = h.y.rows, l = h.layer;
    auto p = [&](const std::string& n) { return CVecView(model.param(model.params().at(n))); };
    if (h.site == HookSite::attn_qkv) {
        const MatView s = saved_.get(model.backend(), std::size_t(2 * l), {N, 2 * C_}, MemCategory::activations).mat(N);
        scale_cols_forward(h.y, C_, p(k_name(l)), MatView(s.data, N, C_, 2 * C_));
        scale_cols_forward(h.y, 2 * C_, p(v_name(l)), MatView(s.data + C_, N, C_, 2 * C_));
    } else {
        const MatView s = saved_.get(model.backend(), std::size_t(2 * l + 1), {N, 4 * C_}, MemCategory::activations)
                              .mat(N);
        scale_cols_forward(h.y, 0, p(ff_name(l)), s);
    }
}

void Ia3Adapter::backward_output(Gpt& model, const HookBackward& h) {
    const std::int64_t N = h.dy.rows, l = h.layer;
    auto p = [&](const std::string& n) { return CVecView(model.param(model.params().at(n))); };
    auto g = [&](const std::string& n) { return model.grad(model.params().at(n)); };
    if (h.site == HookSite::attn_qkv) {
        const MatView s = saved_.get(model.backend(), std::size_t(2 * l), {N, 2 * C_}, MemCategory::activations).mat(N);
        scale_cols_backward(h.dy, C_, p(k_name(l)), g(k_name(l)), CMatView(s.data, N, C_, 2 * C_));
        scale_cols_backward(h.dy, 2 * C_, p(v_name(l)), g(v_name(l)), CMatView(s.data + C_, N, C_, 2 * C_));
    } else {
        const MatView s = saved_.get(model.backend(), std::size_t(2 * l + 1), {N, 4 * C_}, MemCategory::activations)
                              .mat(N);
        scale_cols_backward(h.dy, 0, p(ff_name(l)), g(ff_name(l)), s);
    }
}

// k' = (x W + b)[:, C:2C] diag(l_k) = x (W[:, C:2C] diag(l_k)) + b[C:2C] diag(l_k); the same for v.
// hidden' W_proj = hidden diag(l_ff) W_proj: row j of mlp.c_proj.weight (4C, C) scales by l_ff[j].
void Ia3Adapter::merge(Gpt& model) const {
    for (std::int64_t l = 0; l < L_; ++l) {
        const CVecView lk = model.param(model.params().at(k_name(l)));
        const CVecView lv = model.param(model.params().at(v_name(l)));
        const CVecView lff = model.param(model.params().at(ff_name(l)));
        const MatView w = param_mat(model, module_path(l, "attn.c_attn.weight"), C_);  // (C, 3C)
        const MatView b = param_mat(model, module_path(l, "attn.c_attn.bias"), 1);     // (1, 3C)
        for (const MatView& m : {w, b})
            for (std::int64_t i = 0; i < m.rows; ++i)
                for (std::int64_t j = 0; j < C_; ++j) m(i, C_ + j) *= lk[j], m(i, 2 * C_ + j) *= lv[j];
        const MatView proj = param_mat(model, module_path(l, "mlp.c_proj.weight"), 4 * C_);  // (4C, C)
        for (std::int64_t j = 0; j < 4 * C_; ++j)
            for (std::int64_t c = 0; c < C_; ++c) proj(j, c) *= lff[j];
    }
}

Ia3Adapter& ia3_attach(Gpt& model, std::uint64_t seed) {
    auto& a = static_cast<Ia3Adapter&>(model.attach(std::make_unique<Ia3Adapter>(model), seed));
    freeze_base(model);
    return a;
}

void ia3_merge_and_detach(Gpt& model) {
    TL_ASSERT(model.adapters().size() == 1, "[peft] ia3 merge expects IA3 as the only attached module");
    const auto* ia3 = dynamic_cast<const Ia3Adapter*>(model.adapters().front().get());
    if (!ia3) throw Error("[peft] the model has no IA3 vectors to merge");
    ia3->merge(model);
    model.detach_adapters();
    unfreeze_all(model);
}

}  // namespace tl
