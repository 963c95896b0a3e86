// Houlsby adapter forward/backward (see houlsby.hpp), on the Backend's linear, GELU and add ops.
//   forward:  z = y Wd + bd (N, m);  a = gelu(z);  u = a Wu + bu (N, C);  y' = y + u      saves y, z, a
//   backward: dWu += a^T dy', dbu += sum dy';  da = dy' Wu^T;  dz = gelu'(z) da;
//             dWd += y^T dz, dbd += sum dz;  dy = dy' + dz Wd^T     (dy overwrites dy' in place)
#include "peft/houlsby.hpp"

#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace tl {

HoulsbyAdapter::HoulsbyAdapter(const Gpt& model, std::int64_t bottleneck)
    : L_(model.config().n_layer), C_(model.config().n_embd), m_(bottleneck) {
    if (m_ < 1 || m_ > C_)
        throw Error("[peft] adapter bottleneck must be 1.." + std::to_string(C_) + " (n_embd) for this model, got " +
                    std::to_string(m_));
}

std::string HoulsbyAdapter::prefix(std::int64_t layer, HookSite site) {
    return module_path(layer, site == HookSite::attn_proj ? "attn.adapter" : "mlp.adapter");
}

std::vector<AdapterParam> HoulsbyAdapter::params() const {
    std::vector<AdapterParam> out;
    for (std::int64_t l = 0; l < L_; ++l)
        for (HookSite s : {HookSite::attn_proj, HookSite::mlp_proj}) {
            const std::string p = prefix(l, s);
            out.push_back({p + ".down.weight", {C_, m_}, ParamRole::weight});
            out.push_back({p + ".down.bias", {m_}, ParamRole::bias});
            out.push_back({p + ".up.weight", {m_, C_}, ParamRole::weight});
            out.push_back({p + ".up.bias", {C_}, ParamRole::bias});
        }
    return out;
}

// Down-projection N(0, 0.02) like GPT-2's matrices; the up-projection stays zero (identity at start).
void HoulsbyAdapter::init(Gpt& model, std::uint64_t seed) {
    std::vector<float> host(std::size_t(C_ * m_));
    for (std::int64_t l = 0; l < L_; ++l)
        for (HookSite s : {HookSite::attn_proj, HookSite::mlp_proj}) {
            Rng rng(seed, /*stream=*/7000 + std::uint64_t(2 * l + (s == HookSite::mlp_proj)));
            for (float& w : host) w = 0.02f * rng.normal();
            model.backend().copy_from_host(model.param(model.params().at(prefix(l, s) + ".down.weight")), host.data());
        }
}

HoulsbyAdapter::Saved HoulsbyAdapter::saved(Backend& be, std::int64_t layer, HookSite site, std::int64_t N) {
    const std::size_t slot = std::size_t(2 * layer + (site == HookSite::mlp_proj));
    return {y_in_.get(be, slot, {N, C_}, MemCategory::activations), z_.get(be, slot, {N, m_}, MemCategory::activations),
            a_.get(be, slot, {N, m_}, MemCategory::activations)};
}

void HoulsbyAdapter::forward(Gpt& model, const HookForward& h) {
    Backend& be = model.backend();
    const std::int64_t N = h.y.rows;
    const std::string p = prefix(h.layer, h.site);
    const auto [y, z, a] = saved(be, h.layer, h.site, N);
    const Tensor& u = scratch_.get(be, 0, {N, C_}, MemCategory::workspace);
    be.copy(y.vec(), CVecView(h.y.data, N * C_));
    be.linear_forward({z.mat(N), y.mat(N), param_mat(model, p + ".down.weight", C_),
                       model.param(model.params().at(p + ".down.bias"))});
    be.gelu_forward({a.vec(), z.vec()});
    be.linear_forward({u.mat(N), a.mat(N), param_mat(model, p + ".up.weight", m_),
                       model.param(model.params().at(p + ".up.bias"))});
    be.add(VecView(h.y.data, N * C_), y.vec(), u.vec());
}

void HoulsbyAdapter::backward_output(Gpt& model, const HookBackward& h) {
    Backend& be = model.backend();
    const std::int64_t N = h.dy.rows;
    const std::string p = prefix(h.layer, h.site);
    const auto [y, z, a] = saved(be, h.layer, h.site, N);
    const Tensor& da = scratch_.get(be, 1, {N, m_}, MemCategory::workspace);
    const Tensor& dz = scratch_.get(be, 2, {N, m_}, MemCategory::workspace);
    const Tensor& dy_in = scratch_.get(be, 3, {N, C_}, MemCategory::workspace);
    auto g = [&](const char* n) { return model.grad(model.params().at(p + n)); };
    be.linear_backward({da.mat(N), grad_mat(model, p + ".up.weight", m_), g(".up.bias"), h.dy, a.mat(N),
                        param_mat(model, p + ".up.weight", m_)});
    be.gelu_backward({dz.vec(), da.vec(), z.vec()});
    be.linear_backward({dy_in.mat(N), grad_mat(model, p + ".down.weight", C_), g(".down.bias"), dz.mat(N), y.mat(N),
                        param_mat(model, p + ".down.weight", C_)});
    be.add_inplace(VecView(h.dy.data, N * C_), dy_in.vec());
}

HoulsbyAdapter& houlsby_attach(Gpt& model, std::int64_t bottleneck, std::uint64_t seed) {
    auto& a = static_cast<HoulsbyAdapter&>(model.attach(std::make_unique<HoulsbyAdapter>(model, bottleneck), seed));
    freeze_base(model);
    return a;
}

}  // namespace tl
