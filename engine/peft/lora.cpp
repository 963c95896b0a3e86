// LoRA modules on Conv1D linears: forward/backward pairs over the Backend's GEMMs, merge and unmerge.
// Layouts: x (N, in), W (in, out) as Hugging Face stores Conv1D, A (r, in), B (out, r), y (N, out).
#include "peft/lora.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace tl {

float LoraConfig::scale() const {
    return scaling == LoraScaling::rslora ? alpha / std::sqrt(float(r)) : alpha / float(r);
}

static bool target_matches(std::string_view path, std::string_view target) {
    return path == target || (path.size() > target.size() && path.ends_with(target) &&
                              path[path.size() - target.size() - 1] == '.');
}

LoraAdapter::LoraAdapter(const Gpt& model, const LoraConfig& config) : config_(config), scale_(config.scale()) {
    if (config.targets.empty()) throw Error("[peft] LoRA needs at least one target module (e.g. c_attn)");
    if (!(config.dropout >= 0.0f && config.dropout < 1.0f))
        throw Error("[peft] LoRA dropout must be in [0, 1), got " + std::to_string(config.dropout));
    if (config.dropout > 0.0f) require_cpu(model, "LoRA dropout");
    if (config.variant == LoraVariant::dora) require_cpu(model, "DoRA");
    const std::int64_t L = model.config().n_layer;
    for (const std::string& t : config.targets) {
        bool is_used = false;
        for (std::int64_t l = 0; l < L; ++l)
            for (const LinearSite& s : kLinearSites) is_used = is_used || target_matches(module_path(l, s.module), t);
        if (!is_used)
            throw Error("[peft] LoRA target '" + t + "' matches no linear of GPT-2; targets are module names: "
                        "c_attn, c_proj, c_fc (or attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj)");
    }
    for (std::int64_t l = 0; l < L; ++l)
        for (const LinearSite& s : kLinearSites) {
            Module m{l, s.site, module_path(l, s.module)};
            if (std::none_of(config.targets.begin(), config.targets.end(),
                             [&](const std::string& t) { return target_matches(m.path, t); }))
                continue;
            const Shape& w = model.params().at(m.path + ".weight").shape;  // (in, out)
            m.in = w[0], m.out = w[1];
            if (config.r < 1 || config.r > std::min(m.in, m.out))
                throw Error("[peft] LoRA rank " + std::to_string(config.r) + " is invalid for " + m.path + " (" +
                            std::to_string(m.in) + " -> " + std::to_string(m.out) + "): use 1 <= r <= " +
                            std::to_string(std::min(m.in, m.out)));
            modules_.push_back(std::move(m));
        }
    draws_.assign(modules_.size(), 0);
    norms_.resize(modules_.size()), c_.resize(modules_.size()), merged_c_.resize(modules_.size());
}

std::int64_t lora_param_count(const std::vector<std::pair<std::int64_t, std::int64_t>>& shapes, int r,
                              LoraVariant variant) {
    std::int64_t n = 0;
    for (const auto& [in, out] : shapes) n += r * (in + out) + (variant == LoraVariant::dora ? out : 0);
    return n;
}

std::vector<AdapterParam> LoraAdapter::params() const {
    std::vector<AdapterParam> out;
    for (const Module& m : modules_) {
        out.push_back({m.a_name(), {config_.r, m.in}, ParamRole::weight});
        out.push_back({m.b_name(), {m.out, config_.r}, ParamRole::weight});
        if (config_.variant == LoraVariant::dora) out.push_back({m.m_name(), {m.out}, ParamRole::weight});
    }
    return out;
}

// PEFT: nn.init.kaiming_uniform_(A, a=sqrt(5)) -> U(-b, b), b = gain sqrt(3 / fan_in), gain = sqrt(2 / (1 + 5)),
// so b = 1 / sqrt(in). B stays zero (the model zero-fills new parameters).
void LoraAdapter::init(Gpt& model, std::uint64_t seed) {
    std::vector<float> host;
    for (std::size_t i = 0; i < modules_.size(); ++i) {
        const Module& m = modules_[i];
        Rng rng(seed, /*stream=*/5000 + i);
        const double bound = 1.0 / std::sqrt(double(m.in));
        host.resize(std::size_t(config_.r * m.in));
        for (float& a : host) a = float((2.0 * rng.uniform() - 1.0) * bound);
        model.backend().copy_from_host(model.param(model.params().at(m.a_name())), host.data());
        if (config_.variant == LoraVariant::dora) {  // PEFT: m = ||W + s (BA)^T||_col with B = 0, i.e. ||W||_col
            dora_norms(model, i);
            model.backend().copy_from_host(model.param(model.params().at(m.m_name())), norms_[i].data());
        }
    }
}

const LoraAdapter::Module* LoraAdapter::find(std::int64_t layer, HookSite site) const {
    for (const Module& m : modules_)
        if (m.layer == layer && m.site == site) return &m;
    return nullptr;
}

bool LoraAdapter::acts_at(HookSite site) const {
    if (state_ == LoraState::merged) return false;
    return std::any_of(modules_.begin(), modules_.end(), [&](const Module& m) { return m.site == site; });
}

void LoraAdapter::set_phase(LoraPhase phase, std::uint64_t seed) {
    phase_ = phase;
    dropout_seed_ = seed;
    draws_.assign(modules_.size(), 0);  // the masks restart: a seed and a forward count fix every mask
}

// Dropout on the branch input: x~ = x * mask, mask = 0 with probability p, else 1 / (1 - p). Saves x~ and mask.
CMatView LoraAdapter::dropped_input(Gpt& model, std::size_t i, CMatView x) {
    Backend& be = model.backend();
    const Tensor& xd = saved_x_.get(be, 2 * i, {x.rows, x.cols}, MemCategory::activations);
    const Tensor& mask = saved_x_.get(be, 2 * i + 1, {x.rows, x.cols}, MemCategory::activations);
    Rng rng(dropout_seed_, /*stream=*/(std::uint64_t(1) << 40) + draws_[i]++ * 4096 + i);
    const float p = config_.dropout, keep = 1.0f / (1.0f - p);
    for (std::int64_t k = 0; k < x.rows * x.cols; ++k) {
        mask.data()[k] = rng.uniform() < p ? 0.0f : keep;
        xd.data()[k] = x.data[k] * mask.data()[k];
    }
    return xd.mat(x.rows);
}

// Forward:  h = x~ A^T (N, r), saved;  y += s h B^T (N, out).  x~ = x, or x with dropout in training.
void LoraAdapter::forward(Gpt& model, const HookForward& hk) {
    const Module* m = find(hk.layer, hk.site);
    if (!m) return;
    Backend& be = model.backend();
    const std::size_t i = std::size_t(m - modules_.data());
    const std::int64_t N = hk.x.rows, r = config_.r;
    const CMatView x = is_dropping() ? dropped_input(model, i, hk.x) : hk.x;
    const Tensor& h = saved_h_.get(be, i, {N, r}, MemCategory::activations);
    be.gemm({h.mat(N), x, param_mat(model, m->a_name(), r), Trans::no, Trans::yes, 1.0f, 0.0f});
    if (config_.variant == LoraVariant::dora) return dora_forward(model, i, x, h.mat(N), hk.y);
    be.gemm({hk.y, h.mat(N), param_mat(model, m->b_name(), m->out), Trans::no, Trans::yes, scale_, 1.0f});
}

// W gets no gradient: that is the point of LoRA.  dy (N, out) is the gradient of this module's output.
//   dB += s dy^T h (out, r);  dh = s dy B (N, r);  dA += dh^T x~ (r, in);  dx += dh A (N, in)  (* mask: dropout)
void LoraAdapter::backward_input(Gpt& model, const HookBackward& hk) {
    const Module* m = find(hk.layer, hk.site);
    if (!m) return;
    const std::size_t i = std::size_t(m - modules_.data());
    if (config_.variant == LoraVariant::dora) return dora_backward(model, hk, i);
    Backend& be = model.backend();
    const std::int64_t N = hk.x.rows, r = config_.r;
    const Tensor& h = saved_h_.get(be, i, {N, r}, MemCategory::activations);
    const Tensor& dh = dh_.get(be, 0, {N, r}, MemCategory::workspace);
    const MatView B = param_mat(model, m->b_name(), m->out), A = param_mat(model, m->a_name(), r);
    const MatView dB = grad_mat(model, m->b_name(), m->out), dA = grad_mat(model, m->a_name(), r);
    const CMatView dy = hk.dy;
    be.gemm({dB, dy, h.mat(N), Trans::yes, Trans::no, scale_, 1.0f});
    be.gemm({dh.mat(N), dy, B, Trans::no, Trans::no, scale_, 0.0f});
    if (!is_dropping()) {
        be.gemm({dA, dh.mat(N), hk.x, Trans::yes, Trans::no, 1.0f, 1.0f});
        if (hk.dx.data) be.gemm({hk.dx, dh.mat(N), A, Trans::no, Trans::no, 1.0f, 1.0f});
        return;
    }
    const std::int64_t in = hk.x.cols;
    const Tensor& xd = saved_x_.get(be, 2 * i, {N, in}, MemCategory::activations);
    const Tensor& mask = saved_x_.get(be, 2 * i + 1, {N, in}, MemCategory::activations);
    be.gemm({dA, dh.mat(N), xd.mat(N), Trans::yes, Trans::no, 1.0f, 1.0f});
    if (!hk.dx.data) return;
    const Tensor& dxd = dh_.get(be, 2, {N, in}, MemCategory::workspace);
    be.gemm({dxd.mat(N), dh.mat(N), A, Trans::no, Trans::no, 1.0f, 0.0f});
    for (std::int64_t k = 0; k < N * in; ++k) hk.dx.data[k] += dxd.data()[k] * mask.data()[k];
}

// ---- DoRA ----
// W' = W + s A^T B^T (in, out);  n_j = ||W'[:, j]||;  c_j = m_j / n_j.  PEFT's DoraLinearLayer adds to the base
// output y0 = x W + b:   y = y0 + (c - 1) (x~ W) + c s (x~ A^T) B^T  =  y0 - u + c z,   u = x~ W, z = u + s h B^T
// (without dropout x~ = x and y = b + c x W'; with it the base path keeps x, as in PEFT).
void LoraAdapter::dora_norms(Gpt& model, std::size_t i) {
    const Module& m = modules_[i];
    Backend& be = model.backend();
    const Tensor& Wp = saved_z_.get(be, 2 * i + 1, {m.in, m.out}, MemCategory::activations);
    be.copy(Wp.vec(), model.param(model.params().at(m.path + ".weight")));
    be.gemm({Wp.mat(m.in), param_mat(model, m.a_name(), config_.r), param_mat(model, m.b_name(), m.out), Trans::yes,
             Trans::yes, scale_, 1.0f});
    std::vector<double> sq(std::size_t(m.out), 0.0);
    for (std::int64_t k = 0; k < m.in; ++k)
        for (std::int64_t j = 0; j < m.out; ++j) sq[std::size_t(j)] += double(Wp.data()[k * m.out + j]) * Wp.data()[k * m.out + j];
    norms_[i].resize(std::size_t(m.out));
    c_[i].resize(std::size_t(m.out));
    const float* mag = model.param(model.params().at(m.m_name())).data;  // zero during init(): c unused there
    for (std::size_t j = 0; j < sq.size(); ++j) {
        norms_[i][j] = float(std::sqrt(sq[j]));
        c_[i][j] = mag[j] / norms_[i][j];
    }
}

void LoraAdapter::dora_forward(Gpt& model, std::size_t i, CMatView x, CMatView h, MatView y) {
    const Module& m = modules_[i];
    Backend& be = model.backend();
    const std::int64_t N = x.rows;
    dora_norms(model, i);
    const Tensor& z = saved_z_.get(be, 2 * i, {N, m.out}, MemCategory::activations);
    be.gemm({z.mat(N), x, param_mat(model, m.path + ".weight", m.in), Trans::no, Trans::no, 1.0f, 0.0f});  // u
    for (std::int64_t k = 0; k < N * m.out; ++k) y.data[k] -= z.data()[k];
    be.gemm({z.mat(N), h, param_mat(model, m.b_name(), m.out), Trans::no, Trans::yes, scale_, 1.0f});  // z
    const float* c = c_[i].data();
    for (std::int64_t k = 0; k < N; ++k)
        for (std::int64_t j = 0; j < m.out; ++j) y.data[k * m.out + j] += c[j] * z.data()[k * m.out + j];
}

// With G_j = sum_k dy_kj z_kj:  dm_j += G_j / n_j.  The branch sees dyc = c dy:  dB += s dyc^T h,  dh = s dyc B,
// dA += dh^T x~;  dx~ = dh A + ((c - 1) dy) W^T,  dx += dx~ (* mask).  exact: dn_j = -G_j m_j / n_j^2, and
// dW' = dn_j W'[:, j] / n_j feeds dA += s B^T dW'^T, dB += s dW'^T A^T.
void LoraAdapter::dora_backward(Gpt& model, const HookBackward& hk, std::size_t i) {
    const Module& m = modules_[i];
    Backend& be = model.backend();
    const std::int64_t N = hk.x.rows, r = config_.r, in = m.in, out = m.out;
    const Tensor& h = saved_h_.get(be, i, {N, r}, MemCategory::activations);
    const Tensor& z = saved_z_.get(be, 2 * i, {N, out}, MemCategory::activations);
    const Tensor& dyc = dh_.get(be, 1, {N, out}, MemCategory::workspace);
    const Tensor& dh = dh_.get(be, 0, {N, r}, MemCategory::workspace);
    const Tensor& dxd = dh_.get(be, 2, {N, in}, MemCategory::workspace);
    const std::vector<float>& c = c_[i];
    const std::vector<float>& nrm = norms_[i];
    std::vector<double> G(std::size_t(out), 0.0);
    for (std::int64_t k = 0; k < N; ++k)
        for (std::int64_t j = 0; j < out; ++j) {
            const float d = hk.dy.data[k * out + j];
            G[std::size_t(j)] += double(d) * z.data()[k * out + j];
            dyc.data()[k * out + j] = c[std::size_t(j)] * d;
        }
    const VecView dm = model.grad(model.params().at(m.m_name()));
    for (std::int64_t j = 0; j < out; ++j) dm[j] += float(G[std::size_t(j)] / nrm[std::size_t(j)]);
    const MatView A = param_mat(model, m.a_name(), r), B = param_mat(model, m.b_name(), out);
    const MatView dA = grad_mat(model, m.a_name(), r), dB = grad_mat(model, m.b_name(), out);
    const CMatView xd = is_dropping() ? CMatView(saved_x_.get(be, 2 * i, {N, in}, MemCategory::activations).mat(N)) : hk.x;
    be.gemm({dB, dyc.mat(N), h.mat(N), Trans::yes, Trans::no, scale_, 1.0f});
    be.gemm({dh.mat(N), dyc.mat(N), B, Trans::no, Trans::no, scale_, 0.0f});
    be.gemm({dA, dh.mat(N), xd, Trans::yes, Trans::no, 1.0f, 1.0f});
    if (config_.dora_norm == DoraNorm::exact) {
        const Tensor& Wp = saved_z_.get(be, 2 * i + 1, {in, out}, MemCategory::activations);
        const Tensor& dWp = dh_.get(be, 3, {in, out}, MemCategory::workspace);
        const float* mag = model.param(model.params().at(m.m_name())).data;
        std::vector<float> f(static_cast<std::size_t>(out));  // dn_j / n_j
        for (std::int64_t j = 0; j < out; ++j) {
            const double n = nrm[std::size_t(j)];
            f[std::size_t(j)] = float(-G[std::size_t(j)] * mag[j] / (n * n * n));
        }
        for (std::int64_t k = 0; k < in; ++k)
            for (std::int64_t j = 0; j < out; ++j) dWp.data()[k * out + j] = f[std::size_t(j)] * Wp.data()[k * out + j];
        be.gemm({dA, B, dWp.mat(in), Trans::yes, Trans::yes, scale_, 1.0f});
        be.gemm({dB, dWp.mat(in), A, Trans::yes, Trans::yes, scale_, 1.0f});
    }
    if (!hk.dx.data) return;
    for (std::int64_t k = 0; k < N; ++k)
        for (std::int64_t j = 0; j < out; ++j) dyc.data()[k * out + j] = (c[std::size_t(j)] - 1.0f) * hk.dy.data[k * out + j];
    be.gemm({dxd.mat(N), dh.mat(N), A, Trans::no, Trans::no, 1.0f, 0.0f});
    be.gemm({dxd.mat(N), dyc.mat(N), param_mat(model, m.path + ".weight", in), Trans::no, Trans::yes, 1.0f, 1.0f});
    const float* mask = is_dropping() ? saved_x_.get(be, 2 * i + 1, {N, in}, MemCategory::activations).data() : nullptr;
    for (std::int64_t k = 0; k < N * in; ++k) hk.dx.data[k] += mask ? dxd.data()[k] * mask[k] : dxd.data()[k];
}

// W (in, out) += sign * s A^T B^T  =  sign * s (B A)^T.
void LoraAdapter::fold(Gpt& model, float sign) {
    for (const Module& m : modules_)
        model.backend().gemm({param_mat(model, m.path + ".weight", m.in), param_mat(model, m.a_name(), config_.r),
                              param_mat(model, m.b_name(), m.out), Trans::yes, Trans::yes, sign * scale_, 1.0f});
}

// DoRA: W <- c (W + s (BA)^T) column by column (the bias stays: y = b + c x W'), keeping c for unmerge.
void LoraAdapter::merge(Gpt& model) {
    TL_ASSERT(state_ == LoraState::unmerged, "[lora] merge of a merged adapter");
    fold(model, 1.0f);
    if (config_.variant == LoraVariant::dora)
        for (std::size_t i = 0; i < modules_.size(); ++i) {
            const Module& m = modules_[i];
            const VecView W = model.param(model.params().at(m.path + ".weight"));
            const VecView mag = model.param(model.params().at(m.m_name()));
            std::vector<double> sq(std::size_t(m.out), 0.0);
            for (std::int64_t k = 0; k < m.in; ++k)
                for (std::int64_t j = 0; j < m.out; ++j) sq[std::size_t(j)] += double(W[k * m.out + j]) * W[k * m.out + j];
            merged_c_[i].resize(std::size_t(m.out));
            for (std::int64_t j = 0; j < m.out; ++j) merged_c_[i][std::size_t(j)] = float(mag[j] / std::sqrt(sq[std::size_t(j)]));
            for (std::int64_t k = 0; k < m.in; ++k)
                for (std::int64_t j = 0; j < m.out; ++j) W[k * m.out + j] *= merged_c_[i][std::size_t(j)];
        }
    state_ = LoraState::merged;
}

void LoraAdapter::unmerge(Gpt& model) {
    TL_ASSERT(state_ == LoraState::merged, "[lora] unmerge of an unmerged adapter");
    if (config_.variant == LoraVariant::dora)
        for (std::size_t i = 0; i < modules_.size(); ++i) {
            const Module& m = modules_[i];
            const VecView W = model.param(model.params().at(m.path + ".weight"));
            for (std::int64_t k = 0; k < m.in; ++k)
                for (std::int64_t j = 0; j < m.out; ++j) W[k * m.out + j] /= merged_c_[i][std::size_t(j)];
        }
    fold(model, -1.0f);
    state_ = LoraState::unmerged;
}

LoraTrainingScope::LoraTrainingScope(Gpt& model, std::uint64_t seed) : model_(model) {
    if (LoraAdapter* l = lora_find(model_)) l->set_phase(LoraPhase::train, seed);
}

LoraTrainingScope::~LoraTrainingScope() {
    if (LoraAdapter* l = lora_find(model_)) l->set_phase(LoraPhase::eval, 0);
}

LoraAdapter& lora_attach(Gpt& model, const LoraConfig& config, std::uint64_t seed) {
    if (lora_find(model)) throw Error("[peft] the model already has a LoRA adapter attached");
    auto adapter = std::make_unique<LoraAdapter>(model, config);
    auto& lora = static_cast<LoraAdapter&>(model.attach(std::move(adapter), seed));
    freeze_base(model);
    return lora;
}

LoraAdapter* lora_find(const Gpt& model) {
    for (const auto& a : model.adapters())
        if (auto* l = dynamic_cast<LoraAdapter*>(a.get())) return l;
    return nullptr;
}

void lora_merge_and_detach(Gpt& model) {
    LoraAdapter* lora = lora_find(model);
    if (!lora) throw Error("[peft] the model has no LoRA adapter to merge");
    if (model.adapters().size() != 1)
        throw Error("[peft] merging LoRA detaches every module, and this model carries " +
                    std::to_string(model.adapters().size()) + "; merge or detach the others first");
    if (lora->state() == LoraState::unmerged) lora->merge(model);
    model.detach_adapters();
    unfreeze_all(model);
}

}  // namespace tl
